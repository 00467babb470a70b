"""`tuntcp soak`: the mixed-load soak of tuntcp.scenarios.soak_load, with a one-screen summary.

    tuntcp soak --minutes 10          tuntcp soak --seconds 20 --out out/soak
Exit status 0 when memory and tables stayed flat and every exchange succeeded, 1 otherwise.
``--out DIR`` gets report.json (with the samples); the old ``--json FILE`` still writes one file.
"""
from __future__ import annotations

import argparse
import json
import os

from tuntcp.errors import check_out_file, make_out_dir
from tuntcp.scenarios.cli_common import out_option, sysctl_option, time_option
from tuntcp.scenarios.report import stamp
from tuntcp.scenarios.rig import family_of, family_option
from tuntcp.scenarios.soak_load import SoakConfig, run_soak, summary
from tuntcp import signals


NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()


class OldJsonFile(str):
    """``--json FILE``, the old spelling of ``--out``: one file, not a folder."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SoakConfig()
    g = p.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help="how long to run (by hand: 10)")
    g.add_argument("--seconds", type=float, help=f"how long to run (default {d.seconds:g})")
    p.add_argument("--clients", type=int, default=d.clients, help="reconnecting echo clients")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses they spread over")
    p.add_argument("--bulk-bytes", type=int, default=d.bulk_bytes, help="bytes per bulk transfer")
    time_option(p, "--flood-every-s", old="--flood-every", dest="flood_every",
                default=d.flood_every, help="time between SYN flood bursts")
    time_option(p, "--flood-s", old="--flood-seconds", dest="flood_seconds",
                default=d.flood_seconds, help="length of a burst (0: none)")
    time_option(p, "--sample-every-s", old="--sample-every", dest="sample_every",
                default=d.sample_every, help="time between memory/table samples")
    p.add_argument("--tolerance", type=float, default=d.tolerance,
                   help="allowed growth, last vs middle third")
    time_option(p, "--trim-every-s", old="--trim-every", dest="trim_every", default=d.trim_every,
                help="judge RSS read after malloc_trim(0) this often (0: raw RSS)")
    p.add_argument("--profile", default=d.profile, help="kernel profile of the endpoint")
    sysctl_option(p)
    family_option(p)
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the load's random choices")
    out_option(p, None)
    p.add_argument("--json", dest="out", type=OldJsonFile, help=argparse.SUPPRESS)


def main(args) -> int:
    import trio

    from tuntcp.profiles import get_profile
    from tuntcp.scenarios.rig import require_privileges
    seconds = args.minutes * 60 if args.minutes is not None else (args.seconds or SoakConfig().seconds)
    cfg = SoakConfig(seconds=seconds, clients=args.clients, hosts=args.hosts, bulk_bytes=args.bulk_bytes,
                     flood_every=args.flood_every, flood_seconds=args.flood_seconds,
                     sample_every=args.sample_every, tolerance=args.tolerance, trim_every=args.trim_every,
                     profile=args.profile,
                     sysctl=list(args.sysctl), seed=args.seed, family=family_of(args))
    cfg.check()
    get_profile(cfg.profile, cfg.sysctl)
    old = isinstance(args.out, OldJsonFile)
    if old:
        check_out_file(args.out, "--json")
    require_privileges()
    path = args.out
    if args.out and not old:
        path = os.path.join(make_out_dir(args.out), "report.json")
    report = signals.run(run_soak, cfg)
    print(summary(report))
    if path:
        with open(path, "w") as f:
            json.dump(stamp(report), f, indent=1)
        print(f"report: {path}")
    return 0 if report["verdict"]["ok"] else 1
