"""`tuntcp storm --target CMD`: the storm's producers against a server nobody here wrote (socat
echoing with cat), with a line protocol (PING\\r\\n out, the echo back up to \\r\\n)."""
import json
import shutil
import subprocess
import sys

import pytest

from tuntcp.harness.netns import PREFIX, list_namespaces

pytestmark = pytest.mark.netns

SOCAT = ("exec socat TCP-LISTEN:$TUNTCP_PORT,bind=$TUNTCP_ADDR,fork,reuseaddr,backlog=50 "
         "EXEC:cat")


@pytest.fixture
def require_socat(netns_available):
    if not shutil.which("socat"):
        pytest.fail("socat is missing (make tools)")


def _run(cmd, timeout):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=timeout)
    assert not [n for n in list_namespaces() if n.startswith(f"{PREFIX}{p.pid}-")]
    return p.returncode, out, err


def test_storm_target_socat_echo(tmp_path, require_socat):
    cmd = [sys.executable, "-m", "tuntcp.cli", "storm", "--clients", "80", "--hosts", "8",
           "--requests", "3", "--interval", "0.5", "--target", SOCAT, "--request", r"PING\r\n",
           "--reply-delim", r"\r\n", "--quiet", "--no-pcap", "--out", str(tmp_path)]
    rc, out, err = _run(cmd, 180)
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["runs"]) == ["target"]
    t = report["runs"]["target"]
    assert t["profile"].startswith("target `exec socat")
    s = t["summary"]
    assert s["connections_made"] == 80                  # every producer, seen by ss in lab B
    assert s["latency_ms_all"]["n"] == 240              # 3 answered requests each
    assert s["counters"]["TcpPassiveOpens"] >= 80
    assert all(c["client_snd_wscale"] == c["server_rcv_wscale"] for c in t["connections"])
    assert t["saturation"]["verdict"] in ("model-bound", "cpu-bound")
    assert "target process" in t["saturation"]["other_cpu_share"]
    assert "target `exec socat" in out


def test_storm_target_that_never_listens_is_one_line(tmp_path, require_socat):
    cmd = [sys.executable, "-m", "tuntcp.cli", "storm", "--clients", "10", "--target", "exit 3",
           "--quiet", "--no-pcap", "--out", str(tmp_path)]
    rc, out, err = _run(cmd, 60)
    assert rc == 2
    assert "Traceback" not in err
    assert err.strip().endswith(f"(its output: {tmp_path}/target.log)")
    assert "did not listen on port 9092" in err
    assert len(err.strip().splitlines()) == 1


def test_storm_target_refuses_modes():
    p = subprocess.run([sys.executable, "-m", "tuntcp.cli", "storm", "--target", "true",
                        "--modes", "fixed"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "leave out --modes" in p.stderr
