"""IPv6 codec (tuntcp/wire/ipv6.py): agreement with scapy both ways, the extension-header chain
as Linux walks it, and every drop with its Ip6 counter."""
import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, PadN, RouterAlert,
)
from scapy.packet import Raw, raw

from tuntcp import mib
from tuntcp.profiles import get_profile
from tuntcp.wire.checksum import tcp_checksum
from tuntcp.wire.codec import Malformed, build
from tuntcp.wire.ipv6 import Segment6, build6, ip6_int, ip6_str, make_flowlabel, mss_for_mtu6, parse6
from tuntcp.wire.segment import ACK, PSH, SYN, Segment, TcpOptions

A = ip6_int("2001:db8::1")
B = ip6_int("2001:db8::2")


def pkt(*ext, payload=b"x", tcp=None, **ip):
    p = IPv6(**{"src": "2001:db8::1", "dst": "2001:db8::2", **ip})
    for e in ext:
        p = p / e
    return bytearray(raw(p / (tcp or TCP(sport=1, dport=2, flags="S")) / payload))


def drop(buf, counters=None):
    with pytest.raises(Malformed) as ei:
        parse6(bytes(buf), counters=counters)
    return ei.value.reason


# ---------------------------------------------------------------- against scapy

# not multicast and not ::1 (ip6_rcv_core refuses both from a non-loopback device)
addr = st.integers(0, (1 << 128) - 1).filter(lambda a: a >> 120 != 0xFF and a != 1)
opts = st.builds(TcpOptions, mss=st.none() | st.integers(0, 0xFFFF), wscale=st.none() | st.integers(0, 14),
                 sack_ok=st.booleans(), ts=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(s=addr, d=addr, sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF), seq=st.integers(0, 2**32 - 1),
       ack=st.integers(0, 2**32 - 1), flags=st.integers(0, 0xFF), win=st.integers(0, 0xFFFF), o=opts,
       payload=st.binary(max_size=300), hl=st.integers(0, 255), tc=st.integers(0, 255),
       fl=st.integers(0, 0xFFFFF), urg=st.integers(0, 0xFFFF))
def test_build6_matches_scapy_and_parses_back(s, d, sport, dport, seq, ack, flags, win, o, payload, hl, tc, fl, urg):
    seg = Segment6(s, d, sport, dport, seq, ack, flags, win, o, payload, urg, hl, tc, 0, 0, fl)
    wire = build6(seg)
    p = IPv6(wire)
    assert (p.version, p.tc, p.fl, p.hlim, p.nh, p.plen) == (6, tc, fl, hl, 6, len(wire) - 40)
    assert (int(ip6_int(p.src)), int(ip6_int(p.dst))) == (s, d)
    t = p[TCP]
    assert (t.sport, t.dport, t.seq, t.ack, int(t.flags), t.window, t.urgptr) == (sport, dport, seq, ack, flags, win, urg)
    chk = t.chksum
    del p[TCP].chksum
    assert IPv6(raw(p))[TCP].chksum == chk        # scapy recomputes the same pseudo-header sum
    back = parse6(wire)
    assert back.family == 6 and (back.saddr, back.daddr, back.flowlabel, back.tos, back.ttl) == (s, d, fl, tc, hl)
    assert (back.options.mss, back.options.wscale, back.options.sack_ok, back.options.ts) == (o.mss, o.wscale, o.sack_ok, o.ts)
    assert bytes(back.payload) == payload


@settings(max_examples=200)
@given(sport=st.integers(0, 0xFFFF), seq=st.integers(0, 2**32 - 1), payload=st.binary(max_size=200),
       n_dest=st.integers(0, 3), hbh=st.booleans(), frag=st.booleans())
def test_parse6_of_scapy_packets_with_extension_headers(sport, seq, payload, n_dest, hbh, frag):
    ext = ([IPv6ExtHdrHopByHop()] if hbh else []) + [IPv6ExtHdrDestOpt()] * n_dest \
        + [IPv6ExtHdrRouting(segleft=0)] + ([IPv6ExtHdrFragment(m=0, offset=0)] if frag else [])
    c = mib.Counters()
    s = parse6(bytes(pkt(*ext, payload=payload, tcp=TCP(sport=sport, dport=80, seq=seq, flags="PA"))), counters=c)
    assert (s.sport, s.seq, bytes(s.payload)) == (sport, seq, payload)
    assert c == ({mib.Ip6ReasmReqds: 1, mib.Ip6ReasmOKs: 1} if frag else {})


def test_pseudo_header_checksum_is_rfc8200():
    seg = bytearray(struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 0x50, SYN, 100, 0, 0)) + b"odd"
    pseudo = A.to_bytes(16, "big") + B.to_bytes(16, "big") + struct.pack("!IBBBB", len(seg), 0, 0, 0, 6)
    data = pseudo + seg + b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    assert tcp_checksum(A, B, bytes(seg)) == ~s & 0xFFFF


def test_plain_segment_builds_with_flowlabel_zero_and_addresses_format():
    wire = build6(Segment(A, B, 1, 2, flags=SYN, ttl=64))
    assert IPv6(wire).fl == 0 and IPv6(wire).hlim == 64
    assert ip6_str(A) == "2001:db8::1"
    with pytest.raises(ValueError):
        ip6_int("198.18.0.1")
    with pytest.raises(ValueError):
        build6(Segment6(1 << 128, B, 1, 2))
    with pytest.raises(ValueError):
        build6(Segment6(A, B, 1, 2, flowlabel=1 << 20))


def test_ipv4_segment_family_and_codec_untouched():
    s = Segment(1, 2, 3, 4)
    assert s.family == 4 and Segment6(A, B, 1, 2).family == 6
    assert "family" not in {f.name for f in dataclasses.fields(Segment)}   # no per-packet field
    assert len(build(s)) == 40


# ---------------------------------------------------------------- knobs the sender uses


def test_hop_limit_and_flowlabel_from_the_profile():
    p = get_profile("linux-6.18")
    assert p["net.ipv6.conf.default.hop_limit"] == 64 and p["net.ipv6.auto_flowlabels"] == 1
    seg = Segment6(A, B, 1, 2, flags=SYN, ttl=p["net.ipv6.conf.default.hop_limit"],
                   flowlabel=make_flowlabel(0xCAFEF00D, p["net.ipv6.auto_flowlabels"]))
    wire = IPv6(build6(seg))
    assert wire.hlim == 64 and wire.fl == 0xDCAFE        # rol32(0xCAFEF00D, 16) = 0xF00DCAFE, low 20 bits


def test_make_flowlabel_modes():
    h = 0x12345678
    rol = ((h << 16) | (h >> 16)) & 0xFFFFFFFF          # 0x56781234
    assert make_flowlabel(h, 1) == rol & 0xFFFFF == 0x81234
    assert make_flowlabel(h, 3) == 0x81234
    assert make_flowlabel(h, 0) == 0
    assert make_flowlabel(h, 2) == 0 and make_flowlabel(h, 2, opted_in=True) == 0x81234


def test_mss_from_ipv6_mtu():
    assert mss_for_mtu6(1500) == 1440 and mss_for_mtu6(1280) == 1220 and mss_for_mtu6(9000) == 8940
    for bad in (1279, 0, -1, 1 << 17, "1500"):
        with pytest.raises(ValueError):
            mss_for_mtu6(bad)


# ---------------------------------------------------------------- drops, as Linux counts them


def test_short_wrong_version_and_multicast_source():
    assert drop(b"") == mib.Ip6InHdrErrors
    assert drop(pkt()[:39]) == mib.Ip6InHdrErrors
    b = pkt()
    b[0] = 0x45
    assert drop(b) == mib.Ip6InHdrErrors
    for kw in ({"src": "ff02::1"}, {"src": "::1"}, {"dst": "::1"}, {"dst": "ff01::1"}, {"dst": "ff00::1"}):
        assert drop(pkt(**kw)) == mib.Ip6InHdrErrors, kw
    assert parse6(bytes(pkt(src="::ffff:198.18.0.1"))).dport == 2     # tcp_v6_conn_request's to refuse
    assert parse6(bytes(pkt(dst="ff02::1"))).dport == 2                # link-local scope passes here
    for junk in (None, 12345, "a" * 60):
        with pytest.raises(Malformed) as ei:
            parse6(junk)
        assert ei.value.reason == mib.Ip6InHdrErrors


def test_payload_length():
    b = pkt()
    b[4:6] = struct.pack("!H", len(b) - 40 + 1)
    assert drop(b) == mib.Ip6InTruncatedPkts
    b = pkt(payload=b"abc")
    b += b"padding"                                   # link padding is trimmed (pskb_trim_rcsum)
    assert bytes(parse6(bytes(b)).payload) == b"abc"
    b = pkt()
    b[4:6] = b"\0\0"                                   # payload length 0, next header TCP: no TCP header
    assert drop(b) == mib.TuntcpTcpTruncated
    # payload length 0 with hop-by-hop options: nothing is trimmed, the packet is taken whole
    assert bytes(parse6(bytes(pkt(IPv6ExtHdrHopByHop(), plen=0, payload=b"abc"))).payload) == b"abc"


def test_jumbo_payload_option():
    def jumbo(value, plen=0):
        opt = bytes([0xC2, 4]) + value.to_bytes(4, "big")       # at offset 42 = 4n+2
        b = bytearray(pkt(IPv6ExtHdrHopByHop(options=[PadN(optdata=b"")]), payload=b""))
        b[42:48] = opt
        b[4:6] = plen.to_bytes(2, "big")
        return b
    # 6.18 takes no Jumbo Payload option on input: it is an unknown type 0xC2 (discard)
    for value, plen in ((70000, 0), (1000, 0), (70000, 28)):
        assert drop(jumbo(value, plen)) == mib.Ip6InHdrErrors
    dest = bytearray(pkt(IPv6ExtHdrDestOpt(options=[PadN(optdata=b"")])))
    dest[42:48] = bytes([0xC2, 4]) + (70000).to_bytes(4, "big")
    assert drop(dest) == mib.Ip6InHdrErrors                      # only valid in hop-by-hop options


def test_extension_header_chain():
    assert drop(pkt(IPv6ExtHdrDestOpt(), IPv6ExtHdrHopByHop())) == mib.Ip6InUnknownProtos   # HBH not first
    assert drop(pkt(IPv6ExtHdrHopByHop(), IPv6ExtHdrHopByHop())) == mib.Ip6InUnknownProtos
    b = pkt(IPv6ExtHdrDestOpt(nh=59), payload=b"")[:48]
    b[4:6] = struct.pack("!H", 8)
    assert drop(b) == mib.Ip6InDelivers                                        # no next header (59)
    assert drop(pkt(nh=17)) == mib.Ip6InUnknownProtos
    assert drop(pkt(IPv6ExtHdrRouting(segleft=1, addresses=["2001:db8::9"]))) == mib.Ip6InHdrErrors
    assert drop(pkt(IPv6ExtHdrRouting(type=4, segleft=1, addresses=["2001:db8::9"]))) == mib.TuntcpIp6RtHdrDrop
    # a long but valid chain is walked to the end
    assert parse6(bytes(pkt(*[IPv6ExtHdrDestOpt()] * 200))).dport == 2


def test_truncated_chains():
    b = pkt(IPv6ExtHdrDestOpt())
    for cut in (41, 47):
        t = bytearray(b[:cut])
        t[4:6] = struct.pack("!H", cut - 40)
        assert drop(t) == mib.Ip6InHdrErrors
    b = pkt(IPv6ExtHdrDestOpt())
    b[41] = 5                                          # header length 48 bytes, past the payload
    assert drop(b) == mib.Ip6InHdrErrors


def test_tlv_options():
    assert parse6(bytes(pkt(IPv6ExtHdrHopByHop(options=[RouterAlert()])))).dport == 2
    assert drop(pkt(IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x01\x00\x00\x00")]))) == mib.Ip6InHdrErrors
    assert drop(pkt(IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 8)]))) == mib.Ip6InHdrErrors  # > 7 pad bytes
    # unknown option type 0x1e (high bits 00): skipped; 0x5e (01): discard; 0xde (11): discard
    b = pkt(IPv6ExtHdrDestOpt(options=[PadN(otype=0x1E, optdata=b"\0\0\0\0")]))
    assert parse6(bytes(b)).dport == 2
    for t in (0x5E, 0x9E, 0xDE):
        assert drop(pkt(IPv6ExtHdrDestOpt(options=[PadN(otype=t, optdata=b"\0\0\0\0")]))) == mib.Ip6InHdrErrors
    # nine non-padding options: over IP6_DEFAULT_MAX_DST_OPTS_CNT
    nine = [PadN(otype=0x1E, optdata=b"")] * 9
    assert drop(pkt(IPv6ExtHdrDestOpt(options=nine))) == mib.Ip6InHdrErrors
    eight = [PadN(otype=0x1E, optdata=b"")] * 8
    assert parse6(bytes(pkt(IPv6ExtHdrDestOpt(options=eight)))).dport == 2


def test_fragments():
    c = mib.Counters()
    assert parse6(bytes(pkt(IPv6ExtHdrFragment(offset=0, m=0))), counters=c).dport == 2
    assert c == {mib.Ip6ReasmReqds: 1, mib.Ip6ReasmOKs: 1}
    c = mib.Counters()
    assert drop(pkt(IPv6ExtHdrFragment(offset=0, m=1), payload=bytes(12)), c) == mib.Ip6ReasmFails
    assert drop(pkt(IPv6ExtHdrFragment(offset=5, m=0)), c) == mib.Ip6ReasmFails
    assert c == {mib.Ip6ReasmReqds: 2}
    # ip6_frag_queue: a non-last fragment not a multiple of 8 long, or one ending past 65535
    assert drop(pkt(IPv6ExtHdrFragment(offset=0, m=1), payload=bytes(13))) == mib.Ip6InHdrErrors
    assert drop(pkt(IPv6ExtHdrFragment(offset=8190, m=0), payload=bytes(100))) == mib.Ip6InHdrErrors
    # a first fragment whose TCP header is cut: RFC 8200 4.5
    b = pkt(IPv6ExtHdrFragment(offset=0, m=1), payload=b"")[:40 + 8 + 10]
    b[4:6] = struct.pack("!H", 18)
    assert drop(b) == mib.Ip6InHdrErrors
    b = pkt(IPv6ExtHdrFragment(offset=0, m=0))[:44]
    b[4:6] = struct.pack("!H", 4)
    assert drop(b) == mib.Ip6InHdrErrors


def test_tcp_level_drops():
    b = pkt()
    b[40 + 17] ^= 1
    assert drop(b) == mib.TcpInCsumErrors
    assert parse6(bytes(b), verify=False).dport == 2
    b = pkt()
    b[40 + 12] = 0x40
    assert drop(b) == mib.TcpInErrs
    b = pkt()
    b[40 + 12] = 0xF0
    assert drop(b) == mib.TuntcpTcpTruncated
