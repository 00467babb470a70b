"""IPv6/TCP codec: ``parse6(buf) -> Segment6`` and ``build6(seg) -> bytes``.

Receive checks in the order of the Linux path: ``ip6_rcv_core`` (version, multicast source,
payload length, hop-by-hop options), then ``ip6_protocol_deliver_rcu`` walking the next-header
chain (``ipv6_destopt_rcv``, ``ipv6_rthdr_rcv``, ``ipv6_frag_rcv``), then ``tcp_v6_rcv``. Each
drop raises ``Malformed(reason)`` with the MIB counter Linux bumps (net/ipv6/proc.c names).
Addresses are 128-bit ints; the TCP checksum uses the same residue arithmetic as IPv4
(checksum.py: a 128-bit int is the sum of its words modulo 0xffff).
"""
from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar

from .. import mib
from .checksum import IPPROTO_TCP
from .codec import Malformed, tcp_parts, tcp_segment
from .codec import parse as parse4
from .segment import Segment

IP6_HDR_ERRORS = mib.Ip6InHdrErrors
IP6_TRUNCATED = mib.Ip6InTruncatedPkts
IP6_UNKNOWN_PROTOS = mib.Ip6InUnknownProtos
IP6_REASM_FAILS = mib.Ip6ReasmFails
IP6_DELIVERS = mib.Ip6InDelivers

NEXTHDR_HOP = 0
NEXTHDR_ROUTING = 43
NEXTHDR_FRAGMENT = 44
NEXTHDR_NONE = 59
NEXTHDR_DEST = 60
MAX_OPTS_CNT = 8            # IP6_DEFAULT_MAX_HBH_OPTS_CNT / IP6_DEFAULT_MAX_DST_OPTS_CNT
IPV6_MIN_MTU = 1280
V4_MAX = 0xFFFFFFFF         # one int space for both families: an address above this is IPv6

_LOOPBACK = bytes(15) + b"\x01"
_IP6 = struct.Struct("!IHBB16s16s")  # ver/tc/flow, payload length, next header, hop limit, src, dst
_from_bytes = int.from_bytes


@dataclass(slots=True)
class Segment6(Segment):
    """A Segment from or for IPv6: 128-bit addresses, ``ttl`` is the hop limit, ``tos`` the
    traffic class, plus the 20-bit flow label."""

    flowlabel: int = 0
    family: ClassVar[int] = 6


def ip6_str(addr: int) -> str:
    """'2001:db8::1' from the 128-bit int."""
    return str(ipaddress.IPv6Address(addr))


def ip6_int(addr: str) -> int:
    """The 128-bit int of an IPv6 address; ValueError (with the bad text) for anything else."""
    try:
        return int(ipaddress.IPv6Address(addr))
    except (ipaddress.AddressValueError, ValueError, TypeError) as e:
        raise ValueError(f"not an IPv6 address: {addr!r}") from e


def addr_int(addr: str) -> int:
    """The int of an IPv4 or IPv6 address text (what Stack keys use); ValueError otherwise.

    An IPv4-compatible IPv6 address (::a.b.c.d, deprecated) is refused: its int would be an
    IPv4 address's. ``::`` is 0, the wildcard of both families."""
    try:
        a = ipaddress.ip_address(addr)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not an IP address: {addr!r}") from e
    n = int(a)
    if a.version == 6 and 0 < n <= V4_MAX:
        raise ValueError(f"IPv4-compatible IPv6 address {addr!r} is not supported (use the IPv4 address)")
    return n


def addr_str(addr: int, mapped: bool = False) -> str:
    """'198.18.0.1' or '2001:2::1' from an address int (above 2**32: IPv6). ``mapped``: an IPv4
    address as an AF_INET6 socket shows it, '::ffff:198.18.0.1' (``ipv6_addr_set_v4mapped``)."""
    if addr <= V4_MAX:
        return f"::ffff:{ipaddress.IPv4Address(addr)}" if mapped else str(ipaddress.IPv4Address(addr))
    return str(ipaddress.IPv6Address(addr))


def addr_port(addr: int, port: int) -> str:
    """'198.18.0.1:80' or '[2001:2::1]:80', as ss prints them."""
    return f"{addr_str(addr)}:{port}" if addr <= V4_MAX else f"[{addr_str(addr)}]:{port}"


def mss_for_mtu6(mtu: int) -> int:
    """The MSS a listener announces on an IPv6 path: MTU - 40 (IPv6) - 20 (TCP) = MTU - 60.

    ``tcp_mtu_to_mss`` with ``icsk_af_ops->net_header_len`` = sizeof(struct ipv6hdr); an MTU
    below IPV6_MIN_MTU is refused (IPv6 links carry at least 1280 bytes, RFC 8200 §5).
    """
    if not isinstance(mtu, int) or not IPV6_MIN_MTU <= mtu <= 0xFFFF + 40:
        raise ValueError(f"IPv6 MTU must be {IPV6_MIN_MTU}..{0xFFFF + 40}, got {mtu!r}")
    return mtu - 60


def make_flowlabel(txhash: int, auto_flowlabels: int = 1, opted_in: bool = False) -> int:
    """The flow label Linux puts on a TCP packet with no label set by the socket.

    ``ip6_make_flowlabel``: with ``net.ipv6.auto_flowlabels`` 1 (opt-out, the default) or 3
    (forced), or 2 (opt-in) when the socket asked for it, the label is the skb hash rotated by
    16 bits, low 20 bits; a TCP socket's skb hash is its random ``sk_txhash`` (a request sock's
    ``txhash`` for the SYN-ACK). 0: never. flowlabel_state_ranges is 0 by default, so bit 19 is
    left as the hash made it.
    """
    if auto_flowlabels == 0 or (auto_flowlabels == 2 and not opted_in):
        return 0
    h = txhash & 0xFFFFFFFF
    return ((h << 16) | (h >> 16)) & 0xFFFFF


# ---------------------------------------------------------------- parse


def _tlv_ok(buf, off: int, end: int) -> bool:
    """``ip6_parse_tlv`` over one hop-by-hop or destination options header's options.

    Pad1/PadN: at most 7 padding bytes in a row, PadN bytes must be zero (RFC 4942). Other
    options: at most MAX_OPTS_CNT, none running past the header; an unknown type is skipped
    when its two high bits are 00, else the packet is discarded (``ip6_tlvopt_unknown``).
    Router Alert (5) is taken. A Jumbo Payload option (0xC2) is discarded like any unknown type
    with high bits 11: what a 6.18 namespace does with it (tests/netns/test_wire6_kernel.py).
    """
    padlen = 0
    count = 0
    while off < end:
        t = buf[off]
        if t == 0:
            padlen += 1
            off += 1
            if padlen > 7:
                return False
            continue
        if end - off < 2:
            return False
        optlen = buf[off + 1] + 2
        if optlen > end - off:
            return False
        if t == 1:
            padlen += optlen
            if padlen > 7 or any(buf[off + 2 : off + optlen]):
                return False
        else:
            padlen = 0
            count += 1
            if count > MAX_OPTS_CNT:
                return False
            if t == 5:
                if optlen != 4:
                    return False
            elif t >> 6:
                return False
        off += optlen
    return True


def parse6(buf, verify: bool = True, counters=None) -> Segment6:
    """Parse one IPv6 packet carrying TCP. Raises ``Malformed(reason)`` and nothing else.

    ``counters`` (a mib.Counters), when given, gets the side counts of a packet that goes on:
    ``Ip6ReasmReqds`` and ``Ip6ReasmOKs`` for an atomic fragment (a fragment header with offset
    0 and no MF: ``ipv6_frag_rcv`` passes it on). A real fragment is dropped as
    ``Ip6ReasmFails`` after its ``Ip6ReasmReqds`` (we keep no reassembly queue).
    """
    try:
        n = len(buf)
    except TypeError:
        raise Malformed(IP6_HDR_ERRORS, f"not a bytes-like object: {type(buf).__name__}") from None
    if n < 40:
        raise Malformed(IP6_HDR_ERRORS, f"truncated IPv6 header ({n} bytes)")
    try:
        vtf, plen, nh, hlim, src, dst = _IP6.unpack_from(buf)
    except TypeError:
        raise Malformed(IP6_HDR_ERRORS, f"not a bytes-like object: {type(buf).__name__}") from None
    if vtf >> 28 != 6:
        raise Malformed(IP6_HDR_ERRORS, f"IP version {vtf >> 28}")
    # ip6_rcv_core's address checks (a TUN is not a loopback device): multicast source, loopback
    # source or destination, multicast destination of scope 0 or 1. (An IPv4-mapped source is
    # refused later, by tcp_v6_conn_request, and only for a SYN: the listen path's business.)
    if src[0] == 0xFF:
        raise Malformed(IP6_HDR_ERRORS, "multicast source address")
    if src == _LOOPBACK or dst == _LOOPBACK:
        raise Malformed(IP6_HDR_ERRORS, "loopback address from a non-loopback device")
    if dst[0] == 0xFF and dst[1] & 0xF < 2:
        raise Malformed(IP6_HDR_ERRORS, f"multicast destination of scope {dst[1] & 0xF}")
    if plen or nh != NEXTHDR_HOP:
        tot = 40 + plen
        if tot > n:
            raise Malformed(IP6_TRUNCATED, f"payload length {plen} > {n - 40} bytes received")
    else:
        tot = n  # payload length 0 with hop-by-hop options: ip6_rcv_core trims nothing
    off = 40
    if nh == NEXTHDR_HOP:  # only as the first header (ipv6_parse_hopopts in ip6_rcv_core)
        nh, off = _ext_header(buf, off, tot)
    # ip6_protocol_deliver_rcu: each extension header is a "protocol" that hands on the next.
    while nh != IPPROTO_TCP:
        if nh == NEXTHDR_DEST:
            nh, off = _ext_header(buf, off, tot)
        elif nh == NEXTHDR_ROUTING:
            nh, off = _routing(buf, off, tot)
        elif nh == NEXTHDR_FRAGMENT:
            nh, off = _fragment(buf, off, tot, plen, counters)
        elif nh == NEXTHDR_NONE:  # nodata_protocol: delivered, then freed
            raise Malformed(IP6_DELIVERS, "no next header (59)")
        else:  # hop-by-hop after the first header has no handler either
            raise Malformed(IP6_UNKNOWN_PROTOS, f"next header {nh}")

    seg = tcp_segment(buf, off, tot, off, verify, _from_bytes(src, "big"), _from_bytes(dst, "big"), Segment6,
                      hlim, (vtf >> 20) & 0xFF, 0)
    seg.flowlabel = vtf & 0xFFFFF
    return seg


def parse_ip(buf, verify: bool = True) -> Segment:
    """An IPv4 or IPv6 packet, by its version nibble (``codec.parse`` or ``parse6``): for
    readers of captures that hold both (a LINKTYPE_RAW pcap)."""
    if len(buf) and buf[0] >> 4 == 6:
        return parse6(buf, verify)
    return parse4(buf, verify)


def _ext_length(buf, off: int, tot: int) -> int:
    """End of the extension header at ``off`` (``(hdrlen + 1) * 8``); Ip6InHdrErrors when it or
    its first 8 bytes are not all there (the ``pskb_may_pull`` checks of each handler)."""
    if tot - off < 8:
        raise Malformed(IP6_HDR_ERRORS, f"truncated extension header at {off}")
    end = off + ((buf[off + 1] + 1) << 3)
    if end > tot:
        raise Malformed(IP6_HDR_ERRORS, f"extension header at {off} runs past the payload ({end} > {tot})")
    return end


def _ext_header(buf, off: int, tot: int) -> tuple[int, int]:
    """Hop-by-hop or destination options -> (next header, end); bad options: Ip6InHdrErrors."""
    end = _ext_length(buf, off, tot)
    if not _tlv_ok(buf, off + 2, end):
        raise Malformed(IP6_HDR_ERRORS, f"bad option in extension header at {off}")
    return buf[off], end


def _routing(buf, off: int, tot: int) -> tuple[int, int]:
    """``ipv6_rthdr_rcv``: a routing header with no segments left is skipped; one with segments
    left would send the packet on to another node: Ip6InHdrErrors for the types Linux does not
    take (RH0 and unknown types, ``unknown_rh``). Segment routing (type 4) and RPL (type 3) are
    off by default (seg6_enabled, rpl_seg_enabled) and freed with no MIB counter in Linux (seen
    in a 6.18 namespace); we name that drop TuntcpIp6RtHdrDrop so it shows.
    """
    end = _ext_length(buf, off, tot)
    nh = buf[off]
    if buf[off + 3] == 0:
        return nh, end
    rtype = buf[off + 2]
    if rtype in (3, 4):
        raise Malformed(mib.TuntcpIp6RtHdrDrop, f"routing header type {rtype} with segments left (disabled)")
    raise Malformed(IP6_HDR_ERRORS, f"routing header type {rtype} with {buf[off + 3]} segments left")


def _fragment(buf, off: int, tot: int, plen: int, counters) -> tuple[int, int]:
    """``ipv6_frag_rcv``: Ip6ReasmReqds for every fragment header; a truncated one is
    Ip6InHdrErrors; an atomic fragment (offset 0, no MF) goes on as Ip6ReasmOKs. A real first
    fragment without the whole TCP header is Ip6InHdrErrors (RFC 8200 §4.5,
    ``ipv6frag_thdr_truncated``); any other real fragment is Ip6ReasmFails (no reassembly)."""
    if counters is not None:
        counters[mib.Ip6ReasmReqds] += 1
    if tot - off < 8:
        raise Malformed(IP6_HDR_ERRORS, "truncated fragment header")
    nh = buf[off]
    frag = (buf[off + 2] << 8) | buf[off + 3]
    if not frag & 0xFFF9:  # offset 0 and no MF
        if counters is not None:
            counters[mib.Ip6ReasmOKs] += 1
        return nh, off + 8
    if not frag & 0xFFF8 and _upper_header_truncated(buf, off + 8, tot, nh):
        raise Malformed(IP6_HDR_ERRORS, "first fragment without the whole TCP header")
    # ip6_frag_queue: a fragment ending past 65535, or a non-last fragment whose length is not a
    # multiple of 8, is a parameter problem (Ip6InHdrErrors); any other would be queued.
    end = (frag & 0xFFF8) + tot - off - 8
    if end > 0xFFFF or (frag & 1 and end & 7):
        raise Malformed(IP6_HDR_ERRORS, f"fragment ends at {end}" + (", MF set, not a multiple of 8" if frag & 1 else ""))
    raise Malformed(IP6_REASM_FAILS, f"IPv6 fragment (offset {frag >> 3}, MF {frag & 1}), no reassembly here")


def _upper_header_truncated(buf, off: int, tot: int, nh: int) -> bool:
    """``ipv6frag_thdr_truncated`` (via ``ipv6_skip_exthdr``): skip the extension headers after
    the fragment header; True when the upper-layer header (20 bytes for TCP, 1 byte for anything
    else) does not fit. A chain that itself runs out, or a later fragment header with an offset,
    is not "truncated" here (ipv6_skip_exthdr returns -1 / stops), as in Linux."""
    while nh in (NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_DEST, NEXTHDR_FRAGMENT):
        if tot - off < 8:
            return False
        if nh == NEXTHDR_FRAGMENT:
            if ((buf[off + 2] << 8) | buf[off + 3]) & 0xFFF8:
                return False
            hdrlen = 8
        else:
            hdrlen = (buf[off + 1] + 1) << 3
        nh = buf[off]
        off += hdrlen
    if nh == NEXTHDR_NONE:
        return False
    return off + (20 if nh == IPPROTO_TCP else 1) > tot


# ---------------------------------------------------------------- build

_HDR6 = struct.Struct("!IHBB16s16sHHIIBBHHH")  # IPv6 header + TCP header: 60 bytes


def build6(seg: Segment, flowlabel: int | None = None) -> bytes:
    """One IPv6 packet for ``seg``: hop limit ``seg.ttl``, traffic class ``seg.tos``, flow label
    ``flowlabel`` or else ``seg.flowlabel`` (0 for a plain Segment), no extension headers, TCP
    checksum filled in.

    Raises ``ValueError`` naming the field when a value does not fit, as ``build`` does.
    """
    saddr, daddr = seg.saddr, seg.daddr
    flow = getattr(seg, "flowlabel", 0) if flowlabel is None else flowlabel
    for name, value, bits in (("saddr", saddr, 128), ("daddr", daddr, 128), ("tos", seg.tos, 8),
                              ("flowlabel", flow, 20)):
        if not isinstance(value, int) or not 0 <= value < (1 << bits):
            raise ValueError(f"{name} {value!r} does not fit {bits} bits")
    opts, tlen, total, doff = tcp_parts(seg, saddr + daddr)
    if tlen > 0xFFFF:
        raise ValueError(f"TCP segment of {tlen} bytes exceeds the IPv6 payload maximum of 65535")
    try:
        hdr = _HDR6.pack((6 << 28) | (seg.tos << 20) | flow, tlen, IPPROTO_TCP, seg.ttl,
                         saddr.to_bytes(16, "big"), daddr.to_bytes(16, "big"), seg.sport, seg.dport, seg.seq,
                         seg.ack, doff, seg.flags, seg.window, -total % 0xFFFF, seg.urg)
    except (struct.error, TypeError) as e:
        raise ValueError(f"cannot encode segment {seg}: {e}") from None
    return b"".join((hdr, opts, seg.payload)) if seg.payload else hdr + opts


class Ip6Out:
    """How one host puts its TCP segments into IPv6 packets (the encoders call ``build``).

    Hop limit: ``net.ipv6.conf.default.hop_limit`` (``ip6_dst_hoplimit`` with no route metric).
    Flow label: ``make_flowlabel`` of the flow's ``sk_txhash``. Linux draws that hash at random
    per socket, and the child copies its request sock's (``tcp_v6_syn_recv_sock``), so SYN-ACK
    and data carry one label; a RST takes the skb flow hash. Here one keyed hash of the 4-tuple
    stands for all three: the same per flow, unrelated between flows.
    """

    __slots__ = ("hop_limit", "auto_flowlabels", "_key", "_labels")

    def __init__(self, hop_limit: int, auto_flowlabels: int, secret: bytes):
        self.hop_limit = hop_limit
        self.auto_flowlabels = auto_flowlabels
        self._key = bytes(secret)[:32] or b"\0"
        self._labels: dict = {}

    def flowlabel(self, laddr: int, lport: int, raddr: int, rport: int) -> int:
        key = (laddr, lport, raddr, rport)
        label = self._labels.get(key)
        if label is None:
            h = hashlib.blake2s(_FLOW.pack(laddr.to_bytes(16, "big"), lport, raddr.to_bytes(16, "big"), rport),
                                key=self._key, digest_size=4, person=b"txhash").digest()
            if len(self._labels) >= 4096:    # a flood of spoofed sources cannot grow it
                self._labels.clear()
            label = self._labels[key] = make_flowlabel(_from_bytes(h, "big"), self.auto_flowlabels)
        return label

    def build(self, seg: Segment) -> bytes:
        seg.ttl = self.hop_limit
        return build6(seg, self.flowlabel(seg.saddr, seg.sport, seg.daddr, seg.dport))


_FLOW = struct.Struct("!16sH16sH")
