"""Hot-path micro-benchmark of the sans-IO core (not a test; run it by hand):

    .venv/bin/python tests/unit/bench_conn_hotpath.py [--segs N] [--runs R] [--profile]

Two stacks are connected in memory; then pre-built packets go through ``Stack.receive`` and
``Stack.take_packets`` (ACKs built as the shell would build them):

* ``data``: in-order 1448-byte segments (TS option) to a receiver whose application reads
  every 8 segments;
* ``ack``: pure ACKs, each acknowledging one 1448-byte segment of a flight already sent.

Prints the median µs per segment over R runs. ``--core`` parses the packets beforehand and
feeds ``Stack.receive_segment``: the connection's share without the codec.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from tuntcp.core.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, PSH, Segment, TcpOptions

A, B = 0x0A000001, 0x0A000002
PORT = 5001
MSS = 1448


def _pair():
    p = get_profile("linux-6.1")
    sa = Stack(p, addrs={A}, secret=b"A" * 16)
    sb = Stack(p, addrs={B}, secret=b"B" * 16)
    lst = sb.listen(PORT, 128)
    ca = sa.connect(A, B, PORT, 0.0)
    now = 0.0
    for _ in range(4):
        now += 0.001
        for pkt in sa.take_packets():
            sb.receive(pkt, now)
        for pkt in sb.take_packets():
            sa.receive(pkt, now)
    cb = lst.accept()
    assert cb is not None and ca.state == cb.state == "ESTABLISHED"
    return sa, sb, ca, cb, now


def bench_data(n: int, prof=None, core=False, backlog=0) -> float:
    """µs per in-order data segment into B (receive + the ACKs B builds). ``backlog``: the
    application lets that many bytes stand in the receive queue (a big buffer is forced)."""
    sa, sb, ca, cb, now = _pair()
    if backlog:
        w = cb.win
        cb.rcvbuf = w.rcvbuf = 8 * backlog
        w.window_clamp = w.rcv_ssthresh = 4 * backlog
    payload = bytes(MSS)
    seq, ack = ca.snd_nxt, ca.rcv_nxt
    tsecr = cb.ts_recent and sb.ts_now(cb.ts_off)
    pkts = []
    for i in range(n):
        seg = Segment(A, B, ca.lport, PORT, seq=(seq + i * MSS) & 0xFFFFFFFF, ack=ack,
                      flags=ACK | PSH, window=1000, options=TcpOptions(ts=(1000 + i // 10, tsecr)),
                      payload=payload)
        pkts.append(codec.build(seg))
    recv, take = sb.receive, sb.take_packets
    if core:
        pkts = [codec.parse(x) for x in pkts]
        recv = sb.receive_segment
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    for i, pkt in enumerate(pkts):
        t = now + i * 1e-5
        recv(pkt, t)
        if i & 7 == 7 and cb.readable() > backlog:
            cb.recv(cb.readable() - backlog, t)
        take()
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
    assert cb.bytes_received == n * MSS, cb.bytes_received
    return dt / n * 1e6


def bench_acks(n: int, prof=None, core=False) -> float:
    """µs per pure ACK into B while B has a flight of n segments outstanding."""
    sa, sb, ca, cb, now = _pair()
    cb.sndbuf = 4 * n * MSS
    cb.snd_wnd = cb.max_window = 2 * n * MSS
    cb.cc.cwnd = n + 10
    cb.nodelay = True
    assert cb.send(bytes(n * MSS), now) == n * MSS
    sb.take_packets()
    una, seq = cb.snd_una, cb.rcv_nxt
    ws = cb.snd_wscale
    pkts = []
    for i in range(n):
        seg = Segment(A, B, ca.lport, PORT, seq=seq, ack=(una + (i + 1) * MSS) & 0xFFFFFFFF,
                      flags=ACK, window=min((2 * n * MSS) >> ws, 65535),
                      options=TcpOptions(ts=(1000 + i // 10, 1)))
        pkts.append(codec.build(seg))
    recv, take = sb.receive, sb.take_packets
    if core:
        pkts = [codec.parse(x) for x in pkts]
        recv = sb.receive_segment
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    for i, pkt in enumerate(pkts):
        recv(pkt, now + 0.001 + i * 1e-5)
        take()
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
    assert cb.snd_una == cb.snd_max, (cb.snd_una, cb.snd_max)
    return dt / n * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segs", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="cProfile one run of each")
    ap.add_argument("--core", action="store_true", help="pre-parsed segments (no codec.parse)")
    ap.add_argument("--backlog", type=int, default=0,
                    help="bytes the receiving application leaves queued (data benchmark)")
    a = ap.parse_args(argv)
    if a.profile:
        import cProfile
        import pstats
        for fn in (bench_data, bench_acks):
            pr = cProfile.Profile()
            fn(a.segs, pr, a.core)
            print(f"--- {fn.__name__}")
            pstats.Stats(pr).sort_stats("tottime").print_stats(18)
        return 0
    for fn, name in ((bench_data, "in-order 1448-byte data"), (bench_acks, "pure ACK")):
        kw = {"backlog": a.backlog} if fn is bench_data else {}
        xs = [fn(a.segs, None, a.core, **kw) for _ in range(a.runs)]
        print(f"{name:26s} median {statistics.median(xs):6.2f} µs/segment "
              f"(min {min(xs):.2f}, max {max(xs):.2f}, {a.runs} runs x {a.segs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
