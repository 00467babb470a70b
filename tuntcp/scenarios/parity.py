"""Differential parity: one scripted passive-open scenario run against a REAL kernel listener and
against tuntcp, with the same kernel clients, the same sysctls, and the same counters read back.

    sc = Scenario("overflow", backlog=2, sysctls={"net.ipv4.tcp_syncookies": 0},
                  steps=[("connect", 4)])
    kernel, ours = await run_parity(sc)
    assert compare(kernel, ours) == []

Both runs happen in a fresh lab each (one namespace + TUN), with the scenario's sysctls written
into the namespace *before* anything else: they govern the kernel listener and the kernel
clients alike, and the tuntcp profile gets the same values as knob overrides.

  (a) kernel: a listening socket made inside the namespace, bound to the lab's client address
      (198.18.0.1); the clients connect to it over the namespace's loopback path.
  (b) tuntcp: a Stack with the profile closest to the running kernel (``closest_profile``) on
      the lab's TUN; the clients connect to 198.18.1.1.

Steps (executed in order; every client gets a fixed index in ``Outcome.clients``):

  ("syn_flood", k)     k SYNs from unassigned 198.18.0.0/15 sources nobody answers for (raw
                       socket): they sit in the SYN queue as request socks (fills it for
                       "cookies on overflow").
  ("bogus_ack", k)     k bare ACKs with a made-up ACK number from unassigned sources (no
                       request sock matches: after a recent overflow they are checked as
                       cookies and fail; the RST goes nowhere).
  ("connect", k)       k clients, one after another; each is given SETTLE seconds to finish
                       its handshake, and one that did not is recorded as not connected and
                       closed (before its SYN would be retransmitted after 1 s, so each blocked
                       client costs exactly one SYN on both sides).
  ("connect_held", k)  like connect, but the client withholds its handshake-completing ACK
                       (TCP_DEFER_ACCEPT on the *connecting* socket makes Linux delay that ACK
                       to piggyback on data): the SYN-ACKs of all k are in before any ACK.
  ("release",)         every held client, in order, sends one byte: the completing ACK.
  ("send", i)          client i (None: every connected client, in order) sends one byte.
  ("accept", k)        the server accepts up to k queued connections (None: all there are).
  ("wait", secs)       let time pass (client retransmissions, SYN-ACK timers).
  ("listen", n)        listen(n) again on the listening socket: only the backlog changes.
  ("close",)           close the listener: unaccepted children are reset, requests vanish.

Which client got a SYN cookie: clients connect strictly one at a time and the namespace (resp.
the stack) is private to the run, so the SyncookiesSent delta around one client's SYN says
whether that SYN was answered with a cookie. The same rule is applied to both sides. (The
client's own view agrees when timestamps are off: a cookie connection has no wscale and no
SACK; tests check that too.)
"""
from __future__ import annotations

from .. import mib

import errno
import ipaddress
import os
import platform
import re
import select
import socket
from dataclasses import dataclass, field

import trio

from ..harness import kstat
from ..harness.clients import kernel_counters as ns_counters, peek_error, set_linger0, tcp_info
from ..harness.netns import Lab
from ..harness.raw import bare_ack, send_raw, spoofed_syn

PARITY_COUNTERS = (
    mib.TcpExtListenOverflows, mib.TcpExtListenDrops, mib.TcpExtSyncookiesSent,
    mib.TcpExtSyncookiesRecv, mib.TcpExtSyncookiesFailed, mib.TcpPassiveOpens,
    mib.TcpExtEmbryonicRsts, mib.TcpExtTCPReqQFullDoCookies, mib.TcpExtTCPReqQFullDrop,
    mib.TcpExtTCPDeferAcceptDrop,
)
SETTLE = 0.25          # < the client's 1 s SYN RTO: a dropped SYN is never retransmitted here
PROCESS = 0.03         # time for a packet already sent to be processed by the listener
PORT = 7400


DUAL = 46    # Scenario.family: a dual-stack lab, the listener AF_INET6 on ::, the clients IPv4


@dataclass
class Scenario:
    name: str
    backlog: int
    steps: list
    sysctls: dict = field(default_factory=dict)
    port: int = PORT
    defer_accept: int = 0     # TCP_DEFER_ACCEPT seconds on the listener
    family: int = 4           # the lab's address family (IPv6: 2001:2::/48); DUAL: a :: listener, IPv4 clients


@dataclass
class ClientResult:
    connected: bool = False   # connect() finished (the client saw the SYN-ACK)
    cookie: bool = False      # its SYN was answered with a SYN cookie
    accepted: bool = False    # the server's accept() returned it
    reset: bool = False       # the client saw ECONNRESET by the end
    wscale_ok: bool = False   # client's tcp_info at the end (False if not connected)
    sack: bool = False

    def row(self) -> tuple:
        return (self.connected, self.cookie, self.accepted, self.reset, self.wscale_ok, self.sack)


@dataclass
class Outcome:
    side: str
    counters: dict
    clients: list

    def table(self) -> str:
        rows = [f"{self.side}: " + " ".join(f"{k.removeprefix('TcpExt')}={v}"
                                            for k, v in self.counters.items())]
        for i, c in enumerate(self.clients):
            rows.append(f"  client {i}: connected={c.connected} cookie={c.cookie} "
                        f"accepted={c.accepted} reset={c.reset} wscale={c.wscale_ok} sack={c.sack}")
        return "\n".join(rows)


def closest_profile(release: str | None = None) -> str:
    """The linux-X.Y profile with the highest version not above the running kernel's."""
    from ..profiles import names
    release = release or platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    have = (int(m[1]), int(m[2]))
    best = None
    for name in names():
        pm = re.fullmatch(r"linux-(\d+)\.(\d+)", name)
        if pm and (v := (int(pm[1]), int(pm[2]))) <= have and (best is None or v > best[0]):
            best = (v, name)
    if best is None:
        raise ValueError(f"no linux profile at or below {release}")
    return best[1]


def profile_overrides(sysctls: dict) -> list[str]:
    """The scenario's namespace sysctls as profile knob overrides (``name=value``)."""
    out = []
    for k, v in sysctls.items():
        if isinstance(v, (tuple, list)):
            v = " ".join(str(x) for x in v)
        out.append(f"{k}={v}")
    return out


# ---- the two servers ------------------------------------------------------------------------

class _KernelServer:
    side = "kernel"

    def __init__(self, lab: Lab, sc: Scenario):
        self.lab = lab
        v6 = sc.family == 6
        self.addr = lab.client_addr4 if sc.family == DUAL else lab.client_addr
        # spoofed sources route into the TUN, which nobody reads in this run: no RST comes back
        self.spoof_base = "2001:2:0:1::200" if v6 else "198.18.1.200"
        s = lab.socket_in_ns()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if sc.family == DUAL else self.addr, sc.port))    # dual: AF_INET6 on ::
        if sc.defer_accept:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, sc.defer_accept)
        s.listen(sc.backlog)
        s.setblocking(False)
        self.sock = s
        self.children = []

    def counters(self) -> dict:
        return ns_counters(self.lab)

    def totals(self) -> dict:
        return kstat.kernel_counters(self.lab.ns_name)

    def accept_one(self) -> int | None:
        try:
            child, peer = self.sock.accept()
        except BlockingIOError:
            return None
        self.children.append(child)
        return peer[1]

    def relisten(self, n: int) -> None:
        self.sock.listen(n)

    def close(self) -> None:
        self.sock.close()

    async def settle(self) -> None:
        await trio.sleep(PROCESS)


class _TuntcpServer:
    side = "tuntcp"

    def __init__(self, lab: Lab, sc: Scenario, profile: str, nursery):
        from ..host.stack import Stack
        from ..profiles import get_profile
        from ..shell import Endpoint
        self.lab = lab
        self.addr = lab.endpoint_addr4 if sc.family == DUAL else lab.endpoint_addr
        # a SYN-ACK to 198.18.0.x re-enters the namespace and is dropped (forwarding is off)
        self.spoof_base = "2001:2::200" if sc.family == 6 else "198.18.0.200"
        self.stack = Stack(get_profile(profile, profile_overrides(sc.sysctls)),
                           addrs=lab.endpoint_ips, secret=os.urandom(16))
        self.ep = Endpoint(self.stack, lab.tun_fd)
        nursery.start_soon(self.ep.run)
        self.listener = self.stack.listen(sc.port, sc.backlog, defer_accept=sc.defer_accept,
                                          family=6 if sc.family == DUAL else None)

    def counters(self) -> dict:
        return dict(self.stack.counters)

    totals = counters

    def accept_one(self) -> int | None:
        conn = self.listener.accept()
        if conn is None:
            return None
        self.ep.kick()
        return conn.rport

    def relisten(self, n: int) -> None:
        self.listener.relisten(n)

    def close(self) -> None:
        self.listener.close(self.ep.now())
        self.ep.kick()

    async def settle(self) -> None:
        await trio.sleep(PROCESS)
        # whatever the clients sent is in the TUN; wait until the endpoint loop has read it
        for _ in range(100):
            if not select.select([self.lab.tun_fd], [], [], 0)[0]:
                break
            await trio.sleep(0.01)
        await trio.sleep(0)


# ---- the script -----------------------------------------------------------------------------

def _delta(after: dict, before: dict, name: str) -> int:
    return after.get(name, 0) - before.get(name, 0)


async def _connect(lab, srv, sc, held: bool):
    s = lab.socket_in_ns(socket.AF_INET if sc.family == DUAL else None)
    s.setblocking(False)
    if held:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    before = srv.counters()
    err = s.connect_ex((srv.addr, sc.port))
    res = ClientResult()
    if err not in (0, errno.EINPROGRESS):
        raise OSError(err, f"connect: {os.strerror(err)}")
    with trio.move_on_after(SETTLE):
        await trio.lowlevel.wait_writable(s)
        res.connected = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    await srv.settle()
    res.cookie = _delta(srv.counters(), before, mib.TcpExtSyncookiesSent) > 0
    if not res.connected:
        set_linger0(s)     # still SYN-SENT: close quietly, before its SYN is retransmitted
        s.close()
        return None, res
    return s, res


async def run_side(lab: Lab, srv, sc: Scenario) -> Outcome:
    socks: list = []
    results: list[ClientResult] = []
    held: list = []
    by_port: dict[int, int] = {}
    nspoof = 0
    start = srv.totals()
    for step in sc.steps:
        op = step[0]
        if op in ("syn_flood", "bogus_ack"):
            _raw_burst(lab, srv, sc, op, step[1], nspoof)
            nspoof += step[1] if op == "syn_flood" else 0
            await srv.settle()
        elif op in ("connect", "connect_held"):
            for _ in range(step[1]):
                s, res = await _connect(lab, srv, sc, op == "connect_held")
                if s is not None:
                    by_port[s.getsockname()[1]] = len(results)
                    if op == "connect_held":
                        held.append(s)
                socks.append(s)
                results.append(res)
        elif op == "release":
            await _poke(srv, held)
            held = []
        elif op == "send":
            await _poke(srv, [s for i, s in enumerate(socks) if s is not None and step[1] in (None, i)])
        elif op == "accept":
            await _accept(srv, step[1] if len(step) > 1 else None, results, by_port)
        elif op == "listen":
            srv.relisten(step[1])
        elif op == "close":
            srv.close()
            await srv.settle()
        elif op == "wait":
            await trio.sleep(step[1])
            await srv.settle()
        else:
            raise ValueError(f"unknown scenario step {step!r}")
    await srv.settle()
    return _outcome(srv, start, socks, results)


def _raw_burst(lab: Lab, srv, sc: Scenario, op: str, n: int, nspoof: int) -> None:
    """``n`` spoofed SYNs (fresh sources after the ``nspoof`` already used) or bare ACKs."""
    base = ipaddress.ip_address(srv.spoof_base)      # either family
    if op == "syn_flood":
        pkts = [spoofed_syn(str(base + nspoof + i), srv.addr, 40000 + nspoof + i, sc.port)
                for i in range(n)]
    else:
        pkts = [bare_ack(str(base + 50 + i), srv.addr, 41000 + i, sc.port) for i in range(n)]
    send_raw(lab, pkts, srv.addr)


async def _poke(srv, socks: list) -> None:
    """One byte from each client (a held one completes its handshake with it)."""
    for s in socks:
        try:
            s.send(b"!")
        except OSError:
            pass
        await srv.settle()


async def _accept(srv, n: int | None, results: list, by_port: dict) -> None:
    """accept() ``n`` connections (None: all queued), marking the clients accepted."""
    while n is None or n > 0:
        port = srv.accept_one()
        if port is None:
            break
        if port in by_port:
            results[by_port[port]].accepted = True
        if n is not None:
            n -= 1
    await srv.settle()


def _outcome(srv, start: dict, socks: list, results: list) -> Outcome:
    for s, res in zip(socks, results):
        if s is None:
            continue
        res.reset = peek_error(s) == errno.ECONNRESET
        info = tcp_info(s)
        res.wscale_ok, res.sack = info["wscale_ok"], info["sack"]
    end = srv.totals()
    counters = {k: _delta(end, start, k) for k in PARITY_COUNTERS}
    for s in socks:
        if s is not None:
            set_linger0(s)
            s.close()
    return Outcome(srv.side, counters, results)


def _lab(sc: Scenario) -> Lab:
    lab = Lab(family=4 if sc.family == 4 else 6, dual=sc.family == DUAL)
    try:
        lab.sysctl("net.ipv4.conf.all.forwarding", 0)
        for k, v in sc.sysctls.items():
            lab.sysctl(k, v)
    except BaseException:
        lab.close()
        raise
    return lab


async def run_kernel(sc: Scenario) -> Outcome:
    with _lab(sc) as lab:
        srv = _KernelServer(lab, sc)
        try:
            return await run_side(lab, srv, sc)
        finally:
            for child in srv.children:      # accepted sockets are not tracked by the lab
                child.close()
            srv.sock.close()


async def run_tuntcp(sc: Scenario, profile: str | None = None) -> Outcome:
    profile = profile or closest_profile()
    with _lab(sc) as lab:
        async with trio.open_nursery() as nursery:
            out = await run_side(lab, _TuntcpServer(lab, sc, profile, nursery), sc)
            nursery.cancel_scope.cancel()
    return out


async def run_parity(sc: Scenario, profile: str | None = None) -> tuple[Outcome, Outcome]:
    """Run ``sc`` on the kernel, then on tuntcp; returns (kernel, tuntcp) outcomes."""
    return await run_kernel(sc), await run_tuntcp(sc, profile)


def compare(kernel: Outcome, ours: Outcome) -> list[str]:
    """Differences as readable lines; [] when the two runs agree on every compared fact."""
    diffs = [f"{k}: kernel {kernel.counters[k]} tuntcp {ours.counters[k]}"
             for k in PARITY_COUNTERS if kernel.counters[k] != ours.counters[k]]
    names = ("connected", "cookie", "accepted", "reset", "wscale_ok", "sack")
    for i, (a, b) in enumerate(zip(kernel.clients, ours.clients)):
        for n, x, y in zip(names, a.row(), b.row()):
            if x != y:
                diffs.append(f"client {i} {n}: kernel {x} tuntcp {y}")
    return diffs


# ---- SYN-ACK retransmission schedule, kernel vs tuntcp --------------------------------------

@dataclass
class SynackSchedule:
    side: str
    times: list          # seconds after the SYN was sent, one per SYN-ACK seen
    held_before: int     # request socks just before the expected expiry
    held_after: int      # ... and just after it
    counters: dict


def _syn_recv_count(lab: Lab) -> int:
    """Request socks of the namespace's kernel listeners (``ss -tn state syn-recv``)."""
    p = lab.run_in_ns(["ss", "-Htn", "state", "syn-recv"], stdout=-1, text=True)
    return len([ln for ln in p.communicate(timeout=5)[0].splitlines() if ln.strip()])


async def _watch_synacks(fd: int, t0: float, times: list, ours: int) -> None:
    from ..wire import codec
    from ..wire.segment import ACK, SYN
    while True:
        await trio.lowlevel.wait_readable(fd)
        now = trio.current_time()
        while True:
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                break
            seg = codec.parse(pkt, verify=False)
            if seg.flags == SYN | ACK and seg.saddr == ours:
                times.append(now - t0)


async def synack_schedules(retries: int, expiry: float, *, port: int = PORT + 1,
                           margin: float = 0.4, profile: str | None = None) -> dict:
    """One SYN from an address nobody owns to a kernel listener and to tuntcp, both with
    tcp_synack_retries=``retries``, sent at the same moment (both labs are built first, so
    neither side's setup delays the other's clock); returns {"kernel": SynackSchedule,
    "tuntcp": SynackSchedule}: when SYN-ACKs came back and whether the request sock outlives
    ``expiry`` seconds.

    kernel: listener on 198.18.0.1, spoofed source 198.18.1.99: its SYN-ACKs leave through its
    lab's TUN, where they are read and timestamped (nobody answers, so no RST).
    tuntcp: the endpoint on the other lab's TUN, spoofed source 198.18.0.99: SYN-ACKs are
    timestamped as the endpoint writes them (the namespace drops them: forwarding is off).
    """
    from ..wire import codec
    sc = Scenario("synack", 16, [], {"net.ipv4.tcp_synack_retries": retries}, port=port)
    ktimes: list = []
    ttimes: list = []
    with _lab(sc) as klab, _lab(sc) as tlab:
        async with trio.open_nursery() as nursery:
            ksrv = _KernelServer(klab, sc)
            tsrv = _TuntcpServer(tlab, sc, profile or closest_profile(), nursery)
            write = tsrv.ep.io.write

            def tap(pkt):
                seg = codec.parse(pkt, verify=False)
                if seg.flags == 0x12 and seg.saddr == tlab.endpoint_ip:   # SYN|ACK
                    ttimes.append(trio.current_time() - t0)
                return write(pkt)
            tsrv.ep.io.write = tap
            await trio.sleep(0.05)                       # the endpoint loop is up
            kbefore, tbefore = ksrv.totals(), tsrv.totals()
            t0 = trio.current_time()
            nursery.start_soon(_watch_synacks, klab.tun_fd, t0, ktimes, codec.ip_int(ksrv.addr))
            send_raw(klab, [spoofed_syn("198.18.1.99", ksrv.addr, 42000, sc.port)], ksrv.addr)
            send_raw(tlab, [spoofed_syn("198.18.0.99", tsrv.addr, 42000, sc.port)], tsrv.addr)
            await trio.sleep_until(t0 + expiry - margin)
            held_before = (_syn_recv_count(klab), tsrv.listener.queue_lengths()["syn"])
            await trio.sleep_until(t0 + expiry + margin)
            held_after = (_syn_recv_count(klab), tsrv.listener.queue_lengths()["syn"])
            kafter, tafter = ksrv.totals(), tsrv.totals()
            nursery.cancel_scope.cancel()
    names = (mib.TcpExtTCPTimeouts, mib.TcpExtTCPSynRetrans, mib.TcpRetransSegs)
    return {
        "kernel": SynackSchedule("kernel", ktimes, held_before[0], held_after[0],
                                 {k: _delta(kafter, kbefore, k) for k in names}),
        "tuntcp": SynackSchedule("tuntcp", ttimes, held_before[1], held_after[1],
                                 {k: _delta(tafter, tbefore, k) for k in names}),
    }
