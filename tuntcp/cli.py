"""`tuntcp` command line: serve an endpoint in a lab namespace, and look at it like ss/nstat.

    tuntcp serve --app http --port 8080 --profile linux-5.4 --sysctl net.core.somaxconn=16
    tuntcp ss -lnt     tuntcp ss -tni     tuntcp nstat -az     tuntcp netstat -Lan     tuntcp profiles

User mistakes (unknown profile or knob, bad value, no endpoint running, not root) print one
line on stderr and exit 2; no tracebacks.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from .errors import EXIT_USAGE, UserError, leaves
from . import signals
from .scenarios.cli_common import sysctl_option, time_option

DEFAULT_NAME = "tuntcp"
DEFAULT_PROFILE = "linux-6.1"
CONVENTIONS = """conventions:
  times      every time option names its unit: --rtt-ms, --stall-s, --duration-s (a value may
             carry its own suffix: 10ms, 1.5s, 200us); the old spellings (--delay, --stall,
             --timeout ...) still work, with their old units
  --out      always a folder (report.json, report.md, pcaps); made only after the inputs and
             the privileges are checked
  errors     a user mistake is one line "tuntcp CMD: error: ..." and exit status 2;
             Ctrl-C exits 130, SIGTERM 143, after removing namespaces and processes
"""


class UsageError(UserError):
    """A mistake on the command line: printed as one line, exit status 2."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, not usage + line
        raise UsageError(f"{message} (see `{self.prog} -h`)", self.prog)


def build_parser() -> argparse.ArgumentParser:
    from .scenarios.report import tool_version
    p = _Parser(prog="tuntcp", description="A TCP endpoint on a TUN device that accepts "
                "connections the way Linux or FreeBSD does.", epilog=CONVENTIONS)
    p.add_argument("--version", action="version", version=f"tuntcp {tool_version()}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="COMMAND")
    serve_arguments(sub.add_parser("serve", help="run an endpoint in a fresh network namespace",
                                   epilog=CONVENTIONS))

    from .obs import commands as obs_cmds
    obs_cmds.add_ss_arguments(sub.add_parser("ss", help="sockets of a running endpoint, printed like ss(8)"))
    obs_cmds.add_nstat_arguments(sub.add_parser("nstat", help="counters of a running endpoint, printed like nstat(8)"))
    obs_cmds.add_netstat_arguments(sub.add_parser("netstat", help="listen queues of a running endpoint, like FreeBSD `netstat -Lan`"))

    s = sub.add_parser("profiles", help="list kernel profiles, or the knobs of one")
    s.add_argument("profile", nargs="?", help="show this profile's knobs")

    import importlib

    from tuntcp.scenarios import SCENARIOS
    for name, (module, help_text) in SCENARIOS.items():
        alias = name.replace("-", "_")
        s = sub.add_parser(name, help=help_text, aliases=[alias] if alias != name else [],
                           epilog=CONVENTIONS)
        s.set_defaults(_scenario=module, _cmd=name)
        importlib.import_module(module).add_arguments(s)

    s = sub.add_parser("bench", help="measure the endpoint side by side with the kernel")
    from .bench.cli import add_arguments as _bench_args
    _bench_args(s)
    return p


def serve_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--name", default=DEFAULT_NAME, help="endpoint name for `ss`/`nstat` (--name)")
    from .shell import apps, relay
    s.add_argument("--app", type=apps.app_spec, default="http",
                   help="the application behind the listener: echo, discard, http or module:function "
                   "(an async def handler(stream))")
    s.add_argument("--front", type=relay.hostport, metavar="HOST:PORT", help=relay.FRONT_HELP)
    s.add_argument("--front-cmd", metavar="CMD", help="start the --front backend in the lab namespace")
    s.add_argument("--port", type=_port, default=8080, help="listening port")
    s.add_argument("--backlog", type=_nonneg_int, default=4096,
                   help="listen(2) backlog (clamped to net.core.somaxconn)")
    s.add_argument("--profile", default=DEFAULT_PROFILE, help="kernel profile (see `tuntcp profiles`)")
    sysctl_option(s)
    s.add_argument("--rcvbuf", type=_nonneg_int, help="SO_RCVBUF on the listener (before listen)")
    s.add_argument("--pcap", metavar="FILE", help="write every packet (both directions) here; "
                   "captured after the link model (its drops are not in the file)")
    s.add_argument("--events", metavar="FILE", help="JSON-lines event log")
    time_option(s, "--delay-ms", old="--delay", old_unit="s", default=0.0,
                help="one-way delay (each way)")
    time_option(s, "--jitter-ms", old="--jitter", old_unit="s", default=0.0,
                help="random extra delay up to this (each way)")
    s.add_argument("--loss", type=_prob, default=0.0, help="loss probability per packet (each way)")
    s.add_argument("--reorder", type=_prob, default=0.0,
                   help="probability a packet is held back behind the next (each way)")
    s.add_argument("--seed", type=int, default=1, help="seed of the link model's random choices")
    time_option(s, "--duration-s", old="--duration", dest="duration", default=None,
                help="stop after this long (default: until Ctrl-C)")
    s.add_argument("--offload", action="store_true",
                   help="IFF_VNET_HDR: kernel-verified checksums, TSO in, GSO out")
    s.add_argument("--family", choices=("ipv4", "ipv6", "dual"), default="ipv4",
                   help="address family of the lab (ipv6: 2001:2::1 -> 2001:2:0:1::1; dual: both, "
                   "and the endpoint listens on :: taking IPv4 peers as ::ffff:a.b.c.d)")
    s.add_argument("--v6only", action="store_true", default=None,
                   help="IPV6_V6ONLY on the :: listener of --family dual (IPv4 peers are refused); "
                   "default: the profile's net.ipv6.bindv6only")
    s.add_argument("--shards", type=_nonneg_int, default=1,
                   help="endpoint processes, one per queue of a multi-queue TUN, sharing one "
                   "listener (Linux profiles; 1 on this 2-core machine, see bench/README.md)")


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
    from .errors import check_out_file
    from .harness import netns
    from .harness.link import GsoLink, LinkModel
    from .profiles import get_profile
    from .scenarios.rig import require_privileges
    from .shell.control import socket_path

    profile = get_profile(args.profile, args.sysctl)     # ProfileError -> exit 2
    socket_path(args.name)                               # bad name -> exit 2
    delay, jitter = args.delay_ms / 1000.0, args.jitter_ms / 1000.0
    links = None
    if args.offload and args.family == "dual":
        raise UsageError("--offload is not combined with --family dual yet; use ipv4 or ipv6")
    if args.v6only and args.family != "dual":
        raise UsageError("--v6only goes with --family dual (the :: listener)")
    if delay or jitter or args.loss or args.reorder:
        kw = dict(delay=delay, jitter=jitter, loss=args.loss, reorder=args.reorder)
        link = GsoLink if args.offload else LinkModel    # GsoLink: vnet frames, per-segment loss
        links = (link(seed=args.seed, **kw), link(seed=args.seed + 1, **kw))
    from .shell.shards import check_shards
    check_shards(args.shards, profile)
    if args.shards > 1 and args.front:
        raise UsageError("--front runs one relay: use --shards 1 with it")
    require_privileges()
    for opt, path in (("--pcap", args.pcap), ("--events", args.events)):
        if path:
            check_out_file(path, opt)
    import trio
    from .shell import apps
    from .shell.control import remove_stale
    try:
        with netns.Lab(vnet_hdr=args.offload, family=4 if args.family == "ipv4" else 6,
                       dual=args.family == "dual", queues=args.shards) as lab:
            if args.shards > 1:
                from .shell.shards import MonoClock, serve_sharded
                link = dict(kw, seed=args.seed) if links else None
                signals.run(serve_sharded, lab, profile, args, link, clock=MonoClock())
            else:
                signals.run(apps.serve, lab, profile, args, links)
    except BaseException as e:
        if not all(isinstance(x, KeyboardInterrupt) for x in leaves(e)):
            raise
        print("tuntcp: stopped", file=sys.stderr)
        return signals.exit_status()
    finally:
        remove_stale(socket_path(args.name))
    return 0


def cmd_scenario(args) -> int:
    """A scenario module that says ``NEEDS_LAB = True`` builds labs and writes its --out
    folder: the privileges and the folder are checked first, so that nothing is created by a
    run that cannot happen (the scenario's own checks follow)."""
    import importlib

    from .errors import check_out_dir
    from .scenarios.rig import require_privileges
    module = importlib.import_module(args._scenario)
    if getattr(module, "NEEDS_LAB", False):
        require_privileges()
        if type(getattr(args, "out", None)) is str:     # not soak's old --json FILE (a subclass)
            check_out_dir(args.out)
    return module.main(args)


def cmd_bench(args) -> int:
    from .bench.cli import run_cli
    from .scenarios import storm_scale  # noqa: F401  (registers `--only storm_scale`)
    from .scenarios import storm_reliability  # noqa: F401  (registers `--only storm_reliability`)
    return run_cli(args)


COMMANDS = {"serve": cmd_serve, "ss": cmd_ss, "nstat": cmd_nstat, "netstat": cmd_netstat,
            "profiles": cmd_profiles, "bench": cmd_bench}


def _on_signal(signum, frame):
    # SIGTERM/SIGHUP take the SIGINT path (trio's KeyboardInterrupt handling, every `with Lab`
    # unwinds); the exit status remembers which signal it was. Inside signals.run() the event
    # loop takes them instead.
    signals.stop_requested(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_signal:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def _install_signals() -> None:
    # a shell starts background jobs with SIGINT ignored: Ctrl-C (and the SIGTERM path) must
    # still reach KeyboardInterrupt handling to clean up
    # (trio installs its own Ctrl-C handling only over default_int_handler)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    signals.arm()


def _interrupted() -> int:
    # every `with Lab` has already unwound: the namespaces and child processes are gone
    print("tuntcp: interrupted; namespaces and processes removed", file=sys.stderr)
    return signals.exit_status()


def _user_error(e: BaseException, cmd: str | None) -> int:
    msg = (str(e) or type(e).__name__).splitlines()[0]
    prog = getattr(e, "prog", None) or f"tuntcp{' ' + cmd if cmd else ''}"
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _quiet_pipe() -> int:
    # the reader went away (`tuntcp lab list | head -1`): say nothing, and keep the
    # interpreter's final flush from complaining
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


USER_ERRORS = (UserError, PermissionError)


def main(argv=None) -> int:
    try:
        return _main(argv)
    finally:
        signals.forget()
        _forget_handled_interrupts()


def _forget_handled_interrupts() -> None:
    # CPython 3.11 marks "unhandled KeyboardInterrupt" whenever one leaves an exec() of a string
    # (dataclass and attrs decorators exec their methods), even when we catch it later, and then
    # kills itself with SIGINT at exit, turning 143 into death by signal 2. A clean exec() clears
    # the mark; main() returning means every interrupt was handled.
    exec("")


def _main(argv) -> int:
    cmd = None
    try:
        _install_signals()
        args = build_parser().parse_args(argv)
        cmd = getattr(args, "_cmd", args.cmd)
        from .shell.gc_tuning import tune_gc
        tune_gc()
        status = COMMANDS.get(args.cmd, cmd_scenario)(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return _quiet_pipe()
    except SystemExit as e:  # -h and --version print and exit 0
        return e.code if isinstance(e.code, int) else 0
    except BaseException as e:
        return _unwrapped(e, cmd)


def _unwrapped(e: BaseException, cmd: str | None) -> int:
    """A user mistake or an interrupt, bare or inside trio's exception groups: one line (2)
    or 130/143. Anything else is a bug and keeps its traceback."""
    from .shell.tun import TunGone
    user_errors = USER_ERRORS + (TunGone,)
    found = list(leaves(e))
    if all(isinstance(x, KeyboardInterrupt) for x in found):
        return _interrupted()
    if all(isinstance(x, BrokenPipeError) for x in found):
        return _quiet_pipe()
    mine = [x for x in found if isinstance(x, user_errors)]
    if mine and all(isinstance(x, user_errors + (KeyboardInterrupt,)) for x in found):
        return _user_error(mine[0], cmd)
    raise e


if __name__ == "__main__":
    sys.exit(main())
