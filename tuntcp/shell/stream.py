"""``TcpStream``: a trio HalfCloseableStream over a sans-IO core Connection.

Error mapping follows trio's stream contract (checked by trio.testing.check_half_closeable_stream):
our own aclose() -> ClosedResourceError on every later call; send_all after send_eof ->
ClosedResourceError; a connection the peer reset or that timed out -> BrokenResourceError on
send (and on receive once the buffer is drained); two tasks in send_all/send_eof/
wait_send_all_might_not_block at once, or two in receive_some -> BusyResourceError.
"""
from __future__ import annotations

import operator

import trio

from ..wire.ipv6 import addr_str

DEFAULT_RECEIVE_SIZE = 65536
_DEAD = ("CLOSED",)


class _Guard:
    """Minimal conflict detector: a second task entering while one is inside is a user bug."""

    __slots__ = ("busy", "msg")

    def __init__(self, msg: str):
        self.busy = False
        self.msg = msg

    def __enter__(self):
        if self.busy:
            raise trio.BusyResourceError(self.msg)
        self.busy = True

    def __exit__(self, *exc):
        self.busy = False


class TcpStream(trio.abc.HalfCloseableStream):
    def __init__(self, endpoint, conn, mapped: bool = False):
        self.endpoint = endpoint
        self.conn = conn
        self.mapped = mapped    # an IPv4 peer of a dual-stack (AF_INET6) listener: ::ffff:a.b.c.d
        self._closed = False
        self._eof_sent = False
        self._send_guard = _Guard("another task is sending on this stream")
        self._recv_guard = _Guard("another task is receiving on this stream")

    # ---- introspection -------------------------------------------------------------------

    @property
    def local_address(self) -> tuple[str, int]:
        laddr, lport, _, _ = self.conn.key
        return addr_str(laddr, self.mapped), lport

    @property
    def peer_address(self) -> tuple[str, int]:
        _, _, raddr, rport = self.conn.key
        return addr_str(raddr, self.mapped), rport

    def info(self) -> dict:
        return self.conn.info()

    def setsockopt_nodelay(self, on: bool = True) -> None:
        self.conn.nodelay = bool(on)

    def __repr__(self) -> str:
        return f"<TcpStream {self.local_address} -> {self.peer_address} {self.conn.state}>"

    # ---- sending -------------------------------------------------------------------------

    def _check_send(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send after send_eof()")
        err = self.conn.error
        if err is not None or self.conn.state in _DEAD:
            raise trio.BrokenResourceError(f"connection {err or 'closed'}")

    async def send_all(self, data) -> None:
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(data).cast("B")
            ep, conn = self.endpoint, self.conn
            total, sent, parked = len(view), 0, False
            self._check_send()
            while sent < total:
                self._check_send()
                space = conn.send_space()
                if space > 0:
                    now = ep.now()
                    n = conn.send(bytes(view[sent:sent + space]), now)
                    ep.kick(now)
                    if n > 0:
                        sent += n
                        continue
                parked = True
                await ep.wait(conn)
            if not parked:
                await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            parked = False
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("stream was closed")
                conn = self.conn
                if self._eof_sent or conn.error is not None or conn.state in _DEAD \
                        or conn.send_space() > 0:
                    break  # send_all would not block (it would send or raise at once)
                parked = True
                await self.endpoint.wait(conn)
            if not parked:
                await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        with self._send_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._closed:
                raise trio.ClosedResourceError("stream was closed")
            if not self._eof_sent:
                self._eof_sent = True
                conn = self.conn
                if conn.error is not None:
                    raise trio.BrokenResourceError(f"connection {conn.error}")
                if conn.state not in _DEAD:
                    conn.shutdown_write(self.endpoint.now())
                    self.endpoint.kick()
            await trio.lowlevel.cancel_shielded_checkpoint()

    # ---- receiving -----------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        else:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._recv_guard:
            await trio.lowlevel.checkpoint_if_cancelled()
            ep, conn, parked = self.endpoint, self.conn, False
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("stream was closed")
                if conn.readable():
                    now = ep.now()
                    data = conn.recv(max_bytes, now)
                    ep.kick(now)  # reading may open the window: a window update goes out now
                    if data:
                        break
                if conn.at_eof():
                    data = b""
                    break
                if conn.error is not None:
                    raise trio.BrokenResourceError(f"connection {conn.error}")
                if conn.state in _DEAD:
                    data = b""
                    break
                parked = True
                await ep.wait(conn)
            if not parked:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    # ---- closing -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """close(2): FIN after queued data, or RST if unread data is left (the core decides).
        Closes even when cancelled; blocked senders/receivers wake with ClosedResourceError."""
        if not self._closed:
            self._closed = True
            conn = self.conn
            if conn.state not in _DEAD:
                conn.close(self.endpoint.now())
                self.endpoint.kick()
            self.endpoint.forget(conn)
        await trio.lowlevel.checkpoint()

    def abort(self) -> None:
        """SO_LINGER 0 close: RST now, synchronously."""
        if not self._closed:
            self._closed = True
            if self.conn.state not in _DEAD:
                self.conn.abort(self.endpoint.now())
                self.endpoint.kick()
            self.endpoint.forget(self.conn)
