"""The kernel's own MIB counters inside a namespace, named as ``nstat`` names them.

/proc/net/{snmp,netstat} are per network namespace, so they are read by a process that lives
in the namespace (``ip netns exec NS cat ...``); the pytest process itself stays in the root
namespace. Used to compare tuntcp's counters with a kernel listener's (differential parity).
"""
from __future__ import annotations

import subprocess


def parse_proc_tables(text: str) -> dict[str, int]:
    """Parse /proc/net/snmp or /proc/net/netstat text: pairs of header/value lines per prefix.

    ``TcpExt: SyncookiesSent ...`` / ``TcpExt: 0 ...`` becomes ``{"TcpExtSyncookiesSent": 0}``.
    """
    out: dict[str, int] = {}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for head, vals in zip(lines[0::2], lines[1::2]):
        hp, _, hnames = head.partition(":")
        vp, _, hvals = vals.partition(":")
        if hp != vp:
            raise ValueError(f"unpaired /proc/net lines: {head[:30]!r} / {vals[:30]!r}")
        for name, value in zip(hnames.split(), hvals.split()):
            try:
                out[hp + name] = int(value)
            except ValueError:
                continue
    return out


def kernel_counters(ns_name: str) -> dict[str, int]:
    """Absolute counters (like ``nstat -az``) of namespace ``ns_name``."""
    res = subprocess.run(
        ["ip", "netns", "exec", ns_name, "cat", "/proc/net/snmp", "/proc/net/netstat"],
        capture_output=True, text=True, timeout=10,
    )
    if res.returncode != 0:
        raise RuntimeError(f"cannot read counters of netns {ns_name}: {res.stderr.strip()}")
    return parse_proc_tables(res.stdout)


def delta(after: dict[str, int], before: dict[str, int], names=None) -> dict[str, int]:
    keys = names if names is not None else after.keys()
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}
