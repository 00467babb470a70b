"""``TcpListener`` (a trio.abc.Listener[TcpStream]), ``serve_tcp`` and the open_tcp_* helpers.

``trio.serve_listeners(handler, [await open_tcp_listener(ep, 8080)])`` runs unchanged;
``serve_tcp`` is the same call, cheaper per connection (see its docstring).
"""
from __future__ import annotations

import errno

import trio

from ..wire.ipv6 import V4_MAX, addr_int
from .stream import TcpStream, _Guard

DEFAULT_BACKLOG = 0xFFFF  # like trio: ask for a lot; the listener clamps to somaxconn


class TcpListener(trio.abc.Listener[TcpStream]):
    def __init__(self, endpoint, listener):
        self.endpoint = endpoint
        self.listener = listener
        self._closed = False
        self._guard = _Guard("another task is already in accept()")

    @property
    def port(self) -> int:
        return self.listener.port

    async def accept(self) -> TcpStream:
        return (await self.accept_batch(1))[0]

    async def accept_batch(self, limit: int = 1 << 30) -> list[TcpStream]:
        """Like accept(), but takes up to ``limit`` queued connections at once (at least one):
        one checkpoint per batch instead of one per connection."""
        with self._guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            ep, lst, parked = self.endpoint, self.listener, False
            v6 = lst.family == 6        # its IPv4 children are shown as IPv4-mapped addresses
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("listener was closed")
                conn = lst.accept()
                if conn is not None:
                    out = [TcpStream(ep, conn, v6 and conn.key[0] <= V4_MAX)]
                    while len(out) < limit:
                        conn = lst.accept()
                        if conn is None:
                            break
                        out.append(TcpStream(ep, conn, v6 and conn.key[0] <= V4_MAX))
                    ep.kick()  # accepting may let a queued handshake complete (and send)
                    break
                parked = True
                await ep.wait(lst)
            if not parked:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return out

    async def aclose(self) -> None:
        """close(2) on a listening socket: queued, never-accepted children are reset."""
        if not self._closed:
            self._closed = True
            self.listener.close(self.endpoint.now())
            self.endpoint.kick()
            self.endpoint.forget(self.listener)
        await trio.lowlevel.checkpoint()

    @property
    def v6only(self) -> bool:
        """IPV6_V6ONLY of an AF_INET6 listener (fixed at listen, as Linux refuses to change it
        once bound: ``do_ipv6_setsockopt``)."""
        return self.listener.v6only

    def __repr__(self) -> str:
        return f"<TcpListener port {self.listener.port} backlog {self.listener.backlog}>"


async def serve_tcp(handler, listeners, *, handler_nursery=None,
                    task_status=trio.TASK_STATUS_IGNORED):
    """``trio.serve_listeners`` for TcpListeners, with the same arguments and behaviour: each
    accepted stream gets its own ``handler(stream)`` task, closed when the handler returns; an
    exception from a handler or a listener propagates; the listeners are closed on exit.

    Cheaper per connection: accepts are taken in batches (one checkpoint per batch), and a
    stream the handler already closed is not closed again -- serve_listeners' unconditional
    ``aclose_forcefully`` costs a cancel scope and a raised ``Cancelled`` per connection.
    """
    async with trio.open_nursery() as nursery:
        if handler_nursery is None:
            handler_nursery = nursery
        for lst in listeners:
            nursery.start_soon(_accept_loop, lst, handler_nursery, handler)
        task_status.started(listeners)
    raise AssertionError("serve_tcp returned")   # pragma: no cover  (accept loops never end)


async def _accept_loop(lst: TcpListener, nursery, handler) -> None:
    spawn = nursery.start_soon
    async with lst:     # like serve_listeners: the listener is closed when serving stops
        while True:
            batch = await lst.accept_batch()
            for i, stream in enumerate(batch):
                try:
                    spawn(_run_handler, stream, handler, name="tuntcp-handler")
                except BaseException:       # e.g. a closed handler_nursery: no owner for these
                    for s in batch[i:]:
                        s.abort()
                    raise


async def _run_handler(stream: TcpStream, handler) -> None:
    try:
        await handler(stream)
    finally:
        if not stream._closed:
            await trio.aclose_forcefully(stream)


async def open_tcp_listener(endpoint, port: int, backlog: int | None = None, **sockopts) -> TcpListener:
    """listen(2) on ``port``. ``sockopts`` are the Stack.listen keywords (addr, family, v6only,
    rcvbuf, sndbuf, defer_accept, synack_retries, accept_filter). ``family=6`` with the wildcard
    address is a dual-stack ``::`` listener: IPv4 peers too, as ::ffff:a.b.c.d, unless
    ``v6only=True`` (IPV6_V6ONLY; default net.ipv6.bindv6only of the profile)."""
    await trio.lowlevel.checkpoint()
    lst = endpoint.stack.listen(port, DEFAULT_BACKLOG if backlog is None else backlog, **sockopts)
    return TcpListener(endpoint, lst)


async def open_tcp_stream(endpoint, host: str | int, port: int, *, laddr: str | int | None = None,
                          lport: int | None = None, rcvbuf=None, sndbuf=None) -> TcpStream:
    """connect(2): send the SYN and wait for the handshake. Refused -> ConnectionRefusedError,
    retries exhausted -> TimeoutError (both OSError, as trio.open_tcp_stream raises)."""
    stack = endpoint.stack
    raddr = addr_int(host) if isinstance(host, str) else host
    if laddr is None:
        if not stack.addrs:
            raise OSError(errno.EADDRNOTAVAIL, "the stack has no local address")
        # an address of the peer's family (int magnitude tells: IPv6 is above 2**32)
        same = [a for a in stack.addrs if (a > V4_MAX) == (raddr > V4_MAX)]
        if not same:
            raise OSError(errno.EADDRNOTAVAIL, "the stack has no local address of the peer's family")
        laddr = min(same)
    elif isinstance(laddr, str):
        laddr = addr_int(laddr)
    conn = stack.connect(laddr, raddr, port, endpoint.now(), lport=lport, rcvbuf=rcvbuf, sndbuf=sndbuf)
    endpoint.kick()
    try:
        while conn.state == "SYN-SENT" or conn.state == "SYN-RECV":
            await endpoint.wait(conn)
    except BaseException:
        if conn.state != "CLOSED":
            conn.abort(endpoint.now())
            endpoint.kick()
        endpoint.forget(conn)
        raise
    if conn.error is not None or conn.state == "CLOSED":
        endpoint.forget(conn)
        if conn.error == "timeout":
            raise TimeoutError(errno.ETIMEDOUT, f"connect to {host}:{port} timed out")
        if conn.error == "refused":
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"connect to {host}:{port} refused")
        raise ConnectionResetError(errno.ECONNRESET, f"connect to {host}:{port}: {conn.error}")
    return TcpStream(endpoint, conn)
