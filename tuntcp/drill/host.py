"""The one place the runner builds a Stack (tuntcp.host) and takes its output (Segments, from
a SegmentRecorder encoder)."""
from __future__ import annotations

from ..host.encode import SegmentRecorder
from ..host.stack import Stack
from ..wire.ipv6 import addr_int

LOCAL_IP = "192.168.0.1"      # packetdrill's defaults (--local_ip / --remote_ip)
REMOTE_IP = "192.0.2.1"
# --ip_version: the addresses and MTU run_all.py gives each variant. ipv4-mapped-ipv6 has
# AF_INET6 sockets but IPv4 on the wire (config.c's table), which is all the model sees.
IP_VERSIONS = ("ipv4", "ipv6", "ipv4-mapped-ipv6")
_ADDRS = {"ipv4": (LOCAL_IP, REMOTE_IP), "ipv4-mapped-ipv6": (LOCAL_IP, REMOTE_IP),
          "ipv6": ("fd3d:a0b:17d6::1", "fd3d:fa7b:d17d::1")}
# packetdrill's tun MTU is 1500; run_all.py runs IPv6 at --mtu=1520 so that the MSS is
# 1520 - 60 = 1460 as over IPv4 (1500 - 40) and the scripts' <mss 1460> hold for both
_MTU = {"ipv6": 1520}
LOCAL_PORT = 8080             # bind(..., ...) and connect(..., ...) use packetdrill's 8080
REMOTE_PORT = 8080


class TsoRecorder(SegmentRecorder):
    """packetdrill's tun takes TSO packets, so the kernel's GSO packets reach the script whole:
    the model sends TSO segments too (their PSH and size are part of what is compared)."""

    tso = True
    gso_exact = True


def addresses(ip_version: str) -> tuple[str, str]:
    """(local, remote) default addresses of a family."""
    return _ADDRS[ip_version]


def default_mtu(ip_version: str) -> int:
    return _MTU.get(ip_version, 1500)


def make_stack(profile, local_ip: str, mtu: int):
    stack = Stack(profile, addrs={addr_int(local_ip)}, secret=b"tuntcp drill key", encoder=TsoRecorder())
    stack.mtu = mtu
    return stack


def take(stack) -> list:
    """Segments the stack emitted since the last call, in order."""
    return stack.take_output()
