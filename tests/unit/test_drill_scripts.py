"""Every tests/drill/*.pkt against every profile its header names (the unit tier's half of
"one script, two implementations"; tests/netns/test_drill_kernel.py runs the kernel half)."""
import glob
import os

import pytest

from tuntcp.drill.headers import read_headers
from tuntcp.drill.host import IP_VERSIONS
from tuntcp.drill.result import run_file

HERE = os.path.join(os.path.dirname(__file__), "..", "drill")
SCRIPTS = sorted(glob.glob(os.path.join(HERE, "*.pkt")))


def _cases():
    """Every script x every profile it names x packetdrill's three --ip_version variants."""
    for path in SCRIPTS:
        with open(path) as f:
            h = read_headers(f.read())
        assert h.profiles, f"{path}: no '// tuntcp-profiles:' header"
        for prof in h.profiles:
            for fam in IP_VERSIONS:
                yield pytest.param(path, prof, fam, h.model_defines(prof, fam),
                                   id=f"{os.path.basename(path)}-{prof}-{fam}")


@pytest.mark.parametrize("path,profile,ip_version,defines", list(_cases()))
def test_script_matches_profile(path, profile, ip_version, defines):
    r = run_file(path, profile, defines=defines, ip_version=ip_version)
    assert r.verdict == "MATCH", r.message


def test_there_are_scripts():
    assert len(SCRIPTS) >= 5
