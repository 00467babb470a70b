"""TUN offload: the ``struct virtio_net_hdr`` prefix and a PacketIO that speaks it.

With ``IFF_VNET_HDR`` every read and write on the TUN carries a 10-byte header before the IP
packet (``linux/virtio_net.h``; native byte order for a legacy TUN, little-endian here). After
``TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)`` the kernel may hand us packets whose TCP checksum
it vouches for (``DATA_VALID``) or left for the receiver to complete (``NEEDS_CSUM``, the field
then holds only the pseudo-header sum), and TSO super-packets of up to 64 KB. We write the
same: every packet ``NEEDS_CSUM`` and, for a TSO segment of the connection (new data of up to
64 KB) or a run of merged segments, ``gso_type TCPV4``/``TCPV6`` with ``gso_size`` = the MSS
(``tuntcp.host.encode.VnetEncoder`` builds those frames; the kernel's ``tcp_gso_segment`` cuts
them).

This is what ``tun_put_user``/``tun_get_user`` do with ``virtio_net_hdr_from_skb`` and
``virtio_net_hdr_to_skb``: the skb's ``ip_summed`` (CHECKSUM_PARTIAL / UNNECESSARY) and
gso fields cross the boundary instead of being resolved in software.
"""
from __future__ import annotations

import fcntl
import os
import struct

from ..errors import UserError
from ..wire.vnet import (F_DATA_VALID, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4,  # noqa: F401
                         GSO_TCPV6, HDR, HDR_LEN, MAX_FRAME, VnetHdr)   # the one header definition
from .tun import FdIO

# ioctls (x86-64 _IOW/_IOR encodings, linux/if_tun.h)
TUNSETOFFLOAD = 0x400454D0
TUNGETIFF = 0x800454D2
TUNSETVNETHDRSZ = 0x400454D8
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04

class OffloadError(UserError, RuntimeError):
    """The TUN cannot do offload (opened without IFF_VNET_HDR, or the kernel refused)."""


def enable_offload(fd: int, features: int = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) -> None:
    """Check that the TUN fd has a vnet header, size it to 10 bytes and declare the offloads we
    handle, so the kernel stops computing checksums and segmenting for us."""
    try:
        ifr = fcntl.ioctl(fd, TUNGETIFF, b"\0" * 18)
    except OSError as e:
        raise OffloadError(f"fd {fd} is not a TUN device ({e.strerror})") from None
    flags = struct.unpack_from("H", ifr, 16)[0]
    if not flags & IFF_VNET_HDR:
        raise OffloadError("offload needs a TUN opened with IFF_VNET_HDR (Lab(vnet_hdr=True))")
    try:
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", HDR_LEN))
        fcntl.ioctl(fd, TUNSETOFFLOAD, features)
    except OSError as e:
        raise OffloadError(f"TUN refused offload setup: {e.strerror}") from None


class VnetIO(FdIO):
    """An ``IFF_VNET_HDR`` TUN fd with checksum and TSO offload on.

    ``read_frames`` returns whole frames (the Endpoint reads the header itself, and a
    ``GsoLink`` in between needs it). ``read_batch`` strips the header and returns the IP
    packets; ``csum_ok`` (parallel to the last batch) says which the kernel marked
    ``NEEDS_CSUM``/``DATA_VALID``: those need no TCP checksum check. Anything else (a
    raw-socket packet, CHECKSUM_NONE) still gets verified. ``gso`` gives each one's gso_size.
    ``write`` takes whole frames (header + packet), as a stack with a ``VnetEncoder``
    makes them (``take_output``). ``setup=False`` skips the ioctls (tests over a datagram
    socketpair).
    """

    def __init__(self, fd: int, *, owns: bool = False, setup: bool = True):
        if setup:
            enable_offload(fd)
        super().__init__(fd, owns=owns)
        self.csum_ok: list[bool] = []
        self.gso: list[int] = []
        self.gso_in = 0      # super-packets received (gso_type != NONE)

    def read_frames(self, limit: int) -> list:
        """Whole frames (header + packet) as the kernel wrote them, without blocking."""
        out = []
        read = os.read
        fd = self.fd
        gso = 0
        while len(out) < limit:
            try:
                frame = read(fd, MAX_FRAME)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if len(frame) <= HDR_LEN:
                if not frame:
                    break
                continue     # a header without a packet: nothing to deliver
            if frame[1]:     # gso_type
                gso += 1
            out.append(frame)
        self.gso_in += gso
        return out

    def read_batch(self, limit: int) -> list:
        """The IP packets of ``read_frames``, with ``csum_ok`` and ``gso`` (gso_size or 0)
        parallel to them."""
        out = []
        oks = self.csum_ok = []
        sizes = self.gso = []
        unpack = HDR.unpack_from
        for frame in self.read_frames(limit):
            flags, gso_type, _, size = unpack(frame)[:4]
            out.append(memoryview(frame)[HDR_LEN:])
            oks.append(bool(flags & (F_NEEDS_CSUM | F_DATA_VALID)))
            sizes.append(size if gso_type else 0)
        return out
