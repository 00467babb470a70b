"""The small Linux passive-open rules, one kernel decision per test."""
import pytest

from tuntcp.core.oow import oow_rate_limited
from tuntcp.listen import linux_rules as R


@pytest.mark.parametrize("backlog,somaxconn,want", [
    (128, 4096, 128), (5000, 4096, 4096), (0, 4096, 0), (-1, 4096, 4096), (-1, 128, 128),
    (511, 128, 128),
])
def test_listen_clamps_unsigned_to_somaxconn(backlog, somaxconn, want):
    assert R.listen_backlog(backlog, somaxconn) == want


def test_accept_queue_full_is_strictly_greater():
    assert not R.acceptq_is_full(2, 2)      # backlog 2 holds 3
    assert R.acceptq_is_full(3, 2)
    assert not R.acceptq_is_full(0, 0)      # backlog 0 still takes one
    assert R.acceptq_is_full(1, 0)


@pytest.mark.parametrize("backlog,max_syn,size", [
    (50, 1024, 64), (128, 1024, 256), (128, 128, 256), (0, 1024, 16), (7, 1024, 16),
    (1024, 128, 256),
])
def test_pre_4_4_syn_table_size(backlog, max_syn, size):
    assert R.pow2_synq_size(backlog, max_syn) == size


def test_syn_queue_comparisons():
    assert R.synq_is_full(">=", 4, 4, 0) and not R.synq_is_full(">=", 3, 4, 0)
    assert R.synq_is_full(">", 5, 4, 0) and not R.synq_is_full(">", 4, 4, 0)
    assert R.synq_is_full("pow2", 16, 4, 16) and not R.synq_is_full("pow2", 15, 4, 16)
    assert R.synq_is_full(">=", 0, 0, 0)    # backlog 0 before 3479c7549fb1: always cookies
    with pytest.raises(ValueError):
        R.synq_is_full("<", 0, 0, 0)


def test_accept_queue_syn_drop_old_and_new():
    assert R.acceptq_drops_syn("full", 1, 0, young=0)
    assert not R.acceptq_drops_syn("young", 1, 0, young=1)
    assert R.acceptq_drops_syn("young", 1, 0, young=2)
    assert not R.acceptq_drops_syn("full", 0, 0, young=5)


def test_three_quarter_rule():
    # 128: dropped once fewer than 32 slots are left, i.e. from qlen 97
    assert not R.three_quarter_drop(0, 128, 96, proven=False)
    assert R.three_quarter_drop(0, 128, 97, proven=False)
    assert not R.three_quarter_drop(0, 128, 97, proven=True)
    assert not R.three_quarter_drop(1, 128, 127, proven=False)


def test_flood_lines():
    assert R.synflood_line("old", "request_sock_TCP", 0, 9092, True) == (
        "request_sock_TCP: Possible SYN flooding on port 9092. Sending cookies.  Check SNMP counters.")
    assert R.synflood_line("old", "TCP", 0, 80, False) == (
        "TCP: Possible SYN flooding on port 80. Dropping request.  Check SNMP counters.")
    assert R.synflood_line("new", "request_sock_TCP", 0x0A000001, 80, True) == (
        "request_sock_TCP: Possible SYN flooding on port 10.0.0.1:80. Sending cookies.")


@pytest.mark.parametrize("secs,rounds,back", [
    (0, 0, 0), (1, 1, 1), (2, 2, 3), (3, 2, 3), (4, 3, 7), (5, 3, 7), (7, 3, 7), (8, 4, 15),
    (30, 5, 31), (31, 5, 31), (32, 6, 63),
])
def test_defer_accept_rounding(secs, rounds, back):
    assert R.secs_to_retrans(secs) == rounds
    assert R.retrans_to_secs(rounds) == back


def test_defer_accept_caps_at_rto_max_and_255():
    assert R.secs_to_retrans(10**9) == 255
    # 1+2+...+64 = 127 s in 7 rounds, then 120 s per round
    assert R.retrans_to_secs(8) == 127 + 120


def test_synack_thresh_young_old():
    assert R.synack_thresh(5, 4, 0, 128) == 5        # not half full: untouched
    assert R.synack_thresh(5, 100, 0, 128) == 2      # all old: down to 2
    assert R.synack_thresh(5, 100, 30, 128) == 4     # 100 >= 60, 100 < 120
    assert R.synack_thresh(5, 100, 60, 128) == 5
    assert R.synack_thresh(5, 4, 0, 0) == 5          # max(8, backlog) floor: 8 > 8 is false
    assert R.synack_thresh(5, 5, 0, 0) == 2
    assert R.synack_thresh(5, 8, 0, 0, pow2_size=16) == 2


def test_syn_ack_recalc():
    assert R.syn_ack_recalc(4, 5, 0, False) == (False, True)
    assert R.syn_ack_recalc(5, 5, 0, True) == (True, True)
    # defer 3 rounds, acked: quiet until the last round, lives past thresh until 3 used
    assert R.syn_ack_recalc(0, 5, 3, True) == (False, False)
    assert R.syn_ack_recalc(2, 5, 3, True) == (False, True)
    assert R.syn_ack_recalc(2, 2, 8, True) == (False, False)
    assert R.syn_ack_recalc(8, 2, 8, True) == (True, True)
    assert R.syn_ack_recalc(2, 2, 8, False) == (True, True)


def test_in_window():
    assert R.tcp_in_window(100, 100, 100, 200)          # empty segment at rcv_nxt
    assert R.tcp_in_window(150, 160, 100, 200)
    assert not R.tcp_in_window(200, 210, 100, 200)      # starts at the right edge with data
    assert R.tcp_in_window(200, 200, 100, 200)          # empty at the right edge
    assert not R.tcp_in_window(50, 100, 100, 200)       # ends at rcv_nxt: old
    assert R.tcp_in_window(0xFFFFFFF0, 0x10, 0xFFFFFFFF, 0x100)


def test_paws_and_rate_limit():
    assert R.req_paws_reject(1000, 990, False, 1.0)
    assert not R.req_paws_reject(1000, 999, False, 1.0)  # one tick back is tolerated
    assert not R.req_paws_reject(0, 5, False, 1.0)
    assert not R.req_paws_reject(1000, 990, True, 64.0)  # old ts_recent lets a RST through
    assert oow_rate_limited(1.0, 1.4, 500, False, False)
    assert not oow_rate_limited(1.0, 1.5, 500, False, False)
    assert not oow_rate_limited(1.0, 1.1, 500, True, False)   # data is never limited
    assert oow_rate_limited(1.0, 1.1, 500, True, True)
    assert not oow_rate_limited(None, 1.1, 500, False, True)


def test_broadcast_multicast_and_overflow_gate():
    assert R.is_bcast_or_mcast(0xE0000001) and R.is_bcast_or_mcast(0xFFFFFFFF)
    assert not R.is_bcast_or_mcast(0x0A000001) and not R.is_bcast_or_mcast(0xF0000001)
    assert R.synq_overflow_stamp(None, 5.0) == 5.0
    assert R.synq_overflow_stamp(5.0, 5.9) == 5.0        # at most once per second
    assert R.synq_overflow_stamp(5.0, 6.5) == 6.5
    assert R.synq_no_recent_overflow(None, 1.0)
    assert not R.synq_no_recent_overflow(10.0, 130.0)
    assert R.synq_no_recent_overflow(10.0, 130.5)
    assert not R.synq_no_recent_overflow(10.0, 9.0)
    assert R.synq_no_recent_overflow(10.0, 8.9)
