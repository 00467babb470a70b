"""A seeded, sans-IO link model (what `tc qdisc ... netem` would do, which this kernel lacks).

One instance per direction.  Time is passed in (`now`, float seconds); nothing here reads a clock.

    link = LinkModel(seed=1, delay=0.010, loss=0.01)
    link.push(pkt, now)            # a packet enters the link
    link.pop_due(now) -> [pkt]     # packets whose delivery time has come, in delivery order
    link.next_deadline()           # when to call pop_due next (None: link empty)

Semantics follow netem where netem defines them:
- loss / duplicate / corrupt: independent per packet; corrupt flips one random bit of one
  random byte (the receiver's checksum then drops it).
- delay + jitter: each packet is delayed by delay + uniform(-jitter, +jitter), never below 0;
  jitter therefore reorders, as netem's does.
- reorder: with that probability a packet skips the delay and is delivered at once, ahead of
  delayed packets (netem's "reorder" gap-less form).  Like netem, it needs delay > 0 to matter.
- rate: bits per second; packets are serialized one after another before the delay.
- limit: packets queued in the link at most (netem's default is 1000); excess is dropped.
Same seed and same pushes -> same output.
"""
from __future__ import annotations

import heapq
import random
from collections import deque


class LinkModel:
    def __init__(self, seed: int, delay: float = 0.0, jitter: float = 0.0, loss: float = 0.0,
                 reorder: float = 0.0, duplicate: float = 0.0, corrupt: float = 0.0,
                 rate: float | None = None, limit: int | None = None):
        for name, p in (("loss", loss), ("reorder", reorder), ("duplicate", duplicate),
                        ("corrupt", corrupt)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must be >= 0")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0 bits/s (or None for unlimited)")
        self.delay = delay
        self.jitter = jitter
        self.loss = loss
        self.reorder = reorder
        self.duplicate = duplicate
        self.corrupt = corrupt
        self.rate = rate
        self.limit = limit
        self._rng = random.Random(seed)
        self._heap: list[tuple[float, int, bytes]] = []
        # a constant delay keeps delivery order = push order (time only moves forward): a FIFO
        # then does the heap's job at a third of its cost (the storm's per-packet path)
        self._fifo: deque | None = None if (jitter or reorder or rate) else deque()
        self._seq = 0
        self._link_free = 0.0  # when the serializer (rate) is next idle
        self.stats = {"sent": 0, "delivered": 0, "dropped": 0, "duplicated": 0, "reordered": 0,
                      "corrupted": 0}

    def push(self, pkt: bytes, now: float) -> None:
        self.stats["sent"] += 1
        rng = self._rng
        if self.loss and rng.random() < self.loss:
            self.stats["dropped"] += 1
            return
        copies = 1
        if self.duplicate and rng.random() < self.duplicate:
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            if self.limit is not None and len(self) >= self.limit:
                self.stats["dropped"] += 1
                continue
            self._enqueue(pkt, now)

    def _enqueue(self, pkt: bytes, now: float) -> None:
        rng = self._rng
        if self.corrupt and pkt and rng.random() < self.corrupt:
            b = bytearray(pkt)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            pkt = bytes(b)
            self.stats["corrupted"] += 1
        start = now
        if self.rate is not None:
            start = max(now, self._link_free) + len(pkt) * 8 / self.rate
            self._link_free = start
        if self.reorder and rng.random() < self.reorder:
            due = start
            self.stats["reordered"] += 1
        else:
            d = self.delay
            if self.jitter:
                d = max(0.0, d + rng.uniform(-self.jitter, self.jitter))
            due = start + d
        fifo = self._fifo
        if fifo is not None:
            if not fifo or fifo[-1][0] <= due:
                fifo.append((due, pkt))
                return
            # a caller's clock went backwards: order by due time from now on
            for d, p in fifo:
                heapq.heappush(self._heap, (d, self._seq, p))
                self._seq += 1
            self._fifo = None
        heapq.heappush(self._heap, (due, self._seq, pkt))
        self._seq += 1

    def pop_due(self, now: float) -> list[bytes]:
        fifo = self._fifo
        if fifo is not None:
            out = []
            while fifo and fifo[0][0] <= now:
                out.append(fifo.popleft()[1])
            self.stats["delivered"] += len(out)
            return out
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        self.stats["delivered"] += len(out)
        return out

    def next_deadline(self) -> float | None:
        q = self._fifo if self._fifo is not None else self._heap
        return q[0][0] if q else None

    def __len__(self) -> int:
        return len(self._fifo if self._fifo is not None else self._heap)
