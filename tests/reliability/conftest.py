"""Reliability suite: hostile input, floods, faults and soak (marker `reliability`).

Tests report what they did through the session-wide `tally` fixture (inputs tried, packets
dropped by reason, bytes moved and verified, faults injected and survived, memory samples);
the totals are printed at the end of the run by `pytest_terminal_summary`, so the figures
quoted in the README come from a real run.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from tuntcp.harness import netns

# Counters that mean "a packet was refused": everything the codec names as a Malformed
# reason, plus the stack/listener drops a hostile peer can cause.
DROP_COUNTERS = (
    "IpInHdrErrors", "IpExtInTruncatedPkts", "IpReasmFails", "IpInUnknownProtos",
    "IpInAddrErrors", "TuntcpTcpTruncated", "TcpInErrs", "TcpInCsumErrors",
    "TcpExtSyncookiesFailed", "TcpExtListenDrops", "TcpExtListenOverflows",
    "TcpExtTCPReqQFullDrop", "TcpExtPAWSEstab", "TcpExtTCPACKSkippedSeq",
    "TcpExtTCPACKSkippedChallenge", "TcpExtTCPACKSkippedSynRecv", "TcpExtTCPZeroWindowDrop",
    "TcpExtTCPRcvQDrop", "TcpExtTCPOFODrop", "TuntcpTunTxDrops",
    "Ip6InHdrErrors", "Ip6InTruncatedPkts", "Ip6InUnknownProtos", "Ip6ReasmFails", "TuntcpIp6RtHdrDrop",
)


class Tally:
    """What the reliability tests did, summed over the session."""

    def __init__(self):
        self.inputs: Counter = Counter()      # kind -> inputs tried
        self.drops: Counter = Counter()       # counter name -> packets dropped
        self.responses: Counter = Counter()   # e.g. TcpExtTCPChallengeACK, TcpOutRsts
        self.bytes_verified = 0
        self.faults: dict[str, list[int]] = {}   # name -> [injected, survived]
        self.memory: dict[str, str] = {}
        self.notes: list[str] = []

    def tried(self, kind: str, n: int = 1) -> None:
        self.inputs[kind] += n

    def dropped(self, counters_delta: dict) -> None:
        """Add the drop counters of a ``Counters.delta``/snapshot difference."""
        for k in DROP_COUNTERS:
            if counters_delta.get(k):
                self.drops[k] += counters_delta[k]
        for k in ("TcpExtTCPChallengeACK", "TcpExtTCPSYNChallenge", "TcpOutRsts",
                  "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv", "TcpExtTCPTimeWaitOverflow"):
            if counters_delta.get(k):
                self.responses[k] += counters_delta[k]

    def verified(self, nbytes: int) -> None:
        self.bytes_verified += nbytes

    def fault(self, name: str, survived: bool = True, n: int = 1) -> None:
        f = self.faults.setdefault(name, [0, 0])
        f[0] += n
        if survived:
            f[1] += n

    def mem(self, label: str, text: str) -> None:
        self.memory[label] = text

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_dict(self) -> dict:
        return {"inputs": dict(self.inputs), "drops": dict(self.drops),
                "responses": dict(self.responses), "bytes_verified": self.bytes_verified,
                "faults": {k: {"injected": v[0], "survived": v[1]} for k, v in self.faults.items()},
                "memory": self.memory, "notes": self.notes}


_TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return _TALLY


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: hostile input, floods, faults and soak (tests/reliability)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter):
    t = _TALLY
    if not (t.inputs or t.drops or t.bytes_verified or t.faults or t.memory):
        return
    w = terminalreporter.write_line
    terminalreporter.section("reliability summary")
    w(f"inputs tried: {sum(t.inputs.values())}  "
      + ", ".join(f"{k} {v}" for k, v in sorted(t.inputs.items())))
    w(f"packets dropped by reason: {sum(t.drops.values())}  "
      + ", ".join(f"{k} {v}" for k, v in t.drops.most_common()))
    if t.responses:
        w("responses: " + ", ".join(f"{k} {v}" for k, v in t.responses.most_common()))
    w(f"bytes moved and verified: {t.bytes_verified} ({t.bytes_verified / 1e6:.1f} MB)")
    w(f"faults injected/survived: " + ", ".join(
        f"{k} {v[1]}/{v[0]}" for k, v in sorted(t.faults.items())))
    for k, v in t.memory.items():
        w(f"memory {k}: {v}")
    for n in t.notes:
        w(f"note: {n}")
    path = os.environ.get("TUNTCP_RELIABILITY_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(t.as_dict(), f, indent=1)


# ---- namespaces --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def netns_available():
    reason = netns.probe()
    if reason is not None:
        pytest.skip(reason)
    netns.sweep_stale()
    return True


@pytest.fixture
def lab(netns_available):
    with netns.Lab() as lab:
        yield lab
