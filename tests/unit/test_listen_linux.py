"""The Linux listener through the real Stack (encoder=SegmentRecorder()): segments in, segments and counters out.

Each test reads like a packetdrill script: a client at 10.0.0.2 talks to port 8080 on 10.0.0.1.
"""
import pytest

from tuntcp.host.stack import Stack
from tuntcp.host.encode import SegmentRecorder
from tuntcp.core.window import synack_window_field
from tuntcp.listen.linux import LinuxListener
from tuntcp.listen.linux_reqsk import req_key
from tuntcp.profiles import get_profile
from tuntcp.wire.segment import ACK, ECE, FIN, RST, SYN, Segment, TcpOptions

SRV, CLI, PORT = 0x0A000001, 0x0A000002, 8080


class Net:
    """A Stack with one listener, a log of events and helpers to play the client."""

    def __init__(self, profile="linux-5.10", sysctls=(), backlog=128, **kw):
        self.events = []
        self.stack = Stack(get_profile(profile, list(sysctls)), addrs=set(), secret=b"0123456789abcdef",
                           log=lambda kind, **f: self.events.append((kind, f)), encoder=SegmentRecorder())
        self.lst = self.stack.listen(PORT, backlog, **kw)
        self.now = 0.0

    def send(self, seg, at=None):
        if at is not None:
            self.now = at
        before = self.stack.counters.snapshot()
        self.stack.receive_segment(seg, self.now)
        return self.stack.take_output(), self.stack.counters.delta(before)

    def tick(self, at):
        self.now = at
        self.stack.on_timers(at)
        return self.stack.take_output()

    def run_until(self, t):
        """Fire every deadline up to t at its exact time, like a punctual clock."""
        out = []
        while (d := self.stack.next_deadline()) is not None and d <= t:
            out += self.tick(d)
        self.now = t
        return out

    def kernel_lines(self):
        lines = [f["line"] for kind, f in self.events if kind == "kernel_log"]
        assert all(line.startswith("TCP: ") for line in lines)      # tcp_input.c pr_fmt
        return [line[len("TCP: "):] for line in lines]


def syn(sport, isn=1000, mss=1460, ws=7, sack=True, ts=(5000, 0), flags=SYN, daddr=SRV):
    return Segment(CLI, daddr, sport, PORT, seq=isn, flags=flags, window=64240,
                   options=TcpOptions(mss=mss, wscale=ws, sack_ok=sack, ts=ts))


def ack_of(sa, isn=1000, data=b"", ts=True, flags=ACK, window=502):
    opts = TcpOptions(ts=(5001, sa.options.ts[0]) if ts and sa.options.ts else None)
    return Segment(CLI, SRV, sa.dport, PORT, seq=isn + 1, ack=(sa.seq + 1) & 0xFFFFFFFF,
                   flags=flags, window=window, options=opts, payload=data)


def handshake(net, sport, at=None, **kw):
    out, _ = net.send(syn(sport, **kw), at)
    assert len(out) == 1 and out[0].flags == SYN | ACK
    out2, delta = net.send(ack_of(out[0], ts=kw.get("ts", (1, 0)) is not None))
    return out[0], out2, delta


# ---- listen(2) and the accept queue ----------------------------------------------------

@pytest.mark.parametrize("backlog", [0, 1, 3])
def test_backlog_n_admits_n_plus_1(backlog):
    net = Net("linux-6.12", backlog=backlog)          # '>' SYN test so backlog 0 gets a request
    for i in range(backlog + 1):
        _, out, delta = handshake(net, 40000 + i)
        assert out == [] and delta == {"TcpInSegs": 1, "TcpPassiveOpens": 1, "TcpCurrEstab": 1}
    assert net.lst.queue_lengths()["accept"] == backlog + 1
    out, delta = net.send(syn(41000))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtListenOverflows": 1, "TcpExtListenDrops": 1}
    child = net.lst.accept()
    assert child.state == "ESTABLISHED" and child.rport == 40000       # oldest first
    assert net.lst.queue_lengths()["accept"] == backlog
    out, _ = net.send(syn(41000))
    assert [s.flags for s in out] == [SYN | ACK]


def test_listen_clamp_and_relisten():
    net = Net("linux-3.10", backlog=-1)
    assert net.lst.backlog == 128
    net.lst.relisten(5)
    assert net.lst.backlog == 5 and net.lst.queue_lengths()["backlog"] == 5
    assert Net("linux-5.10", backlog=100000).lst.backlog == 4096


def test_pre_4_10_accept_queue_drops_syn_only_with_two_young():
    net = Net("linux-3.10", backlog=0)
    handshake(net, 40000)                              # accept queue now full (1 > 0)
    assert net.send(syn(40001))[0][0].flags == SYN | ACK   # young 0: admitted
    assert net.send(syn(40002))[0][0].flags == SYN | ACK   # young 1: admitted
    out, delta = net.send(syn(40003))                       # young 2 > 1: dropped
    assert out == [] and delta["TcpExtListenOverflows"] == 1 and delta["TcpExtListenDrops"] == 1


# ---- the SYN queue ---------------------------------------------------------------------

@pytest.mark.parametrize("profile,backlog,admitted", [
    ("linux-5.10", 4, 4), ("linux-6.12", 4, 5), ("linux-3.10", 4, 16), ("linux-3.10", 50, 64),
    ("linux-5.10", 0, 0),
])
def test_syn_queue_size_per_profile(profile, backlog, admitted):
    net = Net(profile, ["net.ipv4.tcp_syncookies=0"], backlog=backlog)
    for i in range(admitted):
        out, _ = net.send(syn(40000 + i))
        assert len(out) == 1
    assert net.lst.queue_lengths()["syn"] == admitted
    out, delta = net.send(syn(45000))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtTCPReqQFullDrop": 1, "TcpExtListenDrops": 1}


def test_syn_queue_full_with_cookies_sends_a_stateless_synack():
    net = Net("linux-5.10", backlog=1)
    net.send(syn(40000))
    out, delta = net.send(syn(40001))
    assert [s.flags for s in out] == [SYN | ACK]
    assert delta == {"TcpInSegs": 1, "TcpOutSegs": 1, "TcpExtTCPReqQFullDoCookies": 1,
                     "TcpExtSyncookiesSent": 1}
    assert net.lst.queue_lengths()["syn"] == 1


def test_decision_order_flood_before_accept_queue():
    # backlog 0 on a '>=' kernel: every SYN is a cookie; the full accept queue still drops it
    net = Net("linux-5.10", backlog=0)
    sa, _, _ = handshake(net, 40000)[0:3]
    assert net.lst.queue_lengths()["accept"] == 1 and net.lst.queue_lengths()["syn"] == 0
    out, delta = net.send(syn(40001))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtTCPReqQFullDoCookies": 1,
                                   "TcpExtListenOverflows": 1, "TcpExtListenDrops": 1}


def test_three_quarter_rule_only_without_cookies_and_spares_proven_peers():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=8"])
    for i in range(7):                   # 8 - qlen < 2 first holds at qlen 7
        assert len(net.send(syn(40000 + i))[0]) == 1
    out, delta = net.send(syn(40100))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtListenDrops": 1}
    # complete one handshake: that peer is now proven and passes the rule
    assert net.send(syn(40007))[0] == []           # still unproven: dropped again
    net2 = Net("linux-5.10", ["net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=8"])
    handshake(net2, 39999)
    for i in range(7):
        net2.send(syn(40000 + i))
    out, delta = net2.send(syn(40100))
    assert len(out) == 1 and "TcpExtListenDrops" not in delta
    # the same rule with cookies on does nothing
    net3 = Net("linux-5.10", ["net.ipv4.tcp_max_syn_backlog=8"])
    for i in range(9):
        assert len(net3.send(syn(40000 + i))[0]) == 1


def test_broadcast_synfin_rst_and_ack_on_listen():
    net = Net()
    out, delta = net.send(syn(40000, daddr=0xFFFFFFFF))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtListenDrops": 1}
    out, delta = net.send(syn(40000, daddr=0xE0000005))
    assert out == [] and delta["TcpExtListenDrops"] == 1
    out, delta = net.send(syn(40001, flags=SYN | FIN))
    assert out == [] and delta == {"TcpInSegs": 1}
    out, delta = net.send(Segment(CLI, SRV, 40002, PORT, seq=5, flags=RST))
    assert out == [] and delta == {"TcpInSegs": 1}
    out, _ = net.send(Segment(CLI, SRV, 40003, PORT, seq=5, ack=777, flags=ACK))
    assert len(out) == 1 and out[0].flags == RST and out[0].seq == 777
    out, _ = net.send(Segment(CLI, SRV, 40004, PORT, seq=5, ack=778, flags=SYN | ACK))
    assert out[0].flags == RST and out[0].seq == 778
    assert net.lst.queue_lengths()["syn"] == 0


# ---- tcp_syn_flood_action --------------------------------------------------------------

@pytest.mark.parametrize("profile,sysctls,line", [
    ("linux-5.10", [], "request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  "
                       "Check SNMP counters."),
    ("linux-3.10", ["net.ipv4.tcp_syncookies=0"],
     "TCP: Possible SYN flooding on port 8080. Dropping request.  Check SNMP counters."),
    ("linux-6.12", [], "request_sock_TCP: Possible SYN flooding on port 10.0.0.1:8080. Sending cookies."),
])
def test_flood_line_once_per_listener(profile, sysctls, line):
    net = Net(profile, sysctls, backlog=0)
    net.stack.unlisten(net.lst)
    net.lst = net.stack.listen(PORT, 0, addr=SRV)
    for i in range(20):
        net.send(syn(40000 + i))
    assert net.kernel_lines() == [line]
    net.lst.relisten(0)                        # a resize does not re-arm the warning
    net.send(syn(41000))
    assert len(net.kernel_lines()) == 1
    net.lst.close(net.now)                     # a fresh listen does
    net.lst = net.stack.listen(PORT, 0, addr=SRV)
    for i in range(20):
        net.send(syn(42000 + i))
    assert net.kernel_lines() == [line, line]


def test_no_flood_line_with_syncookies_2():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"], backlog=0)
    for i in range(5):
        assert len(net.send(syn(40000 + i))[0]) == 1
    assert net.kernel_lines() == []
    assert net.stack.counters["TcpExtTCPReqQFullDoCookies"] == 5


# ---- SYN-ACK and request-sock timers ---------------------------------------------------

def test_synack_options_and_window():
    net = Net("linux-5.10")
    out, _ = net.send(syn(40000, ts=(5000, 0)), at=2.0)
    sa = out[0]
    assert sa.ack == 1001 and sa.flags == SYN | ACK
    o = sa.options
    assert o.mss == 1460 and o.sack_ok and o.wscale == 7
    ts_off = net.stack.ts_offset(SRV, CLI)
    assert o.ts == ((2000 + ts_off) & 0xFFFFFFFF, 5000)
    # >= 4.19: min(45 * 1448, 65535), never scaled in a SYN-ACK
    assert sa.window == 65160 == synack_window_field(net.lst.reqs[req_key(SRV, CLI, PORT, 40000)].rcv_wnd)
    out, _ = net.send(syn(40001, ws=None, sack=False, ts=None, mss=None))
    o = out[0].options
    assert o.wscale is None and not o.sack_ok and o.ts is None and o.mss == 1460


def test_synack_schedule_and_silent_drop_at_63s():
    net = Net()
    net.send(syn(40000), at=0.0)
    times = []
    while (d := net.stack.next_deadline()) is not None:
        out = net.tick(d)
        if out:
            assert [s.flags for s in out] == [SYN | ACK] and out[0].ack == 1001
            times.append(d)
        else:
            dropped_at = d
    assert times == [1.0, 3.0, 7.0, 15.0, 31.0] and dropped_at == 63.0
    c = net.stack.counters
    assert (c["TcpExtTCPTimeouts"], c["TcpExtTCPSynRetrans"], c["TcpRetransSegs"]) == (6, 5, 5)
    assert net.lst.queue_lengths()["syn"] == 0 and c["TcpOutRsts"] == 0


def test_synack_timers_due_together_fire_in_arming_order():
    # A's second timer (armed at 1 s for 2 s) and B's first (armed at 2 s for 1 s) both fall
    # due at 3 s: A was armed first, so A's SYN-ACK goes first. C re-armed by a retransmitted
    # SYN at 2 s also falls due at 3 s, after B (armed before it in the same instant).
    net = Net()
    net.send(syn(40000), at=0.0)                      # A
    net.run_until(1.0)
    net.send(syn(40001, isn=2000), at=1.5)           # C
    net.send(syn(40002, isn=3000), at=2.0)           # B
    net.send(syn(40001, isn=2000), at=2.0)           # C again: re-armed to 3.0
    out = net.run_until(3.0)
    assert [s.dport for s in out] == [40000, 40002, 40001]
    assert all(s.flags == SYN | ACK for s in out)


def test_synack_retries_per_listener_override():
    net = Net(synack_retries=2)
    net.send(syn(40000))
    assert [net.tick(t) != [] for t in (1.0, 3.0, 7.0)] == [True, True, False]
    assert net.lst.queue_lengths()["syn"] == 0


@pytest.mark.parametrize("n,at,left", [(4, 63.0, 0), (10, 7.0, 8), (12, 7.0, 8)])
def test_young_old_shortening(n, at, left):
    # backlog 16: 'more than half full' means 2*qlen > 16. With every request old, the
    # threshold falls to 2 retries, so requests die at 7 s until the queue is half full again.
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=0"], backlog=16)
    for i in range(n):
        net.send(syn(40000 + i))
    assert net.lst.queue_lengths()["young"] == n
    net.run_until(1.0)
    assert net.lst.queue_lengths()["young"] == 0
    net.run_until(at - 0.001)
    assert net.lst.queue_lengths()["syn"] == n
    net.run_until(at)
    assert net.lst.queue_lengths()["syn"] == left
    net.run_until(63.0)
    assert net.lst.queue_lengths()["syn"] == 0


def test_retransmitted_syn_answered_and_rate_limited():
    net = Net()
    net.send(syn(40000), at=0.0)
    out, delta = net.send(syn(40000), at=0.2)
    assert [s.flags for s in out] == [SYN | ACK]
    assert delta == {"TcpInSegs": 1, "TcpOutSegs": 1, "TcpRetransSegs": 1, "TcpExtTCPSynRetrans": 1}
    out, delta = net.send(syn(40000), at=0.3)
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtTCPACKSkippedSynRecv": 1}
    assert net.stack.next_deadline() == pytest.approx(1.2)     # re-armed from the SYN
    out, _ = net.send(syn(40000), at=0.75)
    assert len(out) == 1
    assert net.stack.counters["TcpExtTCPTimeouts"] == 0


# ---- tcp_check_req ---------------------------------------------------------------------

def test_check_req_wrong_ack_rst_ooo_ack_and_embryonic_resets():
    net = Net()
    sa = net.send(syn(40000))[0][0]
    bad = ack_of(sa)
    bad.ack = (bad.ack + 5) & 0xFFFFFFFF
    out, delta = net.send(bad)
    assert [s.flags for s in out] == [RST] and out[0].seq == bad.ack
    assert net.lst.queue_lengths()["syn"] == 1
    old = ack_of(sa)
    old.seq = 500                                              # before rcv_nxt
    out, _ = net.send(old, at=0.1)
    assert [s.flags for s in out] == [ACK] and out[0].ack == 1001 and out[0].seq == sa.seq + 1
    rst = Segment(CLI, SRV, 40000, PORT, seq=1001, flags=RST)
    out, delta = net.send(rst)
    assert out == [] and delta == {"TcpInSegs": 1, "TcpAttemptFails": 1, "TcpExtEmbryonicRsts": 1}
    assert net.lst.queue_lengths()["syn"] == 0
    sa = net.send(syn(40001))[0][0]
    out, delta = net.send(syn(40001, isn=1001, ts=(5002, 0)))  # a new SYN inside the window
    assert [s.flags for s in out] == [RST | ACK]
    assert delta["TcpAttemptFails"] == 1 and delta["TcpExtEmbryonicRsts"] == 1


def test_check_req_paws():
    net = Net()
    sa = net.send(syn(40000, ts=(5000, 0)))[0][0]
    a = ack_of(sa)
    a.options.ts = (4000, sa.options.ts[0])
    out, delta = net.send(a)
    assert [s.flags for s in out] == [ACK] and delta["TcpExtPAWSEstab"] == 1
    assert net.lst.queue_lengths()["accept"] == 0


def test_child_gets_data_on_the_completing_ack_and_rtt():
    net = Net()
    sa = net.send(syn(40000), at=0.0)[0][0]
    out, delta = net.send(ack_of(sa, data=b"hello", flags=ACK | 0x08), at=0.05)
    child = net.lst.accept()
    assert child.path == "synq" and child.recv(100, net.now) == b"hello"
    assert net.stack.counters["TcpPassiveOpens"] == 1
    assert child.info()["rtt"] == pytest.approx(50.0)
    assert net.lst in net.stack.dirty


def _fill_for_third_ack_overflow(sysctls=()):
    """backlog 1 on 6.12: A and B accepted (2 > 1 is full afterwards), C waits in the SYN queue."""
    net = Net("linux-6.12", sysctls, backlog=1)
    handshake(net, 40000)
    sb = net.send(syn(40001, isn=2000))[0][0]
    sc = net.send(syn(40002, isn=3000))[0][0]
    net.send(ack_of(sb, isn=2000))
    assert net.lst.queue_lengths()["accept"] == 2
    return net, sc


def test_accept_queue_full_on_third_ack_keeps_request():
    net, sc = _fill_for_third_ack_overflow()
    out, delta = net.send(ack_of(sc, isn=3000), at=0.1)
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtListenOverflows": 1, "TcpExtListenDrops": 1}
    (req,) = [r for r in net.lst.queue_lengths()["requests"] if r[1] == 40002]
    assert req[3] is True                                     # acked
    assert [s.flags for s in net.tick(1.0)] == [SYN | ACK]    # SYN-ACKs keep coming
    out, delta = net.send(ack_of(sc, isn=3000, data=b"x" * 10, flags=ACK | 0x08), at=1.01)
    assert out == [] and delta["TcpExtListenOverflows"] == 1
    net.lst.accept()                                          # room again
    out, delta = net.send(ack_of(sc, isn=3000, data=b"x" * 10, flags=ACK | 0x08), at=1.5)
    assert delta["TcpPassiveOpens"] == 1 and net.lst.queue_lengths()["syn"] == 0
    child = list(net.lst.accept_q)[-1]
    assert child.readable() == 10 and child.info()["rto"] == 3000   # SYN-ACK was retransmitted


def test_abort_on_overflow_sends_rst():
    net, sc = _fill_for_third_ack_overflow(["net.ipv4.tcp_abort_on_overflow=1"])
    a = ack_of(sc, isn=3000)
    out, delta = net.send(a)
    assert [s.flags for s in out] == [RST] and out[0].seq == a.ack
    assert delta == {"TcpInSegs": 1, "TcpOutSegs": 1, "TcpOutRsts": 1, "TcpExtListenOverflows": 1,
                     "TcpExtListenDrops": 1, "TcpExtEmbryonicRsts": 1}
    assert net.lst.queue_lengths()["syn"] == 0


# ---- TCP_DEFER_ACCEPT ------------------------------------------------------------------

def test_defer_accept_swallows_bare_acks_then_gives_up_deferring():
    net = Net(defer_accept=5)                  # 5 s -> 3 rounds (read back as 7 s)
    assert net.lst.defer_rounds == 3
    sa = net.send(syn(40000), at=0.0)[0][0]
    out, delta = net.send(ack_of(sa), at=0.1)
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtTCPDeferAcceptDrop": 1}
    assert net.lst.queue_lengths()["requests"][0][3] is True
    assert net.tick(1.0) == [] and net.tick(3.0) == []        # no SYN-ACK while waiting for data
    assert [s.flags for s in net.tick(7.0)] == [SYN | ACK]    # last round: a last chance
    out, delta = net.send(ack_of(sa), at=7.1)                  # a bare ACK now creates the child
    assert delta.get("TcpPassiveOpens") == 1 and net.lst.accept().state == "ESTABLISHED"


def test_defer_accept_data_creates_child_at_once():
    net = Net(defer_accept=5)
    sa = net.send(syn(40000))[0][0]
    net.send(ack_of(sa), at=0.1)
    out, delta = net.send(ack_of(sa, data=b"GET /", flags=ACK | 0x08), at=0.2)
    assert delta["TcpPassiveOpens"] == 1 and net.lst.accept().readable() == 5


def test_defer_accept_bypassed_by_cookies():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"], defer_accept=30)
    sa = net.send(syn(40000))[0][0]
    out, delta = net.send(ack_of(sa), at=0.1)
    assert delta == {"TcpInSegs": 1, "TcpExtSyncookiesRecv": 1, "TcpPassiveOpens": 1, "TcpCurrEstab": 1}
    assert net.lst.accept().path == "cookie"


# ---- SYN cookies -----------------------------------------------------------------------

def test_cookie_synack_with_client_timestamps_keeps_options_in_tsval():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"])
    sa = net.send(syn(40000, mss=1400, ws=9, ts=(5000, 0)), at=10.0)[0][0]
    o = sa.options
    assert o.mss == 1460 and o.sack_ok and o.wscale == 7        # we still announce our options
    raw = (o.ts[0] - net.stack.ts_offset(SRV, CLI)) & 0xFFFFFFFF
    assert raw & 0x3F == 0x10 | 9 and raw <= 10000 and o.ts[1] == 5000
    assert net.stack.next_deadline() is None and net.lst.queue_lengths()["syn"] == 0
    out, delta = net.send(ack_of(sa), at=10.1)
    assert out == [] and delta["TcpExtSyncookiesRecv"] == 1
    info = net.lst.accept().info()
    assert (info["snd_wscale"], info["sack"], info["ts"], info["mss"]) == (9, True, True, 1300 - 12)


def test_cookie_without_client_timestamps_loses_sack_and_wscale():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"])
    sa = net.send(syn(40000, ts=None))[0][0]
    o = sa.options
    assert (o.mss, o.sack_ok, o.wscale, o.ts) == (1460, False, None, None)
    net.send(ack_of(sa, ts=False), at=0.1)
    info = net.lst.accept().info()
    assert (info["snd_wscale"], info["rcv_wscale"], info["sack"], info["ts"]) == (0, 0, False, False)


def test_cookie_ecn_only_with_timestamps():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"])
    s = syn(40000)
    s.flags |= ECE | 0x80
    assert net.send(s)[0][0].flags == SYN | ACK | ECE
    s = syn(40001, ts=None)
    s.flags |= ECE | 0x80
    assert net.send(s)[0][0].flags == SYN | ACK


def test_invalid_cookie_rst_and_the_120s_gate():
    net = Net("linux-5.10", backlog=0)
    net.send(syn(40000), at=0.0)                  # a cookie: the listener "overflowed" at t=0
    forged = Segment(CLI, SRV, 40001, PORT, seq=77, ack=12345, flags=ACK)
    out, delta = net.send(forged, at=10.0)
    assert [s.flags for s in out] == [RST] and delta["TcpExtSyncookiesFailed"] == 1
    out, delta = net.send(forged, at=119.0)
    assert delta["TcpExtSyncookiesFailed"] == 1
    out, delta = net.send(forged, at=121.0)      # more than 120 s after the last overflow
    assert [s.flags for s in out] == [RST] and "TcpExtSyncookiesFailed" not in delta


def test_valid_cookie_ack_with_full_accept_queue_is_dropped_without_state():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"], backlog=0)
    handshake(net, 40000)
    # a cookie SYN-ACK sent before the queue filled: build it on a twin listener's secret
    twin = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2"], backlog=0)
    sa = twin.send(syn(40001))[0][0]
    net.lst.last_overflow = 0.0
    out, delta = net.send(ack_of(sa))
    assert out == [] and delta == {"TcpInSegs": 1, "TcpExtSyncookiesRecv": 1,
                                   "TcpExtListenOverflows": 1, "TcpExtListenDrops": 1}
    assert net.lst.queue_lengths()["syn"] == 0 and net.lst.queue_lengths()["accept"] == 1


@pytest.mark.parametrize("profile,child_ws", [("linux-5.4", 7), ("linux-5.10", 1)])
def test_worked_example_so_rcvbuf_102400(profile, child_ws):
    net = Net(profile, ["net.ipv4.tcp_syncookies=2"], rcvbuf=102400)
    assert net.lst.rcvbuf == 204800 and net.lst.rcvbuf_locked
    sa = net.send(syn(40000, mss=1460, ws=7, ts=(5000, 0)))[0][0]
    assert sa.options.wscale == 1
    net.send(ack_of(sa), at=0.01)
    child = net.lst.accept()
    assert child.path == "cookie" and child.info()["rcv_wscale"] == child_ws


def test_worked_example_normal_path_is_never_buggy():
    net = Net("linux-5.4", rcvbuf=102400)
    sa, _, _ = handshake(net, 40000)
    assert sa.options.wscale == 1 and net.lst.accept().info()["rcv_wscale"] == 1


# ---- views and close -------------------------------------------------------------------

def test_queue_lengths_and_close():
    net = Net(backlog=8)
    handshake(net, 40000)
    net.send(syn(40001), at=0.5)
    q = net.lst.queue_lengths()
    assert (q["accept"], q["syn"], q["young"], q["backlog"]) == (1, 1, 1, 8)
    assert q["requests"] == [(CLI, 40001, 0, False, 1.5)]
    net.lst.close(1.0)
    out = net.stack.take_output()
    assert [s.flags & RST for s in out] == [RST]              # the unaccepted child is reset
    assert net.lst.queue_lengths()["syn"] == 0 and net.stack.next_deadline() is None
    out, _ = net.send(syn(40002))
    assert [s.flags for s in out] == [RST | ACK]               # no listener any more


def test_bad_socket_options_are_clear_errors():
    st = Stack(get_profile("linux-5.10"), encoder=SegmentRecorder())
    with pytest.raises(ValueError):
        LinuxListener(st, port=1, backlog=1, defer_accept=-1)
    with pytest.raises(ValueError):
        LinuxListener(st, port=1, backlog=1, synack_retries=0)


def test_wrong_ack_during_overflow_also_fails_as_a_cookie():
    net = Net("linux-5.10", backlog=1)
    sa = net.send(syn(40000))[0][0]
    net.send(syn(40001))                          # queue full: a cookie, overflow stamped
    bad = ack_of(sa)
    bad.ack = (bad.ack + 1) & 0xFFFFFFFF
    out, delta = net.send(bad, at=0.1)
    assert [s.flags for s in out] == [RST] and delta["TcpExtSyncookiesFailed"] == 1
    assert net.lst.queue_lengths()["syn"] == 1


def test_pre_4_4_relisten_does_not_resize_the_syn_table():
    net = Net("linux-3.10", ["net.ipv4.tcp_syncookies=0"], backlog=4)    # table of 16
    net.lst.relisten(100)
    for i in range(16):
        assert len(net.send(syn(40000 + i))[0]) == 1
    out, delta = net.send(syn(41000))
    assert out == [] and delta["TcpExtTCPReqQFullDrop"] == 1


def test_ecn_requested_and_granted_on_the_normal_path():
    net = Net("linux-5.10")
    s = syn(40000)
    s.flags |= ECE | 0x80
    sa = net.send(s)[0][0]
    assert sa.flags == SYN | ACK | ECE
    off = Net("linux-5.10", ["net.ipv4.tcp_ecn=0"])
    assert off.send(s)[0][0].flags == SYN | ACK


def test_gvisor_contrast_offers_no_window_scaling_on_cookies():
    net = Net("linux-5.10", ["net.ipv4.tcp_syncookies=2", "model.cookie_wscale_mode=gvisor"])
    sa = net.send(syn(40000))[0][0]
    assert sa.options.wscale is None and sa.options.ts is not None
    net.send(ack_of(sa), at=0.01)
    info = net.lst.accept().info()
    assert (info["snd_wscale"], info["rcv_wscale"]) == (0, 0)
