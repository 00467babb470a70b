"""Sender side: RTO and backoff, giving up (tcp_retries2), fast retransmit with SACK and
NewReno, zero-window probes, Nagle. The packets are tests/drill/*.pkt (rto-*, sack-*, newreno-*,
zero-window-probe-ack, small-window-probe, nagle, lost-retransmit), run against the model by
test_drill_scripts.py; here the same scripts run once more to check the MIB counters and state
they cannot show. RTT 10 ms at the handshake -> RTO 0.01 + max(4 * 0.005, 0.2) = 0.21 s."""
import pytest

from drillrun import Drive
from test_conn_delack import established


def test_rto_backoff_doubles_and_ack_resets_it():
    d = Drive().run_file("rto-backoff.pkt").settle(5.0)
    assert d.stack.counters["TcpExtTCPTimeouts"] == 3
    assert d.stack.counters["TcpRetransSegs"] == 3
    # loss: slow start from 1 again (Linux 6.18 under packetdrill shows cwnd 4 here, with
    # ssthresh restored: an undo the model does not make -- reported, not asserted there)
    assert d.conn.cc.cwnd <= 2


def test_give_up_after_tcp_retries2_worth_of_backoff():
    d = Drive().run_file("rto-give-up.pkt").settle(5.0)
    c, st = d.conn, d.stack
    assert c.state == "CLOSED" and c.error == "timeout"
    assert st.counters["TcpExtTCPAbortOnTimeout"] == 1
    assert st.counters["TcpEstabResets"] == 1     # tcp_set_state ESTABLISHED -> CLOSE
    assert st.counters["TcpCurrEstab"] == 0
    assert st.counters["TcpOutRsts"] == 0
    assert c.key not in st.conns


def test_fast_retransmit_on_sack_then_full_ack_ends_recovery():
    d = Drive().run_file("sack-fast-retransmit.pkt").settle(2.0)
    assert d.stack.counters["TcpExtTCPSackRecovery"] == 1
    assert d.stack.counters["TcpExtTCPFastRetrans"] == 1
    assert d.stack.counters["TcpRetransSegs"] == 1
    assert not d.conn.in_recovery


def test_newreno_three_dupacks_and_partial_ack():
    d = Drive().run_file("newreno-partial-ack.pkt").settle(2.0)
    assert d.stack.counters["TcpExtTCPRenoRecovery"] == 1
    assert d.stack.counters["TcpExtTCPFastRetrans"] == 2


def test_zero_window_probes_back_off_then_window_opens():
    d = Drive().run_file("zero-window-probe-ack.pkt").settle(2.0)
    assert d.stack.counters["TcpExtTCPWinProbe"] == 3
    assert d.conn.error is None


def test_window_below_mss_is_filled_by_the_probe_timer():
    """tcp_write_wakeup's window-sized sends are not zero-window probes."""
    d = Drive().run_file("small-window-probe.pkt")
    assert d.stack.counters["TcpExtTCPWinProbe"] == 0


def test_send_buffer_limits_and_errors():
    st, c = established()
    c.set_sndbuf(8192)          # SO_SNDBUF: doubled and locked
    assert c.sndbuf == 16384 and c.sndbuf_locked
    # a new skb is allocated while sk_wmem_queued < sk_sndbuf and fills to size_goal: one
    # skb may overshoot the buffer (tcp_sendmsg_locked checks memory per skb, not per byte)
    assert c.send_space() == c._size_goal()
    assert c.send(b"x" * 20000, 0.0) == 20000
    assert c._wmem_queued() == 20000 + 832 > c.sndbuf
    unsent = 20000 - ((c.snd_max - c.snd_una) & 0xFFFFFFFF)   # cwnd sent the rest
    assert 0 < unsent < 20000
    # only the unsent tail skb's room is left: it fills to size_goal, then the write waits
    assert c.send(b"x" * 100000, 0.0) == c._size_goal() - unsent
    assert c._tail_room() == 0 and c.nospace and c.send_space() == 0
    c.shutdown_write(0.0)
    from tuntcp.core.conn import ConnectionStateError
    with pytest.raises(ConnectionStateError):
        c.send(b"more", 0.0)


def test_lost_retransmission_is_resent_without_waiting_for_the_rto():
    d = Drive().run_file("lost-retransmit.pkt").settle(1.0)
    assert d.stack.counters["TcpExtTCPLostRetransmit"] == 1
    assert d.stack.counters["TcpExtTCPTimeouts"] == 0
    assert not d.conn.in_recovery


def test_partial_ack_of_a_delayed_original_undoes_the_cut():
    """tcp_try_undo_partial with no retransmission out: TcpExtTCPPartialUndo, Recovery ends."""
    d = Drive().run_file("newreno-partial-undo.pkt").settle(2.0)
    c = d.stack.counters
    assert (c["TcpExtTCPPartialUndo"], c["TcpExtTCPFullUndo"], c["TcpRetransSegs"]) == (1, 0, 1)
    assert not d.conn.in_recovery


def test_partial_undo_waits_while_a_retransmission_is_out():
    """tcp_try_undo_partial with a retransmission still out holds Recovery (no undo, no new
    marks, so no second recovery); tcp_try_undo_recovery undoes once at the full ACK."""
    d = Drive().run_file("sack-partial-undo-hold.pkt").settle(2.0)
    c = d.stack.counters
    assert (c["TcpExtTCPSackRecovery"], c["TcpExtTCPFullUndo"], c["TcpExtTCPPartialUndo"]) == (1, 1, 0)
    assert c["TcpRetransSegs"] == 2


@pytest.mark.parametrize("script", ["dsack-undo-after-recovery.pkt", "dsack-undo-in-recovery.pkt"])
def test_dsack_of_every_retransmission_undoes_the_episode(script):
    """tcp_check_dsack counts the D-SACKed retransmission off undo_retrans; at 0,
    tcp_try_undo_dsack undoes once (TcpExtTCPDSACKUndo), not as a full or partial undo."""
    d = Drive().run_file(script).settle(1.0)
    c = d.stack.counters
    assert (c["TcpExtTCPDSACKRecv"], c["TcpExtTCPDSACKRecvSegs"], c["TcpExtTCPDSACKUndo"]) == (1, 1, 1)
    assert (c["TcpExtTCPFullUndo"], c["TcpExtTCPPartialUndo"], c["TcpExtTCPDSACKIgnoredDubious"]) == (0, 0, 0)
    assert d.conn.undo_marker is None


def test_dsack_of_data_never_retransmitted_is_dubious():
    """tcp_dsack_seen: more segments D-SACKed than ever retransmitted (a duplicating link) are
    ignored (TcpExtTCPDSACKIgnoredDubious) and undo nothing."""
    d = Drive().run_file("dsack-undo-after-recovery.pkt").settle(1.0)
    c = d.stack.counters
    conn = d.conn
    assert conn.dsack_dups == conn.total_retrans == 1
    d.run("+.01 < . 1:1(0) ack 8761 win 513 <sack 1461:2921,nop,nop>")
    assert (c["TcpExtTCPDSACKRecv"], c["TcpExtTCPDSACKIgnoredDubious"]) == (2, 1)


def test_spurious_rto_is_undone_by_the_timestamp_echo():
    """tcp_try_undo_loss: the ACK after the RTO echoes the original's TSval (TcpExtTCPLossUndo);
    the retry count is cleared and a SACK connection leaves Loss."""
    d = Drive().run_file("rto-undo-timestamps.pkt")
    c = d.stack.counters
    assert (c["TcpExtTCPTimeouts"], c["TcpExtTCPLossUndo"]) == (1, 1)
    assert d.conn.loss_high is None and d.conn.retransmits == 0
