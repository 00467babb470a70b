"""Every tests/drill/*.pkt against every profile its header names (the unit tier's half of
"one script, two implementations"; tests/netns/test_drill_kernel.py runs the kernel half)."""
import glob
import os

import pytest

from tuntcp.drill.headers import read_headers
from tuntcp.drill.result import run_file

HERE = os.path.join(os.path.dirname(__file__), "..", "drill")
SCRIPTS = sorted(glob.glob(os.path.join(HERE, "*.pkt")))


def _cases():
    for path in SCRIPTS:
        with open(path) as f:
            h = read_headers(f.read())
        assert h.profiles, f"{path}: no '// tuntcp-profiles:' header"
        for prof in h.profiles:
            yield pytest.param(path, prof, h.defines.get(prof, {}),
                               id=f"{os.path.basename(path)}-{prof}")


@pytest.mark.parametrize("path,profile,defines", list(_cases()))
def test_script_matches_profile(path, profile, defines):
    r = run_file(path, profile, defines=defines)
    assert r.verdict == "MATCH", r.message


def test_there_are_scripts():
    assert len(SCRIPTS) >= 5
