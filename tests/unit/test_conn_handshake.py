"""Active open, option negotiation both ways, SYN retransmission, simultaneous open and the
passive child created from HandshakeParams (RFC 9293 3.5, RFC 7323, tcp_connect_init). The
active-open packets are tests/drill/active-open*.pkt; here they run again for counters."""
import pytest

from drillrun import Drive
from test_conn_delack import ISS, L, R, established
from tuntcp.host.stack import Stack
from tuntcp.host.encode import SegmentRecorder
from tuntcp.profiles import get_profile
from tuntcp.wire.segment import ACK, SYN

LPORT, RPORT = 40000, 80


def first_syn(overrides=None, rcvbuf=None):
    st = Stack(get_profile("linux-6.1", overrides), addrs={L}, secret=b"s" * 16, encoder=SegmentRecorder())
    st.connect(L, R, RPORT, 0.0, lport=LPORT, rcvbuf=rcvbuf)
    return st.take_output()[0]


def test_active_open_counts_and_rtt():
    d = Drive().run_file("active-open.pkt")
    c = d.conn
    assert d.stack.counters["TcpActiveOpens"] == 1 and d.stack.counters["TcpCurrEstab"] == 1
    assert c.rto.srtt == pytest.approx(0.010 * 7 / 8 + 0.050 / 8)     # the SYN, then the data
    assert c.snd_wnd == 300 << 8                # after the SYN-ACK, windows are scaled


def test_rst_to_syn_is_connection_refused():
    d = Drive().run_file("active-open-refused.pkt")
    assert d.conn.error == "refused" and d.conn.state == "CLOSED"
    assert d.stack.counters["TcpAttemptFails"] == 1


@pytest.mark.parametrize("knob,absent", [("net.ipv4.tcp_timestamps=0", "ts"),
                                         ("net.ipv4.tcp_sack=0", "sack_ok"),
                                         ("net.ipv4.tcp_window_scaling=0", "wscale")])
def test_syn_options_follow_the_profile(knob, absent):
    o = first_syn(overrides=[knob]).options
    assert o.mss == 1460
    got = {"ts": o.ts is not None, "sack_ok": o.sack_ok, "wscale": o.wscale is not None}
    assert got.pop(absent) is False
    assert all(got.values())


def test_so_rcvbuf_before_connect_clamps_the_shift():
    """tcp_connect_init: a locked SO_RCVBUF clamps window_clamp to the full space, so the
    shift follows the buffer (SO_RCVBUF 65536 -> sk_rcvbuf 131072 -> 64 KB -> wscale 1)."""
    assert first_syn(rcvbuf=65536).options.wscale == 1


@pytest.mark.parametrize("profile,times,fail_at", [
    ("linux-6.1", [0, 1, 3, 7, 15, 31, 63], 127),
    ("linux-6.12", [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67], 131),
])
def test_syn_retransmission_schedule_and_timeout(profile, times, fail_at):
    """tcp_syn_retries 6 (+ tcp_syn_linear_timeouts 4 on 6.5+), reference §6.3."""
    st = Stack(get_profile(profile), addrs={L}, encoder=SegmentRecorder())
    c = st.connect(L, R, RPORT, 0.0)
    sent = [0.0] if st.take_output() else []
    t = 0.0
    while c.state == "SYN-SENT":
        t = st.next_deadline()
        st.on_timers(t)
        for seg in st.take_output():
            assert seg.flags == SYN
            sent.append(t)
    assert sent == pytest.approx(times)
    assert t == pytest.approx(fail_at)
    assert c.error == "timeout" and c.state == "CLOSED"
    assert st.counters["TcpAttemptFails"] == 1
    assert st.counters["TcpExtTCPSynRetrans"] == len(times) - 1
    assert st.next_deadline() is None and c.key not in st.conns


def crossed_syns():
    """Two stacks whose connect() SYNs crossed: both connections in SYN-RECV."""
    p = get_profile("linux-6.1")
    a = Stack(p, addrs={L}, encoder=SegmentRecorder())
    b = Stack(p, addrs={R}, encoder=SegmentRecorder())
    ca = a.connect(L, R, 5000, 0.0, lport=6000)
    cb = b.connect(R, L, 6000, 0.0, lport=5000)
    sa, sb = a.take_output(), b.take_output()
    for s in sa:
        b.receive_segment(s, 0.01)
    for s in sb:
        a.receive_segment(s, 0.01)
    return a, b, ca, cb


def test_simultaneous_open():
    """Both sides send SYN; each answers SYN-ACK from SYN-RECV and becomes ESTABLISHED on the
    other's SYN-ACK (RFC 9293 figure 8)."""
    a, b, ca, cb = crossed_syns()
    assert ca.state == cb.state == "SYN-RECV"
    sa, sb = a.take_output(), b.take_output()
    assert [s.flags for s in sa] == [SYN | ACK] and [s.flags for s in sb] == [SYN | ACK]
    for s in sa:
        b.receive_segment(s, 0.02)
    for s in sb:
        a.receive_segment(s, 0.02)
    assert ca.state == cb.state == "ESTABLISHED"
    ca.send(b"ping", 0.03)
    for s in a.take_output():
        b.receive_segment(s, 0.04)
    assert cb.recv(10, 0.05) == b"ping"


def test_passive_child_from_handshake_params():
    """tcp_create_openreq_child: MSS and advmss lose the 12 TS bytes; RTT seeds the RTO."""
    st, c = established()
    assert c.state == "ESTABLISHED"
    assert (c.mss, c.advmss) == (1448, 1448)
    assert c.snd_wnd == 65535 << 7
    assert st.counters["TcpPassiveOpens"] == 1 and st.counters["TcpCurrEstab"] == 1
    assert c.rto.srtt == pytest.approx(0.01)
    assert (ISS + 1) & 0xFFFFFFFF == c.snd_una
    assert c.info()["path"] == "synq"


def test_retransmitted_synack_means_3s_rto():
    """RFC 6298 5.7: no RTT sample after a retransmitted SYN-ACK -> RTO 3 s."""
    st, c = established(rtt=None)
    assert c.rto.rto == pytest.approx(3.0)


def test_listener_and_connect_between_two_stacks():
    """stack.listen builds the Linux listener; a connect from another Stack is accepted and
    both ends agree on the shifts (client's snd_wscale == server's rcv_wscale)."""
    p = get_profile("linux-6.1")
    cli = Stack(p, addrs={L}, encoder=SegmentRecorder())
    srv = Stack(p, addrs={R}, encoder=SegmentRecorder())
    lst = srv.listen(80, 16, rcvbuf=102400)
    c = cli.connect(L, R, 80, 0.0)
    for t in (0.001, 0.002, 0.003):
        for s in cli.take_output():
            srv.receive_segment(s, t)
        for s in srv.take_output():
            cli.receive_segment(s, t)
    s = lst.accept()
    assert s is not None and s.state == c.state == "ESTABLISHED"
    assert c.snd_wscale == s.rcv_wscale == 1
    assert s.snd_wscale == c.rcv_wscale == 7
    assert srv.counters["TcpPassiveOpens"] == 1
