"""Header comments of this project's own scripts (tests/drill/*.pkt):

    // tuntcp-profiles: linux-5.4 linux-6.12        profiles the unit tier runs it against
    // tuntcp-define linux-5.4: DATA_WIN=528        -D symbols for one profile
    // tuntcp-kernel: valid -D DATA_WIN=50600       runs under real packetdrill on the host

Upstream scripts have none of these; they change nothing for them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"^\s*//\s*tuntcp-(profiles|define|kernel)\b\s*([^:]*):?\s*(.*)$")


@dataclass
class Headers:
    profiles: list[str] = field(default_factory=list)
    defines: dict[str, dict[str, str]] = field(default_factory=dict)   # profile -> {SYM: VAL}
    kernel: dict[str, str] | None = None    # None: not kernel-valid; else its -D symbols


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for tok in text.replace("-D", " ").split():
        k, sep, v = tok.partition("=")
        if sep:
            out[k] = v
    return out


def read_headers(text: str) -> Headers:
    h = Headers()
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        kind, a, b = m.groups()
        if kind == "profiles":
            h.profiles += (a + " " + b).split()
        elif kind == "define":
            h.defines.setdefault(a.strip(), {}).update(_pairs(b))
        elif a.strip().startswith("valid") or b.strip().startswith("valid"):
            rest = (a + " " + b).strip()[len("valid"):]
            h.kernel = _pairs(rest)
    return h


def defines_for(path: str, profile: str) -> dict[str, str]:
    with open(path) as f:
        return dict(read_headers(f.read()).defines.get(profile, {}))
