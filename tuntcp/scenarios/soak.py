"""`tuntcp soak`: the mixed-load soak of tuntcp.scenarios.soak_load, with a one-screen summary.

    tuntcp soak --minutes 10          tuntcp soak --seconds 20 --json out/soak.json
Exit status 0 when memory and tables stayed flat and every exchange succeeded, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys

from tuntcp.scenarios.soak_load import SoakConfig, SoakError, run_soak, summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SoakConfig()
    g = p.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help="how long to run (by hand: 10)")
    g.add_argument("--seconds", type=float, help=f"how long to run (default {d.seconds:g})")
    p.add_argument("--clients", type=int, default=d.clients, help="reconnecting echo clients")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses they spread over")
    p.add_argument("--bulk-bytes", type=int, default=d.bulk_bytes, help="bytes per bulk transfer")
    p.add_argument("--flood-every", type=float, default=d.flood_every, help="seconds between SYN flood bursts")
    p.add_argument("--flood-seconds", type=float, default=d.flood_seconds, help="length of a burst (0: none)")
    p.add_argument("--sample-every", type=float, default=d.sample_every)
    p.add_argument("--tolerance", type=float, default=d.tolerance, help="allowed growth, last vs middle third")
    p.add_argument("--trim-every", type=float, default=d.trim_every,
                   help="judge RSS read after malloc_trim(0) every so many seconds (default 0: raw RSS)")
    p.add_argument("--profile", default=d.profile)
    p.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", metavar="FILE", help="write the full report (with samples) here")


def _find(exc: BaseException, types):
    """The first exception of `types` in `exc`, looking inside (trio's) exception groups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            if (hit := _find(e, types)) is not None:
                return hit
    return None


def main(args) -> int:
    import trio
    from tuntcp.harness.netns import LabError
    from tuntcp.profiles import get_profile
    seconds = args.minutes * 60 if args.minutes is not None else (args.seconds or SoakConfig().seconds)
    cfg = SoakConfig(seconds=seconds, clients=args.clients, hosts=args.hosts, bulk_bytes=args.bulk_bytes,
                     flood_every=args.flood_every, flood_seconds=args.flood_seconds,
                     sample_every=args.sample_every, tolerance=args.tolerance, trim_every=args.trim_every,
                     profile=args.profile,
                     sysctl=list(args.sysctl), seed=args.seed)
    try:
        cfg.check()
        get_profile(cfg.profile, cfg.sysctl)
    except (SoakError, ValueError) as e:
        print(f"tuntcp soak: error: {e}", file=sys.stderr)
        return 2
    try:
        report = trio.run(run_soak, cfg)
    except BaseException as e:
        if _find(e, KeyboardInterrupt) is not None:
            print("tuntcp soak: interrupted; namespace removed", file=sys.stderr)
            return 130
        if (user := _find(e, (SoakError, LabError))) is not None:
            print(f"tuntcp soak: error: {user}", file=sys.stderr)
            return 2
        raise
    print(summary(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"report: {args.json}")
    return 0 if report["verdict"]["ok"] else 1
