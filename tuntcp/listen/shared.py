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

# slot: key (addr as two u64 for IPv6, port), users, qlen, young, acceptq, warned, last_overflow
_SLOT = struct.Struct("<QQqqqqqqd")
SLOT_SIZE = 128                     # two cache lines: no false sharing between listeners
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
    """One listener's slot in shared memory: the ``LocalShare`` interface, each operation one
    locked read-modify-write of the slot."""

    __slots__ = ("buf", "off", "locked", "_key")

    def __init__(self, buf, off: int, locked: _Locked, key: tuple[int, int, int]):
        self.buf, self.off, self.locked, self._key = buf, off, locked, key

    def _get(self) -> list:
        return list(_SLOT.unpack_from(self.buf, self.off))

    def _put(self, v: list) -> None:
        _SLOT.pack_into(self.buf, self.off, *v)

    def add(self, qlen: int = 0, young: int = 0, acceptq: int = 0) -> None:
        with self.locked:
            v = self._get()
            v[4] += qlen
            v[5] += young
            v[6] += acceptq
            self._put(v)

    def req_added(self) -> None:
        self.add(1, 1)

    def req_removed(self, young: bool) -> None:
        self.add(-1, -1 if young else 0)

    def req_aged(self) -> None:
        self.add(young=-1)

    def admit_child(self, backlog: int) -> bool:
        with self.locked:
            v = self._get()
            if acceptq_is_full(v[6], backlog):
                return False
            v[6] += 1
            self._put(v)
            return True

    def child_removed(self, n: int = 1) -> None:
        self.add(acceptq=-n)

    def warn_once(self) -> bool:
        with self.locked:
            v = self._get()
            if v[7]:
                return False
            v[7] = 1
            self._put(v)
            return True

    def stamp_overflow(self, now: float) -> None:
        with self.locked:
            v = self._get()
            last = None if math.isnan(v[8]) else v[8]
            v[8] = synq_overflow_stamp(last, now)
            self._put(v)

    @property
    def last_overflow(self) -> float | None:
        t = _SLOT.unpack_from(self.buf, self.off)[8]     # one aligned 8-byte field: no lock
        return None if math.isnan(t) else t

    @last_overflow.setter
    def last_overflow(self, t: float | None) -> None:
        with self.locked:
            v = self._get()
            v[8] = math.nan if t is None else t
            self._put(v)

    @property
    def qlen(self) -> int:
        return _SLOT.unpack_from(self.buf, self.off)[4]

    @property
    def young(self) -> int:
        return _SLOT.unpack_from(self.buf, self.off)[5]

    @property
    def acceptq(self) -> int:
        return _SLOT.unpack_from(self.buf, self.off)[6]

    @property
    def warned(self) -> bool:
        return bool(_SLOT.unpack_from(self.buf, self.off)[7])

    def counts(self) -> tuple[int, int, int]:
        v = _SLOT.unpack_from(self.buf, self.off)
        return v[4], v[5], v[6]


class MemShares:
    """Listener slots in a shared buffer (zeroed by its creator). A listener on (addr, port)
    finds or claims its slot at listen(); the first shard to listen on it after every shard
    closed it starts it afresh (a new socket: ``inet_csk_listen_start`` clears the flag)."""

    def __init__(self, buf, lock, slots: int = SLOTS):
        if len(buf) < mem_size(slots):
            raise ValueError(f"shared buffer too small: {len(buf)} < {mem_size(slots)}")
        self.buf, self.slots = buf, slots
        self.locked = _Locked(lock)

    @staticmethod
    def _key(addr: int, port: int) -> tuple[int, int, int]:
        # port + 1 so that an all-zero slot is free
        return addr >> 64, addr & 0xFFFFFFFFFFFFFFFF, port + 1

    def attach(self, addr: int, port: int) -> MemShare:
        k = self._key(addr, port)
        with self.locked:
            free = None
            for i in range(self.slots):
                off = i * SLOT_SIZE
                v = list(_SLOT.unpack_from(self.buf, off))
                if (v[0], v[1], v[2]) == k:
                    break
                if free is None and v[2] == 0:
                    free = off
            else:
                if free is None:
                    raise ValueError(f"more than {self.slots} shared listeners")
                off, v = free, [0] * 9
            if v[3] == 0:        # nobody listens: a fresh socket
                v = [k[0], k[1], k[2], 0, 0, 0, 0, 0, math.nan]
            v[3] += 1
            _SLOT.pack_into(self.buf, off, *v)
        return MemShare(self.buf, off, self.locked, k)

    def peek(self, addr: int, port: int) -> tuple[int, int, int]:
        """(qlen, young, acceptq) of the listener on (addr, port), zeros if none: for views
        in a process that does not listen itself."""
        k = self._key(addr, port)
        for i in range(self.slots):
            v = _SLOT.unpack_from(self.buf, i * SLOT_SIZE)
            if (v[0], v[1], v[2]) == k and v[3]:
                return v[4], v[5], v[6]
        return 0, 0, 0

    def detach(self, share: MemShare) -> None:
        with self.locked:
            v = list(_SLOT.unpack_from(self.buf, share.off))
            v[3] -= 1
            _SLOT.pack_into(self.buf, share.off, *v)
