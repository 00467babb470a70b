"""Coverage-guided fuzzing of the wire parsers, one harness for both families (atheris).

    .venv/bin/python fuzz/fuzz_wire.py ipv4|ipv6 -max_total_time=20 [corpus_dir]

Property: the family's parser (``codec.parse`` or ``ipv6.parse6``) raises ``Malformed`` with one
of the reasons Linux's receive path counts for that family, or returns a Segment; a Segment
whose options fit is rebuilt by the family's builder and parses back to the same fields (IPv6
extension headers are gone then: build6 sends none, as Linux TCP does).
"""
import sys
from dataclasses import dataclass

import atheris

with atheris.instrument_imports():
    from tuntcp import mib
    from tuntcp.wire import codec, ipv6

TCP_REASONS = {mib.TuntcpTcpTruncated, mib.TcpInErrs, mib.TcpInCsumErrors}


@dataclass(frozen=True)
class Family:
    parse: object            # (data, verify, counters) -> Segment
    build: object            # Segment -> bytes
    reasons: frozenset       # what a drop may be counted as
    side: frozenset          # counters a packet that goes on may bump
    too_big: str             # the builder's message for a packet over the family's maximum


FAMILIES = {
    "ipv4": Family(lambda d, v, c: codec.parse(d, v), codec.build,
                   frozenset({mib.IpInHdrErrors, mib.IpExtInTruncatedPkts, mib.IpReasmFails,
                              mib.IpInUnknownProtos} | TCP_REASONS),
                   frozenset(), "exceeds the IPv4 maximum"),
    "ipv6": Family(ipv6.parse6, ipv6.build6,
                   frozenset({mib.Ip6InHdrErrors, mib.Ip6InTruncatedPkts, mib.Ip6InUnknownProtos,
                              mib.TuntcpIp6RtHdrDrop, mib.Ip6InDelivers, mib.Ip6ReasmFails} | TCP_REASONS),
                   frozenset({mib.Ip6ReasmReqds, mib.Ip6ReasmOKs}), "exceeds the IPv6 payload maximum"),
}
FAMILY = FAMILIES["ipv4"]


def fields(seg):
    o = seg.options
    return (seg.saddr, seg.daddr, seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, bytes(seg.payload),
            seg.urg, seg.ttl, seg.tos, getattr(seg, "flowlabel", 0), o.mss, o.wscale, o.sack_ok, o.ts, o.sack_blocks)


def TestOneInput(data: bytes) -> None:
    fam = FAMILY
    for verify in (True, False):
        counters = mib.Counters()
        try:
            seg = fam.parse(data, verify, counters)
        except codec.Malformed as e:
            if e.reason not in fam.reasons:
                raise AssertionError(f"unknown drop reason {e.reason!r}")
            continue
        if set(counters) - fam.side:
            raise AssertionError(f"unexpected side counters {counters}")
        try:
            again = fam.build(seg)
        except ValueError as e:
            # re-encoding in Linux's layout can need more than the 40 bytes the sender used
            if "options need" not in str(e) and fam.too_big not in str(e):
                raise
            continue
        back = fam.parse(again, True, mib.Counters())
        if fields(back) != fields(seg):
            raise AssertionError(f"round trip changed the segment: {seg} -> {back}")


def main():
    global FAMILY
    if len(sys.argv) < 2 or sys.argv[1] not in FAMILIES:
        sys.exit("usage: fuzz_wire.py ipv4|ipv6 [libFuzzer options] [corpus_dir]")
    FAMILY = FAMILIES[sys.argv.pop(1)]
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
