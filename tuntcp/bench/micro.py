"""In-process micro-benchmarks of the two packet-rate paths (no network; not tests):

    python -m tuntcp.bench.micro [--n N] [--runs R] [--only syn,data,ack] [--cprofile]

* ``syn``: a Linux listener in forced-cookie mode (net.ipv4.tcp_syncookies=2) fed N distinct
  SYNs through ``Stack.receive``, SYN-ACKs taken per batch of 64 with ``take_output``; once
  with bare SYNs (what ``hping3 -S`` sends) and once with Linux's mss/sackOK/TS/wscale options
  (what ``tuntcp.bench.clients synflood`` sends).
* ``data``: an ESTABLISHED connection (real handshake through the stack) fed N in-order
  1448-byte segments with the TS option and valid checksums, in batches of up to 64 within the
  advertised window; after each batch the stack's packets are taken, the application reads
  everything, and the packets are taken again, as the shell's loop does. Each batch is copied
  (untimed) just before it is fed, so it is in the CPU cache as a packet fresh from read(2) is.
* ``ack``: pure ACKs, each acknowledging one 1448-byte segment of an N-segment flight the
  connection already sent (the sender's half of a bulk transfer).

Packets are built once, up front. Times are ``time.process_time`` per packet, median of R runs.
"""
from __future__ import annotations

from .. import mib

import argparse
import statistics
import sys
import time

from ..host.stack import Stack
from ..profiles import get_profile
from ..wire import codec
from ..wire.segment import ACK, PSH, SYN, Segment, TcpOptions

SERVER, CLIENT = 0xC6120001, 0xC6120002   # 198.18.0.1 <- 198.18.0.2
PORT = 8080
MSS = 1448
BATCH = 64


def syn_packets(n: int, options: bool) -> list[bytes]:
    """N distinct SYNs (source ports and addresses vary, as a spoofing flooder's do)."""
    pkts = []
    for i in range(n):
        o = TcpOptions(1460, 7, True, (i, 0)) if options else TcpOptions()
        pkts.append(codec.build(Segment(CLIENT + (i >> 16), SERVER, 1024 + (i & 0xFFFF) % 64000,
                                        PORT, 7919 * i & 0xFFFFFFFF, 0, SYN, 64240, o)))
    return pkts


def bench_syn(pkts: list[bytes], prof=None) -> float:
    """µs of CPU per SYN (receive + SYN-ACK built)."""
    st = Stack(get_profile("linux-6.1", {"net.ipv4.tcp_syncookies": 2}), addrs={SERVER},
               secret=b"s" * 16)
    st.listen(PORT, 128)
    recv, take = st.receive, st.take_output
    out = 0
    now = 1000.0
    if prof:
        prof.enable()
    t0 = time.process_time()
    for i in range(0, len(pkts), BATCH):
        for p in pkts[i:i + BATCH]:
            recv(p, now)
        out += len(take())
        now += 0.0005
    dt = time.process_time() - t0
    if prof:
        prof.disable()
    assert out == len(pkts) == st.counters[mib.TcpExtSyncookiesSent], (out, st.counters)
    return dt / len(pkts) * 1e6


def _established():
    """(stack, conn, client seq, client ack): a handshake driven through the stack."""
    st = Stack(get_profile("linux-6.1"), addrs={SERVER}, secret=b"s" * 16)
    lst = st.listen(PORT, 128)
    st.receive(codec.build(Segment(CLIENT, SERVER, 40000, PORT, 1000, 0, SYN, 64240,
                                   TcpOptions(1460, 7, True, (1, 0)))), 1.0)
    synack = codec.parse(st.take_output()[0])
    st.receive(codec.build(Segment(CLIENT, SERVER, 40000, PORT, 1001, synack.ack and synack.seq + 1,
                                   ACK, 502, TcpOptions(ts=(2, synack.options.ts[0])))), 1.001)
    conn = lst.accept()
    assert conn is not None and conn.state == "ESTABLISHED"
    return st, conn, 1001, synack.seq + 1, synack.options.ts[0]


def data_packets(n: int, seq: int, ack: int, tsecr: int) -> list[bytes]:
    payload = bytes(MSS)
    return [codec.build(Segment(CLIENT, SERVER, 40000, PORT, (seq + i * MSS) & 0xFFFFFFFF, ack,
                                ACK | PSH, 502, TcpOptions(ts=(3 + i // 64, tsecr)), payload))
            for i in range(n)]


def bench_data(n: int, prof=None) -> float:
    """µs of CPU per in-order data segment (receive, ACKs built, application read)."""
    st, conn, seq, ack, tsecr = _established()
    pkts = data_packets(n, seq, ack, tsecr)
    recv, take = st.receive, st.take_output
    now = 1.01
    i = 0
    acks = 0
    dt = 0.0
    clock = time.process_time
    if prof:
        prof.enable()
    while i < n:
        k = min(BATCH, max(1, conn.win.current(conn.rcv_nxt) // MSS), n - i)
        # fresh copies, untimed: like os.read, the batch is in the CPU cache when it arrives
        batch = [p[:20] + p[20:] for p in pkts[i:i + k]]
        t0 = clock()
        for p in batch:
            recv(p, now)
        acks += len(take())
        conn.recv(1 << 30, now)
        acks += len(take())
        dt += clock() - t0
        i += k
        now += 0.0002
    if prof:
        prof.disable()
    assert conn.bytes_received == n * MSS and acks, (conn.bytes_received, acks)
    return dt / n * 1e6


def bench_acks(n: int, prof=None) -> float:
    """µs of CPU per pure ACK while the connection has a flight of N segments outstanding."""
    st, conn, seq, ack, tsecr = _established()
    now = 1.01
    conn.sndbuf = 4 * n * MSS
    conn.snd_wnd = conn.max_window = 2 * n * MSS
    conn.cc.cwnd = n + 10
    conn.nodelay = True
    assert conn.send(bytes(n * MSS), now) == n * MSS
    st.take_output()
    una, ws = conn.snd_una, conn.snd_wscale
    wnd = min((2 * n * MSS) >> ws, 65535)
    pkts = [codec.build(Segment(CLIENT, SERVER, 40000, PORT, seq,
                                (una + (i + 1) * MSS) & 0xFFFFFFFF, ACK, wnd,
                                TcpOptions(ts=(3 + i // 64, tsecr))))
            for i in range(n)]
    recv, take = st.receive, st.take_output
    if prof:
        prof.enable()
    t0 = time.process_time()
    for i in range(0, n, BATCH):
        for p in pkts[i:i + BATCH]:
            recv(p, now)
        take()
        now += 0.0005
    dt = time.process_time() - t0
    if prof:
        prof.disable()
    assert conn.snd_una == conn.snd_max, (conn.snd_una, conn.snd_max)
    return dt / n * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tuntcp.bench.micro",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="packets per run (default 20000)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="syn,data,ack", help="any of syn, data, ack (default all)")
    ap.add_argument("--cprofile", action="store_true", help="cProfile one run of each instead")
    a = ap.parse_args(argv)
    which = {w.strip() for w in a.only.split(",")}
    if not which <= {"syn", "data", "ack"} or a.n < 1 or a.runs < 1:
        ap.error("--only takes syn, data and/or ack; --n and --runs must be positive")
    cases = []
    if "syn" in which:
        bare, opts = syn_packets(a.n, False), syn_packets(a.n, True)
        cases += [("cookie SYN-ACK, bare SYN", lambda pr=None: bench_syn(bare, pr)),
                  ("cookie SYN-ACK, Linux SYN", lambda pr=None: bench_syn(opts, pr))]
    if "data" in which:
        cases.append(("in-order 1448 B data", lambda pr=None: bench_data(a.n, pr)))
    if "ack" in which:
        cases.append(("pure ACK, 1448 B acked", lambda pr=None: bench_acks(a.n, pr)))
    for name, fn in cases:
        if a.cprofile:
            import cProfile
            import pstats
            pr = cProfile.Profile()
            fn(pr)
            print(f"--- {name}")
            pstats.Stats(pr).sort_stats("tottime").print_stats(16)
            continue
        xs = [fn() for _ in range(a.runs)]
        med = statistics.median(xs)
        print(f"{name:27s} {med:6.2f} µs/packet CPU (min {min(xs):.2f}, max {max(xs):.2f}; "
              f"{a.runs} x {a.n}) = {1e6 / med:,.0f} packets per CPU-second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
