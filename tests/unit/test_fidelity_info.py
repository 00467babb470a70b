"""tcp_info fields the packetdrill suite reads: tcpi_ca_state and tcpi_sacked (tcp_get_info)."""
from tuntcp.wire.segment import ACK, Segment, TcpOptions

from test_vnet import L, R, established

MSS = 1448


def _ack(c, st, ack, sack=()):
    st.receive_segment(Segment(R, L, 40000, 8080, seq=1, ack=ack & 0xFFFFFFFF, flags=ACK,
                               window=65535, options=TcpOptions(ts=(300, 0), sack_blocks=tuple(sack))),
                       0.05)


def test_ca_state_goes_open_disorder_recovery_and_back():
    st, c = established(False)
    c.cc.cwnd = 20
    c.sndbuf = 1 << 20
    c.send(bytes(10 * MSS), 0.0)
    una = c.snd_una
    assert c.info()["ca_state"] == 0 and c.info()["sacked"] == 0
    _ack(c, st, una, [((una + MSS) & 0xFFFFFFFF, (una + 2 * MSS) & 0xFFFFFFFF)])
    assert c.info()["ca_state"] == 1 and c.info()["sacked"] == 1      # Disorder
    for k in (3, 4):
        _ack(c, st, una, [((una + MSS) & 0xFFFFFFFF, (una + k * MSS) & 0xFFFFFFFF)])
    assert c.info()["ca_state"] == 3 and c.info()["sacked"] == 3      # Recovery
    _ack(c, st, una + 10 * MSS)
    assert c.info()["ca_state"] == 0 and c.info()["sacked"] == 0


def test_ca_state_is_loss_after_an_rto():
    st, c = established(False)
    c.send(bytes(4 * MSS), 0.0)
    st.on_timers(c.rtx_at + 0.001)              # a tail loss probe: no ACK yet, still Open
    assert c.info()["ca_state"] == 0 and not st.counters.get("TcpExtTCPTimeouts")
    st.on_timers(c.rtx_at + 0.001)              # the RTO: Loss
    assert c.info()["ca_state"] == 4 and st.counters["TcpExtTCPTimeouts"] == 1


def test_cwnd_restarts_when_a_window_update_ends_a_long_zero_window():
    """tcp_slow_start_after_idle_check runs when new data goes with nothing in flight, so a
    window that opens after more than an RTO of silence restarts cwnd (tcp_cwnd_restart),
    not only a write after idle."""
    st, c = established(False)
    c.cc.cwnd = 36
    c.sndbuf = 1 << 22
    c.snd_wnd = 0
    c.send(bytes(20 * MSS), c.lsndtime)          # nothing may go: the peer's window is shut
    assert c.snd_max == c.snd_una and c.cc.cwnd == 36
    st.receive_segment(Segment(R, L, 40000, 8080, seq=1, ack=c.snd_una, flags=ACK, window=65535,
                               options=TcpOptions(ts=(300, 0))), c.lsndtime + 5.0)
    assert c.cc.cwnd == 10 and c.snd_max != c.snd_una
