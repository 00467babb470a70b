"""Packet I/O under an Endpoint: a TUN file descriptor, or an in-memory pipe for tests.

Both give the endpoint the same three operations:

    read_batch(limit) -> list[bytes]   everything queued now, without blocking (drain to EAGAIN)
    write(pkt) -> bool                 False when the packet was dropped (EAGAIN/ENOBUFS, full pipe)
    await wait_readable()              park until read_batch would return something

A TUN fd (IFF_TUN | IFF_NO_PI) hands out one IP packet per read(2), like a SOCK_DGRAM socket,
so tests can stand in for it with a datagram socketpair.
"""
from __future__ import annotations

import errno
import os
from collections import deque

import trio

MAX_PACKET = 65535
_DROP_ERRNOS = (errno.EAGAIN, errno.ENOBUFS, errno.ENOMEM, errno.EMSGSIZE, errno.EINVAL)


class PacketIO:
    """Interface (documentation only; both implementations below follow it)."""

    def read_batch(self, limit: int) -> list[bytes]:
        raise NotImplementedError

    def write(self, pkt: bytes) -> bool:
        raise NotImplementedError

    async def wait_readable(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TunGone(OSError):
    """The TUN device stopped working under us (its interface or namespace was removed)."""


class FdIO(PacketIO):
    """A non-blocking packet fd (TUN or datagram socket). The fd is not closed by us unless
    ``owns=True``: the Lab that created the TUN owns it."""

    def __init__(self, fd: int, *, owns: bool = False):
        self.fd = fd
        self.owns = owns
        os.set_blocking(fd, False)
        self.write_errors = 0

    def read_batch(self, limit: int) -> list[bytes]:
        out = []
        read = os.read
        fd = self.fd
        while len(out) < limit:
            try:
                pkt = read(fd, MAX_PACKET)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as e:
                # EBADFD/EIO/ENXIO: read(2) on a TUN whose interface was deleted
                raise TunGone(e.errno, "the TUN device went away (its interface or namespace "
                                       f"was removed): {e.strerror}") from None
            if not pkt:  # EOF: the device or peer went away; nothing more will come
                break
            out.append(pkt)
        return out

    def write(self, pkt: bytes) -> bool:
        try:
            os.write(self.fd, pkt)
            return True
        except InterruptedError:
            try:
                os.write(self.fd, pkt)
                return True
            except OSError:
                self.write_errors += 1
                return False
        except OSError as e:
            # A full TUN queue or a packet the device refuses is a drop on the wire, never a crash.
            if e.errno in _DROP_ERRNOS or isinstance(e, BlockingIOError):
                self.write_errors += 1
                return False
            raise

    async def wait_readable(self) -> None:
        await trio.lowlevel.wait_readable(self.fd)

    def close(self) -> None:
        if self.owns and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class MemoryIO(PacketIO):
    """One end of an in-memory packet pipe; make both ends with ``memory_pair()``.

    ``capacity`` bounds the receive queue like a TUN's txqueuelen: writes beyond it are dropped.
    """

    def __init__(self, capacity: int = 1000):
        self.inbox: deque[bytes] = deque()
        self.capacity = capacity
        self.peer: MemoryIO | None = None
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False
        self.drops = 0

    def read_batch(self, limit: int) -> list[bytes]:
        inbox = self.inbox
        n = min(limit, len(inbox))
        return [inbox.popleft() for _ in range(n)]

    def write(self, pkt: bytes) -> bool:
        peer = self.peer
        if peer is None or peer.closed or len(peer.inbox) >= peer.capacity:
            self.drops += 1
            return False
        peer.inbox.append(bytes(pkt))
        if peer._lot:
            peer._lot.unpark_all()
        return True

    async def wait_readable(self) -> None:
        if self.inbox:
            await trio.lowlevel.checkpoint()
            return
        await self._lot.park()

    def close(self) -> None:
        self.closed = True


def memory_pair(capacity: int = 1000) -> tuple[MemoryIO, MemoryIO]:
    a, b = MemoryIO(capacity), MemoryIO(capacity)
    a.peer, b.peer = b, a
    return a, b
