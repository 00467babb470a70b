"""Fixtures for the trio shell tests: a fake stack that records what the endpoint loop does."""
from __future__ import annotations

import pytest

from tuntcp.host.encode import PacketEncoder
from tuntcp.mib import Counters


class FakeStack:
    """Records receive/take_output calls; replies to every packet with ``reply(pkt)`` if set.

    ``deadlines`` is a sorted list of absolute times; on_timers(now) pops the due ones.
    """

    def __init__(self, reply=None, deadlines=()):
        self.received: list[tuple[bytes, float]] = []
        self.take_calls = 0
        self.timer_calls: list[float] = []
        self.deadlines = sorted(deadlines)
        self.dirty: set = set()
        self.counters = Counters()
        self.encoder = PacketEncoder()          # plain packets (no vnet frames)
        self.addrs = {0xC6120101}
        self._out: list[bytes] = []
        self.reply = reply
        self.conns: dict = {}
        self.listeners: dict = {}

    def receive(self, pkt, now):
        self.received.append((pkt, now))
        if self.reply is not None:
            self._out.append(self.reply(pkt))

    def on_timers(self, now):
        self.timer_calls.append(now)
        while self.deadlines and self.deadlines[0] <= now:
            self.deadlines.pop(0)
            self._out.append(b"timer@%.3f" % now)

    def next_deadline(self):
        return self.deadlines[0] if self.deadlines else None

    def take_output(self):
        self.take_calls += 1
        out, self._out = self._out, []
        return out


@pytest.fixture
def fake_stack():
    return FakeStack


# ---- two real Stacks joined by the in-memory link --------------------------------------------

class MemLab:
    """Server stack (198.18.1.1) and client stack (198.18.0.1), each run by an Endpoint on one
    end of an in-memory pipe, both loops started in the test's nursery."""

    SERVER = 0xC6120101
    CLIENT = 0xC6120001

    def __init__(self, nursery):
        self.nursery = nursery

    def endpoints(self, profile="linux-6.1", *, server_knobs=(), client_knobs=(), log=None,
                  link_in=None, link_out=None):
        from tuntcp.host.stack import Stack
        from tuntcp.profiles import get_profile
        from tuntcp.shell import Endpoint, memory_pair
        server = Stack(get_profile(profile, list(server_knobs)), addrs={self.SERVER},
                       secret=b"s" * 16, log=log)
        client = Stack(get_profile(profile, list(client_knobs)), addrs={self.CLIENT},
                       secret=b"c" * 16)
        io_s, io_c = memory_pair()
        es = Endpoint(server, io_s, link_in=link_in, link_out=link_out)
        ec = Endpoint(client, io_c)
        self.nursery.start_soon(es.run)
        self.nursery.start_soon(ec.run)
        return es, ec

    async def connected_pair(self, port=8080):
        """(client stream, server stream) for one fresh connection on fresh stacks."""
        import trio
        from tuntcp.shell import open_tcp_listener, open_tcp_stream
        es, ec = self.endpoints()
        lst = await open_tcp_listener(es, port, 16)
        accepted = []
        async with trio.open_nursery() as n:
            async def acc():
                accepted.append(await lst.accept())
            n.start_soon(acc)
            c = await open_tcp_stream(ec, "198.18.1.1", port)
        await lst.aclose()
        return c, accepted[0]


@pytest.fixture
def memlab(nursery):
    return MemLab(nursery)
