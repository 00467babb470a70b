"""Linux delayed-ACK rules on an established connection (reference §7), with a fake clock.

The connection is created the way the listener creates it (``Connection.from_handshake``), so
the scripts start in ESTABLISHED; ISNs: ours ``ISS``, the peer's 0 (drill relative numbers).
"""
import ipaddress

import pytest

from drill import Drill, payload
from tuntcp.core.conn import Connection
from tuntcp.core.params import HandshakeParams
from tuntcp.host.stack import Stack
from tuntcp.host.encode import SegmentRecorder
from tuntcp.core.window import openreq_init_rwin, sock_set_rcvbuf
from tuntcp.profiles import get_profile

L = int(ipaddress.IPv4Address("192.0.2.1"))
R = int(ipaddress.IPv4Address("192.0.2.2"))
ISS = 0xFFFFF000      # close to the wrap on purpose


def established(profile="linux-6.1", *, overrides=None, rcvbuf=None, ts=True, sack=True,
                peer_wscale=7, peer_win=65535, rtt=0.01, sndbuf=None):
    """Stack + ESTABLISHED child + a Drill aimed at it (remote 192.0.2.2:40000 -> :8080)."""
    p = get_profile(profile, overrides)
    st = Stack(p, addrs={L}, secret=b"k" * 16, encoder=SegmentRecorder())
    locked = rcvbuf is not None
    buf = sock_set_rcvbuf(p, rcvbuf) if locked else p["net.ipv4.tcp_rmem"][1]
    rcv_wnd, clamp, ws = openreq_init_rwin(p, listener_rcvbuf=buf, rcvbuf_locked=locked,
                                           listener_window_clamp=0, mss_clamp=1460,
                                           tstamp_ok=ts, wscale_ok=peer_wscale is not None)
    wok = peer_wscale is not None
    params = HandshakeParams(
        laddr=L, lport=8080, raddr=R, rport=40000, iss=ISS, irs=0, mss=1460, advmss=1460,
        wscale_ok=wok, snd_wscale=peer_wscale if wok else 0, rcv_wscale=ws if wok else 0,
        sack_ok=sack, tstamp_ok=ts, ts_recent=100 if ts else 0, ts_off=0, rcv_wnd=rcv_wnd,
        window_clamp=clamp, snd_wnd=peer_win << (peer_wscale if wok else 0), rcvbuf=buf,
        rcvbuf_locked=locked, sndbuf=sndbuf or p["net.ipv4.tcp_wmem"][1],
        sndbuf_locked=sndbuf is not None, rtt_sample=rtt)
    conn = Connection.from_handshake(st, params, 0.0)
    d = Drill(st)
    d.flow().local_isn = ISS
    return st, conn, d


def acts(conn):
    return {
        "read": lambda d, n="100000": conn.recv(int(n), d.now),
        "send": lambda d, n: conn.send(payload(0, int(n)), d.now),
        "close": lambda d: conn.close(d.now),
    }


def data_lines(start_t, n, size, gap, first=1, ack=1, ts0=200, expect_ack=None):
    """n inbound segments of `size` bytes, `gap` apart; expect_ack(i) -> None or a delay."""
    out = []
    t = start_t
    seq = first
    for i in range(n):
        out.append(f"{t:.3f} < P. {seq}:{seq + size}({size}) ack {ack} win 513 <TS val {ts0 + i} ecr 0>")
        seq += size
        delay = expect_ack(i) if expect_ack else None
        if delay is not None:
            out.append(f"{t + delay:.3f} > . {ack}:{ack}(0) ack {seq} win * <TS val * ecr {ts0 + i}>")
        t += gap
    return "\n".join(out), seq, t


def test_quickack_mode_at_start_then_40ms_timer():
    """tcp_event_data_recv arms quick = min(rcv_wnd / (2 rcv_mss), 16) at the first data; each
    quick ACK goes out at once; the next segment waits for the 40 ms delayed-ACK timer."""
    st, conn, d = established()
    assert conn.win.rcv_wnd // (2 * 1000) >= 16
    script, seq, t = data_lines(0.1, 17, 1000, 0.1,
                                expect_ack=lambda i: 0.0 if i < 16 else 0.040)
    d.run(script, settle=1.0)
    assert st.counters["TcpExtDelayedACKs"] == 1
    assert conn.quick == 0


def test_quickack_count_follows_small_window():
    """A small receive buffer gives few quick ACKs: tcp_incr_quickack's rcv_wnd / (2 rcv_mss)
    is 1448 / (2 * 536) = 1 here. Linux only bumps a 0 to 2, so one quick ACK, not two."""
    st, conn, d = established(rcvbuf=2048)      # sk_rcvbuf 4608: a 1448-byte window
    assert (conn.win.rcv_wnd, conn.rcv_mss) == (1448, 536)
    script, seq, t = data_lines(0.1, 2, 500, 0.2, expect_ack=lambda i: 0.0 if i < 1 else 0.040)
    d.run(script, settle=1.0)
    assert st.counters["TcpExtDelayedACKs"] == 1


def test_two_full_segments_ack_at_once_after_quick_mode():
    """__tcp_ack_snd_check: more than one rcv_mss since the last window update and the window
    we would offer now is not smaller than the last one (the app keeps reading) -> immediate
    ACK; a single segment waits 40 ms."""
    st, conn, d = established()
    a = acts(conn)
    a["noquick"] = lambda d: setattr(conn, "quick", 0)     # quick-ACK mode used up
    d.run("""
0.100 < . 1:1449(1448) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 1449 win * <TS val * ecr 200>
0.100 %read
0.100 %noquick
0.200 < . 1449:2897(1448) ack 1 win 513 <TS val 201 ecr 0>
0.200 %read
0.200 < . 2897:4345(1448) ack 1 win 513 <TS val 202 ecr 0>
0.200 > . 1:1(0) ack 4345 win * <TS val * ecr 201>
0.300 %read
0.300 < . 4345:5793(1448) ack 1 win 513 <TS val 203 ecr 0>
0.340 > . 1:1(0) ack 5793 win * <TS val * ecr 203>
""", a, settle=1.0)
    assert st.counters["TcpExtDelayedACKs"] == 1


def test_two_segments_unread_do_not_ack_when_window_shrinks():
    """The same two segments left unread: the offered window would shrink, so the
    two-segment rule does not fire and the delack timer sends the ACK."""
    st, conn, d = established()
    a = acts(conn)
    a["noquick"] = lambda d: setattr(conn, "quick", 0)
    d.run("""
0.100 < . 1:1449(1448) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 1449 win * <TS val * ecr 200>
0.100 %read
0.100 %noquick
0.200 < . 1449:2897(1448) ack 1 win 513 <TS val 201 ecr 0>
0.200 < . 2897:4345(1448) ack 1 win 513 <TS val 202 ecr 0>
0.240 > . 1:1(0) ack 4345 win * <TS val * ecr 201>
""", a, settle=1.0)


def test_delack_timer_is_not_pushed_back_by_more_data():
    """tcp_send_delayed_ack keeps the earlier timer: a second small segment 20 ms later does
    not postpone the ACK (it goes at 40 ms after the first)."""
    st, conn, d = established()
    conn.quick = 0
    conn.ato = 0.04
    conn.rcv_mss = 1448
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.120 < P. 101:201(100) ack 1 win 513 <TS val 201 ecr 0>
0.140 > . 1:1(0) ack 201 win * <TS val * ecr 200>
""", settle=1.0)


def test_read_of_pushed_small_segment_acks_at_once():
    """tcp_cleanup_rbuf: the app drains a small PSH segment (ACK_PUSHED, not ping-pong) -> the
    pending ACK goes at read time, not at the timer."""
    st, conn, d = established()
    conn.quick = 0
    conn.ato = 0.04
    conn.rcv_mss = 1448
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.110 %read
0.110 > . 1:1(0) ack 101 win * <TS val * ecr 200>
""", acts(conn), settle=1.0)
    assert st.counters["TcpExtDelayedACKs"] == 0


def test_pingpong_piggybacks_the_ack_on_the_reply():
    """tcp_event_data_sent: replying within ato of the last receive counts toward ping-pong;
    with tcp_pingpong_thresh=1 (6.12) quick ACKs stop and the reply carries the ACK."""
    st, conn, d = established("linux-6.12")
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 101 win * <TS val * ecr 200>
0.110 %send 50
0.110 > P. 1:51(50) ack 101 win * <TS val * ecr 200>
0.200 < P. 101:201(100) ack 51 win 513 <TS val 201 ecr 0>
0.210 %send 50
0.210 > P. 51:101(50) ack 201 win * <TS val * ecr 201>
""", acts(conn), settle=0)
    assert conn.in_pingpong()
    assert st.counters["TcpExtDelayedACKs"] == 0


def test_pingpong_without_reply_acks_on_timer_and_leaves_pingpong():
    """In ping-pong mode an unanswered request is ACKed by the delack timer, which then
    leaves ping-pong mode (tcp_delack_timer_handler)."""
    st, conn, d = established("linux-6.12")
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 101 win * <TS val * ecr 200>
0.110 %send 50
0.110 > P. 1:51(50) ack 101 win * <TS val * ecr 200>
0.200 < P. 101:201(100) ack 51 win 513 <TS val 201 ecr 0>
0.240 > . 51:51(0) ack 201 win * <TS val * ecr 201>
""", acts(conn), settle=1.0)
    assert st.counters["TcpExtDelayedACKs"] == 1
    assert not conn.in_pingpong()


def test_pingpong_threshold_3_needs_three_replies():
    """linux-6.1 has tcp_pingpong_thresh=3: one quick reply does not enter ping-pong."""
    st, conn, d = established("linux-6.1")
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 101 win * <TS val * ecr 200>
0.110 %send 50
0.110 > P. 1:51(50) ack 101 win * <TS val * ecr 200>
0.200 < P. 101:201(100) ack 51 win 513 <TS val 201 ecr 0>
0.200 > . 51:51(0) ack 201 win * <TS val * ecr 201>
""", acts(conn), settle=0)
    assert conn.pingpong == 1 and not conn.in_pingpong()


def test_out_of_order_acks_at_once_with_sack_and_gap_fill_acks_at_once():
    """tcp_data_queue_ofo: immediate dup ACK with a SACK block (TcpExtTCPOFOQueue); filling the
    hole ACKs everything at once (ICSK_ACK_NOW)."""
    st, conn, d = established()
    conn.quick = 0
    conn.ato = 0.04
    d.run("""
0.100 < . 1449:2897(1448) ack 1 win 513 <TS val 200 ecr 0>
0.100 > . 1:1(0) ack 1 win * <nop,nop,TS val * ecr 100,nop,nop,sack 1449:2897>
0.150 < . 2897:4345(1448) ack 1 win 513 <TS val 201 ecr 0>
0.150 > . 1:1(0) ack 1 win * <nop,nop,TS val * ecr 100,nop,nop,sack 1449:4345>
0.200 < . 1:1449(1448) ack 1 win 513 <TS val 202 ecr 0>
0.200 > . 1:1(0) ack 4345 win * <TS val * ecr 202>
""", settle=1.0)
    assert st.counters["TcpExtTCPOFOQueue"] == 2
    assert bytes(conn.recv(10000, 0.3)) == payload(0, 4344)


def test_duplicate_data_is_acked_at_once():
    """A retransmission of data we already have: our ACK was lost (TcpExtDelayedACKLost),
    re-ACK at once with a D-SACK block for the duplicate (RFC 2883) and re-enter quick-ACK
    mode (tcp_send_dupack / tcp_dsack_set / tcp_enter_quickack_mode)."""
    st, conn, d = established()
    conn.quick = 0
    conn.ato = 0.04
    d.run("""
0.100 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
0.140 > . 1:1(0) ack 101 win * <TS val * ecr 200>
0.500 < P. 1:101(100) ack 1 win 513 <TS val 300 ecr 0>
0.500 > . 1:1(0) ack 101 win * <nop,nop,TS val * ecr 300,nop,nop,sack 1:101>
""", settle=1.0)
    assert st.counters["TcpExtDelayedACKLost"] == 1
    assert st.counters["TcpExtTCPDSACKOldSent"] == 1
    assert conn.quick > 0


def test_idle_gap_longer_than_rto_rearms_quickack():
    """tcp_event_data_recv: an inter-arrival gap above the RTO re-arms quick-ACK mode."""
    st, conn, d = established()
    conn.quick = 0
    conn.ato = 0.04
    conn.lrcvtime = 0.0
    d.run("""
2.000 < P. 1:101(100) ack 1 win 513 <TS val 200 ecr 0>
2.000 > . 1:1(0) ack 101 win * <TS val * ecr 200>
""", settle=1.0)


def test_small_window_not_read_costs_a_delayed_ack_per_round():
    """The Kafka pattern (reference §7.2): with a small window and an app that does not read,
    two full segments do not advance the window, so the two-segment rule does not fire and
    the ACK waits for the 40 ms timer."""
    st, conn, d = established(rcvbuf=3000)
    conn.quick = 0
    conn.ato = 0.04
    conn.rcv_mss = 1448
    assert conn.win.rcv_wnd == 2896
    d.run("""
0.100 < . 1:1449(1448) ack 1 win 513 <TS val 200 ecr 0>
0.100 < P. 1449:2897(1448) ack 1 win 513 <TS val 201 ecr 0>
0.140 > . 1:1(0) ack 2897 win * <TS val * ecr 200>
""", settle=0.5)
    assert st.counters["TcpExtDelayedACKs"] == 1
