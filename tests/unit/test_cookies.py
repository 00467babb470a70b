"""Linux SYN cookies (reference §4): ISN layout, validity window, options in the TSval."""
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuntcp.listen.cookies import (
    MSSTAB, NO_OPTS, CookieError, CookieOpts, LinuxCookies, decode_ts, encode_ts)
from tuntcp.profiles import get_profile

CLIENT = (0xC6120002, 40000)      # 198.18.0.2:40000, the SYN's source
SERVER = (0xC6120001, 9092)       # 198.18.0.1:9092, us
SECRET = b"16 random bytes!"


def syn_ack(cookies, client_isn, mss, now, client=CLIENT, server=SERVER):
    return cookies.init_sequence(client[0], client[1], server[0], server[1], client_isn, mss, now)


def third_ack(cookies, isn, client_isn, now, client=CLIENT, server=SERVER):
    """The client's ACK: seq = its ISN + 1, ack = our cookie ISN + 1."""
    return cookies.check(client[0], client[1], server[0], server[1],
                         (isn + 1) & 0xFFFFFFFF, (client_isn + 1) & 0xFFFFFFFF, now)


# ---- MSS table -------------------------------------------------------------------------------

@pytest.mark.parametrize("mss,expect", [
    (0, (0, 536)), (88, (0, 536)), (535, (0, 536)), (536, (0, 536)), (1299, (0, 536)),
    (1300, (1, 1300)), (1439, (1, 1300)), (1440, (2, 1440)), (1459, (2, 1440)),
    (1460, (3, 1460)), (1461, (3, 1460)), (8960, (3, 1460)), (65535, (3, 1460))])
def test_mss_index_rounds_down_to_the_table(mss, expect):
    assert LinuxCookies.mss_index(mss) == expect


@pytest.mark.parametrize("mss", [88, 500, 535, 536, 1000, 1300, 1400, 1440, 1452, 1460, 1461,
                                 9000, 65535])
def test_round_trip_gives_the_table_mss(mss):
    c = LinuxCookies(SECRET)
    isn, table_mss = syn_ack(c, 0x12345678, mss, now=1000.0)
    assert table_mss == LinuxCookies.mss_index(mss)[1] and table_mss in MSSTAB
    assert third_ack(c, isn, 0x12345678, now=1000.5) == table_mss


def test_isn_layout_minute_in_top_byte():
    c = LinuxCookies(SECRET)
    a, _ = syn_ack(c, 777, 1460, now=0.0)
    b, _ = syn_ack(c, 777, 1460, now=60.0)
    # one minute later: 1 << 24 more from the counter, plus a difference of two 24-bit hashes
    assert 0 < (b - a) & 0xFFFFFFFF < 1 << 25
    assert (b - a) & 0xFFFFFFFF != 1 << 24
    client_isn_shift, _ = syn_ack(c, 778, 1460, now=0.0)
    assert (client_isn_shift - a) & 0xFFFFFFFF == 1      # the client ISN is simply added


def test_minute_counter():
    assert LinuxCookies.minute(0.0) == 0
    assert LinuxCookies.minute(59.999) == 0
    assert LinuxCookies.minute(60.0) == 1
    assert LinuxCookies.minute(3600.0) == 60
    assert LinuxCookies.minute(60.0 * 2**32) == 0                 # 32-bit counter
    with pytest.raises(CookieError):
        LinuxCookies.minute(-1.0)


# ---- validity: this minute or the previous one -------------------------------------------

@pytest.mark.parametrize("later,ok", [
    (0.0, True), (59.0, True), (59.999, True), (60.0, True), (61.0, True), (119.0, True),
    (119.999, True), (120.0, False), (121.0, False), (180.0, False), (3600.0, False)])
def test_cookie_issued_at_minute_start_lives_120_s(later, ok):
    c = LinuxCookies(SECRET)
    isn, mss = syn_ack(c, 1, 1460, now=600.0)             # 600 s = start of minute 10
    assert third_ack(c, isn, 1, now=600.0 + later) == (mss if ok else 0)


@pytest.mark.parametrize("at,ok", [(600.0, True), (659.999, True), (660.0, False)])
def test_cookie_issued_late_in_a_minute_lives_only_60_s(at, ok):
    c = LinuxCookies(SECRET)
    isn, mss = syn_ack(c, 1, 1460, now=599.999)           # last instant of minute 9
    assert third_ack(c, isn, 1, now=at) == (mss if ok else 0)


def test_cookie_not_valid_256_minutes_later():
    # the top byte wraps every 256 minutes, but the minute also keys the low hash
    c = LinuxCookies(SECRET)
    isn, mss = syn_ack(c, 1, 1460, now=600.0)
    assert third_ack(c, isn, 1, now=600.0 + 256 * 60) == 0


def test_cookie_from_the_future_rejected():
    c = LinuxCookies(SECRET)
    isn, _ = syn_ack(c, 1, 1460, now=660.0)
    assert third_ack(c, isn, 1, now=600.0) == 0


# ---- forgery -----------------------------------------------------------------------------------

def test_forged_acks_rejected():
    c = LinuxCookies(SECRET)
    rng = random.Random(7)
    for _ in range(2000):
        ack = rng.getrandbits(32)
        seq = rng.getrandbits(32)
        assert c.check(CLIENT[0], CLIENT[1], SERVER[0], SERVER[1], ack, seq, 1000.0) == 0


def test_ack_without_the_plus_one_is_not_the_cookie():
    c = LinuxCookies(SECRET)
    isn, _ = syn_ack(c, 99, 536, now=5.0)                  # index 0
    assert c.check(CLIENT[0], CLIENT[1], SERVER[0], SERVER[1], isn, 100, 5.0) == 0


@pytest.mark.parametrize("client,server", [
    ((0xC6120003, 40000), SERVER), ((0xC6120002, 40001), SERVER),
    (CLIENT, (0xC6120009, 9092)), (CLIENT, (0xC6120001, 9093))])
def test_other_four_tuple_rejected(client, server):
    c = LinuxCookies(SECRET)
    isn, _ = syn_ack(c, 5000, 1460, now=10.0)
    assert third_ack(c, isn, 5000, now=10.0, client=client, server=server) == 0


def test_other_client_isn_rejected():
    c = LinuxCookies(SECRET)
    isn, _ = syn_ack(c, 5000, 536, now=10.0)
    assert third_ack(c, isn, 5001, now=10.0) == 0
    assert third_ack(c, isn, 5000 + 0x10000, now=10.0) == 0
    # additive layout (as in Linux): a client ISN smaller by d lands on MSS index + d
    isn, _ = syn_ack(c, 5000, 1300, now=10.0)
    assert third_ack(c, isn, 4999, now=10.0) == 1440


def test_other_secret_rejected():
    isn, _ = syn_ack(LinuxCookies(SECRET), 5000, 1460, now=10.0)
    assert third_ack(LinuxCookies(b"another secret.."), isn, 5000, now=10.0) == 0


@pytest.mark.parametrize("bad", [b"", b"x" * 33, "a str secret", None])
def test_bad_secret_is_a_clear_error(bad):
    with pytest.raises(CookieError, match="1 to 32 bytes"):
        LinuxCookies(bad)


def test_isn_wraps_32_bits():
    c = LinuxCookies(SECRET)
    isn, mss = syn_ack(c, 0xFFFFFFFF, 1460, now=10.0)
    assert 0 <= isn <= 0xFFFFFFFF
    assert third_ack(c, isn, 0xFFFFFFFF, now=10.0) == mss


# ---- options in the TSval (cookie_init_timestamp) ---------------------------------------

def test_ts_bit_layout():
    now = 1_000_000                      # low 6 bits 0: every option value is "in the future"
    ts = encode_ts(now, wscale_ok=True, peer_wscale=7, sack_ok=True, ecn_ok=True)
    assert ts & 0x3F == 0x37             # ECN | SACK | 7
    assert ts == now - 64 + 0x37
    assert encode_ts(now + 63, True, 7, True, True) == now + 0x37     # same block, in the past
    assert encode_ts(now + 63, False, 7, False, False) & 0x3F == 0x0F  # 0xF = no wscale
    assert encode_ts(now + 63, True, 0, False, False) & 0x3F == 0x00
    assert encode_ts(now + 63, True, 15, True, False) & 0x3F == 0x1E   # shift capped at 14


@given(now=st.integers(min_value=64, max_value=2**40), ws_ok=st.booleans(),
       ws=st.integers(min_value=0, max_value=14), sack=st.booleans(), ecn=st.booleans())
def test_ts_never_in_the_future(now, ws_ok, ws, sack, ecn):
    ts = encode_ts(now, ws_ok, ws, sack, ecn)
    now32 = now & 0xFFFFFFFF
    age = (now32 - ts) & 0xFFFFFFFF
    assert 0 <= age < 64
    opts = decode_ts(get_profile("linux-6.1"), ts, True)
    assert opts == CookieOpts(sack_ok=sack, wscale_ok=ws_ok, snd_wscale=ws if ws_ok else 0,
                              ecn_ok=ecn)


# ---- decoding on the cookie ACK (cookie_timestamp_decode, cookie_ecn_ok) ----------------

def test_decode_without_timestamps_clears_everything():
    assert decode_ts(get_profile("linux-5.4"), 0x37, saw_tstamp=False) == NO_OPTS
    assert NO_OPTS == CookieOpts(False, False, 0, False)


def test_decode_with_timestamps():
    p = get_profile("linux-5.4")
    assert decode_ts(p, 0x1234_5637, True) == CookieOpts(True, True, 7, True)
    assert decode_ts(p, 0x1234_560F, True) == CookieOpts(False, False, 0, False)
    assert decode_ts(p, 0x1234_5600, True) == CookieOpts(False, True, 0, False)


def test_decode_rejects_what_sysctls_forbid():
    assert decode_ts(get_profile("linux-5.4", ["net.ipv4.tcp_timestamps=0"]), 0x0F, True) is None
    assert decode_ts(get_profile("linux-5.4", ["net.ipv4.tcp_sack=0"]), 0x1F, True) is None
    assert decode_ts(get_profile("linux-5.4", ["net.ipv4.tcp_sack=0"]), 0x0F, True) == NO_OPTS
    nows = get_profile("linux-5.4", ["net.ipv4.tcp_window_scaling=0"])
    assert decode_ts(nows, 0x07, True) is None
    assert decode_ts(nows, 0x0F, True) == NO_OPTS


def test_decode_ecn_needs_the_sysctl():
    assert decode_ts(get_profile("linux-5.4", ["net.ipv4.tcp_ecn=0"]), 0x2F, True).ecn_ok is False
    assert decode_ts(get_profile("linux-5.4", ["net.ipv4.tcp_ecn=2"]), 0x2F, True).ecn_ok is True


def test_decode_gvisor_mode_drops_window_scaling():
    p = get_profile("linux-5.4", ["model.cookie_wscale_mode=gvisor"])
    assert decode_ts(p, 0x17, True) == CookieOpts(True, False, 0, False)
