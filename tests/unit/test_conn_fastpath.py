"""Header prediction (``_fast_path``) is a shortcut, not a second receive path: on random
sequences of peer segments (in order, out of order, duplicates, pure ACKs, window changes,
timestamps mostly rising), application reads, sends and timer expiries, a connection that
takes it and one forced through ``_rcv_synced`` deliver the same bytes, emit the same
segments, count the same (but TcpExtTCPHPHits/HPAcks, the fast path's own counters) and keep
the same timers."""
from hypothesis import given, settings
from hypothesis import strategies as st

from test_conn_delack import ISS, L, R
from tuntcp.core.conn import Connection
from tuntcp.core.params import HandshakeParams
from tuntcp.host.encode import SegmentRecorder
from tuntcp.host.stack import Stack
from tuntcp.core.window import openreq_init_rwin
from tuntcp.profiles import get_profile
from tuntcp.wire.segment import ACK, PSH, Segment, TcpOptions

M = 0xFFFFFFFF
HP = {"TcpExtTCPHPHits", "TcpExtTCPHPAcks"}


class SlowConnection(Connection):
    """Never predicts: every segment takes the RFC 9293 step-by-step path."""
    __slots__ = ()

    def _fast_path(self, seg, now):
        self._rcv_synced(seg, now)


def _pair(profile, rcvbuf):
    out = []
    for cls in (Connection, SlowConnection):
        p = get_profile(profile)
        st = Stack(p, addrs={L}, secret=b"k" * 16, encoder=SegmentRecorder())
        buf = 2 * rcvbuf
        rcv_wnd, clamp, ws = openreq_init_rwin(p, listener_rcvbuf=buf, rcvbuf_locked=True,
                                               listener_window_clamp=0, mss_clamp=1460,
                                               tstamp_ok=True, wscale_ok=True)
        params = HandshakeParams(
            laddr=L, lport=8080, raddr=R, rport=40000, iss=ISS, irs=0, mss=1460, advmss=1460,
            wscale_ok=True, snd_wscale=7, rcv_wscale=ws, sack_ok=True, tstamp_ok=True,
            ts_recent=100, ts_off=0, rcv_wnd=rcv_wnd, window_clamp=clamp, snd_wnd=512 << 7,
            rcvbuf=buf, rcvbuf_locked=True, sndbuf=p["net.ipv4.tcp_wmem"][1],
            sndbuf_locked=False, rtt_sample=0.01)
        out.append((st, cls.from_handshake(st, params, 0.0)))
    return out


seg_step = st.tuples(
    st.just("seg"),
    st.integers(-3000, 12000),          # seq offset from the receiver's rcv_nxt
    st.sampled_from([0, 0, 1, 100, 536, 1448, 1448, 1448]),   # payload bytes
    st.integers(-2, 30),                # tsval step (negative: an older TSval)
    st.sampled_from([512, 512, 512, 0, 100, 2000]),           # window field
    st.integers(0, 3),                  # segments of ours to acknowledge
    st.booleans(),                      # PSH
)
steps = st.lists(st.one_of(
    seg_step, seg_step, seg_step,
    st.tuples(st.just("inorder"), st.integers(1, 6), st.sampled_from([1448, 1000, 200])),
    st.tuples(st.just("read"), st.integers(1, 20000)),
    st.tuples(st.just("send"), st.integers(1, 5000)),
    st.tuples(st.just("timer")),
    st.tuples(st.just("wait"), st.sampled_from([0.001, 0.01, 0.05, 0.3])),
), min_size=1, max_size=60)


def _state(st, c):
    return (c.state, c.rcv_nxt, c.snd_una, c.snd_nxt, c.snd_max, c.snd_wnd, c.ts_recent,
            c.dack_at, c.rtx_at, c.rtx_kind, c.tw_at, c.deadline, st.next_deadline(),
            c.dack.pending, c.dack.quick, c.dack.ato, c.dack.pingpong, c.win.rcv_wnd,
            c.win.rcv_wup, c.win.rcv_ssthresh, c.rcv_mss, c.readable())


def _counters(st):
    return {k: v for k, v in st.counters.items() if k not in HP and v}


@settings(max_examples=400, deadline=None)
@given(profile=st.sampled_from(["linux-6.1", "linux-5.4"]),
       rcvbuf=st.sampled_from([8192, 65536, 1 << 20]), plan=steps)
def test_fast_path_equals_the_slow_path(profile, rcvbuf, plan):
    (fs, fc), (ss, sc) = _pair(profile, rcvbuf)
    now = 0.01
    ts = 200
    peer_una = 0          # how many of our bytes the peer has acknowledged
    for step in plan:
        kind = step[0]
        for st_, c in ((fs, fc), (ss, sc)):
            st_.now = now
        if kind in ("seg", "inorder"):
            if kind == "seg":
                _, off, n, dts, win, ack_segs, psh = step
                segs = [(off, n, dts, win, ack_segs, psh)]
            else:
                _, k, size = step
                segs = [(i * size, size, 1, 512, 0, True) for i in range(k)]
            base = fc.rcv_nxt
            for off, n, dts, win, ack_segs, psh in segs:
                ts = (ts + dts) & M
                sent = (fc.snd_max - fc.snd_una) & M
                peer_una = min(peer_una + ack_segs * 1448, peer_una + sent)
                for st_, c in ((fs, fc), (ss, sc)):
                    seg = Segment(R, L, 40000, 8080, seq=(base + off) & M,
                                  ack=(ISS + 1 + peer_una) & M, flags=ACK | (PSH if psh else 0),
                                  window=win, options=TcpOptions(ts=(ts, 0)),
                                  payload=bytes(n))
                    st_.receive_segment(seg, now)
        elif kind == "read":
            assert fc.recv(step[1], now) == sc.recv(step[1], now)
        elif kind == "send":
            if fc.state == "ESTABLISHED":
                assert fc.send(bytes(step[1]), now) == sc.send(bytes(step[1]), now)
        elif kind == "timer":
            t = fs.next_deadline()
            assert t == ss.next_deadline()
            if t is not None:
                now = max(now, t)
                fs.on_timers(now)
                ss.on_timers(now)
        else:
            now += step[1]
        assert fs.take_output() == ss.take_output()
        assert _state(fs, fc) == _state(ss, sc)
        assert _counters(fs) == _counters(ss)


def test_ack_beyond_snd_nxt_is_not_predicted():
    """``tcp_rcv_established`` predicts only ``!after(ack_seq, snd_nxt)``: an in-order ACK for
    data never sent takes the slow path, is challenged (RFC 5961 5.2) and leaves ts_recent
    alone (the property above found the fast path storing it first)."""
    (st, c), _ = _pair("linux-6.1", 65536)
    seg = Segment(R, L, 40000, 8080, seq=c.rcv_nxt, ack=(ISS + 1 + 5000) & M, flags=ACK,
                  window=512, options=TcpOptions(ts=(300, 0)))
    st.receive_segment(seg, 0.1)
    out = st.take_output()
    assert [(s.flags, s.ack, s.options.ts[1]) for s in out] == [(ACK, c.rcv_nxt, 100)]
    assert c.ts_recent == 100 and st.counters["TcpExtTCPChallengeACK"] == 1
    assert st.counters["TcpExtTCPHPAcks"] == 0
