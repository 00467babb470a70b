"""The listener state Linux shares across CPUs, behind one small interface.

One LISTEN socket served by several endpoint shards (``shell/shards.py``: one process per queue
of a multi-queue TUN) is still one socket: its request and child sockets live on the CPU that
handled their packets, but the admission state is the listener's and every CPU sees the same:

  * ``qlen`` and ``young``: ``reqsk_queue_len`` / ``reqsk_queue_len_young`` (``atomic_t`` in
    ``struct request_sock_queue``), read by ``inet_csk_reqsk_queue_is_full`` and the timer's
    ``reqsk_timer_handler`` thresholds; ``reqsk_queue_added`` / ``reqsk_queue_removed``.
  * ``acceptq``: ``sk_ack_backlog`` (``sk_acceptq_added`` / ``sk_acceptq_removed``), tested by
    ``sk_acceptq_is_full``. ``admit_child`` tests and adds in one step: the kernel reads, then
    adds without a lock (two CPUs may both take the last slot); here backlog N admits exactly
    N+1 children however many shards race, which is the one-CPU rule the parity tests check.
  * ``warned``: ``request_sock_queue.synflood_warned`` ("Possible SYN flooding" once per
    listener, ``tcp_syn_flood_action``), a test-and-set.
  * ``last_overflow``: the stamp ``tcp_synq_overflow`` writes and
    ``tcp_synq_no_recent_overflow`` reads to gate cookie validation (the listener's
    ``rx_opt.ts_recent_stamp``); needs the shards to share one clock base.

Cookie secrets are shared by handing every shard the same ``Stack(secret=...)``; MIB counters
stay per shard and are summed by the views, as the kernel sums its per-CPU MIBs.

``LocalShares`` (one process, plain ints) is the default; ``MemShares`` keeps the same fields in
a shared buffer (an ``mmap`` of a memfd the shards inherit) under a lock object with
``acquire()``/``release()`` (``shell/shards.py`` passes an fcntl record lock). Sans-IO: no clock
is read here; ``now`` comes from the caller.
"""
from __future__ import annotations

import math
import struct

from .linux_rules import acceptq_is_full, synq_overflow_stamp


class LocalShare:
    """One listener's shared admission state, in one process."""

    __slots__ = ("qlen", "young", "acceptq", "warned", "last_overflow")

    def __init__(self):
        self.qlen = self.young = self.acceptq = 0
        self.warned = False
        self.last_overflow = None

    def add(self, qlen: int = 0, young: int = 0, acceptq: int = 0) -> None:
        self.qlen += qlen
        self.young += young
        self.acceptq += acceptq

    # ---- the request (SYN) queue ----
    def req_added(self) -> None:
        """``reqsk_queue_added``: one more request, young."""
        self.qlen += 1
        self.young += 1

    def req_removed(self, young: bool) -> None:
        """``reqsk_queue_removed``."""
        self.qlen -= 1
        if young:
            self.young -= 1

    def req_aged(self) -> None:
        """``reqsk_timer_handler``: a request's first timeout makes it old."""
        self.young -= 1

    # ---- the accept queue ----
    def admit_child(self, backlog: int) -> bool:
        """``sk_acceptq_is_full`` then ``sk_acceptq_added``, as one step."""
        if acceptq_is_full(self.acceptq, backlog):
            return False
        self.acceptq += 1
        return True

    def child_removed(self, n: int = 1) -> None:
        """``sk_acceptq_removed`` (accept, or the listener closing)."""
        self.acceptq -= n

    # ---- once per listener, and the overflow stamp ----
    def warn_once(self) -> bool:
        """True for the first caller only (``synflood_warned``)."""
        if self.warned:
            return False
        self.warned = True
        return True

    def stamp_overflow(self, now: float) -> None:
        """``tcp_synq_overflow``."""
        self.last_overflow = synq_overflow_stamp(self.last_overflow, now)

    def counts(self) -> tuple[int, int, int]:
        return self.qlen, self.young, self.acceptq


class LocalShares:
    """The default: each listener its own ``LocalShare`` (no other process to share with)."""

    def attach(self, addr: int, port: int) -> LocalShare:
        return LocalShare()

    def detach(self, share) -> None:
        pass


# ---- shared memory ---------------------------------------------------------------------------
#
# A slot per listener: a header (key, users, warned, last_overflow) and one column of
# (qlen, young, acceptq) per shard, written only by that shard, as Linux keeps per-CPU counts
# lock-free where a sum is enough. The lock is taken only where one decision must see every
# shard at once: a child's admission (test and add), the first flood warning, a new overflow
# stamp, and listen/close. Plain reads of the sums may be a moment stale, as the kernel's
# READ_ONCE reads are; a stale accept count is never lower than the truth at admission,
# because only admissions (under the lock) raise it.

_HEAD = struct.Struct("<QQqqqd")       # addr hi, addr lo, port + 1, users, warned, last_overflow
_COL = struct.Struct("<qqq")           # qlen, young, acceptq of one shard
MAX_SHARDS = 64
SLOT_SIZE = 2048                       # header + 64 columns, cache-line aligned slots
SLOTS = 16


def mem_size(slots: int = SLOTS) -> int:
    return slots * SLOT_SIZE


class _Locked:
    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


class MemShare:
    """One listener's slot in shared memory, seen by shard ``shard`` of ``nshards``: the
    ``LocalShare`` interface."""

    __slots__ = ("buf", "off", "locked", "col", "_sums", "_warned", "_stamp")

    def __init__(self, buf, off: int, locked: _Locked, shard: int, nshards: int):
        self.buf, self.off, self.locked = buf, off, locked
        # what this shard already saw: the flag never clears and the stamp only moves forward
        # for one socket, so a flood's SYNs need not read the shared header each time
        self._warned, self._stamp = False, None
        self.col = off + _HEAD.size + shard * _COL.size
        self._sums = struct.Struct(f"<{3 * nshards}q")     # every shard's column at once

    def counts(self) -> tuple[int, int, int]:
        v = self._sums.unpack_from(self.buf, self.off + _HEAD.size)
        if len(v) == 6:                                  # two shards: the common case
            return v[0] + v[3], v[1] + v[4], v[2] + v[5]
        return sum(v[0::3]), sum(v[1::3]), sum(v[2::3])

    def add(self, qlen: int = 0, young: int = 0, acceptq: int = 0) -> None:
        """This shard's column only: no lock (one writer)."""
        q, y, a = _COL.unpack_from(self.buf, self.col)
        _COL.pack_into(self.buf, self.col, q + qlen, y + young, a + acceptq)

    def req_added(self) -> None:
        self.add(1, 1)

    def req_removed(self, young: bool) -> None:
        self.add(-1, -1 if young else 0)

    def req_aged(self) -> None:
        self.add(young=-1)

    def admit_child(self, backlog: int) -> bool:
        with self.locked:
            if acceptq_is_full(self.counts()[2], backlog):
                return False
            self.add(acceptq=1)
            return True

    def child_removed(self, n: int = 1) -> None:
        self.add(acceptq=-n)

    def warn_once(self) -> bool:
        if self._warned or self.warned:
            self._warned = True
            return False                 # the common case under a flood: no lock
        with self.locked:
            h = list(_HEAD.unpack_from(self.buf, self.off))
            if h[4]:
                return False
            h[4] = 1
            _HEAD.pack_into(self.buf, self.off, *h)
            self._warned = True
            return True

    def stamp_overflow(self, now: float) -> None:
        seen = self._stamp
        if seen is not None and seen <= now <= seen + 1.0:
            return          # within a second of a stamp we saw: any later one covers now too
        last = self.last_overflow
        if synq_overflow_stamp(last, now) == last:
            self._stamp = last
            return                       # stamped less than a second ago: nothing to write
        with self.locked:
            h = list(_HEAD.unpack_from(self.buf, self.off))
            h[5] = self._stamp = synq_overflow_stamp(None if math.isnan(h[5]) else h[5], now)
            _HEAD.pack_into(self.buf, self.off, *h)

    @property
    def last_overflow(self) -> float | None:
        t = _HEAD.unpack_from(self.buf, self.off)[5]
        return None if math.isnan(t) else t

    @last_overflow.setter
    def last_overflow(self, t: float | None) -> None:
        with self.locked:
            h = list(_HEAD.unpack_from(self.buf, self.off))
            h[5] = math.nan if t is None else t
            _HEAD.pack_into(self.buf, self.off, *h)
            self._stamp = None

    @property
    def qlen(self) -> int:
        return self.counts()[0]

    @property
    def young(self) -> int:
        return self.counts()[1]

    @property
    def acceptq(self) -> int:
        return self.counts()[2]

    @property
    def warned(self) -> bool:
        return bool(_HEAD.unpack_from(self.buf, self.off)[4])


class MemShares:
    """Listener slots in a shared buffer (zeroed by its creator), seen by shard ``shard`` of
    ``nshards``. A listener on (addr, port) finds or claims its slot at listen(); the first
    shard to listen on it after every shard closed it starts it afresh (a new socket:
    ``inet_csk_listen_start`` clears the flag and the queues)."""

    def __init__(self, buf, lock, shard: int = 0, nshards: int = 1, slots: int = SLOTS):
        if len(buf) < mem_size(slots):
            raise ValueError(f"shared buffer too small: {len(buf)} < {mem_size(slots)}")
        if not 0 <= shard < nshards <= MAX_SHARDS:
            raise ValueError(f"shard {shard} of {nshards}: at most {MAX_SHARDS} shards")
        self.buf, self.slots, self.shard, self.nshards = buf, slots, shard, nshards
        self.locked = _Locked(lock)

    @staticmethod
    def _key(addr: int, port: int) -> tuple[int, int, int]:
        # port + 1 so that an all-zero slot is free
        return addr >> 64, addr & 0xFFFFFFFFFFFFFFFF, port + 1

    def _find(self, k) -> int | None:
        for i in range(self.slots):
            if _HEAD.unpack_from(self.buf, i * SLOT_SIZE)[:3] == k:
                return i * SLOT_SIZE
        return None

    def attach(self, addr: int, port: int) -> MemShare:
        k = self._key(addr, port)
        with self.locked:
            off = self._find(k)
            if off is None:
                off = self._find((0, 0, 0))
                if off is None:
                    raise ValueError(f"more than {self.slots} shared listeners")
            h = list(_HEAD.unpack_from(self.buf, off))
            if h[3] == 0:        # nobody listens: a fresh socket
                self.buf[off:off + SLOT_SIZE] = bytes(SLOT_SIZE)
                h = [*k, 0, 0, math.nan]
            h[3] += 1
            _HEAD.pack_into(self.buf, off, *h)
        return MemShare(self.buf, off, self.locked, self.shard, self.nshards)

    def peek(self, addr: int, port: int) -> tuple[int, int, int]:
        """(qlen, young, acceptq) of the listener on (addr, port), zeros if none: for views
        in a process that does not listen itself."""
        off = self._find(self._key(addr, port))
        if off is None or not _HEAD.unpack_from(self.buf, off)[3]:
            return 0, 0, 0
        return MemShare(self.buf, off, self.locked, 0, self.nshards).counts()

    def detach(self, share: MemShare) -> None:
        with self.locked:
            h = list(_HEAD.unpack_from(self.buf, share.off))
            h[3] -= 1
            _HEAD.pack_into(self.buf, share.off, *h)
