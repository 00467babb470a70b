"""Fast paths produce the slow paths' bytes.

A cookie SYN-ACK built from a template (a stack with the default ``PacketEncoder``) must equal
``codec.build`` of the Segment a ``SegmentRecorder`` stack queues for the same fields, for any
SYN option combination, sysctls and clock; and the counters too.
"""
from hypothesis import given, settings
from hypothesis import strategies as st

from tuntcp.host.stack import Stack
from tuntcp.host.encode import SegmentRecorder
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, CWR, ECE, SYN, Segment, TcpOptions

SRV, CLI, PORT = 0x0A000001, 0x0A000002, 8080

u32 = st.integers(0, 0xFFFFFFFF)
syn_opts = st.builds(
    TcpOptions,
    mss=st.none() | st.integers(0, 0xFFFF),
    wscale=st.none() | st.integers(0, 255),
    sack_ok=st.booleans(),
    ts=st.none() | st.tuples(u32, u32),
)
sysctls = st.fixed_dictionaries({
    "net.ipv4.tcp_timestamps": st.sampled_from([0, 1, 2]),
    "net.ipv4.tcp_sack": st.sampled_from([0, 1]),
    "net.ipv4.tcp_window_scaling": st.sampled_from([0, 1]),
    "net.ipv4.tcp_ecn": st.sampled_from([0, 1, 2]),
    "model.cookie_wscale_mode": st.sampled_from(["linux", "gvisor"]),
})


def both(profile, overrides, rcvbuf=None):
    p = get_profile(profile, {"net.ipv4.tcp_syncookies": 2, **overrides})
    fast = Stack(p, addrs={SRV}, secret=b"0123456789abcdef")
    slow = Stack(p, addrs={SRV}, secret=b"0123456789abcdef",
                 encoder=SegmentRecorder())
    for s in (fast, slow):
        s.listen(PORT, 128, rcvbuf=rcvbuf)
    return fast, slow


@settings(max_examples=300, deadline=None)
@given(opts=syn_opts, knobs=sysctls, sport=st.integers(1, 0xFFFF), isn=u32,
       ecn=st.booleans(), now=st.floats(0, 1e6, allow_nan=False),
       profile=st.sampled_from(["linux-6.1", "linux-6.12", "linux-4.9", "linux-3.10"]),
       rcvbuf=st.none() | st.integers(1, 1 << 22))
def test_cookie_synack_fast_equals_slow(opts, knobs, sport, isn, ecn, now, profile, rcvbuf):
    fast, slow = both(profile, knobs, rcvbuf)
    syn = Segment(CLI, SRV, sport, PORT, seq=isn, flags=SYN | (ECE | CWR if ecn else 0),
                  window=64240, options=opts)
    fast.receive(codec.build(syn), now)
    slow.receive(codec.build(syn), now)
    got = fast.take_output()
    want = [codec.build(s) for s in slow.take_output()]
    assert got == want and len(got) == 1
    assert fast.counters == slow.counters
    assert fast.counters["TcpExtSyncookiesSent"] == 1


def test_fast_synack_keeps_order_with_other_output():
    """Packets from the fast path and Segments from emit() leave in the order they were made."""
    fast, _ = both("linux-6.1", {})
    fast.receive(codec.build(Segment(CLI, SRV, 1, 9999, seq=5, flags=SYN)), 1.0)      # RST
    fast.receive(codec.build(Segment(CLI, SRV, 2, PORT, seq=5, flags=SYN)), 1.0)      # SYN-ACK
    fast.receive(codec.build(Segment(CLI, SRV, 3, 9999, seq=5, flags=SYN)), 1.0)      # RST
    flags = [codec.parse(p).flags for p in fast.take_output()]
    assert flags == [0x14, SYN | ACK, 0x14]


def test_fast_synack_follows_a_ttl_change():
    fast, slow = both("linux-6.1", {})
    fast.ttl = slow.ttl = 7
    syn = codec.build(Segment(CLI, SRV, 2, PORT, seq=5, flags=SYN))
    fast.receive(syn, 1.0)
    slow.receive(syn, 1.0)
    got = fast.take_output()
    assert got == [codec.build(s) for s in slow.take_output()]
    assert codec.parse(got[0]).ttl == 7


@settings(max_examples=500, deadline=None)
@given(ts=st.booleans(), sack=st.booleans(), ws=st.none() | st.integers(0, 14),
       tsv=st.tuples(u32, u32), saddr=u32, daddr=u32, sport=st.integers(0, 0xFFFF),
       dport=st.integers(0, 0xFFFF), seq=u32, ack=u32, window=st.integers(0, 0xFFFF),
       mss=st.integers(0, 0xFFFF), ttl=st.integers(0, 255), ecn=st.booleans())
def test_synack_template_equals_build(ts, sack, ws, tsv, saddr, daddr, sport, dport, seq, ack,
                                      window, mss, ttl, ecn):
    flags = SYN | ACK | (ECE if ecn else 0)
    t = codec.SynAckTemplate(sport, mss, ttl)
    got = t.build(saddr, daddr, dport, seq, ack, flags, window, ws, sack, tsv if ts else None)
    seg = Segment(saddr, daddr, sport, dport, seq, ack, flags, window,
                  TcpOptions(mss, ws, sack, tsv if ts else None), ttl=ttl)
    assert got == codec.build(seg)


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=3000), pos=st.integers(0, 1 << 16), val=st.integers(0, 255),
       corrupt=st.booleans(), pad=st.integers(0, 3))
def test_parse_checksum_verdict_equals_reference(payload, pos, val, corrupt, pad):
    """parse() reads the packet little-endian for the TCP checksum; its verdict must be the
    big-endian RFC 1071 reference's (checksum.tcp_checksum_ok), odd and even lengths, with
    link padding after the IP total length."""
    from tuntcp.wire.checksum import tcp_checksum_ok
    pkt = bytearray(codec.build(Segment(CLI, SRV, 1, 2, 3, 4, ACK, 5, payload=payload)))
    if corrupt:        # a TCP header or payload byte, but neither the IP header nor the data offset
        i = 20 + pos % (len(pkt) - 20)
        pkt[i if i != 32 else 33] = val
    ok = tcp_checksum_ok(CLI, SRV, bytes(pkt[20:]))
    pkt += bytes(pad)
    try:
        seg = codec.parse(bytes(pkt))
    except codec.Malformed as e:
        assert not ok and e.reason == codec.TCP_CSUM_ERRORS
    else:
        assert ok and bytes(seg.payload) == bytes(pkt[20 + 20:len(pkt) - pad])


def test_receive_queue_keeps_packet_views_but_copies_mutable_memory():
    """In-order data is queued without a copy when it is a view of an immutable packet; data
    in memory that may change later (a bytearray, a view of one) is copied on the way in."""
    from tuntcp.core.conn import RecvQueue
    pkt = bytes(range(40))
    buf = bytearray(b"abcdef")
    q = RecvQueue()
    view = memoryview(pkt)[20:30]
    q += view
    q += memoryview(buf)[1:4]
    q += buf
    assert q.chunks[0] is view                      # no copy
    buf[:] = b"XXXXXX"                              # the reader's buffer is reused
    assert len(q) == 10 + 3 + 6
    assert q.take(12) == pkt[20:30] + b"bc"
    assert bytes(q) == b"d" + b"abcdef"


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 1448), min_size=1, max_size=40), ts=st.booleans(),
       read_every=st.integers(1, 8))
def test_acks_from_templates_equal_build(sizes, ts, read_every):
    """A building stack sends a connection's ACKs, window updates and FIN from its AckTemplate;
    the bytes equal build() of what a SegmentRecorder stack emits for the same conversation."""
    p = get_profile("linux-6.1")
    stacks = [Stack(p, addrs={SRV}, secret=b"0123456789abcdef", encoder=e)
              for e in (None, SegmentRecorder())]
    lsts = [s.listen(PORT, 128) for s in stacks]
    outs = ([], [])

    def feed(seg, now):
        for i, s in enumerate(stacks):
            s.receive(codec.build(seg), now)
            pkts = s.take_output() if i == 0 else [codec.build(x) for x in s.take_output()]
            outs[i].extend(pkts)

    o = TcpOptions(1460, 7, True, (1, 0)) if ts else TcpOptions(1460, 7, True)
    feed(Segment(CLI, SRV, 40000, PORT, 1000, 0, SYN, 64240, o), 1.0)
    sa = codec.parse(outs[0][0])
    tso = (lambda v: TcpOptions(ts=(v, sa.options.ts[0]))) if ts else (lambda v: TcpOptions())
    feed(Segment(CLI, SRV, 40000, PORT, 1001, sa.seq + 1, ACK, 502, tso(2)), 1.001)
    conns = [lst.accept() for lst in lsts]
    seq, now = 1001, 1.002
    for i, n in enumerate(sizes):
        feed(Segment(CLI, SRV, 40000, PORT, seq, sa.seq + 1, ACK, 502, tso(3 + i), bytes(n)), now)
        seq += n
        if i % read_every == 0:
            for s, c in zip(stacks, conns):
                c.recv(1 << 20, now)
            for i2, s in enumerate(stacks):
                outs[i2].extend(s.take_output() if i2 == 0 else
                                [codec.build(x) for x in s.take_output()])
        now += 0.001
    acks = sum(1 for x in outs[0] if len(x) <= 52 and not codec.parse(x).flags & SYN)
    assert bool(stacks[0].encoder.templates) == (acks > 0)  # a template after the first ACK
    for c in conns:
        c.close(now)
    for i2, s in enumerate(stacks):
        s.on_timers(now + 1.0)
        outs[i2].extend(s.take_output() if i2 == 0 else [codec.build(x) for x in s.take_output()])
    assert outs[0] == outs[1] and len(outs[0]) > 2
