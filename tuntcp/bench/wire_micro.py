"""Micro-benchmark of the wire codec: timeit, median of 7 repeats, µs per operation.

Run: .venv/bin/python bench/wire_micro.py
"""
from __future__ import annotations

import statistics
import timeit

from tuntcp.wire import checksum, codec
from tuntcp.wire.segment import ACK, PSH, SYN, Segment, TcpOptions

A, B = 0xC6120001, 0xC6120002


def cases():
    syn = codec.build(Segment(B, A, 40000, 80, 12345, 0, SYN, 64240, TcpOptions(1460, 7, True, (111, 0))))
    data = codec.build(Segment(B, A, 40000, 80, 1, 1, ACK | PSH, 502, TcpOptions(ts=(5, 6)), b"x" * 1448))
    synack = Segment(A, B, 80, 40000, 777, 12346, SYN | ACK, 65160, TcpOptions(1460, 7, True, (222, 111)))
    ack = Segment(A, B, 80, 40000, 778, 2, ACK, 502, TcpOptions(ts=(223, 5)))
    bare = Segment(A, B, 80, 40000, 778, 2, ACK, 502)
    datas = Segment(A, B, 80, 40000, 1, 1, ACK | PSH, 502, TcpOptions(ts=(5, 6)), b"y" * 1448)
    tmpl = codec.AckTemplate(A, B, 80, 40000)
    kb = bytes(range(256)) * 6
    payload1500 = kb[:1500]
    return {
        "parse SYN 60 B": lambda: codec.parse(syn),
        "parse data 1500 B (verify)": lambda: codec.parse(data),
        "parse data 1500 B (verify=False)": lambda: codec.parse(data, False),
        "build SYN-ACK 60 B": lambda: codec.build(synack),
        "build ACK+TS 52 B": lambda: codec.build(ack),
        "build bare ACK 40 B": lambda: codec.build(bare),
        "AckTemplate ACK+TS 52 B": lambda: tmpl.build(778, 2, ACK, 502, (223, 5)),
        "AckTemplate bare ACK 40 B": lambda: tmpl.build(778, 2, ACK, 502),
        "build data 1500 B": lambda: codec.build(datas),
        "ones_sum 1500 B": lambda: checksum.ones_sum(payload1500),
        "tcp_checksum 1500 B": lambda: checksum.tcp_checksum(A, B, payload1500),
    }


def main() -> None:
    for name, fn in cases().items():
        n = 20000
        runs = timeit.repeat(fn, number=n, repeat=7)
        us = [r / n * 1e6 for r in runs]
        print(f"{name:36s} median {statistics.median(us):6.2f} µs  (min {min(us):.2f}, max {max(us):.2f})")


if __name__ == "__main__":
    main()
