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

``GsoLink`` is the same link for an offload endpoint, whose TUN side carries virtio-net frames
(``wire/vnet.py``): loss, duplication, corruption, reordering, jitter, rate and limit act on
wire segments exactly as above (a GSO super-packet stands for ceil(payload / gso_size) of
them), but a super-packet that only needs delaying crosses whole.
"""
from __future__ import annotations

import heapq
import random
from collections import deque

from ..wire.vnet import HDR_LEN, complete_csum, frame_info, segment_frame


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

    def push_all(self, pkts, now: float) -> None:
        """``push`` each of ``pkts`` in order; a plain constant delay (no loss, duplicate,
        corrupt or limit) takes them in one step."""
        fifo = self._fifo
        if fifo is None or self.loss or self.duplicate or self.corrupt or self.limit is not None \
                or (fifo and fifo[-1][0] > now + self.delay):
            for p in pkts:
                self.push(p, now)
            return
        due = now + self.delay
        fifo.extend([(due, p) for p in pkts])
        self.stats["sent"] += len(pkts)

    def _enqueue(self, pkt: bytes, now: float) -> None:
        rng = self._rng
        if self.corrupt and pkt and rng.random() < self.corrupt:
            pkt = self._corrupt(pkt)
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

    def _corrupt(self, pkt: bytes) -> bytes:
        """One random bit of one random byte flipped."""
        b = bytearray(pkt)
        b[self._rng.randrange(len(b))] ^= 1 << self._rng.randrange(8)
        return bytes(b)

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


class GsoLink(LinkModel):
    """A LinkModel for virtio-net frames (``vnet_hdr`` + IP packet), as an offload endpoint
    reads and writes them. ``stats`` count wire segments, as the plain link's do.

    A GSO frame that only needs delaying (no loss drawn for any of its segments, nothing else
    configured) is delivered whole, at the time its segments would have been. Otherwise it is
    cut into its wire segments (``segment_frame``: their own headers and full checksums) and
    each goes through the plain link. With loss alone the draws are one per wire segment, in
    order, so a seed drops the same segments as on the plain link. A corrupted frame gets its
    checksum completed and its checksum marks cleared first, so the receiver verifies it and
    drops it, as it would a corrupted packet on the wire.
    """

    frames = True      # an offload Endpoint accepts only links that carry vnet frames

    def _needs_cutting(self) -> bool:
        return bool(self.duplicate or self.corrupt or self.reorder or self.jitter
                    or self.rate is not None or self.limit is not None)

    def push(self, frame, now: float) -> None:
        if not frame[1]:                                  # gso_type NONE: a plain frame
            LinkModel.push(self, frame, now)
            return
        _, _, n = frame_info(frame)
        if n == 1:
            LinkModel.push(self, frame, now)
            return
        if self._needs_cutting():
            for f in segment_frame(frame):
                LinkModel.push(self, f, now)
            return
        stats = self.stats
        stats["sent"] += n
        if self.loss:
            rng, loss = self._rng, self.loss
            lost = [rng.random() < loss for _ in range(n)]
            if any(lost):
                stats["dropped"] += sum(lost)
                for f, gone in zip(segment_frame(frame), lost):
                    if not gone:
                        self._enqueue(f, now)
                return
        self._enqueue(frame, now)

    def push_all(self, frames, now: float) -> None:
        if self.loss or self._needs_cutting():
            for f in frames:
                self.push(f, now)
            return
        LinkModel.push_all(self, frames, now)     # constant delay: all whole, in one step
        self.stats["sent"] += sum(frame_info(f)[2] - 1 for f in frames if f[1])

    def _corrupt(self, frame) -> bytes:
        b = bytearray(complete_csum(frame))
        b[HDR_LEN + self._rng.randrange(len(b) - HDR_LEN)] ^= 1 << self._rng.randrange(8)
        return bytes(b)

    def pop_due(self, now: float) -> list:
        out = LinkModel.pop_due(self, now)
        extra = sum(frame_info(f)[2] - 1 for f in out if f[1])
        if extra:
            self.stats["delivered"] += extra
        return out
