"""`tuntcp bench --only storm_reliability`: the Kafka storm at 10,000 producers with 2 % loss
each way, checked for what it must never do at any size.

Per mode (buggy, fixed) and round:

- **No produce request is lost.** Every producer records each answered request; the run must
  end with clients x requests answers, the broker must have sent at least as many responses,
  and every producer must have reported. A shortfall, or a run that does not finish (its
  one-line reason), is reported as such, never hidden (``account``).
- **Memory stays bounded.** Peak RSS of the endpoint process (this one: endpoint, broker,
  link model) and of each producer worker process, sampled every 0.25 s, and the endpoint's
  growth per producer.
- **Ctrl-C at any point leaves nothing.** After the runs, the storm CLI at the same size is
  started and interrupted (SIGINT) at seeded random moments; no namespace, TUN or process of
  it may remain (``leftovers``).

The loss starts with the restart (``loss_from_restart``): phase 1, the normal day before it,
connects the producers 25 at a time and waits for each step, so at 2 % loss its 400 steps
at 10,000 producers wait on 1 s SYN retransmissions for about 7 minutes before the storm
begins (measured: neither mode reached its end within 600 s that way). Offload is on (the
storm's default). With --quick: 300 producers and one interrupt. Results go
into results.json under "storm_reliability" and a section of results.md. The bench sits below
the scenarios, so this module registers itself (``bench.cli.EXTRA``) when the CLI imports it.
"""
from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from tuntcp import mib

SIZES = (10000,)
QUICK_SIZES = (300,)
MODES = ("buggy", "fixed")
LOSS = 0.02
# a lighter mix than storm_scale's: this measures what is lost, not latency
MIX = dict(requests_per_client=2, request_bytes=16384, request_interval_s=1.0)
DURATION_S = 900.0


def config(n: int, out: Path, **kw):
    from .storm import StormConfig
    kw = {"duration_s": DURATION_S, "control_name": f"bench-rel-{os.getpid()}", **MIX, **kw}
    cfg = StormConfig(clients=n, loss=LOSS, loss_from_restart=True, pcap=False, out=str(out), **kw)
    cfg.check()
    return cfg


def account(cfg, run: dict) -> dict:
    """The accounting of one finished run: ``ok`` when every request got its response and
    every producer reported; otherwise ``problems`` says what is missing."""
    s = run["summary"]
    expected = cfg.clients * cfg.requests_per_client
    out = {"producers": cfg.clients, "producers_reported": s["producers_recorded"],
           "requests_expected": expected, "requests_answered": s["requests_answered"],
           "broker_replies": s.get("broker_replies"), "producer_resets": s["producer_resets"],
           "producer_errors": s["producer_errors"], "connections_made": s["connections_made"]}
    problems = []
    if s["producers_recorded"] != cfg.clients:
        problems.append(f"{cfg.clients - s['producers_recorded']} producers did not report")
    if s["requests_answered"] != expected:
        problems.append(f"{expected - s['requests_answered']} of {expected} requests unanswered")
    if s.get("broker_replies") is not None and s["broker_replies"] < s["requests_answered"]:
        problems.append(f"producers counted {s['requests_answered']} answers but the broker "
                        f"sent {s['broker_replies']}")
    out["problems"] = problems
    out["ok"] = not problems
    return out


# ---- memory -------------------------------------------------------------------------------

def _rss_kb(pid) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (by parent pid)."""
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), ()):
            out.append(k)
            todo.append(k)
    return out


class RssPeak:
    """Peak RSS of this process and of each descendant, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.25):
        self.every = every
        self.endpoint_kb = 0
        self.workers: dict[int, int] = {}

    def sample(self) -> None:
        me = os.getpid()
        self.endpoint_kb = max(self.endpoint_kb, _rss_kb(me) or 0)
        for pid in descendants(me):
            kb = _rss_kb(pid)
            if kb:
                self.workers[pid] = max(self.workers.get(pid, 0), kb)

    async def run(self) -> None:
        while True:
            await trio.to_thread.run_sync(self.sample)
            await trio.sleep(self.every)

    def report(self) -> dict:
        w = sorted(self.workers.values())
        return {"endpoint_peak_rss_mb": round(self.endpoint_kb / 1024, 1),
                "worker_processes": len(w),
                "worker_peak_rss_mb_max": round(w[-1] / 1024, 1) if w else None,
                "worker_peak_rss_mb_sum": round(sum(w) / 1024, 1) if w else None}


class Progress:
    """The storm's live display feed (``run_mode(show=...)``), kept: the last state, and one
    (t, established, answered) sample per 10 s, so a run that does not finish says how far
    it got and whether it was still moving."""

    def __init__(self, expected: int):
        self.expected = expected
        self.last: dict = {}
        self.trace: list = []

    def show(self, **kw) -> None:
        if kw.get("phase") != "storm":
            return
        self.last = {"t_s": round(kw["t"], 1), "established": kw["established"],
                     "answered": kw["done"], "expected": self.expected}
        if not self.trace or kw["t"] - self.trace[-1][0] >= 10.0:
            self.trace.append((round(kw["t"], 1), kw["established"], kw["done"]))


# ---- Ctrl-C leaves nothing ------------------------------------------------------------------

def leftovers(pid: int, before: set[int] = frozenset()) -> dict:
    """What the run with process id ``pid`` left on the host: its namespaces, its TUN links in
    this namespace, and processes it started (``before``: descendants of ``pid`` to ignore)."""
    from pyroute2 import IPRoute

    from tuntcp.harness import netns
    with IPRoute() as ipr:
        links = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return {"namespaces": [n for n in netns.list_namespaces() if n.startswith(f"{netns.PREFIX}{pid}-")],
            "links": [n for n in links if n.startswith(f"tt{pid}x")],
            "processes": [p for p in descendants(pid) if p not in before]}


def interrupt_once(n: int, at_s: float, out: Path) -> dict:
    """Start ``tuntcp storm`` at ``n`` producers with the loss, SIGINT it ``at_s`` seconds
    after its namespace appears, and report its exit code and what it left behind."""
    from tuntcp.harness import netns
    argv = [sys.executable, "-m", "tuntcp.cli", "storm", "--clients", str(n), "--loss", str(LOSS),
            "--modes", "buggy,fixed", "--no-pcap", "--quiet", "--requests",
            str(MIX["requests_per_client"]), "--request-bytes", str(MIX["request_bytes"]),
            "--out", str(out), "--name", f"bench-rel-int-{os.getpid()}"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    t0 = time.monotonic()
    while not any(x.startswith(f"{netns.PREFIX}{p.pid}-") for x in netns.list_namespaces()):
        if p.poll() is not None or time.monotonic() - t0 > 60:
            break
        time.sleep(0.05)
    time.sleep(at_s)
    still = p.poll() is None
    if still:
        p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)     # ours, by its session: reported as a failure
        _, err = p.communicate()
        return {"at_s": at_s, "exit": "hung after SIGINT (killed)", "clean": False}
    time.sleep(0.5)
    left = leftovers(p.pid)
    tail = err.decode(errors="replace").strip().splitlines()
    return {"at_s": at_s, "interrupted": still, "exit": p.returncode,
            "last_line": tail[-1] if tail else "", "left": left,
            "clean": not any(left.values())}


# ---- the workload ------------------------------------------------------------------------

async def run(cfg, log, sizes=None) -> dict:
    from .storm import StormError, run_mode
    sizes = sizes or (QUICK_SIZES if cfg.quick else SIZES)
    outdir = Path(cfg.out).with_name("storm_reliability")
    points: dict = {}
    rng = random.Random(20261206)
    for n in sizes:
        points[n] = []
        for rnd in range(cfg.rounds):
            for mode in MODES:
                scfg = config(n, outdir / f"n{n}")
                log(f"storm_reliability N={n} round {rnd + 1}/{cfg.rounds} {mode} "
                    f"(loss {LOSS} each way)")
                rss = RssPeak()
                before = set(descendants(os.getpid()))
                c0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.monotonic()
                pt = {"mode": mode, "round": rnd + 1}
                prog = Progress(n * scfg.requests_per_client)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(rss.run)
                    try:
                        res = await run_mode(scfg, mode, outdir / f"n{n}", prog.show)
                        pt.update(account(scfg, res))
                        pt["verdict"] = res["saturation"]["verdict"]
                        pt["offload"] = res["offload"]["on"]
                        pt["counters"] = {k: res["summary"]["counters"].get(k) for k in (
                            mib.TcpRetransSegs, mib.TcpExtTCPTimeouts, mib.TcpExtSyncookiesSent,
                            mib.TcpExtListenOverflows, mib.TcpExtListenDrops)}
                    except StormError as e:
                        pt.update({"ok": False, "problems": [f"did not finish: {e}"],
                                   "at_timeout": prog.last, "progress": prog.trace})
                    nursery.cancel_scope.cancel()
                c1 = resource.getrusage(resource.RUSAGE_SELF)
                pt["wall_s"] = round(time.monotonic() - t0, 1)
                pt["endpoint_cpu_s"] = round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 1)
                pt["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
                pt.update(rss.report())
                pt["endpoint_rss_kb_per_producer"] = round(rss.endpoint_kb / n, 1)
                left = leftovers(os.getpid(), before)
                pt["left_after_run"] = left
                log(f"  {pt}")
                points[n].append(pt)
        at = [round(rng.uniform(0.5, 20.0), 2) for _ in range(1 if cfg.quick else 2)]
        ints = []
        for a in at:
            log(f"storm_reliability N={n}: Ctrl-C {a} s into a storm")
            r = await trio.to_thread.run_sync(interrupt_once, n, a, outdir / f"int{n}")
            log(f"  {r}")
            ints.append(r)
        points[n].append({"interrupts": ints})
    return {"sizes": list(sizes), "rounds": cfg.rounds, "points": points,
            "config": f"storm with {LOSS:.0%} loss each way from the restart on, {MIX['requests_per_client']} requests "
                      f"of {MIX['request_bytes']} B per producer every {MIX['request_interval_s']} s, "
                      f"2 ms RTT, --duration {DURATION_S:.0f} s, offload on, no pcap"}


def markdown(res: dict) -> str:
    out = ["", "## Storm reliability (`--only storm_reliability`)", "", res["config"] + ".", "",
           "| producers | mode | round | requests answered / expected | broker replies | resets "
           "| verdict | endpoint peak RSS MB | worker peak RSS MB (max, sum) | endpoint CPU s | wall s "
           "| ok |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for n, pts in res["points"].items():
        for p in pts:
            if "interrupts" in p:
                for r in p["interrupts"]:
                    notes.append(f"- N={n}: SIGINT {r['at_s']} s in: exit {r['exit']}, "
                                 f"{'nothing left' if r['clean'] else 'LEFT ' + str(r.get('left'))}")
                continue
            out.append(f"| {n} | {p['mode']} | {p['round']} | {p.get('requests_answered', '-')} / "
                       f"{p.get('requests_expected', '-')} | {p.get('broker_replies', '-')} "
                       f"| {p.get('producer_resets', '-')} | {p.get('verdict', '-')} "
                       f"| {p['endpoint_peak_rss_mb']} | {p['worker_peak_rss_mb_max']}, "
                       f"{p['worker_peak_rss_mb_sum']} | {p['endpoint_cpu_s']} | {p['wall_s']} "
                       f"| {'yes' if p['ok'] else 'NO: ' + '; '.join(p['problems'])}{_got(p)} |")
    return "\n".join(out + [""] + notes) + "\n"


def _got(p: dict) -> str:
    a = p.get("at_timeout")
    if not a:
        return ""
    return (f" (at {a['t_s']} s: {a['answered']} of {a['expected']} requests answered, "
            f"{a['established']} producers connected)")


def plot(res: dict, path: Path) -> None:
    """No picture: the table is the result."""
    return None


def _register() -> None:
    from ..bench.cli import EXTRA
    EXTRA["storm_reliability"] = sys.modules[__name__]


_register()
