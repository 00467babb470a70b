"""``TcpListener`` (a trio.abc.Listener[TcpStream]) and the open_tcp_* helpers.

``trio.serve_listeners(handler, [await open_tcp_listener(ep, 8080)])`` runs unchanged.
"""
from __future__ import annotations

import errno

import trio

from ..wire.codec import ip_int
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
        with self._guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            ep, lst, parked = self.endpoint, self.listener, False
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("listener was closed")
                conn = lst.accept()
                if conn is not None:
                    ep.kick()  # accepting may let a queued handshake complete (and send)
                    break
                parked = True
                await ep.wait(lst)
            if not parked:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return TcpStream(ep, conn)

    async def aclose(self) -> None:
        """close(2) on a listening socket: queued, never-accepted children are reset."""
        if not self._closed:
            self._closed = True
            self.listener.close(self.endpoint.now())
            self.endpoint.kick()
            self.endpoint.forget(self.listener)
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<TcpListener port {self.listener.port} backlog {self.listener.backlog}>"


async def open_tcp_listener(endpoint, port: int, backlog: int | None = None, **sockopts) -> TcpListener:
    """listen(2) on ``port``. ``sockopts`` are the Stack.listen keywords (addr, rcvbuf, sndbuf,
    defer_accept, synack_retries, accept_filter)."""
    await trio.lowlevel.checkpoint()
    lst = endpoint.stack.listen(port, DEFAULT_BACKLOG if backlog is None else backlog, **sockopts)
    return TcpListener(endpoint, lst)


async def open_tcp_stream(endpoint, host: str | int, port: int, *, laddr: str | int | None = None,
                          lport: int | None = None, rcvbuf=None, sndbuf=None) -> TcpStream:
    """connect(2): send the SYN and wait for the handshake. Refused -> ConnectionRefusedError,
    retries exhausted -> TimeoutError (both OSError, as trio.open_tcp_stream raises)."""
    stack = endpoint.stack
    raddr = ip_int(host) if isinstance(host, str) else host
    if laddr is None:
        if not stack.addrs:
            raise OSError(errno.EADDRNOTAVAIL, "the stack has no local address")
        laddr = min(stack.addrs)
    elif isinstance(laddr, str):
        laddr = ip_int(laddr)
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
