"""Coverage-guided fuzzing of ``ipv6.parse6`` (atheris / libFuzzer).

    .venv/bin/python fuzz/fuzz_ipv6.py -max_total_time=20 [corpus_dir]

Property: ``parse6`` raises ``Malformed`` with one of the reasons Linux's IPv6 path counts, or
returns a Segment6; a Segment6 whose options fit is rebuilt by ``build6`` and parses back to the
same fields (the extension headers are gone: build6 sends none, as Linux TCP does).
"""
import sys

import atheris

with atheris.instrument_imports():
    from tuntcp import mib
    from tuntcp.wire import codec, ipv6

REASONS = {mib.Ip6InHdrErrors, mib.Ip6InTruncatedPkts, mib.Ip6InUnknownProtos, mib.TuntcpIp6RtHdrDrop,
           mib.Ip6InDelivers, mib.Ip6ReasmFails, mib.TuntcpTcpTruncated, mib.TcpInErrs, mib.TcpInCsumErrors}


def fields(seg):
    o = seg.options
    return (seg.saddr, seg.daddr, seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, bytes(seg.payload),
            seg.urg, seg.ttl, seg.tos, seg.flowlabel, o.mss, o.wscale, o.sack_ok, o.ts, o.sack_blocks)


def TestOneInput(data: bytes) -> None:
    for verify in (True, False):
        counters = mib.Counters()
        try:
            seg = ipv6.parse6(data, verify=verify, counters=counters)
        except codec.Malformed as e:
            if e.reason not in REASONS:
                raise AssertionError(f"unknown drop reason {e.reason!r}")
            continue
        if set(counters) - {mib.Ip6ReasmReqds, mib.Ip6ReasmOKs}:
            raise AssertionError(f"unexpected side counters {counters}")
        try:
            again = ipv6.build6(seg)
        except ValueError as e:
            if "options need" not in str(e) and "exceeds the IPv6 payload maximum" not in str(e):
                raise
            continue
        back = ipv6.parse6(again)
        if fields(back) != fields(seg):
            raise AssertionError(f"round trip changed the segment: {seg} -> {back}")


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
