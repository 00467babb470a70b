"""Internet checksum (RFC 1071) in pure Python, plus the IPv4/TCP pseudo-header.

The fast trick: a big-endian integer made of 16-bit words w_i equals sum(w_i * 2^(16 i)), and
2^16 = 1 (mod 0xffff), so ``int.from_bytes(b, "big") % 0xffff`` is the one's-complement sum of
the words, except that a non-zero sum which is a multiple of 0xffff must read 0xffff (one's
complement "negative zero"), never 0. Every helper here works on such residues: sums of
residues can be added as plain ints and folded once at the end.

Linux does the same arithmetic in ``csum_partial``/``csum_fold`` and ``csum_tcpudp_magic``.

IPv6 (``csum_ipv6_magic``): a 128-bit address is also the sum of its 16-bit words modulo 0xffff,
so ``pseudo_sum``, ``tcp_checksum`` and ``tcp_checksum_ok`` take 128-bit ints unchanged and give
the RFC 8200 §8.1 pseudo-header sum (src, dst, 32-bit length, zeros, next header).
"""
from __future__ import annotations

IPPROTO_TCP = 6

_from_bytes = int.from_bytes


def ones_sum(b: bytes | bytearray | memoryview) -> int:
    """One's-complement 16-bit sum of ``b`` (zero-padded to even length): 0..0xffff.

    Returns 0 only when every byte is zero; a non-zero multiple of 0xffff reads 0xffff.
    """
    x = _from_bytes(b, "big")
    if len(b) & 1:
        x <<= 8  # the pad byte goes after the last byte
    s = x % 0xFFFF
    return 0xFFFF if (s == 0 and x) else s


def fold(total: int) -> int:
    """Fold any non-negative sum of 16-bit residues into a one's-complement sum 0..0xffff."""
    s = total % 0xFFFF
    return 0xFFFF if (s == 0 and total) else s


def checksum(b: bytes | bytearray | memoryview) -> int:
    """The Internet checksum of ``b``: the complement of its one's-complement sum."""
    return 0xFFFF - ones_sum(b)


def pseudo_sum(saddr: int, daddr: int, length: int, proto: int = IPPROTO_TCP) -> int:
    """Unfolded sum of the IPv4 pseudo-header (src, dst, zero, proto, TCP length).

    A 32-bit address is hi*2^16 + lo, which is hi + lo modulo 0xffff, so the raw ints can be
    added directly; like ``csum_tcpudp_nofold`` the result is folded later, together with the
    segment's own sum.
    """
    return saddr + daddr + proto + length


def tcp_checksum(saddr: int, daddr: int, tcp: bytes | bytearray | memoryview) -> int:
    """Checksum to put in the TCP header of ``tcp`` (header+options+payload, checksum field 0).

    Mirrors ``tcp_v4_send_check`` (``csum_tcpudp_magic`` over pseudo-header and segment).
    """
    n = len(tcp)
    x = _from_bytes(tcp, "big")
    if n & 1:
        x <<= 8
    # The pseudo-header always contributes proto 6, so the total is never zero: a residue of 0
    # means the sum is 0xffff and the checksum 0.
    return 0xFFFF - ((x % 0xFFFF + saddr + daddr + IPPROTO_TCP + n) % 0xFFFF or 0xFFFF)


def tcp_checksum_ok(saddr: int, daddr: int, tcp: bytes | bytearray | memoryview) -> bool:
    """True when the segment's checksum field is right (the full sum folds to 0xffff).

    Mirrors the receive check ``tcp_v4_rcv`` -> ``skb_checksum_init``/``__skb_checksum_complete``.
    A checksum field of 0x0000 and of 0xffff are the same one's-complement number and both pass.
    """
    n = len(tcp)
    x = _from_bytes(tcp, "big")
    if n & 1:
        x <<= 8
    return (x % 0xFFFF + saddr + daddr + IPPROTO_TCP + n) % 0xFFFF == 0


def ip4_header_sum(tos: int, tot_len: int, ip_id: int, ttl: int, saddr: int, daddr: int) -> int:
    """Unfolded sum of the IPv4 header we send (no options, DF, protocol TCP, checksum 0).

    Builders and templates add constant parts once and the per-packet fields later; the header
    checksum is ``-sum % 0xFFFF`` (``ip_send_check``/``ip_fast_csum``).
    """
    return (0x4500 | tos) + tot_len + ip_id + 0x4000 + (ttl << 8) + IPPROTO_TCP + saddr + daddr


def ip_header_checksum_ok(hdr: bytes | bytearray | memoryview) -> bool:
    """True when an IPv4 header (checksum field included) sums to 0xffff (``ip_fast_csum`` == 0).

    An all-zero header sums to 0 and fails, as it should.
    """
    x = _from_bytes(hdr, "big")
    return x != 0 and x % 0xFFFF == 0


def csum_replace(csum: int, old_word: int, new_word: int) -> int:
    """Incremental update (RFC 1624 eqn. 3) of a header checksum when one 16-bit word changes.

    ``HC' = ~(~HC + ~m + m')``, like Linux ``csum_replace2``/``inet_proto_csum_replace2``.
    """
    s = (0xFFFF - csum) + (0xFFFF - old_word) + new_word
    return 0xFFFF - fold(s)
