"""Hand-made IPv4 packets sent from inside a lab namespace (raw socket, header included)."""
from __future__ import annotations

import socket

from .netns import Lab


def spoofed_syn(src: str, dst: str, sport: int, dport: int, seq: int = 1000,
                mss: int = 1460) -> bytes:
    """An IPv4 SYN (MSS option only) from an address nobody owns, ready for a raw socket."""
    from ..wire import codec
    from ..wire.segment import SYN, Segment, TcpOptions
    return codec.build(Segment(codec.ip_int(src), codec.ip_int(dst), sport, dport, seq=seq,
                               flags=SYN, window=65535, options=TcpOptions(mss=mss)))


def bare_ack(src: str, dst: str, sport: int, dport: int, seq: int = 5000,
             ack: int = 0x12345678) -> bytes:
    """A bare ACK nobody's handshake produced (for SyncookiesFailed)."""
    from ..wire import codec
    from ..wire.segment import ACK, Segment
    return codec.build(Segment(codec.ip_int(src), codec.ip_int(dst), sport, dport, seq=seq,
                               ack=ack, flags=ACK, window=1024))


def send_raw(lab: Lab, packets: list[bytes], dst: str) -> None:
    """Send complete IP packets from inside the lab's namespace (IPPROTO_RAW: header included)."""
    raw = lab.socket_in_ns(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        for p in packets:
            raw.sendto(p, (dst, 0))
    finally:
        raw.close()
