"""FIN and RST in every state, TIME-WAIT, challenge ACKs (RFC 5961), PAWS (RFC 7323 5),
close() with unread data, half-close. Peer ISN 0, ours ISS (see test_conn_delack). The packet-only
rules are tests/drill/fin-*.pkt, challenge-ack.pkt and paws.pkt."""
import pytest

from test_conn_delack import ISS, L, R, established, handshake
from tuntcp.wire.segment import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions

M = 0xFFFFFFFF


def seg(flags, seq, ack=None, data=b"", ts=500, win=513):
    """A segment from the peer: seq relative to its ISN 0, ack relative to our ISS."""
    return Segment(R, L, 40000, 8080, seq=seq & M, ack=0 if ack is None else (ISS + ack) & M,
                   flags=flags, window=win, options=TcpOptions(ts=(ts, 0) if ts else None),
                   payload=data)


def to_state(name):
    st, c = established()
    t = 0.1
    if name in ("FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT"):
        c.shutdown_write(t)
    if name in ("FIN-WAIT-2", "TIME-WAIT"):
        st.receive_segment(seg(ACK, 1, 2), t)
    if name == "CLOSING":
        st.receive_segment(seg(FIN | ACK, 1, 1), t)
    if name == "TIME-WAIT":
        st.receive_segment(seg(FIN | ACK, 1, 2), t)
    if name in ("CLOSE-WAIT", "LAST-ACK"):
        st.receive_segment(seg(FIN | ACK, 1, 1), t)
    if name == "LAST-ACK":
        c.shutdown_write(t)
    assert c.state == name
    st.take_output()
    return st, c


STATES = ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT", "CLOSE-WAIT",
          "LAST-ACK"]


@pytest.mark.parametrize("state", STATES)
def test_rst_with_exact_sequence_resets(state):
    """RFC 5961 3.2: RST with SEG.SEQ == RCV.NXT aborts (ECONNRESET); in TIME-WAIT it kills
    the socket (RFC 1337 not applied, Linux default)."""
    st, c = to_state(state)
    st.receive_segment(seg(RST, c.rcv_nxt, ts=None), 0.2)
    assert c.state == "CLOSED"
    assert c.error == (None if state == "TIME-WAIT" else "reset")
    assert st.take_output() == []
    assert c.key not in st.conns
    assert st.counters["TcpEstabResets"] == (1 if state in ("ESTABLISHED", "CLOSE-WAIT") else 0)


@pytest.mark.parametrize("state", [s for s in STATES if s != "TIME-WAIT"])
def test_in_window_rst_gets_a_challenge_ack(state):
    st, c = to_state(state)
    st.receive_segment(seg(RST, c.rcv_nxt + 1000, ts=None), 0.2)
    assert c.state == state
    out = st.take_output()
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == c.rcv_nxt
    assert st.counters["TcpExtTCPChallengeACK"] == 1


def test_out_of_window_rst_is_ignored():
    st, c = to_state("ESTABLISHED")
    st.receive_segment(seg(RST, c.rcv_nxt + 10_000_000, ts=None), 0.2)
    assert c.state == "ESTABLISHED" and st.take_output() == []


def test_syn_on_established_gets_rate_limited_challenge_acks():
    """RFC 5961 4: a SYN in a synchronized state -> challenge ACK (TcpExtTCPSYNChallenge);
    a second one within tcp_invalid_ratelimit (500 ms) is skipped."""
    st, c = to_state("ESTABLISHED")
    st.receive_segment(seg(SYN, 12345, ts=None), 0.2)
    st.receive_segment(seg(SYN, 12346, ts=None), 0.3)
    out = st.take_output()
    assert [s.flags for s in out] == [ACK] and out[0].ack == 1
    assert st.counters["TcpExtTCPSYNChallenge"] == 2
    assert st.counters["TcpExtTCPChallengeACK"] == 1
    assert st.counters["TcpExtTCPACKSkippedChallenge"] == 1
    st.receive_segment(seg(SYN, 12347, ts=None), 0.8)
    assert len(st.take_output()) == 1
    assert c.state == "ESTABLISHED"


def test_challenge_ack_limit_per_second_is_per_stack():
    st, c = to_state("ESTABLISHED")
    st.profile = st.profile.with_overrides({"net.ipv4.tcp_challenge_ack_limit": 1})
    st.receive_segment(seg(RST, 5000, ts=None), 0.1)
    st.receive_segment(seg(RST, 5000, ts=None), 0.7)     # per-socket limit passed, global not
    assert len(st.take_output()) == 1
    st.receive_segment(seg(RST, 5000, ts=None), 1.3)     # next second
    assert len(st.take_output()) == 1


def test_ack_for_unsent_data_is_challenged_and_dropped():
    """RFC 5961 5.2 / RFC 9293: SEG.ACK > SND.NXT -> drop and ACK; the data is not taken."""
    st, c = to_state("ESTABLISHED")
    st.receive_segment(seg(ACK | PSH, 1, 5000, b"data"), 0.2)
    assert c.readable() == 0
    out = st.take_output()
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == 1


def test_paws_drops_old_timestamp_and_dupacks():
    st, c = to_state("ESTABLISHED")
    st.receive_segment(seg(ACK | PSH, 1, 1, b"new", ts=1000), 0.2)
    st.take_output()
    st.receive_segment(seg(ACK | PSH, 4, 1, b"old", ts=900), 0.3)
    assert st.counters["TcpExtPAWSEstab"] == 1
    assert c.recv(100, 0.4) == b"new"
    out = st.take_output()
    assert out and out[0].flags == ACK and out[0].ack == 4


def test_active_close_fin_wait_and_time_wait_for_2msl():
    d = handshake().run("""
0.100 close(4) = 0
+0 > F. 1:1(0) ack 1 <nop,nop,TS val 1 ecr 100>
0.110 < . 1:1(0) ack 2 win 513 <nop,nop,TS val 300 ecr 0>
0.500 < F. 1:1(0) ack 2 win 513 <nop,nop,TS val 301 ecr 0>
+0 > . 2:2(0) ack 2 <nop,nop,TS val 1 ecr 301>
5.000 < F. 1:1(0) ack 2 win 513 <nop,nop,TS val 302 ecr 0>
+0 > . 2:2(0) ack 2 <nop,nop,TS val 1 ecr 301>
""")
    st, c = d.stack, d.conn
    assert c.state == "TIME-WAIT"
    # the retransmitted FIN restarted the 60 s timer (RFC 9293 3.10.7.4)
    assert c.tw_at == pytest.approx(65.0)
    st.on_timers(64.9)
    assert c.state == "TIME-WAIT"
    st.on_timers(65.0)
    assert c.state == "CLOSED" and c.error is None
    assert st.counters["TcpExtTW"] == 1 and st.conns == {}


def test_time_wait_keeps_one_deadline_the_2msl_timer():
    """``tcp_time_wait`` leaves only the TIME-WAIT timer: the timers of our FIN (retransmission,
    loss probe), cleared by the ACK that ends CLOSING, must not leave a wake-up behind that
    fires in TIME-WAIT with nothing due (it did, at 0.31); a retransmitted FIN moves the one
    deadline to the restarted 2MSL."""
    st, c = to_state("CLOSING")              # both FINs crossed at 0.1; our FIN's RTO is armed
    st.receive_segment(seg(ACK, 2, 2, ts=501), 0.3)
    assert c.state == "TIME-WAIT" and st.take_output() == []
    assert c.deadline == st.next_deadline() == pytest.approx(60.3)
    st.receive_segment(seg(FIN | ACK, 1, 2, ts=502), 5.0)
    assert [s.flags for s in st.take_output()] == [ACK]
    assert c.deadline == st.next_deadline() == pytest.approx(65.0)


def test_passive_close_close_wait_last_ack():
    """Peer FIN -> CLOSE-WAIT; LAST-ACK -> CLOSED on the ACK of our FIN. No data was received,
    so ato is still 0 and the delayed ACK fires at once (tcp_send_delayed_ack with ato 0)."""
    d = handshake().run("""
0.100 < F. 1:1(0) ack 1 win 513 <nop,nop,TS val 300 ecr 0>
+0 > . 1:1(0) ack 2 <nop,nop,TS val 1 ecr 300>
0.110 close(4) = 0
+0 > F. 1:1(0) ack 2 <nop,nop,TS val 1 ecr 300>
0.120 < . 2:2(0) ack 2 win 513 <nop,nop,TS val 301 ecr 0>
""").settle(1.0)
    st, c = d.stack, d.conn
    assert c.state == "CLOSED" and c.error is None and c.at_eof()
    assert st.counters["TcpCurrEstab"] == 0 and st.counters["TcpEstabResets"] == 0


def test_fin_ack_is_delayed_when_the_app_does_not_close():
    """tcp_fin enters ping-pong mode, so even in quick-ACK mode the FIN's ACK waits for the
    delayed-ACK timer (ato 40 ms once data has been received)."""
    d = handshake().run("""
0.100 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 300 ecr 0>
+0 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 300>
0.200 < F. 101:101(0) ack 1 win 513 <nop,nop,TS val 301 ecr 0>
0.240 > . 1:1(0) ack 102 <nop,nop,TS val 1 ecr 301>
""").settle(1.0)
    c = d.conn
    assert c.dack.quick > 0 and not c.dack.in_pingpong()    # the delack timer then left ping-pong
    assert c.state == "CLOSE-WAIT" and not c.at_eof()   # 100 bytes still unread
    assert len(c.recv(1000, 0.3)) == 100 and c.at_eof()


def test_simultaneous_close_goes_through_closing():
    st, c = to_state("CLOSING")
    st.receive_segment(seg(ACK, 2, 2), 0.2)
    assert c.state == "TIME-WAIT"


def test_half_close_keeps_receiving():
    st, c = to_state("FIN-WAIT-2")
    st.receive_segment(seg(ACK | PSH, 1, 2, b"still talking"), 0.2)
    assert c.recv(100, 0.3) == b"still talking" and c.state == "FIN-WAIT-2"


def test_close_with_unread_data_sends_rst():
    """tcp_close: unread data -> RST instead of FIN (RFC 9293 3.10.4), TcpExtTCPAbortOnClose."""
    st, c = to_state("ESTABLISHED")
    st.receive_segment(seg(ACK | PSH, 1, 1, b"unread"), 0.2)
    st.take_output()
    c.close(0.3)
    out = st.take_output()
    assert [s.flags for s in out] == [RST | ACK] and out[0].seq == (ISS + 1) & M
    assert c.state == "CLOSED" and st.counters["TcpExtTCPAbortOnClose"] == 1
    assert st.counters["TcpOutRsts"] == 1


def test_data_after_close_is_answered_with_rst():
    """An orphan (closed by the app) that receives new data resets (RFC 1122 4.2.2.13,
    TcpExtTCPAbortOnData) with a RST made from that segment (tcp_v4_send_reset)."""
    st, c = to_state("ESTABLISHED")
    c.close(0.2)
    st.receive_segment(seg(ACK, 1, 2), 0.3)
    assert c.state == "FIN-WAIT-2"
    st.take_output()
    st.receive_segment(seg(ACK | PSH, 1, 2, b"late"), 0.4)
    # tcp_v4_send_reset: made from the segment, seq = its ACK number, no ACK flag
    out = st.take_output()
    assert [s.flags for s in out] == [RST] and out[0].seq == (ISS + 2) & M
    assert c.state == "CLOSED" and st.counters["TcpExtTCPAbortOnData"] == 1


def test_orphaned_fin_wait_2_times_out_after_tcp_fin_timeout():
    st, c = to_state("ESTABLISHED")
    c.close(0.2)
    st.receive_segment(seg(ACK, 1, 2), 0.3)
    assert c.tw_at == pytest.approx(60.3)
    st.on_timers(60.2)
    assert c.state == "FIN-WAIT-2"
    st.on_timers(60.3)
    assert c.state == "CLOSED"


def test_abort_sends_rst():
    st, c = to_state("ESTABLISHED")
    c.abort(0.2)
    assert [s.flags for s in st.take_output()] == [RST | ACK]
    assert c.state == "CLOSED"


def test_syn_to_time_wait_with_higher_seq_goes_on_to_the_listener():
    """tcp_timewait_state_process TCP_TW_SYN: a new SYN above rcv_nxt ends TIME-WAIT and is
    handed on (here to no listener, so the stack answers with a RST)."""
    st, c = to_state("TIME-WAIT")
    st.receive_segment(seg(SYN, 100000, ts=None), 1.0)
    assert c.state == "CLOSED"
    out = st.take_output()
    assert [s.flags for s in out] == [RST | ACK] and out[0].ack == 100001
