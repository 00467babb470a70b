"""`tuntcp` command line: serve an endpoint in a lab namespace, and look at it like ss/nstat.

    tuntcp serve --app http --port 8080 --profile linux-5.4 --sysctl net.core.somaxconn=16
    tuntcp ss -lnt     tuntcp ss -tni     tuntcp nstat -az     tuntcp netstat -Lan     tuntcp profiles

User mistakes (unknown profile or knob, bad value, no endpoint running, not root) print one
line on stderr and exit 2; no tracebacks.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import leaves

DEFAULT_NAME = "tuntcp"
DEFAULT_PROFILE = "linux-6.1"
EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + line
        raise UsageError(f"{message} (see `{self.prog} -h`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tuntcp", description="A TCP endpoint on a TUN device that accepts "
                "connections the way Linux or FreeBSD does.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    s = sub.add_parser("serve", help="run an endpoint in a fresh network namespace")
    s.add_argument("--name", default=DEFAULT_NAME, help="endpoint name for `ss`/`nstat` (--name)")
    s.add_argument("--app", choices=("echo", "discard", "http"), default="http")
    s.add_argument("--port", type=_port, default=8080)
    s.add_argument("--backlog", type=_nonneg_int, default=4096,
                   help="listen(2) backlog (clamped to net.core.somaxconn)")
    s.add_argument("--profile", default=DEFAULT_PROFILE, help="kernel profile (see `tuntcp profiles`)")
    s.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE",
                   help="override a profile knob; repeatable")
    s.add_argument("--rcvbuf", type=_nonneg_int, help="SO_RCVBUF on the listener (before listen)")
    s.add_argument("--pcap", metavar="FILE", help="write every packet (both directions) here")
    s.add_argument("--events", metavar="FILE", help="JSON-lines event log")
    s.add_argument("--delay", type=_seconds, default=0.0, help="one-way delay, seconds (each way)")
    s.add_argument("--jitter", type=_seconds, default=0.0)
    s.add_argument("--loss", type=_prob, default=0.0, help="loss probability per packet (each way)")
    s.add_argument("--reorder", type=_prob, default=0.0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--duration", type=_seconds, default=None, help="stop after this many seconds")
    s.add_argument("--offload", action="store_true",
                   help="IFF_VNET_HDR: kernel-verified checksums, TSO in, GSO out (no link model)")
    s.add_argument("--family", choices=("ipv4", "ipv6"), default="ipv4",
                   help="address family of the lab (ipv6: 2001:2::1 -> 2001:2:0:1::1)")

    from .obs import commands as obs_cmds
    obs_cmds.add_ss_arguments(sub.add_parser("ss", help="sockets of a running endpoint, printed like ss(8)"))
    obs_cmds.add_nstat_arguments(sub.add_parser("nstat", help="counters of a running endpoint, printed like nstat(8)"))
    obs_cmds.add_netstat_arguments(sub.add_parser("netstat", help="listen queues of a running endpoint, like FreeBSD `netstat -Lan`"))

    s = sub.add_parser("profiles", help="list kernel profiles, or the knobs of one")
    s.add_argument("profile", nargs="?")

    import importlib

    from tuntcp.scenarios import SCENARIOS
    for name, (module, help_text) in SCENARIOS.items():
        s = sub.add_parser(name, help=help_text)
        s.set_defaults(_scenario=module)
        importlib.import_module(module).add_arguments(s)

    s = sub.add_parser("bench", help="measure the endpoint side by side with the kernel")
    from .bench.cli import add_arguments as _bench_args
    _bench_args(s)
    return p


def _port(s: str) -> int:
    v = _int(s)
    if not 0 < v < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {s}")
    return v


def _int(s: str) -> int:
    try:
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None


def _nonneg_int(s: str) -> int:
    v = _int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def _seconds(s: str) -> float:
    """Seconds, or with a unit like tc: 10ms, 1.5s, 200us."""
    t = s.strip().lower()
    scale = 1.0
    for suffix, mul in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], mul
            break
    try:
        v = float(t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {s!r} (e.g. 0.01, 10ms)") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def _prob(s: str) -> float:
    t = s.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {s!r} (e.g. 0.01 or 1%)") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"probability must be in [0, 1], got {s}")
    return v


# ---- commands -----------------------------------------------------------------------------

def cmd_profiles(args) -> int:
    from .profiles import REGISTRY, get_profile, names
    if args.profile:
        prof = get_profile(args.profile)
        width = max(len(k) for k in prof)
        for k in sorted(prof):
            v = prof[k]
            v = " ".join(str(x) for x in v) if isinstance(v, tuple) else v
            print(f"{k:<{width}}  {v}")
        return 0
    for n in names():
        prof = REGISTRY[n]
        print(f"{n:<12} {prof.family:<8} somaxconn={prof.get('net.core.somaxconn', '-')}"
              f" syncookies={prof.get('net.ipv4.tcp_syncookies', '-')}")
    return 0


def cmd_ss(args) -> int:
    from .obs.commands import cmd_ss
    from .shell.control import request
    return cmd_ss(args, request)


def cmd_nstat(args) -> int:
    from .obs.commands import cmd_nstat
    from .shell.control import request
    return cmd_nstat(args, request)


def cmd_netstat(args) -> int:
    from .obs.commands import cmd_netstat
    from .shell.control import request
    return cmd_netstat(args, request)


def cmd_serve(args) -> int:
    from .profiles import get_profile
    from .harness import netns
    from .harness.link import LinkModel
    from .shell.control import socket_path

    profile = get_profile(args.profile, args.sysctl)     # ProfileError -> exit 2
    socket_path(args.name)                               # bad name -> exit 2
    links = None
    if args.offload and (args.delay or args.jitter or args.loss or args.reorder):
        raise UsageError("--offload cannot be combined with the link model (a corrupted byte would go unchecked)")
    if args.offload and args.family == "ipv6":
        raise UsageError("--offload is IPv4 only (the GSO encoder builds IPv4 frames); leave it out with --family ipv6")
    if args.delay or args.jitter or args.loss or args.reorder:
        kw = dict(delay=args.delay, jitter=args.jitter, loss=args.loss, reorder=args.reorder)
        links = (LinkModel(seed=args.seed, **kw), LinkModel(seed=args.seed + 1, **kw))
    problem = netns.privilege_problem()
    if problem:
        raise UsageError(problem)
    if not os.path.exists("/dev/net/tun"):
        raise UsageError("no /dev/net/tun (load the tun module or pass the device to the container)")
    import signal
    import trio
    from .shell import apps
    from .shell.control import remove_stale
    # A shell starts background jobs with SIGINT ignored; Ctrl-C (and the Lab's SIGTERM, which
    # takes the SIGINT path) must reach trio's KeyboardInterrupt handling to clean up.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with netns.Lab(vnet_hdr=args.offload, family=6 if args.family == "ipv6" else 4) as lab:
            trio.run(apps.serve, lab, profile, args, links)
    except BaseException as e:
        if not all(isinstance(x, KeyboardInterrupt) for x in leaves(e)):
            raise
        print("tuntcp: stopped", file=sys.stderr)
    finally:
        remove_stale(socket_path(args.name))
    return 0




def cmd_scenario(args) -> int:
    import importlib
    return importlib.import_module(args._scenario).main(args)


def cmd_bench(args) -> int:
    from .bench.cli import BenchUsageError, run_cli
    from .scenarios import storm_scale  # noqa: F401  (registers `--only storm_scale`)
    try:
        return run_cli(args)
    except BenchUsageError as e:
        raise UsageError(str(e)) from None


COMMANDS = {"serve": cmd_serve, "ss": cmd_ss, "nstat": cmd_nstat, "netstat": cmd_netstat,
            "profiles": cmd_profiles, "bench": cmd_bench}


def _interrupted() -> int:
    # Ctrl-C or SIGTERM (the Lab turns SIGTERM into the SIGINT path); every `with Lab` has
    # already unwound, so the namespaces and child processes are gone
    print("tuntcp: interrupted; namespaces and processes removed", file=sys.stderr)
    return 130


def _user_error(e: BaseException) -> int:
    msg = str(e) or type(e).__name__
    print(f"tuntcp: error: {msg.splitlines()[0]}", file=sys.stderr)
    return EXIT_USAGE


def tune_gc() -> None:
    """A long-running endpoint allocates a few objects per packet and keeps few of them: with
    CPython's default gen-0 threshold (700) the collector runs every ~100 packets. Freeze what
    start-up built and collect gen 0 less often (measured: ~10 % of the endpoint's CPU on the
    handshake row). TUNTCP_GC=default keeps CPython's settings (for A/B comparisons)."""
    import gc
    if os.environ.get("TUNTCP_GC") == "default":
        return
    gc.freeze()
    gc.set_threshold(20000, 20, 10)


def main(argv=None) -> int:
    from .profiles import ProfileError
    from .shell.control import ControlError
    try:
        from .harness.netns import LabError
    except ImportError:  # pragma: no cover - the harness is optional for ss/nstat/profiles
        LabError = ()
    try:
        from .host.stack import StackError
    except ImportError:  # pragma: no cover
        StackError = ()
    from .shell.tun import TunGone
    from .obs.commands import ObsUsageError
    user_errors = (UsageError, ProfileError, ControlError, LabError, StackError, PermissionError,
                   TunGone, ObsUsageError)
    try:
        args = build_parser().parse_args(argv)
        tune_gc()
        return COMMANDS.get(args.cmd, cmd_scenario)(args)
    except user_errors as e:
        return _user_error(e)
    except BaseExceptionGroup as eg:
        # a user mistake found inside the trio run (e.g. the endpoint name is taken)
        leafs = list(leaves(eg))
        mine = [x for x in leafs if isinstance(x, user_errors)]
        if mine and all(isinstance(x, user_errors + (KeyboardInterrupt,)) for x in leafs):
            return _user_error(mine[0])
        if all(isinstance(x, KeyboardInterrupt) for x in leafs):
            return _interrupted()
        raise
    except KeyboardInterrupt:
        return _interrupted()
    except SystemExit as e:  # -h prints help and exits 0
        return e.code if isinstance(e.code, int) else 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
