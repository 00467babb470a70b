"""The atheris harnesses in fuzz/ run for a bounded time and find nothing.

Each is started as its own process (libFuzzer owns the process), seeded with a few valid
packets so the codec fuzzer starts past the checksum wall. atheris is in the `test` extra; a
missing atheris is a skip on a developer's machine and a failure under CI.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, PSH, SYN, Segment, TcpOptions

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("TUNTCP_FUZZ_SECONDS", "12"))


def _seeds(d: Path, family: str) -> None:
    d.mkdir()
    if family == "ipv6":
        from test_fuzz_wire6 import atheris_seeds
        for i, pkt in enumerate(atheris_seeds()):
            (d / f"seed{i}").write_bytes(pkt)
        return
    segs = [
        Segment(0xC6120001, 0xC6120101, 40000, 80, 1, 0, SYN, 65535,
                TcpOptions(1460, 7, True, (1, 0))),
        Segment(0xC6120001, 0xC6120101, 40000, 80, 2, 5, ACK | PSH, 502, TcpOptions(ts=(9, 8)),
                b"hello"),
        Segment(0xC6120001, 0xC6120101, 40000, 80, 2, 5, ACK, 502,
                TcpOptions(ts=(9, 8), sack_blocks=((10, 20), (30, 40)))),
    ]
    for i, s in enumerate(segs):
        (d / f"seed{i}").write_bytes(codec.build(s))


@pytest.mark.parametrize("harness", ["fuzz_wire.py ipv4", "fuzz_wire.py ipv6", "fuzz_core.py"])
def test_atheris_harness_runs_clean(tally, tmp_path, harness):
    try:
        import atheris  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("atheris is a declared test dependency (pyproject [test]) but is not "
                        "installed: run `.venv/bin/pip install -e '.[test]'`")
        pytest.skip("atheris not installed (pip install atheris)")
    corpus = tmp_path / "corpus"
    script, *args = harness.split()
    _seeds(corpus, args[0] if args else "ipv4")
    p = subprocess.run([sys.executable, str(ROOT / "fuzz" / script), *args, f"-max_total_time={SECONDS}",
                        "-rss_limit_mb=2048", "-timeout=10", f"-artifact_prefix={tmp_path}/",
                        str(corpus)],
                       capture_output=True, text=True, timeout=SECONDS + 60, cwd=ROOT)
    err = p.stderr
    crashes = list(tmp_path.glob("crash-*")) + list(tmp_path.glob("timeout-*")) + \
        list(tmp_path.glob("oom-*"))
    assert p.returncode == 0 and not crashes, \
        f"{harness} found a problem (rc {p.returncode}, {crashes}):\n{err[-4000:]}"
    m = re.search(r"Done (\d+) runs in (\d+) second", err)
    assert m, err[-2000:]
    runs = int(m.group(1))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", err)
    assert runs > 100, f"only {runs} runs in {SECONDS} s"
    tally.tried(f"atheris {harness}", runs)
    if cov:
        tally.note(f"atheris {harness}: {runs} runs in {m.group(2)} s, final cov {cov[-1][0]} "
                   f"edges / {cov[-1][1]} features")
