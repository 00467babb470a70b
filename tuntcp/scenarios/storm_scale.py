"""`tuntcp bench --only storm_scale`: the Kafka storm (scenarios/storm.py) at growing sizes, each
with its three columns (buggy, fixed, the host kernel), and whether the endpoint kept up.

Per size N (SIZES, default mix: 64 KiB every second, 5 requests, 2 ms RTT, no pcap) and round:
buggy and fixed cookie p50/p99, fixed and kernel p50/p99 over all requests, the buggy/fixed
contrast, the fixed/kernel ratio, each mode's saturation verdict and CPU share, and the
wscale mismatches. A mode that does not finish within --duration is a failed point with its
one-line reason, not an error of the bench. Results go into results.json under "storm_scale"
(merged into an existing file, so a storm_scale run keeps the other rows), a section of
results.md and storm_scale.png next to them.

The bench layer sits below the scenarios, so this module registers itself with the bench
(``bench.cli.EXTRA``) when imported; the CLI imports it before running `tuntcp bench`.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

SIZES = (500, 1000, 2000, 5000, 10000)
QUICK_SIZES = (100,)
# From this size on, one round: each mode there runs up to --duration (60 s) and the answer
# (did not finish, or finished cpu-bound) has been the same every time; three would add ~20 min.
ONE_ROUND_FROM = 5000
MODES = ("buggy", "fixed", "kernel")


def _point(report: dict) -> dict:
    runs, comp = report["runs"], report["comparison"]

    def lat(m, hs, q):
        s = runs.get(m, {}).get("summary")
        if not s:
            return None
        return (s["latency_ms_all"] if hs == "all" else s["latency_ms_by_handshake"].get(hs, {})).get(q)
    p = {f"{m}_{hs}_{q}_ms": lat(m, hs, q) for m, hs in (("buggy", "cookie"), ("fixed", "cookie"),
                                                          ("fixed", "all"), ("kernel", "all"))
         for q in ("p50", "p99")}
    p["contrast_p50"] = comp.get("cookie_latency_p50_ratio")
    p["fixed_to_kernel_p50"] = comp.get("fixed_to_kernel_p50_ratio")
    p["fixed_to_kernel_p99"] = comp.get("fixed_to_kernel_p99_ratio")
    for m, r in runs.items():
        sat = r["saturation"]
        p[f"{m}_verdict"] = sat["verdict"]
        p[f"{m}_cpu_share"] = sat["cpu_share"]
        p[f"{m}_lag_p99_ms"] = sat["loop_lag_ms"]["p99"]
        p[f"{m}_other_cpu"] = sat.get("other_cpu_share")
        p[f"{m}_machine_busy"] = sat.get("machine_busy")
        p[f"{m}_connections"] = r["summary"]["connections_made"]
        p[f"{m}_wscale_mismatches"] = r["summary"]["wscale_mismatches"]
        p[f"{m}_cookie_connections"] = r["summary"]["cookie_connections"]
    return p


async def run(cfg, log, sizes=None) -> dict:
    """Every size and round; each mode runs on its own so one that does not finish does not
    hide the others."""
    from .storm import StormConfig, StormError, compare, run_mode
    sizes = sizes or (QUICK_SIZES if cfg.quick else SIZES)
    outdir = Path(cfg.out).with_name("storm_scale")
    points: dict = {}
    for n in sizes:
        points[n] = []
        rounds = 1 if n >= ONE_ROUND_FROM else cfg.rounds
        for rnd in range(rounds):
            scfg = StormConfig(clients=n, pcap=False, out=str(outdir / f"n{n}"),
                               control_name=f"bench-storm-{n}")
            scfg.check()
            runs, failed, walls = {}, {}, {}
            for mode in MODES:
                log(f"storm_scale N={n} round {rnd + 1}/{rounds} {mode}")
                t0 = time.monotonic()
                try:
                    runs[mode] = await run_mode(scfg, mode, outdir / f"n{n}")
                except StormError as e:
                    failed[mode] = str(e)
                walls[mode] = round(time.monotonic() - t0, 1)
            pt = _point({"runs": runs, "comparison": compare(runs)}) if runs else {}
            pt.update({"failed": failed, "wall_s": walls})
            log(f"  {pt}")
            points[n].append(pt)
    return {"sizes": list(sizes), "rounds": cfg.rounds, "one_round_from": ONE_ROUND_FROM, "points": points,
            "config": "default storm mix: 64 KiB requests every 1 s, 5 per producer, 2 ms RTT, "
                      "backlog 50, SO_RCVBUF 102400, syncookies 1, linux-5.4 profile, offload on, 1 shard, no pcap"}


def _med(pts, key):
    vals = [p.get(key) for p in pts if p.get(key) is not None]
    return statistics.median(vals) if vals else None


def _rng(pts, key) -> str:
    vals = [p.get(key) for p in pts if p.get(key) is not None]
    if not vals:
        return "-"
    m = statistics.median(vals)
    f = (lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}") if isinstance(m, float) else str
    return f(m) if len(vals) == 1 else f"{f(m)} ({f(min(vals))}–{f(max(vals))})"


def _verdicts(pts, m) -> str:
    vs = [p.get(f"{m}_verdict") for p in pts]
    fails = [p["failed"].get(m) for p in pts if p.get("failed", {}).get(m)]
    if fails:
        return "did not finish"
    return "/".join(sorted({v for v in vs if v})) or "-"


def markdown(res: dict) -> str:
    out = ["", "## Storm at scale (`--only storm_scale`)", "", res["config"] + ". Medians over "
           f"{res['rounds']} round(s) (one from {res.get('one_round_from', '-')} producers on), "
           "(min–max) when more than one. Latencies in ms; the kernel "
           "column is the host's own listener behind the same relayed link model.", "",
           "| producers | buggy cookie p50 | fixed cookie p50 | fixed all p50 / p99 | kernel all p50 / p99 "
           "| contrast (buggy/fixed cookie p50) | fixed/kernel p50 | buggy, fixed, kernel verdict | "
           "endpoint CPU buggy / fixed | relay CPU | buggy cookie conns with wscale 1 vs 7 |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, pts in res["points"].items():
        out.append(
            f"| {n} | {_rng(pts, 'buggy_cookie_p50_ms')} | {_rng(pts, 'fixed_cookie_p50_ms')} "
            f"| {_rng(pts, 'fixed_all_p50_ms')} / {_rng(pts, 'fixed_all_p99_ms')} "
            f"| {_rng(pts, 'kernel_all_p50_ms')} / {_rng(pts, 'kernel_all_p99_ms')} "
            f"| {_rng(pts, 'contrast_p50')} | {_rng(pts, 'fixed_to_kernel_p50')} "
            f"| {', '.join(_verdicts(pts, m) for m in MODES)} "
            f"| {_rng(pts, 'buggy_cpu_share')} / {_rng(pts, 'fixed_cpu_share')} "
            f"| {_rng(pts, 'kernel_cpu_share')} "
            f"| {_rng(pts, 'buggy_wscale_mismatches')} of {_rng(pts, 'buggy_cookie_connections')} |")
    fails = [(n, m, e) for n, pts in res["points"].items() for p in pts
             for m, e in p.get("failed", {}).items()]
    if fails:
        out += ["", "Runs that did not finish:", ""] + [f"- N={n} {m}: {e}" for n, m, e in fails]
    if res.get("png"):
        out += ["", f"![storm at scale]({Path(res['png']).name})"]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ns = [int(n) for n in res["points"]]
    pts = [res["points"][k] for k in res["points"]]
    fig, ax = plt.subplots(3, 1, figsize=(7, 9), sharex=True)
    for key, label, style in (("fixed_cookie_p50_ms", "fixed cookie p50", "o-"),
                              ("fixed_all_p99_ms", "fixed all p99", "o--"),
                              ("kernel_all_p50_ms", "kernel p50", "s-"),
                              ("kernel_all_p99_ms", "kernel p99", "s--"),
                              ("buggy_cookie_p50_ms", "buggy cookie p50", "x-")):
        ys = [_med(p, key) for p in pts]
        ax[0].plot([n for n, y in zip(ns, ys) if y], [y for y in ys if y], style, label=label)
    ax[0].set_yscale("log")
    ax[0].set_ylabel("produce latency (ms)")
    ax[0].set_title("Kafka restart storm: tuntcp (buggy, fixed) vs the host kernel")
    ys = [_med(p, "contrast_p50") for p in pts]
    ax[1].plot([n for n, y in zip(ns, ys) if y], [y for y in ys if y], "o-", label="buggy/fixed cookie p50")
    ax[1].axhline(10, color="grey", linestyle=":", label="10x")
    ax[1].set_ylabel("contrast")
    for m, style in (("buggy", "x-"), ("fixed", "o-"), ("kernel", "s-")):
        ys = [_med(p, f"{m}_cpu_share") for p in pts]
        lab = "relay (kernel column)" if m == "kernel" else f"endpoint, {m}"
        ax[2].plot([n for n, y in zip(ns, ys) if y is not None], [y for y in ys if y is not None],
                   style, label=lab)
        for n, p in zip(ns, pts):
            v = _verdicts(p, m)
            y = _med(p, f"{m}_cpu_share")
            if y is not None and v != "model-bound":
                ax[2].annotate(v, (n, y), fontsize=7)
    ax[2].axhline(0.9, color="grey", linestyle=":", label="cpu-bound share")
    ax[2].set_ylabel("CPU share (1 = one core)")
    ax[2].set_xlabel("producers")
    for a in ax:
        a.set_xscale("log")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _register() -> None:
    import sys
    from ..bench.cli import EXTRA
    EXTRA["storm_scale"] = sys.modules[__name__]


_register()
