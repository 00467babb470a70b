"""Linux TCP_DEFER_ACCEPT, and what SYN cookies do to it, with real kernel clients.

The endpoint listens with ``defer_accept`` seconds (``setsockopt(TCP_DEFER_ACCEPT)``, turned
into SYN-ACK rounds by ``secs_to_retrans``: 3 s -> 2 rounds). Three kinds of kernel client
connect, one of each per mode:

  bare   connects and sends nothing
  data   connects and sends a request at once
  late   connects and sends a request after ``late_s`` seconds

Mode "queue" (tcp_syncookies=1, unloaded queue): ``tcp_check_req`` swallows the bare ACK
(TcpExtTCPDeferAcceptDrop) and keeps the request sock; a segment with data creates the child at
once; the bare client is accepted only when the defer rounds are over, after the SYN-ACK
retransmitted at the end of them makes it ACK again (reference §6.2, ``syn_ack_recalc``).
Mode "cookies" (tcp_syncookies=2): ``cookie_v4_check`` has no defer logic, so the bare cookie
ACK creates and queues the child immediately (reference §2.5): the defer is bypassed.

With ``kernel`` (default) the same three clients then run against a KERNEL listener with
TCP_DEFER_ACCEPT inside a namespace with the same tcp_syncookies: the host's own answer, for
comparison (no pcap there; its counters come from the namespace MIB).

report.json keys:
  scenario, config
  headline     {queue: {bare_s, data_s, late_s, defer_drops, synacks_to_bare, syncookies_recv,
                kernel: {bare_s, data_s, late_s, defer_drops, synack_retrans, syncookies_recv}},
                cookies: {...same...}, defer_rounds, summary}
               *_s = seconds from the client's connect() returning to our accept()
  modes        {queue|cookies: {clients: [{kind, port, connected_s, accepted_s, accept_delay_s,
                bytes_at_accept, synacks, synack_times_s, client_state}], counters: {...},
                kernel: {clients: [...], counters: namespace MIB deltas}}}
  counters     {queue: nstat-named deltas, cookies: ...}
  artifacts    {pcap: {mode: path}, markdown}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import errno
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from tuntcp.scenarios.cli_common import out_option, scenario_main, time_option
from tuntcp.scenarios.report import write_report
from tuntcp.scenarios.rig import begin, family_of, family_option, file_saturation, side_by_side
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.reverse_check import read_pcap

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 8090
KINDS = ("bare", "data", "late")
MODES = {"queue": 1, "cookies": 2}      # mode -> net.ipv4.tcp_syncookies of the profile
REQUEST = b"PING\r\n"


class DeferAcceptError(UserError, ValueError):
    """A user mistake in the defer_accept scenario's knobs."""


@dataclass
class Config:
    defer_s: int = 3               # TCP_DEFER_ACCEPT seconds
    late_s: float = 1.0            # when the "late" client sends its request
    profile: str = "linux-6.1"
    modes: tuple[str, ...] = ("queue", "cookies")
    family: int = 4                # the lab's address family (--family)
    timeout_s: float = 40.0
    out: str = "out/defer_accept"
    pcap: bool = True
    kernel: bool = True            # also run the clients against a kernel listener (reference)

    def check(self) -> None:
        if not 1 <= self.defer_s <= 60:
            raise DeferAcceptError("--defer-s must be 1..60 seconds")
        if not 0 < self.late_s < 60:
            raise DeferAcceptError("--late-s must be in (0, 60) seconds")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise DeferAcceptError(f"--modes takes queue and/or cookies, got {','.join(self.modes)}")
        if self.timeout_s <= 0:
            raise DeferAcceptError("--timeout-s must be > 0")


async def run_mode(cfg: Config, mode: str, outdir: Path, show) -> dict:
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    profile = get_profile(cfg.profile, [f"net.ipv4.tcp_syncookies={MODES[mode]}"])
    pcap_path = outdir / f"defer-{mode}.pcap"
    clients: dict[int, dict] = {}
    socks: dict = {}

    def too_slow():
        return DeferAcceptError(f"{mode}: not every client was accepted within --timeout-s "
                                f"{cfg.timeout_s} s")

    async with rig_endpoint(profile, lab=dict(family=cfg.family), pcap=pcap_path if cfg.pcap else None,
                            timeout=cfg.timeout_s,
                            too_slow=too_slow) as rig:
        lst = await open_tcp_listener(rig.ep, PORT, 16, defer_accept=cfg.defer_s)
        t0 = trio.current_time()

        async def acceptor():
            while True:
                s = await lst.accept()
                rec = clients.get(s.conn.rport)
                if rec is not None:
                    rec["accepted_s"] = trio.current_time() - t0
                    rec["bytes_at_accept"] = s.conn.readable()
        rig.nursery.start_soon(acceptor)

        show(f"{mode}: clients connecting (defer {cfg.defer_s} s)")
        await drive_clients(cfg, rig.lab, rig.lab.endpoint_addr, clients, socks, t0, rig.nursery)
    if cfg.pcap:
        synack_times(read_pcap(pcap_path), clients, t0_wall=None)
    return {"clients": _finish(clients), "counters": rig.counters,
            "defer_rounds": lst.listener.defer_rounds,
            "pcap": str(pcap_path) if cfg.pcap else None, "saturation": rig.saturation}


async def drive_clients(cfg: Config, lab, addr: str, clients: dict, socks: dict, t0: float,
                        nursery) -> None:
    """One client of each kind, 50 ms apart (an unloaded queue); returns when all were
    accepted (the caller's acceptor fills ``accepted_s``)."""
    from tuntcp.harness.clients import tcp_info

    async def client(kind):
        raw = lab.socket_in_ns()
        raw.setblocking(False)
        err = raw.connect_ex((addr, PORT))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        port = raw.getsockname()[1]
        rec = {"kind": kind, "port": port, "accepted_s": None}
        clients[port] = rec
        socks[port] = raw
        await trio.lowlevel.wait_writable(raw)
        rec["connected_s"] = trio.current_time() - t0
        if kind == "late":
            await trio.sleep(cfg.late_s)
        if kind in ("data", "late"):
            raw.send(REQUEST)
            rec["sent_s"] = trio.current_time() - t0
    for kind in KINDS:
        nursery.start_soon(client, kind)
        await trio.sleep(0.05)
    while len(clients) < len(KINDS) or any(c["accepted_s"] is None for c in clients.values()):
        await trio.sleep(0.02)
    await trio.sleep(0.05)
    for port, rec in clients.items():
        rec["client_state"] = tcp_info(socks[port])["state"]


def _finish(clients: dict) -> list[dict]:
    for rec in clients.values():
        # accept() may run before the client task sees its connect finish: clamp at 0
        rec["accept_delay_s"] = round(max(0.0, rec["accepted_s"] - rec["connected_s"]), 4)
        for k in ("connected_s", "accepted_s", "sent_s"):
            if k in rec:
                rec[k] = round(rec[k], 4)
    return sorted(clients.values(), key=lambda c: KINDS.index(c["kind"]))


async def run_kernel_mode(cfg: Config, mode: str) -> dict:
    """The reference: the same clients against a KERNEL listener with TCP_DEFER_ACCEPT inside
    the namespace (the namespace's own tcp_syncookies), its counters from the namespace MIB."""
    import fcntl
    import socket
    import termios

    from tuntcp.harness.clients import kernel_counters
    from tuntcp.harness.netns import Lab

    with Lab(sysctls={"net.ipv4.tcp_syncookies": MODES[mode]}, family=cfg.family) as lab:
        ls = lab.socket_in_ns()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, cfg.defer_s)
        ls.bind((lab.client_addr, PORT))
        ls.listen(16)
        ls.setblocking(False)
        lt = trio.socket.from_stdlib_socket(ls)
        clients: dict[int, dict] = {}
        socks: dict = {}
        before = kernel_counters(lab)
        try:
            with trio.fail_after(cfg.timeout_s):
                async with trio.open_nursery() as nursery:
                    t0 = trio.current_time()

                    async def acceptor():
                        while True:
                            s, peer = await lt.accept()
                            rec = clients.get(peer[1])
                            if rec is not None:
                                rec["accepted_s"] = trio.current_time() - t0
                                n = fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0")
                                rec["bytes_at_accept"] = int.from_bytes(n, "little")
                    nursery.start_soon(acceptor)
                    await drive_clients(cfg, lab, lab.client_addr, clients, socks, t0, nursery)
                    nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            raise DeferAcceptError(f"kernel {mode}: not every client was accepted within "
                                   f"--timeout-s {cfg.timeout_s} s") from None
        after = kernel_counters(lab)
    counters = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return {"clients": _finish(clients), "counters": counters}


def synack_times(pkts: list, clients: dict, t0_wall) -> None:
    """Per client: SYN-ACKs we sent it, and their times relative to its SYN (from the pcap)."""
    from tuntcp.wire.segment import ACK, SYN
    syn_t: dict[int, float] = {}
    for t, s in pkts:
        if s.flags == SYN and s.sport in clients:
            syn_t.setdefault(s.sport, t)
        elif s.flags & (SYN | ACK) == SYN | ACK and s.dport in clients:
            rec = clients[s.dport]
            rec.setdefault("synack_times_s", []).append(round(t - syn_t.get(s.dport, t), 3))
    for rec in clients.values():
        rec["synacks"] = len(rec.get("synack_times_s", []))


def headline_of(modes: dict, cfg: Config) -> dict:
    h: dict = {}
    for mode, r in modes.items():
        by = {c["kind"]: c for c in r["clients"]}
        h[mode] = {f"{k}_s": by[k]["accept_delay_s"] for k in KINDS}
        h[mode]["defer_drops"] = r["counters"].get(mib.TcpExtTCPDeferAcceptDrop, 0)
        h[mode]["synacks_to_bare"] = by["bare"].get("synacks")
        h[mode]["syncookies_recv"] = r["counters"].get(mib.TcpExtSyncookiesRecv, 0)
        h["defer_rounds"] = r["defer_rounds"]
        k = r.get("kernel")
        if k:
            kby = {c["kind"]: c for c in k["clients"]}
            kc = k["counters"]
            h[mode]["kernel"] = {**{f"{x}_s": kby[x]["accept_delay_s"] for x in KINDS},
                                 "defer_drops": kc.get(mib.TcpExtTCPDeferAcceptDrop, 0),
                                 "synack_retrans": kc.get(mib.TcpExtTCPSynRetrans, 0),
                                 "syncookies_recv": kc.get(mib.TcpExtSyncookiesRecv, 0)}
    parts = []
    for mode in modes:
        m = h[mode]
        parts.append(f"{mode}: bare accepted after {m['bare_s']:.2f} s, data after "
                     f"{m['data_s']:.2f} s, late after {m['late_s']:.2f} s, "
                     f"TCPDeferAcceptDrop {m['defer_drops']}" + (
                         f" (kernel listener: bare {m['kernel']['bare_s']:.2f} s, "
                         f"TCPDeferAcceptDrop {m['kernel']['defer_drops']})" if "kernel" in m else ""))
    h["summary"] = f"TCP_DEFER_ACCEPT {cfg.defer_s} s ({h.get('defer_rounds')} rounds); " + \
        "; ".join(parts)
    return h


async def run(cfg: Config, show=None) -> dict:
    outdir = begin(cfg)
    show = show or (lambda *a: None)

    async def one(mode):
        r = await run_mode(cfg, mode, outdir, show)
        if cfg.kernel:
            r["kernel"] = await run_kernel_mode(cfg, mode)
        return r
    modes = await side_by_side(cfg.modes, one)       # one lab each
    conf = asdict(cfg)
    conf["modes"] = list(cfg.modes)
    report = {"scenario": "defer_accept", "config": conf, "headline": headline_of(modes, cfg),
              "modes": modes, "counters": {m: r["counters"] for m, r in modes.items()},
              "artifacts": {"pcap": {m: r["pcap"] for m, r in modes.items()}}}
    file_saturation(report, modes)
    return write_report(report, outdir, render_markdown)


def table(report: dict) -> list[str]:
    modes = report["modes"]
    rows = [f"{'mode':<9}{'client':<7}{'accept delay s':>15}{'bytes at accept':>17}"
            f"{'SYN-ACKs':>10}  SYN-ACK times (s)"]
    for mode, r in modes.items():
        for c in r["clients"]:
            rows.append(f"{mode:<9}{c['kind']:<7}{c['accept_delay_s']:>15.3f}"
                        f"{c['bytes_at_accept']:>17}{c.get('synacks', '-'):>10}  "
                        f"{c.get('synack_times_s', '-')}")
    for mode, r in modes.items():
        for c in r.get("kernel", {}).get("clients", []):
            rows.append(f"{mode:<9}{c['kind']:<7}{c['accept_delay_s']:>15.3f}"
                        f"{c['bytes_at_accept']:>17}{'-':>10}  (kernel listener)")
    for mode, r in modes.items():
        cnt = r["counters"]
        rows.append(f"{mode} counters: " + ", ".join(
            f"{k}={cnt.get(k, 0)}" for k in (mib.TcpExtTCPDeferAcceptDrop, mib.TcpExtTCPSynRetrans,
                                             mib.TcpExtTCPTimeouts, mib.TcpExtSyncookiesSent,
                                             mib.TcpExtSyncookiesRecv, mib.TcpPassiveOpens)))
        if "kernel" in r:
            kc = r["kernel"]["counters"]
            rows.append(f"{mode} kernel listener counters: " + ", ".join(
                f"{k}={kc.get(k, 0)}" for k in (mib.TcpExtTCPDeferAcceptDrop, mib.TcpExtTCPSynRetrans,
                                                mib.TcpExtSyncookiesSent, mib.TcpExtSyncookiesRecv)))
    return rows


def render_markdown(report: dict) -> str:
    h = report["headline"]
    out = ["# defer_accept: TCP_DEFER_ACCEPT with and without SYN cookies", "",
           f"**{h['summary']}**", "", "```"] + table(report) + ["```", ""]
    return "\n".join(out)


# ---- CLI -------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    time_option(p, "--defer-s", old="--defer", dest="defer_s", default=d.defer_s, integer=True,
                help="TCP_DEFER_ACCEPT on the endpoint's listener (whole seconds)")
    time_option(p, "--late-s", old="--late", dest="late_s", default=d.late_s,
                help="delay before the 'late' client sends its request")
    p.add_argument("--profile", default=d.profile, help="the endpoint's Linux profile")
    p.add_argument("--modes", default=",".join(d.modes), help="queue,cookies or one of them")
    family_option(p)
    time_option(p, "--timeout-s", old="--timeout", default=d.timeout_s, help="limit per mode")
    out_option(p, d.out)
    p.add_argument("--no-pcap", dest="pcap", action="store_false", help="write no pcaps")
    p.add_argument("--no-kernel", dest="kernel", action="store_false",
                   help="skip the reference run against a kernel listener")


def main(args) -> int:
    from tuntcp.profiles import get_profile
    cfg = Config(defer_s=args.defer_s, late_s=args.late_s, profile=args.profile,
                 modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
                 family=family_of(args), timeout_s=args.timeout_s, out=args.out, pcap=args.pcap,
                 kernel=args.kernel)

    def check():
        if get_profile(cfg.profile).family != "linux":
            raise DeferAcceptError("TCP_DEFER_ACCEPT is Linux-only; pick a linux-* profile "
                                   "(FreeBSD: tuntcp freebsd-queue, accept filters)")

    return scenario_main("defer-accept", cfg, run, check=check,
                         summary=lambda r: "\n".join(table(r)) + "\n" + r["headline"]["summary"])
