"""The endpoint's TUN loop against a fake stack, over a datagram socketpair standing in for a TUN
(one packet per read, EAGAIN when empty) and over the in-memory pipe."""
import socket

import trio
import trio.testing

from tuntcp.shell.endpoint import TX_DROP, Endpoint
from tuntcp.shell.tun import FdIO, memory_pair


def tun_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    return a, b


def drain(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            return out


async def test_one_wakeup_drains_every_queued_packet(nursery, fake_stack):
    tun, peer = tun_pair()
    stack = fake_stack(reply=lambda p: b"re:" + p)
    for i in range(50):
        peer.send(b"pkt%d" % i)
    ep = Endpoint(stack, tun.fileno())
    nursery.start_soon(ep.run)
    await trio.testing.wait_all_tasks_blocked()
    # all 50 in one batch: one `now`, one take_output, all replies written in order
    assert [p for p, _ in stack.received] == [b"pkt%d" % i for i in range(50)]
    assert len({now for _, now in stack.received}) == 1
    assert stack.take_calls == 1
    assert ep.stats["batches"] == 1 and ep.stats["max_batch"] == 50
    assert drain(peer) == [b"re:pkt%d" % i for i in range(50)]
    # a second burst is a second batch
    for i in range(7):
        peer.send(b"more%d" % i)
    await trio.testing.wait_all_tasks_blocked()
    assert len(stack.received) == 57
    assert stack.take_calls == 2
    assert ep.stats["batches"] == 2
    assert len(drain(peer)) == 7


async def test_batch_cap_goes_round_again_without_losing_packets(nursery, fake_stack):
    tun, peer = tun_pair()
    stack = fake_stack()
    for i in range(25):
        peer.send(b"%d" % i)
    ep = Endpoint(stack, tun.fileno(), max_batch=10)
    nursery.start_soon(ep.run)
    await trio.testing.wait_all_tasks_blocked()
    assert [p for p, _ in stack.received] == [b"%d" % i for i in range(25)]
    assert ep.stats["batches"] == 3 and ep.stats["max_batch"] == 10


async def test_sleeps_exactly_to_each_stack_deadline(nursery, fake_stack, autojump_clock):
    a, b = memory_pair()
    stack = fake_stack(deadlines=[5.0, 7.5])
    ep = Endpoint(stack, a)
    start = trio.current_time()
    nursery.start_soon(ep.run)
    await trio.sleep(60)
    # woken once per deadline, at the deadline: no periodic tick
    assert start == 0.0
    assert stack.timer_calls == [5.0, 7.5]
    assert stack.take_calls == 3
    assert b.read_batch(10) == [b"timer@5.000", b"timer@7.500"]


async def test_kick_pulls_the_sleep_earlier(nursery, fake_stack, autojump_clock):
    a, b = memory_pair()
    stack = fake_stack(deadlines=[100.0])
    ep = Endpoint(stack, a)
    nursery.start_soon(ep.run)
    await trio.sleep(1)
    stack.deadlines.insert(0, 3.0)   # an app call scheduled an earlier timer
    ep.kick()
    await trio.sleep(10)
    assert stack.timer_calls == [3.0]
    await trio.sleep(100)
    assert stack.timer_calls == [3.0, 100.0]


async def test_full_tun_on_write_counts_a_drop_and_keeps_running(nursery, fake_stack):
    tun, peer = tun_pair()
    tun.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stack = fake_stack(reply=lambda p: b"x" * 1000)
    ep = Endpoint(stack, tun.fileno())
    nursery.start_soon(ep.run)
    # the peer never reads, so replies pile up until the socket says EAGAIN
    for i in range(300):
        peer.send(b"%d" % i)
        if i % 50 == 49:
            await trio.testing.wait_all_tasks_blocked()
    await trio.testing.wait_all_tasks_blocked()
    assert len(stack.received) == 300
    assert ep.stats["tx_drops"] > 0
    assert ep.stats["tx"] + ep.stats["tx_drops"] == 300
    assert stack.counters[TX_DROP] == ep.stats["tx_drops"]
    assert len(drain(peer)) == ep.stats["tx"]


async def test_memory_pipe_full_is_a_drop():
    a, b = memory_pair(capacity=2)
    assert a.write(b"1") and a.write(b"2")
    assert not a.write(b"3")
    assert a.drops == 1
    assert b.read_batch(10) == [b"1", b"2"]


async def test_dirty_objects_wake_their_waiters_once_per_batch(nursery, fake_stack):
    a, b = memory_pair()
    obj = object()
    stack = fake_stack()
    stack.receive = lambda p, now: (stack.received.append((p, now)), stack.dirty.add(obj))
    ep = Endpoint(stack, a)
    nursery.start_soon(ep.run)
    woke = []

    async def waiter():
        await ep.wait(obj)
        woke.append(trio.current_time())

    nursery.start_soon(waiter)
    await trio.testing.wait_all_tasks_blocked()
    assert woke == []
    b.write(b"p1")
    b.write(b"p2")
    await trio.testing.wait_all_tasks_blocked()
    assert len(woke) == 1 and stack.dirty == set()


async def test_fdio_reads_packets_whole():
    tun, peer = tun_pair()
    io = FdIO(tun.fileno())
    peer.send(b"a" * 1500)
    peer.send(b"b")
    assert io.read_batch(100) == [b"a" * 1500, b"b"]
    assert io.read_batch(100) == []
