"""The write path (``tcp_sendmsg_locked``): skbs of size_goal, pushes during the copy, the send
buffer charged by truesize (``sk_wmem_queued``), and the writer's wakeup rule. The packets are
tests/drill/write-block-wake.pkt (kernel-valid); here the rules one at a time."""
from tuntcp.core.consts import TX_SKB_TRUESIZE
from tuntcp.wire.segment import ACK, Segment, TcpOptions

from test_vnet import L, R, established


def ack_in(c, ack, now):
    seg = Segment(R, L, 40000, 8080, seq=1, ack=ack & 0xFFFFFFFF, flags=ACK, window=65535,
                  options=TcpOptions(ts=(300, 0)))
    c.stack.receive_segment(seg, now)


def rel(c, seq):
    return (seq - 1000) & 0xFFFFFFFF          # established(): iss 1000


def test_new_skb_only_while_memory_free_and_nospace_until_writeable():
    st, c = established(offload=False)
    c.set_sndbuf(20000)                        # sk_sndbuf 40000
    goal = c._size_goal()
    c.cc.cwnd = 1
    # the first skb fills to size_goal (65160 > sk_sndbuf), tcp_push_one sends one MSS of it
    # (cwnd 1), its rest refills to size_goal; then memory is not free: the write waits
    assert c.send(b"x" * 200000, 0.0) == goal + c.mss
    assert c._wmem_queued() == goal + c.mss + TX_SKB_TRUESIZE and c.nospace
    assert c.send_space() == 0 and not c.writeable()


def test_writer_wakes_when_free_space_is_half_of_what_is_queued():
    st, c = established(offload=False)
    c.set_sndbuf(20000)                        # sk_sndbuf 40000
    c.send(b"x" * 200000, 0.0)
    una = c.snd_una
    queued = c._wmem_queued()
    # acking bytes while sk_sndbuf - queued < queued / 2 keeps the writer asleep
    # (sk_stream_memory_free alone would wake it once queued < sk_sndbuf)
    need = next(a for a in range(0, 70000, 1448)
                if 40000 - (queued - a) >= (queued - a) >> 1)
    short = need - 1448
    assert queued - short < 40000              # memory is free one MSS before the wakeup
    c.cc.cwnd = 100
    c._push(0.0)                               # all of it in flight
    ack_in(c, una + short, 0.1)
    assert c.nospace and c.send_space() == 0
    ack_in(c, una + need, 0.2)
    assert not c.nospace and c.writeable() and c.send_space() > 0


def test_full_send_head_skb_goes_during_the_copy_and_its_rest_refills():
    """tcp_push_one sends the first full skb (cwnd 4 of it); the unsent rest stays the tail and
    fills to size_goal again, so the first skb ends at 4 MSS + size_goal (with and without
    offload), and forced_push marks it (more than half the peer's window since the last mark)
    only when the peer's window is small enough."""
    for offload in (False, True):
        st, c = established(offload=offload)
        c.cc.cwnd = 4
        mss, goal = c.mss, c._size_goal()
        c.send(b"x" * (3 * goal), 0.0)
        assert rel(c, c.snd_nxt) == 1 + 4 * mss
        assert rel(c, c.skbs[0][0]) == 1 + 4 * mss + goal
