"""``struct virtio_net_hdr`` (``linux/virtio_net.h``) and the GSO frames we write with it.

With ``IFF_VNET_HDR`` every TUN read and write carries this 10-byte header before the IP packet
(native byte order for a legacy TUN, little-endian here). The one definition of the header; the
TUN side (ioctls, ``VnetIO``) is ``tuntcp.shell.vnet``, the encoder that uses ``gso_frames`` is
``tuntcp.host.encode.VnetEncoder``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import IPPROTO_TCP, fold, ip4_header_sum
from .codec import build_options
from .segment import FIN, PSH, RST, SYN, URG, Segment

F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_ECN = 0x80
HDR = struct.Struct("=BBHHHH")   # flags gso_type hdr_len gso_size csum_start csum_offset
HDR_LEN = HDR.size               # 10
MAX_FRAME = HDR_LEN + 65535

_IPTCP = struct.Struct("!BBHHHBBHIIHHIIBBHHH")
_NO_MERGE = SYN | FIN | RST | URG | PSH


@dataclass(slots=True, frozen=True)
class VnetHdr:
    flags: int = 0
    gso_type: int = GSO_NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    def pack(self) -> bytes:
        return HDR.pack(self.flags, self.gso_type, self.hdr_len, self.gso_size,
                        self.csum_start, self.csum_offset)

    @classmethod
    def unpack(cls, buf) -> "VnetHdr":
        if len(buf) < HDR_LEN:
            raise ValueError(f"virtio_net_hdr needs {HDR_LEN} bytes, got {len(buf)}")
        return cls(*HDR.unpack_from(buf))


def gso_frames(segs: list[Segment]) -> list[bytes]:
    """TUN frames for ``segs`` (in order): each a ``virtio_net_hdr`` plus an IPv4 packet whose
    TCP checksum field holds only the pseudo-header sum (NEEDS_CSUM: the kernel completes it).

    A run of adjacent segments is merged into one GSO super-packet (gso_type TCPV4, gso_size =
    the first segment's payload) when it is what ``tcp_gso_segment`` would cut back into the
    same segments: one flow, contiguous sequence numbers, equal ack/window/options/flags, no
    SYN/FIN/RST/URG, every segment but the last exactly gso_size long, PSH only on the last,
    and the whole IPv4 packet within 65535 bytes.

    A TSO segment (``gso_size`` set and a longer payload, from the connection's output) is one
    frame with that gso_size as it stands, as ``tun_put_user`` hands the kernel a GSO skb.
    """
    frames = []
    i, n = 0, len(segs)
    while i < n:
        s = segs[i]
        j = i + 1
        size = len(s.payload)
        if s.gso_size and size > s.gso_size:
            frames.append(_frame(s, s.flags, s.payload, s.gso_size))
            i = j
            continue
        if size and not s.flags & _NO_MERGE:
            room = 65535 - 40 - len(build_options(s.options)) - size
            end = s.seq + size
            flags, ack, win, opts = s.flags, s.ack, s.window, s.options
            while j < n:
                t = segs[j]
                tl = len(t.payload)
                if (not tl or tl > size or tl > room or t.gso_size or t.flags & ~PSH != flags
                        or t.seq != end & 0xFFFFFFFF or t.ack != ack or t.window != win
                        or t.sport != s.sport or t.dport != s.dport or t.saddr != s.saddr
                        or t.daddr != s.daddr or t.options != opts or t.ttl != s.ttl
                        or t.tos != s.tos):
                    break
                room -= tl
                end += tl
                j += 1
                if tl < size or t.flags & PSH:
                    break       # only the last segment may be short or pushed
        if j - i == 1:
            frames.append(_frame(s, s.flags, s.payload, 0))
        else:
            last = segs[j - 1]
            payload = b"".join([x.payload for x in segs[i:j]])
            frames.append(_frame(s, last.flags, payload, size))
        i = j
    return frames


def _frame(s: Segment, flags: int, payload, gso_size: int) -> bytes:
    """One frame; ``gso_size`` 0 means a plain packet (gso_type NONE)."""
    opts = build_options(s.options)
    thl = 20 + len(opts)
    if thl > 60:
        raise ValueError(f"TCP options need {thl - 20} bytes, more than 40: {s}")
    tlen = thl + len(payload)
    saddr, daddr = s.saddr, s.daddr
    ipc = -ip4_header_sum(s.tos, tlen + 20, s.ip_id, s.ttl, saddr, daddr) % 0xFFFF
    # tcp_v4_send_check with CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum,
    # not inverted; csum_start/csum_offset tell the kernel where to finish the job.
    psum = fold(saddr + daddr + IPPROTO_TCP + tlen)
    try:
        hdr = _IPTCP.pack(0x45, s.tos, tlen + 20, s.ip_id, 0x4000, s.ttl, IPPROTO_TCP, ipc,
                          saddr, daddr, s.sport, s.dport, s.seq, s.ack, thl << 2, flags,
                          s.window, psum, s.urg)
    except struct.error as e:
        raise ValueError(f"cannot encode segment {s}: {e}") from None
    vnet = HDR.pack(F_NEEDS_CSUM, GSO_TCPV4 if gso_size else GSO_NONE, 20 + thl, gso_size, 20, 16)
    return b"".join((vnet, hdr, opts, payload))
