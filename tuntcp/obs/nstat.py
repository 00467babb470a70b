"""``nstat`` for a running Stack, as iproute2's misc/nstat.c prints it.

Order: the kernel's. nstat loads /proc/net/netstat, then snmp6, then snmp, each file pushed in
front of the last, so it prints Ip, Icmp, Tcp, Udp (snmp) before TcpExt, IpExt (netstat);
``mib.GROUPS`` keeps that order and our own FreeBSD/Tuntcp names come last. ``TcpCurrEstab``
is one of nstat's ``useless_numbers`` and never printed. Patterns are shell globs matched with
``fnmatch(pattern, name, 0)`` (case-sensitive). Text lines are ``%-32s%-16llu%6.1f``; ``-j``
writes ``{"kernel":{...}}`` (``-p``: indented by 4). Without ``-a`` the values are increments
since the history (kept by the endpoint, one per endpoint, as nstat keeps /tmp/.nstat.uUID),
which every call updates unless ``-s``; names a pattern left out keep their history value.
Rates are always 0.0 (nstat computes them only in daemon mode).
"""
from __future__ import annotations

import json
from fnmatch import fnmatchcase

from .. import mib

# nstat.c useless_numbers (IpForwarding, IpDefaultTTL, TcpRtoAlgorithm, TcpRtoMin, TcpRtoMax,
# TcpMaxConn, TcpCurrEstab): of those, mib declares only TcpCurrEstab
USELESS = frozenset({mib.TcpCurrEstab})
NAMES = tuple(n for n in mib.ALL if n not in USELESS)


def _match(name: str, patterns) -> bool:
    return not patterns or any(fnmatchcase(name, p) for p in patterns)


def dump(values: dict, q: dict) -> str:
    """``dump_kern_db``/``dump_incr_db`` output for ``values`` (already absolute or deltas)."""
    pats, zeros = q.get("patterns") or (), q.get("zeros")
    rows = [(n, values.get(n, 0)) for n in NAMES
            if (zeros or values.get(n, 0)) and _match(n, pats)]
    if q.get("json"):
        obj = {"kernel": dict(rows)}
        if q.get("pretty"):
            return json.dumps(obj, indent=4) + "\n"
        return json.dumps(obj, separators=(",", ":")) + "\n"
    return "#kernel\n" + "".join(f"{n:<32}{v:<16}{0.0:6.1f}\n" for n, v in rows)


class NstatHistory:
    """The endpoint-side history nstat keeps in a file: ``answer(counters, q)`` per request."""

    def __init__(self):
        self.hist: dict[str, int] | None = None

    def answer(self, counters: dict, q: dict) -> str:
        cur = {n: counters.get(n, 0) for n in NAMES}
        if q.get("reset"):
            self.hist = None
        hist = self.hist
        if q.get("absolute") or hist is None:
            values = cur
        else:
            # a counter below its history wrapped (nstat's "overflow"): show it whole
            values = {n: v - hist.get(n, 0) if v >= hist.get(n, 0) else v for n, v in cur.items()}
        text = "" if q.get("nooutput") else dump(values, q)
        if not q.get("noupdate"):
            pats = q.get("patterns") or ()
            old = hist or {}
            self.hist = {n: v if _match(n, pats) else old.get(n, v) for n, v in cur.items()}
        return text
