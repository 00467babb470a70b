"""A modelled kernel in front of any server: ``tuntcp serve --front HOST:PORT``.

The endpoint accepts with the modelled listen path (profile, backlog, cookies, buggy or fixed
window scale); each accepted connection is paired with a kernel-socket connection to the backend
and its bytes are relayed both ways, so real clients speak the real protocol (redis, HTTP ...)
through a modelled kernel.

Where the backend lives: it is dialled from *inside the lab namespace* (sockets made by the lab's
namespace thread), so ``127.0.0.1`` is the lab's loopback. The whole experiment - clients, the
modelled kernel's TUN, the backend - sits in one namespace and goes away with it; nothing listens
on the host. ``--front-cmd`` starts the backend there (killed with the lab); otherwise start it
with ``ip netns exec NS ...``. The Python API takes any ``socket_factory`` instead.

Rules of the relay, each as a real proxy on a kernel would see them:
- backpressure: one bounded chunk in flight per direction; the next receive waits until the
  send finished, so a slow reader stalls the writer's window, never a buffer here;
- half-close: EOF from one side becomes ``shutdown(SHUT_WR)`` / our FIN towards the other;
- resets: an RST from either side aborts the other (SO_LINGER 0 close / ``TcpStream.abort``);
  a backend that refuses the connect resets the client;
- accept pacing: at most ``connects`` backend connects in flight; the next connection is taken
  from the modelled accept queue only when one completed, so the modelled queue fills (and
  overflows, and sends cookies) at the rate the backend's own listener accepts.
"""
from __future__ import annotations

import argparse
import errno
import shlex
import socket
import struct
import subprocess
from dataclasses import dataclass

import trio

CHUNK = 65536
LINGER0 = struct.pack("ii", 1, 0)       # SO_LINGER {on, 0}: close() sends RST
FRONT_HELP = ("relay each accepted connection to a kernel-socket server at HOST:PORT, dialled "
              "inside the lab namespace (replaces --app)")


def hostport(text: str) -> tuple[str, int]:
    """argparse type: ``HOST:PORT`` (an IPv4 address or name, port 1..65535)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    return host, int(port)


@dataclass
class FrontStats:
    """What the relay did (its own tallies; kernel counters stay in the Stack's MIB)."""
    accepted: int = 0
    connected: int = 0          # backend connects that completed
    refused: int = 0            # backend connect failed: the client got an RST
    client_resets: int = 0      # RST from the client, carried to the backend
    backend_resets: int = 0     # RST from the backend, carried to the client
    closed: int = 0             # relayed to both EOFs and closed normally
    bytes_up: int = 0           # client -> backend
    bytes_down: int = 0         # backend -> client


class _Reset(Exception):
    def __init__(self, side: str):
        self.side = side


class Front:
    """``await Front(listener, ("127.0.0.1", 6379), socket_factory).serve()`` relays until
    cancelled. ``socket_factory()`` returns a new stdlib TCP socket in the backend's namespace
    (default: this process's). ``nodelay`` sets TCP_NODELAY on the modelled side, as servers
    like redis and nginx do on their own sockets."""

    def __init__(self, listener, backend: tuple[str, int], socket_factory=None, *,
                 connects: int = 4, chunk: int = CHUNK, nodelay: bool = True):
        if connects < 1 or chunk < 1:
            raise ValueError("connects and chunk must be >= 1")
        self.listener = listener
        self.backend = backend
        self.socket_factory = socket_factory or socket.socket
        self.connects = connects
        self.chunk = chunk
        self.nodelay = nodelay
        self.stats = FrontStats()
        self.streams: dict = {}         # (raddr, rport) -> client stream, while it is relayed
        self._scopes: dict = {}

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Relay until cancelled, or until the listener is closed (``reset``)."""
        slots = trio.Semaphore(self.connects)
        async with trio.open_nursery() as nursery, self.listener:
            task_status.started(self)
            while True:
                await slots.acquire()
                try:
                    stream = await self.listener.accept()
                except trio.ClosedResourceError:
                    return
                self.stats.accepted += 1
                key = (stream.conn.raddr, stream.conn.rport)
                self.streams[key] = stream
                self._scopes[key] = trio.CancelScope()
                nursery.start_soon(self._pair, stream, slots, key)

    async def reset(self) -> None:
        """The front process dies: its listener closes and every connection is reset, both the
        client's and the backend's (as a proxy's exit does with unread data)."""
        await self.listener.aclose()
        for scope in self._scopes.values():
            scope.cancel()

    async def _pair(self, client, slots, key) -> None:
        scope = self._scopes[key]
        try:
            with scope:
                await self._pair_up(client, slots)
        finally:
            self.streams.pop(key, None)
            self._scopes.pop(key, None)
        if scope.cancelled_caught:      # reset()
            client.abort()

    async def _pair_up(self, client, slots) -> None:
        try:
            sock = trio.socket.from_stdlib_socket(self.socket_factory())
            try:
                await sock.connect(self.backend)
            except OSError as e:
                # a backend that accepted and reset before we saw the connect complete
                if e.errno == errno.ECONNRESET:
                    self.stats.backend_resets += 1
                else:
                    self.stats.refused += 1
                sock.close()
                client.abort()
                return
            except trio.Cancelled:
                sock.close()
                raise
        finally:
            slots.release()
        self.stats.connected += 1
        if self.nodelay:
            client.setsockopt_nodelay(True)
        backend = trio.SocketStream(sock)
        try:
            await self._relay(client, backend)
        except trio.Cancelled:
            abort_socket_stream(backend)
            raise

    async def _relay(self, client, backend) -> None:
        resets: list[str] = []
        async with trio.open_nursery() as nursery:
            async def pump(src, dst, src_side, dst_side, up):
                try:
                    await self._pump(src, dst, src_side, dst_side, up)
                except _Reset as r:
                    resets.append(r.side)
                    nursery.cancel_scope.cancel()
            nursery.start_soon(pump, client, backend, "client", "backend", True)
            nursery.start_soon(pump, backend, client, "backend", "client", False)
        if resets:
            if resets[0] == "client":
                self.stats.client_resets += 1
            else:
                self.stats.backend_resets += 1
            abort_socket_stream(backend)
            client.abort()
            return
        self.stats.closed += 1
        await client.aclose()
        await backend.aclose()

    async def _pump(self, src, dst, src_side, dst_side, up) -> None:
        chunk, stats = self.chunk, self.stats
        while True:
            try:
                data = await src.receive_some(chunk)
            except trio.BrokenResourceError:
                raise _Reset(src_side) from None
            if not data:
                break
            try:
                await dst.send_all(data)     # backpressure: no receive before this returns
            except trio.BrokenResourceError:
                raise _Reset(dst_side) from None
            if up:
                stats.bytes_up += len(data)
            else:
                stats.bytes_down += len(data)
        try:
            await dst.send_eof()
        except trio.BrokenResourceError:
            raise _Reset(dst_side) from None


def abort_socket_stream(stream: trio.SocketStream) -> None:
    """Close a kernel socket with SO_LINGER 0: RST now (nothing if it is already reset)."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    except OSError:
        pass
    stream.socket.close()


def lab_sockets(lab, batch: int = 32):
    """A socket factory for backends in ``lab``'s namespace: sockets are made by the lab's
    namespace thread ``batch`` at a time (one thread round trip per batch)."""
    pool: list[socket.socket] = []

    def make() -> socket.socket:
        if not pool:
            pool.extend(lab.sockets_in_ns(batch))
        return pool.pop()
    return make


async def start_backend(lab, argv: list[str], backend: tuple[str, int], socket_factory,
                        timeout: float = 15.0) -> subprocess.Popen:
    """Start ``argv`` in the lab namespace (killed by ``lab.close()``) and wait until it accepts
    on ``backend``."""
    from ..errors import UserError
    try:
        proc = lab.run_in_ns(argv, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise UserError(f"--front-cmd {argv[0]!r}: {e.strerror}") from None
    with trio.move_on_after(timeout):
        while proc.poll() is None:
            sock = trio.socket.from_stdlib_socket(socket_factory())
            with sock:
                try:
                    await sock.connect(backend)
                    return proc
                except OSError:
                    pass
            await trio.sleep(0.05)
        raise UserError(f"--front-cmd exited with status {proc.returncode} before listening on "
                        f"{backend[0]}:{backend[1]}")
    raise UserError(f"--front-cmd did not listen on {backend[0]}:{backend[1]} within {timeout:g} s")


class StormFront:
    """``tuntcp storm --front``: the storm's broker (``listen``, ``restart``, ``streams`` and
    ``listener`` as scenarios.storm.Broker has them) is a Front on the modelled listen path,
    relaying each producer to the backend in the lab's namespace; ``cmd`` starts the backend
    there once. A restart is the front's (the proxy's) restart: the backend keeps running."""

    replies = None      # the backend answers; the relay does not parse its protocol

    def __init__(self, ep, lab, backend: tuple[str, int], cmd: str, port: int, backlog: int,
                 rcvbuf: int | None, down_s: float):
        self.ep, self.lab, self.backend, self.cmd = ep, lab, backend, cmd
        self.port, self.backlog, self.rcvbuf, self.down_s = port, backlog, rcvbuf, down_s
        self.sockets = lab_sockets(lab)
        self.front: Front | None = None
        self.listener = None

    @property
    def streams(self) -> dict:
        return self.front.streams if self.front else {}

    async def listen(self, nursery) -> None:
        from .listener import open_tcp_listener
        if self.front is None and self.cmd:
            await start_backend(self.lab, shlex.split(self.cmd), self.backend, self.sockets)
        self.listener = await open_tcp_listener(self.ep, self.port, self.backlog, rcvbuf=self.rcvbuf)
        self.front = Front(self.listener, self.backend, self.sockets)
        await nursery.start(self.front.serve)

    async def restart(self) -> None:
        await self.front.reset()
        await trio.sleep(self.down_s)
