"""`tuntcp storm`: knobs, a live progress display, and the side-by-side table at the end."""
from __future__ import annotations

import argparse
import sys
import time

from tuntcp.scenarios.cli_common import time_option
from tuntcp.scenarios.storm import StormConfig, StormError, run_storm


NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = StormConfig()
    p.add_argument("--clients", type=int, default=d.clients, help="producers (kernel sockets)")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses they spread over")
    p.add_argument("--clients-per-process", type=int, default=d.clients_per_process, metavar="N",
                   help="producers per process; more run in worker processes (0: as many as "
                        "the open-files limit allows)")
    p.add_argument("--backlog", type=int, default=d.backlog, help="broker listen backlog (Kafka: 50)")
    p.add_argument("--syncookies", type=int, choices=(0, 1, 2), default=d.syncookies, help="broker tcp_syncookies")
    p.add_argument("--profile", default=d.profile, help="kernel profile of the broker")
    p.add_argument("--rcvbuf", type=int, default=d.rcvbuf, help="broker SO_RCVBUF")
    p.add_argument("--request-bytes", type=int, default=d.request_bytes, help="bytes per produce request")
    p.add_argument("--requests", type=int, default=d.requests_per_client, help="requests per producer")
    time_option(p, "--interval-s", old="--interval", dest="interval", default=d.request_interval_s, help="time between a producer's requests")
    p.add_argument("--rtt-ms", type=float, default=d.rtt_ms, help="link RTT from the userspace link model")
    p.add_argument("--loss", type=float, default=d.loss, help="loss probability each way")
    p.add_argument("--backoff", choices=("kafka", "immediate", "fixed"), default=d.backoff, help="producer reconnect backoff")
    time_option(p, "--down-s", old="--down", dest="down", default=d.down_s, help="how long the broker is gone")
    time_option(p, "--duration-s", old="--duration", dest="duration", default=d.duration_s, help="limit per mode")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the link model and start times")
    p.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE", help="profile knob override")
    p.add_argument("--out", default=d.out, metavar="DIR", help="output folder")
    p.add_argument("--modes", default="buggy,fixed", help="buggy,fixed or one of them")
    p.add_argument("--no-pcap", action="store_true", help="write no pcaps")
    p.add_argument("--name", default=d.control_name,
                   help="control socket name, for `tuntcp ss/nstat --name NAME` while it runs "
                        "(give concurrent storms different names)")
    p.add_argument("--quiet", action="store_true", help="no live display")


def config_from(args) -> StormConfig:
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    bad = [m for m in modes if m not in ("buggy", "fixed")]
    if bad or not modes:
        raise StormError(f"--modes takes buggy and/or fixed, got {args.modes!r}")
    return StormConfig(
        clients=args.clients, hosts=args.hosts, clients_per_process=args.clients_per_process,
        backlog=args.backlog, syncookies=args.syncookies,
        profile=args.profile, rcvbuf=args.rcvbuf, request_bytes=args.request_bytes,
        requests_per_client=args.requests, request_interval_s=args.interval, rtt_ms=args.rtt_ms,
        loss=args.loss, backoff=args.backoff, down_s=args.down, duration_s=args.duration,
        seed=args.seed, sysctl=list(args.sysctl), out=args.out, pcap=not args.no_pcap, modes=modes,
        control_name=args.name)


class Display:
    """A rich live panel while the storm runs; kernel log lines are printed above it."""

    def __init__(self, quiet: bool):
        self.quiet = quiet or not sys.stdout.isatty()
        self.state: dict = {}
        self.live = None
        self.mode = ""
        self._last = 0.0

    def __enter__(self):
        if not self.quiet:
            from rich.live import Live
            self.live = Live(self._render(), refresh_per_second=8, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def _render(self):
        from rich.table import Table
        t = Table(title=f"tuntcp storm: {self.mode or 'starting'}", show_header=False)
        for k in ("phase", "connected", "t", "established", "syn", "accept", "done"):
            if k in self.state:
                v = self.state[k]
                t.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
        return t

    def __call__(self, **kw):
        if "log_line" in kw:
            print(f"[{self.mode}] kernel: {kw['log_line']}", flush=True)
            return
        if "mode" in kw:
            self.mode = kw.pop("mode")
        self.state.update(kw)
        now = time.monotonic()
        if self.live is not None and now - self._last > 0.1:
            self._last = now
            self.live.update(self._render())


def summary_table(report: dict) -> str:
    runs = report["runs"]
    modes = list(runs)
    rows = [("connections_made",), ("time_to_all_connected_s",), ("syn_retransmits",),
            ("cookie_connections",), ("wscale_mismatches",), ("producer_resets",)]
    w = 28
    out = [f"{'':{w}}" + "".join(f"{m:>14}" for m in modes)]
    for (k,) in rows:
        out.append(f"{k:{w}}" + "".join(f"{_v(runs[m]['summary'].get(k)):>14}" for m in modes))
    for hs in ("synq", "cookie"):
        for q in ("p50", "p99", "max"):
            out.append(f"{'latency_ms ' + hs + ' ' + q:{w}}" + "".join(
                f"{_v(runs[m]['summary']['latency_ms_by_handshake'].get(hs, {}).get(q)):>14}" for m in modes))
    for m in modes:
        c = next((c for c in runs[m]["connections"] if c["handshake"] == "cookie"), None)
        if c:
            out.append(f"{m} cookie connection {c['client']}: client_snd_wscale {c['client_snd_wscale']}, "
                       f"server_rcv_wscale {c['server_rcv_wscale']}, window field {c['window_field']}, "
                       f"client_snd_wnd {c['client_snd_wnd']}")
    for m in modes:
        for ln in runs[m]["summary"].get("kernel_log", [])[:1]:
            out.append(f"{m} kernel log: {ln}")
    if report.get("comparison", {}).get("headline"):
        out.append(report["comparison"]["headline"])
    return "\n".join(out)


def _v(x) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if isinstance(x, float) else str(x)


def main(args) -> int:
    import trio
    try:
        cfg = config_from(args)
        cfg.check()
        from tuntcp.profiles import get_profile
        get_profile(cfg.profile, cfg.sysctl)          # fail fast on a bad profile or knob
    except (StormError, ValueError) as e:
        print(f"tuntcp storm: error: {e}", file=sys.stderr)
        return 2
    disp = Display(args.quiet)

    async def go():
        report = None
        with disp:
            report = await run_storm(cfg, disp)
        return report

    try:
        report = trio.run(go)
    except StormError as e:
        print(f"tuntcp storm: error: {e}", file=sys.stderr)
        return 2
    print(summary_table(report))
    art = report["artifacts"]
    print(f"\nreport: {cfg.out}/report.json, {art['markdown']}")
    print("plots:  " + ", ".join(art["plots"]))
    if cfg.pcap:
        print("pcap:   " + ", ".join(f"{m}: {p}" for m, p in art["pcap"].items()) + "   (tshark -r FILE)")
    return 0
