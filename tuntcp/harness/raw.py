"""Hand-made IPv4 or IPv6 packets sent from inside a lab namespace (raw socket, header
included; the addresses say the family)."""
from __future__ import annotations

import socket

from .netns import Lab


def _build(seg) -> bytes:
    from ..wire import codec, ipv6
    return codec.build(seg) if seg.daddr <= ipv6.V4_MAX else ipv6.build6(seg)


def spoofed_syn(src: str, dst: str, sport: int, dport: int, seq: int = 1000,
                mss: int = 1460) -> bytes:
    """A SYN (MSS option only) from an address nobody owns, ready for a raw socket."""
    from ..wire.ipv6 import addr_int
    from ..wire.segment import SYN, Segment, TcpOptions
    return _build(Segment(addr_int(src), addr_int(dst), sport, dport, seq=seq,
                          flags=SYN, window=65535, options=TcpOptions(mss=mss)))


def bare_ack(src: str, dst: str, sport: int, dport: int, seq: int = 5000,
             ack: int = 0x12345678) -> bytes:
    """A bare ACK nobody's handshake produced (for SyncookiesFailed)."""
    from ..wire.ipv6 import addr_int
    from ..wire.segment import ACK, Segment
    return _build(Segment(addr_int(src), addr_int(dst), sport, dport, seq=seq,
                          ack=ack, flags=ACK, window=1024))


def send_raw(lab: Lab, packets: list[bytes], dst: str) -> None:
    """Send complete IP packets from inside the lab's namespace (IPPROTO_RAW: header included)."""
    # IPPROTO_RAW implies IP_HDRINCL, and IPV6_HDRINCL on an AF_INET6 socket
    raw = lab.socket_in_ns(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_RAW,
                           socket.IPPROTO_RAW)
    try:
        for p in packets:
            raw.sendto(p, (dst, 0))
    finally:
        raw.close()
