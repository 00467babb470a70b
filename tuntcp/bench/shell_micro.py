"""In-process micro-benchmark of the storm's shell path (no network; not a test):

    python -m tuntcp.bench.shell_micro [--conns N] [--requests R] [--mode buggy|fixed]
                                       [--stagger S] [--sans-io]

The server is what the storm runs: a ``Stack`` (linux-5.4, SO_RCVBUF 102400, cookies forced
with ``tcp_syncookies=2`` so every connection takes the cookie path) under an ``Endpoint`` with
the storm's link models (1 ms each way) and batch cap (8), an accept loop and one trio handler
per connection that reads 64 KiB requests and answers each with 64 bytes (as the storm's
Broker). In ``buggy`` mode the producer applies wscale 1 to a window the broker scaled by 7,
so it sees ~1.5 KB of window: one 64 KiB request is ~45 round trips of one or two segments.

The producers are a second ``Stack`` driven synchronously behind the server's ``PacketIO``
(``PeerIO``: no trio tasks of its own), so the shell cost measured is the server's. Time is
trio's ``MockClock`` (autojump), so a run is deterministic: run it under
``valgrind --tool=callgrind`` for instruction counts (``--sans-io`` runs the same exchange with
the server's core driven directly, the baseline the shell adds to). Both stacks' core work is
in every count; the start-up is too, so compare the difference between two sizes (e.g. 10 and
40 connections): the marginal cost per request and per packet.

``--stagger 0`` starts every producer at once: their packets arrive together and the loop
handles large batches, as a saturated storm's does. The default spreads the producers, so the
loop wakes for nearly every link delivery at its own instant; under MockClock that is one
wake per distinct time, more than the real loop's (its epoll timeouts are whole milliseconds).
"""
from __future__ import annotations

import argparse
import sys
import time

import trio
import trio.testing

from ..harness.link import LinkModel
from ..host.stack import Stack
from ..profiles import get_profile
from ..shell.endpoint import Endpoint
from ..shell.listener import open_tcp_listener

SERVER, CLIENT = 0xC6120101, 0xC6120001
PORT = 9092
REQUEST = 65536
RESPONSE = bytes(64)
STAGGER = 0.000137      # between producers' connects (not a multiple of the link delay)


def server_stack(mode: str) -> Stack:
    prof = get_profile("linux-5.4", ["net.ipv4.tcp_syncookies=2",
                                     f"model.cookie_wscale_clamp={'true' if mode == 'fixed' else 'false'}"])
    return Stack(prof, addrs={SERVER}, secret=b"s" * 16)


class Producers:
    """N client connections, each sending ``requests`` requests of REQUEST bytes one after the
    other (the next once the 64-byte response is in), driven by calls, not tasks."""

    def __init__(self, n: int, requests: int, now: float, stagger: float = STAGGER):
        self.stack = Stack(get_profile("linux-5.4"), addrs={CLIENT}, secret=b"c" * 16)
        self.state = {}
        self.done = 0
        self.requests = requests
        # producer i connects at now + i * stagger: their packets do not arrive in lockstep, so
        # the endpoint wakes for link deliveries and timers per connection, as in a real storm
        self.starts = [now + i * stagger for i in range(n)][::-1]

    def next_event(self) -> float | None:
        dl = self.stack.next_deadline()
        if self.starts and (dl is None or self.starts[-1] < dl):
            return self.starts[-1]
        return dl

    def step(self, now: float) -> None:
        """Connect the producers whose time has come, react to whatever changed (the client
        stack's dirty set)."""
        st = self.stack
        while self.starts and self.starts[-1] <= now:
            self.starts.pop()
            conn = st.connect(CLIENT, SERVER, PORT, now)
            conn.nodelay = True                  # Kafka's producers set TCP_NODELAY
            self.state[conn] = [self.requests, REQUEST, 0]  # requests left, bytes to send, response bytes
        dl = st.next_deadline()
        if dl is not None and dl <= now:
            st.on_timers(now)
        dirty = st.dirty
        while dirty:
            conn = dirty.pop()
            s = self.state.get(conn)
            if s is None or conn.state != "ESTABLISHED":
                continue
            if conn.readable():
                s[2] += len(conn.recv(1 << 20, now))
                if s[2] >= len(RESPONSE):
                    s[2] -= len(RESPONSE)
                    s[0] -= 1
                    if s[0] == 0:
                        self.done += 1
                        del self.state[conn]
                        continue
                    s[1] = REQUEST
            while s[1] > 0:
                k = min(s[1], conn.send_space())
                if k <= 0:
                    break
                s[1] -= conn.send(bytes(k), now)


class PeerIO:
    """The server's PacketIO with the producers' stack right behind it."""

    def __init__(self, producers: Producers, clock):
        self.p = producers
        self.clock = clock
        self.ep_deadline = lambda: float("inf")     # the endpoint's wake-up (set by run_shell)
        self.lot = trio.lowlevel.ParkingLot()
        self.out: list = []

    def _pending(self) -> bool:
        st = self.p.stack
        return bool(self.out or st._out or st.dirty)

    def read_batch(self, limit: int) -> list:
        self.p.step(self.clock())
        self.out += self.p.stack.take_output()
        out, self.out = self.out[:limit], self.out[limit:]
        return out

    def write(self, pkt) -> bool:
        self.p.stack.receive(bytes(pkt), self.clock())
        if self.lot:
            self.lot.unpark_all()
        return True

    async def wait_readable(self) -> None:
        if self._pending():
            await trio.lowlevel.checkpoint()
            return
        dl = self.p.next_event()
        if dl is None or dl >= self.ep_deadline():
            await self.lot.park()        # the endpoint's own sleep ends first: no scope of ours
            return
        with trio.move_on_at(dl):
            await self.lot.park()

    def close(self) -> None:
        pass


async def _handler(stream) -> None:
    stream.setsockopt_nodelay(True)
    got = 0
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        got += len(data)
        while got >= REQUEST:
            got -= REQUEST
            await stream.send_all(RESPONSE)


async def run_shell(conns: int, requests: int, mode: str, stagger: float = STAGGER) -> dict:
    stack = server_stack(mode)
    prod = Producers(conns, requests, trio.current_time(), stagger)
    io = PeerIO(prod, trio.current_time)
    ep = Endpoint(stack, io, link_in=LinkModel(1, delay=0.001), link_out=LinkModel(2, delay=0.001),
                  max_batch=8)
    io.ep_deadline = ep._deadline
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ep.run)
        lst = await open_tcp_listener(ep, PORT, 1024, rcvbuf=102400)

        async def accept_loop():
            while True:
                s = await lst.accept()
                nursery.start_soon(_handler, s)
        nursery.start_soon(accept_loop)
        while prod.done < conns:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    stats = dict(ep.stats)
    stats["wakeups"] = getattr(ep, "wakeups", None)
    return stats


def run_sans_io(conns: int, requests: int, mode: str, stagger: float = STAGGER) -> dict:
    """The same exchange with the server's core called directly: reads, ACKs and responses
    without the shell (no link model; the baseline)."""
    stack = server_stack(mode)
    now = 0.0
    prod = Producers(conns, requests, now, stagger)
    lst = stack.listen(PORT, 1024, rcvbuf=102400)
    served: dict = {}
    rx = tx = 0
    while prod.done < conns:
        prod.step(now)
        pkts = prod.stack.take_output()
        rx += len(pkts)
        for p in pkts:
            stack.receive(p, now)
        dl = stack.next_deadline()
        if dl is not None and dl <= now:
            stack.on_timers(now)
        while (c := lst.accept()) is not None:
            served[c] = 0
        for c in list(stack.dirty):
            if c in served and c.readable():
                served[c] += len(c.recv(65536, now))
                while served[c] >= REQUEST:
                    served[c] -= REQUEST
                    c.send(RESPONSE, now)
        stack.dirty.clear()
        out = stack.take_output()
        tx += len(out)
        for p in out:
            prod.stack.receive(p, now)
        if not pkts and not out:
            dls = [d for d in (stack.next_deadline(), prod.next_event()) if d is not None]
            now = min(dls) if dls else now + 0.001
        else:
            now += 0.0001
    return {"rx": rx, "tx": tx}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuntcp.bench.shell_micro",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--mode", choices=("buggy", "fixed"), default="buggy")
    ap.add_argument("--stagger", type=float, default=STAGGER,
                    help=f"seconds between producers' connects (default {STAGGER}; 0: all in "
                         "lockstep, large batches as in a saturated loop)")
    ap.add_argument("--sans-io", action="store_true", help="the core alone, without the shell")
    a = ap.parse_args(argv)
    if a.conns < 1 or a.requests < 1 or a.stagger < 0:
        ap.error("--conns and --requests must be positive, --stagger not negative")
    t0 = time.process_time()
    if a.sans_io:
        st = run_sans_io(a.conns, a.requests, a.mode, a.stagger)
    else:
        st = trio.run(run_shell, a.conns, a.requests, a.mode, a.stagger,
                      clock=trio.testing.MockClock(autojump_threshold=0))
    dt = time.process_time() - t0
    n_req = a.conns * a.requests
    pk = st["rx"] + st["tx"]
    print(f"{a.mode}{' sans-io' if a.sans_io else ''}: {a.conns} conns x {a.requests} requests: "
          f"{st['rx']} packets in, {st['tx']} out ({pk / n_req:.1f} per request); "
          f"{dt * 1e6 / pk:.1f} µs CPU per packet; {st}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
