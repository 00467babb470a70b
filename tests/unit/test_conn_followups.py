"""Follow-ups found by integration runs: ts_recent never moves back (tcp_replace_ts_recent),
HyStart and idle restart wired to the connection, receive-buffer autotuning
(tcp_rcv_space_adjust) and tail loss probes (tcp_schedule_loss_probe). Fake clock throughout.
The packets of the ts_recent and loss-probe rules are tests/drill/paws-window.pkt,
ts-recent-ofo.pkt and tlp-*.pkt; here they run once more for counters and state."""
from drillrun import Drive
from tuntcp.wire.segment import ACK, Segment, TcpOptions
from test_conn_delack import established


def payload(offset: int, n: int) -> bytes:
    """Stream content a reader can check: byte i is i % 251."""
    return bytes((offset + i) % 251 for i in range(n))


# ---------------------------------------------------------------- ts_recent (RFC 7323 4.3)

def test_paws_window_of_one_tick_and_ts_recent_never_moves_back():
    d = Drive().run_file("paws-window.pkt")
    assert d.conn.ts_recent == 300
    assert d.stack.counters["TcpExtPAWSEstab"] == 1          # the two-ticks-older one only


def test_segment_beyond_rcv_wup_does_not_update_ts_recent():
    d = Drive().run_file("ts-recent-ofo.pkt")
    assert d.conn.ts_recent == 400


# ---------------------------------------------------------------- a bottleneck peer

class Bottleneck:
    """The peer behind a bottleneck: each data segment leaves the bottleneck ``spacing`` after
    the previous one (or half the base RTT after it was sent), and is ACKed (cumulatively,
    TS echoed, no delayed ACK) another half RTT later. Drives the stack on a fake clock."""

    def __init__(self, st, c, *, base_rtt=0.010, spacing=0.001, drop=()):
        self.st, self.c = st, c
        self.base, self.spacing = base_rtt, spacing
        self.drop = set(drop)          # indices of data segments lost on the way
        self.free_at = 0.0
        self.acks = []                 # (time, Segment)
        self.rcv_end = 0               # highest contiguous end seen (relative to c.iss)
        self.sent = []                 # (time, Segment) of everything the stack emitted
        self.ndata = 0
        self.ts = 1000
        self.feed = 0                  # bytes the application still wants to write

    def write(self, n, now):
        """The application writes n bytes (as the send buffer takes them)."""
        self.feed += n
        self._top_up(now)

    def _top_up(self, now):
        while self.feed and self.c.send_space():
            self.feed -= self.c.send(bytes(min(self.feed, 65536)), now)

    def _absorb(self, now):
        for seg in self.st.take_output():
            self.sent.append((now, seg))
            if not seg.payload:
                continue
            i = self.ndata
            self.ndata += 1
            if i in self.drop:
                continue
            out = max(now + self.base / 2, self.free_at + self.spacing)
            self.free_at = out
            end = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
            self.ts += 1
            ack = Segment(seg.daddr, seg.saddr, seg.dport, seg.sport, seq=seg.ack, ack=end,
                          flags=ACK, window=65535,
                          options=TcpOptions(ts=(self.ts, seg.options.ts[0])))
            self.acks.append((out + self.base / 2, ack))     # arrival times only grow

    def run(self, until, now=0.0, stop=lambda: False):
        self._absorb(now)
        while not stop():
            nxt = [t for t in (self.acks[0][0] if self.acks else None, self.st.next_deadline())
                   if t is not None]
            if not nxt or min(nxt) > until:
                return
            now = min(nxt)
            if self.acks and self.acks[0][0] == now:
                _, seg = self.acks.pop(0)
                self.st.receive_segment(seg, now)
            else:
                self.st.on_timers(now)
            self._top_up(now)
            self._absorb(now)


def test_hystart_ack_train_ends_slow_start():
    """ACKs 1 ms apart over a 10 ms path: once a round's ACK train outlasts half the minimum
    RTT (cwnd >= 16, hystart_update), CUBIC leaves slow start with ssthresh = cwnd."""
    st, c = established()
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.001)
    peer.write(2_000_000, 0.0)
    peer.run(0.5, stop=lambda: c.cc.found)
    assert c.cc.found == "train"
    assert st.counters["TcpExtTCPHystartTrainDetect"] == 1
    assert 16 <= c.cc.ssthresh < 100
    assert st.counters["TcpExtTCPHystartTrainCwnd"] == c.cc.ssthresh


def test_hystart_delay_increase_ends_slow_start():
    """ACKs 3 ms apart (no train) while the bottleneck queue grows: the round's minimum RTT
    exceeds delay_min + max(delay_min / 8, 4 ms) after 8 samples: delay detection."""
    st, c = established()
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.003)
    peer.write(2_000_000, 0.0)
    peer.run(1.0, stop=lambda: c.cc.found)
    assert c.cc.found == "delay"
    assert st.counters["TcpExtTCPHystartDelayDetect"] == 1
    assert st.counters.get("TcpExtTCPHystartTrainDetect", 0) == 0
    assert c.cc.ssthresh < 100


def test_reno_has_no_hystart():
    st, c = established(overrides=["net.ipv4.tcp_congestion_control=reno"])
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.001)
    peer.write(2_000_000, 0.0)
    peer.run(0.1)
    assert c.cc.ssthresh == 0x7FFFFFFF and c.cc.cwnd > 50


# ---------------------------------------------------------------- idle restart (RFC 5681 4.1)

def _grow_then_idle(overrides, idle):
    st, c = established(overrides=overrides)
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.0001)
    peer.write(60 * 1448, 0.0)
    peer.run(0.2)
    # slow start: tcp_is_cwnd_limited lets cwnd grow to twice the most packets out (35 of
    # the 60 segments, as the truesize-charged buffer takes the writes: 10 -> 70; 71 when the
    # buffer took half of sk_sndbuf in payload; 36 before tcp_cwnd_validate was modelled)
    assert c.snd_una == c.snd_max and c.max_pkts_out == 35 and c.cc.cwnd == 70
    peer.sent.clear()
    t = c.lsndtime + idle
    peer.write(60 * 1448, t)
    peer._absorb(t)
    return c, sum(1 for _, s in peer.sent if s.payload)


def test_idle_longer_than_rto_restarts_from_initial_window():
    """tcp_cwnd_restart: idle 1 s with RTO 0.21 s: one halving per RTO beyond the first,
    70 -> 35 -> 17 -> 8, floored at the initial window 10; the next flight is 10 segments."""
    c, burst = _grow_then_idle(None, 1.0)
    assert c.cc.cwnd == 10 and burst == 10


def test_idle_shorter_than_rto_keeps_cwnd():
    c, burst = _grow_then_idle(None, 0.1)
    assert c.cc.cwnd == 70 and burst == 61      # 60 segments: a 65536-byte write's 376-byte skb


def test_slow_start_after_idle_off_keeps_cwnd():
    c, burst = _grow_then_idle(["net.ipv4.tcp_slow_start_after_idle=0"], 5.0)
    assert c.cc.cwnd == 70 and burst == 61


# ---------------------------------------------------------------- receive-buffer autotuning

def _bulk_ingest(st, c, rounds, rtt=0.010, read=True):
    """The peer sends, once per RTT, everything our last ACK's window allows (1448-byte
    segments, 50 µs apart, TSecr = our last TSval); the application reads after each one.
    Returns the largest window (bytes) we advertised."""
    mss = 1448
    nxt = 1                          # peer's sequence numbers relative to irs 0
    edge, ecr, best = 1 + 65535, 100, 0
    ts = 1000
    for r in range(rounds):
        t = r * rtt
        while nxt + mss <= edge:
            ts += 1
            seg = Segment(c.raddr, c.laddr, c.rport, c.lport, seq=nxt, ack=c.snd_una,
                          flags=ACK, window=513, options=TcpOptions(ts=(ts, ecr)),
                          payload=bytes(mss))
            st.receive_segment(seg, t)
            nxt += mss
            if read:
                c.recv(1 << 20, t)
            st.on_timers(t)
            t += 0.00005
        st.on_timers(t + rtt / 2)
        for s in st.take_output():
            w = s.window << c.rcv_wscale
            edge = max(edge, s.ack + w)
            best = max(best, w)
            ecr = s.options.ts[0]
    return best


def test_autotuning_grows_rcvbuf_and_window_for_a_reading_application():
    """tcp_rcv_space_adjust: an unlocked buffer that the application drains grows toward
    tcp_rmem[2]; window_clamp follows; the advertised window leaves the 64 KB of the default
    131072-byte buffer far behind. info() shows rcv_space and the receiver RTT."""
    st, c = established()
    p = c.profile
    assert c.win.rcvbuf == p["net.ipv4.tcp_rmem"][1] == 131072
    start = c.rcvq_space
    assert start == min(c.win.rcv_ssthresh, c.win.rcv_wnd, 10 * c.advmss)
    best = _bulk_ingest(st, c, 40)
    assert c.win.rcvbuf > 4 * 131072
    assert c.win.rcvbuf <= p["net.ipv4.tcp_rmem"][2]
    assert c.win.window_clamp == c.win.rcvbuf - c.win.rcvbuf // 2     # adv_win_scale 1
    assert best > 4 * 65536
    info = c.info()
    assert info["rcv_space"] > start and info["rcvbuf"] == c.win.rcvbuf
    assert 1.0 <= info["rcv_rtt"] <= 10.0     # TSecr echoes ACKs sent during the round


def test_autotuning_first_step_numbers():
    """One step by hand: rcvq_space 14480 (10 * advmss), the app copied 28960 bytes in one
    receiver RTT: rcvwin = 2 * 28960 + 16 * 1448 = 81088, grown by 2 * 81088 * 14480 / 14480
    -> 243264; SKB_TRUESIZE(1448 + 320) = 2344 rounded up by 128 until half of it holds
    1448: 2984; rcvbuf = 243264 // 1448 * 2984 = 501312; window_clamp = 250656."""
    st, c = established()
    assert c.rcvq_space == 14480
    c.rcv_rtt = 0.010
    c.rcvq_time = 0.0
    for i in range(20):
        seg = Segment(c.raddr, c.laddr, c.rport, c.lport, seq=1 + i * 1448, ack=c.snd_una,
                      flags=ACK, window=513, payload=bytes(1448))
        st.receive_segment(seg, 0.001)
    assert c.recv(8, 0.005) and c.rcvq_space == 14480      # less than one RTT: wait
    c.recv(1 << 20, 0.011)
    assert c.rcvq_space == 28960
    assert c.win.rcvbuf == 501312 and c.win.window_clamp == 250656


def test_locked_rcvbuf_is_never_autotuned():
    """SO_RCVBUF sets SOCK_RCVBUF_LOCK (the Kafka broker's socket.receive.buffer.bytes):
    rcvq_space is still measured but the buffer and clamp stay as set."""
    st, c = established(rcvbuf=102400)
    buf, clamp = c.win.rcvbuf, c.win.window_clamp
    best = _bulk_ingest(st, c, 30)
    assert (c.win.rcvbuf, c.win.window_clamp) == (buf, clamp)
    assert best <= clamp and c.rcvq_space > 0


def test_moderate_rcvbuf_off_keeps_the_default_buffer():
    st, c = established(overrides=["net.ipv4.tcp_moderate_rcvbuf=0"])
    best = _bulk_ingest(st, c, 30)
    assert c.win.rcvbuf == 131072 and best <= 65536


def test_application_not_reading_does_not_grow_the_buffer():
    st, c = established()
    _bulk_ingest(st, c, 10, read=False)
    assert c.win.rcvbuf == 131072


# ---------------------------------------------------------------- tail loss probe (RFC 8985 7)

def test_single_segment_tail_loss_probe_instead_of_rto():
    d = Drive().run_file("tlp-single.pkt").settle(1.0)
    c, st = d.conn, d.stack
    assert st.counters["TcpExtTCPLossProbes"] == 1
    assert st.counters.get("TcpExtTCPTimeouts", 0) == 0
    assert c.cc.cwnd == 10 and c.rto.backoffs == 0 and c.rtx_at is None


def test_tail_of_a_flight_probe_after_two_srtt_then_rto_a_full_rto_later():
    d = Drive().run_file("tlp-tail.pkt", exact=True)
    assert d.stack.counters["TcpExtTCPLossProbes"] == 1
    assert d.stack.counters["TcpExtTCPTimeouts"] == 1


def test_probe_sends_new_data_when_the_window_allows():
    d = Drive().run_file("tlp-new-data.pkt", exact=True)
    c = d.conn
    assert d.stack.counters["TcpExtTCPLossProbes"] == 1
    assert d.stack.counters.get("TcpRetransSegs", 0) == 0
    assert c.tlp_high_seq == c.snd_max and not c.tlp_retrans


def test_probe_that_repaired_a_loss_reduces_cwnd_once():
    d = Drive().run_file("tlp-recovery.pkt").settle(0.5)
    assert d.stack.counters["TcpExtTCPLossProbeRecovery"] == 1
    assert d.conn.tlp_high_seq is None


def test_dsack_for_the_probe_means_no_loss():
    d = Drive().run_file("tlp-dsack.pkt").settle(0.5)
    assert d.stack.counters.get("TcpExtTCPLossProbeRecovery", 0) == 0
    assert d.conn.tlp_high_seq is None


def test_no_probe_without_sack_or_on_freebsd():
    for kw in ({"sack": False}, {"profile": "freebsd-14"}):
        st, c = established(**kw)
        c.nodelay = True
        c.send(payload(0, 1000), 0.0)
        assert c.rtx_kind == "rtx"
        st.on_timers(0.3)
        assert st.counters.get("TcpExtTCPLossProbes", 0) == 0
        assert st.counters["TcpExtTCPTimeouts"] == 1


# ---------------------------------------------------------------- receive queue

def test_reads_of_any_size_return_the_stream_in_order():
    """The receive queue keeps payloads as chunks; reads cut across them. (Segments built by
    hand: a script's payload is zeros, and this checks the bytes.)"""
    st, c = established()
    for seq, n in ((1, 1448), (1449, 1448), (2897, 104)):
        st.receive_segment(Segment(c.raddr, c.laddr, c.rport, c.lport, seq=seq, ack=c.snd_una, flags=ACK,
                                   window=513, options=TcpOptions(ts=(300 + seq, 0)),
                                   payload=payload(seq - 1, n)), 0.1)
    assert c.readable() == 3000
    got = b""
    for n in (1000, 1, 1500, 7, 10000):
        part = c.recv(n, 0.2)
        assert len(part) == min(n, 3000 - len(got))
        got += part
    assert got == payload(0, 3000) and c.readable() == 0 and bytes(c.rcvq) == b""


def test_lost_retransmit_skips_acked_entries_behind_unacked_ones():
    """retx_list is in sending order: a segment resent a second time goes to its end. Once the
    cumulative ACK covers it while an earlier entry (SACKed) is still above snd_una, it must be
    dropped, not resent from snd_una with a length computed from a range below snd_una (that
    sent the whole send queue as one segment). linux-3.10: the path without RACK
    (net.ipv4.tcp_recovery=0), where retx_list serves."""
    st, c = established("linux-3.10")
    c.nodelay = True
    c.send(payload(0, 7240), 0.0)
    st.take_output()
    base = c.snd_una

    def s(k):
        return (base + k * 1448) & 0xFFFFFFFF

    c.in_recovery, c.cc.in_recovery, c.recover = True, True, c.snd_max
    c.retx_list = [[s(3), s(4), s(1), 0.0], [s(0), s(1), s(1), 0.05]]
    ack = Segment(c.raddr, c.laddr, c.rport, c.lport, seq=c.rcv_nxt, ack=s(2), flags=ACK,
                  window=513, options=TcpOptions(ts=(300, 0), sack_blocks=((s(3), s(4)),)))
    st.receive_segment(ack, 0.2)
    out = st.take_output()
    assert out and all(len(x.payload) <= c.mss for x in out)
    assert all(e[1] != s(1) for e in c.retx_list)


def test_a_write_that_sends_nothing_leaves_the_probe_armed():
    d = Drive().run_file("tlp-write-nothing.pkt", exact=True)
    assert d.stack.counters["TcpExtTCPLossProbes"] == 1
    assert d.stack.counters.get("TcpExtTCPTimeouts", 0) == 0


def test_so_rcvbuf_on_an_established_socket_has_one_owner():
    """SO_RCVBUF after the handshake: limited by rmem_max and doubled (``__sock_set_rcvbuf``),
    held once, by the receive window (it used to keep the raw value there and the doubled one
    on the connection)."""
    from test_conn_delack import established
    st, c = established()
    assert not c.rcvbuf_locked
    c.set_rcvbuf(16384)
    assert c.rcvbuf == c.win.rcvbuf == 32768 and c.rcvbuf_locked and c.win.rcvbuf_locked
    assert c.info()["rcvbuf"] == 32768
