"""`tuntcp bench`: the endpoint measured side by side with the kernel, in one lab namespace.

Each workload runs against the tuntcp endpoint (this process, on the lab's TUN) and against a
kernel listener in the same namespace (tuntcp.bench.kernel_server), driven by the same client,
alternating tuntcp/kernel (the order flips every round) for several rounds.  The report gives
the median, min-max and the ratio tuntcp/kernel of the medians; ratios inside one run are far
more stable than absolute numbers on a noisy 2-core machine (performance-envelope.md).

    tuntcp bench [--quick] [--rounds N] [--seconds S] [--out bench/results.json]
                 [--only WORKLOAD,...] [--profile-row ROW]

Writes the JSON and a Markdown table next to it (results.md).  See bench/README.md.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

from ..errors import UserError, check_out_dir
from . import workloads as W
from .. import signals

DEFAULT_PROFILE = "linux-6.1"
NS_SYSCTLS = {"net.core.somaxconn": 65535, "net.ipv4.tcp_max_syn_backlog": 65535,
              "net.ipv4.ip_local_port_range": "1024 65535"}
PROFILE_KNOBS = {"net.core.somaxconn": 65535, "net.ipv4.tcp_max_syn_backlog": 65535}
NOT_MEASURED: dict = {}    # name -> why (rows we cannot measure honestly yet)
# Workloads built on layers above the bench (storm_scale is a scenario) register here when the
# CLI imports them: name -> module with async run(cfg, log), markdown(res), plot(res, path).
# They run only when named in --only.
EXTRA: dict = {}


@dataclass
class Config:
    quick: bool = False
    rounds: int = 3
    seconds: float = 2.0
    out: str = "bench/results.json"
    only: list[str] | None = None
    profile: str = DEFAULT_PROFILE
    profile_row: str | None = None      # py-spy the tuntcp side of this row (round 1)
    ab_n: int = 200000         # cap; ab -t <seconds> ends the run
    rr_count: int = 2000
    mem_n: int = 5000


@dataclass
class Row:
    """One reported metric; several rows may come from one workload run."""
    name: str
    workload: str
    metric: str
    unit: str
    higher_better: bool
    title: str
    extras: tuple = ()        # other metrics of the same runs, reported per side as lists


@dataclass
class Workload:
    name: str
    mtu: int
    tuntcp: object            # async fn(lab, profile, cfg) -> dict (None: sans-IO memory rows)
    kernel: object
    rows: list[Row] = field(default_factory=list)
    vnet: bool = False        # Lab(vnet_hdr=True) + Stack/Endpoint(offload=True)


def _wl(name, mtu, t, k, rows, vnet=False):
    out = []
    for r in rows:
        extras = tuple(r[5]) if len(r) > 5 else ()
        if mtu:
            extras += ("endpoint_cpu",)
        out.append(Row(r[0], name, r[1], r[2], r[3], r[4], extras))
    return Workload(name, mtu, t, k, out, vnet)


def _storm(n):
    async def t(lab, p, cfg):
        return await W.storm_tuntcp(lab, p, cfg, n)

    async def k(lab, p, cfg):
        return await W.storm_kernel(lab, p, cfg, n)
    return t, k


STORM_EXTRAS = ("syn_retrans", "established", "issue_seconds", "tun_tx_dropped")
WORKLOADS = [
    _wl("handshakes", 1500, W.handshakes_tuntcp, W.handshakes_kernel,
        [("handshakes_per_s", "handshakes_per_s", "conn/s", True,
          "handshakes/s (ab -c 64, no keep-alive)", ("failed",))]),
    _wl("cookies_flood", 1500, W.cookies_tuntcp, W.cookies_kernel,
        [("cookie_synacks_per_s", "cookie_synacks_per_s", "SYN-ACK/s", True,
          "cookie SYN-ACKs/s (hping3 --flood, syncookies=2)", ("offered_pps",))]),
    _wl("cookies_50k", 1500, W.cookies50k_tuntcp, W.cookies50k_kernel,
        [("cookies_50k_answered_share", "answered_share", "share", True,
          "share of SYNs answered at 50k pps (paced raw sender)",
          ("offered_pps", "cookie_synacks_per_s"))]),
    _wl("latency", 1500, W.latency_tuntcp, W.latency_kernel,
        [("latency_p50_us", "p50_us", "us", False, "request/response 64 B, p50"),
         ("latency_p99_us", "p99_us", "us", False, "request/response 64 B, p99")]),
    _wl("storm_1k", 1500, *_storm(1000),
        [("storm_1k_s", "seconds", "s", False, "1k simultaneous connects: all established",
          STORM_EXTRAS)]),
    _wl("storm_10k", 1500, *_storm(10000),
        [("storm_10k_s", "seconds", "s", False, "10k simultaneous connects: all established",
          STORM_EXTRAS)]),
]
for _mtu in (1500, 9000, 65535):
    WORKLOADS.append(_wl(f"ingest_{_mtu}", _mtu, W.ingest_tuntcp, W.ingest_kernel,
                         [(f"ingest_MBps_mtu{_mtu}", "MBps", "MB/s", True,
                           f"ingest, socat /dev/zero -> discard, MTU {_mtu}",
                           ("csum_errors",))]))
    WORKLOADS.append(_wl(f"egress_{_mtu}", _mtu, W.egress_tuntcp, W.egress_kernel,
                         [(f"egress_MBps_mtu{_mtu}", "MBps", "MB/s", True,
                           f"egress, source -> socat /dev/null, MTU {_mtu}")]))
WORKLOADS += [
    _wl("ingest_1500_vnet", 1500, W.ingest_tuntcp, W.ingest_kernel,
        [("ingest_MBps_mtu1500_vnet", "MBps", "MB/s", True,
          "ingest, MTU 1500, IFF_VNET_HDR offload (TSO in, kernel-marked checksums)",
          ("csum_errors",))], vnet=True),
    _wl("egress_1500_vnet", 1500, W.egress_tuntcp, W.egress_kernel,
        [("egress_MBps_mtu1500_vnet", "MBps", "MB/s", True,
          "egress, MTU 1500, IFF_VNET_HDR offload (GSO out, checksum by the kernel)")],
        vnet=True),
    _wl("mem_halfopen", 0, None, None,
        [("mem_halfopen_bytes", "bytes_per_item", "B", False,
          "memory per half-open request (kernel: request_sock_TCP slab object)")]),
    _wl("mem_idle_conn", 0, None, None,
        [("mem_idle_conn_bytes", "bytes_per_item", "B", False,
          "memory per idle established conn (kernel: TCP slab object)")]),
]
BY_NAME = {w.name: w for w in WORKLOADS}

# (row, comparison, threshold, what) -- the targets, checked on tuntcp medians/ratios
TARGETS = [
    ("handshakes_per_s", ">=", 25000, "handshakes >= 25k/s"),
    ("handshakes_per_s", "ratio>=", 0.4, "handshakes >= 0.4x the kernel"),
    ("cookie_synacks_per_s", ">=", 80000, "cookie SYN-ACKs >= 80k/s"),
    ("ingest_MBps_mtu1500", ">=", 120, "ingest >= 120 MB/s at MTU 1500, checksums verified"),
    ("storm_10k_s", "<", 0.5, "10k simultaneous connects < 0.5 s"),
    ("mem_halfopen_bytes", "<=", 400, "<= 400 B per half-open request"),
    ("mem_idle_conn_bytes", "<=", 3000, "<= 3 KB per idle connection"),
    ("cookies_50k_answered_share", ">=", 1.0, "every SYN answered at 50k pps (cookies)"),
    ("ingest_MBps_mtu1500_vnet", ">=", 1500, "ingest >= 1.5 GB/s with IFF_VNET_HDR offload"),
    ("egress_MBps_mtu1500_vnet", ">=", 1500, "egress >= 1.5 GB/s with IFF_VNET_HDR offload"),
]


class BenchUsageError(UserError, ValueError):
    """A user mistake in the bench options."""


def make_config(quick=False, rounds=None, seconds=None, out=None, only=None, profile=None,
                profile_row=None) -> Config:
    cfg = Config(quick=quick)
    if quick:
        cfg.rounds, cfg.seconds, cfg.ab_n, cfg.rr_count, cfg.mem_n = 1, 0.7, 5000, 300, 1000
    if rounds is not None:
        if rounds < 1:
            raise BenchUsageError("--rounds must be >= 1")
        cfg.rounds = rounds
    if seconds is not None:
        if seconds <= 0:
            raise BenchUsageError("--seconds must be > 0")
        cfg.seconds = seconds
    if out:
        cfg.out = out
    if profile:
        cfg.profile = profile
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME and n not in EXTRA]
        if unknown:
            raise BenchUsageError(f"unknown workload(s) {', '.join(unknown)}; known: "
                                  f"{', '.join([*BY_NAME, *EXTRA])}")
        cfg.only = names
    if profile_row:
        rows = {r.name: w.name for w in WORKLOADS for r in w.rows}
        if profile_row not in rows or BY_NAME[rows[profile_row]].tuntcp is None:
            raise BenchUsageError(f"--profile-row must be a measured row: {', '.join(rows)}")
        cfg.profile_row = profile_row
    return cfg


# ---- running ----------------------------------------------------------------------------------

def _summary(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "values": values}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "values": values}


def _log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


async def _measure(wl: Workload, lab, profile, cfg, rnd: int, side: str, errors: list):
    fn = wl.tuntcp if side == "tuntcp" else wl.kernel
    spy = None
    if side == "tuntcp" and rnd == 0 and cfg.profile_row in {r.name for r in wl.rows}:
        spy = _start_pyspy(cfg, wl)
    try:
        return await fn(lab, profile, cfg)
    except (W.BenchError, OSError) as e:
        # one failed run is reported and the bench goes on; anything else is a bug and stops it
        what = str(e) if isinstance(e, W.BenchError) else f"{type(e).__name__}: {e}"
        errors.append(f"{wl.name} {side} round {rnd + 1}: {what}")
        _log(f"  {side}: FAILED: {what}")
        return None
    finally:
        if spy is not None:
            _stop_pyspy(spy)


def _start_pyspy(cfg, wl):
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        _log("py-spy is not installed in the venv (pip install py-spy); no profile")
        return None
    out = Path(cfg.out).with_name(f"profile-{cfg.profile_row}.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".log"), "w") as log:     # py-spy's own messages, if it fails
        p = subprocess.Popen([str(exe), "record", "--pid", str(os.getpid()), "--rate", "250",
                              "--format", "raw", "--nonblocking", "-o", str(out)],
                             stdout=log, stderr=log)
    time.sleep(0.5)
    return p, out


def _stop_pyspy(spy):
    p, out = spy
    import signal
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    _log(f"py-spy profile: {out}")


def top_functions(raw_path, n=15) -> list[tuple[str, float, float]]:
    """From py-spy's raw (collapsed) output: (function, self share, inclusive share), one entry
    per function (py-spy's frames carry line numbers; those are merged)."""
    import re
    line_no = re.compile(r":\d+\)$")
    self_c: dict = {}
    incl: dict = {}
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            c = int(count)
            total += c
            frames = [line_no.sub(")", fr) for fr in stack.split(";")]
            self_c[frames[-1]] = self_c.get(frames[-1], 0) + c
            for fr in set(frames):
                incl[fr] = incl.get(fr, 0) + c
    top = sorted(self_c.items(), key=lambda kv: -kv[1])[:n]
    return [(fn, c / total, incl[fn] / total) for fn, c in top]


async def run_all(cfg: Config) -> dict:
    from ..harness import netns
    from ..profiles import get_profile

    profile = get_profile(cfg.profile, PROFILE_KNOBS)
    chosen = [w for w in WORKLOADS if cfg.only is None or w.name in cfg.only]
    raw: dict = {w.name: {"tuntcp": [], "kernel": []} for w in chosen}
    errors: list[str] = []
    for mtu, vnet in sorted({(w.mtu, w.vnet) for w in chosen if w.mtu}):
        group = [w for w in chosen if w.mtu == mtu and w.vnet == vnet]
        with netns.Lab(mtu=mtu, vnet_hdr=vnet, sysctls=NS_SYSCTLS) as lab:
            # the kernel reference runs over lo: give it the same MTU as the TUN
            await W.run_client(lab, ["ip", "link", "set", "lo", "mtu", str(max(mtu, 1280))], 10)
            for wl in group:
                for rnd in range(cfg.rounds):
                    order = ("tuntcp", "kernel") if rnd % 2 == 0 else ("kernel", "tuntcp")
                    for side in order:
                        _log(f"{wl.name} round {rnd + 1}/{cfg.rounds} {side}")
                        r = await _measure(wl, lab, profile, cfg, rnd, side, errors)
                        raw[wl.name][side].append(r)
                        if r is not None:
                            _log("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()
                                                  if isinstance(v, (int, float))))
    for wl in chosen:
        if wl.mtu:
            continue
        fn = W.mem_halfopen if wl.name == "mem_halfopen" else W.mem_idle_conn
        kobj = W.slab_objsize("request_sock_TCP" if wl.name == "mem_halfopen" else "TCP")
        for rnd in range(cfg.rounds):
            _log(f"{wl.name} round {rnd + 1}/{cfg.rounds}")
            try:
                raw[wl.name]["tuntcp"].append(fn(profile, cfg.mem_n))
            except W.BenchError as e:
                errors.append(f"{wl.name} tuntcp: {e}")
                raw[wl.name]["tuntcp"].append(None)
            raw[wl.name]["kernel"].append(None if kobj is None else {"bytes_per_item": kobj})
    res = _assemble(cfg, chosen, raw, errors, profile)
    for name, mod in EXTRA.items():
        if cfg.only and name in cfg.only:
            res[name] = await mod.run(cfg, _log)
    return res


def _assemble(cfg, chosen, raw, errors, profile) -> dict:
    rows = {}
    for wl in chosen:
        for row in wl.rows:
            sides = {}
            for side in ("tuntcp", "kernel"):
                sides[side] = _summary([None if r is None else r.get(row.metric)
                                        for r in raw[wl.name][side]])
            t, k = sides["tuntcp"]["median"], sides["kernel"]["median"]
            for side in ("tuntcp", "kernel"):
                sides[side]["extras"] = {
                    x: [None if r is None else r.get(x) for r in raw[wl.name][side]]
                    for x in row.extras}
            if row.higher_better and row.unit != "share" and wl.mtu:
                # rate per CPU-second the endpoint actually got: on a shared machine the
                # endpoint often waits for a core, and this is what one whole core would give
                # if our CPU were the only limit (an upper bound, not a measurement)
                sides["tuntcp"]["extras"]["per_endpoint_cpu_s"] = [
                    None if r is None or not r.get("endpoint_cpu") else
                    r.get(row.metric) / r["endpoint_cpu"] for r in raw[wl.name]["tuntcp"]]
                sides["kernel"]["extras"]["per_endpoint_cpu_s"] = [None] * len(
                    raw[wl.name]["kernel"])
            rows[row.name] = {"workload": wl.name, "title": row.title, "unit": row.unit,
                              "higher_is_better": row.higher_better, **sides,
                              "ratio": (t / k) if t is not None and k else None}
    return {
        "meta": {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "host": platform.node(), "kernel": platform.release(),
                 "python": platform.python_version(), "cpus": os.cpu_count(),
                 "profile": profile.name, "rounds": cfg.rounds, "seconds": cfg.seconds,
                 "quick": cfg.quick, "ab_n": cfg.ab_n, "rr_count": cfg.rr_count,
                 "mem_n": cfg.mem_n},
        "rows": rows, "targets": check_targets(rows), "not_measured": NOT_MEASURED, "errors": errors,
        "raw": raw,
    }


def check_targets(rows: dict) -> list[dict]:
    """Issue 5's targets against the tuntcp medians (or ratios) of the rows that were run."""
    targets = []
    for name, op, thr, what in TARGETS:
        if name not in rows:
            continue
        r = rows[name]
        v = r["ratio"] if op.startswith("ratio") else r["tuntcp"]["median"]
        cmp = op.replace("ratio", "")
        met = None if v is None else {">=": v >= thr, "<=": v <= thr, "<": v < thr}[cmp]
        targets.append({"target": what, "row": name, "measured": v, "threshold": thr,
                        "op": op, "met": met})
    return targets


# ---- report ------------------------------------------------------------------------------------

def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _cell(s) -> str:
    if s["median"] is None:
        return "failed"
    if s["min"] == s["max"]:
        return _fmt(s["median"])
    return f"{_fmt(s['median'])} ({_fmt(s['min'])}–{_fmt(s['max'])})"


def _notes(r) -> str:
    parts = []
    for x in r["tuntcp"].get("extras", {}):
        med = []
        for side in ("tuntcp", "kernel"):
            vals = [v for v in r[side]["extras"].get(x, []) if v is not None]
            med.append(_fmt(statistics.median(vals)) if vals else "-")
        parts.append(f"{x} {med[0]} / {med[1]}")
    return "; ".join(parts)


def markdown(res: dict) -> str:
    m = res["meta"]
    out = [f"# tuntcp bench — {m['when']}", "",
           f"{m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']}, profile {m['profile']}; "
           f"{m['rounds']} round(s) of {m['seconds']} s, tuntcp and kernel alternating. "
           "Cells: median (min–max). Ratio = tuntcp median / kernel median. "
           f"Load average (1 min) at start/end: {m.get('loadavg_start_end', '-')}; "
           f"wall {m.get('wall_seconds', '-')} s.", "",
           "| metric | unit | tuntcp | kernel | ratio | better | notes (medians, tuntcp / kernel) |",
           "|---|---|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        out.append(f"| {r['title']} | {r['unit']} | {_cell(r['tuntcp'])} | {_cell(r['kernel'])} "
                   f"| {_fmt(r['ratio'])}× | {'higher' if r['higher_is_better'] else 'lower'} "
                   f"| {_notes(r)} |")
    for name, why in res["not_measured"].items():
        out.append(f"| {name} | - | {why} | - | - | - | - |")
    out += ["", "## Targets (issue 5)", "", "| target | measured (tuntcp median) | met |",
            "|---|---|---|"]
    for t in res["targets"]:
        out.append(f"| {t['target']} | {_fmt(t['measured'])} | "
                   f"{'-' if t['met'] is None else ('yes' if t['met'] else 'NO')} |")
    sites = [(n, r) for n, r in res["raw"].items() if n.startswith("mem_") and r["tuntcp"]
             and r["tuntcp"][-1] and r["tuntcp"][-1].get("top_sites")]
    if sites:
        out += ["", "## Memory: where the bytes are (tracemalloc, last round, bytes per item)", ""]
        for n, r in sites:
            last = r["tuntcp"][-1]
            out.append(f"- {n} ({last['items']} items): " + ", ".join(
                f"`{site}` {size:.0f}" for site, size in last["top_sites"]))
    for name, mod in EXTRA.items():
        if res.get(name):
            out.append(mod.markdown(res[name]))
    if res["errors"]:
        out += ["", "## Runs that failed", ""] + [f"- {e}" for e in res["errors"]]
    out += ["", "Kernel memory figures are slab object sizes (/proc/slabinfo), not live "
            "measurements; the kernel's ingest/egress reference runs over `lo` with its MTU set "
            "to the TUN's (lo keeps its TSO/GSO offloads).", ""]
    return "\n".join(out)


def write(res: dict, out: str) -> tuple[Path, Path]:
    jp = Path(out)
    jp.parent.mkdir(parents=True, exist_ok=True)
    jp.write_text(json.dumps(res, indent=1, default=float) + "\n")
    mp = jp.with_suffix(".md")
    mp.write_text(markdown(res))
    return jp, mp


def _merge_extra(name: str, res: dict, cfg: Config) -> dict:
    """A run of only an EXTRA workload (storm_scale) updates its section (and its PNG) of an
    existing results file and keeps the other rows, which come from a full run."""
    sc = res[name]
    sc["meta"] = {k: res["meta"][k] for k in ("when", "kernel", "cpus", "wall_seconds",
                                              "loadavg_start_end")}
    sc["png"] = EXTRA[name].plot(sc, Path(cfg.out).with_name(f"{name}.png"))
    jp = Path(cfg.out)
    if cfg.only == [name] and jp.exists():
        old = json.loads(jp.read_text())
        old[name] = sc
        return old
    return res


def _signals() -> None:
    """Ctrl-C and SIGTERM both stop the run through trio's KeyboardInterrupt path, so every
    `with Lab` unwinds (children killed, namespace deleted).  A shell starts background jobs
    with SIGINT ignored; SIGTERM is re-sent as SIGINT so trio's own handler takes it."""
    import signal
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


def main(cfg: Config) -> int:
    """Entry point for the CLI (`tuntcp bench`); LabError/BenchUsageError go to the caller."""
    from ..harness import netns
    problem = netns.privilege_problem()
    if problem:
        raise netns.LabError(problem)
    missing = [t for t in ("ab", "socat", "hping3", "timeout")
               if not any(os.access(os.path.join(d, t), os.X_OK)
                          for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin"])]
    if missing:
        raise BenchUsageError(f"missing tools: {', '.join(missing)} (run `make tools`)")
    netns.sweep_stale()
    _signals()
    t0, started = time.perf_counter(), time.time()
    load0 = os.getloadavg()
    res = signals.run(run_all, cfg)
    res["meta"]["wall_seconds"] = round(time.perf_counter() - t0, 1)
    # other work on the machine skews everything; record how busy it was
    res["meta"]["loadavg_start_end"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    for name in EXTRA:
        if res.get(name):
            res = _merge_extra(name, res, cfg)
    jp, mp = write(res, cfg.out)
    print(markdown(res))
    print(f"wrote {jp} and {mp}")
    if cfg.profile_row:
        raw = Path(cfg.out).with_name(f"profile-{cfg.profile_row}.txt")
        # only a profile this run wrote (an old file stays when py-spy is missing or failed)
        if raw.exists() and raw.stat().st_size and raw.stat().st_mtime >= started:
            print(f"\npy-spy, tuntcp side of {cfg.profile_row} (self share, inclusive share):")
            for fn, s, i in top_functions(raw):
                print(f"  {s:6.1%} {i:6.1%}  {fn}")
    return 0


# ---- command line (`tuntcp bench`, wired in cli.py) --------------------------------------------

def add_arguments(s) -> None:
    s.add_argument("--quick", action="store_true",
                   help="CI mode: 1 round, under a second per run, small N, every workload")
    s.add_argument("--rounds", type=int, help="rounds per workload (default 3; --quick 1)")
    s.add_argument("--seconds", type=float, help="load duration per timed run (default 2)")
    s.add_argument("--out", default="bench", metavar="DIR",
                   help="output folder: results.json and results.md (a path ending in .json "
                        "is still taken as the JSON file)")
    s.add_argument("--only", metavar="WORKLOAD,...",
                   help="comma-separated subset of: " + ", ".join(BY_NAME) + "; and "
                        "storm_scale (the Kafka storm at 500-5,000 producers with the kernel "
                        "column; only when named, ~10 min per round)")
    s.add_argument("--profile", default=DEFAULT_PROFILE, help="kernel profile for the endpoint")
    s.add_argument("--profile-row", metavar="ROW",
                   help="record the tuntcp side of this row with py-spy (first round)")


def run_cli(args) -> int:
    out = args.out if args.out.endswith(".json") else os.path.join(args.out, "results.json")
    check_out_dir(os.path.dirname(out) or ".")           # before any measuring
    cfg = make_config(quick=args.quick, rounds=args.rounds, seconds=args.seconds, out=out,
                      only=args.only, profile=args.profile, profile_row=args.profile_row)
    return main(cfg)      # Ctrl-C/SIGTERM: tuntcp.cli.main reports them once (130/143)


