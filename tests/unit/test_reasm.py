"""Out-of-order queue (receiver) and SACK scoreboard (sender), mod 2^32."""
import pytest
from hypothesis import given, settings, strategies as st

from tuntcp.core.reasm import Reassembly, Scoreboard
from tuntcp.core.seq import seq_add

PAYLOAD = bytes(range(256)) * 40


@pytest.fixture(params=[1000, 0xFFFFFF00])        # plain and across the wrap
def isn(request):
    return request.param


def seg(isn, a, b):
    """(seq, bytes) for stream offsets [a, b)."""
    return seq_add(isn, a), PAYLOAD[a:b]


def test_in_order_passes_straight_through(isn):
    r = Reassembly()
    out, nxt = r.insert(*seg(isn, 0, 100), isn)
    assert out == PAYLOAD[:100] and nxt == seq_add(isn, 100)
    assert r.ooo_bytes == 0 and r.sack_blocks() == []


def test_hole_then_fill_delivers_everything(isn):
    r = Reassembly()
    assert r.insert(*seg(isn, 100, 200), isn) == (b"", isn)
    assert r.insert(*seg(isn, 300, 400), isn) == (b"", isn)
    assert r.ooo_bytes == 200
    assert r.sack_blocks() == [(seq_add(isn, 300), seq_add(isn, 400)), (seq_add(isn, 100), seq_add(isn, 200))]
    out, nxt = r.insert(*seg(isn, 0, 100), isn)
    assert out == PAYLOAD[:200] and nxt == seq_add(isn, 200)
    assert r.sack_blocks() == [(seq_add(isn, 300), seq_add(isn, 400))]
    out, nxt = r.insert(*seg(isn, 200, 300), nxt)
    assert out == PAYLOAD[200:400] and nxt == seq_add(isn, 400)
    assert r.ooo_bytes == 0 and r.sack_blocks() == []


def test_old_and_overlapping_data_is_trimmed(isn):
    r = Reassembly()
    nxt = seq_add(isn, 100)
    assert r.insert(*seg(isn, 0, 100), nxt) == (b"", nxt)          # pure duplicate
    out, nxt2 = r.insert(*seg(isn, 50, 150), nxt)                   # half old
    assert out == PAYLOAD[100:150] and nxt2 == seq_add(isn, 150)


@pytest.mark.parametrize("queued, new, stream", [
    # (queued segments), new segment, bytes from 110 on once 100..110 arrives in order
    ([(110, b"A" * 10)], (115, b"b" * 10), b"A" * 10 + b"b" * 5),       # queued starts lower: it wins
    ([(110, b"A" * 10)], (105, b"c" * 10), b"c" * 5 + b"A" * 5),        # newcomer starts lower: it wins
    ([(110, b"A" * 10)], (110, b"d" * 15), b"d" * 15),                  # same start, longer: replaces
    ([(110, b"A" * 10)], (110, b"e" * 8), b"A" * 10),                   # same start, covered: dropped
    ([(110, b"A" * 10), (130, b"B" * 10)], (115, b"n" * 20), b"A" * 10 + b"n" * 15 + b"B" * 5),
])
def test_overlaps_resolve_like_linux_ofo_queue(queued, new, stream):
    """tcp_data_queue_ofo / tcp_ofo_queue: the copy with the lower start wins the overlap."""
    r = Reassembly()
    for seq, data in queued + [new]:
        r.insert(seq, data, 100)
    out, nxt = r.insert(100, b"x" * 10, 100)
    tail = stream[:nxt - 110] if nxt > 110 else b""
    assert out == b"x" * 10 + tail
    assert r.ooo_bytes == sum(e - s for s, e in r.sack_blocks(limit=100))


def test_in_order_data_wins_over_queued_bytes():
    r = Reassembly()
    r.insert(110, b"A" * 10, 100)
    out, nxt = r.insert(100, b"x" * 15, 100)
    assert out == b"x" * 15 + b"A" * 5 and nxt == 120


def test_segment_bridging_two_blocks_merges_them(isn):
    r = Reassembly()
    r.insert(*seg(isn, 100, 200), isn)
    r.insert(*seg(isn, 300, 400), isn)
    r.insert(*seg(isn, 150, 350), isn)
    assert r.sack_blocks() == [(seq_add(isn, 100), seq_add(isn, 400))]
    assert r.ooo_bytes == 300
    out, nxt = r.insert(*seg(isn, 0, 100), isn)
    assert out == PAYLOAD[:400]


def test_sack_order_most_recent_first_and_limit():
    r = Reassembly()
    for a in (100, 300, 500, 700, 900):
        r.insert(a, b"z" * 50, 0)
    assert [b[0] for b in r.sack_blocks()] == [900, 700, 500, 300]
    assert [b[0] for b in r.sack_blocks(limit=3)] == [900, 700, 500]
    r.insert(340, b"z" * 20, 0)                        # extends 300's block: it becomes first
    assert r.sack_blocks()[0] == (300, 360)
    r.insert(500, b"z" * 50, 0)                        # a duplicate refreshes recency too
    assert r.sack_blocks()[0] == (500, 550)


def test_limit_prunes_far_right_then_drops():
    r = Reassembly(limit_bytes=250)
    r.insert(100, b"a" * 100, 0)
    r.insert(400, b"b" * 100, 0)
    r.insert(250, b"c" * 100, 0)                       # prunes [400, 500) to fit
    assert r.pruned == 1 and r.ooo_bytes == 200
    assert sorted(r.sack_blocks()) == [(100, 200), (250, 350)]
    r.insert(600, b"d" * 100, 0)                       # beyond everything: dropped
    assert r.drops == 1 and r.ooo_bytes == 200
    out, nxt = r.insert(0, b"x" * 100, 0)              # in-order data is never limited
    assert out == b"x" * 100 + b"a" * 100 and nxt == 200


def test_clear():
    r = Reassembly()
    r.insert(10, b"q", 0)
    r.clear()
    assert r.ooo_bytes == 0 and r.sack_blocks() == []


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 900), st.integers(1, 120)), min_size=1, max_size=30),
       st.sampled_from([0, 0xFFFFFC00]))
def test_any_arrival_order_reassembles_the_stream(pieces, isn):
    r = Reassembly()
    nxt, got = isn, b""
    for a, n in pieces + [(0, 1024)]:                  # a final full copy closes every hole
        out, nxt = r.insert(seq_add(isn, a), PAYLOAD[a:a + n], nxt)
        got += out
    assert got == PAYLOAD[:1024] and nxt == seq_add(isn, 1024)
    assert r.ooo_bytes == 0


def test_scoreboard_records_and_coalesces(isn):
    sb = Scoreboard()
    una, nxt = isn, seq_add(isn, 10000)
    s = lambda a, b: (seq_add(isn, a), seq_add(isn, b))
    assert sb.on_sack([s(1000, 2000)], una, nxt) == 1000
    assert sb.on_sack([s(3000, 4000), s(1500, 2500)], una, nxt) == 1500
    assert sb.sacked_bytes == 2500
    assert sb.is_sacked(*s(1000, 2500)) and not sb.is_sacked(*s(2000, 3500))
    assert sb.holes(una, nxt) == [s(0, 1000), s(2500, 3000)]
    sb.on_sack([s(2500, 3000)], una, nxt)
    assert sb.holes(una, nxt) == [s(0, 1000)] and sb.sacked_bytes == 3000
    sb.clear_below(seq_add(isn, 2000))
    assert sb.sacked_bytes == 2000 and sb.holes(seq_add(isn, 2000), nxt) == []


def test_scoreboard_rejects_bogus_blocks(isn):
    sb = Scoreboard()
    una, nxt = seq_add(isn, 1000), seq_add(isn, 5000)
    s = lambda a, b: (seq_add(isn, a), seq_add(isn, b))
    sb.on_sack([s(500, 900)], una, nxt)                # D-SACK below snd_una
    sb.on_sack([s(4000, 6000), s(2000, 1500), s(1000, 2000), s(800, 1500)], una, nxt)
    assert sb.dsacks == 1 and sb.invalid == 4 and sb.sacked_bytes == 0


def test_is_lost_rfc6675():
    sb = Scoreboard()
    sb.on_sack([(2000, 3000), (4000, 4500)], 0, 10000)
    assert sb.is_lost(0, mss=1000) is False            # 1500 SACKed above: not > 2 * 1000
    sb.on_sack([(6000, 6100)], 0, 10000)
    assert sb.is_lost(0, mss=1000) is True             # three discontiguous ranges above
    assert sb.is_lost(5000, mss=1000) is False


@settings(max_examples=200)
@given(st.lists(st.lists(st.tuples(st.integers(-50, 1100), st.integers(-10, 200)), max_size=4), max_size=12),
       st.sampled_from([0, 0xFFFFFE00]), st.integers(0, 300))
def test_scoreboard_matches_a_byte_set_model(acks, isn, una_off):
    """Against a plain set of SACKed stream offsets: validity rules, coalescing, holes, wrap."""
    una, nxt = seq_add(isn, una_off), seq_add(isn, 1000)
    sb, model = Scoreboard(), set()
    for blocks in acks:
        real = [(seq_add(isn, a), seq_add(isn, a + n)) for a, n in blocks]
        sb.on_sack(real, una, nxt)
        for a, n in blocks:
            if n > 0 and una_off < a and a + n <= 1000:
                model.update(range(a, a + n))
    assert sb.sacked_bytes == len(model)
    for a in range(una_off, 1000, 37):
        assert sb.is_sacked(seq_add(isn, a), seq_add(isn, a + 5)) == all(x in model for x in range(a, a + 5))
    top = max(model, default=None)
    holes = [] if top is None else [x for x in range(una_off, top) if x not in model]
    got = [x for l, r in sb.holes(una, nxt) for x in range((l - isn) % 2**32, (r - isn) % 2**32)]
    assert got == holes


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 80)), min_size=1, max_size=40),
       st.sampled_from([0, 0xFFFFFF00]))
def test_queue_invariants_against_a_byte_model(pieces, isn):
    """After every insert: blocks sorted, disjoint and not adjacent; ooo_bytes is their size;
    their union is exactly the received bytes above rcv_nxt; SACK edges are block edges."""
    r, nxt, model, got = Reassembly(), isn, set(), b""
    for a, n in pieces:
        out, nxt = r.insert(seq_add(isn, a), PAYLOAD[a:a + n], nxt)
        got += out
        model.update(range(a, a + n))
        done = (nxt - isn) % 2**32
        assert got == PAYLOAD[:done]
        spans = [((s - isn) % 2**32, (e - isn) % 2**32) for s, e in r.sack_blocks(limit=100)]
        assert sorted(spans) == sorted(set(spans))
        ordered = sorted(spans)
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(ordered, ordered[1:]))
        held = {x for s, e in spans for x in range(s, e)}
        assert held == {x for x in model if x >= done}
        assert r.ooo_bytes == len(held)


def test_rebase_when_rcv_nxt_moves_far():
    r = Reassembly()
    r.insert(1000, b"B" * 10, 0)
    far = 1 << 30                                   # the caller consumed 1 GiB in order meanwhile
    r.clear()
    r.insert(far + 500, b"C" * 10, far - 100)       # base = far - 100
    r.insert(far + 700, b"D" * 10, far + 200)       # key 900 ... then rk = 300: no rebase yet
    out, nxt = r.insert(far + 200, b"x" * 300, far + 200)
    assert out == b"x" * 300 + b"C" * 10 and nxt == far + 510
    r2 = Reassembly()
    r2.insert(100, b"a" * 10, 0)
    r2.insert(2**31 - 50, b"b", 2**30 + 7)          # rk >= 2^30: keys rebased, block at 100 is old
    assert r2.sack_blocks() == [(2**31 - 50, 2**31 - 49)]
    out, nxt = r2.insert(2**30 + 7, b"c" * 10, 2**30 + 7)
    assert out == b"c" * 10 and r2.ooo_bytes == 1


def test_caller_moved_rcv_nxt_into_a_block():
    r = Reassembly()
    r.insert(100, b"abcdefghij", 0)
    out, nxt = r.insert(200, b"z", 105)             # rcv_nxt moved to 105 by the caller
    assert out == b"fghij" and nxt == 110 and r.ooo_bytes == 1
