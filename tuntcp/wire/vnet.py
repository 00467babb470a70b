"""``struct virtio_net_hdr`` (``linux/virtio_net.h``) and the GSO frames we write with it.

With ``IFF_VNET_HDR`` every TUN read and write carries this 10-byte header before the IP packet
(native byte order for a legacy TUN, little-endian here). The one definition of the header; the
TUN side (ioctls, ``VnetIO``) is ``tuntcp.shell.vnet``, the encoder that uses ``gso_frames`` is
``tuntcp.host.encode.VnetEncoder``. Both families: gso_type TCPV4 or TCPV6.

``cuts`` is where ``tcp_gso_segment`` cuts a super-packet; ``split`` applies it to a parsed
Segment (the stack's receive path) and ``segment_frame`` to a frame's bytes (the link model,
which must drop or corrupt one wire segment at a time).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import IPPROTO_TCP, fold, ip4_header_sum, ones_sum
from .codec import build_options
from .ipv6 import V4_MAX
from .segment import CWR, FIN, PSH, RST, SYN, URG, Segment

F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_TCPV6 = 4
GSO_ECN = 0x80
HDR = struct.Struct("=BBHHHH")   # flags gso_type hdr_len gso_size csum_start csum_offset
HDR_LEN = HDR.size               # 10
MAX_FRAME = HDR_LEN + 65535

_IPTCP = struct.Struct("!BBHHHBBHIIHHIIBBHHH")
_IP6TCP = struct.Struct("!IHBB16s16sHHIIBBHHH")
_NO_MERGE = SYN | FIN | RST | URG | PSH
_H = struct.Struct("!H")
_I = struct.Struct("!I")


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


def gso_frames(segs: list[Segment], ip6=None) -> list[bytes]:
    """TUN frames for ``segs`` (in order): each a ``virtio_net_hdr`` plus an IP packet whose
    TCP checksum field holds only the pseudo-header sum (NEEDS_CSUM: the kernel completes it).
    IPv6 segments (destination above 2**32) take hop limit and flow label from ``ip6``
    (``wire.ipv6.Ip6Out``, as ``Ip6Out.build`` does for plain packets).

    A run of adjacent segments is merged into one GSO super-packet (gso_type TCPV4/TCPV6,
    gso_size = the first segment's payload) when it is what ``tcp_gso_segment`` would cut back
    into the same segments: one flow, contiguous sequence numbers, equal ack/window/options/
    flags, no SYN/FIN/RST/URG, every segment but the last exactly gso_size long, PSH only on
    the last, and the whole IP packet within 65535 bytes.

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
            frames.append(_frame(s, s.flags, s.payload, s.gso_size, ip6))
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
            frames.append(_frame(s, s.flags, s.payload, 0, ip6))
        else:
            last = segs[j - 1]
            payload = b"".join([x.payload for x in segs[i:j]])
            frames.append(_frame(s, last.flags, payload, size, ip6))
        i = j
    return frames


def _frame(s: Segment, flags: int, payload, gso_size: int, ip6=None) -> bytes:
    """One frame; ``gso_size`` 0 means a plain packet (gso_type NONE)."""
    opts = build_options(s.options)
    thl = 20 + len(opts)
    if thl > 60:
        raise ValueError(f"TCP options need {thl - 20} bytes, more than 40: {s}")
    tlen = thl + len(payload)
    saddr, daddr = s.saddr, s.daddr
    # tcp_v4_send_check / tcp_v6_send_check with CHECKSUM_PARTIAL: the field holds the folded
    # pseudo-header sum, not inverted; csum_start/csum_offset tell the kernel where to finish.
    # (An address is a sum of 16-bit words modulo 0xffff, so the ints add directly.)
    psum = fold(saddr + daddr + IPPROTO_TCP + tlen)
    try:
        if daddr > V4_MAX:
            if ip6 is None:
                raise ValueError("an IPv6 segment needs the host's Ip6Out")
            s.ttl = ip6.hop_limit
            flow = ip6.flowlabel(saddr, s.sport, daddr, s.dport)
            hdr = _IP6TCP.pack((6 << 28) | (s.tos << 20) | flow, tlen, IPPROTO_TCP, s.ttl,
                               saddr.to_bytes(16, "big"), daddr.to_bytes(16, "big"), s.sport,
                               s.dport, s.seq, s.ack, thl << 2, flags, s.window, psum, s.urg)
            ihl, gso_type = 40, GSO_TCPV6
        else:
            ipc = -ip4_header_sum(s.tos, tlen + 20, s.ip_id, s.ttl, saddr, daddr) % 0xFFFF
            hdr = _IPTCP.pack(0x45, s.tos, tlen + 20, s.ip_id, 0x4000, s.ttl, IPPROTO_TCP, ipc,
                              saddr, daddr, s.sport, s.dport, s.seq, s.ack, thl << 2, flags,
                              s.window, psum, s.urg)
            ihl, gso_type = 20, GSO_TCPV4
    except (struct.error, OverflowError) as e:
        raise ValueError(f"cannot encode segment {s}: {e}") from None
    vnet = HDR.pack(F_NEEDS_CSUM, gso_type if gso_size else GSO_NONE, ihl + thl, gso_size, ihl, 16)
    return b"".join((vnet, hdr, opts, payload))


# ---- cutting super-packets (tcp_gso_segment) ---------------------------------------------------

def cuts(seq: int, flags: int, plen: int, size: int):
    """``tcp_gso_segment``'s pieces of a ``plen``-byte payload cut every ``size`` bytes:
    (offset, length, seq, flags) per piece. CWR stays on the first piece only, FIN and PSH on
    the last only; every other header field is copied."""
    last = (plen - 1) // size * size if plen else 0
    mid = flags & ~(FIN | PSH)
    out = []
    for off in range(0, plen, size):
        f = flags if off == last else mid
        if off:
            f &= ~CWR
        out.append((off, min(size, plen - off), (seq + off) & 0xFFFFFFFF, f))
    return out


def split(seg: Segment, size: int) -> list[Segment]:
    """``seg`` (a received super-packet) as the wire segments ``size`` apart it stands for,
    IPv4 ids counting up from the first (``inet_gso_segment`` without FIXEDID)."""
    payload = seg.payload
    if len(payload) <= size:
        return [seg]
    out = []
    cls = seg.__class__
    v6 = cls is not Segment
    extra = (seg.flowlabel,) if v6 else ()
    for i, (off, n, seq, flags) in enumerate(cuts(seg.seq, seg.flags, len(payload), size)):
        out.append(cls(seg.saddr, seg.daddr, seg.sport, seg.dport, seq, seg.ack, flags,
                       seg.window, seg.options, payload[off:off + n], seg.urg, seg.ttl, seg.tos,
                       seg.ip_id if v6 else (seg.ip_id + i) & 0xFFFF, 0, *extra))
    return out


def frame_info(frame) -> tuple[int, int, int]:
    """(flags, gso_size or 0, wire segments) of a frame: a GSO frame stands for
    ceil(payload / gso_size) wire segments, anything else for one."""
    flags, gso_type, hdr_len, gso_size = HDR.unpack_from(frame)[:4]
    if not gso_type or not gso_size:
        return flags, 0, 1
    plen = len(frame) - HDR_LEN - _hdr_len(frame)
    return flags, gso_size, max(1, -(-plen // gso_size))


def _hdr_len(frame) -> int:
    """IP + TCP header bytes of the packet in ``frame`` (plain IPv4/IPv6 + TCP, as we and the
    kernel's TUN build them)."""
    ihl = (frame[HDR_LEN] & 15) * 4 if frame[HDR_LEN] >> 4 == 4 else 40
    return ihl + (frame[HDR_LEN + ihl + 12] >> 4) * 4


def segment_frame(frame) -> list[bytes]:
    """A GSO frame as plain frames, one per wire segment (``skb_gso_segment``): per-segment
    lengths, sequence numbers, flags, IPv4 ids and header checksums, and a full TCP checksum
    (flags 0: the receiver verifies it). A plain frame comes back as itself."""
    flags, size, n = frame_info(frame)
    if n == 1 and not size:
        return [bytes(frame)]
    pkt = memoryview(frame)[HDR_LEN:]
    v4 = pkt[0] >> 4 == 4
    ihl = (pkt[0] & 15) * 4 if v4 else 40
    hlen = ihl + (pkt[ihl + 12] >> 4) * 4
    payload = pkt[hlen:]
    hdr0 = bytes(pkt[:hlen])
    ip_id = _H.unpack_from(hdr0, 4)[0] if v4 else 0
    if v4:
        addrs = _I.unpack_from(hdr0, 12)[0] + _I.unpack_from(hdr0, 16)[0]
    else:
        addrs = int.from_bytes(hdr0[8:24], "big") + int.from_bytes(hdr0[24:40], "big")
    out = []
    plain = HDR.pack(0, GSO_NONE, 0, 0, 0, 0)
    for i, (off, ln, seq, tflags) in enumerate(cuts(_I.unpack_from(hdr0, ihl + 4)[0],
                                                     hdr0[ihl + 13], len(payload), size)):
        h = bytearray(hdr0)
        tlen = hlen - ihl + ln
        if v4:
            _H.pack_into(h, 2, hlen + ln)
            _H.pack_into(h, 4, (ip_id + i) & 0xFFFF)
            _H.pack_into(h, 10, 0)
            _H.pack_into(h, 10, 0xFFFF - ones_sum(h[:ihl]))
        else:
            _H.pack_into(h, 4, tlen)
        _I.pack_into(h, ihl + 4, seq)
        h[ihl + 13] = tflags
        _H.pack_into(h, ihl + 16, 0)
        chunk = payload[off:off + ln]
        total = addrs + IPPROTO_TCP + tlen + ones_sum(h[ihl:]) + ones_sum(chunk)
        _H.pack_into(h, ihl + 16, 0xFFFF - fold(total))
        out.append(b"".join((plain, h, chunk)))
    return out


def complete_csum(frame) -> bytes:
    """``frame`` with its checksum marks cleared (flags 0), so a receiver verifies it; a
    NEEDS_CSUM frame gets its TCP checksum finished first (``skb_checksum_help``)."""
    flags, _, _, _, start, offset = HDR.unpack_from(frame)
    b = bytearray(frame)
    b[0] = 0
    if not flags & F_NEEDS_CSUM:
        return bytes(b)
    at = HDR_LEN + start + offset
    # the field holds the pseudo-header sum: summing over it includes it
    _H.pack_into(b, at, 0xFFFF - ones_sum(b[HDR_LEN + start:]))
    return bytes(b)
