"""The one place the runner builds a Stack (tuntcp.host) and takes its output (Segments, from
a SegmentRecorder encoder)."""
from __future__ import annotations

from ..host.encode import SegmentRecorder
from ..host.stack import Stack
from ..wire.codec import ip_int

LOCAL_IP = "192.168.0.1"      # packetdrill's defaults (--local_ip / --remote_ip)
REMOTE_IP = "192.0.2.1"
LOCAL_PORT = 8080             # bind(..., ...) and connect(..., ...) use packetdrill's 8080
REMOTE_PORT = 8080


class TsoRecorder(SegmentRecorder):
    """packetdrill's tun takes TSO packets, so the kernel's GSO packets reach the script whole:
    the model sends TSO segments too (their PSH and size are part of what is compared)."""

    tso = True
    gso_exact = True


def make_stack(profile, local_ip: str, mtu: int):
    stack = Stack(profile, addrs={ip_int(local_ip)}, secret=b"tuntcp drill key", encoder=TsoRecorder())
    stack.mtu = mtu
    return stack


def take(stack) -> list:
    """Segments the stack emitted since the last call, in order."""
    return stack.take_output()
