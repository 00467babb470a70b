"""Sequence arithmetic: the kernel's before()/after() semantics, across the 2^32 wrap."""
from hypothesis import given, strategies as st

from tuntcp.core.seq import in_window, seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt

u32 = st.integers(0, 2**32 - 1)
delta = st.integers(-(2**31) + 1, 2**31 - 1)


def test_compare_plain():
    assert seq_lt(1, 2) and seq_le(1, 2) and not seq_gt(1, 2) and not seq_ge(1, 2)
    assert seq_le(5, 5) and seq_ge(5, 5) and not seq_lt(5, 5) and not seq_gt(5, 5)


def test_compare_across_wrap():
    assert seq_lt(0xFFFFFFF0, 0x10)       # 0x10 is 32 bytes after 0xfffffff0
    assert seq_gt(0x10, 0xFFFFFFF0)
    assert seq_diff(0x10, 0xFFFFFFF0) == 32
    assert seq_diff(0xFFFFFFF0, 0x10) == -32
    assert seq_add(0xFFFFFFFF, 1) == 0
    assert seq_add(0, -1) == 0xFFFFFFFF


def test_half_space_boundary():
    # Exactly 2^31 apart: Linux's (s32) cast says "before" in both directions' first operand.
    assert seq_lt(0, 2**31) and seq_lt(2**31, 0)
    assert seq_diff(2**31, 0) == -(2**31)


def test_in_window_wraps():
    assert in_window(0xFFFFFFFF, 0xFFFFFFF0, 100)
    assert in_window(5, 0xFFFFFFF0, 100)
    assert not in_window(0xFFFFFFEF, 0xFFFFFFF0, 100)
    assert not in_window(0x54, 0xFFFFFFF0, 100)   # left + 100 is excluded
    assert in_window(0x53, 0xFFFFFFF0, 100)
    assert not in_window(7, 7, 0)


@given(u32, delta)
def test_add_then_diff(a, d):
    b = seq_add(a, d)
    assert seq_diff(b, a) == d
    assert seq_lt(a, b) == (d > 0)
    assert seq_gt(a, b) == (d < 0)
    assert seq_le(a, b) == (d >= 0)
    assert seq_ge(a, b) == (d <= 0)


@given(u32, u32, st.integers(0, 2**31 - 1))
def test_in_window_matches_diff(seq, left, size):
    d = (seq - left) % 2**32
    assert in_window(seq, left, size) == (d < size)
