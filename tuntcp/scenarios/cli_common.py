"""What every scenario's command line shares: time options, output folders, the ``main()`` tail.

The conventions (stated in ``tuntcp --help``): every time option names its unit (``--rtt-ms``,
``--stall-s``; a value may also carry its own suffix: 10ms, 1.5s, 200us); ``--out`` is always a
folder; a user mistake is one line ``tuntcp CMD: error: ...`` and exit status 2.
"""
from __future__ import annotations

import argparse

from tuntcp.errors import UserError
from tuntcp import signals

_SUFFIX = (("ms", 1e-3), ("us", 1e-6), ("s", 1.0))
_UNIT = {"s": 1.0, "ms": 1e-3}


def parse_time(text: str, unit: str = "s") -> float:
    """A time in ``unit`` (s or ms): a bare number is in ``unit``; 10ms, 1.5s, 200us convert."""
    t = text.strip().lower()
    scale = _UNIT[unit]
    for suffix, mul in _SUFFIX:
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], mul
            break
    try:
        v = float(t) * scale / _UNIT[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (e.g. 2, 10ms, 1.5s)") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def time_option(p: argparse.ArgumentParser, name: str, *, default, help: str,
                old: str | None = None, old_unit: str | None = None, dest: str | None = None,
                integer: bool = False) -> None:
    """Add ``name`` (ending -s or -ms: its unit) and, hidden, its former spelling ``old``
    (whose bare numbers were in ``old_unit``, by default the same unit)."""
    unit = name.rsplit("-", 1)[1]
    assert unit in _UNIT, name
    dest = dest or name[2:].replace("-", "_")

    def conv(from_unit):
        def f(text):
            v = parse_time(text, from_unit) * _UNIT[from_unit] / _UNIT[unit]
            if integer:
                if v != int(v):
                    raise argparse.ArgumentTypeError(f"whole {unit} only, got {text}")
                return int(v)
            return v
        f.__name__ = "time"
        return f

    p.add_argument(name, dest=dest, type=conv(unit), default=default, metavar=unit.upper(),
                   help=help)
    if old:
        p.add_argument(old, dest=dest, type=conv(old_unit or unit), help=argparse.SUPPRESS)


def sysctl_option(p: argparse.ArgumentParser, what: str = "a profile knob") -> None:
    p.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override {what}; repeatable")


def quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def progress(quiet: bool):
    """The ``show(msg=...)`` a scenario reports progress through: stdout, or nothing."""
    def show(msg=""):
        if not quiet:
            print(msg, flush=True)
    return show


def out_option(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--out", default=default, metavar="DIR",
                   help="output folder (report.json, report.md, pcaps); made if missing")


def scenario_main(name: str, cfg, run, *, summary, show=None, check=None) -> int:
    """Check the config (``cfg.check()`` and an optional ``check()``), the privileges and the
    output folder, run the scenario under trio, print ``summary(report)`` and where the report
    went. User mistakes are UserErrors: ``tuntcp.cli.main`` prints them as one line (exit 2),
    and handles Ctrl-C/SIGTERM once (exit 130/143)."""
    import sys

    import trio

    from tuntcp.scenarios.rig import begin
    if show is None:
        def show(msg=""):
            print(f"{name}: {msg}", file=sys.stderr, flush=True)
    try:
        cfg.check()
        if check is not None:
            check()
    except (TypeError, ValueError) as e:
        if isinstance(e, UserError):
            raise
        raise UserError(str(e)) from None
    begin(cfg)
    report = signals.run(run, cfg, show)
    print(summary(report))
    print(f"\nreport: {cfg.out}/report.json, {cfg.out}/report.md")
    return 0
