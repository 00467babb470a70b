"""RACK and PRR on a SACK connection (tuntcp/core/rack.py), driven segment by segment. The
whole episodes, checked against the host kernel too, are tests/drill/rack-reo-timer-prr.pkt
and lost-retransmit.pkt; here the single rules, and the profile without RACK."""
from test_conn_delack import ISS, established
from tuntcp.wire.segment import ACK, Segment, TcpOptions

MSS = 1448


def seq(k: int) -> int:
    """The sequence number of segment k (0-based) of the first write."""
    return (ISS + 1 + k * MSS) & 0xFFFFFFFF


def ack(c, una: int, sacks=(), tsval=300) -> Segment:
    return Segment(c.raddr, c.laddr, c.rport, c.lport, seq=c.rcv_nxt, ack=una, flags=ACK,
                   window=1026, options=TcpOptions(ts=(tsval, 0), sack_blocks=tuple(sacks)))


def flight(profile="linux-6.18", n=10):
    st, c = established(profile, sndbuf=1 << 20)
    c.nodelay = True
    c.send(bytes(n * MSS), 0.0)
    st.take_output()
    return st, c


def test_a_sack_of_part_of_a_segment_marks_nothing():
    """tcp_match_skb_to_sack rounds SACK edges to whole MSS: a block covering only the last
    byte of the flight SACKs no piece, so RACK has nothing delivered to go by."""
    st, c = flight(n=4)
    st.receive_segment(ack(c, seq(0), [((seq(4) - 1) & 0xFFFFFFFF, seq(4))]), 0.1)
    assert c.sacked_out == 0 and c.lost_out == 0 and not c.in_recovery
    assert not st.take_output()


def test_one_sack_arms_the_reordering_timer_then_prr_sends_one():
    """With fewer than tp->reordering segments SACKed, reo_wnd is min_rtt/4: the unSACKed
    segments sent before the SACKed one are lost only when the timer fires (rtt + reo_wnd
    after they left, in whole ms, plus TCP_TIMEOUT_MIN); then recovery starts with one
    retransmission (PRR's first step: in flight 2 of ssthresh 7, one delivered)."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(7), seq(8))]), 0.1)
    assert c.rtx_kind == "reo" and not c.in_recovery and c.lost_out == 0
    assert abs(c.rtx_at - (0.1 + 0.003 + 0.002)) < 1e-9       # min_rtt 10 ms / 4, rounded up
    st.on_timers(c.rtx_at)
    out = st.take_output()
    assert [(s.seq, len(s.payload)) for s in out] == [(seq(0), MSS)]
    assert c.in_recovery and c.lost_out == 7 and c.cc.ssthresh == 7 and c.cc.cwnd == 3
    assert st.counters["TcpExtTCPSackRecovery"] == 1


def test_three_sacked_segments_make_the_holes_lost_at_once():
    """Once sacked_out reaches tp->reordering (3) without reordering seen, reo_wnd is 0: the
    segments sent before the SACKed ones are lost on that ACK (no timer). PRR: 3 delivered,
    5 in flight of ssthresh 7, so both holes go at once (slow start back up to ssthresh)."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(2), seq(5))]), 0.1)
    assert c.in_recovery and c.lost_out == 2 and c.cc.cwnd == 7
    assert [s.seq for s in st.take_output()] == [seq(0), seq(1)]


def test_an_ack_below_snd_una_still_delivers_its_sacks():
    """tcp_ack's old_ack: the SACK of a reordered ACK below snd_una is tagged and the room it
    makes in cwnd goes to the next lost segment (no cwnd change on such an ACK)."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(2), seq(5))]), 0.1)      # 0, 1 lost; 0 resent
    st.take_output()
    st.receive_segment(ack(c, seq(2), [(seq(2), seq(5))], tsval=301), 0.12)
    st.take_output()
    cwnd = c.cc.cwnd
    una = c.snd_una
    st.receive_segment(ack(c, seq(1), [(seq(6), seq(8))], tsval=302), 0.13)
    assert c.snd_una == una and c.cc.cwnd == cwnd
    assert c.sacked_out >= 2
    assert st.take_output()                      # the freed room was used


def test_reordering_seen_widens_the_window_and_sacks_grow_cwnd():
    """A never-retransmitted segment SACKed below the highest SACK is reordering
    (tcp_check_sack_reordering): tp->reordering becomes the distance, reord_seen counts it,
    and with reordering above net.ipv4.tcp_reordering SACKed data grows cwnd outside
    recovery (tcp_may_raise_cwnd)."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(9), seq(10))]), 0.1)
    cwnd = c.cc.cwnd
    st.receive_segment(ack(c, seq(0), [(seq(3), seq(4)), (seq(9), seq(10))], tsval=301), 0.1)
    assert c.reordering == 7 and c.reord_seen == 1
    assert st.counters["TcpExtTCPSACKReorder"] == 1
    assert c.cc.cwnd == cwnd + 1


def test_prr_below_and_above_ssthresh():
    """tcp_cwnd_reduction: in flight above ssthresh, send ssthresh/prior_cwnd of what was
    delivered (rounded up); below it, what was delivered (at least), +1 when snd_una moved
    and nothing was newly lost, never past ssthresh."""
    st, c = flight()
    c.prior_cwnd, c.prr_delivered, c.prr_out = 10, 0, 0
    c.cc.ssthresh = 7
    c.lost_out = 1                                # in flight: 10 - 0 - 1 + 0 = 9 > 7
    c._prr(2, 0, False)
    assert c.cc.cwnd == 9 + (7 * 2 + 9) // 10     # ceil(7 * 2 / 10) = 2
    c.prr_out = 2
    c.lost_out = 6                                # in flight 4, delta 3
    c._prr(1, 0, True)
    assert c.cc.cwnd == 4 + min(3, max(3 - 2, 1) + 1)


def test_without_rack_the_dupthresh_rule_stays():
    """linux-3.10 has no RACK (tcp_recovery 0): one SACK arms no reordering timer and the
    RFC 6675 rule waits for three SACKed segments."""
    st, c = flight("linux-3.10")
    st.receive_segment(ack(c, seq(0), [(seq(7), seq(8))]), 0.1)
    assert c.rtx_kind != "reo" and not c.in_recovery and not c.rq


def test_rto_keeps_the_sack_marks_and_resends_only_the_holes():
    """tcp_enter_loss / tcp_timeout_mark_lost: on an RTO the SACKed segments stay SACKed (the
    head is not SACKed, so the receiver did not renege); the rest is marked lost, cwnd is
    packets in flight + 1 and the head goes again, one MSS (tcp_retransmit_timer). The ACK of
    the head then lets slow start resend the other hole only (TCPSlowStartRetrans), never the
    SACKed data."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(3), seq(10))]), 0.1)    # 0-2 lost at once
    st.take_output()

    st.on_timers(c.rtx_at)
    out = st.take_output()
    assert [(s.seq, len(s.payload)) for s in out] == [(seq(0), MSS)]
    assert c.loss_high is not None and c.sacked_out == 7 and c.lost_out == 3
    assert c.cc.cwnd == 1 and st.counters["TcpExtTCPTimeouts"] == 1
    t = c.rtx_at - 0.5
    st.receive_segment(ack(c, seq(1), [(seq(3), seq(10))], tsval=301), t)
    out = st.take_output()
    assert [s.seq for s in out] == [seq(1), seq(2)]                  # cwnd 2: both holes
    assert st.counters["TcpExtTCPSlowStartRetrans"] == 2


def test_a_retransmission_lost_in_the_loss_state_moves_to_recovery():
    """tcp_fastretrans_alert in TCP_CA_Loss: RACK still runs (tcp_identify_packet_loss); when
    it finds a retransmission lost again (FLAG_LOST_RETRANS: data sent after it was SACKed
    and rack.rtt has passed), the Loss state ends in Recovery (tcp_enter_recovery) and the
    segment goes again (TcpExtTCPLostRetransmit)."""
    st, c = flight()
    st.receive_segment(ack(c, seq(0), [(seq(3), seq(10))]), 0.1)
    st.take_output()
    st.on_timers(c.rtx_at)                                           # RTO: 0 again
    st.take_output()
    now = c.rtx_at - 0.5
    st.receive_segment(ack(c, seq(1), [(seq(3), seq(10))], tsval=301), now)
    assert [s.seq for s in st.take_output()] == [seq(1), seq(2)]
    lr = st.counters["TcpExtTCPLostRetransmit"]
    # 2 arrives, 1 does not: the SACK of 2 shows 1 lost once rack.rtt has passed
    st.receive_segment(ack(c, seq(1), [(seq(2), seq(10))], tsval=302), now + 0.2)
    assert c.loss_high is None and c.in_recovery
    assert st.counters["TcpExtTCPLostRetransmit"] == lr + 1
    assert [s.seq for s in st.take_output()] == [seq(1)]
