"""``tuntcp drill``: run packetdrill scripts against a modelled kernel, or score a suite."""
from __future__ import annotations

import os
import sys

from ..profiles import ProfileError, get_profile
from .headers import defines_for
from .host import IP_VERSIONS
from .result import run_file


def add_arguments(p) -> None:
    p.add_argument("scripts", nargs="*", metavar="SCRIPT", help=".pkt scripts to run")
    p.add_argument("--profile", default="linux-6.12", help="kernel profile (tuntcp profiles)")
    p.add_argument("--tolerance_usecs", type=int, default=None,
                   help="timing tolerance (default 4000, or the script's own)")
    p.add_argument("--strict_segments", action="store_true", default=None,
                   help="do not coalesce outbound segments to match one script line")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="SYM=VAL",
                   help="define a symbol used by the script")
    p.add_argument("--ip_version", default="ipv4", choices=IP_VERSIONS,
                   help="address family as packetdrill's: IPv6 headers and addresses "
                        "(fd3d:a0b:17d6::1 <- fd3d:fa7b:d17d::1, MTU 1520 as run_all.py), or "
                        "AF_INET6 sockets over IPv4 (ipv4-mapped-ipv6)")
    p.add_argument("--mtu", type=int, default=None,
                   help="tun MTU (default 1500; 1520 with --ip_version ipv6, as run_all.py)")
    p.add_argument("--suite", help="score every .pkt under this folder")
    p.add_argument("--baseline", help="CSV of host-kernel results (script,host_kernel_...,...)")
    p.add_argument("--out", default="out/drill", metavar="DIR", help="scoreboard output folder (with --suite)")


def _defines(items: list[str]) -> dict:
    out = {}
    for d in items:
        k, sep, v = d.partition("=")
        if not sep or not k:
            raise ValueError(f"-D wants SYM=VAL, got {d!r}")
        out[k] = v
    return out


def main(args) -> int:
    try:
        get_profile(args.profile)
        defines = _defines(args.defines)
    except (ProfileError, ValueError) as e:
        print(f"tuntcp drill: error: {e}", file=sys.stderr)
        return 2
    if args.mtu is not None and not 1280 <= args.mtu <= 65535:
        print(f"tuntcp drill: error: --mtu {args.mtu}: want 1280..65535", file=sys.stderr)
        return 2
    kw = dict(tolerance_usecs=args.tolerance_usecs, defines=defines, strict_segments=args.strict_segments,
              ip_version=args.ip_version, mtu=args.mtu)
    if args.suite:
        from . import score
        if not os.path.isdir(args.suite):
            print(f"tuntcp drill: error: --suite {args.suite}: not a folder", file=sys.stderr)
            return 2
        try:
            baseline = score.read_baseline(args.baseline)
        except (OSError, KeyError, StopIteration) as e:
            print(f"tuntcp drill: error: cannot read baseline {args.baseline}: {e}", file=sys.stderr)
            return 2
        rows = score.score(args.suite, args.profile, baseline, **kw)
        csv_path, md_path = score.write(rows, args.out, args.profile, args.suite, args.ip_version)
        m, n = score.target(rows)
        counts = {v: sum(r["verdict"] == v for r in rows) for v in score.VERDICTS}
        print(" ".join(f"{k}={v}" for k, v in counts.items()) + (f"; target pool {m}/{n} MATCH" if n else ""))
        print(f"wrote {csv_path} and {md_path}")
        return 1 if counts["CRASH"] else 0
    if not args.scripts:
        print("tuntcp drill: error: give SCRIPT... or --suite DIR", file=sys.stderr)
        return 2
    status = 0
    for path in args.scripts:
        try:
            own = defines_for(path, args.profile, args.ip_version)   # the script's own symbols
        except OSError as e:
            print(f"tuntcp drill: error: {e}", file=sys.stderr)
            return 2
        r = run_file(path, args.profile, **dict(kw, defines={**own, **defines}))
        if r.verdict == "MATCH":
            continue
        if r.verdict == "SYNTAX":
            print(r.message, file=sys.stderr)
            return 2
        print(r.message if r.verdict != "UNSUPPORTED" else f"{r.message} (UNSUPPORTED)", file=sys.stderr)
        status = 1
    return status
