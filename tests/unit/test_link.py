"""The seeded link model: what goes in, what comes out, and when."""
import pytest

from tuntcp.harness.link import LinkModel


def pkts(n):
    return [i.to_bytes(4, "big") + b"payload" for i in range(n)]


def run(link, packets, spacing=0.001, horizon=10.0):
    """Push packets `spacing` apart, then drain; returns [(time, pkt)]."""
    out = []
    t = 0.0
    for p in packets:
        link.push(p, t)
        out += [(t, q) for q in link.pop_due(t)]
        t += spacing
    while link.next_deadline() is not None:
        t = link.next_deadline()
        assert t <= horizon
        out += [(t, q) for q in link.pop_due(t)]
    return out


def test_zero_config_passes_through_in_order_without_delay():
    link = LinkModel(seed=0)
    sent = pkts(100)
    got = []
    for i, p in enumerate(sent):
        link.push(p, now=i * 0.5)
        assert link.next_deadline() == i * 0.5
        got += link.pop_due(now=i * 0.5)
        assert link.next_deadline() is None
    assert got == sent
    assert link.stats == {"sent": 100, "delivered": 100, "dropped": 0, "duplicated": 0,
                          "reordered": 0, "corrupted": 0}


def test_burst_at_one_instant_keeps_order():
    link = LinkModel(seed=0)
    for p in pkts(50):
        link.push(p, 3.0)
    assert link.pop_due(3.0) == pkts(50)


def test_same_seed_same_output_different_seed_different_output():
    cfg = dict(delay=0.01, jitter=0.005, loss=0.1, reorder=0.1, duplicate=0.05, corrupt=0.05)
    a = run(LinkModel(seed=42, **cfg), pkts(2000))
    b = run(LinkModel(seed=42, **cfg), pkts(2000))
    c = run(LinkModel(seed=43, **cfg), pkts(2000))
    assert a == b
    assert a != c


def test_loss_rate_within_tolerance_over_10k_packets():
    link = LinkModel(seed=7, loss=0.05)
    out = run(link, pkts(10_000), spacing=0.0)
    # Binomial(10000, 0.05): sd ~ 22 packets; 5 sd each way.
    assert 500 - 110 <= link.stats["dropped"] <= 500 + 110
    assert len(out) == 10_000 - link.stats["dropped"] == link.stats["delivered"]


def test_delay_is_exact_without_jitter():
    link = LinkModel(seed=1, delay=0.040)
    link.push(b"a", 1.0)
    link.push(b"b", 1.010)
    assert link.pop_due(1.039) == []
    assert link.next_deadline() == pytest.approx(1.040)
    assert link.pop_due(1.040) == [b"a"]
    assert link.next_deadline() == pytest.approx(1.050)
    assert link.pop_due(1.0499) == []
    assert link.pop_due(1.050) == [b"b"]
    assert link.next_deadline() is None


def test_reordering_actually_reorders():
    link = LinkModel(seed=3, delay=0.050, reorder=0.25)
    sent = pkts(400)
    got = [p for _, p in run(link, sent, spacing=0.001)]
    assert sorted(got) == sorted(sent)  # nothing lost or invented
    assert got != sent
    overtakes = sum(1 for x, y in zip(got, got[1:]) if x > y)
    assert overtakes > 50
    assert 60 <= link.stats["reordered"] <= 140  # ~100 expected


def test_reorder_without_delay_changes_nothing_like_netem():
    link = LinkModel(seed=3, reorder=0.5)
    sent = pkts(200)
    assert [p for _, p in run(link, sent)] == sent


def test_jitter_stays_within_bounds():
    link = LinkModel(seed=5, delay=0.020, jitter=0.005)
    for i in range(500):
        link.push(i.to_bytes(2, "big"), 0.0)
    times = []
    while link.next_deadline() is not None:
        t = link.next_deadline()
        times += [t] * len(link.pop_due(t))
    assert len(times) == 500
    assert min(times) >= 0.015 and max(times) <= 0.025
    assert max(times) - min(times) > 0.008  # actually spread out


def test_duplicate_delivers_two_copies():
    link = LinkModel(seed=9, duplicate=1.0)
    link.push(b"x", 0.0)
    assert link.pop_due(0.0) == [b"x", b"x"]
    assert link.stats["duplicated"] == 1 and link.stats["delivered"] == 2


def test_corrupt_flips_exactly_one_bit():
    link = LinkModel(seed=11, corrupt=1.0)
    original = bytes(range(64))
    link.push(original, 0.0)
    (got,) = link.pop_due(0.0)
    diff = [a ^ b for a, b in zip(original, got)]
    assert sum(bin(d).count("1") for d in diff) == 1
    assert link.stats["corrupted"] == 1


def test_rate_serializes_packets():
    link = LinkModel(seed=0, rate=8000.0)  # 1000 bytes/s
    for _ in range(3):
        link.push(b"\0" * 100, 0.0)  # 0.1 s each on the wire
    assert link.next_deadline() == pytest.approx(0.1)
    assert len(link.pop_due(0.1)) == 1
    assert len(link.pop_due(0.25)) == 1
    assert len(link.pop_due(0.2999)) == 0
    assert len(link.pop_due(0.3001)) == 1


def test_limit_drops_excess():
    link = LinkModel(seed=0, delay=1.0, limit=10)
    for p in pkts(15):
        link.push(p, 0.0)
    assert len(link) == 10 and link.stats["dropped"] == 5
    assert link.pop_due(1.0) == pkts(10)


@pytest.mark.parametrize("kw", [dict(loss=1.5), dict(reorder=-0.1), dict(delay=-1),
                                dict(rate=0)])
def test_bad_parameters_are_rejected(kw):
    with pytest.raises(ValueError):
        LinkModel(seed=0, **kw)


@pytest.mark.parametrize("kw", [dict(delay=0.002), dict(delay=0.002, loss=0.3),
                                dict(delay=0.002, jitter=0.001), dict(delay=0.002, limit=5),
                                dict(delay=0.002, duplicate=0.2, corrupt=0.2)])
def test_push_all_is_push_in_order(kw):
    """push_all(batch) delivers what push() of each packet would: same packets, same times,
    same RNG draws (the plain-delay fast path and the per-packet fallback alike)."""
    def drive(batched):
        link = LinkModel(seed=4, **kw)
        out, t = [], 0.0
        for i in range(20):
            batch = pkts(7)[: i % 7]
            if batched:
                link.push_all(batch, t)
            else:
                for p in batch:
                    link.push(p, t)
            out += [(t, q) for q in link.pop_due(t)]
            t += 0.0007
        while link.next_deadline() is not None:
            t = link.next_deadline()
            out += [(t, q) for q in link.pop_due(t)]
        return out, link.stats
    assert drive(True) == drive(False)
    assert drive(True)[0]
