"""The --front relay's rules against kernel sockets on both sides: a kernel client in the lab
namespace -> the modelled listener -> a kernel-socket backend on the namespace's loopback."""
import errno
import socket

import pytest
import trio

from tuntcp import mib
from tuntcp.harness.clients import connect_clients, set_linger0
from front_common import front_lab

pytestmark = pytest.mark.netns

BACKEND = ("127.0.0.1", 17000)


async def backend_listener(lab, backlog=16):
    s = lab.socket_in_ns()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(BACKEND)
    s.listen(backlog)
    return trio.socket.from_stdlib_socket(s)


async def client(lab, port=6379):
    s = trio.socket.from_stdlib_socket(lab.socket_in_ns())
    await s.connect((lab.endpoint_addr, port))
    return s


async def relayed_pair(lab):
    """(backend listener, kernel client, the backend's accepted socket), joined by the front."""
    lst = await backend_listener(lab)
    c = await client(lab)
    b, _ = await lst.accept()
    return lst, c, b


async def read_to_eof(sock) -> bytes:
    buf = b""
    while chunk := await sock.recv(65536):
        buf += chunk
    return buf


async def test_half_close_carried_both_ways(netns_available):
    async with front_lab(None, BACKEND) as (lab, ep, front):
        lst, c, b = await relayed_pair(lab)
        await c.send(b"request")
        c.shutdown(socket.SHUT_WR)                      # client FIN -> backend sees EOF
        got = await read_to_eof(b)
        await b.send(b"answer after EOF: " + got)       # the other direction still flows
        b.shutdown(socket.SHUT_WR)                      # backend FIN -> client sees EOF
        assert await read_to_eof(c) == b"answer after EOF: request"
        b.close()
        c.close()
        await trio.sleep(0.2)
        assert front.stats.closed == 1 and front.stats.bytes_up == 7


async def test_backend_reset_resets_client(netns_available):
    async with front_lab(None, BACKEND) as (lab, ep, front):
        lst, c, b = await relayed_pair(lab)
        set_linger0(b)
        b.close()
        with pytest.raises(ConnectionResetError):
            await read_to_eof(c)
        c.close()
        assert front.stats.backend_resets == 1
        assert ep.stack.counters[mib.TcpEstabResets] >= 1


async def test_client_reset_resets_backend(netns_available):
    async with front_lab(None, BACKEND) as (lab, ep, front):
        lst, c, b = await relayed_pair(lab)
        await c.send(b"ping")
        assert await b.recv(10) == b"ping"
        set_linger0(c)
        c.close()
        with pytest.raises(ConnectionResetError):
            await read_to_eof(b)
        b.close()
        assert front.stats.client_resets == 1


async def test_refused_backend_resets_client(netns_available):
    async with front_lab(None, BACKEND) as (lab, ep, front):
        c = await client(lab)              # the modelled kernel completes the handshake ...
        with pytest.raises(ConnectionResetError):
            await read_to_eof(c)           # ... then the relay finds no backend: RST
        c.close()
        assert front.stats.refused == 1


async def test_backpressure_no_unbounded_buffer(netns_available):
    """A backend that does not read stalls the client; nothing piles up in the relay."""
    async with front_lab(None, BACKEND) as (lab, ep, front):
        lst, c, b = await relayed_pair(lab)
        sent, block = 0, b"z" * 65536
        with trio.move_on_after(3):
            while True:
                sent += await c.send(block)
        relayed = front.stats.bytes_up
        await trio.sleep(0.5)
        assert front.stats.bytes_up == relayed, "the relay kept reading from a stalled path"
        # what left the client sits in kernel buffers and the modelled receive queue, bounded
        assert sent < 64 << 20, f"client could send {sent} bytes to a backend that never reads"
        c.shutdown(socket.SHUT_WR)
        assert len(await read_to_eof(b)) == sent       # all of it, none lost, once read
        b.close()
        c.close()


async def test_accept_paced_by_backend(netns_available):
    """A backend whose accept queue is full stops the relay's accepts: the modelled queue fills
    and overflows (ListenOverflows), as it would if that backend were on the old kernel itself."""
    async with front_lab(None, BACKEND, backlog=2, connects=1) as (lab, ep, front):
        lst = await backend_listener(lab, backlog=0)   # never accepts; holds one connection
        socks = await connect_clients(lab, 20, 6379, timeout=2)
        await trio.sleep(0.5)
        assert front.stats.accepted == 2, front.stats   # 1 in the backend's queue, 1 stalled
        assert ep.stack.counters[mib.TcpExtListenOverflows] > 0
        for s in socks:
            if isinstance(s, socket.socket):
                s.close()
        assert not [s for s in socks if isinstance(s, OSError) and s.errno != errno.ETIMEDOUT]
        lst.close()
