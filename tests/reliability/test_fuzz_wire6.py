"""Hostile IPv6 input: extension-header chains (long, looping next-header values, truncated),
wrong payload lengths and random bytes are each a counted drop or a clean parse, never an
exception (the atheris run, fuzz/fuzz_wire.py ipv6, is in test_atheris.py, seeded from here)."""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuntcp import mib
from tuntcp.wire.codec import Malformed
from tuntcp.wire.ipv6 import Segment6, build6, ip6_int, parse6
from tuntcp.wire.segment import ACK, PSH, SYN, TcpOptions

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("TUNTCP_FUZZ_SECONDS", "12"))
REASONS = {mib.Ip6InHdrErrors, mib.Ip6InTruncatedPkts, mib.Ip6InUnknownProtos, mib.TuntcpIp6RtHdrDrop,
           mib.Ip6InDelivers, mib.Ip6ReasmFails, mib.TuntcpTcpTruncated, mib.TcpInErrs, mib.TcpInCsumErrors}
A = ip6_int("2001:db8::1")
B = ip6_int("2001:db8::2")
EXT = (0, 43, 44, 60)


def tcp_bytes(payload=b"data") -> bytes:
    return build6(Segment6(A, B, 40000, 80, 1, 2, ACK | PSH, 100, TcpOptions(ts=(1, 2)), payload))[40:]


def chain(hdrs, upper: bytes, last_nh: int = 6) -> bytes:
    """An IPv6 packet: extension headers [(type, body_len_units, fill)], then ``upper``."""
    body = b""
    types = [t for t, _, _ in hdrs]
    for i, (t, units, fill) in enumerate(hdrs):
        nh = types[i + 1] if i + 1 < len(types) else last_nh
        if t == 44:
            body += struct.pack("!BBHI", nh, 0, fill & 0xFFFF, 7)
        else:
            n = 8 * (units + 1)
            opts = bytes([1, n - 4]) + bytes(n - 4) if t != 43 else bytes([fill & 0xFF, 0]) + bytes(n - 4)
            body += bytes([nh, units]) + opts
    body += upper
    first = types[0] if types else last_nh
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), first, 64, A.to_bytes(16, "big"),
                       B.to_bytes(16, "big")) + body


def outcome(buf, tally=None):
    c = mib.Counters()
    try:
        seg = parse6(buf, counters=c)
    except Malformed as e:
        assert e.reason in REASONS, e
        if tally is not None:
            tally.dropped({e.reason: 1})
        return e.reason
    assert isinstance(seg, Segment6)
    assert set(c) <= {mib.Ip6ReasmReqds, mib.Ip6ReasmOKs}
    return "ok"


hdr = st.tuples(st.sampled_from(EXT), st.integers(0, 3), st.integers(0, 0xFFFF))


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(hdrs=st.lists(hdr, max_size=12), last=st.sampled_from([6, 6, 6, 17, 58, 59, 0, 43, 44, 60, 255]),
       cut=st.integers(0, 400), plen_delta=st.integers(-50, 50), payload=st.binary(max_size=64))
def test_extension_chains_truncations_and_lengths(tally, hdrs, last, cut, plen_delta, payload):
    buf = bytearray(chain(hdrs, tcp_bytes(payload), last))
    outcome(bytes(buf), tally)
    plen = max(0, min(0xFFFF, len(buf) - 40 + plen_delta))
    buf[4:6] = struct.pack("!H", plen)               # wrong payload length
    outcome(bytes(buf), tally)
    outcome(bytes(buf[:cut]), tally)                 # truncated anywhere
    tally.tried("hypothesis ipv6 chains", 3)


def test_next_header_loops_are_bounded(tally):
    """Headers whose next-header points back at their own type ("loops") end at the payload:
    every header consumes at least 8 bytes, so the walk is linear in the packet length."""
    for t in (60, 43):
        n = 8000                                  # ~64 KiB of destination options / routing headers
        buf = chain([(t, 0, 0)] * n, b"", t)      # the last one names its own type again
        assert outcome(buf, tally) == mib.Ip6InHdrErrors
    tally.tried("ipv6 header loops", 2)


def test_known_outcomes():
    assert outcome(chain([(60, 0, 0)] * 3 + [(43, 0, 0)], tcp_bytes())) == "ok"
    assert outcome(chain([(0, 0, 0), (60, 0, 0)], tcp_bytes())) == "ok"
    assert outcome(chain([(60, 0, 0), (0, 0, 0)], tcp_bytes())) == mib.Ip6InUnknownProtos
    assert outcome(chain([(44, 0, 0)], tcp_bytes())) == "ok"
    assert outcome(chain([(44, 0, 8)], tcp_bytes())) == mib.Ip6ReasmFails      # offset 8, last
    assert outcome(chain([(44, 0, 1)], tcp_bytes())) == mib.Ip6InHdrErrors     # MF, 36 bytes: not 8n
    assert outcome(chain([(44, 0, 1)], tcp_bytes(b"data" * 2))) == mib.Ip6ReasmFails
    assert outcome(chain([], tcp_bytes(), 17)) == mib.Ip6InUnknownProtos


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes(tally, data):
    outcome(b"\x60" + data, tally)
    tally.tried("hypothesis ipv6 random", 1)


def atheris_seeds() -> list[bytes]:
    """IPv6 seeds for fuzz/fuzz_wire.py ipv6 (tests/reliability/test_atheris.py): a SYN, a chain of
    every extension header, a fragment."""
    return [
        build6(Segment6(A, B, 40000, 80, 1, 0, SYN, 65535, TcpOptions(1440, 7, True, (1, 0)), flowlabel=0x12345)),
        chain([(0, 0, 0), (60, 1, 0), (43, 0, 0), (44, 0, 0)], tcp_bytes()),
        chain([(44, 0, 1)], tcp_bytes()),
    ]
