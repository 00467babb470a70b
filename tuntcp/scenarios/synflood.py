"""A spoofed SYN flood while legitimate kernel clients connect: SYN cookies on vs off.

hping3 runs INSIDE the lab namespace and sends SYNs to the endpoint through the TUN only, from a
spoofed source in 198.18.0.0/15 that is assigned nowhere (default 198.18.200.1, source ports
incrementing per packet): the endpoint's SYN-ACKs go back into the namespace, which has no such
address and does not forward, so nobody answers them and every flood request sock stays in the
SYN queue until its SYN-ACK retries run out. The flood is bounded (``-c`` count at ``-i`` pace,
and ``timeout``) and is stopped on every exit path. hping3 has no IPv6: with ``--family ipv6`` a
small raw-socket sender (``FLOOD6``) does the same from 2001:2::c8:1, paced alike.

Meanwhile ``legit`` kernel clients start at random moments over ``legit_window_s`` and each
connect()s once. Per mode:
  cookies    (tcp_syncookies=1) the flood fills the SYN queue at once; every later SYN, flood or
             legitimate, gets a cookie SYN-ACK (TCPReqQFullDoCookies, SyncookiesSent huge): the
             legitimate clients connect at their first SYN.
  nocookies  (tcp_syncookies=0) SYNs meeting the full queue are dropped (TCPReqQFullDrop). The
             flood's 128 request socks live until ``reqsk_timer_handler`` gives up on them (with a
             queue full of old requests the retry threshold drops to 2: SYN-ACKs at 1 and 3 s,
             expiry at 7 s - for half of them: once the queue is no longer more than half full
             the rest keep all 5 retries), so a legitimate client gets in with its first SYN
             retransmission after that: its connect time is one of its kernel's SYN retransmit
             times (1, 3, 7 s ...; ``client_syn_retries`` bounds how many, then ETIMEDOUT).
             A flood longer than 7 s refills the freed slots and most legitimate clients fail.

The client namespace gets ``tcp_syn_retries`` = client_syn_retries and, where the host kernel has
it, ``tcp_syn_linear_timeouts`` = 0 (the classic doubling 1, 3, 7, 15 s schedule; 6.5+ defaults
to 4 linear retries). ``schedule_s`` in the report is the schedule the clients used.

report.json keys:
  scenario, config
  headline: {mode: {"success_rate", "connect_s": {p50, p99, max, n}, "near_schedule_fraction"
             (of successful connects, within ``tolerance_s`` of a retransmit time 1/3/7...),
             "SyncookiesSent", "TCPReqQFullDoCookies", "TCPReqQFullDrop", "flood_sent",
             "legit_syn_retransmits" (TcpExtTCPSynRetrans of the client namespace),
             "tun_dropped" (packets the TUN ring dropped before the endpoint read them)}}
  counters: {mode: endpoint MIB deltas (nstat names)}
  runs: {mode: {"tcp_syncookies", "schedule_s", "histogram" ({"0", "1", "3", "7", ...,
         "other", "failed"}: counts), "clients": [{"start_s", "connect_s", "outcome", "error"}],
         "flood": {"argv", "sent", "rc", "fill_s" (hping3 start to a full SYN queue; the clients'
         start times count from there)}, "timeline": [[t, syn_queue, accept_queue], ...]}}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import errno
import ipaddress
import os
import random
import re
import shutil
import sys
import signal
import subprocess
from dataclasses import asdict, dataclass, field

import trio

from tuntcp.scenarios.cli_common import out_option, progress, quiet_option, scenario_main, sysctl_option, time_option
from tuntcp.scenarios.rig import begin, client_linear_timeouts, collect, family_of, family_option
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import percentiles, write_report
from tuntcp.shell.apps import discard, guarded

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 8000
MODES = {"cookies": 1, "nocookies": 0}
SPOOF = {4: "198.18.200.1", 6: "2001:2::c8:1"}     # --spoof's default per family: assigned nowhere

# hping3 has no IPv6: over IPv6 this sender stands in for it, in the namespace like hping3 (a
# raw socket, the SYNs from tuntcp.harness.raw), paced by -c/-i alike, and it ends with
# hping3's statistics line so the report reads both the same way.
FLOOD6 = r"""
import signal
stopped = []
signal.signal(signal.SIGINT, lambda *a: stopped.append(1))   # first: a stop during the imports still reports
import socket, sys, time
from tuntcp.harness.raw import spoofed_syn
src, dst, port, count, gap, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent, t0 = 0, time.monotonic()
while not stopped and (not count or sent < count) and time.monotonic() - t0 < seconds:
    s.sendto(spoofed_syn(src, dst, 1024 + sent % 64000, port, seq=(sent * 2654435761) & 0xFFFFFFFF), (dst, 0))
    sent += 1
    if gap:
        time.sleep(max(0.0, t0 + sent * gap - time.monotonic()))
print(f"--- {dst} hping statistic ---\n{sent} packets transmitted, 0 packets received", flush=True)
"""


class SynfloodError(UserError, ValueError):
    """A user mistake in the scenario's knobs."""


@dataclass
class Config:
    legit: int = 60
    backlog: int = 128
    flood_pps: int = 5000            # 0: hping3 --flood (as fast as it can), bounded by time only
    flood_s: float = 3.0
    spoof: str = ""                  # "": the family's default (SPOOF)
    legit_window_s: float = 6.9      # legitimate clients start uniformly in [0.3, this]
    client_syn_retries: int = 3      # SYN retransmissions at 1, 3, 7 s, ETIMEDOUT at 15 s
    client_syn_linear_timeouts: int | None = 0
    tolerance_s: float = 0.1         # slack around a retransmit time (plus p/8 late, see near_point)
    profile: str = "linux-5.10"
    modes: tuple[str, ...] = ("cookies", "nocookies")
    seed: int = 1
    sysctl: list[str] = field(default_factory=list)
    family: int = 4                  # the lab's address family (--family; 6: FLOOD6 for hping3)
    out: str = "out/synflood"

    @property
    def source(self) -> str:
        return self.spoof or SPOOF[self.family]

    def check(self) -> None:
        if not 1 <= self.legit <= 2000:
            raise SynfloodError("--legit must be 1..2000")
        if not 1 <= self.backlog <= 65535:
            raise SynfloodError("--backlog must be 1..65535")
        if not 0 <= self.flood_pps <= 20000:
            raise SynfloodError("--flood-pps must be 0..20000 (0 = hping3 --flood)")
        if not 0 < self.flood_s <= 60:
            raise SynfloodError("--flood-s must be in (0, 60]")
        if not 0.3 <= self.legit_window_s <= 60:
            raise SynfloodError("--legit-window-s must be 0.3..60 s")
        if not 1 <= self.client_syn_retries <= 6:
            raise SynfloodError("--client-syn-retries must be 1..6 (6: the last try at 63 s)")
        if not self.modes or any(m not in MODES for m in self.modes):
            raise SynfloodError("--modes takes cookies and/or nocookies")
        from tuntcp.harness import netns as N
        v6 = self.family == 6
        try:
            spoof = ipaddress.ip_address(self.source)
        except ValueError:
            spoof = None
        if spoof is None or spoof.version != self.family:
            raise SynfloodError(f"--spoof is not an IPv{self.family} address: {self.source!r}")
        ep, cl = (N.ENDPOINT_ADDR6, N.CLIENT_ADDR6) if v6 else (N.ENDPOINT_ADDR, N.CLIENT_ADDR)
        taken = [ipaddress.ip_network(f"{ep}/{N.ENDPOINT_PREFIXLEN6 if v6 else N.ENDPOINT_PREFIXLEN}", strict=False),
                 N.EXTRA_CLIENT_NET6 if v6 else N.EXTRA_CLIENT_NET, ipaddress.ip_network(cl)]
        if spoof not in N.LAB_NET[self.family] or any(spoof in n for n in taken):
            raise SynfloodError(f"--spoof {spoof} must be in {N.LAB_NET[self.family]} and assigned nowhere "
                                f"(not in {', '.join(map(str, taken))}), so no one answers the SYN-ACKs")
        if not v6 and shutil.which("hping3") is None and not os.path.exists("/usr/sbin/hping3"):
            raise SynfloodError("hping3 not found (apt-get install hping3)")
        from tuntcp.profiles import ProfileError, get_profile
        try:
            p = get_profile(self.profile, self.sysctl)
        except ProfileError as e:
            raise SynfloodError(str(e)) from None
        if p.family != "linux":
            raise SynfloodError("synflood compares Linux tcp_syncookies 1 and 0: use a linux-* profile")


def syn_schedule(retries: int, linear: int | None) -> list[float]:
    """Times (s after the first SYN) of a Linux client's SYN and its retransmissions
    (``tcp_retransmit_timer`` in SYN-SENT, limit from ``tcp_write_timeout``): RTO 1 s
    (TCP_TIMEOUT_INIT), not doubled while the retransmission count is within
    ``tcp_syn_linear_timeouts`` (6.5+), doubled after that; ``tcp_syn_retries`` +
    ``tcp_syn_linear_timeouts`` retransmissions in all (reference §6: 6 and 4 give 0, 1, 2, 3, 4,
    5, 7, 11, 19, 35, 67)."""
    t, rto, out = 0.0, 1.0, [0.0]
    for i in range(retries + (linear or 0)):
        t += rto
        out.append(t)
        if i + 1 > (linear or 0):
            rto *= 2
    return out


def near_point(t: float, points: list[float], tol: float) -> float | None:
    """The schedule point ``t`` belongs to: within ``tol`` before it, or up to ``tol`` + p/8
    after it. Kernel timers fire late, never early: the timer wheel (kernel/time/timer.c) files a
    multi-second timeout in a coarse level whose granularity is up to 1/8 of the timeout (the 4 s
    RTO before the 7 s retransmission was seen firing 60-300 ms late)."""
    for p in points:
        if p - tol <= t <= p + tol + p / 8:
            return p
    return None


def hping3_argv(cfg: Config, dst: str) -> list[str]:
    """Bounded: -c count at an -i pace (or --flood), under `timeout` either way. Over IPv6
    FLOOD6 with the same count and pace."""
    limit = f"{cfg.flood_s + 0.5:.2f}"
    if cfg.family == 6:
        count = int(cfg.flood_pps * cfg.flood_s)
        return ["timeout", "-s", "INT", limit, sys.executable, "-c", FLOOD6, cfg.source, dst, str(PORT),
                str(count), f"{1 / cfg.flood_pps if cfg.flood_pps else 0:.6f}", str(cfg.flood_s)]
    base = ["timeout", "-s", "INT", limit, "hping3", "-S", "-p", str(PORT), "-a", cfg.source]
    if cfg.flood_pps:
        count = int(cfg.flood_pps * cfg.flood_s)
        return base + ["-q", "-c", str(count), "-i", f"u{max(1, round(1e6 / cfg.flood_pps))}", dst]
    return base + ["-q", "--flood", dst]


def stop(p: subprocess.Popen) -> None:
    """SIGINT (hping3 prints its statistics), then SIGKILL; the whole process group."""
    for sig, wait in ((signal.SIGINT, 2.0), (signal.SIGKILL, 5.0)):
        if p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


class Legit:
    def __init__(self, start: float):
        self.start = start
        self.connect_s: float | None = None
        self.outcome = "pending"
        self.error: str | None = None

    async def run(self, lab, dst: str, t0: float, limit: float) -> None:
        await trio.sleep_until(t0 + self.start)
        s = trio.socket.from_stdlib_socket(lab.socket_in_ns())
        t = trio.current_time()
        try:
            with trio.move_on_after(limit):
                try:
                    await s.connect((dst, PORT))
                    self.connect_s = trio.current_time() - t
                    self.outcome = "ok"
                except OSError as e:
                    self.outcome = "failed"
                    self.error = errno.errorcode.get(e.errno, str(e))
            if self.outcome == "pending":
                self.outcome, self.error = "failed", "deadline"
        finally:
            s.close()


async def run_mode(cfg: Config, mode: str, show) -> dict:
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    rng = random.Random(cfg.seed)
    profile = get_profile(cfg.profile, [*cfg.sysctl, f"net.ipv4.tcp_syncookies={MODES[mode]}"])
    legit = [Legit(rng.uniform(0.3, cfg.legit_window_s)) for _ in range(cfg.legit)]
    timeline: list[list] = []
    flood = None
    fl: dict = {}
    async with rig_endpoint(profile, lab=dict(family=cfg.family), secret=rng.randbytes(16), kernel=True) as rig:
        lab = rig.lab
        lab.sysctl("net.ipv4.tcp_syn_retries", cfg.client_syn_retries)
        linear = client_linear_timeouts(lab, cfg.client_syn_linear_timeouts)
        schedule = syn_schedule(cfg.client_syn_retries, linear)
        argv = hping3_argv(cfg, lab.endpoint_addr)
        listener = await open_tcp_listener(rig.ep, PORT, cfg.backlog)
        lst = listener.listener
        rig.nursery.start_soon(trio.serve_listeners, guarded(discard), [listener])
        tun0 = lab.tun_stats().get("tx_dropped", 0)
        try:
            flood = lab.run_in_ns(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            show(msg=f"[{mode}] flood: {' '.join(argv)}")
            fl = await flood_and_connect(cfg, rig, lst, legit, timeline, schedule)
            fl["tun_dropped"] = lab.tun_stats().get("tx_dropped", 0) - tun0
            rig.finish()
        finally:
            if flood is not None:
                stop(flood)
    out = flood.stdout.read() if flood.stdout else ""
    flood.stdout.close()
    if fl.get("problem"):
        raise SynfloodError(f"{fl['problem']} (hping3 exit {flood.returncode}: {out.strip()[-200:]!r})")
    m = re.search(r"(\d+) packets transmitted", out)
    sent = int(m.group(1)) if m else None
    return mode_result(cfg, mode, rig, legit, schedule, linear, timeline,
                       {"argv": argv, "sent": sent, "rc": flood.returncode,
                        "fill_s": round(fl["fill_s"], 3),
                        "output_tail": out.strip().splitlines()[-3:]}, fl["tun_dropped"])


async def flood_and_connect(cfg: Config, rig, lst, legit: list, timeline: list,
                            schedule: list) -> dict:
    """Wait for the flood to hold the whole SYN queue, then run the legitimate clients while
    sampling the queues. ``{"fill_s"}``, or ``{"problem"}`` if the queue never filled."""
    started = trio.current_time()
    # the legitimate clients arrive once the flood holds the whole SYN queue
    # (hping3's start-up under `ip netns exec` takes a variable moment)
    with trio.move_on_after(min(cfg.flood_s, 5.0)):
        while lst.queue_lengths()["syn"] < lst.backlog:
            await trio.sleep(0.005)
    if lst.queue_lengths()["syn"] < lst.backlog:
        return {"problem": f"the flood did not fill the {lst.backlog}-deep SYN queue"}
    t0 = trio.current_time()

    async def sample():
        while True:
            q = lst.queue_lengths()
            timeline.append([round(trio.current_time() - t0, 3), q["syn"], q["accept"]])
            await trio.sleep(0.05)

    rig.nursery.start_soon(sample)
    limit = schedule[-1] * 2 + 2.0       # past the client's own ETIMEDOUT
    async with trio.open_nursery() as ln:
        for c in legit:
            ln.start_soon(c.run, rig.lab, rig.lab.endpoint_addr, t0, limit)
    await trio.sleep(0.2)
    return {"fill_s": t0 - started}


def mode_result(cfg: Config, mode: str, rig, legit: list, schedule: list, linear, timeline: list,
                flood: dict, tun_dropped: int) -> dict:
    counters = rig.counters
    ok = [c for c in legit if c.outcome == "ok"]
    tol = cfg.tolerance_s
    retx_points = schedule[1:]
    near = [c for c in ok if near_point(c.connect_s, retx_points, tol) is not None]
    hist: dict[str, int] = {f"{p:g}": 0 for p in schedule}
    hist.update(other=0, failed=0)
    for c in legit:
        if c.outcome != "ok":
            hist["failed"] += 1
            continue
        p = near_point(c.connect_s, schedule, tol)
        hist["other" if p is None else f"{p:g}"] += 1
    head = {
        "success_rate": round(len(ok) / len(legit), 4),
        "connect_s": percentiles([c.connect_s for c in ok]),
        "near_schedule_fraction": round(len(near) / len(ok), 4) if ok else 0.0,
        **{k: counters.get("TcpExt" + k, 0) for k in
           ("SyncookiesSent", "TCPReqQFullDoCookies", "TCPReqQFullDrop")},
        "flood_sent": flood["sent"],
        # packets the TUN ring dropped before the endpoint read them (an unpaced --flood
        # outruns a Python endpoint; then legitimate SYNs are lost there too)
        "tun_dropped": tun_dropped,
        # the legitimate clients' own kernel (the namespace's MIB; hping3 uses a raw socket)
        "legit_syn_retransmits": rig.kernel_delta.get(mib.TcpExtTCPSynRetrans, 0),
    }
    run_ = {"tcp_syncookies": MODES[mode], "schedule_s": schedule, "histogram": hist,
            "client_tcp_syn_linear_timeouts": linear,
            "clients": [{"start_s": round(c.start, 3),
                         "connect_s": None if c.connect_s is None else round(c.connect_s, 4),
                         "outcome": c.outcome, "error": c.error} for c in legit],
            "flood": flood, "timeline": timeline}
    return {"headline": head, "counters": counters, "run": run_, "saturation": rig.saturation}


async def run(cfg: Config, show=None) -> dict:
    out = begin(cfg)
    show = show or (lambda **kw: None)
    report = {"scenario": "synflood", "config": {**asdict(cfg), "modes": list(cfg.modes)},
              "headline": {}, "counters": {}, "runs": {}}
    for mode in cfg.modes:
        r = await run_mode(cfg, mode, show)
        collect(report, mode, r)
        show(msg=f"[{mode}] histogram of legit connect times: {r['run']['histogram']}")
    return write_report(report, out, markdown)


def summary_table(report: dict) -> str:
    heads = report["headline"]
    names = list(heads)
    w = 24
    lines = [f"{'':{w}}" + "".join(f"{n:>14}" for n in names)]
    for k in ("success_rate", "near_schedule_fraction", "SyncookiesSent", "TCPReqQFullDoCookies",
              "TCPReqQFullDrop", "flood_sent", "tun_dropped", "legit_syn_retransmits"):
        lines.append(f"{k:{w}}" + "".join(f"{str(heads[n][k]):>14}" for n in names))
    for q in ("p50", "p99", "max"):
        lines.append(f"{'connect_s ' + q:{w}}" + "".join(f"{str(heads[n]['connect_s'][q]):>14}" for n in names))
    for n in names:
        lines.append(f"{n} connect-time histogram (s): {report['runs'][n]['histogram']}")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    out = ["# SYN flood with legitimate clients: cookies on vs off", "",
           "Config: " + ", ".join(f"`{k}={v}`" for k, v in report["config"].items()), "",
           "```", summary_table(report), "```"]
    for mode, r in report["runs"].items():
        out += ["", f"## {mode}", "", f"client SYN schedule (s): {r['schedule_s']}", "",
                f"flood: `{' '.join(r['flood']['argv'])}` -> {r['flood']['sent']} SYNs sent"]
    return "\n".join(out) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--legit", type=int, default=d.legit, help="legitimate kernel clients")
    p.add_argument("--backlog", type=int, default=d.backlog, help="listen backlog")
    p.add_argument("--flood-pps", type=int, default=d.flood_pps, help="hping3 pace (0: --flood)")
    time_option(p, "--flood-s", old="--flood-seconds", dest="flood_seconds", default=d.flood_s,
                help="flood duration")
    p.add_argument("--spoof", default=d.spoof, help="spoofed source, assigned nowhere (default "
                   f"{SPOOF[4]}; {SPOOF[6]} with --family ipv6)")
    time_option(p, "--legit-window-s", old="--legit-window", dest="legit_window",
                default=d.legit_window_s,
                help="legitimate clients start within this long of the flood")
    p.add_argument("--client-syn-retries", type=int, default=d.client_syn_retries,
                   help="the clients' net.ipv4.tcp_syn_retries")
    p.add_argument("--profile", default=d.profile, help="kernel profile of the endpoint")
    p.add_argument("--modes", default=",".join(d.modes), help="cookies,nocookies or one of them")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the client starts and the secret")
    sysctl_option(p)
    family_option(p)
    out_option(p, d.out)
    quiet_option(p)


def main(args) -> int:
    cfg = Config(family=family_of(args), legit=args.legit, backlog=args.backlog, flood_pps=args.flood_pps,
                 flood_s=args.flood_seconds, spoof=args.spoof, legit_window_s=args.legit_window,
                 client_syn_retries=args.client_syn_retries, profile=args.profile,
                 modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
                 seed=args.seed, sysctl=list(args.sysctl), out=args.out)

    return scenario_main("synflood", cfg, run, summary=summary_table, show=progress(args.quiet))
