"""`tuntcp storm` knob mistakes: one line on stderr, exit 2, nothing started."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv, message", [
    (["--name", "a/b"], "tuntcp storm: error: --name: bad endpoint name 'a/b'"),
    (["--clients", "0"], "tuntcp storm: error: --clients must be 1.."),
    (["--clients", "30000", "--hosts", "1"], "tuntcp storm: error: --clients must be 1..28232"),
    (["--modes", "slow"], "tuntcp storm: error: --modes takes buggy, fixed and/or kernel, got 'slow'"),
])
def test_bad_knob_is_one_line(argv, message):
    r = subprocess.run([sys.executable, "-m", "tuntcp.cli", "storm", *argv],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
