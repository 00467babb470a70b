"""Codec: Linux option layout, round trips, agreement with scapy, and every malformed case."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from tuntcp.wire.codec import AckTemplate, Malformed, build, build_options, ip_int, ip_str, parse
from tuntcp.wire.segment import ACK, PSH, SYN, Segment, TcpOptions

A = ip_int("198.18.0.1")
B = ip_int("198.18.0.2")

# ---------------------------------------------------------------- helpers


def fix_ip_csum(pkt: bytearray) -> bytearray:
    ihl = (pkt[0] & 15) * 4
    pkt[10:12] = b"\0\0"
    s = sum(struct.unpack(f"!{ihl // 2}H", pkt[:ihl]))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    pkt[10:12] = struct.pack("!H", ~s & 0xFFFF)
    return pkt


def fix_tcp_csum(pkt: bytearray) -> bytearray:
    ihl = (pkt[0] & 15) * 4
    tot = struct.unpack_from("!H", pkt, 2)[0]
    seg = bytearray(pkt[ihl:tot])
    seg[16:18] = b"\0\0"
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 6, len(seg))
    data = bytes(pseudo + seg) + (b"\0" if len(seg) & 1 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    pkt[ihl + 16 : ihl + 18] = struct.pack("!H", ~s & 0xFFFF)
    return pkt


def syn(**kw) -> Segment:
    opts = kw.pop("options", TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(1000, 0)))
    return Segment(B, A, 40000, 80, seq=12345, flags=SYN, window=64240, options=opts, **kw)


def reason(buf, verify=True) -> str:
    with pytest.raises(Malformed) as ei:
        parse(bytes(buf), verify)
    return ei.value.reason


# ---------------------------------------------------------------- option layout (tcp_options_write)


def test_synack_with_all_options_uses_linux_layout():
    o = TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(0x11223344, 0x55667788))
    assert build_options(o).hex() == "020405b4" "0402080a" "11223344" "55667788" "01030307"


def test_syn_without_sack_puts_nop_nop_before_ts():
    o = TcpOptions(mss=1460, wscale=7, ts=(1, 2))
    assert build_options(o).hex() == "020405b4" "0101080a" "00000001" "00000002" "01030307"


def test_syn_without_ts_puts_nop_nop_before_sackok():
    o = TcpOptions(mss=1460, wscale=7, sack_ok=True)
    assert build_options(o).hex() == "020405b4" "01010402" "01030307"


def test_syn_with_mss_only_and_with_nothing():
    assert build_options(TcpOptions(mss=536)).hex() == "02040218"
    assert build_options(TcpOptions()) == b""


def test_ack_with_ts_and_sack_blocks():
    o = TcpOptions(ts=(5, 6), sack_blocks=((100, 200), (300, 400)))
    assert build_options(o).hex() == (
        "0101080a" "00000005" "00000006" "01010512" "00000064" "000000c8" "0000012c" "00000190"
    )


def test_unknown_options_go_last_and_are_padded_with_eol():
    o = TcpOptions(ts=(5, 6), unknown=((30, b"\xaa"),))
    assert build_options(o).hex() == "0101080a" "00000005" "00000006" "1e03aa00"


def test_build_refuses_options_over_40_bytes_and_out_of_range_values():
    too_many = TcpOptions(ts=(1, 2), sack_blocks=((1, 2), (3, 4), (5, 6), (7, 8)))
    with pytest.raises(ValueError, match="40"):
        build(Segment(A, B, 80, 1, flags=ACK, options=too_many))
    with pytest.raises(ValueError, match="mss"):
        build(Segment(A, B, 80, 1, flags=SYN, options=TcpOptions(mss=70000)))
    with pytest.raises(ValueError, match="wscale"):
        build(Segment(A, B, 80, 1, flags=SYN, options=TcpOptions(wscale=-1)))
    with pytest.raises(ValueError):
        build(Segment(A, B, 80, 70000))
    with pytest.raises(ValueError):
        build(Segment(A, B, 80, 1, seq=1 << 32))
    with pytest.raises(ValueError, match="65535"):
        build(Segment(A, B, 80, 1, payload=bytes(65500)))


# ---------------------------------------------------------------- headers


def test_build_sets_df_ttl_tos_id_and_valid_checksums():
    pkt = build(syn(ttl=61, tos=0x10, ip_id=4242))
    ip = IP(pkt)
    assert (ip.version, ip.ihl, ip.len, ip.flags, ip.frag) == (4, 5, 60, "DF", 0)
    assert (ip.ttl, ip.tos, ip.id, ip.proto) == (61, 0x10, 4242, 6)
    again = IP(pkt)
    del again.chksum
    del again[TCP].chksum
    assert bytes(again) == pkt  # scapy's recomputed checksums equal ours


def test_parse_syn_from_linux_layout():
    seg = parse(build(syn()))
    assert (seg.saddr, seg.daddr, seg.sport, seg.dport) == (B, A, 40000, 80)
    assert (seg.seq, seg.ack, seg.flags, seg.window) == (12345, 0, SYN, 64240)
    assert seg.options == TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(1000, 0))
    assert seg.payload == b""
    assert (seg.ttl, seg.tos, seg.ip_id) == (64, 0, 0)


def test_payload_is_a_view_without_copy():
    pkt = build(Segment(A, B, 80, 1, 1, 1, ACK | PSH, 100, TcpOptions(ts=(1, 2)), b"hello"))
    seg = parse(pkt)
    assert isinstance(seg.payload, memoryview)
    assert seg.payload.obj is pkt
    assert bytes(seg.payload) == b"hello"


def test_parse_accepts_bytearray_and_memoryview_and_64k_packets():
    seg = Segment(A, B, 80, 1, 1, 1, ACK | PSH, 100, TcpOptions(ts=(1, 2)), bytes(range(256)) * 255 + b"z")
    pkt = build(seg)
    assert len(pkt) == 20 + 32 + 65281
    for buf in (pkt, bytearray(pkt), memoryview(pkt)):
        assert parse(buf) == seg


def test_link_padding_after_total_length_is_ignored():
    pkt = build(Segment(A, B, 80, 1, 1, 1, ACK, 100))
    seg = parse(pkt + b"\0" * 6)  # Ethernet pads a 40-byte frame to 46
    assert seg.payload == b"" and seg.flags == ACK
    data = build(Segment(A, B, 80, 1, 1, 1, ACK | PSH, 100, payload=b"abc"))
    assert bytes(parse(data + b"\xee" * 3).payload) == b"abc"


def test_odd_length_payload_checksum():
    pkt = build(Segment(A, B, 80, 1, 1, 1, ACK | PSH, 100, payload=b"abcde"))
    assert bytes(parse(pkt).payload) == b"abcde"
    assert IP(pkt)[TCP].chksum == _scapy_tcp_csum(pkt)


def test_ip_options_are_skipped_and_checksummed():
    base = bytearray(build(Segment(A, B, 80, 1, 7, 9, ACK | PSH, 100, TcpOptions(ts=(3, 4)), b"xy")))
    pkt = bytearray(base[:20]) + b"\x01\x01\x01\x00" + base[20:]  # NOP NOP NOP EOL
    pkt[0] = 0x46
    struct.pack_into("!H", pkt, 2, len(pkt))
    fix_ip_csum(pkt)
    seg = parse(bytes(pkt))
    assert (seg.seq, seg.ack, seg.options.ts, bytes(seg.payload)) == (7, 9, (3, 4), b"xy")
    pkt[21] = 0x02  # an IP option byte changed without fixing the header checksum
    assert reason(pkt) == "IpInHdrErrors"


def test_ip_helpers():
    assert ip_str(0xC6120001) == "198.18.0.1"
    assert ip_int("198.18.0.1") == 0xC6120001
    for bad in ("198.18.0", "1.2.3.256", "::1", "", None):
        with pytest.raises(ValueError, match="IPv4"):
            ip_int(bad)


# ---------------------------------------------------------------- options as tcp_parse_options reads them


def _with_options(raw_opts: bytes, flags=SYN) -> bytes:
    assert len(raw_opts) % 4 == 0
    seg = Segment(B, A, 40000, 80, 1, 0, flags, 1000, TcpOptions(), b"")
    pkt = bytearray(build(seg))
    pkt[32] = (5 + len(raw_opts) // 4) << 4
    pkt = pkt[:40] + raw_opts
    struct.pack_into("!H", pkt, 2, len(pkt))
    return bytes(fix_tcp_csum(fix_ip_csum(pkt)))


def test_eol_ends_the_option_list():
    o = parse(_with_options(bytes.fromhex("020405b4" "00000000" "01030307"))).options
    assert (o.mss, o.wscale) == (1460, None)


def test_option_length_zero_or_one_stops_parsing_but_keeps_the_segment():
    # tcp_parse_options returns on a "silly" length; the segment itself is processed.
    for silly in (0, 1):
        raw = bytes.fromhex("020405b4") + bytes((30, silly)) + bytes.fromhex("0000" "01030307")
        seg = parse(_with_options(raw))
        assert (seg.options.mss, seg.options.wscale, seg.flags) == (1460, None, SYN)


def test_option_length_running_past_the_header_stops_parsing():
    seg = parse(_with_options(bytes.fromhex("020405b4" "01010402" "0103030c" "080a0000")))
    o = seg.options
    assert (o.mss, o.sack_ok, o.wscale, o.ts) == (1460, True, 12, None)
    # A kind byte alone in the last octet of the option space.
    o = parse(_with_options(bytes.fromhex("020405b4" "01010108"))).options
    assert o.mss == 1460 and o.unknown == ()


def test_wrong_fixed_lengths_are_skipped_as_unknown():
    # mss with length 5 (skipped), sackOK, wscale 7, NOP
    raw = bytes.fromhex("020501020304020303070101")
    o = parse(_with_options(raw)).options
    assert o.mss is None and o.sack_ok and o.wscale == 7
    assert o.unknown == ((2, b"\x01\x02\x03"),)


def test_wscale_above_14_is_clamped_to_14():
    # tcp_parse_options (and FreeBSD tcp_dooptions) clamp to TCP_MAX_WSCALE.
    for ws in (15, 255):
        seg = syn(options=TcpOptions(mss=1460, wscale=ws, sack_ok=True, ts=(1, 0)))
        assert parse(build(seg)).options.wscale == 14  # fast SYN path
        seg = syn(options=TcpOptions(mss=1460, wscale=ws))
        assert parse(build(seg)).options.wscale == 14  # generic walk


def test_sack_blocks_of_bad_length_are_unknown():
    raw = bytes.fromhex("0101050b" "00000001" "00000002" "03000000")  # length 11
    o = parse(_with_options(raw, ACK)).options
    assert o.sack_blocks == () and o.unknown[0][0] == 5


# ---------------------------------------------------------------- malformed: the counter each one hits


GOOD = build(Segment(B, A, 40000, 80, 5, 6, ACK | PSH, 502, TcpOptions(ts=(7, 8)), b"payload!"))


def mutate(offset: int, value: bytes, fix_ip=True, fix_tcp=False) -> bytearray:
    pkt = bytearray(GOOD)
    pkt[offset : offset + len(value)] = value
    if fix_ip:
        fix_ip_csum(pkt)
    if fix_tcp:
        fix_tcp_csum(pkt)
    return pkt


def test_good_packet_parses():
    seg = parse(GOOD)
    assert bytes(seg.payload) == b"payload!" and seg.options.ts == (7, 8)


def test_truncated_ip_header():
    assert reason(b"") == "IpInHdrErrors"
    assert reason(GOOD[:19]) == "IpInHdrErrors"


def test_bad_version():
    assert reason(mutate(0, b"\x65")) == "IpInHdrErrors"


def test_bad_ihl():
    assert reason(mutate(0, b"\x44")) == "IpInHdrErrors"  # IHL 4 < 5
    assert reason(mutate(0, b"\x40")) == "IpInHdrErrors"
    pkt = bytearray(build(Segment(A, B, 80, 1, flags=ACK)))  # 40 bytes
    pkt[0] = 0x4F  # IHL 15 = 60 bytes > 40 received (checked before the header checksum)
    assert reason(pkt) == "IpInHdrErrors"


def test_bad_total_length():
    # ip_rcv_core: longer than what arrived -> InTruncatedPkts; shorter than the header -> hdr error
    assert reason(mutate(2, struct.pack("!H", len(GOOD) + 1))) == "IpExtInTruncatedPkts"
    assert reason(mutate(2, struct.pack("!H", 19))) == "IpInHdrErrors"


def test_bad_ip_checksum():
    assert reason(mutate(10, b"\x12\x34", fix_ip=False)) == "IpInHdrErrors"
    assert reason(mutate(8, b"\x3f", fix_ip=False)) == "IpInHdrErrors"  # TTL changed


def test_fragments_are_reassembly_failures():
    assert reason(mutate(6, b"\x20\x00")) == "IpReasmFails"  # MF
    assert reason(mutate(6, b"\x00\x10")) == "IpReasmFails"  # offset 16*8
    assert reason(mutate(6, b"\x60\x01")) == "IpReasmFails"  # DF|MF, offset 1


def test_reserved_ip_flag_alone_is_not_a_fragment():
    assert parse(bytes(mutate(6, b"\x80\x00"))).payload == b"payload!"


def test_non_tcp_protocol():
    assert reason(mutate(9, b"\x11")) == "IpInUnknownProtos"
    assert reason(mutate(9, b"\x01")) == "IpInUnknownProtos"


def test_truncated_tcp_header():
    # tcp_v4_rcv discards it without a MIB counter; we name the drop ourselves.
    pkt = bytearray(GOOD[:30])
    struct.pack_into("!H", pkt, 2, 30)
    assert reason(fix_ip_csum(pkt)) == "TuntcpTcpTruncated"


def test_bad_data_offset():
    assert reason(mutate(32, b"\x40", fix_tcp=True)) == "TcpInErrs"  # doff 4 < 5
    assert reason(mutate(32, b"\x00", fix_tcp=True)) == "TcpInErrs"
    # 60 > 40 + 8 bytes of TCP: pskb_may_pull(doff * 4) fails, a silent discard in tcp_v4_rcv
    assert reason(mutate(32, b"\xf0", fix_tcp=True)) == "TuntcpTcpTruncated"


def test_bad_tcp_checksum_and_verify_false():
    bad = mutate(36, b"\xde\xad")
    assert reason(bad) == "TcpInCsumErrors"
    assert parse(bytes(bad), verify=False).payload == b"payload!"
    flipped = mutate(len(GOOD) - 1, b"?")  # payload byte changed
    assert reason(flipped) == "TcpInCsumErrors"


def test_ip_checksum_is_checked_even_with_verify_false():
    assert reason(mutate(10, b"\x12\x34", fix_ip=False), verify=False) == "IpInHdrErrors"


def test_non_bytes_input_is_malformed_not_a_crash():
    for junk in (None, 12, "a string of more than twenty characters"):
        with pytest.raises(Malformed):
            parse(junk)


# ---------------------------------------------------------------- property tests

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)
KNOWN_KINDS = {0, 1, 2, 3, 4, 5, 8}
unknown_opt = st.tuples(
    st.integers(6, 254).filter(lambda k: k not in KNOWN_KINDS), st.binary(max_size=6)
)
options = st.builds(
    TcpOptions,
    mss=st.none() | u16,
    wscale=st.none() | st.integers(0, 14),
    sack_ok=st.booleans(),
    ts=st.none() | st.tuples(u32, u32),
    sack_blocks=st.lists(st.tuples(u32, u32), max_size=4).map(tuple),
    unknown=st.lists(unknown_opt, max_size=2).map(tuple),
).filter(lambda o: len(build_options(o)) <= 40)
segments = st.builds(
    Segment,
    saddr=u32, daddr=u32, sport=u16, dport=u16, seq=u32, ack=u32, flags=u8, window=u16,
    options=options, payload=st.binary(max_size=100), urg=u16, ttl=u8, tos=u8, ip_id=u16,
)


@settings(max_examples=300, deadline=None)
@given(segments)
def test_round_trip(seg):
    pkt = build(seg)
    got = parse(pkt)
    assert got == seg
    assert parse(pkt, verify=False) == seg


def _scapy_tcp_csum(pkt: bytes) -> int:
    p = IP(pkt)
    del p[TCP].chksum
    return IP(bytes(p))[TCP].chksum


def _scapy_options(o: TcpOptions) -> list:
    out = []
    if o.mss is not None:
        out.append(("MSS", o.mss))
    if o.sack_ok:
        out.append(("SAckOK", b""))
    if o.ts is not None:
        out.append(("Timestamp", o.ts))
    if o.wscale is not None:
        out.append(("WScale", o.wscale))
    if o.sack_blocks:
        out.append(("SAck", tuple(e for block in o.sack_blocks for e in block)))
    return out


scapy_options = st.builds(
    TcpOptions,
    mss=st.none() | u16,
    wscale=st.none() | st.integers(0, 14),
    sack_ok=st.booleans(),
    ts=st.none() | st.tuples(u32, u32),
    sack_blocks=st.lists(st.tuples(u32, u32), max_size=3).map(tuple),
).filter(lambda o: len(build_options(o)) <= 40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments.filter(lambda s: not s.options.unknown))
def test_our_build_read_by_scapy(seg):
    pkt = build(seg)
    p = IP(pkt)
    t = p[TCP]
    assert (p.src, p.dst, p.ttl, p.tos, p.id, p.flags, p.len) == (
        ip_str(seg.saddr), ip_str(seg.daddr), seg.ttl, seg.tos, seg.ip_id, "DF", len(pkt))
    assert (t.sport, t.dport, t.seq, t.ack, int(t.flags), t.window, t.urgptr) == (
        seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, seg.urg)
    opts = {name: val for name, val in t.options if name not in ("NOP", "EOL")}
    want = {name: val for name, val in _scapy_options(seg.options)}
    if "SAck" in want:
        assert tuple(opts.pop("SAck")) == want.pop("SAck")
    if "Timestamp" in want:
        assert tuple(opts.pop("Timestamp")) == want.pop("Timestamp")
    assert opts == want
    assert bytes(t.payload) == seg.payload
    again = IP(pkt)
    del again.chksum
    del again[TCP].chksum
    assert bytes(again) == pkt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    u32, u32, u16, u16, u32, u32, u8, u16, scapy_options, st.binary(max_size=60), u8, u8, u16,
)
def test_scapy_build_read_by_us(saddr, daddr, sport, dport, seq, ack, flags, win, o, payload, ttl, tos, ip_id):
    pkt = IP(src=ip_str(saddr), dst=ip_str(daddr), ttl=ttl, tos=tos, id=ip_id, flags="DF") / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win, options=_scapy_options(o)
    )
    if payload:
        pkt = pkt / Raw(payload)
    raw = bytes(pkt)
    seg = parse(raw)
    assert (seg.saddr, seg.daddr, seg.sport, seg.dport, seg.seq, seg.ack) == (saddr, daddr, sport, dport, seq, ack)
    assert (seg.flags, seg.window, seg.ttl, seg.tos, seg.ip_id) == (flags, win, ttl, tos, ip_id)
    assert seg.options == o
    assert bytes(seg.payload) == payload


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.booleans())
def test_arbitrary_bytes_never_raise_anything_but_malformed(data, verify):
    try:
        seg = parse(data, verify)
    except Malformed as e:
        assert e.reason in {
            "IpInHdrErrors", "IpExtInTruncatedPkts", "IpReasmFails", "IpInUnknownProtos",
            "TuntcpTcpTruncated", "TcpInErrs", "TcpInCsumErrors",
        }
    else:
        assert len(seg.payload) <= len(data) - 40


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([SYN, ACK, SYN | ACK]))
def test_any_option_bytes_are_walked_without_dropping_the_segment(raw, flags):
    # tcp_parse_options never rejects a segment: whatever the option bytes, it parses.
    raw += bytes(-len(raw) % 4)
    seg = parse(_with_options(raw, flags))
    o = seg.options
    assert seg.flags == flags and seg.payload == b""
    assert o.wscale is None or 0 <= o.wscale <= 14
    assert o.mss is None or 0 <= o.mss <= 0xFFFF
    assert all(len(data) <= 38 for _kind, data in o.unknown)


@settings(max_examples=400, deadline=None)
@given(
    segments,
    st.lists(st.tuples(st.integers(0, 200), u8), min_size=1, max_size=4),
    st.integers(-8, 8),
    st.sampled_from(["none", "ip", "both"]),
)
def test_mutated_valid_packets_never_raise_anything_but_malformed(seg, edits, resize, fix):
    pkt = bytearray(build(seg))
    for pos, val in edits:
        pkt[pos % len(pkt)] = val
    if resize > 0:
        pkt += bytes(resize)
    elif resize < 0:
        del pkt[resize:]
    if fix != "none" and len(pkt) >= 20 and 20 <= (pkt[0] & 15) * 4 <= len(pkt):
        fix_ip_csum(pkt)
        tot = struct.unpack_from("!H", pkt, 2)[0]
        if fix == "both" and (pkt[0] & 15) * 4 + 20 <= tot <= len(pkt):
            fix_tcp_csum(pkt)
    for verify in (True, False):
        try:
            parse(bytes(pkt), verify)
        except Malformed:
            pass


# ---------------------------------------------------------------- AckTemplate


@settings(max_examples=300, deadline=None)
@given(u32, u32, u16, u16, u8, u8, u32, u32, u8, u16, st.none() | st.tuples(u32, u32), u16)
def test_ack_template_equals_generic_build(saddr, daddr, sport, dport, ttl, tos, seq, ack, flags, win, ts, ip_id):
    t = AckTemplate(saddr, daddr, sport, dport, ttl=ttl, tos=tos)
    seg = Segment(saddr, daddr, sport, dport, seq, ack, flags, win, TcpOptions(ts=ts), b"", 0, ttl, tos, ip_id)
    pkt = t.build(seq, ack, flags, win, ts, ip_id)
    assert pkt == build(seg)
    assert parse(pkt) == seg
    assert t.segment(seg) == pkt


def test_ack_template_falls_back_for_segments_it_cannot_make():
    t = AckTemplate(A, B, 80, 40000)
    for seg in (
        Segment(A, B, 80, 40000, 1, 2, ACK | PSH, 10, TcpOptions(ts=(1, 2)), b"data"),
        Segment(A, B, 80, 40000, 1, 2, ACK, 10, TcpOptions(ts=(1, 2), sack_blocks=((5, 9),))),
        Segment(A, B, 80, 40001, 1, 2, ACK, 10),
        Segment(A, B, 80, 40000, 1, 2, SYN | ACK, 10, TcpOptions(mss=1460)),
        Segment(A, B, 80, 40000, 1, 2, ACK, 10, ttl=1),
    ):
        assert t.segment(seg) == build(seg)


def test_ack_template_rejects_bad_values():
    with pytest.raises(ValueError, match="sport"):
        AckTemplate(A, B, 70000, 1)
    with pytest.raises(ValueError, match="seq"):
        AckTemplate(A, B, 80, 1).build(1 << 32, 0, ACK, 0)
