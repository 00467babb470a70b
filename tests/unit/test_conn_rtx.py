"""Sender side: RTO and backoff, giving up (tcp_retries2), fast retransmit with SACK and
NewReno, zero-window probes, Nagle. RTT seed 10 ms -> RTO 0.01 + max(4 * 0.005, 0.2) = 0.21 s."""
import pytest

from drill import payload
from test_conn_delack import acts, established


def test_rto_backoff_doubles_and_ack_resets_it():
    """Without SACK there is no tail loss probe: the RTO alone, doubling."""
    st, c, d = established(sack=False)
    d.run("""
0.000 %send 1000
0.000 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
0.210 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
0.630 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
1.470 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
1.500 < . 1:1(0) ack 1001 win 513 <TS val 300 ecr 0>
""", acts(c), settle=5.0)
    assert st.counters["TcpExtTCPTimeouts"] == 3
    assert st.counters["TcpRetransSegs"] == 3
    assert c.rto.backoffs == 0 and c.snd_una == c.snd_max
    assert c.cc.cwnd <= 2       # loss: slow start from 1 again


def test_give_up_after_tcp_retries2_worth_of_backoff():
    """tcp_retries2=3: tcp_model_timeout = (2^4 - 1) * 200 ms = 3 s since the first send; the
    timer that finds it exceeded aborts without retransmitting (ETIMEDOUT, no RST).
    No SACK, so no tail loss probe takes the first timeout's place."""
    st, c, d = established(overrides=["net.ipv4.tcp_retries2=3"], sack=False)
    d.run("""
0.000 %send 1000
0.000 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
0.210 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
0.630 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
1.470 > P. 1:1001(1000) ack 1 win * <TS val * ecr 100>
""", acts(c), settle=5.0)
    assert c.state == "CLOSED" and c.error == "timeout"
    assert st.counters["TcpExtTCPAbortOnTimeout"] == 1
    assert st.counters["TcpEstabResets"] == 1     # tcp_set_state ESTABLISHED -> CLOSE
    assert st.counters["TcpCurrEstab"] == 0
    assert st.conns == {}


def test_fast_retransmit_on_sack_then_full_ack_ends_recovery():
    st, c, d = established()
    c.nodelay = True
    d.run("""
0.000 %send 7240
0.000 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 1449:2897(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 2897:4345(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 4345:5793(1448) ack 1 win * <TS val * ecr 100>
0.000 > P. 5793:7241(1448) ack 1 win * <TS val * ecr 100>
0.010 < . 1:1(0) ack 1449 win 513 <TS val 300 ecr 0>
0.011 < . 1:1(0) ack 1449 win 513 <nop,nop,TS val 301 ecr 0,nop,nop,sack 2897:4345>
0.012 < . 1:1(0) ack 1449 win 513 <nop,nop,TS val 302 ecr 0,nop,nop,sack 2897:5793>
0.013 < . 1:1(0) ack 1449 win 513 <nop,nop,TS val 303 ecr 0,nop,nop,sack 2897:7241>
0.013 > . 1449:2897(1448) ack 1 win * <TS val * ecr 303>
0.025 < . 1:1(0) ack 7241 win 513 <TS val 304 ecr 0>
""", acts(c), settle=2.0)
    assert st.counters["TcpExtTCPSackRecovery"] == 1
    assert st.counters["TcpExtTCPFastRetrans"] == 1
    assert st.counters["TcpRetransSegs"] == 1
    assert not c.in_recovery and c.snd_una == c.snd_max


def test_newreno_three_dupacks_and_partial_ack():
    """No SACK: the third duplicate ACK retransmits the head (RFC 5681 3.2); a partial ACK
    retransmits the next hole at once (RFC 6582 3.2)."""
    st, c, d = established(sack=False)
    c.nodelay = True
    d.run("""
0.000 %send 5792
0.000 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 1449:2897(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 2897:4345(1448) ack 1 win * <TS val * ecr 100>
0.000 > P. 4345:5793(1448) ack 1 win * <TS val * ecr 100>
0.010 < . 1:1(0) ack 1 win 65535 <TS val 300 ecr 0>
0.011 < . 1:1(0) ack 1 win 65535 <TS val 301 ecr 0>
0.012 < . 1:1(0) ack 1 win 65535 <TS val 302 ecr 0>
0.012 > . 1:1449(1448) ack 1 win * <TS val * ecr 302>
0.020 < . 1:1(0) ack 1449 win 513 <TS val 303 ecr 0>
0.020 > . 1449:2897(1448) ack 1 win * <TS val * ecr 303>
0.030 < . 1:1(0) ack 5793 win 513 <TS val 304 ecr 0>
""", acts(c), settle=2.0)
    assert st.counters["TcpExtTCPRenoRecovery"] == 1
    assert st.counters["TcpExtTCPFastRetrans"] == 2


def test_zero_window_probes_back_off_then_window_opens():
    """tcp_probe_timer: nothing fits a zero window, so probes (seq snd_una - 1, no data,
    TcpExtTCPWinProbe) go out at RTO, 2 RTO, ...; an ACK that keeps the window shut restarts
    the timer from its arrival (tcp_ack_probe: 0.70 + 4 RTO); a window update restarts transmission."""
    st, c, d = established()
    d.run("""
0.000 < . 1:1(0) ack 1 win 0 <TS val 300 ecr 0>
0.000 %send 1000
0.210 > . 0:0(0) ack 1 win * <TS val * ecr 300>
0.630 > . 0:0(0) ack 1 win * <TS val * ecr 300>
0.700 < . 1:1(0) ack 1 win 0 <TS val 301 ecr 0>
1.540 > . 0:0(0) ack 1 win * <TS val * ecr 301>
1.570 < . 1:1(0) ack 1 win 513 <TS val 302 ecr 0>
1.570 > P. 1:1001(1000) ack 1 win * <TS val * ecr 302>
1.580 < . 1:1(0) ack 1001 win 513 <TS val 303 ecr 0>
""", acts(c), settle=2.0)
    assert st.counters["TcpExtTCPWinProbe"] == 3
    assert c.snd_una == c.snd_max and c.error is None


def test_window_below_mss_is_filled_by_the_probe_timer():
    """tcp_write_wakeup: a segment that does not fit a small window waits (tcp_snd_wnd_test);
    the probe timer then sends a window-sized piece (the 'window < MSS' stall of §7.2)."""
    st, c, d = established(peer_wscale=0)
    d.run("""
0.000 < . 1:1(0) ack 1 win 1024 <TS val 300 ecr 0>
0.000 %send 3000
0.210 > . 1:1025(1024) ack 1 win * <TS val * ecr 300>
0.220 < . 1:1(0) ack 1025 win 1024 <TS val 301 ecr 0>
0.430 > . 1025:2049(1024) ack 1 win * <TS val * ecr 301>
""", acts(c), strict=False)
    assert st.counters["TcpExtTCPWinProbe"] == 0


def test_nagle_holds_a_second_small_segment_until_the_ack():
    """tcp_nagle_test (Minshall): a small segment may not leave while another small one is
    unacknowledged; TCP_NODELAY lifts that."""
    st, c, d = established()
    d.run("""
0.000 %send 100
0.000 > P. 1:101(100) ack 1 win * <TS val * ecr 100>
0.001 %send 100
0.010 < . 1:1(0) ack 101 win 513 <TS val 300 ecr 0>
0.010 > P. 101:201(100) ack 1 win * <TS val * ecr 300>
0.020 < . 1:1(0) ack 201 win 513 <TS val 301 ecr 0>
""", {"send": lambda dr, n: c.send(payload(0, int(n)), dr.now)}, settle=1.0)
    c.nodelay = True
    d.run("""
1.100 %send 100
1.100 > P. 201:301(100) ack 1 win * <TS val * ecr 301>
1.101 %send 100
1.101 > P. 301:401(100) ack 1 win * <TS val * ecr 301>
""", {"send": lambda dr, n: c.send(payload(0, int(n)), dr.now)})


def test_send_buffer_limits_and_errors():
    st, c, d = established()
    c.set_sndbuf(8192)          # SO_SNDBUF: doubled and locked; payload room is half of it
    assert c.sndbuf == 16384 and c.sndbuf_locked and c.send_space() == 8192
    assert c.send(b"x" * 20000, 0.0) == 8192
    assert c.send_space() == 0
    c.shutdown_write(0.0)
    from tuntcp.core.conn import ConnectionStateError
    with pytest.raises(ConnectionStateError):
        c.send(b"more", 0.0)


def test_rto_retransmits_the_head_even_if_the_window_closed():
    """The peer shrank its window to 0 while data was in flight: the RTO still resends the
    segment at snd_una (tcp_retransmit_timer / tcp_retransmit_skb), nothing beyond it."""
    st, c, d = established()
    c.nodelay = True
    d.run("""
0.000 %send 2000
0.000 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.000 > P. 1449:2001(552) ack 1 win * <TS val * ecr 100>
0.005 < . 1:1(0) ack 1 win 0 <TS val 300 ecr 0>
0.210 > . 1:1449(1448) ack 1 win * <TS val * ecr 300>
0.300 < . 1:1(0) ack 1449 win 513 <TS val 301 ecr 0>
0.300 > P. 1449:2001(552) ack 1 win * <TS val * ecr 301>
""", acts(c), strict=False)


def test_pure_ack_after_go_back_n_carries_the_highest_sequence_sent():
    """After an RTO rewinds transmission to snd_una, a bare ACK must still carry the highest
    sequence number sent (Linux's snd_nxt never rewinds): a peer that already has that data
    would otherwise find the ACK out of window and drop it (both sides stalled before).
    No SACK: no tail loss probe before the RTO."""
    st, c, d = established(sack=False)
    c.nodelay = True
    d.run("""
0.000 %send 3000
0.000 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 1449:2897(1448) ack 1 win * <TS val * ecr 100>
0.000 > P. 2897:3001(104) ack 1 win * <TS val * ecr 100>
0.210 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.300 < P. 1:101(100) ack 1 win 513 <TS val 300 ecr 0>
0.300 > . 3001:3001(0) ack 101 win * <TS val * ecr 300>
""", acts(c), strict=False)


def test_lost_retransmission_is_resent_without_waiting_for_the_rto():
    """The fast retransmission of 1449:2897 is lost too: once data sent after it (the new
    segment 8689:10137, let out by PRR when 7241:8689 is SACKed) is SACKed, it is older
    than RACK's rtt + reo_wnd (0 in recovery) and goes again (``tcp_rack_detect_loss``,
    TcpExtTCPLostRetransmit) instead of at the RTO (0.21 s later)."""
    st, c, d = established()
    c.nodelay = True
    d.run("""
0.000 %send 7240
0.000 > . 1:1449(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 1449:2897(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 2897:4345(1448) ack 1 win * <TS val * ecr 100>
0.000 > . 4345:5793(1448) ack 1 win * <TS val * ecr 100>
0.000 > P. 5793:7241(1448) ack 1 win * <TS val * ecr 100>
0.010 < . 1:1(0) ack 1449 win 1026 <TS val 300 ecr 0>
0.010 %send 1448
0.010 > P. 7241:8689(1448) ack 1 win * <TS val * ecr 300>
0.011 < . 1:1(0) ack 1449 win 1026 <nop,nop,TS val 301 ecr 0,nop,nop,sack 2897:4345>
0.012 < . 1:1(0) ack 1449 win 1026 <nop,nop,TS val 302 ecr 0,nop,nop,sack 2897:5793>
0.013 < . 1:1(0) ack 1449 win 1026 <nop,nop,TS val 303 ecr 0,nop,nop,sack 2897:7241>
0.013 > . 1449:2897(1448) ack 1 win * <TS val * ecr 303>
0.014 %send 1448
0.015 < . 1:1(0) ack 1449 win 1026 <nop,nop,TS val 304 ecr 0,nop,nop,sack 2897:8689>
0.015 > P. 8689:10137(1448) ack 1 win * <TS val * ecr 304>
0.030 < . 1:1(0) ack 1449 win 1026 <nop,nop,TS val 305 ecr 0,nop,nop,sack 2897:10137>
0.030 > . 1449:2897(1448) ack 1 win * <TS val * ecr 305>
0.040 < . 1:1(0) ack 10137 win 1026 <TS val 306 ecr 0>
""", acts(c), settle=1.0)
    assert st.counters["TcpExtTCPLostRetransmit"] == 1
    assert st.counters["TcpExtTCPTimeouts"] == 0
    assert c.snd_una == c.snd_max and not c.in_recovery
