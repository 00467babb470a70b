"""Out-of-order data: the receiver's queue (Linux ``tcp_data_queue_ofo``) and the sender's
SACK scoreboard (``tcp_sacktag_write_queue``, RFC 6675 simplified). All sequence numbers are
mod 2^32 (``tuntcp.core.seq``).
"""
from __future__ import annotations

from bisect import bisect_right
from heapq import nlargest
from operator import itemgetter

from .seq import HALF, MASK, seq_diff, seq_gt, seq_le, seq_lt


class Reassembly:
    """Receive-side out-of-order queue.

    Blocks are kept coalesced and sorted as ``[key, bytearray, stamp]``, where ``key`` is the
    left edge as an offset from ``_base`` (a recent rcv_nxt, so keys sort like sequence numbers
    and ``bisect`` finds a segment's neighbours). ``stamp`` orders blocks by most recent arrival
    for the SACK option (RFC 2018 §4, Linux ``tcp_sack_new_ofo_skb`` moves the block to the
    front).

    Overlapping copies resolve as in Linux's ofo queue (``tcp_data_queue_ofo`` then
    ``tcp_ofo_queue``, which skips what is already delivered): the copy that starts lower wins;
    at the same start the queued one wins unless the newcomer is longer (``rb_replace_node``);
    in-order data wins over anything queued. A coalesced block counts as one skb starting at
    its left edge (Linux coalesces exactly-adjacent skbs, ``tcp_ooo_try_coalesce``).

    ``limit_bytes`` bounds what is held out of order. Over the limit, blocks that lie entirely
    beyond the new segment are pruned from the right end first (``tcp_prune_ofo_queue``); if
    that is not enough the new segment is dropped. ``drops`` counts dropped segments,
    ``pruned`` pruned blocks.
    """

    __slots__ = ("blocks", "_starts", "_base", "ooo_bytes", "limit_bytes", "drops", "pruned", "_stamp")

    def __init__(self, limit_bytes: int = 1 << 22):
        # () until the first out-of-order segment: most connections never queue one
        self.blocks: list[list] | tuple = ()
        self._starts: list[int] | tuple = ()
        self._base = 0
        self.ooo_bytes = 0
        self.limit_bytes = limit_bytes
        self.drops = 0
        self.pruned = 0
        self._stamp = 0

    def insert(self, seq: int, data, rcv_nxt: int) -> tuple[bytes, int]:
        """Queue one segment's payload; return (bytes now deliverable in order, new rcv_nxt)."""
        n = len(data)
        off = seq_diff(seq, rcv_nxt)
        if off < 0:                     # partly or wholly old: trim the left
            if off + n <= 0:
                return b"", rcv_nxt
            data = data[-off:]
            n += off
            off = 0
        if not n:
            return b"", rcv_nxt
        blocks = self.blocks
        if not blocks:
            if off == 0:                # the common in-order case
                return bytes(data), (rcv_nxt + n) & MASK
            if n > self.limit_bytes:
                self.drops += 1
                return b"", rcv_nxt
            self._stamp += 1
            self._base = rcv_nxt
            self.blocks = [[off, bytearray(data), self._stamp]]
            self._starts = [off]
            self.ooo_bytes = n
            return b"", rcv_nxt
        rk = (rcv_nxt - self._base) & MASK
        if blocks[0][0] < rk:
            self._trim_below(rk)
        if rk >= HALF // 2:             # keep keys far from the wrap: rebase
            self._rebase(rk)
            rk = 0
        self._add(rk + off, data)
        return self._deliver(rk, rcv_nxt)

    def _trim_below(self, rk: int) -> None:
        """The caller moved rcv_nxt past queued bytes: forget them."""
        blocks = self.blocks
        while blocks and blocks[0][0] < rk:
            b = blocks[0]
            end = b[0] + len(b[1])
            if end <= rk:
                blocks.pop(0)
                self._starts.pop(0)
                self.ooo_bytes -= len(b[1])
            else:
                del b[1][: rk - b[0]]
                self.ooo_bytes -= rk - b[0]
                b[0] = self._starts[0] = rk
                break

    def _rebase(self, by: int) -> None:
        for b in self.blocks:
            b[0] = (b[0] - by) & MASK
        self._starts = [b[0] for b in self.blocks]
        self._base = (self._base + by) & MASK

    def _add(self, k: int, data) -> None:
        blocks, starts = self.blocks, self._starts
        e = k + len(data)
        i = bisect_right(starts, k) - 1
        if i < 0 or starts[i] + len(blocks[i][1]) < k:
            i += 1                      # the block before does not reach k
        j = bisect_right(starts, e, i)  # blocks[i:j] touch or overlap [k, e]
        if j - i == 1 and starts[i] <= k:
            b = blocks[i]               # fast path: the segment extends one block's right end
            be = starts[i] + len(b[1])
            self._stamp += 1
            b[2] = self._stamp
            if be >= e:
                return                  # full duplicate: only its SACK recency changes
            if not self._room(e - be, j, e):
                return
            if starts[i] == k:          # same start, longer: it replaces the block
                b[1] = bytearray(data)
            else:                       # the block started lower: its bytes stay
                b[1] += data[be - k:]
            self.ooo_bytes += e - be
            return
        new_bytes = e - k
        for b in blocks[i:j]:
            new_bytes -= max(0, min(e, b[0] + len(b[1])) - max(k, b[0]))
        if not self._room(new_bytes, j, e):
            return
        self._stamp += 1
        # Here every touching block starts above k, except perhaps the first.
        lo, buf = k, bytearray()
        if j > i and starts[i] < k:     # it started lower: it keeps its bytes
            lo = starts[i]
            buf += blocks[i][1]
        pos = lo + len(buf)
        if e > pos:
            buf += data[pos - k:]
        if j > i:
            last = blocks[j - 1]
            if last[0] + len(last[1]) > e:      # the newcomer ends inside it: keep the rest
                buf += last[1][e - last[0]:]
        blocks[i:j] = [[lo, buf, self._stamp]]
        starts[i:j] = [lo]
        self.ooo_bytes += new_bytes

    def _room(self, need: int, j: int, e: int) -> bool:
        """Make room for ``need`` bytes by pruning blocks right of index j (all beyond e)."""
        if self.ooo_bytes + need <= self.limit_bytes:
            return True
        blocks = self.blocks
        while len(blocks) > j and self.ooo_bytes + need > self.limit_bytes:
            b = blocks.pop()
            self._starts.pop()
            self.ooo_bytes -= len(b[1])
            self.pruned += 1
        if self.ooo_bytes + need <= self.limit_bytes:
            return True
        self.drops += 1
        return False

    def _deliver(self, rk: int, rcv_nxt: int) -> tuple[bytes, int]:
        blocks = self.blocks
        while blocks and blocks[0][0] <= rk:
            b = blocks.pop(0)
            self._starts.pop(0)
            self.ooo_bytes -= len(b[1])
            if b[0] + len(b[1]) > rk:   # (a block wholly below rk: the caller moved rcv_nxt)
                out = b[1] if b[0] == rk else b[1][rk - b[0]:]
                return bytes(out), (rcv_nxt + len(out)) & MASK
        return b"", rcv_nxt

    def sack_blocks(self, limit: int = 4) -> list[tuple[int, int]]:
        """(left, right) edges, the block with the latest arrival first (RFC 2018 §4)."""
        base = self._base
        order = nlargest(limit, self.blocks, key=itemgetter(2))
        return [((base + b[0]) & MASK, (base + b[0] + len(b[1])) & MASK) for b in order]

    def clear(self) -> None:
        self.blocks = ()
        self._starts = ()
        self.ooo_bytes = 0

    def __len__(self) -> int:
        return len(self.blocks)


class Scoreboard:
    """Sender-side record of SACKed ranges, sorted, coalesced, all inside [snd_una, snd_nxt]."""

    __slots__ = ("ranges", "sacked_bytes", "invalid", "dsacks")

    def __init__(self):
        self.ranges: list[list[int]] | tuple = ()   # [left, right), sorted from snd_una
        self.sacked_bytes = 0
        self.invalid = 0                     # blocks ignored as bogus (TCPSACKDiscard)
        self.dsacks = 0                      # blocks below snd_una (D-SACK, RFC 2883)

    def on_sack(self, blocks, snd_una: int, snd_nxt: int) -> int:
        """Record the SACK blocks of an ACK; returns newly SACKed bytes.

        A block is used only when ``snd_una < left < right <= snd_nxt`` (Linux
        ``tcp_is_sackblock_valid``: a block starting at or below snd_una would have been
        cumulatively ACKed). Blocks ending at or below snd_una are D-SACKs (RFC 2883) and
        are counted, not recorded; other bad blocks are counted in ``invalid``.
        """
        self.clear_below(snd_una)
        before = self.sacked_bytes
        for l, r in blocks:
            if seq_le(r, snd_una) and seq_lt(l, r):
                self.dsacks += 1
                continue
            if not (seq_lt(l, r) and seq_gt(l, snd_una) and seq_le(r, snd_nxt)):
                self.invalid += 1
                continue
            if self.is_sacked(l, r):    # most ACKs repeat blocks we already have
                continue
            self._add(seq_diff(l, snd_una), seq_diff(r, snd_una), snd_una)
        return self.sacked_bytes - before

    def _add(self, lo: int, hi: int, base: int) -> None:
        out: list[list[int]] = []
        placed = False
        for rl, rr in self.ranges:
            s, e = seq_diff(rl, base), seq_diff(rr, base)
            if e < lo:
                out.append([rl, rr])
            elif s > hi:
                if not placed:
                    out.append([(base + lo) & MASK, (base + hi) & MASK])
                    placed = True
                out.append([rl, rr])
            else:
                lo, hi = min(lo, s), max(hi, e)
        if not placed:
            out.append([(base + lo) & MASK, (base + hi) & MASK])
        self.ranges = out
        self.sacked_bytes = sum((r - l) & MASK for l, r in out)

    def is_sacked(self, seq: int, end: int) -> bool:
        """True when all of [seq, end) lies inside one SACKed range."""
        # seq_ge(seq, l) and seq_le(end, r), inlined: per-ACK path. From the top: new SACK
        # blocks are usually the highest.
        for l, r in reversed(self.ranges):
            if ((seq - l) & MASK) < HALF:
                return ((r - end) & MASK) < HALF
        return False

    def clear_below(self, snd_una: int) -> None:
        """Forget what the cumulative ACK now covers."""
        ranges = self.ranges
        if not ranges or ((ranges[0][0] - snd_una) & MASK) < HALF:
            return                      # nothing at or below snd_una (the usual case)
        out = []
        for l, r in self.ranges:
            if seq_le(r, snd_una):
                continue
            if seq_lt(l, snd_una):
                l = snd_una
            out.append([l, r])
        if len(out) != len(self.ranges) or (out and out[0][0] != self.ranges[0][0]):
            self.ranges = out
            self.sacked_bytes = sum((r - l) & MASK for l, r in out)

    def highest_sacked(self) -> int | None:
        return self.ranges[-1][1] if self.ranges else None

    def holes(self, snd_una: int, snd_nxt: int) -> list[tuple[int, int]]:
        """Un-SACKed gaps between snd_una and the highest SACKed byte (RFC 6675 style):
        data above the highest SACK is not presumed lost."""
        out = []
        pos = snd_una
        for l, r in self.ranges:
            if seq_gt(l, pos):
                out.append((pos, l))
            if seq_gt(r, pos):
                pos = r
        return out

    def is_lost(self, seq: int, mss: int, dupthresh: int = 3) -> bool:
        """RFC 6675 IsLost(seq): dupthresh discontiguous SACKed ranges above seq, or more than
        (dupthresh - 1) * mss SACKed bytes above it."""
        ranges = 0
        above = 0
        for l, r in self.ranges:
            if seq_gt(r, seq):
                ranges += 1
                above += seq_diff(r, seq if seq_gt(seq, l) else l)
        return ranges >= dupthresh or above > (dupthresh - 1) * mss

    def clear(self) -> None:
        self.ranges = ()
        self.sacked_bytes = 0
