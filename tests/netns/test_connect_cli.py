"""`tuntcp connect`: the endpoint's active open against a kernel listener in the namespace."""
import subprocess
import sys

import pytest

from tuntcp.harness.netns import probe

pytestmark = pytest.mark.netns


def test_connect_to_a_cookie_forcing_kernel_listener_agrees_on_wscale():
    reason = probe()
    if reason:
        pytest.skip(reason)
    res = subprocess.run(
        [sys.executable, "-m", "tuntcp.cli", "connect", "--kernel-rcvbuf", "102400",
         "--ns-sysctl", "net.ipv4.tcp_syncookies=2", "--bytes", "100000"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "sent 100000 bytes, echoed 100000" in out
    # this host kernel (>= 5.10) must agree with the SYN-ACK it sent, cookie or not
    assert "window scale: we apply" in out and "MISMATCH" not in out


def test_connect_bad_sysctl_is_one_line():
    res = subprocess.run([sys.executable, "-m", "tuntcp.cli", "connect", "--ns-sysctl", "oops"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.strip() == "tuntcp connect: error: --ns-sysctl wants name=value, got 'oops'"
