"""serve_tcp: trio.serve_listeners' contract for TcpListeners, with batched accepts and no
second (forced) close of a stream its handler already closed."""
import pytest
import trio
import trio.testing

from tuntcp.shell import open_tcp_listener, open_tcp_stream, serve_tcp
from tuntcp.shell.apps import guarded, http_app


async def _connect_n(ec, port, n):
    """n client connections completed in the server's accept queue, none accepted yet."""
    out = [await open_tcp_stream(ec, "198.18.1.1", port) for _ in range(n)]
    await trio.testing.wait_all_tasks_blocked()     # the server has taken the last ACK too
    return out


async def test_accept_batch_takes_the_queue_in_arrival_order(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 8080, 16)
    clients = await _connect_n(ec, 8080, 5)
    got = await lst.accept_batch(3)
    assert [s.peer_address for s in got] == [c.local_address for c in clients[:3]]
    rest = await lst.accept_batch()
    assert [s.peer_address for s in rest] == [c.local_address for c in clients[3:]]
    assert lst.listener.queue_lengths()["accept"] == 0


async def test_accept_batch_is_one_checkpoint_when_nothing_waits(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 8080, 16)
    await _connect_n(ec, 8080, 4)
    with trio.testing.assert_checkpoints():
        assert len(await lst.accept_batch()) == 4


async def test_serve_tcp_runs_a_handler_per_connection_and_answers(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 80, 64)
    await nursery.start(serve_tcp, guarded(http_app("hi")), [lst])
    clients = await _connect_n(ec, 80, 10)         # queued together, accepted in one batch
    for c in clients:
        await c.send_all(b"GET / HTTP/1.0\r\n\r\n")
    for c in clients:
        resp = b""
        while chunk := await c.receive_some():
            resp += chunk
        assert resp.startswith(b"HTTP/1.0 200 OK\r\n") and resp.endswith(b"\r\n\r\nhi\n")
        await c.aclose()
    assert es.stack.counters["TcpPassiveOpens"] == 10


async def test_serve_tcp_closes_what_the_handler_left_open(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 7, 8)
    seen = []

    async def forgetful(stream):
        seen.append(stream)
        await stream.send_all(b"bye")          # returns without closing

    await nursery.start(serve_tcp, forgetful, [lst])
    c = await open_tcp_stream(ec, "198.18.1.1", 7)
    data = b""
    while chunk := await c.receive_some():     # EOF: serve_tcp closed the server side
        data += chunk
    assert data == b"bye" and seen[0]._closed


async def test_serve_tcp_does_not_close_a_closed_stream_again(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 7, 8)
    closes = []

    async def closing(stream):
        orig = stream.aclose

        async def counted():
            closes.append(stream)
            await orig()
        stream.aclose = counted
        async with stream:
            await stream.send_all(b"x")

    await nursery.start(serve_tcp, closing, [lst])
    c = await open_tcp_stream(ec, "198.18.1.1", 7)
    assert await c.receive_some() == b"x"
    assert await c.receive_some() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert len(closes) == 1                     # trio.serve_listeners would make it 2


async def test_serve_tcp_propagates_handler_errors_and_closes_the_listener(memlab, autojump_clock):
    async def boom(stream):
        raise ZeroDivisionError

    with pytest.raises(BaseExceptionGroup) as ei:
        async with trio.open_nursery() as nursery:
            es, ec = memlab.endpoints()
            lst = await open_tcp_listener(es, 7, 8)
            await nursery.start(serve_tcp, boom, [lst])
            await open_tcp_stream(ec, "198.18.1.1", 7)
            await trio.sleep_forever()
    assert ei.group_contains(ZeroDivisionError)
    assert es.stack.listeners == {}


async def test_serve_tcp_resets_what_it_cannot_hand_to_a_handler(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 7, 8)
    clients = await _connect_n(ec, 7, 3)        # accepted in one batch
    async with trio.open_nursery() as closed:
        pass                                    # a handler nursery that takes no new tasks
    with pytest.raises(BaseExceptionGroup) as ei:
        await serve_tcp(guarded(http_app("hi")), [lst], handler_nursery=closed)
    assert ei.group_contains(RuntimeError, match="closed")
    for c in clients:                           # none is left open without an owner
        with pytest.raises(trio.BrokenResourceError), trio.fail_after(30):
            await c.receive_some()
    assert es.stack.listeners == {}
