"""Stack: demux, RST for closed ports, counters for bad packets, the lazy deadline heap,
secrets (ISN, TS offset), ephemeral ports and listen() errors."""
import pytest

from tuntcp.host.stack import Stack, StackError
from tuntcp.host.encode import SegmentRecorder
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions

A, B = 0x0A000001, 0x0A000002


def stack(build=False, **kw):
    return Stack(get_profile("linux-6.1", kw.pop("overrides", None)), addrs={A},
                 secret=b"0123456789abcdef", encoder=None if build else SegmentRecorder(), **kw)


def test_rst_for_segment_without_ack():
    """RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (SYN counts one)."""
    st = stack()
    st.receive_segment(Segment(B, A, 1234, 80, seq=1000, flags=SYN), 0.0)
    (rst,) = st.take_output()
    assert (rst.flags, rst.seq, rst.ack, rst.sport, rst.dport) == (RST | ACK, 0, 1001, 80, 1234)
    st.receive_segment(Segment(B, A, 1234, 80, seq=5, flags=FIN, payload=b"abc"), 0.0)
    assert st.take_output()[0].ack == 5 + 3 + 1
    assert st.counters["TcpOutRsts"] == 2


def test_rst_for_segment_with_ack_takes_its_seq_from_the_ack():
    st = stack()
    st.receive_segment(Segment(B, A, 1234, 80, seq=7, ack=0xFFFFFFF0, flags=ACK | PSH,
                               payload=b"x"), 0.0)
    (rst,) = st.take_output()
    assert (rst.flags, rst.seq) == (RST, 0xFFFFFFF0)


def test_rst_is_never_answered():
    st = stack()
    st.receive_segment(Segment(B, A, 1234, 80, seq=7, flags=RST), 0.0)
    assert st.take_output() == []
    assert st.counters["TcpInSegs"] == 1


def test_wrong_destination_address_is_counted_and_dropped():
    st = stack()
    st.receive_segment(Segment(B, 0x0A0000FF, 1234, 80, seq=7, flags=SYN), 0.0)
    assert st.take_output() == [] and st.counters["IpInAddrErrors"] == 1


def test_malformed_packets_are_counted_under_their_reason():
    st = stack(build=True)
    good = codec.build(Segment(B, A, 1234, 80, seq=1, flags=SYN, options=TcpOptions(mss=1460)))
    bad = bytearray(good)
    bad[-1] ^= 0xFF                    # breaks the TCP checksum
    st.receive(bytes(bad), 0.0)
    assert st.counters["TcpInCsumErrors"] == 1 and st.counters["TcpInErrs"] == 1
    st.receive(good[:10], 0.0)
    assert st.counters["TcpInSegs"] == 0
    st.receive(good, 0.0)
    assert st.counters["TcpInSegs"] == 1
    (pkt,) = st.take_output()
    assert codec.parse(pkt).flags == RST | ACK


class Owner:
    def __init__(self):
        self.deadline = None
        self.fired = []

    def on_timer(self, now):
        self.fired.append(now)


def test_deadline_heap_lazy_deletion():
    st = stack()
    a, b = Owner(), Owner()
    st.schedule(a, 5.0)
    st.schedule(b, 3.0)
    st.schedule(a, 2.0)           # moves a earlier: the 5.0 entry is stale now
    assert st.next_deadline() == 2.0
    st.on_timers(2.5)
    assert a.fired == [2.5] and b.fired == []
    assert st.next_deadline() == 3.0
    st.on_timers(10.0)
    assert a.fired == [2.5] and b.fired == [10.0]      # a's stale 5.0 entry was skipped
    assert st.next_deadline() is None


def test_cancel_by_clearing_deadline():
    st = stack()
    a = Owner()
    st.schedule(a, 1.0)
    a.deadline = None
    assert st.next_deadline() is None
    st.on_timers(2.0)
    assert a.fired == []


def test_isn_is_keyed_and_moves_with_the_4us_clock():
    st = stack()
    st.now = 0.0
    i0 = st.isn(A, 1000, B, 80)
    st.now = 1.0
    assert (st.isn(A, 1000, B, 80) - i0) & 0xFFFFFFFF == 250_000
    assert st.isn(A, 1001, B, 80) != st.isn(A, 1000, B, 80)
    other = Stack(get_profile("linux-6.1"), addrs={A}, secret=b"another secret!!",
                  encoder=SegmentRecorder())
    other.now = 1.0
    assert other.isn(A, 1000, B, 80) != st.isn(A, 1000, B, 80)


def test_ts_offset_per_address_pair_and_off_when_tcp_timestamps_2():
    st = stack()
    assert st.ts_offset(A, B) == st.ts_offset(A, B) != st.ts_offset(A, B + 1)
    st2 = stack(overrides=["net.ipv4.tcp_timestamps=2"])
    assert st2.ts_offset(A, B) == 0
    st.now = 1.234
    assert st.ts_now(10) == 1244


def test_ephemeral_ports_skip_used_ones():
    st = stack()
    c1 = st.connect(A, B, 80, 0.0)
    c2 = st.connect(A, B, 80, 0.0)
    assert c1.lport != c2.lport and 32768 <= c1.lport <= 60999
    with pytest.raises(StackError):
        st.connect(A, B, 80, 0.0, lport=c1.lport)
    assert st.counters["TcpActiveOpens"] == 2
    with pytest.raises(StackError):
        st.connect(B, A, 80, 0.0)          # B is not ours
    with pytest.raises(StackError):
        st.connect(A, B, 0, 0.0)


def test_listen_errors_are_user_errors():
    st = stack()
    st.listen(80, 10)
    with pytest.raises(StackError):
        st.listen(80, 10)
    with pytest.raises(StackError):
        st.listen(0, 10)
    with pytest.raises(StackError):
        st.listen(81, 10, accept_filter="dataready")


def test_demux_prefers_the_connection_then_the_specific_listener():
    st = stack()
    wild = st.listen(80, 10)
    exact = st.listen(80, 10, addr=A)
    st.receive_segment(Segment(B, A, 1234, 80, seq=1, flags=SYN,
                               options=TcpOptions(mss=1460)), 0.0)
    out = st.take_output()
    assert [s.flags for s in out] == [SYN | ACK]
    assert exact.queue_lengths()["syn"] == 1 and wild.queue_lengths()["syn"] == 0


def test_martian_sources_never_reach_tcp():
    """ip_route_input_slow drops multicast, limited-broadcast, zeronet and loopback sources."""
    from tuntcp.host.stack import _martian_source
    for a in (0xE0000001, 0xEFFFFFFA, 0xFFFFFFFF, 0x00000000, 0x00FF0001, 0x7F000001):
        assert _martian_source(a), hex(a)
    for a in (0xC6120001, 0x0A000001, 0xF0000001, 0xDFFFFFFF):
        assert not _martian_source(a), hex(a)
