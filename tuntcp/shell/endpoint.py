"""Runs a sans-IO Stack on a TUN fd (or an in-memory pipe) inside trio.

One task per TUN (``await endpoint.run()``), each pass of its loop being one batch:

    wait_readable -> read until EAGAIN -> stack.receive(pkt, now) for each
    -> stack.on_timers(now) if a deadline is due -> write stack.take_output()
    -> pcap flush -> wake the app tasks of stack.dirty -> sleep until the earliest of
       (stack.next_deadline(), link deadlines, readable)

There is no checkpoint per packet and no periodic tick: the sleep is a cancel-scope deadline
taken from the stack's timer heap. Time is ``trio.current_time()`` (so MockClock drives tests)
and is handed to the stack, which never reads a clock.

``offload=True`` (with ``Stack(encoder=VnetEncoder())`` and a TUN opened with IFF_VNET_HDR)
wraps the fd in a ``VnetIO``: packets the kernel marked checksum-valid skip the TCP checksum,
TSO super-packets come in whole (one read; the stack takes them as their wire segments), and
the stack's output goes out as GSO frames (``wire/vnet.py``). ``encoder_for(offload)`` is the
encoder to give the Stack. Link models on an offload endpoint must carry frames (``frames``
true: ``harness.link.GsoLink``, which delays whole frames and cuts a super-packet only where a
wire segment must be dropped or corrupted).

App tasks (TcpStream, TcpListener) call into the stack directly and then ``kick()``, which
writes whatever the call produced and pulls the loop's wake-up earlier if a timer moved.
"""
from __future__ import annotations

from .. import mib

import math
import time

import trio

from ..host.encode import PacketEncoder, VnetEncoder
from .saturation import Saturation
from .tun import FdIO, PacketIO
from .vnet import F_DATA_VALID, F_NEEDS_CSUM, HDR, HDR_LEN, VnetIO

_current_task = trio.lowlevel.current_task
_wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
_ABORTED = trio.lowlevel.Abort.SUCCEEDED

TX_DROP = mib.TuntcpTunTxDrops   # packets the TUN (or pipe) refused: EAGAIN/ENOBUFS on write


def encoder_for(offload: bool):
    """The output encoder for a TUN with (``VnetEncoder``) or without a vnet header."""
    return VnetEncoder() if offload else PacketEncoder()


class Endpoint:
    """Runs a Stack on a TUN fd (or a PacketIO): ``await ep.run()`` reads packets, fires timers and
    wakes the streams; listeners and streams are opened with open_tcp_listener/open_tcp_stream."""

    def __init__(self, stack, tun, *, pcap=None, link_in=None, link_out=None,
                 clock=trio.current_time, max_batch: int = 4096, offload: bool = False):
        self.stack = stack
        self.offload = offload
        if offload:
            for link in (link_in, link_out):
                if link is not None and not getattr(link, "frames", False):
                    raise ValueError("offload=True needs GsoLink link models (they carry vnet frames)")
            if not isinstance(stack.encoder, VnetEncoder):
                raise ValueError("Endpoint(offload=True) needs a Stack(encoder=VnetEncoder())")
            tun = VnetIO(tun) if isinstance(tun, int) else tun
            if not hasattr(tun, "read_frames"):
                raise ValueError("Endpoint(offload=True) needs a TUN fd or a VnetIO")
        elif isinstance(stack.encoder, VnetEncoder):
            raise ValueError("a Stack with a VnetEncoder writes vnet frames: use Endpoint(offload=True)")
        self.io: PacketIO = FdIO(tun) if isinstance(tun, int) else tun
        self.pcap = pcap
        self.link_in = link_in      # models the path client -> endpoint (applied on read)
        self.link_out = link_out    # models the path endpoint -> client (applied on write)
        self.clock = clock
        self._now = clock           # run() swaps in the run's clock object (one call, not three)
        self.max_batch = max_batch
        # tasks parked on a connection or listener (by the object: both hash by identity)
        self._waiters: dict[object, list] = {}
        self._sleep: trio.CancelScope | None = None
        self._pcap_off: float | None = None
        self.stats = {"passes": 0, "batches": 0, "rx": 0, "tx": 0, "tx_drops": 0, "max_batch": 0,
                      "timer_wakes": 0}
        self.running = False
        self.saturation = Saturation(counters=stack.counters)   # is the loop keeping up?

    # ---- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        if self.running:
            raise RuntimeError("Endpoint.run() is already running")
        self.running = True
        stack, io, stats, sat = self.stack, self.io, self.stats, self.saturation
        clock = self._now = self._clock()
        max_batch, link_in, offload = self.max_batch, self.link_in, self.offload
        try:
            while True:
                now = clock()
                stats["passes"] += 1
                sat.on_pass(now, self._deadline())
                pkts = io.read_frames(max_batch) if offload else io.read_batch(max_batch)
                full = len(pkts) >= max_batch
                if link_in is not None:
                    if pkts:
                        link_in.push_all(pkts, now)
                    pkts = link_in.pop_due(now)
                if pkts:
                    n = len(pkts)
                    sat.on_batch(n)
                    stats["batches"] += 1
                    stats["rx"] += n
                    if n > stats["max_batch"]:
                        stats["max_batch"] = n
                    if self.pcap is not None:
                        ts = now + self._pcap_offset(now)
                        for p in pkts:
                            self.pcap.write(memoryview(p)[HDR_LEN:] if offload else p, ts)
                    receive = stack.receive
                    if offload:
                        unpack = HDR.unpack_from
                        for f in pkts:
                            flags, gso_type, _, size = unpack(f)[:4]
                            receive(memoryview(f)[HDR_LEN:], now, flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0,
                                    size if gso_type else 0)
                    else:
                        for p in pkts:
                            receive(p, now)
                dl = stack.next_deadline()
                if dl is not None and dl <= now:
                    stack.on_timers(now)
                self._flush(now)
                if full:
                    # the cap on a batch keeps app tasks fed under a flood; go round again
                    await trio.lowlevel.checkpoint()
                    continue
                with trio.CancelScope(deadline=self._deadline()) as scope:
                    self._sleep = scope
                    await io.wait_readable()
                self._sleep = None
                if scope.cancelled_caught:
                    stats["timer_wakes"] += 1   # woken by a deadline, not by a packet
        finally:
            self._sleep = None
            self._now = self.clock
            self.running = False
            if self.pcap is not None:
                self.pcap.flush()

    def _clock(self):
        """The clock as one call: trio's own clock object when ``clock`` is trio.current_time
        (which looks the run's clock up on every call)."""
        if self.clock is trio.current_time:
            return trio.lowlevel.current_clock().current_time
        return self.clock

    def _deadline(self) -> float:
        d = self.stack.next_deadline()
        if d is None:
            d = math.inf
        link = self.link_in
        if link is not None:
            ld = link.next_deadline()
            if ld is not None and ld < d:
                d = ld
        link = self.link_out
        if link is not None:
            ld = link.next_deadline()
            if ld is not None and ld < d:
                d = ld
        return d

    def _pcap_offset(self, now: float) -> float:
        # pcap wants wall-clock seconds; trio time is monotonic, so fix the offset once
        if self._pcap_off is None:
            self._pcap_off = time.time() - now if self.clock is trio.current_time else 0.0
        return self._pcap_off

    def _flush(self, now: float) -> None:
        """Write what the stack produced (through link_out), flush pcap, wake dirty tasks."""
        out = self.stack.take_output()
        if self.link_out is not None:
            if out:
                self.link_out.push_all(out, now)
            out = self.link_out.pop_due(now)
        if out:
            write = self.io.write
            sent = 0
            for p in out:
                if write(p):
                    sent += 1
            drops = len(out) - sent
            self.stats["tx"] += sent
            if drops:
                self.stats["tx_drops"] += drops
                self.stack.counters[TX_DROP] += drops
            if self.pcap is not None:
                ts = now + self._pcap_offset(now)
                for p in out:
                    self.pcap.write(memoryview(p)[HDR_LEN:] if self.offload else p, ts)
        if self.pcap is not None:
            self.pcap.flush()
        dirty = self.stack.dirty
        if dirty:
            waiters = self._waiters
            if waiters:
                for obj in dirty:
                    tasks = waiters.get(obj)
                    if tasks:                       # someone is parked on obj
                        _wake_all(tasks)
            dirty.clear()

    # ---- used by app tasks -----------------------------------------------------------------

    def now(self) -> float:
        return self._now()

    def kick(self, now: float | None = None) -> None:
        """After an app call into the stack: send its output and move the loop's wake-up if a
        timer is now earlier than the one it sleeps for. ``now``: the time the call was given."""
        self._flush(self._now() if now is None else now)
        scope = self._sleep
        if scope is not None:
            d = self._deadline()
            if d < scope.deadline:
                scope.deadline = d

    def wait(self, obj):
        """``await ep.wait(obj)``: park until ``obj`` (a Connection or listener) shows up in
        ``stack.dirty`` or ``wake(obj)`` is called. Callers re-check their condition after
        waking. (A plain function returning trio's park: one coroutine fewer per wait.)"""
        tasks = self._waiters.get(obj)
        if tasks is None:
            tasks = self._waiters[obj] = []
        task = _current_task()
        tasks.append(task)

        def abort(_):
            tasks.remove(task)
            return _ABORTED
        return _wait_task_rescheduled(abort)

    def wake(self, obj) -> None:
        tasks = self._waiters.get(obj)
        if tasks:
            _wake_all(tasks)

    def forget(self, obj) -> None:
        """Drop the wait slot of an object nobody will wait on again (after waking it)."""
        tasks = self._waiters.pop(obj, None)
        if tasks:
            _wake_all(tasks)


def _wake_all(tasks: list) -> None:
    """Reschedule every parked task in ``tasks`` (in the order they parked) and empty it."""
    reschedule = trio.lowlevel.reschedule
    for task in tasks:
        reschedule(task)
    tasks.clear()
