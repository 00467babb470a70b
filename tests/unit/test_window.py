"""Receive-window math against the worked example of reference §5 (Kafka, SO_RCVBUF=102400).

Each test states what goes in (profile, buffer, MSS, options) and the numbers a tcpdump / ss
would show. The numbers were derived by hand from the kernel formulas in the reference.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuntcp.core.window import (
    SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, RecvWindow, WindowError, connect_init_rwin,
    cookie_init_rwin, full_space,
    init_buffer_space, openreq_init_rwin, select_initial_window, skb_truesize,
    sock_set_rcvbuf, sock_set_sndbuf, synack_window_field, win_from_space)
from tuntcp.profiles import Profile, get_profile

KAFKA_RCVBUF = 102400


def prof(name, **over):
    return get_profile(name, {k.replace("__", "."): v for k, v in over.items()})


def with_knob(p, **knobs):
    """A profile carrying a knob the registered profiles do not have (yet)."""
    k = dict(p)
    k.update({n.replace("__", "."): v for n, v in knobs.items()})
    return Profile(p.name, p.family, k)


def listener(p):
    return dict(listener_rcvbuf=sock_set_rcvbuf(p, KAFKA_RCVBUF), rcvbuf_locked=True,
                listener_window_clamp=0)


def synack(p, mss=1460, ts=True, ws=True):
    return openreq_init_rwin(p, **listener(p), mss_clamp=mss, tstamp_ok=ts, wscale_ok=ws)


def cookie(p, mss=1460, ws=True):
    return cookie_init_rwin(p, **listener(p), cookie_mss=mss, wscale_ok=ws)


def child(p, init, advmss=1448, rcv_nxt=1000):
    rcv_wnd, clamp, ws = init
    return RecvWindow(p, rcvbuf=sock_set_rcvbuf(p, KAFKA_RCVBUF), rcvbuf_locked=True,
                      rcv_wscale=ws, window_clamp=clamp, rcv_wnd=rcv_wnd, advmss=advmss,
                      rcv_nxt=rcv_nxt)


def stream(w, rcv_nxt, n, seg=1448):
    """n full segments arrive and are read at once; returns (fields advertised, rcv_nxt)."""
    fields = []
    for _ in range(n):
        rcv_nxt += seg
        w.on_data(seg, seg)
        fields.append(w.select(rcv_nxt, 0, seg))
    return fields, rcv_nxt


# ---- SO_RCVBUF / SO_SNDBUF -------------------------------------------------------------------

def test_so_rcvbuf_doubles_within_rmem_max():
    p = prof("linux-5.4")
    assert sock_set_rcvbuf(p, 102400) == 204800
    assert sock_set_rcvbuf(p, 300000) == 2 * 212992          # limited by rmem_max first
    assert sock_set_rcvbuf(p, 300000, force=True) == 600000  # SO_RCVBUFFORCE
    assert sock_set_rcvbuf(p, 0) == SOCK_MIN_RCVBUF == 2304
    assert sock_set_rcvbuf(p, -1) == 2 * 212992              # compared as u32: huge
    assert sock_set_rcvbuf(p, -1, force=True) == SOCK_MIN_RCVBUF
    assert sock_set_rcvbuf(prof("linux-5.4", net__core__rmem_max=4194304), 300000) == 600000


def test_so_sndbuf_doubles_within_wmem_max():
    p = prof("linux-5.10")
    assert sock_set_sndbuf(p, 65536) == 131072
    assert sock_set_sndbuf(p, 2000) == SOCK_MIN_SNDBUF == 4608
    assert sock_set_sndbuf(p, 10**9) == 2 * 212992
    assert sock_set_sndbuf(p, 10**9, force=True) == 2 * 10**9
    assert sock_set_sndbuf(p, 2**31, force=True) == 2 * ((2**31 - 1) // 2)   # val * 2 fits an int


def test_so_rcvbuf_rejects_non_integers_with_a_clear_error():
    with pytest.raises(WindowError, match="SO_RCVBUF wants an integer"):
        sock_set_rcvbuf(prof("linux-5.4"), "100k")


# ---- tcp_win_from_space / tcp_full_space ---------------------------------------------------

@pytest.mark.parametrize("scale,expect", [(1, 102400), (2, 153600), (0, 204800), (-2, 51200)])
def test_win_from_space_adv_win_scale(scale, expect):
    p = prof("linux-5.4", net__ipv4__tcp_adv_win_scale=scale)
    assert win_from_space(p, 204800) == expect
    assert full_space(p, 204800) == expect


@pytest.mark.parametrize("ratio,expect", [(128, 102400), (65, 52000), (77, 61600)])
def test_win_from_space_scaling_ratio(ratio, expect):
    p = prof("linux-6.12", model__scaling_ratio=ratio)
    assert win_from_space(p, 204800) == expect
    # tcp_adv_win_scale has no effect in scaling_ratio mode
    assert win_from_space(prof("linux-6.12", net__ipv4__tcp_adv_win_scale=2,
                               model__scaling_ratio=ratio), 204800) == expect


# ---- tcp_select_initial_window ------------------------------------------------------------

def test_initial_window_no_clamp_takes_scale_from_rmem_max_sysctls():
    p = prof("linux-5.4")
    # clamp 0 = 65535 << 14; shift from max(space, tcp_rmem[2]=6 MiB, rmem_max)
    assert select_initial_window(p, 102400, 1460, 0, True) == (65535, 65535 << 7, 7)
    assert select_initial_window(p, 102400, 1460, 0, False) == (65535, 65535, 0)
    off = prof("linux-5.4", net__ipv4__tcp_window_scaling=0)
    assert select_initial_window(off, 102400, 1460, 0, True) == (65535, 65535, 0)


def test_initial_window_rounds_to_mss_and_caps_u16():
    p = prof("linux-5.10")
    rcv_wnd, clamp, ws = select_initial_window(p, 102400, 1448, 102400, True)
    assert (rcv_wnd, clamp, ws) == (65535, 102400, 1)
    # below 64 KiB the multiple-of-MSS rounding shows: 40000 -> 27 * 1448
    assert select_initial_window(p, 40000, 1448, 40000, True)[0] == 27 * 1448
    # route initrwnd caps in segments
    assert select_initial_window(p, 102400, 1448, 102400, True, init_rcv_wnd=10)[0] == 14480


def test_initial_window_shift_is_capped_at_14():
    p = prof("linux-5.10", net__ipv4__tcp_rmem="4096 131072 2147483647")
    assert select_initial_window(p, 102400, 1448, 0, True)[2] == 14


def test_initial_window_old_kernels_cap_in_segments():
    # 3.10: 10 segments (mss <= 1460), no 64 KiB cap; 4.9: 20 segments
    assert select_initial_window(prof("linux-3.10"), 102400, 1448, 102400, True)[0] == 14480
    assert select_initial_window(prof("linux-4.9"), 102400, 1448, 102400, True)[0] == 28960
    # jumbo MSS: max(1460 * 10 // 8948, 2) = 2 segments
    assert select_initial_window(prof("linux-3.10"), 409600, 8948, 409600, True)[0] == 2 * 8948
    # no cap when every byte of MSS is below one scale unit (mss <= 1 << wscale): none here,
    # so an unscaled 3.10 socket keeps its space as initial window
    assert select_initial_window(prof("linux-3.10"), 40000, 1448, 40000, False)[0] == 14480


def test_initial_window_without_u16_cap_2024_change():
    p = with_knob(prof("linux-6.12"), model__init_rcv_wnd_u16_cap=False)
    assert select_initial_window(p, 102400, 1448, 102400, True) == (101360, 102400, 1)
    assert synack_window_field(101360) == 65535


def test_workaround_signed_windows():
    p = with_knob(prof("linux-5.10"), net__ipv4__tcp_workaround_signed_windows=1)
    assert select_initial_window(p, 102400, 1448, 102400, True)[0] == 32767


# ---- the two handshake paths (reference §5.4 table) ----------------------------------------

def test_synack_path_announces_wscale_1_with_so_rcvbuf():
    for name in ("linux-3.10", "linux-4.9", "linux-5.4", "linux-5.10", "linux-6.12"):
        rcv_wnd, clamp, ws = synack(prof(name))
        assert (clamp, ws) == (102400, 1), name
    assert synack(prof("linux-5.4"))[0] == 65535      # SYN-ACK window field 65535
    assert synack(prof("linux-3.10"))[0] == 14480     # 10 * 1448
    assert synack(prof("linux-4.9"))[0] == 28960      # 20 * 1448


def test_synack_path_without_so_rcvbuf_uses_the_big_shift():
    p = prof("linux-5.4")
    rcvbuf = p["net.ipv4.tcp_rmem"][1]
    got = openreq_init_rwin(p, listener_rcvbuf=rcvbuf, rcvbuf_locked=False,
                            listener_window_clamp=0, mss_clamp=1460, tstamp_ok=True,
                            wscale_ok=True)
    assert got == (45 * 1448, 65535 << 7, 7)     # full space 65536 rounded to MSS


def test_listener_window_clamp_wins_when_smaller():
    p = prof("linux-5.4")
    got = openreq_init_rwin(p, listener_rcvbuf=204800, rcvbuf_locked=True,
                            listener_window_clamp=30000, mss_clamp=1460, tstamp_ok=False,
                            wscale_ok=True)
    assert got == (29200, 30000, 0)    # 20 * 1460, shift from min(6 MiB, 30000)


def test_buggy_cookie_path_linux_5_4_gives_wscale_7():
    assert cookie(prof("linux-5.4")) == (65535, 8388480, 7)


def test_buggy_cookie_path_linux_3_10_and_4_9():
    assert cookie(prof("linux-3.10")) == (14600, 8388480, 7)    # 10 * 1460 (table MSS)
    assert cookie(prof("linux-4.9")) == (29200, 8388480, 7)


def test_fixed_cookie_path_agrees_with_synack():
    for name in ("linux-5.10", "linux-6.1"):
        assert cookie(prof(name)) == (65535, 102400, 1), name
    # 6.12 has no 64 KiB cap on the initial rcv_wnd (378979e94e95): table MSS 1460 * 70
    assert cookie(prof("linux-6.12")) == (102200, 102400, 1)
    # the fix is only the clamp: a 5.4 profile with the switch on behaves like 5.10
    assert cookie(prof("linux-5.4", model__cookie_wscale_clamp=True)) == (65535, 102400, 1)


def test_bug_scales_with_tcp_rmem_max():
    # 2025 net-next default tcp_rmem[2] = 32 MiB: an unclamped path would pick 10
    p = prof("linux-5.4", net__ipv4__tcp_rmem="4096 131072 33554432")
    assert cookie(p)[2] == 10


def test_gvisor_mode_has_no_window_scaling_on_cookie_connections():
    p = prof("linux-5.4", model__cookie_wscale_mode="gvisor")
    rcv_wnd, clamp, ws = cookie(p)
    assert ws == 0 and clamp == 65535


def test_cookie_path_without_client_wscale():
    assert cookie(prof("linux-5.4"), ws=False) == (65535, 65535, 0)


# ---- tcp_init_buffer_space ----------------------------------------------------------------

def test_child_clamp_reserves_one_segment():
    p = prof("linux-5.4")
    rcvbuf = sock_set_rcvbuf(p, KAFKA_RCVBUF)
    # the buggy 8388480 and the clean 102400 both end at 102400 - 1448
    assert init_buffer_space(p, rcvbuf=rcvbuf, window_clamp=8388480, advmss=1448,
                             rcv_wnd=65535) == (100952, 65535)
    assert init_buffer_space(p, rcvbuf=rcvbuf, window_clamp=102400, advmss=1448,
                             rcv_wnd=65535) == (100952, 65535)
    assert init_buffer_space(p, rcvbuf=rcvbuf, window_clamp=8388480, advmss=1448,
                             rcv_wnd=14600) == (100952, 14600)


def test_child_clamp_tcp_app_win():
    rcvbuf = 204800
    p2 = prof("linux-5.4", net__ipv4__tcp_app_win=2)     # keep a quarter for the application
    assert init_buffer_space(p2, rcvbuf=rcvbuf, window_clamp=0xFFFFFFF, advmss=1448,
                             rcv_wnd=65535) == (76800, 65535)
    p0 = prof("linux-5.4", net__ipv4__tcp_app_win=0)     # no reserve at all
    assert init_buffer_space(p0, rcvbuf=rcvbuf, window_clamp=0xFFFFFFF, advmss=1448,
                             rcv_wnd=65535) == (102400, 65535)


# ---- RecvWindow: what the broker advertises (reference §5.5) -----------------------------

def test_truesize_model():
    assert skb_truesize(1448) == 2304
    assert skb_truesize(100) == 1280


def test_buggy_broker_advertises_512_then_789():
    p = prof("linux-5.4")
    w = child(p, cookie(p))
    assert (w.rcv_wscale, w.window_clamp, w.rcv_ssthresh) == (7, 100952, 65535)
    first = w.select(1000, 0, 536)
    assert first == 512                     # ALIGN(65535, 128) >> 7
    assert first << 1 == 1024               # the client applies the announced shift 1
    fields, _ = stream(w, 1000, 40)
    assert w.rcv_ssthresh == 100952
    assert fields[-1] == 789                # ALIGN(100952, 128) = 100992 = 789 * 128
    assert w.rcv_wnd == 100992
    assert fields[-1] << 1 == 1578          # what the client believes it may send


def test_fixed_broker_advertises_50476():
    p = prof("linux-5.10")
    w = child(p, cookie(p))
    assert w.select(1000, 0, 536) == 32768  # ALIGN(65535, 2) >> 1
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 50476 and w.rcv_wnd == 100952
    assert fields[-1] << 1 == 100952


def test_synack_path_child_on_buggy_kernel_is_fine():
    p = prof("linux-5.4")
    w = child(p, synack(p))
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 50476


def test_linux_3_10_buggy_cookie_starts_at_115():
    p = prof("linux-3.10")
    w = child(p, cookie(p))
    first = w.select(1000, 0, 536)
    assert first == 115 and first << 1 == 230     # ALIGN(14600, 128) = 14720
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 789


def test_rcv_ssthresh_grows_two_segments_per_segment():
    p = prof("linux-5.4")
    w = child(p, cookie(p))
    w.on_data(1448, 1448)
    assert w.rcv_ssthresh == 65535 + 2 * 1448
    w.on_data(100, 1548)                           # < 128 bytes: no growth
    assert w.rcv_ssthresh == 65535 + 2 * 1448


def test_small_segments_grow_through_slow_path():
    p = prof("linux-5.4")
    w = child(p, cookie(p))
    w.on_data(500, 500)       # truesize 1280: win_from_space 640 > 500 -> __tcp_grow_window
    # incr = 2 * rcv_mss (536 until full-sized data is seen), floored at 2 * len
    assert w.rcv_ssthresh == 65535 + 2 * 536


def test_linux_6_12_fifty_percent():
    p = with_knob(prof("linux-6.12"), model__init_rcv_wnd_u16_cap=True)
    assert synack(p) == (65535, 102400, 1) and cookie(p) == (65535, 102400, 1)
    w = child(p, cookie(p))
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 50476


def test_linux_6_12_without_u16_cap_starts_at_full_window():
    p = with_knob(prof("linux-6.12"), model__init_rcv_wnd_u16_cap=False)
    init = synack(p)
    assert init == (101360, 102400, 1) and synack_window_field(init[0]) == 65535
    w = child(p, init)
    assert w.rcv_ssthresh == 100952
    # the child's rcv_wnd is the uncapped 101360 although the SYN-ACK said 65535: the first
    # offer keeps that right edge (never shrink), then settles on the clamp
    assert w.select(1000, 0, 536) == 101360 >> 1
    fields, _ = stream(w, 1000, 3)
    assert fields == [50476] * 3


def test_linux_6_6_style_low_scaling_ratio_means_no_scaling():
    # (1200 << 8) / SKB_TRUESIZE(4096) = 65/256: full space 52000 < 64 KiB -> wscale 0
    p = prof("linux-6.12", model__scaling_ratio=65)
    assert synack(p) == (50680, 52000, 0)          # 35 * 1448
    assert cookie(p) == (51100, 52000, 0)          # 35 * 1460
    w = child(p, synack(p))
    assert (w.window_clamp, w.rcv_ssthresh) == (50552, 50552)
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 34 * 1448                 # unscaled: whole MSS below ssthresh


# ---- RecvWindow: the rules of __tcp_select_window / tcp_select_window ---------------------

def grown(name="linux-5.10"):
    p = prof(name)
    w = child(p, cookie(p))
    _, nxt = stream(w, 1000, 40)
    return w, nxt


def test_right_edge_never_moves_left():
    w, nxt = grown("linux-5.4")
    edge = nxt + (w.select(nxt, 0, 1448) << 7)
    unread = 0
    for _ in range(60):               # the application stops reading
        nxt += 1448
        unread += 1448
        w.on_data(1448, unread)
        field = w.select(nxt, unread, 1448)
        assert nxt + (field << 7) >= edge
        edge = max(edge, nxt + (field << 7))


def test_zero_window_when_buffer_full_then_reopens_after_read():
    w, nxt = grown()
    unread = 0
    field = None
    for _ in range(200):
        if w.current(nxt) < 1448:
            break
        nxt += 1448
        unread += 1448
        w.on_data(1448, unread)
        field = w.select(nxt, unread, 1448)
    assert w.current(nxt) < 1448
    # the sender filled what we offered; free space is now below 1/16 or one MSS
    assert w.peek(unread, 1448) == 0
    assert w.select(nxt, unread, 1448) == (w.current(nxt) + 1) >> 1   # remainder, rounded up
    assert not w.would_advance(nxt, unread, 1448)
    assert w.window_update_due(nxt, 0, 1448)       # the read frees everything
    assert w.select(nxt, 0, 1448) == 50476


def test_rounding_up_above_half_and_down_below_half():
    # tcp_adv_win_scale 2 makes free space an odd multiple of 64, so the rounding shows
    p = prof("linux-5.4", net__ipv4__tcp_adv_win_scale=2)
    w = child(p, cookie(p))
    assert (w.rcv_wscale, w.window_clamp) == (7, 152152)
    unread = 0
    for _ in range(41):
        unread += 1448
        w.on_data(1448, unread)
    assert w.space(unread) == 82752                  # above 152152 / 2
    assert w.peek(unread, 1448) == 82816             # ALIGN up to 128
    for _ in range(4):
        unread += 1448
        w.on_data(1448, unread)
    assert w.space(unread) == 75840                  # below half
    assert w.peek(unread, 1448) == 75776             # round_down to 128


def test_partly_read_segment_stays_charged():
    p = prof("linux-5.10")
    w = child(p, cookie(p))
    w.on_data(1448, 1448)
    w.on_data(1448, 2896)
    assert w.space(2896) == (204800 - 2 * 2304) // 2
    assert w.space(2000) == (204800 - 2 * 2304) // 2   # head segment half read
    assert w.space(1448) == (204800 - 2304) // 2
    assert w.space(0) == 102400


def test_unscaled_window_keeps_mss_multiples():
    p = prof("linux-5.10")
    w = child(p, synack(p, ws=False))
    assert w.rcv_wscale == 0
    assert w.select(1000, 0, 1448) == 65535          # last window still within one MSS
    fields, _ = stream(w, 1000, 40)
    assert fields[-1] == 65535                       # capped at the 16-bit field


def test_current_handles_sequence_wrap():
    p = prof("linux-5.10")
    w = child(p, cookie(p), rcv_nxt=0xFFFFFF00)
    w.select(0xFFFFFF00, 0, 536)
    assert w.current(0xFFFFFF00) == 65536
    assert w.current(0x00000100) == 65536 - 0x200
    assert w.current((0xFFFFFF00 + 70000) & 0xFFFFFFFF) == 0    # beyond the edge: 0


def test_would_advance_follows_reads():
    w, nxt = grown()
    w.select(nxt, 0, 1448)
    nxt += 2 * 1448
    w.on_data(1448, 1448)
    w.on_data(1448, 2896)
    assert not w.would_advance(nxt, 2896, 1448)   # unread data shrinks the offer
    assert w.would_advance(nxt, 0, 1448)          # read: the offer is back to the clamp


def test_window_update_needs_twice_the_remaining_window():
    w, nxt = grown()
    w.select(nxt, 0, 1448)
    assert not w.window_update_due(nxt, 0, 1448)  # 100952 left: more than half the clamp


def test_set_rcvbuf_on_established_socket_shrinks_offer():
    w, nxt = grown()
    w.set_rcvbuf(sock_set_rcvbuf(w.profile, 16384))   # sk_rcvbuf 32768, full space 16384
    assert w.rcvbuf == 32768 and w.rcvbuf_locked
    nxt += 1448
    w.on_data(1448, 1448)
    # never shrink: the old edge is kept while it lasts
    assert w.select(nxt, 0, 1448) << 1 >= 100952 - 1448
    nxt += 100952
    assert w.select(nxt, 0, 1448) == 16384 >> 1


def test_zero_window_counters():
    w, nxt = grown()
    w.select(nxt, 0, 1448)
    unread = 0
    while w.current(nxt) >= 1448:          # the sender fills everything we offered
        nxt += 1448
        unread += 1448
        w.on_data(1448, unread)
        w.select(nxt, unread, 1448)
    rest = w.current(nxt)
    assert 0 < rest < 1448
    c = w.counters
    before = c.snapshot()
    w.select(nxt, unread, 1448)
    assert c.delta(before) == {"TcpExtTCPWantZeroWindowAdv": 1}   # wanted 0, kept the old edge
    nxt += rest
    unread += rest
    w.on_data(rest, unread)
    before = c.snapshot()
    assert w.select(nxt, unread, 1448) == 0
    assert c.delta(before) == {"TcpExtTCPToZeroWindowAdv": 1}
    before = c.snapshot()
    assert w.select(nxt, unread, 1448) == 0 and c.delta(before) == {}
    assert w.select(nxt, 0, 1448) == 50476
    assert c.delta(before) == {"TcpExtTCPFromZeroWindowAdv": 1}


def test_on_data_reports_growth_for_quickack():
    p = prof("linux-5.4")
    w = child(p, cookie(p))
    assert w.on_data(1448, 1448) is True
    assert w.on_data(100, 1548) is False
    for _ in range(30):
        w.on_data(1448, 1448)
    assert w.rcv_ssthresh == w.window_clamp
    assert w.on_data(1448, 1448) is False          # no room left


def test_active_open_offers():
    p = prof("linux-5.10")
    # default buffer (tcp_rmem[1] = 131072, unlocked): full space 65536, shift from 6 MiB
    assert connect_init_rwin(p, rcvbuf=131072, rcvbuf_locked=False, advmss=1460) == (
        44 * 1460, 65535 << 7, 7)
    assert connect_init_rwin(p, rcvbuf=204800, rcvbuf_locked=True, advmss=1460) == (
        65535, 102400, 1)
    off = prof("linux-5.10", net__ipv4__tcp_window_scaling=0)
    assert connect_init_rwin(off, rcvbuf=204800, rcvbuf_locked=True, advmss=1460)[2] == 0


# ---- invariants under any arrival/read pattern ----------------------------------------------

_ops = st.lists(st.tuples(st.sampled_from(["data", "read", "select"]),
                          st.integers(min_value=1, max_value=1448)), max_size=150)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(["linux-3.10", "linux-5.4", "linux-5.10", "linux-6.12"]),
       scaled=st.booleans(), ops=_ops)
def test_receive_window_invariants(name, scaled, ops):
    p = prof(name)
    w = child(p, cookie(p, ws=scaled), rcv_nxt=0xFFFF0000)
    ws = w.rcv_wscale
    nxt = 0xFFFF0000
    unread = 0
    w.select(nxt, unread, 536)
    edge = (w.rcv_wup + w.rcv_wnd) & 0xFFFFFFFF
    for op, n in ops:
        if op == "data":
            n = min(n, w.current(nxt))          # a well-behaved sender stays in the window
            if n == 0:
                continue
            nxt = (nxt + n) & 0xFFFFFFFF
            unread += n
            w.on_data(n, unread)
        elif op == "read":
            unread -= min(n, unread)
        else:
            field = w.select(nxt, unread, 1448)
            assert 0 <= field <= 65535
            if ws:
                assert w.rcv_wnd % (1 << ws) == 0
            new_edge = (w.rcv_wup + w.rcv_wnd) & 0xFFFFFFFF
            assert (new_edge - edge) & 0xFFFFFFFF < 1 << 31     # the right edge never retreats
            edge = new_edge
        assert w.rcv_ssthresh <= w.window_clamp
        assert w.space(unread) >= 0
