"""Follow-ups found by integration runs: ts_recent never moves back (tcp_replace_ts_recent),
HyStart and idle restart wired to the connection, receive-buffer autotuning
(tcp_rcv_space_adjust) and tail loss probes (tcp_schedule_loss_probe). Fake clock throughout."""
from drill import payload
from tuntcp.wire.segment import ACK, Segment, TcpOptions
from test_conn_delack import acts, established


# ---------------------------------------------------------------- ts_recent (RFC 7323 4.3)

def test_tsval_one_tick_older_passes_paws_but_does_not_lower_ts_recent():
    """PAWS allows a TSval 1 below ts_recent (TCP_PAWS_WINDOW); tcp_paws_check(.., 0) in
    tcp_replace_ts_recent then refuses to store it: the next ACK still echoes 300."""
    st, c, d = established()
    d.run("""
0.100 < P. 1:1001(1000) ack 1 win 513 <TS val 300 ecr 0>
0.100 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
0.200 < P. 1001:2001(1000) ack 1 win 513 <TS val 299 ecr 0>
0.200 > . 1:1(0) ack 2001 win * <TS val * ecr 300>
0.300 < . 2001:2001(0) ack 1 win 513 <TS val 299 ecr 0>
""", acts(c), settle=0.5)
    assert c.ts_recent == 300
    assert c.bytes_received == 2000
    assert st.counters.get("TcpExtPAWSEstab", 0) == 0


def test_tsval_two_ticks_older_is_a_paws_drop():
    st, c, d = established()
    d.run("""
0.100 < P. 1:1001(1000) ack 1 win 513 <TS val 300 ecr 0>
0.100 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
0.200 < P. 1001:2001(1000) ack 1 win 513 <TS val 298 ecr 0>
0.200 > . 1:1(0) ack 1001 win * <TS val * ecr 300>
""", acts(c), settle=0.5)
    assert st.counters["TcpExtPAWSEstab"] == 1
    assert c.bytes_received == 1000 and c.ts_recent == 300


def test_segment_beyond_rcv_wup_does_not_update_ts_recent():
    """Out-of-order data (seq > rcv_wup) is acceptable but its TSval is not remembered; the
    in-order segment that covers rcv_wup is."""
    st, c, d = established()
    d.run("""
0.100 < P. 2001:3001(1000) ack 1 win 513 <TS val 500 ecr 0>
0.100 > . 1:1(0) ack 1 win * <TS val * ecr 100,sack 2001:3001>
0.200 < P. 1:1001(1000) ack 1 win 513 <TS val 400 ecr 0>
0.200 > . 1:1(0) ack 1001 win * <TS val * ecr 400,sack 2001:3001>
""", acts(c), settle=0.5)
    assert c.ts_recent == 400


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
        for seg in self.st.take_segments():
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
    st, c, d = established()
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
    st, c, d = established()
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.003)
    peer.write(2_000_000, 0.0)
    peer.run(1.0, stop=lambda: c.cc.found)
    assert c.cc.found == "delay"
    assert st.counters["TcpExtTCPHystartDelayDetect"] == 1
    assert st.counters.get("TcpExtTCPHystartTrainDetect", 0) == 0
    assert c.cc.ssthresh < 100


def test_reno_has_no_hystart():
    st, c, d = established(overrides=["net.ipv4.tcp_congestion_control=reno"])
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.001)
    peer.write(2_000_000, 0.0)
    peer.run(0.1)
    assert c.cc.ssthresh == 0x7FFFFFFF and c.cc.cwnd > 50


# ---------------------------------------------------------------- idle restart (RFC 5681 4.1)

def _grow_then_idle(overrides, idle):
    st, c, d = established(overrides=overrides)
    c.nodelay = True
    peer = Bottleneck(st, c, base_rtt=0.010, spacing=0.0001)
    peer.write(60 * 1448, 0.0)                  # slow start: cwnd 10 -> 3x
    peer.run(0.2)
    assert c.snd_una == c.snd_max and c.cc.cwnd == 36
    peer.sent.clear()
    t = c.lsndtime + idle
    peer.write(60 * 1448, t)
    peer._absorb(t)
    return c, sum(1 for _, s in peer.sent if s.payload)


def test_idle_longer_than_rto_restarts_from_initial_window():
    """tcp_cwnd_restart: idle 0.5 s with RTO 0.21 s: one halving per RTO beyond the first,
    36 -> 18 -> 10 (the initial window is the floor); the next flight is 10 segments."""
    c, burst = _grow_then_idle(None, 0.5)
    assert c.cc.cwnd == 10 and burst == 10


def test_idle_shorter_than_rto_keeps_cwnd():
    c, burst = _grow_then_idle(None, 0.1)
    assert c.cc.cwnd == 36 and burst == 36


def test_slow_start_after_idle_off_keeps_cwnd():
    c, burst = _grow_then_idle(["net.ipv4.tcp_slow_start_after_idle=0"], 5.0)
    assert c.cc.cwnd == 36 and burst == 36
