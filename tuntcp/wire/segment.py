"""The in-memory form of one IPv4/TCP packet, shared by the codec, the core and the tests.

Addresses are ints (hash fast, format with ``ipaddress.IPv4Address``). ``window`` is the raw
16-bit header field, never scaled: scaling is the receiver's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

_FLAG_NAMES = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W"))


def flag_str(flags: int) -> str:
    """tcpdump-style flags: 'S', 'S.', 'P.', 'F.', 'R', '.' for a bare ACK."""
    s = "".join(ch for bit, ch in _FLAG_NAMES if flags & bit)
    if flags & ACK:
        s += "."
    return s or "none"


@dataclass(slots=True)
class TcpOptions:
    """Parsed TCP options. ``None``/``False`` means the option was absent.

    ``ts`` is (TSval, TSecr). ``sack_blocks`` holds (left, right) edges. ``unknown`` keeps
    (kind, bytes) of options we skip but may want to count or show.
    """

    mss: int | None = None
    wscale: int | None = None
    sack_ok: bool = False
    ts: tuple[int, int] | None = None
    sack_blocks: tuple[tuple[int, int], ...] = ()
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True)
class Segment:
    saddr: int
    daddr: int
    sport: int
    dport: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 0
    options: TcpOptions = field(default_factory=TcpOptions)
    payload: bytes | memoryview = b""
    urg: int = 0
    ttl: int = 64
    tos: int = 0
    ip_id: int = 0
    gso_size: int = 0       # a TSO segment: cut into gso_size pieces by the device (tcp_skb_pcount)
    family: ClassVar[int] = 4  # a class constant (no per-packet cost); wire/ipv6.py's Segment6 says 6

    @property
    def seg_len(self) -> int:
        """Sequence space consumed: payload plus one for SYN and one for FIN."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    def key_in(self) -> tuple[int, int, int, int]:
        """Connection key as seen by the receiver: (local addr, local port, remote addr, remote port)."""
        return (self.daddr, self.dport, self.saddr, self.sport)

    def __str__(self) -> str:  # packetdrill-ish, for test failure messages
        o = self.options
        opts = []
        if o.mss is not None:
            opts.append(f"mss {o.mss}")
        if o.sack_ok:
            opts.append("sackOK")
        if o.ts is not None:
            opts.append(f"TS val {o.ts[0]} ecr {o.ts[1]}")
        if o.wscale is not None:
            opts.append(f"wscale {o.wscale}")
        for l, r in o.sack_blocks:
            opts.append(f"sack {l}:{r}")
        body = f"{flag_str(self.flags)} seq {self.seq} ack {self.ack} win {self.window} len {len(self.payload)}"
        return body + (f" <{','.join(opts)}>" if opts else "")
