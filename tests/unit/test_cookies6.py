"""IPv6 SYN cookies (LinuxCookies6, net/ipv6/syncookies.c): the IPv6 MSS table, round trips over
128-bit 4-tuples, expiry, and the shared window-scale derivation with its buggy/fixed switch."""
import pytest

from tuntcp.core.window import cookie_init_rwin
from tuntcp.listen.cookies import MSSTAB, MSSTAB6, LinuxCookies, LinuxCookies6, decode_ts, encode_ts
from tuntcp.profiles import get_profile
from tuntcp.wire.ipv6 import ip6_int

C = ip6_int("2001:db8::c")
S = ip6_int("2001:db8::5")
NOW = 1_000_000.0


def test_ipv6_mss_table():
    assert MSSTAB6 == (1220, 1420, 1440, 8940)
    k = LinuxCookies6(b"k")
    assert [k.mss_index(m) for m in (536, 1219, 1220, 1419, 1420, 1440, 1460, 8939, 8940, 65535)] == [
        (0, 1220), (0, 1220), (0, 1220), (0, 1220), (1, 1420), (2, 1440), (2, 1440), (2, 1440), (3, 8940), (3, 8940)]
    assert LinuxCookies.mss_index(1440) == (2, 1440) and MSSTAB != MSSTAB6


@pytest.mark.parametrize("mss", [1220, 1420, 1440, 1460, 8940, 9000])
def test_round_trip(mss):
    k = LinuxCookies6(b"secret")
    isn, table = k.init_sequence(C, 40000, S, 9092, 123456, mss, NOW)
    assert k.check(C, 40000, S, 9092, isn + 1, 123457, NOW) == table
    assert k.check(C, 40000, S, 9092, isn + 1, 123457, NOW + 60) == table          # previous minute
    assert k.check(C, 40000, S, 9092, isn + 1, 123457, NOW + 120) == 0             # too old
    assert k.check(C, 40001, S, 9092, isn + 1, 123457, NOW) == 0                   # other port
    assert k.check(C ^ (1 << 100), 40000, S, 9092, isn + 1, 123457, NOW) == 0     # high address bits count
    assert LinuxCookies6(b"other").check(C, 40000, S, 9092, isn + 1, 123457, NOW) == 0


def test_v4_and_v6_cookies_differ_for_the_same_low_bits():
    a, b = 0xC6120001, 0xC6120002
    v4 = LinuxCookies(b"s").init_sequence(a, 1, b, 2, 7, 1460, NOW)
    v6 = LinuxCookies6(b"s").init_sequence(a, 1, b, 2, 7, 1460, NOW)
    assert v4 != v6


@pytest.mark.parametrize("clamp, want", [(False, 7), (True, 1)])
def test_window_scale_derivation_switch_applies_to_ipv6_cookies(clamp, want):
    """The incident over IPv6: a broker with SO_RCVBUF 64 KiB announces wscale 1 in the cookie
    SYN-ACK; the buggy check (no SO_RCVBUF clamp) rebuilds the child with 7 (linux-5.4's 6 MiB
    tcp_rmem[2]), the fixed one (909172a14974) with 1."""
    p = get_profile("linux-5.4", [f"model.cookie_wscale_clamp={str(clamp).lower()}"])
    k = LinuxCookies6(b"s")
    isn, table = k.init_sequence(C, 40000, S, 9092, 5, 1440, NOW)
    mss = k.check(C, 40000, S, 9092, isn + 1, 6, NOW)
    assert mss == 1440
    opts = decode_ts(p, encode_ts(123456, True, 7, True, False), True)
    _, _, rcv_wscale = cookie_init_rwin(p, listener_rcvbuf=131072, rcvbuf_locked=True, listener_window_clamp=0,
                                        cookie_mss=mss, wscale_ok=opts.wscale_ok)
    assert rcv_wscale == want
