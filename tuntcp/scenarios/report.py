"""Turn a scenario result (see docs/storm-report.md) into report.md and PNG plots."""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

SCHEMA_VERSION = 1
CC_NOTE = ("the lab namespaces' kernel clients use the host's default congestion control: a new "
           "network namespace inherits net.ipv4.tcp_congestion_control from the host")
_client_cc: list[str] = []


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tuntcp")
    except PackageNotFoundError:
        return "unknown"


def note_client_cc(name: str) -> None:
    """Remember the congestion control read inside a lab namespace (the rig calls this)."""
    _client_cc[:] = [name]


def client_cc() -> str | None:
    """The clients' congestion control: as read in the last lab namespace, else read in a
    fresh network namespace (which, like the labs, inherits the host's default)."""
    if _client_cc:
        return _client_cc[0]
    try:
        r = subprocess.run(["unshare", "--net", "cat", "/proc/sys/net/ipv4/tcp_congestion_control"],
                           capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None


def stamp(report: dict) -> dict:
    """The facts every report carries: schema and tool version, host kernel, the clients'
    congestion control, the endpoint's profile(s), the address family."""
    cfg = report.get("config", {})
    report.update({
        "schema_version": SCHEMA_VERSION, "tool_version": tool_version(),
        "host_kernel": os.uname().release,
        "clients_congestion_control": client_cc(), "clients_congestion_control_note": CC_NOTE,
        "profile": cfg.get("profile", cfg.get("profiles")),
        "family": f"ipv{cfg.get('family', 4)}",     # the lab's address family (--family)
    })
    return report


def percentiles(values: list[float]) -> dict:
    """p50/p99/max/n of a list (nearest-rank), empty-safe."""
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    v = sorted(values)

    def rank(p: float) -> float:
        return v[max(0, math.ceil(p * len(v)) - 1)]

    return {"p50": round(rank(0.50), 3), "p99": round(rank(0.99), 3), "max": round(v[-1], 3), "n": len(v)}


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 1 else f"{x:.3g}"
    return str(x)


def render_markdown(report: dict) -> str:
    runs = report["runs"]
    modes = list(runs)
    out = [f"# {report['scenario']}", ""]
    cfg = report["config"]
    out.append("Config: " + ", ".join(f"`{k}={v}`" for k, v in cfg.items()))
    out += ["", "## Side by side", "", "| | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    keys = ["connections_made", "time_to_all_connected_s", "syn_retransmits", "cookie_connections",
            "wscale_mismatches"]
    for k in keys:
        out.append(f"| {k} | " + " | ".join(_fmt(runs[m]["summary"].get(k)) for m in modes) + " |")
    for path in ("synq", "cookie"):
        for q in ("p50", "p99", "max"):
            row = [_fmt(runs[m]["summary"]["latency_ms_by_handshake"].get(path, {}).get(q)) for m in modes]
            out.append(f"| latency_ms {path} {q} | " + " | ".join(row) + " |")
    names = sorted({n for m in modes for n in runs[m]["summary"].get("counters", {})})
    for n in names:
        out.append(f"| {n} | " + " | ".join(_fmt(runs[m]["summary"]["counters"].get(n, 0)) for m in modes) + " |")
    comp = report.get("comparison", {})
    if comp.get("headline"):
        out += ["", f"**{comp['headline']}**"]
    for m in modes:
        logs = runs[m]["summary"].get("kernel_log", [])
        out += ["", f"### {m}: kernel log the profile would print", ""]
        out += [f"    {ln}" for ln in logs] or ["    (none)"]
        conns = runs[m]["connections"]
        sample = [c for c in conns if c["handshake"] == "cookie"][:3] + [c for c in conns if c["handshake"] == "synq"][:3]
        if sample:
            out += ["", f"### {m}: sample connections", "",
                    "| client | handshake | client_snd_wscale | server_rcv_wscale | window_field | client_snd_wnd | p50 ms | p99 ms | retrans |",
                    "|---|---|---|---|---|---|---|---|---|"]
            for c in sample:
                lat = c.get("latency_ms") or {}
                out.append(f"| {c['client']} | {c['handshake']} | {c['client_snd_wscale']} | {c['server_rcv_wscale']} | "
                           f"{c['window_field']} | {c['client_snd_wnd']} | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p99'))} | {c['retransmits']} |")
    return "\n".join(out) + "\n"


def plot(report: dict, outdir: Path) -> list[str]:
    """Latency CDF by handshake path and mode, connection timeline, queue depths. Returns paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    runs = report["runs"]

    fig, ax = plt.subplots(figsize=(7, 4))
    for mode, run in runs.items():
        for hs, lats in sorted(run.get("latencies", {}).items()):
            if lats:
                v = sorted(lats)
                ax.step(v, [(i + 1) / len(v) for i in range(len(v))], where="post", label=f"{mode} / {hs} (n={len(v)})")
    ax.set_xscale("log")
    ax.set_xlabel("request latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Produce latency CDF by handshake path")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    p = outdir / "latency_cdf.png"
    fig.tight_layout(); fig.savefig(p, dpi=110); plt.close(fig)
    paths.append(str(p))

    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for mode, run in runs.items():
        tl = run.get("timeline", {})
        if tl.get("t"):
            axes[0].plot(tl["t"], tl["established"], label=f"{mode} established")
            if len(tl["syn_queue"]) == len(tl["t"]):     # the kernel's is not sampled
                axes[1].plot(tl["t"], tl["syn_queue"], label=f"{mode} SYN queue")
            axes[1].plot(tl["t"], tl["accept_queue"], label=f"{mode} accept queue", linestyle="--")
    axes[0].set_ylabel("connections")
    axes[0].set_title("Connection timeline after the broker restart")
    axes[1].set_ylabel("queue depth")
    axes[1].set_xlabel("seconds since re-listen")
    for a in axes:
        a.legend(fontsize=8); a.grid(True, alpha=0.3)
    p = outdir / "timeline_queues.png"
    fig.tight_layout(); fig.savefig(p, dpi=110); plt.close(fig)
    paths.append(str(p))
    return paths


def write_report(report: dict, outdir, render) -> dict:
    """``report.md`` (``render(report)``, after its own path is in the artifacts) and
    ``report.json`` in ``outdir``: the one writer every scenario uses."""
    outdir = Path(outdir)
    md = outdir / "report.md"
    report.setdefault("artifacts", {})["markdown"] = str(md)
    stamp(report)
    md.write_text(render(report))
    (outdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def write_all(report: dict, outdir: Path) -> dict:
    outdir.mkdir(parents=True, exist_ok=True)
    report.setdefault("artifacts", {})["plots"] = plot(report, outdir)
    return write_report(report, outdir, render_markdown)
