"""IPv4/TCP packet codec: ``parse(buf) -> Segment`` and ``build(seg) -> bytes``.

Hand-written ``struct`` code for the hot path (scapy is 100x slower and stays in the tests).
Receive checks follow the order of the Linux receive path: ``ip_rcv_core`` (version, IHL,
header checksum, total length), ``ip_local_deliver`` (fragments: we do not reassemble),
``ip_protocol_deliver_rcu`` (protocol), then ``tcp_v4_rcv`` (header size, data offset,
checksum) and ``tcp_parse_options``.
"""
from __future__ import annotations

from .. import mib

import ipaddress
import struct

from .checksum import IPPROTO_TCP, ip4_header_sum
from .segment import Segment, TcpOptions

# Counter names used as Malformed.reason (see tuntcp/mib.py), as Linux counts each drop.
IP_HDR_ERRORS = mib.IpInHdrErrors
IP_TRUNCATED = mib.IpExtInTruncatedPkts  # ip_rcv_core: total length beyond the received bytes
# tcp_v4_rcv drops a segment shorter than its TCP header (20 bytes, or the data offset) at
# discard_it, with no MIB counter besides TcpInSegs; this is our own name for that drop.
TCP_TRUNCATED = mib.TuntcpTcpTruncated
IP_REASM_FAILS = mib.IpReasmFails
IP_UNKNOWN_PROTOS = mib.IpInUnknownProtos
TCP_IN_ERRS = mib.TcpInErrs
TCP_CSUM_ERRORS = mib.TcpInCsumErrors

TCP_MAX_WSCALE = 14  # RFC 7323 §2.3; both Linux and FreeBSD clamp larger shifts to 14
MAX_OPTION_SPACE = 40

_IP = struct.Struct("!BBHHHBBHII")  # ver/ihl tos len id frag ttl proto csum src dst
_TCP = struct.Struct("!HHIIBBHHH")  # sport dport seq ack off flags win csum urg
_HDR = struct.Struct("!BBHHHBBHIIHHIIBBHHH")  # both, for build: 40 bytes
_H = struct.Struct("!H")
_II = struct.Struct("!II")
_I = struct.Struct("!I")
_TS_ONLY = struct.Struct("!III")  # nop nop TS: the data/ACK layout, also parsed on a fast path
_SYN_OPTS = struct.Struct("!IIIII")  # 02 04 mss | 04 02 08 0a | tsval | tsecr | 01 03 03 ws
_TS_WORD = 0x0101080A
_SACKOK_TS_WORD = 0x0402080A

_from_bytes = int.from_bytes


class Malformed(ValueError):
    """A packet the receive path drops. ``reason`` is the MIB counter the caller increments.

    Linux counts a bad TCP checksum in both ``TcpInCsumErrors`` and ``TcpInErrs``
    (``tcp_v4_rcv``: csum_error falls through to bad_packet); the caller does the second one.
    ``tcp_v4_rcv`` also counts ``TcpInSegs`` for every TCP-level drop (``TcpInErrs``,
    ``TcpInCsumErrors``, ``TuntcpTcpTruncated``): "count it even if it's bad".
    Reasons: ``IpInHdrErrors`` (short or bad IPv4 header, bad header checksum, total length
    below the header), ``IpExtInTruncatedPkts``, ``IpReasmFails`` (fragments: no reassembly),
    ``IpInUnknownProtos``, ``TuntcpTcpTruncated``, ``TcpInErrs`` (data offset < 5),
    ``TcpInCsumErrors``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def ip_str(addr: int) -> str:
    """198.18.0.1 from 0xC6120001."""
    return str(ipaddress.IPv4Address(addr))


def ip_int(addr: str) -> int:
    """0xC6120001 from '198.18.0.1'; ValueError (with the bad text) for anything else."""
    try:
        return int(ipaddress.IPv4Address(addr))
    except (ipaddress.AddressValueError, ValueError, TypeError) as e:
        raise ValueError(f"not an IPv4 address: {addr!r}") from e


# ---------------------------------------------------------------- parse


def parse(buf: bytes | bytearray | memoryview, verify: bool = True) -> Segment:
    """Parse one IPv4 packet carrying TCP. Raises ``Malformed(reason)`` and nothing else.

    ``verify=False`` skips the TCP checksum (the kernel already checked it: vnet offload). The
    IPv4 header checksum is always checked, as ``ip_rcv_core`` does; it costs a few additions.
    The payload is a ``memoryview`` slice of ``buf`` (no copy), or ``b""`` when empty. Bytes
    after the IP total length (link padding) are ignored, like ``pskb_trim_rcsum``.
    """
    try:
        n = len(buf)
    except TypeError:
        raise Malformed(IP_HDR_ERRORS, f"not a bytes-like object: {type(buf).__name__}") from None
    if n < 20:
        raise Malformed(IP_HDR_ERRORS, f"truncated IP header ({n} bytes)")
    try:
        vihl, tos, tot, ip_id, frag, ttl, proto, ipc, saddr, daddr = _IP.unpack_from(buf)
    except TypeError:
        raise Malformed(IP_HDR_ERRORS, f"not a bytes-like object: {type(buf).__name__}") from None
    # ip_rcv_core: version, IHL, header checksum, then the length checks.
    if vihl == 0x45:
        ihl = 20
        extra = 0
    else:
        if vihl >> 4 != 4:
            raise Malformed(IP_HDR_ERRORS, f"IP version {vihl >> 4}")
        ihl = (vihl & 15) * 4
        if ihl < 20:
            raise Malformed(IP_HDR_ERRORS, f"IHL {ihl >> 2} < 5")
        if ihl > n:
            raise Malformed(IP_HDR_ERRORS, f"truncated IP header ({n} < IHL {ihl} bytes)")
        # IP options are allowed and skipped; they still count in the header checksum.
        extra = _from_bytes(buf[20:ihl], "big")
    # One's-complement sum of the header words from the unpacked fields: a 32-bit address is
    # hi*2^16+lo, i.e. hi+lo modulo 0xffff. A valid header sums to 0xffff (residue 0).
    if ((vihl << 8) + tos + tot + ip_id + frag + (ttl << 8) + proto + ipc + saddr + daddr + extra) % 0xFFFF:
        raise Malformed(IP_HDR_ERRORS, "bad IP header checksum")
    if tot > n:
        raise Malformed(IP_TRUNCATED, f"total length {tot} > {n} bytes received")
    if tot < ihl:
        raise Malformed(IP_HDR_ERRORS, f"total length {tot} < IHL {ihl}")
    if frag & 0x3FFF:  # MF or a fragment offset: we keep no reassembly queue
        raise Malformed(IP_REASM_FAILS, "IP fragment")
    if proto != IPPROTO_TCP:
        raise Malformed(IP_UNKNOWN_PROTOS, f"IP protocol {proto}")

    # The IP header has residue 0 (checked above): the checksum may run from byte 0.
    return tcp_segment(buf, ihl, tot, 0, verify, saddr, daddr, Segment, ttl, tos, ip_id)


def tcp_segment(buf, off: int, tot: int, csum_from: int, verify: bool, saddr: int, daddr: int, cls,
                ttl: int, tos: int, ip_id: int) -> Segment:
    """The TCP part of ``tcp_v4_rcv`` and ``tcp_v6_rcv`` (one code for both families): the TCP
    header at ``buf[off:tot]``, its length and data offset checks, the checksum, the options.

    The checksum is taken over ``buf[csum_from:tot]`` plus the pseudo-header (the addresses, of
    either size, fold into the residue alike): IPv4 passes 0, its header summing to residue 0.
    Returns ``cls(saddr, daddr, <TCP fields>, ttl, tos, ip_id)``; raises ``Malformed``.
    """
    tlen = tot - off
    if tlen < 20:
        raise Malformed(TCP_TRUNCATED, f"truncated TCP header ({tlen} bytes)")
    sport, dport, seq, ack, doff_byte, flags, window, _csum, urg = _TCP.unpack_from(buf, off)
    doff = (doff_byte >> 4) << 2
    if doff < 20:  # tcp_v4_rcv / tcp_v6_rcv: doff < sizeof(tcphdr)/4 -> bad_packet (TcpInErrs)
        raise Malformed(TCP_IN_ERRS, f"TCP data offset {doff >> 2} < 5")
    if doff > tlen:
        raise Malformed(TCP_TRUNCATED, f"TCP data offset {doff} > segment length {tlen}")
    if verify:
        # Read little-endian (faster for big packets), the bytes sum with their weights swapped:
        # x_le * 256 has the residue of the big-endian number padded to even length
        # (2^16 = 1 mod 0xffff), whatever the parity of the length.
        x = _from_bytes(buf if csum_from == 0 and tot == len(buf) else memoryview(buf)[csum_from:tot], "little")
        if ((x % 0xFFFF << 8) + saddr + daddr + IPPROTO_TCP + tlen) % 0xFFFF:
            raise Malformed(TCP_CSUM_ERRORS, "bad TCP checksum")

    ostart = off + 20
    pstart = off + doff
    if pstart == ostart:
        opts = TcpOptions()
    elif doff == 32 and (w := _TS_ONLY.unpack_from(buf, ostart))[0] == _TS_WORD:
        # nop nop TS: what Linux puts on every data segment and ACK.
        opts = TcpOptions(None, None, False, (w[1], w[2]))
    elif doff == 40 and (w := _SYN_OPTS.unpack_from(buf, ostart))[1] == _SACKOK_TS_WORD and (
        w[0] >> 16 == 0x0204 and w[4] >> 8 == 0x010303
    ):
        # mss, sackOK+TS, nop wscale: every SYN and SYN-ACK of a Linux peer with default sysctls.
        ws = w[4] & 0xFF
        opts = TcpOptions(w[0] & 0xFFFF, ws if ws <= TCP_MAX_WSCALE else TCP_MAX_WSCALE, True, (w[2], w[3]))
    else:
        opts = _parse_options(buf, ostart, pstart)
    payload = memoryview(buf)[pstart:tot] if tot > pstart else b""
    return cls(saddr, daddr, sport, dport, seq, ack, flags, window, opts, payload, urg, ttl, tos, ip_id)


def _parse_options(buf, i: int, end: int) -> TcpOptions:
    """Walk the option list the way ``tcp_parse_options`` does.

    EOL ends the list. A truncated or "silly" length (< 2, or running past the header) stops
    the walk and keeps what was parsed so far: Linux does not drop the segment for it (nor does
    FreeBSD ``tcp_dooptions``). Options with a wrong fixed length are skipped, and kept in
    ``unknown`` with the other kinds we do not use. Values are reported whatever the SYN flag:
    ignoring MSS/wscale/sackOK outside a SYN (and an MSS of 0) is the state machine's job.
    A window shift above 14 is clamped to 14, as both kernels do.
    """
    mss = wscale = ts = None
    sack_ok = False
    blocks: tuple = ()
    unknown: tuple = ()
    while i < end:
        kind = buf[i]
        if kind == 1:  # NOP
            i += 1
            continue
        if kind == 0:  # EOL
            break
        if end - i < 2:
            break
        size = buf[i + 1]
        if size < 2 or size > end - i:
            break
        if kind == 8 and size == 10:
            ts = _II.unpack_from(buf, i + 2)
        elif kind == 2 and size == 4:
            mss = _H.unpack_from(buf, i + 2)[0]
        elif kind == 3 and size == 3:
            wscale = buf[i + 2]
            if wscale > TCP_MAX_WSCALE:
                wscale = TCP_MAX_WSCALE
        elif kind == 4 and size == 2:
            sack_ok = True
        elif kind == 5 and size >= 10 and (size - 2) % 8 == 0:
            nb = (size - 2) >> 3
            edges = struct.unpack_from(f"!{2 * nb}I", buf, i + 2)
            blocks = tuple(zip(edges[0::2], edges[1::2]))
        else:
            unknown += ((kind, bytes(buf[i + 2 : i + size])),)
        i += size
    return TcpOptions(mss, wscale, sack_ok, ts, blocks, unknown)


# ---------------------------------------------------------------- build


def build_options(o: TcpOptions) -> bytes:
    """Options in the layout of Linux ``tcp_options_write``, padded to a multiple of 4.

    ``mss`` (02 04 mss); TS as ``04 02 08 0a`` (sackOK folded into the TS word) or
    ``01 01 08 0a``; sackOK alone as ``01 01 04 02``; wscale as ``01 03 03 ws``; SACK blocks as
    ``01 01 05 len`` + edges. Unknown options go last, then EOL padding.
    """
    ts = o.ts
    if o.mss is None and o.wscale is None and not o.sack_blocks and not o.unknown:
        # The common cases: nothing, or the TS word of every data segment and ACK.
        if ts is None:
            return b"\x01\x01\x04\x02" if o.sack_ok else b""
        return _TS_ONLY.pack(_SACKOK_TS_WORD if o.sack_ok else _TS_WORD, ts[0], ts[1])
    parts = []
    if o.mss is not None:
        if not 0 <= o.mss <= 0xFFFF:
            raise ValueError(f"mss {o.mss} does not fit 16 bits")
        parts.append(_I.pack(0x02040000 | o.mss))
    if ts is not None:
        parts.append(_TS_ONLY.pack(_SACKOK_TS_WORD if o.sack_ok else _TS_WORD, ts[0], ts[1]))
    elif o.sack_ok:
        parts.append(b"\x01\x01\x04\x02")
    if o.wscale is not None:
        if not 0 <= o.wscale <= 0xFF:  # > 14 is allowed on purpose: tests send it to see the clamp
            raise ValueError(f"wscale {o.wscale} does not fit 8 bits")
        parts.append(_I.pack(0x01030300 | o.wscale))
    if o.sack_blocks:
        nb = len(o.sack_blocks)
        parts.append(_I.pack(0x01010500 | (2 + 8 * nb)))
        for left, right in o.sack_blocks:
            parts.append(_II.pack(left, right))
    for kind, data in o.unknown:
        parts.append(bytes((kind, len(data) + 2)) + bytes(data))
    out = b"".join(parts)
    if len(out) & 3:
        out += b"\x00" * (4 - (len(out) & 3))
    return out


def tcp_parts(seg: Segment, addr_sum: int) -> tuple[bytes, int, int, int]:
    """What ``build`` and ``build6`` share: the options (``build_options``), the TCP length,
    the one's-complement sum of the TCP header, options, payload and pseudo-header (whose
    addresses sum to ``addr_sum``: added before the payload, a big int, joins), and the data
    offset byte. ValueError as ``build`` says."""
    try:
        opts = build_options(seg.options)
    except (struct.error, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"cannot encode TCP options {seg.options!r}: {e}") from None
    olen = len(opts)
    if olen > MAX_OPTION_SPACE:
        raise ValueError(f"TCP options need {olen} bytes, more than {MAX_OPTION_SPACE}: {seg}")
    payload = seg.payload
    plen = len(payload)
    tlen = 20 + olen + plen
    # a 32-bit value is hi*2^16+lo = hi+lo modulo 0xffff: the sum is taken from the field values
    total = (seg.sport + seg.dport + seg.seq + seg.ack + ((20 + olen) << 10) + seg.flags + seg.window + seg.urg
             + IPPROTO_TCP + tlen + addr_sum)
    if olen:
        total += _from_bytes(opts, "big")
    if plen:
        p = _from_bytes(payload, "big")
        total += (p << 8) if plen & 1 else p
    return opts, tlen, total, (20 + olen) << 2


def build(seg: Segment) -> bytes:
    """One IPv4 packet for ``seg``: DF set, TTL ``seg.ttl``, both checksums filled in.

    Raises ``ValueError`` naming the field when a value does not fit the header or the options
    exceed 40 bytes (a programming error upstream, not a wire condition).
    """
    saddr = seg.saddr
    daddr = seg.daddr
    opts, tlen, total, doff = tcp_parts(seg, saddr + daddr)
    if tlen + 20 > 0xFFFF:
        raise ValueError(f"packet of {tlen + 20} bytes exceeds the IPv4 maximum of 65535")
    tos = seg.tos
    ip_id = seg.ip_id
    ttl = seg.ttl
    # the header is packed once; struct still range-checks every field
    ipc = -ip4_header_sum(tos, tlen + 20, ip_id, ttl, saddr, daddr) % 0xFFFF
    try:
        hdr = _HDR.pack(
            0x45, tos, tlen + 20, ip_id, 0x4000, ttl, IPPROTO_TCP, ipc, saddr, daddr, seg.sport, seg.dport,
            seg.seq, seg.ack, doff, seg.flags, seg.window, -total % 0xFFFF, seg.urg,
        )
    except (struct.error, TypeError) as e:
        raise ValueError(f"cannot encode segment {seg}: {e}") from None
    payload = seg.payload
    if payload:
        return b"".join((hdr, opts, payload))
    return hdr + opts if opts else hdr


# ---------------------------------------------------------------- per-flow template for ACKs

_ACK_TS = struct.Struct("!BBHHHBBHIIHHIIBBHHHIII")  # 52 bytes: headers + nop nop TS
_ACK_BARE = _HDR


class AckTemplate:
    """Fast builder for one flow's segments without payload: ACKs, window updates, RSTs, FINs.

    The constant parts of both checksums (addresses, ports, TTL, lengths, the TS option word)
    are summed once; each packet adds only the changing fields and packs once. The output is
    byte-for-byte what ``build()`` makes for the same Segment (options: nothing or TS only).
    """

    __slots__ = ("saddr", "daddr", "sport", "dport", "ttl", "tos", "_ip_ts", "_ip_bare", "_tcp_ts", "_tcp_bare")

    def __init__(self, saddr: int, daddr: int, sport: int, dport: int, ttl: int = 64, tos: int = 0) -> None:
        for name, value, bits in (("saddr", saddr, 32), ("daddr", daddr, 32), ("sport", sport, 16),
                                  ("dport", dport, 16), ("ttl", ttl, 8), ("tos", tos, 8)):
            if not isinstance(value, int) or not 0 <= value < (1 << bits):
                raise ValueError(f"{name} {value!r} does not fit {bits} bits")
        self.saddr, self.daddr, self.sport, self.dport, self.ttl, self.tos = saddr, daddr, sport, dport, ttl, tos
        ip_const = ip4_header_sum(tos, 0, 0, ttl, saddr, daddr)
        self._ip_ts = ip_const + 52
        self._ip_bare = ip_const + 40
        tcp_const = sport + dport + saddr + daddr + IPPROTO_TCP  # ports, pseudo-header
        self._tcp_ts = tcp_const + 32 + (8 << 12) + 0x0101 + 0x080A  # TCP length, doff 8, TS word
        self._tcp_bare = tcp_const + 20 + (5 << 12)

    def build(self, seq: int, ack: int, flags: int, window: int, ts: tuple[int, int] | None = None,
              ip_id: int = 0) -> bytes:
        """The packet for these fields; ``ts`` is (TSval, TSecr) or None for no options."""
        try:
            if ts is None:
                return _ACK_BARE.pack(
                    0x45, self.tos, 40, ip_id, 0x4000, self.ttl, IPPROTO_TCP,
                    -(self._ip_bare + ip_id) % 0xFFFF, self.saddr, self.daddr, self.sport, self.dport,
                    seq, ack, 0x50, flags, window,
                    -(self._tcp_bare + seq + ack + flags + window) % 0xFFFF, 0,
                )
            tsval, tsecr = ts
            return _ACK_TS.pack(
                0x45, self.tos, 52, ip_id, 0x4000, self.ttl, IPPROTO_TCP,
                -(self._ip_ts + ip_id) % 0xFFFF, self.saddr, self.daddr, self.sport, self.dport,
                seq, ack, 0x80, flags, window,
                -(self._tcp_ts + seq + ack + flags + window + tsval + tsecr) % 0xFFFF, 0,
                _TS_WORD, tsval, tsecr,
            )
        except struct.error as e:
            raise ValueError(f"cannot encode seq={seq} ack={ack} flags={flags} window={window} ts={ts} "
                             f"ip_id={ip_id}: {e}") from None

    def segment(self, seg: Segment) -> bytes:
        """``build(seg)`` via the template when ``seg`` fits it, else the generic builder."""
        o = seg.options
        if (seg.payload or seg.urg or o.mss is not None or o.wscale is not None or o.sack_ok
                or o.sack_blocks or o.unknown or seg.ttl != self.ttl or seg.tos != self.tos
                or seg.saddr != self.saddr or seg.daddr != self.daddr or seg.sport != self.sport
                or seg.dport != self.dport):
            return build(seg)
        return self.build(seg.seq, seg.ack, seg.flags, seg.window, o.ts, seg.ip_id)


# ---------------------------------------------------------------- per-listener template for SYN-ACKs

_MSS_WORD = 0x02040000
_SACKOK_WORD = 0x01010402
_WS_WORD = 0x01030300


class SynAckTemplate:
    """Fast builder for one listener's SYN-ACKs (its port, MSS option and TTL; TOS and IP ID 0).

    Options in ``build_options``'s layout: mss, then TS (sackOK folded in) or sackOK alone, then
    wscale. For each of the eight option combinations the struct and the constant parts of both
    checksums are prepared once; a packet adds only the per-flow fields and packs once. The
    output is byte-for-byte ``build()`` of the same Segment (tests/unit/test_fastpath.py).
    """

    __slots__ = ("sport", "mss", "ttl", "_v")

    def __init__(self, sport: int, mss: int, ttl: int = 64) -> None:
        for name, value, bits in (("sport", sport, 16), ("mss", mss, 16), ("ttl", ttl, 8)):
            if not isinstance(value, int) or not 0 <= value < (1 << bits):
                raise ValueError(f"{name} {value!r} does not fit {bits} bits")
        self.sport, self.mss, self.ttl = sport, mss, ttl
        v = {}
        for ts in (False, True):
            for sack in (False, True):
                for ws in (False, True):
                    words = [_MSS_WORD | mss]
                    if ts:
                        words.append(_SACKOK_TS_WORD if sack else _TS_WORD)
                    elif sack:
                        words.append(_SACKOK_WORD)
                    if ws:
                        words.append(_WS_WORD)
                    tlen = 20 + 4 * (len(words) + (2 if ts else 0))
                    fmt = "!BBHHHBBHIIHHIIBBHHH" + "I" * (len(words) + (2 if ts else 0))
                    ip_const = ip4_header_sum(0, tlen + 20, 0, ttl, 0, 0)
                    tcp_const = sport + (tlen << 10) + IPPROTO_TCP + tlen + sum(words)
                    v[ts, sack, ws] = (struct.Struct(fmt), tlen, ip_const, tcp_const, words)
        self._v = v

    def build(self, saddr: int, daddr: int, dport: int, seq: int, ack: int, flags: int, window: int,
              wscale: int | None, sack_ok: bool, ts: tuple[int, int] | None) -> bytes:
        """The SYN-ACK for these fields (``wscale``/``ts`` None: option absent)."""
        s, tlen, ipc, total, words = self._v[ts is not None, sack_ok, wscale is not None]
        ipc = -(ipc + saddr + daddr) % 0xFFFF
        total += saddr + daddr + dport + seq + ack + flags + window
        w0 = words[0]
        try:
            if ts is not None:
                tsval, tsecr = ts
                total += tsval + tsecr
                if wscale is None:
                    return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                                  self.sport, dport, seq, ack, tlen << 2, flags, window, -total % 0xFFFF, 0,
                                  w0, words[1], tsval, tsecr)
                return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                              self.sport, dport, seq, ack, tlen << 2, flags, window, -(total + wscale) % 0xFFFF,
                              0, w0, words[1], tsval, tsecr, _WS_WORD | wscale)
            if wscale is None:
                if sack_ok:
                    return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                                  self.sport, dport, seq, ack, tlen << 2, flags, window, -total % 0xFFFF, 0,
                                  w0, _SACKOK_WORD)
                return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                              self.sport, dport, seq, ack, tlen << 2, flags, window, -total % 0xFFFF, 0, w0)
            if sack_ok:
                return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                              self.sport, dport, seq, ack, tlen << 2, flags, window, -(total + wscale) % 0xFFFF,
                              0, w0, _SACKOK_WORD, _WS_WORD | wscale)
            return s.pack(0x45, 0, tlen + 20, 0, 0x4000, self.ttl, IPPROTO_TCP, ipc, saddr, daddr,
                          self.sport, dport, seq, ack, tlen << 2, flags, window, -(total + wscale) % 0xFFFF,
                          0, w0, _WS_WORD | wscale)
        except struct.error as e:
            raise ValueError(f"cannot encode SYN-ACK seq={seq} ack={ack} flags={flags} window={window} "
                             f"wscale={wscale} ts={ts}: {e}") from None
