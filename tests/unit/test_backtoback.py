"""Two Stacks back to back through a seeded in-memory link that drops, delays and reorders.

Moves megabytes both ways at once, through the codec (real packets, checksums) and the Linux
listener on one side, and requires byte-exact delivery, clean FIN shutdown and sane counters.
"""
import heapq
import random

import pytest

from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile

A, B = 0x0A000001, 0x0A000002
PORT = 5001


class Link:
    """Seeded lossy link: each packet is dropped with ``loss``, else delivered after
    ``delay`` plus up to ``jitter`` seconds (jitter larger than the packet spacing reorders)."""

    def __init__(self, seed, loss=0.0, delay=0.001, jitter=0.0):
        self.rng = random.Random(seed)
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.q = []
        self.n = 0
        self.sent = self.dropped = 0

    def send(self, dst, pkt, now):
        self.sent += 1
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.n += 1
        t = now + self.delay + self.rng.random() * self.jitter
        heapq.heappush(self.q, (t, self.n, dst, pkt))

    def next_time(self):
        return self.q[0][0] if self.q else None


def _pattern(seed, n):
    return random.Random(seed).randbytes(n)


def run_transfer(profile_name, nbytes, *, seed, loss, jitter, max_time=600.0):
    p = get_profile(profile_name)
    sa = Stack(p, addrs={A}, secret=b"A" * 16)
    sb = Stack(p, addrs={B}, secret=b"B" * 16)
    link = Link(seed, loss=loss, delay=0.002, jitter=jitter)
    lst = sb.listen(PORT, 128)
    now = 0.0
    ca = sa.connect(A, B, PORT, now)
    cb = None
    out_a, out_b = _pattern(seed, nbytes), _pattern(seed + 1, nbytes)
    sent = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}
    shut = {"a": False, "b": False}

    def app(name, conn):
        data = out_a if name == "a" else out_b
        if conn.state in ("ESTABLISHED", "CLOSE-WAIT") and sent[name] < len(data):
            room = conn.send_space()
            if room:
                sent[name] += conn.send(data[sent[name]:sent[name] + room], now)
        if sent[name] == len(data) and not shut[name] and conn.state in ("ESTABLISHED", "CLOSE-WAIT"):
            conn.shutdown_write(now)
            shut[name] = True
        while conn.readable():
            got[name] += conn.recv(65536, now)

    def flush():
        for pkt in sa.take_output():
            link.send(sb, pkt, now)
        for pkt in sb.take_output():
            link.send(sa, pkt, now)

    flush()
    steps = 0
    while now < max_time:
        steps += 1
        cands = [t for t in (link.next_time(), sa.next_deadline(), sb.next_deadline()) if t is not None]
        if not cands:
            break
        now = max(now, min(cands))
        while link.q and link.q[0][0] <= now:
            _, _, dst, pkt = heapq.heappop(link.q)
            dst.receive(pkt, now)
        sa.on_timers(now)
        sb.on_timers(now)
        if cb is None:
            cb = lst.accept()
        app("a", ca)
        if cb is not None:
            app("b", cb)
        flush()
        if cb is not None and ca.at_eof() and cb.at_eof() and shut["a"] and shut["b"] and \
                ca.state in ("TIME-WAIT", "CLOSED") and cb.state in ("TIME-WAIT", "CLOSED") \
                and not link.q:
            break
    return dict(ca=ca, cb=cb, sa=sa, sb=sb, link=link, got=got, out_a=out_a, out_b=out_b,
                now=now, steps=steps)


@pytest.mark.parametrize("profile,loss,jitter,seed", [
    ("linux-6.1", 0.0, 0.0, 1),
    ("linux-6.1", 0.02, 0.003, 2),       # 2 % loss, reordering
    ("linux-5.4", 0.05, 0.004, 3),       # 5 % loss, heavier reordering
    ("linux-3.10", 0.01, 0.002, 4),
])
def test_bulk_both_directions_byte_exact(profile, loss, jitter, seed):
    r = run_transfer(profile, 1 << 20, seed=seed, loss=loss, jitter=jitter)
    ca, cb = r["ca"], r["cb"]
    assert cb is not None, "the listener never produced a connection"
    assert bytes(r["got"]["b"]) == r["out_a"], "A->B stream corrupted or incomplete"
    assert bytes(r["got"]["a"]) == r["out_b"], "B->A stream corrupted or incomplete"
    assert ca.at_eof() and cb.at_eof()
    # the side that closed first waits in TIME-WAIT (or both, after a simultaneous close)
    assert {ca.state, cb.state} <= {"TIME-WAIT", "CLOSED"}
    assert ca.error is None and cb.error is None
    if loss:
        assert r["link"].dropped > 0
        total_retrans = r["sa"].counters["TcpRetransSegs"] + r["sb"].counters["TcpRetransSegs"]
        assert total_retrans >= r["link"].dropped * 0.5
    else:
        assert r["sa"].counters["TcpRetransSegs"] == 0 and r["sb"].counters["TcpRetransSegs"] == 0


def test_many_megabytes_with_reordering_and_sack():
    r = run_transfer("linux-6.12", 3 << 20, seed=7, loss=0.01, jitter=0.005)
    assert bytes(r["got"]["b"]) == r["out_a"]
    assert bytes(r["got"]["a"]) == r["out_b"]
    ooo = r["sa"].counters["TcpExtTCPOFOQueue"] + r["sb"].counters["TcpExtTCPOFOQueue"]
    assert ooo > 0, "reordering should have exercised the out-of-order queue"
    sackrec = r["sa"].counters["TcpExtTCPSackRecovery"] + r["sb"].counters["TcpExtTCPSackRecovery"]
    assert sackrec > 0


def test_reordering_alone_causes_no_retransmissions():
    """Jitter reorders up to ~10 segments: the SACK reordering estimate (tcp_check_sack_reordering)
    and the timestamp undo (tcp_packet_delayed) must keep fast retransmit from firing spuriously
    for long, and the transfer runs at the speed of the window, not of the recoveries."""
    r = run_transfer("linux-6.1", 2 << 20, seed=11, loss=0.0, jitter=0.001)
    assert bytes(r["got"]["b"]) == r["out_a"] and bytes(r["got"]["a"]) == r["out_b"]
    spurious = r["sa"].counters["TcpRetransSegs"] + r["sb"].counters["TcpRetransSegs"]
    segs = r["sa"].counters["TcpOutSegs"] + r["sb"].counters["TcpOutSegs"]
    assert spurious < 0.01 * segs, (spurious, segs)
    assert r["sa"].counters["TcpExtTCPSACKReorder"] + r["sb"].counters["TcpExtTCPSACKReorder"] > 0
