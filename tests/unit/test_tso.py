"""TSO with ``Stack(offload=True)``: new data leaves as one segment of up to 64 KB with
gso_size = mss (``tcp_write_xmit`` + ``tcp_xmit_size_goal``), counted per MSS like
``tcp_skb_pcount``, and retransmitted one MSS at a time after a partial ACK, SACK, RTO or TLP.

Every drill runs twice, with and without offload, and checks that what the kernel cuts the
frames back into (``resegment``, tcp_gso_segment in miniature) is byte for byte the packet
stream of the plain stack, with the same MIB counters and tcp_info.
"""
import pytest

from tuntcp.profiles import get_profile

from tuntcp.core.conn import Connection
from tuntcp.core.consts import TSO_MAX
from tuntcp.shell.vnet import GSO_NONE, GSO_TCPV4
from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, PSH, Segment, TcpOptions

from test_vnet import L, R, established, resegment, split

MSS = 1448                    # 1460 - 12 bytes of timestamps
GOAL = TSO_MAX - TSO_MAX % MSS  # 45 segments: 65160 bytes


def ack_in(ack, *, window=65535, sack=(), tsval=300):
    """An ACK from the peer (its window field scaled by our snd_wscale 7)."""
    return Segment(R, L, 40000, 8080, seq=1, ack=ack & 0xFFFFFFFF, flags=ACK, window=window,
                   options=TcpOptions(ts=(tsval, 0), sack_blocks=tuple(sack)))


CC_CALLS = {}


@pytest.fixture(autouse=True)
def record_cc(monkeypatch):
    """Record what congestion control is told on each ACK (acked segments, ca_rtt)."""
    cc_ack = Connection._cc_ack

    def spy(conn, acked_segs, now, rtt, cwnd_limited):
        CC_CALLS[conn.stack.offload].append((acked_segs, now, rtt, cwnd_limited))
        return cc_ack(conn, acked_segs, now, rtt, cwnd_limited)
    monkeypatch.setattr(Connection, "_cc_ack", spy)


class Drill:
    """One established connection; ``wire()`` returns the packets sent since the last call as
    the peer sees them (plain packets; GSO frames resegmented and checksums completed)."""

    def __init__(self, offload, cwnd=100, sndbuf=1 << 22):
        self.offload = offload
        self.st, self.c = established(offload)
        self.c.cc.cwnd = cwnd
        self.c.sndbuf = sndbuf
        self.frames = []
        self.cc_calls = CC_CALLS[offload] = []   # (acked segs, ca_rtt, ...) per _cc_ack

    def wire(self):
        pkts = self.st.take_output()
        if not self.offload:
            return pkts
        self.frames += pkts
        return [p for f in pkts for p in resegment(f)]

    def state(self):
        info = self.c.info()
        return dict(self.st.counters), {k: info[k] for k in ("segs_out", "total_retrans",
                                                             "bytes_sent", "bytes_acked")}, \
            self.cc_calls, self.send_times()

    def send_times(self):
        """tx_times as per-MSS (end, sent) pairs: a TSO entry [end, sent, start] stands for
        its MSS pieces from start."""
        out = []
        for e in self.c.tx_times or ():   # None until the first send (made lazily)
            if len(e) == 3:
                out += [(x, e[1]) for x in range(e[2] + MSS, e[0], MSS)]
            out.append((e[0], e[1]))
        return out


def both(script):
    """Run ``script(drill)`` (a generator of wire snapshots) with and without offload; the
    peer must see the same bytes and the counters must agree. Returns the offload drill."""
    runs = {}
    for offload in (False, True):
        d = Drill(offload)
        runs[offload] = (list(script(d)), d.state(), d)
    assert runs[True][0] == runs[False][0]
    assert runs[True][1] == runs[False][1]
    return runs[True][2]


def gso_sizes(frames):
    return [(split(f)[0].gso_type, split(f)[0].gso_size, len(f) - split(f)[0].hdr_len - 10)
            for f in frames]


def test_a_large_write_leaves_as_64k_tso_frames_counted_per_mss():
    msg = bytes(i % 253 for i in range(150_000))

    def script(d):
        d.c.cc.cwnd = 200
        assert d.c.send(msg, 0.0) == len(msg)
        yield d.wire()

    d = both(script)
    # 150000 = 65160 + 65160 + 19680 (13 MSS + 856): three frames, one per TSO segment
    assert gso_sizes(d.frames) == [(GSO_TCPV4, MSS, GOAL), (GSO_TCPV4, MSS, GOAL),
                                   (GSO_TCPV4, MSS, 150_000 - 2 * GOAL)]
    assert d.st.counters["TcpOutSegs"] == 104 == d.c.info()["segs_out"]
    last = codec.parse(resegment(d.frames[-1])[-1])
    assert last.flags == ACK | PSH and len(last.payload) == 150_000 % MSS


def test_cwnd_and_the_peer_window_cut_the_tso_segment_at_whole_mss():
    def script(d):
        d.c.cc.cwnd = 10
        d.c.send(bytes(100_000), 0.0)
        yield d.wire()                                    # 10 MSS: the congestion window
        d.st.receive_segment(ack_in(1001 + 4 * MSS, window=(20 * MSS + 700) >> 7), 0.01)
        yield d.wire()                                    # window edge mid-MSS: whole MSS only

    d = both(script)
    sizes = [size for _, _, size in gso_sizes(d.frames)]
    assert sizes[0] == 10 * MSS and all(s % MSS == 0 for s in sizes)


def test_partial_ack_then_rto_retransmits_one_mss_from_the_new_snd_una():
    """tcp_tso_acked trims the ACKed MSS off the TSO skb; the RTO (tcp_retransmit_timer)
    then resends the head one MSS at a time: TcpRetransSegs counts MSS segments."""
    def script(d):
        d.c.send(bytes(i % 249 for i in range(GOAL)), 0.0)
        yield d.wire()
        d.st.receive_segment(ack_in(1001 + 7 * MSS + 100), 0.01)   # 7 MSS and a bit
        yield d.wire()
        d.st.on_timers(1.0)                               # the loss probe: last MSS
        yield d.wire()
        d.st.on_timers(5.0)                               # the RTO: cwnd 1, from snd_una
        yield d.wire()
        d.st.receive_segment(ack_in(1001 + 9 * MSS), 5.01)
        yield d.wire()

    d = both(script)
    # retransmissions are MSS segments (a batch of them may still share a GSO frame)
    rtx = [codec.parse(p) for f in d.frames[1:] for p in resegment(f)]
    rtx = [s for s in rtx if s.payload]
    assert [(s.seq - 1001, len(s.payload)) for s in rtx] == [
        (GOAL - MSS, MSS), (7 * MSS + 100, MSS), (9 * MSS, MSS), (10 * MSS, MSS),
        (11 * MSS, MSS)]
    assert d.st.counters["TcpRetransSegs"] == 5 and d.st.counters["TcpExtTCPTimeouts"] == 1


def test_sack_fast_retransmit_cuts_one_mss_out_of_the_tso_segment():
    def script(d):
        d.c.send(bytes(i % 247 for i in range(GOAL)), 0.0)
        yield d.wire()
        una = 1001 + 2 * MSS
        for k in range(1, 5):                             # MSS 3 lost; 4.. SACKed
            d.st.receive_segment(ack_in(una, sack=[(una + MSS, una + (1 + k) * MSS)]), 0.01)
            yield d.wire()
        d.st.receive_segment(ack_in(1001 + GOAL), 0.02)      # the retransmission arrived
        yield d.wire()

    d = both(script)
    assert d.st.counters["TcpExtTCPSackRecovery"] == 1
    rtx = [f for f in d.frames[1:] if codec.parse(resegment(f)[0]).payload]
    assert rtx and all(split(f)[0].gso_type == GSO_NONE for f in rtx)
    seg = codec.parse(resegment(rtx[0])[0])
    assert (seg.seq, len(seg.payload)) == (1001 + 2 * MSS, MSS)
    assert d.st.counters["TcpRetransSegs"] == len(rtx)


def test_loss_probe_resends_the_last_mss_of_the_tso_segment():
    """tcp_send_loss_probe fragments a multi-MSS tail skb and resends its last MSS."""
    def script(d):
        d.c.send(bytes(20 * MSS + 500), 0.0)
        yield d.wire()
        d.st.on_timers(1.5)                               # PTO before the RTO
        yield d.wire()

    d = both(script)
    assert d.st.counters["TcpExtTCPLossProbes"] == 1
    probe = codec.parse(resegment(d.frames[-1])[0])
    assert (probe.seq, len(probe.payload)) == (1001 + 20 * MSS, 500)   # the short tail


def test_nagle_holds_the_short_tail_and_the_fin_rides_on_the_last_mss():
    def script(d):
        d.c.send(bytes(MSS - 100), 0.0)                   # a small segment in flight
        yield d.wire()
        d.c.send(bytes(5 * MSS + 300), 0.001)             # 5 MSS go, the 300-byte tail waits
        yield d.wire()
        d.st.receive_segment(ack_in(1001 + 6 * MSS - 100), 0.01)
        yield d.wire()                                    # ACK of everything: the tail goes
        d.c.cc.cwnd = 0                                   # hold data and FIN in the queue
        d.c.send(bytes(4 * MSS), 0.02)
        d.c.shutdown_write(0.02)
        d.c.cc.cwnd = 100
        d.c._push(0.02)
        yield d.wire()                                    # 3 MSS TSO, then last MSS with FIN

    d = both(script)
    sizes = gso_sizes(d.frames)
    assert sizes[1] == (GSO_TCPV4, MSS, 5 * MSS)
    assert [s for _, _, s in sizes[2:]] == [300, 3 * MSS, MSS]
    fin = codec.parse(resegment(d.frames[-1])[0])
    assert fin.flags & 0x01 and len(fin.payload) == MSS


def test_rtt_samples_from_a_partly_acked_tso_segment_match_the_per_mss_path():
    """tcp_clean_rtx_queue takes ca_rtt from a TSO skb once tcp_tso_acked trims a whole MSS
    off it, and never from a piece that was retransmitted (Karn): the samples congestion
    control gets are the per-MSS path's."""
    def script(d):
        d.c.send(bytes(3 * GOAL), 0.0)
        yield d.wire()
        una = 1001
        for t, ack in ((0.010, 100), (0.011, MSS + 100), (0.012, 3 * MSS), (0.013, 3 * MSS + 7)):
            d.st.receive_segment(ack_in(una + ack), t)
            yield d.wire()
        una += 3 * MSS + 7
        grid = 1001 + 4 * MSS                             # SACKs fall on the MSS grid of the
        for k in range(1, 5):                             # first transmission: una..grid+MSS lost
            d.st.receive_segment(ack_in(una, sack=[(grid + MSS, grid + (1 + k) * MSS)]), 0.02)
            yield d.wire()
            yield d.send_times()                          # the retransmitted piece cut out
        for t, ack in ((0.03, 2 * MSS), (0.031, 6 * MSS + 5), (0.04, 20 * MSS), (0.05, 2 * GOAL)):
            d.st.receive_segment(ack_in(una + ack), t)
            yield d.wire()

    d = both(script)
    assert d.st.counters["TcpRetransSegs"] >= 1
    rtts = [call[2] for call in d.cc_calls]
    assert any(r is not None for r in rtts) and None in rtts


# ---- property: any sequence of writes, ACKs (partial, SACK, window changes) and timers ------

from hypothesis import example, given, settings, strategies as st  # noqa: E402

action = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 3 * GOAL) | st.integers(1, 90).map(MSS.__mul__)),
    st.tuples(st.just("ack"), st.floats(0, 1), st.integers(0, 3), st.integers(0, 3),
              st.sampled_from((65535, 65535, 400, 40, 0))),
    st.tuples(st.just("time"), st.sampled_from((0.001, 0.05, 0.3, 1.5))),
    st.tuples(st.just("nodelay"), st.booleans()),
    st.tuples(st.just("shutdown"),),
)


def _edges(c, ends):
    """The segment edges the peer has seen above snd_una, in order (where it can ACK or SACK:
    a receiver acknowledges whole segments, never the middle of one)."""
    out = {(e - c.snd_una) & 0xFFFFFFFF for e in ends}
    return [(c.snd_una + d) & 0xFFFFFFFF for d in sorted(out) if 0 < d <= (c.snd_max - c.snd_una) & 0xFFFFFFFF]


def replay(actions):
    def script(d):
        now = 0.0
        ends = set()
        for a in actions:
            c = d.c
            if a[0] == "send":
                if c.state in ("ESTABLISHED", "CLOSE-WAIT") and not c.fin_queued:
                    c.send(bytes(i % 241 for i in range(a[1])), now)
            elif a[0] == "ack":
                edges = _edges(c, ends)
                i = min(int(len(edges) * a[1]), len(edges))     # 0: a duplicate ACK
                ack = edges[i - 1] if i else c.snd_una
                sack = ()
                if a[2] and i + a[2] + a[3] < len(edges):        # a SACKed run above a hole
                    sack = ((edges[i + a[2] - 1], edges[i + a[2] + a[3]]),)
                d.st.receive_segment(ack_in(ack, window=a[4], sack=sack), now)
            elif a[0] == "time":
                now += a[1]
                d.st.on_timers(now)
            elif a[0] == "nodelay":
                c.nodelay = a[1]
            elif c.state in ("ESTABLISHED", "CLOSE-WAIT"):
                c.shutdown_write(now)
            pkts = d.wire()
            for p in pkts:
                seg = codec.parse(p)
                if seg.payload:
                    ends.update((seg.seq, (seg.seq + len(seg.payload)) & 0xFFFFFFFF))
            yield pkts
            yield d.send_times()
    return script


@settings(max_examples=120, deadline=None)
@given(st.lists(action, min_size=1, max_size=30))
# found by hypothesis: a SACK of one MSS inside a TSO skb still yields sack_rtt_us
@example([("send", 17377), ("ack", 0.75, 1, 2, 65535), ("send", 5792), ("ack", 0.5, 1, 0, 65535)])
@example([("send", 37649), ("send", 128873), ("ack", 0.5, 1, 2, 65535), ("ack", 0.75, 1, 0, 65535)])
# found by hypothesis: after an RTO emptied the log, a SACK of the first new segment sent
# after the go-back-N retransmissions (the per-MSS entry must know where it starts)
@example([("ack", 0.0, 0, 0, 400), ("send", 68056), ("time", 0.05), ("time", 0.3), ("send", 1),
          ("ack", 0.9375, 0, 0, 65535), ("ack", 0.125, 1, 0, 65535)])
def test_any_exchange_looks_the_same_on_the_wire_with_and_without_tso(actions):
    both(replay(actions))


def test_gso_exact_packets_are_cut_and_flagged_as_tcp_write_xmit_does():
    """packetdrill's view (an encoder with gso_exact): tcp_cwnd_test gives a TSO packet at most
    half the cwnd, and __tcp_transmit_skb forces PSH on pcount > 1 (model.tso_psh, 4.19+:
    051ba67447) but not on linux-4.9. Measured on 6.18: a 30000-byte write at cwnd 10, MSS 1000
    leaves as 2000-byte packets, each with PSH."""
    from tuntcp.drill.host import TsoRecorder
    for profile, want in (("linux-6.1", PSH), ("linux-4.9", 0)):
        st, c = established(True)
        st.encoder = TsoRecorder()
        c.profile = get_profile(profile)
        c.cc.cwnd = 4
        c.sndbuf = 1 << 22
        st.take_output()
        c.send(bytes(10 * MSS), 0.0)
        segs = st.take_output()
        assert [len(s.payload) for s in segs] == [2 * MSS, 2 * MSS]
        assert [s.flags & PSH for s in segs] == [want, want]


def test_skbs_bound_packets_and_carry_the_push_marks():
    """tcp_sendmsg_locked / tcp_write_xmit: MSG_EOR closes the tail skb, so the next write's
    data never shares a packet with it; the end of every write is PSH-marked (tcp_push), and
    a packet ending inside an skb has no PSH (tso_fragment gives it to the remainder)."""
    st, c = established(False)
    c.cc.cwnd = 100
    c.nodelay = True
    st.take_output()
    c.cc.cwnd = 0                       # queue without sending
    c.send(bytes(400), 0.0, eor=True)
    c.send(bytes(3000), 0.0)
    c.cc.cwnd = 100
    c._push(0.0)
    segs = [codec.parse(p, False) for p in st.take_output()]
    assert [len(s.payload) for s in segs] == [400, MSS, MSS, 3000 - 2 * MSS]
    assert [bool(s.flags & PSH) for s in segs] == [True, False, False, True]
