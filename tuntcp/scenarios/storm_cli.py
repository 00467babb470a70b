"""`tuntcp storm`: knobs, a live progress display, and the side-by-side table at the end."""
from __future__ import annotations

import argparse
import sys
import time

from tuntcp.scenarios.cli_common import time_option
from tuntcp.scenarios.storm import StormConfig, StormError, run_storm
from tuntcp import signals


NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = StormConfig()
    p.add_argument("--clients", type=int, default=d.clients, help="producers (kernel sockets)")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses they spread over")
    p.add_argument("--family", choices=("ipv4", "ipv6"), default="ipv4",
                   help="address family of the lab, the producers and the broker")
    p.add_argument("--clients-per-process", type=int, default=d.clients_per_process, metavar="N",
                   help="producers per process; more run in worker processes (0: as many as "
                        "the open-files limit allows)")
    p.add_argument("--backlog", type=int, default=d.backlog, help="broker listen backlog (Kafka: 50)")
    p.add_argument("--shards", type=int, default=d.shards, metavar="N",
                   help="broker endpoint processes on a multi-queue TUN, one listener (1 on "
                   "this 2-core machine: see bench/README.md)")
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
    p.add_argument("--modes", default="buggy,fixed,kernel",
                   help="any of buggy, fixed, kernel (the host's own listener, same producers and link)")
    p.add_argument("--no-pcap", action="store_true", help="write no pcaps")
    p.add_argument("--no-offload", action="store_true",
                   help="plain packets on the model's TUN (default: IFF_VNET_HDR, TSO in and GSO out)")
    p.add_argument("--name", default=d.control_name,
                   help="control socket name, for `tuntcp ss/nstat --name NAME` while it runs "
                        "(give concurrent storms different names)")
    p.add_argument("--quiet", action="store_true", help="no live display")
    t = p.add_argument_group("storm your own server (--target)")
    t.add_argument("--target", metavar="CMD", default="",
                   help="start CMD (sh -c) inside the lab and storm it instead of the built-in "
                        "brokers; it gets TUNTCP_ADDR and TUNTCP_PORT and must listen there")
    t.add_argument("--target-port", type=int, default=d.target_port, help="the port your server listens on")
    t.add_argument("--request", default=d.request, metavar="BYTES",
                   help="literal request, escapes allowed (e.g. 'PING\\r\\n'); default: a 4-byte "
                        "size prefix and --request-bytes random bytes")
    t.add_argument("--reply-bytes", type=int, default=d.reply_bytes,
                   help="a response is complete after this many bytes ...")
    t.add_argument("--reply-delim", default=d.reply_delim, metavar="BYTES",
                   help="... or when it ends with these (e.g. '\\r\\n')")
    from tuntcp.shell.relay import hostport
    p.add_argument("--front", type=hostport, default=(), metavar="HOST:PORT",
                   help="the modelled broker relays each producer to a kernel-socket server at "
                        "HOST:PORT in the lab namespace (buggy and fixed modes)")
    p.add_argument("--front-cmd", default="", metavar="CMD", help="start the --front backend in the lab namespace")


def config_from(args) -> StormConfig:
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if args.front and args.modes == "buggy,fixed,kernel":
        modes = ("buggy", "fixed")
    if args.target:
        if args.modes != "buggy,fixed,kernel":
            raise StormError("--target storms the given server only: leave out --modes")
        modes = ("target",)
    bad = [m for m in modes if m not in ("buggy", "fixed", "kernel") and not args.target]
    if bad or not modes:
        raise StormError(f"--modes takes buggy, fixed and/or kernel, got {args.modes!r}")
    return StormConfig(
        clients=args.clients, hosts=args.hosts, clients_per_process=args.clients_per_process,
        shards=args.shards,
        family=6 if args.family == "ipv6" else 4,
        backlog=args.backlog, syncookies=args.syncookies,
        profile=args.profile, rcvbuf=args.rcvbuf, request_bytes=args.request_bytes,
        requests_per_client=args.requests, request_interval_s=args.interval, rtt_ms=args.rtt_ms,
        loss=args.loss, backoff=args.backoff, down_s=args.down, duration_s=args.duration,
        seed=args.seed, sysctl=list(args.sysctl), out=args.out, pcap=not args.no_pcap, modes=modes,
        offload=not args.no_offload,
        control_name=args.name, target=args.target, target_port=args.target_port,
        request=args.request, reply_bytes=args.reply_bytes, reply_delim=args.reply_delim,
        front=args.front, front_cmd=args.front_cmd)


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
    heads = [runs[m]["profile"] if m == "kernel" else m for m in modes]
    out = [f"{'':{w}}" + "".join(f"{h:>20}" for h in heads)]
    for (k,) in rows:
        out.append(f"{k:{w}}" + "".join(f"{_v(runs[m]['summary'].get(k)):>20}" for m in modes))
    for hs in ("synq", "cookie", "all"):
        for q in ("p50", "p99", "max"):
            out.append(f"{'latency_ms ' + hs + ' ' + q:{w}}" + "".join(
                f"{_v(_lat(runs[m]['summary'], hs).get(q)):>20}" for m in modes))
    sat = {m: runs[m].get("saturation") or {} for m in modes}
    out.append(f"{'saturation':{w}}" + "".join(f"{sat[m].get('verdict', '-'):>20}" for m in modes))
    out.append(f"{'  cpu_share, lag p99 ms':{w}}" + "".join(
        f"{_v(sat[m].get('cpu_share')) + ', ' + _v(sat[m].get('loop_lag_ms', {}).get('p99')):>20}"
        for m in modes))
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
    out += [ln for m in modes if (ln := saturation_line(m, runs[m]))]
    return "\n".join(out)


def _lat(summary: dict, hs: str) -> dict:
    return summary["latency_ms_all"] if hs == "all" else summary["latency_ms_by_handshake"].get(hs, {})


def saturation_line(mode: str, run: dict) -> str | None:
    """One plain line when a run was cpu-bound, with what to change."""
    sat = run.get("saturation") or {}
    if sat.get("verdict") != "cpu-bound":
        return None
    why = sat["reason"]
    todo = []
    if mode in ("kernel", "target"):
        todo.append("the kernel column is pessimistic (its packets queued in the relay or the "
                    "producers were short of CPU)")
    if "endpoint" in why or "late" in why or "TUN" in why:
        todo.append("fewer --clients, a longer --interval or smaller --request-bytes (the "
                    "endpoint is one Python core)")
    if "producer" in why:
        todo.append("fewer --clients or a longer --interval (the producers need CPU too)")
    if "machine" in why:
        todo.append("a quieter machine or a lighter load (all cores were busy)")
    return f"{mode}: CPU-BOUND, do not read these latencies as the model's. {why} Change: " + \
        "; ".join(dict.fromkeys(todo)) + "."


def _v(x) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if isinstance(x, float) else str(x)


def main(args) -> int:
    import trio

    from tuntcp.shell.shards import ShardError, check_shards
    try:
        cfg = config_from(args)
        cfg.check()
        from tuntcp.profiles import get_profile
        # fail fast on a bad profile or knob, or shards the profile cannot share a listener over
        check_shards(cfg.shards, get_profile(cfg.profile, cfg.sysctl))
    except (StormError, ValueError, ShardError) as e:
        print(f"tuntcp storm: error: {e}", file=sys.stderr)
        return 2
    disp = Display(args.quiet)

    async def go():
        report = None
        with disp:
            report = await run_storm(cfg, disp)
        return report

    try:
        report = signals.run(go)
    except StormError as e:
        print(f"tuntcp storm: error: {e}", file=sys.stderr)
        return 2
    print(summary_table(report))
    art = report["artifacts"]
    print(f"\nreport: {cfg.out}/report.json, {art['markdown']}")
    print("plots:  " + ", ".join(art["plots"]))
    if cfg.pcap:
        print("pcap:   " + ", ".join(f"{m}: {p}" for m, p in art["pcap"].items() if p) + "   (tshark -r FILE)")
    return 0
