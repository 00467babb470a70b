"""The fluentd log server that logged "Possible SYN flooding on port 24224" with no attack.

Seed 001 (Qiita, 2016): hundreds of fluentd forwarders with ``heartbeat_interval 1s`` connect to
``in_forward`` (port 24224) and close again every second. Their heartbeats fire together (the
forwarders were started together), so each second a burst of SYNs arrives within ``spread_ms``;
over a ``rtt_ms`` path every one of them is a request sock (SYN-RECV) for about one RTT. With
in_forward's backlog 128 and ``net.core.somaxconn`` 128 (pre-5.4 default) the SYN queue is full at
128 (``inet_csk_reqsk_queue_is_full``), ``tcp_syn_flood_action`` prints the line once and the rest
of the burst gets SYN cookies (or, with ``tcp_syncookies=0``, is dropped and the forwarders
retransmit their SYN a second later). The fix from the seed - backlog, somaxconn and
tcp_max_syn_backlog all 65535 - lets the whole burst sit in the SYN queue: no line, same load.
The seed's earlier try, ``backlog 2048`` on in_forward alone (setting ``2048@128/1``), changes
nothing: ``listen()`` clamps it to somaxconn 128 (``__sys_listen``).

The endpoint runs a pre-6.2 Linux profile (default linux-4.9) so the line has the old format
``request_sock_TCP: Possible SYN flooding on port 24224. Sending cookies.  Check SNMP counters.``
The forwarders are real kernel sockets spread over ``hosts`` source addresses.

SYN-RECV is counted the way the operator did it, from /proc/net/tcp: ``proc_net_tcp()`` renders
the listener and its request socks as ``get_tcp4_sock``/``get_openreq4`` print them (port 24224 =
hex 5EA0, state ``st`` 03 = SYN_RECV) and ``count_syn_recv()`` counts the lines with local port
5EA0 and st 03. It is sampled every ``sample_ms`` during the run; the maximum is reported.

report.json keys:
  scenario, config
  headline: {setting: {"flood_line_printed", "flood_line", "max_syn_recv", "syn_queue_max",
             "ListenOverflows", "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop",
             "SyncookiesSent", "connect_ms": {p50, p99, max, n}, "failed"}}
  counters: {setting: endpoint MIB deltas (nstat names)}
  runs: {setting: {"backlog", "somaxconn", "tcp_max_syn_backlog", "tcp_syncookies",
         "kernel_log": [lines], "proc_net_tcp_at_peak": text (the sample with most SYN-RECV),
         "syn_recv_samples": [[t, count], ...], "connect_ms_by_round": [percentiles, ...],
         "heartbeats": n, "failures": {error: n}}}
  (setting names: "backlog=128 cookies=1", "backlog=2048 somaxconn=128 cookies=1",
   "backlog=128 cookies=0", "backlog=65535 cookies=1", ...; "backlog" in runs is the listener's
   after the somaxconn clamp)
"""
from __future__ import annotations

from tuntcp.errors import UserError

import argparse
import errno
import random
from dataclasses import asdict, dataclass, field

import trio

from tuntcp.scenarios.cli_common import out_option, progress, quiet_option, scenario_main, sysctl_option, time_option
from tuntcp.scenarios.rig import begin, client_linear_timeouts, collect, family_of, family_option
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import percentiles, write_report
from tuntcp.obs.ss import default_local
from tuntcp.shell.apps import discard, guarded

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 24224
TCP_SYN_RECV = 0x03
TCP_LISTEN = 0x0A
USER_HZ = 100          # /proc/net/tcp prints timers in clock_t


class FluentdError(UserError, ValueError):
    """A user mistake in the scenario's knobs."""


@dataclass
class Config:
    forwarders: int = 300
    hosts: int = 100                  # source addresses the forwarders are spread over
    rounds: int = 4                   # heartbeats per forwarder (one per second)
    spread_ms: float = 20.0           # a round's heartbeats all fire within this window
    rtt_ms: float = 40.0              # forwarder <-> log server (through the ELB, in the seed);
                                      # applied on the server -> forwarder path only, so arriving
                                      # packets keep the endpoint's per-pass budget below
    batch: int = 1                    # packets per endpoint pass: in_forward gets to accept()
                                      # between passes, as it would on its own core; with larger
                                      # passes (4: ~190 per 900 heartbeats) the single acceptor
                                      # task falls behind and ListenOverflows counts our
                                      # scheduling, not the SYN queue the seed is about
    profile: str = "linux-4.9"        # pre-6.2: the old line format; somaxconn 128
    small_backlog: int = 128          # in_forward's backlog and somaxconn before the fix
    fixed: int = 65535                # backlog, somaxconn, tcp_max_syn_backlog after the fix
    settings: tuple[str, ...] = ("128/1", "2048@128/1", "128/0", "65535/1", "65535/0")
                                      # BACKLOG[@SOMAXCONN]/SYNCOOKIES, see Config.knobs
    connect_timeout_s: float = 8.0
    client_syn_linear_timeouts: int | None = 0   # forwarders' kernels of 2016: 1, 3, 7 s SYN rtx
    sample_ms: float = 5.0
    seed: int = 1
    sysctl: list[str] = field(default_factory=list)
    family: int = 4                 # the lab's address family (--family; IPv6: /proc/net/tcp6)
    out: str = "out/fluentd"

    def check(self) -> None:
        if not 1 <= self.forwarders <= 5000:
            raise FluentdError("--forwarders must be 1..5000")
        if not 1 <= self.hosts <= 4000:
            raise FluentdError("--hosts must be 1..4000")
        if not 1 <= self.rounds <= 60:
            raise FluentdError("--rounds must be 1..60")
        if not 0 < self.spread_ms < 1000 or self.rtt_ms < 0 or self.sample_ms <= 0:
            raise FluentdError("--spread-ms must be in (0, 1000), --rtt-ms >= 0, --sample-ms > 0")
        if self.connect_timeout_s <= 0 or self.batch < 1:
            raise FluentdError("--connect-timeout-s must be > 0 and --batch >= 1")
        for s in self.settings:
            self.parse_setting(s)
        from tuntcp.profiles import ProfileError, get_profile
        try:
            p = get_profile(self.profile, self.sysctl)
        except ProfileError as e:
            raise FluentdError(str(e)) from None
        if p.family != "linux":
            raise FluentdError("fluentd needs a linux-* profile (the SYN-flooding line is Linux's)")

    def parse_setting(self, s: str) -> tuple[int, int | None, int]:
        """BACKLOG[@SOMAXCONN]/SYNCOOKIES -> (backlog, somaxconn or None, syncookies)."""
        try:
            b, c = s.split("/")
            b, _, m = b.partition("@")
            backlog, somaxconn, cookies = int(b), int(m) if m else None, int(c)
        except ValueError:
            raise FluentdError(f"a setting is BACKLOG[@SOMAXCONN]/SYNCOOKIES like 128/1 or "
                               f"2048@128/1, got {s!r}") from None
        if not 1 <= backlog <= 65535 or cookies not in (0, 1) or \
                (somaxconn is not None and not 1 <= somaxconn <= 65535):
            raise FluentdError(f"setting {s!r}: backlog and somaxconn 1..65535, syncookies 0 or 1")
        return backlog, somaxconn, cookies

    def knobs(self, backlog: int, somaxconn: int | None, cookies: int) -> list[str]:
        """The profile overrides of one setting. Without an explicit somaxconn, a backlog above
        ``small_backlog`` is the seed's fix: somaxconn and tcp_max_syn_backlog raised with it;
        with one (``2048@128``: the seed's first try, in_forward's backlog alone) only somaxconn
        is set and tcp_max_syn_backlog stays the profile's."""
        k = [*self.sysctl, f"net.ipv4.tcp_syncookies={cookies}"]
        if somaxconn is not None:
            k += [f"net.core.somaxconn={somaxconn}"]
        elif backlog > self.small_backlog:
            k += [f"net.core.somaxconn={backlog}", f"net.ipv4.tcp_max_syn_backlog={backlog}"]
        else:
            k += [f"net.core.somaxconn={self.small_backlog}"]
        return k


def setting_name(backlog: int, somaxconn: int | None, cookies: int) -> str:
    mid = f" somaxconn={somaxconn}" if somaxconn is not None else ""
    return f"backlog={backlog}{mid} cookies={cookies}"


# ---- /proc/net/tcp, the operator's way -----------------------------------------------------

def _hex_addr(ip: int, v6: bool = False) -> str:
    """An IPv4 address as /proc/net/tcp prints it: the network-order word read as a
    little-endian integer, %08X (198.18.1.1 -> 010112C6). ``v6``: as /proc/net/tcp6 prints
    it (``get_tcp6_sock``), its four 32-bit words each that way, an IPv4 address IPv4-mapped."""
    if not v6:
        return f"{int.from_bytes(ip.to_bytes(4, 'big'), 'little'):08X}"
    b = (ip | (0xFFFF << 32) if 0 < ip <= 0xFFFFFFFF else ip).to_bytes(16, "big")
    return "".join(f"{int.from_bytes(b[i:i + 4], 'little'):08X}" for i in range(0, 16, 4))


# /proc/net/tcp "st" column: the kernel's TCP state numbers (include/net/tcp_states.h)
ST = {"ESTABLISHED": 0x01, "SYN-SENT": 0x02, "SYN-RECV": 0x03, "FIN-WAIT-1": 0x04,
      "FIN-WAIT-2": 0x05, "TIME-WAIT": 0x06, "CLOSED": 0x07, "CLOSE-WAIT": 0x08,
      "LAST-ACK": 0x09, "LISTEN": 0x0A, "CLOSING": 0x0B}


def proc_net_tcp(stack, now: float, v6: bool = False) -> str:
    """/proc/net/tcp for the stack, in the kernel's order (listening hash, then the established
    hash): the LISTEN line (``get_tcp4_sock``: st 0A, rx_queue = accept-queue length), one line
    per request sock (``get_openreq4``: st 03, tx/rx 0, timer 1 = the SYN-ACK timer, tm->when
    in clock_t, retrnsmt = num_timeout, inode 0), then each connection (st from its state,
    rx_queue = unread bytes). Only the leading columns are printed; tx_queue of a connection,
    uid, inode and the socket pointer are not modelled (0). ``v6``: /proc/net/tcp6 (its header
    and 32-digit addresses), for an IPv6 lab."""
    def h(ip):
        return _hex_addr(ip, v6)
    lines = [("  sl  local_address                         remote_address                        st"
              if v6 else "  sl  local_address rem_address   st")
             + " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"]
    i = 0
    for lst in sorted(stack.listeners.values(), key=lambda l: (l.port, l.addr)):
        q = lst.queue_lengths()
        lines.append(f"{i:4d}: {h(lst.addr)}:{lst.port:04X} {h(0)}:0000 "
                     f"{TCP_LISTEN:02X} 00000000:{q.get('accept', 0):08X} 00:00000000 00000000"
                     f"     0        0 0 1 0000000000000000")
        i += 1
        for raddr, rport, num_timeout, _acked, expires in q.get("requests") or ():
            ttd = max(0, round((expires - now) * USER_HZ))
            lines.append(f"{i:4d}: {h(default_local(stack, lst, raddr))}:{lst.port:04X} {h(raddr)}:{rport:04X} "
                         f"{TCP_SYN_RECV:02X} 00000000:00000000 01:{ttd:08X} {num_timeout:08X}"
                         f"     0        0 0 0 0000000000000000")
            i += 1
    for c in sorted(stack.conns.values(), key=lambda c: c.key):
        laddr, lport, raddr, rport = c.key
        lines.append(f"{i:4d}: {h(laddr)}:{lport:04X} {h(raddr)}:{rport:04X} "
                     f"{ST.get(c.state, 0x07):02X} 00000000:{c.readable():08X} 00:00000000 00000000"
                     f"     0        0 0 1 0000000000000000")
        i += 1
    return "\n".join(lines) + "\n"


def count_syn_recv(text: str, port: int = PORT) -> int:
    """Lines of /proc/net/tcp text whose local port is ``port`` (hex) and state st is 03."""
    want = f"{port:04X}"
    n = 0
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) > 3 and cols[1].rsplit(":", 1)[-1] == want and cols[3] == "03":
            n += 1
    return n


# ---- forwarders and in_forward --------------------------------------------------------------

class Forwarder:
    def __init__(self, idx: int, src: str, phase: float):
        self.idx, self.src, self.phase = idx, src, phase
        self.connect_ms: list[list[float]] = []      # per round
        self.failures: dict[str, int] = {}

    async def heartbeat(self, raw, dst: str, at: float, rnd: int, timeout: float) -> None:
        """connect(), then close() at once: fluentd's TCP heartbeat."""
        await trio.sleep_until(at)
        s = trio.socket.from_stdlib_socket(raw)
        try:
            raw.bind((self.src, 0))
            t = trio.current_time()
            with trio.move_on_after(timeout) as scope:
                try:
                    await s.connect((dst, PORT))
                    self.connect_ms[rnd].append((trio.current_time() - t) * 1000.0)
                except OSError as e:
                    name = errno.errorcode.get(e.errno, str(e))
                    self.failures[name] = self.failures.get(name, 0) + 1
            if scope.cancelled_caught:
                self.failures["timeout"] = self.failures.get("timeout", 0) + 1
        finally:
            s.close()


async def run_setting(cfg: Config, backlog: int, somaxconn: int | None, cookies: int, show) -> dict:
    from tuntcp.harness.link import LinkModel
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    name = setting_name(backlog, somaxconn, cookies)
    rng = random.Random(cfg.seed)
    profile = get_profile(cfg.profile, cfg.knobs(backlog, somaxconn, cookies))

    def log(kind, **fields):
        if kind == "kernel_log":
            show(msg=f"[{name}] kernel: {fields.get('line', '')}")

    link_out = LinkModel(cfg.seed + 1, delay=cfg.rtt_ms / 1000.0) if cfg.rtt_ms else None
    samples: list[list[float]] = []
    peak = {"n": -1, "text": "", "syn": 0}
    async with rig_endpoint(profile, lab=dict(txqueuelen=max(20000, 4 * cfg.forwarders), family=cfg.family),
                            secret=rng.randbytes(16), log=log, link_out=link_out,
                            max_batch=cfg.batch) as rig:
        lab = rig.lab
        linear = client_linear_timeouts(lab, cfg.client_syn_linear_timeouts)
        srcs = lab.add_client_addrs(cfg.hosts)
        fwd = [Forwarder(i, srcs[i % len(srcs)], rng.uniform(0, cfg.spread_ms / 1000.0))
               for i in range(cfg.forwarders)]
        listener = await open_tcp_listener(rig.ep, PORT, backlog)
        lst = listener.listener
        # in_forward: accept, read until the heartbeat closes, close
        rig.nursery.start_soon(trio.serve_listeners, guarded(discard), [listener])
        t0 = trio.current_time() + 0.2
        done = trio.Event()
        rig.nursery.start_soon(sample_syn_recv, cfg, rig.stack, lst, t0, done, samples, peak)
        await heartbeats(cfg, lab, fwd, t0, name, show)
        await trio.sleep(0.3)            # the last FINs
        done.set()
    return setting_result(cfg, name, fwd, rig, peak, samples,
                          {"backlog": lst.backlog, "somaxconn": profile["net.core.somaxconn"],
                           "tcp_max_syn_backlog": profile["net.ipv4.tcp_max_syn_backlog"],
                           "tcp_syncookies": cookies, "client_tcp_syn_linear_timeouts": linear})


async def sample_syn_recv(cfg: Config, stack, lst, t0: float, done, samples: list, peak: dict):
    """Count SYN-RECV rows in /proc/net/tcp every ``sample_ms``, keeping the peak's text."""
    while not done.is_set():
        now = trio.current_time()
        text = proc_net_tcp(stack, now, cfg.family == 6)
        n = count_syn_recv(text)
        samples.append([round(now - t0, 4), n])
        if n > peak["n"]:
            peak.update(n=n, text=text)
        peak["syn"] = max(peak["syn"], lst.queue_lengths()["syn"])
        await trio.sleep(cfg.sample_ms / 1000.0)


async def heartbeats(cfg: Config, lab, fwd: list, t0: float, name: str, show) -> None:
    """``cfg.rounds`` rounds, one second apart: every forwarder connects and closes once."""
    async with trio.open_nursery() as hb:
        for r in range(cfg.rounds):
            await trio.sleep_until(t0 + r - 0.1)
            socks = lab.sockets_in_ns(len(fwd))
            for f, raw in zip(fwd, socks):
                f.connect_ms.append([])
                hb.start_soon(f.heartbeat, raw, lab.endpoint_addr, t0 + r + f.phase, r,
                              cfg.connect_timeout_s)
            show(msg=f"[{name}] heartbeat round {r + 1}/{cfg.rounds}")


def setting_result(cfg: Config, name: str, fwd: list, rig, peak: dict, samples: list,
                   setting: dict) -> dict:
    counters, kernel_log = rig.counters, rig.kernel_log
    all_ms = [x for f in fwd for rnd in f.connect_ms for x in rnd]
    failures: dict[str, int] = {}
    for f in fwd:
        for k, v in f.failures.items():
            failures[k] = failures.get(k, 0) + v
    head = {
        "flood_line_printed": any(f"Possible SYN flooding on port {PORT}" in ln for ln in kernel_log),
        "flood_line": kernel_log[0] if kernel_log else None,
        "max_syn_recv": max(peak["n"], 0),
        "syn_queue_max": peak["syn"],
        **{k: counters.get("TcpExt" + k, 0) for k in
           ("ListenOverflows", "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop",
            "SyncookiesSent")},
        "connect_ms": percentiles(all_ms),
        "failed": sum(failures.values()),
    }
    run_ = {**setting, "kernel_log": kernel_log, "proc_net_tcp_at_peak": peak["text"],
            "syn_recv_samples": samples,
            "connect_ms_by_round": [percentiles([x for f in fwd for x in f.connect_ms[r]])
                                    for r in range(cfg.rounds)],
            "heartbeats": cfg.rounds * cfg.forwarders, "failures": failures}
    return {"name": name, "headline": head, "counters": counters, "run": run_,
            "saturation": rig.saturation}


async def run(cfg: Config, show=None) -> dict:
    out = begin(cfg)
    show = show or (lambda **kw: None)
    report = {"scenario": "fluentd-heartbeats", "config": {**asdict(cfg), "settings": list(cfg.settings)},
              "headline": {}, "counters": {}, "runs": {}}
    for s in cfg.settings:
        backlog, somaxconn, cookies = cfg.parse_setting(s)
        r = await run_setting(cfg, backlog, somaxconn, cookies, show)
        collect(report, r["name"], r)
    return write_report(report, out, markdown)


def summary_table(report: dict) -> str:
    heads = report["headline"]
    names = list(heads)
    w = 22
    cw = max(len(n) for n in names) + 2
    lines = [f"{'':{w}}" + "".join(f"{n:>{cw}}" for n in names)]
    for k in ("flood_line_printed", "max_syn_recv", "ListenOverflows", "ListenDrops",
              "TCPReqQFullDoCookies", "TCPReqQFullDrop", "SyncookiesSent", "failed"):
        lines.append(f"{k:{w}}" + "".join(f"{str(heads[n][k]):>{cw}}" for n in names))
    for q in ("p50", "p99", "max"):
        lines.append(f"{'connect_ms ' + q:{w}}" + "".join(
            f"{str(heads[n]['connect_ms'][q]):>{cw}}" for n in names))
    for n in names:
        if heads[n]["flood_line"]:
            lines.append(f"{n}: {heads[n]['flood_line']}")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    out = ["# fluentd heartbeats: \"Possible SYN flooding on port 24224\" without an attack", "",
           "Config: " + ", ".join(f"`{k}={v}`" for k, v in report["config"].items()), "",
           "```", summary_table(report), "```"]
    for name, r in report["runs"].items():
        peak = r["proc_net_tcp_at_peak"].splitlines()
        out += ["", f"## {name}", "",
                f"backlog {r['backlog']}, somaxconn {r['somaxconn']}, tcp_max_syn_backlog "
                f"{r['tcp_max_syn_backlog']}, tcp_syncookies {r['tcp_syncookies']}", "",
                "kernel log: " + ("; ".join(r["kernel_log"]) or "(none)"), "",
                f"/proc/net/tcp{'6' if report['config']['family'] == 6 else ''} at the SYN-RECV peak (first lines of {len(peak) - 1}):", "", "```",
                *peak[:6], "```"]
    return "\n".join(out) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--forwarders", type=int, default=d.forwarders, help="fluentd forwarders (kernel sockets)")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses they spread over")
    p.add_argument("--rounds", type=int, default=d.rounds, help="heartbeats per forwarder (1/s)")
    time_option(p, "--spread-ms", default=d.spread_ms, help="a round's heartbeats fire within this")
    time_option(p, "--rtt-ms", default=d.rtt_ms, help="link RTT")
    p.add_argument("--batch", type=int, default=d.batch, help="packets per endpoint pass")
    p.add_argument("--profile", default=d.profile, help="kernel profile of the log server (pre-6.2: old line)")
    p.add_argument("--settings", default=",".join(d.settings),
                   help="BACKLOG[@SOMAXCONN]/SYNCOOKIES list; a backlog above 128 without @ also "
                        "raises somaxconn and tcp_max_syn_backlog to it (the seed's fix); "
                        "2048@128/1 is in_forward's backlog raised alone (clamped to somaxconn)")
    time_option(p, "--connect-timeout-s", old="--connect-timeout", dest="connect_timeout",
                default=d.connect_timeout_s, help="a forwarder gives up a heartbeat after this")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the phases and the secret")
    sysctl_option(p)
    family_option(p)
    out_option(p, d.out)
    quiet_option(p)


def main(args) -> int:
    cfg = Config(forwarders=args.forwarders, hosts=args.hosts, rounds=args.rounds,
                 spread_ms=args.spread_ms, rtt_ms=args.rtt_ms, batch=args.batch, profile=args.profile,
                 settings=tuple(s.strip() for s in args.settings.split(",") if s.strip()),
                 connect_timeout_s=args.connect_timeout, seed=args.seed, sysctl=list(args.sysctl),
                 family=family_of(args), out=args.out)

    def check():
        if not cfg.settings:
            raise FluentdError("--settings is empty")

    return scenario_main("fluentd", cfg, run, summary=summary_table, show=progress(args.quiet), check=check)
