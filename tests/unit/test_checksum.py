"""Internet checksum: the int.from_bytes % 0xffff method against a word-by-word reference and scapy."""
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.utils import checksum as scapy_checksum

from tuntcp.wire.checksum import (
    checksum,
    csum_replace,
    fold,
    ip_header_checksum_ok,
    ones_sum,
    pseudo_sum,
    tcp_checksum,
    tcp_checksum_ok,
)
from tuntcp.wire.codec import ip_str

A, B = 0xC6120001, 0xC6120002


def ref_ones_sum(b: bytes) -> int:
    """RFC 1071 the slow way: 16-bit words, end-around carry."""
    if len(b) & 1:
        b += b"\0"
    s = 0
    for (w,) in struct.iter_unpack("!H", b):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_rfc1071_example():
    # RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert checksum(data) == 0x220D


def test_negative_zero_is_ffff_and_only_all_zero_sums_to_zero():
    assert ones_sum(b"") == 0
    assert ones_sum(b"\0\0\0\0") == 0
    assert ones_sum(b"\xff\xff") == 0xFFFF
    assert ones_sum(b"\xff\xff\x00\x00") == 0xFFFF
    assert ones_sum(b"\x80\x00\x7f\xff") == 0xFFFF  # 0x8000 + 0x7fff
    assert ones_sum(b"\x00\x01\xff\xfe") == 0xFFFF
    assert fold(0) == 0 and fold(0xFFFF) == 0xFFFF and fold(0x1FFFE) == 0xFFFF


def test_odd_length_pads_a_zero_byte_at_the_end():
    assert ones_sum(b"\x12") == 0x1200
    assert ones_sum(b"\x00\x01\x12") == 0x1201
    assert ones_sum(memoryview(b"\x00\x01\x12")) == 0x1201


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_ones_sum_matches_word_by_word_reference(data):
    assert ones_sum(data) == ref_ones_sum(data)
    assert ones_sum(bytearray(data)) == ref_ones_sum(data)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_checksum_matches_scapy(data):
    assert checksum(data) == scapy_checksum(data)


@settings(max_examples=200)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_sums_of_parts_add_when_first_part_is_even(a, b):
    a = a + b"\0" if len(a) & 1 else a
    assert fold(ones_sum(a) + ones_sum(b)) == ones_sum(a + b)


def test_pseudo_sum_matches_packed_pseudo_header():
    pseudo = struct.pack("!IIBBH", A, B, 0, 6, 1234)
    assert fold(pseudo_sum(A, B, 1234)) == ones_sum(pseudo)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=64),
)
def test_tcp_checksum_equals_scapy_and_verifies(src, dst, sport, seq, payload):
    pkt = IP(src=ip_str(src), dst=ip_str(dst)) / TCP(sport=sport, dport=80, seq=seq, flags="PA") / payload
    raw = bytes(pkt)
    tcp = bytearray(raw[20:])
    scapy_sum = struct.unpack_from("!H", tcp, 16)[0]
    assert tcp_checksum_ok(src, dst, tcp)
    tcp[16:18] = b"\0\0"
    assert tcp_checksum(src, dst, tcp) == scapy_sum
    assert ip_header_checksum_ok(raw[:20])


@settings(max_examples=200)
@given(st.binary(min_size=20, max_size=80), st.integers(0, 8 * 80 - 1))
def test_any_single_bit_flip_fails_verification(tcp, bit):
    tcp = bytearray(tcp)
    tcp[16:18] = b"\0\0"
    tcp[16:18] = struct.pack("!H", tcp_checksum(A, B, tcp))
    assert tcp_checksum_ok(A, B, tcp)
    bit %= 8 * len(tcp)
    tcp[bit // 8] ^= 1 << (bit % 8)
    assert not tcp_checksum_ok(A, B, tcp)


def test_checksum_field_zero_and_ffff_are_the_same_number():
    # Find a segment whose checksum comes out as 0, then write 0xffff instead: still valid.
    for seq in range(200000):
        tcp = bytearray(struct.pack("!HHIIBBHHH", 1, 2, seq, 0, 0x50, 0x10, 0, 0, 0))
        if tcp_checksum(A, B, tcp) == 0:
            break
    else:
        raise AssertionError("no zero checksum found")
    assert tcp_checksum_ok(A, B, tcp)
    tcp[16:18] = b"\xff\xff"
    assert tcp_checksum_ok(A, B, tcp)


def test_ip_header_checksum():
    hdr = bytearray(bytes(IP(src="198.18.0.1", dst="198.18.0.2", ttl=64, id=7)))
    assert ip_header_checksum_ok(hdr)
    hdr[8] = 63  # TTL changed without fixing the checksum
    assert not ip_header_checksum_ok(hdr)
    assert not ip_header_checksum_ok(bytes(20))


@settings(max_examples=200)
@given(st.binary(min_size=20, max_size=60).map(lambda b: b[: len(b) & ~1]), st.data())
def test_incremental_update_equals_recompute(data, draw):
    data = bytearray(data)
    i = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new = draw.draw(st.integers(0, 0xFFFF))
    old = struct.unpack_from("!H", data, i)[0]
    before = checksum(data)
    struct.pack_into("!H", data, i, new)
    if any(data):
        assert csum_replace(before, old, new) == checksum(data)
    else:  # all-zero data: a recompute gives 0xffff, RFC 1624 eqn. 3 the equivalent 0x0000
        assert csum_replace(before, old, new) % 0xFFFF == checksum(data) % 0xFFFF
