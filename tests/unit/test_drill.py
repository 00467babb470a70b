"""The packetdrill-style DSL (tests/unit/drill.py): parser, matcher and timing, against a tiny
scripted fake stack. The fake's ISN sits just below 2^32 so relative numbers cross the wrap."""
from tuntcp.host.encode import SegmentRecorder
import pytest
from hypothesis import given, settings, strategies as st

from drill import ANY, Drill, DrillFailure, DrillSyntaxError, parse, payload
from tuntcp.wire.segment import ACK, PSH, SYN, Segment, TcpOptions

ISN = 0xFFFFFF80


class FakeStack:
    """Answers a SYN with a SYN-ACK at once (retransmitted at 1 s, 3 s), then ACKs in-order data
    after a 40 ms delayed-ACK timer. ``quick_ack`` ACKs data at once instead."""

    def __init__(self, quick_ack=False, win=65535):
        self.out = []
        self.quick_ack = quick_ack
        self.win = win
        self.synack_at = None
        self.synack_tries = 0
        self.delack_at = None
        self.peer = None
        self.rcv_nxt = 0
        self.ts_recent = 0
        self.got = b""
        self.now = 0.0

    def _seg(self, flags, seq, opts):
        laddr, lport, raddr, rport = self.peer
        return Segment(laddr, raddr, lport, rport, seq=seq, ack=self.rcv_nxt, flags=flags,
                       window=self.win, options=opts)

    def _tsval(self):
        return int(self.now * 1000) + 7

    def _synack(self):
        o = TcpOptions(mss=1460, sack_ok=True, ts=(self._tsval(), self.ts_recent), wscale=7)
        self.out.append(self._seg(SYN | ACK, ISN, o))

    def _ack(self):
        self.out.append(self._seg(ACK, (ISN + 1) & 0xFFFFFFFF, TcpOptions(ts=(self._tsval(), self.ts_recent))))

    def receive_segment(self, seg, now):
        self.now = now
        if seg.options.ts:
            self.ts_recent = seg.options.ts[0]
        if seg.flags & SYN:
            self.peer = seg.key_in()
            self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
            self._synack()
            self.synack_at = now + 1.0
            return
        if seg.flags & ACK and seg.ack == (ISN + 1) & 0xFFFFFFFF:
            self.synack_at = None
        if seg.payload and seg.seq == self.rcv_nxt:
            self.got += bytes(seg.payload)
            self.rcv_nxt = (self.rcv_nxt + len(seg.payload)) & 0xFFFFFFFF
            if self.quick_ack:
                self._ack()
            elif self.delack_at is None:
                self.delack_at = now + 0.04

    def next_deadline(self):
        ds = [d for d in (self.synack_at, self.delack_at) if d is not None]
        return min(ds) if ds else None

    def on_timers(self, now):
        self.now = now
        if self.delack_at is not None and now >= self.delack_at:
            self.delack_at = None
            self._ack()
        if self.synack_at is not None and now >= self.synack_at:
            self.synack_tries += 1
            self._synack()
            self.synack_at = now + (2.0 ** self.synack_tries)

    def take_output(self):
        out, self.out = self.out, []
        return out


HANDSHAKE = """
0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 100,nop,wscale 7>
+.1   < . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr *>
"""


# ---------------------------------------------------------------- parser

def test_parse_times_flags_numbers_and_options():
    lines = parse(HANDSHAKE + "+.04 > P. 1:1(0) ack 1001 win * <...>  // a comment\n+0 %accept 3 x\n")
    assert [ln.time for ln in lines] == [0.0, 0.0, pytest.approx(0.1), pytest.approx(0.14), pytest.approx(0.14)]
    syn = lines[0].seg
    assert (syn.flags, syn.start, syn.end, syn.win) == (SYN, 0, 0, 65535)
    assert syn.options == {"mss": 1460, "sack_ok": True, "ts": (100, 0), "wscale": 7}
    assert lines[1].seg.options["ts"] == (ANY, 100)
    assert lines[2].seg.options["ts"] == (200, ANY)           # inbound ecr * = echo
    assert lines[3].seg.flags == PSH | ACK and lines[3].seg.win == ANY and lines[3].seg.options == ANY
    assert (lines[4].kind, lines[4].action, lines[4].args) == ("%", "accept", ("3", "x"))


@pytest.mark.parametrize("line, msg", [
    ("0 < Q 0:0(0) win 1", "unknown flag 'Q'"),
    ("0 < . 1:11(5) ack 1", "inconsistent"),
    ("0 < . 1:1(0) win 5", "needs 'ack N'"),
    ("0 < . 1:1(0) ack *", "only allowed in expected"),
    ("0 > . 1:1(0) ack 1 <mss>", "unknown or malformed option 'mss'"),
    ("0 > . 1:1(0) ack 1 <mss 1460", "must end with '>'"),
    ("0 > . 1:1(0) bogus 3", "expected 'ack N'"),
    ("+.1 < S 0:0(0)", "first line needs an absolute time"),
    ("1.0 < S 0:0(0)\n0.5 < S 0:0(0)", "time goes backwards"),
    ("x < S 0:0(0)", "bad time 'x'"),
    ("0 S 0:0(0)", "expected '<', '>' or '%action'"),
    ("0 < S 0:0", "START:END(LEN)"),
    ("0 < . 1:1(0) ack 1 <...>", "only makes sense in an expected"),
    ("0 > . 1:1(0) ack 1 <sack 1-2>", "sack block must be L:R"),
])
def test_parse_errors_name_the_line(line, msg):
    with pytest.raises(DrillSyntaxError, match="line [12]: .*" + msg.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*").replace("[", r"\[")):
        parse(line)


def test_unknown_action_is_reported_before_running():
    fake = FakeStack()
    with pytest.raises(DrillSyntaxError, match=r"unknown action %accept; known: close"):
        Drill(fake).run(HANDSHAKE + "+0 %accept\n", actions={"close": lambda d: None})
    assert fake.out == [] and fake.peer is None               # nothing was injected


# ---------------------------------------------------------------- runs that pass

def test_handshake_data_and_delayed_ack():
    fake = FakeStack()
    d = Drill(fake).run(HANDSHAKE + """
+0    < P. 1:1001(1000) ack 1 win 513 <nop,nop,TS val 300 ecr *>
+0    < P. 1001:1501(500) ack 1 win 513 <nop,nop,TS val 301 ecr *>
+.04  > . 1:1(0) ack 1501 win 65535 <nop,nop,TS val 147 ecr 301>
""")
    assert d.local_isn == ISN                                   # learned from the SYN-ACK
    assert fake.got == payload(0, 1500)
    assert fake.rcv_nxt == 1501
    # ecr * echoed the SYN-ACK's TSval (7 ms at t=0): the fake recorded the inbound segments.
    injected = [seg for _, kind, seg in d.transcript if kind == "<"]
    assert injected[1].options.ts == (200, 7)
    assert injected[1].ack == (ISN + 1) & 0xFFFFFFFF            # relative ack crossed the wrap
    assert [kind for _, kind, _ in d.transcript] == ["<", ">", "<", "<", "<", ">"]


def test_timers_fire_at_their_own_deadlines_between_lines():
    # SYN-ACK retransmits at 1 s and 3 s even though the script jumps straight to those times.
    Drill(FakeStack()).run("""
0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65535 <...>
1.000 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1007 ecr 100,wscale 7>
+2    > S. 0:0(0) ack 1 win 65535 <...>
+.5   < . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr *>
""", settle=10.0)


def test_actions_get_the_drill_and_arguments():
    calls = []
    Drill(FakeStack()).run(HANDSHAKE + "+.2 %poke 1 two\n", actions={"poke": lambda d, *a: calls.append((d.now, a))})
    assert calls == [(pytest.approx(0.3), ("1", "two"))]


def test_remote_isn_and_second_flow_by_port():
    fake = FakeStack(quick_ack=True)
    d = Drill(fake, remote_isn=0xFFFFFFFF).run("""
0 < S 0:0(0) win 1000 port 40001
+0 > S. 0:0(0) ack 1 win * port 40001 <...>
+.01 < . 1:101(100) ack 1 win 1000 port 40001
+0 > . 1:1(0) ack 101 win 65535 port 40001 <TS val * ecr 0>
""")
    assert fake.peer[3] == 40001 and fake.rcv_nxt == 100        # 0xffffffff + 101 wraps to 100
    assert d.flow(40001).local_isn == ISN


def test_start_offset_shifts_the_clock():
    fake = FakeStack()
    d = Drill(fake, start=1000.0).run(HANDSHAKE)
    assert d.now == pytest.approx(1000.1)


# ---------------------------------------------------------------- runs that must fail

def fail(script, fake=None, **kw):
    with pytest.raises(DrillFailure) as ei:
        Drill(fake or FakeStack()).run(script, **kw)
    return str(ei.value)


DATA = HANDSHAKE + "+0 < P. 1:1001(1000) ack 1 win 513 <nop,nop,TS val 300 ecr *>\n"


def test_late_segment_fails_with_both_lines():
    msg = fail(DATA + "+0 > . 1:1(0) ack 1001 win * <TS val * ecr 300>\n")
    assert "script line 6: +0 > . 1:1(0) ack 1001 win * <TS val * ecr 300>" in msg
    assert "no segment at t=0.100000; the next one came later" in msg
    assert f"expected (t=0.100000): . seq {ISN + 1} ack 1001 win * len 0 <TS val * ecr 300>" in msg
    assert f"got      (t=0.140000): . seq {ISN + 1} ack 1001 win 65535 len 0 <TS val 147 ecr 300>" in msg
    assert "got as script: . 1:1(0) ack 1001 win 65535 <TS val 147 ecr 300>" in msg


def test_early_segment_fails():
    msg = fail(DATA + "+.1 > . 1:1(0) ack 1001 win * <...>\n", FakeStack(quick_ack=True))
    assert "time: emitted early at t=0.100000, scripted t=0.200000" in msg


def test_field_mismatches_are_listed():
    msg = fail(DATA + "+.04 > P. 1:1(0) ack 1000 win 1000 <nop,nop,TS val * ecr 299>\n")
    assert "flags . != P." in msg and "ack 1001 != 1000" in msg and "win 65535 != 1000" in msg
    assert "TS ecr 300 != 299" in msg


def test_options_are_strict_unless_skipped():
    msg = fail(DATA + "+.04 > . 1:1(0) ack 1001 win *\n")
    assert "unexpected option TS" in msg
    msg = fail(HANDSHAKE.replace("<mss 1460,sackOK,TS val * ecr 100,nop,wscale 7>", "<mss 536,TS val * ecr 100>"))
    assert "mss 1460 != 536" in msg and "sackOK unexpected" in msg and "unexpected option wscale 7" in msg
    msg = fail(DATA + "+.04 > . 1:1(0) ack 1001 win * <TS val * ecr *,sack 1:2>\n")
    assert "sack () != ((1, 2),)" in msg


def test_seq_and_length_mismatch():
    msg = fail(DATA + "+.04 > . 5:15(10) ack 1001 win * <...>\n")
    assert "seq 1 != 5" in msg and "len 0 != 10" in msg


def test_missing_segment_fails():
    msg = fail(HANDSHAKE + "+1 > . 1:1(0) ack 1 win * <...>\n")
    assert "no segment emitted by t=1.100000" in msg


def test_unexpected_segment_before_inject_fails():
    msg = fail(DATA + "+.1 < . 1:1(0) ack 1 win 513 <nop,nop,TS val 400 ecr *>\n")
    assert "unexpected segment emitted before this inject" in msg
    assert "got      (t=0.140000)" in msg


def test_unexpected_segment_before_action_fails():
    msg = fail(DATA + "+.1 %noop\n", actions={"noop": lambda d: None})
    assert "unexpected segment emitted before this action" in msg


def test_strict_end_and_settle():
    msg = fail(DATA + "+0 > . 1:1(0) ack 1001 win * <...>\n+0 < P. 1001:1002(1) ack 1 win 513 <TS val 5 ecr *>\n",
               FakeStack(quick_ack=True))
    assert "unexpected segment after the end of the script" in msg
    Drill(FakeStack()).run(HANDSHAKE.split("+.1")[0], strict=True)     # SYN-ACK rtx is 1 s away
    msg = fail(HANDSHAKE.split("+.1")[0], settle=2.0)
    assert "(settle 2.0s)" in msg and "got      (t=1.000000): S." in msg


# ---------------------------------------------------------------- the real stack

def real_stack():
    from tuntcp.host.stack import Stack
    from tuntcp.profiles import get_profile
    st = Stack(get_profile("linux-6.1"), addrs={0xC0000201}, secret=b"0123456789abcdef", encoder=SegmentRecorder())
    return st, st.listen(8080, 128)


def test_real_stack_passive_open_data_and_close():
    """Linux 6.1: SYN-ACK retransmitted at 1 s and 3 s (TCP_TIMEOUT_INIT doubling), quick ACK
    for the first data (tcp_event_data_recv: quickack mode), FIN on close, ACK of the peer's
    FIN; RTO falls back to 3 s because the SYN-ACK was retransmitted (RFC 6298 5.7), until the
    ACK of our FIN gives the first RTT sample (tcp_clean_rtx_queue times the FIN skb too):
    50 ms + max(2 * 50 ms, tcp_rto_min) = 250 ms."""
    st, lst = real_stack()
    box = {}

    def accept(d):
        box["c"] = lst.accept()
        box["rto0"] = box["c"].rto.rto

    def read(d, n):
        box["data"] = box["c"].recv(int(n), d.now)

    d = Drill(st).run("""
0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val * ecr 100,nop,wscale 7>
1.000 > S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val * ecr 100,nop,wscale 7>
3.000 > S. 0:0(0) ack 1 win 65160 <...>
+.1   < . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr *>
+0    %accept
+0    < P. 1:1001(1000) ack 1 win 513 <nop,nop,TS val 300 ecr *>
+0    > . 1:1(0) ack 1001 win * <nop,nop,TS val * ecr 300>
+.01  %read 5000
+0    %close
+0    > F. 1:1(0) ack 1001 win * <nop,nop,TS val * ecr 300>
+.05  < F. 1001:1001(0) ack 2 win 513 <nop,nop,TS val 400 ecr *>
+0    > . 2:2(0) ack 1002 win * <nop,nop,TS val * ecr 400>
""", actions={"accept": accept, "read": read, "close": lambda d: box["c"].close(d.now)}, settle=120.0)
    assert box["data"] == payload(0, 1000)
    assert box["rto0"] == 3.0
    assert box["c"].rto.rto == pytest.approx(0.25)
    synacks = [s for _, k, s in d.transcript if k == ">" and s.flags & SYN]
    assert [s.options.ts[0] - synacks[0].options.ts[0] for s in synacks] == [0, 1000, 3000]   # ms TS clock


@pytest.mark.parametrize("when, why", [
    ("2.000", "time: emitted early at t=1.000000, scripted t=2.000000"),
    ("0.500", "no segment at t=0.500000; the next one came later"),
])
def test_real_stack_wrong_timing_is_caught(when, why):
    st, _ = real_stack()
    with pytest.raises(DrillFailure) as ei:
        Drill(st).run(f"""
0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65160 <...>
{when} > S. 0:0(0) ack 1 win 65160 <...>
""")
    msg = str(ei.value)
    assert why in msg
    assert "got      (t=1.000000): S." in msg


def test_real_stack_out_of_order_data_is_sacked_most_recent_first():
    """Out-of-order data is ACKed at once with SACK blocks, newest block first (RFC 2018 §4,
    tcp_sack_new_ofo_skb); TS ecr stays at the last in-window TSval (tcp_replace_ts_recent)."""
    st, _ = real_stack()
    Drill(st).run("""
0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0    > S. 0:0(0) ack 1 win 65160 <...>
+.1   < . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr *>
+0    < P. 1001:2001(1000) ack 1 win 513 <nop,nop,TS val 300 ecr *>
+0    > . 1:1(0) ack 1 win * <nop,nop,TS val * ecr 200,nop,nop,sack 1001:2001>
+0    < P. 3001:4001(1000) ack 1 win 513 <nop,nop,TS val 301 ecr *>
+0    > . 1:1(0) ack 1 win * <nop,nop,TS val * ecr 200,nop,nop,sack 3001:4001 1001:2001>
+.01  < P. 1:1001(1000) ack 1 win 513 <nop,nop,TS val 302 ecr *>
+0    > . 1:1(0) ack 2001 win * <nop,nop,TS val * ecr 302,nop,nop,sack 3001:4001>
+.01  < P. 2001:3001(1000) ack 1 win 513 <nop,nop,TS val 303 ecr *>
+0    > . 1:1(0) ack 4001 win * <nop,nop,TS val * ecr 303>
""", settle=5.0)


def test_injected_sack_edges_are_relative_to_our_isn():
    fake = FakeStack()
    d = Drill(fake).run(HANDSHAKE + "+0 < . 1:1(0) ack 1 win 513 <nop,nop,TS val 201 ecr *,nop,nop,sack 1:1449 2897:4345>\n")
    seg = d.transcript[-1][2]
    assert seg.options.sack_blocks == ((0xFFFFFF81, 0x529), (0xAD1, 0x1079))   # ISN + edge, wrapped


def test_real_stack_active_open_and_send():
    """connect(): Linux SYN (win 64240 = 44 * 1460, mss, sackOK, TS, wscale 7), then a write
    is cut at the peer's MSS less the TS option (1400 - 12) with PSH on the last segment."""
    st, _ = real_stack()
    box = {}

    def connect(d):
        box["c"] = st.connect(d.laddr, d.raddr, d.rport, d.now, lport=d.lport)

    d = Drill(st, local=("192.0.2.1", 45000), remote=("192.0.2.2", 80)).run("""
0.000 %connect
+0    > S 0:0(0) win 64240 <mss 1460,sackOK,TS val * ecr 0,nop,wscale 7>
+.05  < S. 0:0(0) ack 1 win 65535 <mss 1400,sackOK,TS val 500 ecr *,nop,wscale 8>
+0    > . 1:1(0) ack 1 win * <nop,nop,TS val * ecr 500>
+0    %send 3000
+0    > . 1:1389(1388) ack 1 win * <nop,nop,TS val * ecr 500>
+0    > . 1389:2777(1388) ack 1 win * <nop,nop,TS val * ecr 500>
+0    > P. 2777:3001(224) ack 1 win * <nop,nop,TS val * ecr 500>
+.05  < . 1:1(0) ack 3001 win 300 <nop,nop,TS val 600 ecr *>
""", actions={"connect": connect, "send": lambda d, n: box["c"].send(b"q" * int(n), d.now)}, settle=5.0)
    assert box["c"].state == "ESTABLISHED"
    syn = d.transcript[1][2]
    assert d.transcript[2][2].options.ts[1] == syn.options.ts[0]      # ecr * echoed our TSval


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 255), st.integers(0, 65535),
       st.integers(0, 3000), st.booleans(), st.booleans(),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=4))
def test_rendered_segments_parse_back_and_match(lisn, seq_off, flags, win, n, ts, mss, sacks):
    """``Drill.relative(seg)`` (the 'got as script' line) is valid script that matches seg."""
    d = Drill(FakeStack(), remote_isn=12345)
    f = d.flow()
    f.local_isn = lisn
    o = TcpOptions(mss=1460 if mss else None, ts=(5, 6) if ts else None,
                   sack_blocks=tuple(((l + 12345) % 2**32, (r + 12345) % 2**32) for l, r in sacks))
    seg = Segment(d.laddr, d.raddr, d.lport, d.rport, seq=(lisn + seq_off) % 2**32,
                  ack=(12345 + 777) % 2**32, flags=flags, window=win, options=o, payload=b"z" * n)
    line = parse("0 > " + d.relative(seg))[0]
    assert d._mismatches(line.seg, seg, f) == []
