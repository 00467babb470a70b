"""Linux delayed-ACK rules on an established connection (reference §7), in virtual time.

The rules packets alone show are tests/drill/delack-*.pkt; here the scripts (packetdrill's
grammar, run by tuntcp's runner through tests/unit/drillrun.py) also check counters and the
delayed-ACK state, or set that state where reaching it by packets would take a page.
``established()`` builds a connection the way the listener does (``Connection.from_handshake``)
for the tests that drive segments by hand; ISNs: ours ``ISS``, the peer's 0.
"""
import ipaddress

import pytest

from drillrun import HANDSHAKE_TS, LISTEN, SYSCTL, Drive
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
    """Stack + ESTABLISHED child (remote 192.0.2.2:40000 -> :8080)."""
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
    return st, conn


def handshake(profile="linux-6.1", rcvbuf=None):
    """A Drive in ESTABLISHED at t=0.01 (timestamps, SACK, RTT 10 ms); the child is fd 4."""
    buf = f"+0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [{rcvbuf}], 4) = 0\n" if rcvbuf else ""
    listen = LISTEN.replace("+0 bind", buf + "+0 bind")
    hs = HANDSHAKE_TS.replace("ecr 100,nop,wscale 7>", "ecr 100,nop,wscale 0>") if rcvbuf else HANDSHAKE_TS
    return Drive(profile).run(SYSCTL.format(ts=1, sack=1) + listen + hs)


def after_quick_mode(d, rcv_mss=None):
    """Quick-ACK mode used up, ato at its 40 ms floor (what 16 earlier segments would leave)."""
    d.conn.dack.quick = 0
    d.conn.dack.ato = 0.04
    if rcv_mss:
        d.conn.win.rcv_mss = rcv_mss
    return d


@pytest.mark.parametrize("script", ["delack-quickack-count.pkt", "delack-quickack-small-window.pkt"])
def test_quick_ack_mode_runs_out_then_one_delayed_ack(script):
    """The packets are the scripts'; the counter and the state are checked here, and the
    delayed ACK at 40 ms exactly (the scripts allow the host kernel's timer slack)."""
    d = Drive().run_file(script, exact=True).settle(1.0)
    assert d.stack.counters["TcpExtDelayedACKs"] == 1
    assert d.conn.dack.quick == 0


FIRST_SEGMENT_READ = """
0.100 < . 1:1449(1448) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+0 > . 1:1(0) ack 1449 <nop,nop,TS val 1 ecr 200>
+0 read(4, ..., 100000) = 1448
"""


def test_two_full_segments_ack_at_once_after_quick_mode():
    """__tcp_ack_snd_check: more than one rcv_mss since the last window update and the window
    we would offer now is not smaller than the last one (the app keeps reading) -> immediate
    ACK; a single segment waits 40 ms."""
    d = handshake().run(FIRST_SEGMENT_READ)
    after_quick_mode(d).run("""
0.200 < . 1449:2897(1448) ack 1 win 513 <nop,nop,TS val 201 ecr 0>
+0 read(4, ..., 100000) = 1448
+0 < . 2897:4345(1448) ack 1 win 513 <nop,nop,TS val 202 ecr 0>
+0 > . 1:1(0) ack 4345 <nop,nop,TS val 1 ecr 201>
0.300 read(4, ..., 100000) = 1448
+0 < . 4345:5793(1448) ack 1 win 513 <nop,nop,TS val 203 ecr 0>
+.04 > . 1:1(0) ack 5793 <nop,nop,TS val 1 ecr 203>
""").settle(1.0)
    assert d.stack.counters["TcpExtDelayedACKs"] == 1


def test_two_segments_unread_do_not_ack_when_window_shrinks():
    """The same two segments left unread: the offered window would shrink, so the
    two-segment rule does not fire and the delack timer sends the ACK."""
    d = handshake().run(FIRST_SEGMENT_READ)
    after_quick_mode(d).run("""
0.200 < . 1449:2897(1448) ack 1 win 513 <nop,nop,TS val 201 ecr 0>
+0 < . 2897:4345(1448) ack 1 win 513 <nop,nop,TS val 202 ecr 0>
+.04 > . 1:1(0) ack 4345 <nop,nop,TS val 1 ecr 201>
""").settle(1.0)


def test_delack_timer_is_not_pushed_back_by_more_data():
    """tcp_send_delayed_ack keeps the earlier timer: a second small segment 20 ms later does
    not postpone the ACK (it goes at 40 ms after the first)."""
    after_quick_mode(handshake(), 1448).run("""
0.100 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+.02 < P. 101:201(100) ack 1 win 513 <nop,nop,TS val 201 ecr 0>
0.140 > . 1:1(0) ack 201 <nop,nop,TS val 1 ecr 200>
""").settle(1.0)


def test_read_of_pushed_small_segment_acks_at_once():
    """tcp_cleanup_rbuf: the app drains a small PSH segment (ACK_PUSHED, not ping-pong) -> the
    pending ACK goes at read time, not at the timer."""
    d = after_quick_mode(handshake(), 1448).run("""
0.100 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+.01 read(4, ..., 100000) = 100
+0 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 200>
""").settle(1.0)
    assert d.stack.counters["TcpExtDelayedACKs"] == 0


REQUEST_REPLY = """
0.100 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+0 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 200>
0.110 write(4, ..., 50) = 50
+0 > P. 1:51(50) ack 101 <nop,nop,TS val 1 ecr 200>
0.200 < P. 101:201(100) ack 51 win 513 <nop,nop,TS val 201 ecr 0>
"""


def test_pingpong_piggybacks_the_ack_on_the_reply():
    """tcp_event_data_sent: replying within ato of the last receive counts toward ping-pong;
    with tcp_pingpong_thresh=1 (6.12) quick ACKs stop and the reply carries the ACK."""
    d = handshake("linux-6.12").run(REQUEST_REPLY + """
0.210 write(4, ..., 50) = 50
+0 > P. 51:101(50) ack 201 <nop,nop,TS val 1 ecr 201>
""")
    assert d.conn.dack.in_pingpong()
    assert d.stack.counters["TcpExtDelayedACKs"] == 0


def test_pingpong_without_reply_acks_on_timer_and_leaves_pingpong():
    """In ping-pong mode an unanswered request is ACKed by the delack timer, which then
    leaves ping-pong mode (tcp_delack_timer_handler)."""
    d = handshake("linux-6.12").run(REQUEST_REPLY + """
0.240 > . 51:51(0) ack 201 <nop,nop,TS val 1 ecr 201>
""").settle(1.0)
    assert d.stack.counters["TcpExtDelayedACKs"] == 1
    assert not d.conn.dack.in_pingpong()


def test_pingpong_threshold_3_needs_three_replies():
    """linux-6.1 has tcp_pingpong_thresh=3: one quick reply does not enter ping-pong."""
    d = handshake("linux-6.1").run(REQUEST_REPLY + """
+0 > . 51:51(0) ack 201 <nop,nop,TS val 1 ecr 201>
""")
    assert d.conn.dack.pingpong == 1 and not d.conn.dack.in_pingpong()


def test_out_of_order_acks_at_once_with_sack_and_gap_fill_acks_at_once():
    """tcp_data_queue_ofo: immediate dup ACK with a SACK block (TcpExtTCPOFOQueue); filling the
    hole ACKs everything at once (ICSK_ACK_NOW)."""
    d = after_quick_mode(handshake()).run("""
0.100 < . 1449:2897(1448) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 100,nop,nop,sack 1449:2897>
0.150 < . 2897:4345(1448) ack 1 win 513 <nop,nop,TS val 201 ecr 0>
+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 100,nop,nop,sack 1449:4345>
0.200 < . 1:1449(1448) ack 1 win 513 <nop,nop,TS val 202 ecr 0>
+0 > . 1:1(0) ack 4345 <nop,nop,TS val 1 ecr 202>
""").settle(1.0)
    assert d.stack.counters["TcpExtTCPOFOQueue"] == 2
    d.run("0.300 read(4, ..., 10000) = 4344")


def test_duplicate_data_is_acked_at_once():
    """A retransmission of data we already have: our ACK was lost (TcpExtDelayedACKLost),
    re-ACK at once with a D-SACK block for the duplicate (RFC 2883) and re-enter quick-ACK
    mode (tcp_send_dupack / tcp_dsack_set / tcp_enter_quickack_mode)."""
    d = after_quick_mode(handshake()).run("""
0.100 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
0.140 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 200>
0.500 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 300 ecr 0>
+0 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 300,nop,nop,sack 1:101>
""").settle(1.0)
    assert d.stack.counters["TcpExtDelayedACKLost"] == 1
    assert d.stack.counters["TcpExtTCPDSACKOldSent"] == 1
    assert d.conn.dack.quick > 0


def test_idle_gap_longer_than_rto_rearms_quickack():
    """tcp_event_data_recv: an inter-arrival gap above the RTO re-arms quick-ACK mode."""
    d = after_quick_mode(handshake())
    d.conn.dack.lrcvtime = 0.0
    d.run("""
2.000 < P. 1:101(100) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+0 > . 1:1(0) ack 101 <nop,nop,TS val 1 ecr 200>
""").settle(1.0)


def test_small_window_not_read_costs_a_delayed_ack_per_round():
    """The Kafka pattern (reference §7.2): with a small window and an app that does not read,
    two full segments do not advance the window, so the two-segment rule does not fire and
    the ACK waits for the 40 ms timer."""
    d = after_quick_mode(handshake(rcvbuf=3000), 1448)
    assert d.conn.win.rcv_wnd == 2896
    d.run("""
0.100 < . 1:1449(1448) ack 1 win 513 <nop,nop,TS val 200 ecr 0>
+0 < P. 1449:2897(1448) ack 1 win 513 <nop,nop,TS val 201 ecr 0>
0.140 > . 1:1(0) ack 2897 <nop,nop,TS val 1 ecr 200>
""").settle(0.5)
    assert d.stack.counters["TcpExtDelayedACKs"] == 1
