"""32-bit sequence-number arithmetic (RFC 9293 §3.4), the kernel's ``before()``/``after()``.

Linux compares with ``(s32)(seq1 - seq2) < 0`` (``before`` in include/net/tcp.h): a is "before"
b when the forward distance from a to b is below 2^31. Plain functions: these run per packet.
"""
from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def seq_lt(a: int, b: int) -> bool:
    """a before b (Linux ``before(a, b)``)."""
    return ((a - b) & MASK) >= HALF


def seq_le(a: int, b: int) -> bool:
    """a before or equal to b (Linux ``!after(a, b)``)."""
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    """a after b (Linux ``after(a, b)``)."""
    return ((b - a) & MASK) >= HALF


def seq_ge(a: int, b: int) -> bool:
    """a after or equal to b (Linux ``!before(a, b)``)."""
    return ((a - b) & MASK) < HALF


def seq_add(a: int, n: int) -> int:
    """a + n mod 2^32 (n may be negative)."""
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """Signed a - b mod 2^32, in [-2^31, 2^31)."""
    return ((a - b + HALF) & MASK) - HALF


def in_window(seq: int, left: int, size: int) -> bool:
    """left <= seq < left + size, mod 2^32 (size < 2^31; size 0 contains nothing)."""
    return ((seq - left) & MASK) < size
