"""Header comments of this project's own scripts (tests/drill/*.pkt):

    // tuntcp-profiles: linux-5.4 linux-6.12        profiles the unit tier runs it against
    // tuntcp-define linux-5.4: DATA_WIN=528        -D symbols for one profile
    // tuntcp-define linux-5.4 ipv6: DATA_WIN=...   ... over one --ip_version (on top of the above)
    // tuntcp-kernel: valid -D DATA_WIN=50600       runs under real packetdrill on the host
    // tuntcp-kernel ipv6: -D DATA_WIN=50620        ... with these symbols changed over IPv6

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
    kernel_family: dict[str, dict[str, str]] = field(default_factory=dict)   # ip_version -> {SYM: VAL}

    def model_defines(self, profile: str, ip_version: str = "ipv4") -> dict[str, str]:
        """The -D symbols for a profile, with its per-family ones on top."""
        return {**self.defines.get(profile, {}), **self.defines.get(f"{profile} {ip_version}", {})}

    def kernel_defines(self, ip_version: str = "ipv4") -> dict[str, str]:
        return {**(self.kernel or {}), **self.kernel_family.get(ip_version, {})}


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
            h.defines.setdefault(" ".join(a.split()), {}).update(_pairs(b))
        elif a.strip() and not a.strip().startswith("valid"):
            h.kernel_family.setdefault(a.strip(), {}).update(_pairs(b))
        elif a.strip().startswith("valid") or b.strip().startswith("valid"):
            rest = (a + " " + b).strip()[len("valid"):]
            h.kernel = _pairs(rest)
    return h


def defines_for(path: str, profile: str, ip_version: str = "ipv4") -> dict[str, str]:
    with open(path) as f:
        return read_headers(f.read()).model_defines(profile, ip_version)
