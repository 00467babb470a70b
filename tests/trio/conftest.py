"""Fixtures for the trio shell tests: a fake stack that records what the endpoint loop does."""
from __future__ import annotations

import pytest

from tuntcp.obs.counters import Counters


class FakeStack:
    """Records receive/take_packets calls; replies to every packet with ``reply(pkt)`` if set.

    ``deadlines`` is a sorted list of absolute times; on_timers(now) pops the due ones.
    """

    def __init__(self, reply=None, deadlines=()):
        self.received: list[tuple[bytes, float]] = []
        self.take_calls = 0
        self.timer_calls: list[float] = []
        self.deadlines = sorted(deadlines)
        self.dirty: set = set()
        self.counters = Counters()
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

    def take_packets(self):
        self.take_calls += 1
        out, self._out = self._out, []
        return out


@pytest.fixture
def fake_stack():
    return FakeStack
