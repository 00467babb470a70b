"""Client processes `tuntcp bench` starts inside the lab namespace (kernel sockets).

    python -m tuntcp.bench.clients rr    --addr A --port P --count N [--size 64]
    python -m tuntcp.bench.clients storm --addr A --port P --count N [--timeout 10]
    python -m tuntcp.bench.clients synflood --addr A --port P --spoof S --pps R --seconds T

rr: one connection, N request/response rounds of --size bytes (TCP_NODELAY), timed one by one
with perf_counter; prints p50/p99/mean in microseconds.

storm: N non-blocking connect()s issued back to back, then epoll until every one is writable;
prints the time from the first connect to the last established, how many failed, and the SYN
retransmits summed from TCP_INFO total_retrans.  Closes everything with SO_LINGER 0 (RST), so
nothing is left in FIN-WAIT on the client side.

synflood: raw SYNs from the unassigned address --spoof (source ports cycling through 50 000),
paced at --pps in batches of 50 (hping3 -i u20 cannot pace 50k pps: usleep granularity caps it
near 15k pps here).  Runs until --seconds or SIGTERM.

Each prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import errno
import json
import resource
import select
import socket
import sys
import time


def pct(sorted_vals, q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def rr(addr: str, port: int, count: int, size: int) -> dict:
    s = socket.create_connection((addr, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * size
    lat = []
    clock = time.perf_counter
    warm = min(50, count // 10)
    for i in range(count + warm):
        t0 = clock()
        s.sendall(msg)
        got = 0
        while got < size:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("server closed during the rr test")
            got += len(chunk)
        if i >= warm:
            lat.append((clock() - t0) * 1e6)
    s.close()
    lat.sort()
    return {"count": len(lat), "p50_us": pct(lat, 0.50), "p99_us": pct(lat, 0.99),
            "mean_us": sum(lat) / len(lat)}


def storm(addr: str, port: int, count: int, timeout: float) -> dict:
    from ..harness.clients import set_linger0, tcp_info
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    ep = select.epoll(sizehint=count)
    pending = {}
    failed = 0
    for s in socks:
        s.setblocking(False)
        set_linger0(s)
    t0 = time.perf_counter()
    for s in socks:
        err = s.connect_ex((addr, port))
        if err in (0, errno.EINPROGRESS):
            fd = s.fileno()
            pending[fd] = s
            ep.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        else:
            failed += 1
    t_issued = time.perf_counter()
    done = 0
    deadline = t0 + timeout
    t_last = t0
    while pending:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        for fd, _ in ep.poll(left):
            s = pending.pop(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done += 1
            else:
                failed += 1
            t_last = time.perf_counter()
    retrans = 0
    for s in socks:
        try:
            retrans += tcp_info(s).get("total_retrans", 0)
        except OSError:
            pass
    for s in socks:
        s.close()
    return {"count": count, "established": done, "failed": failed, "unfinished": len(pending),
            "seconds": t_last - t0, "issue_seconds": t_issued - t0, "syn_retrans": retrans}


def synflood(addr: str, port: int, spoof: str, pps: float, seconds: float) -> dict:
    import signal
    from ipaddress import IPv4Address
    from ..wire import codec
    from ..wire.segment import SYN, Segment, TcpOptions
    src, dst = int(IPv4Address(spoof)), int(IPv4Address(addr))
    pkts = [codec.build(Segment(src, dst, 10000 + i, port, 7919 * i & 0xFFFFFFFF, 0, SYN, 64240,
                                TcpOptions(1460, 7, True, (i, 0)))) for i in range(50000)]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    batch = 50
    sent = 0
    npk = len(pkts)
    dest = (addr, 0)
    send = raw.sendto
    t0 = time.perf_counter()
    end = t0 + seconds
    while not stop:
        now = time.perf_counter()
        if now >= end:
            break
        due = t0 + sent / pps
        if due > now:
            time.sleep(due - now)
        for _ in range(batch):
            try:
                send(pkts[sent % npk], dest)
            except OSError:
                pass
            sent += 1
    dt = time.perf_counter() - t0
    return {"sent": sent, "seconds": dt, "pps": sent / dt}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuntcp.bench.clients")
    p.add_argument("mode", choices=("rr", "storm", "synflood"))
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--spoof", default="198.18.0.77")
    p.add_argument("--pps", type=float, default=50000)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.mode == "synflood":
        out = synflood(args.addr, args.port, args.spoof, args.pps, args.seconds)
    elif args.mode == "rr":
        out = rr(args.addr, args.port, args.count, args.size)
    else:
        out = storm(args.addr, args.port, args.count, args.timeout)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
