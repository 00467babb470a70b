"""The micro-benchmarks run end to end at a tiny size: every SYN answered with a cookie, every
data byte received, every ACKed byte cleared (their own assertions), and a line per case."""
from tuntcp.bench import micro as bench_micro


def test_every_case_runs_and_reports(capsys):
    assert bench_micro.main(["--n", "200", "--runs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("  ")[0] for ln in lines] == [
        "cookie SYN-ACK, bare SYN", "cookie SYN-ACK, Linux SYN", "in-order 1448 B data",
        "pure ACK, 1448 B acked"]
    assert all("µs/packet CPU" in ln for ln in lines)
