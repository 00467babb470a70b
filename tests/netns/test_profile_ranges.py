"""The knob table against the running kernel: in a throwaway namespace, every per-namespace sysctl
of the Linux table takes the values the table accepts and refuses the ones it refuses (at both
edges of each range), and a fresh namespace shows the linux-6.18 profile's defaults. The host's
own sysctls are never read or written."""
import json
import os
import platform
import subprocess
import sys

import pytest

from tuntcp.harness.netns import probe
from tuntcp.profiles import ProfileError, REGISTRY, get_profile
from tuntcp.profiles.knobs import LINUX

pytestmark = pytest.mark.netns

NS = f"tuntcp-knobs-{os.getpid()}"
# Copied from init_net (the host's settings) into a new namespace, so not the kernel's defaults.
INHERITED = {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_congestion_control"}
# Sized from the machine's TCP hash table (tcp_set_hashinfo): ehash/128 and ehash/2.
HOST_SIZED = {"net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_max_tw_buckets"}

_WRITER = r"""
import errno, json, sys
out = []
for name, value in json.loads(sys.stdin.read()):
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path) as f:
            old = f.read()
        with open(path, "w") as f:
            f.write(value)
        with open(path, "w") as f:
            f.write(old)
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(json.dumps(out))
"""


def kernel_says(pairs):
    r = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c", _WRITER], input=json.dumps(pairs),
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def ns():
    reason = probe()
    if reason is not None:
        pytest.skip(reason)
    if not platform.release().startswith("6.18"):
        pytest.skip(f"the table holds 6.18's ranges; this kernel is {platform.release()}")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=True)


def edges(k):
    if k.kind == "vec3":
        return [f"{v} {v} {v}" for v in (k.lo - 1, k.lo, k.hi, k.hi + 1)]
    return [str(v) for v in (k.lo - 1, k.lo, k.hi, k.hi + 1)]


def test_ranges_match_the_kernel(ns):
    probes = [(name, v) for name, k in LINUX.items()
              if not name.startswith("model.") and k.netns and k.kind != "choice" for v in edges(k)]
    probes += [("net.ipv4.tcp_syncookies", v) for v in ("7", "300", "99999999999", "0x10", "abc")]
    probes += [("net.core.somaxconn", "99999999999"), ("net.ipv4.tcp_rmem", "4096 8192 4096"),
               ("net.ipv4.tcp_rmem", "4096 131072"), ("net.ipv4.tcp_rmem", "4096 131072 6291456 5"),
               ("net.ipv4.tcp_rmem", "100"), ("net.core.somaxconn", "12 13"), ("net.core.somaxconn", ""),
               ("net.ipv4.tcp_congestion_control", "banana")]
    answers = kernel_says(probes)
    wrong = []
    for (name, value), kernel in zip(probes, answers):
        try:
            get_profile("linux-6.18", [f"{name}={value}"])
            ours = "ok"
        except ProfileError:
            ours = "refused"
        if (kernel == "ok") != (ours == "ok"):
            wrong.append(f"{name}={value}: kernel {kernel}, table {ours}")
    assert not wrong, "\n".join(wrong)
    assert len(probes) > 100


def test_fresh_namespace_shows_the_profile_defaults(ns):
    prof = REGISTRY["linux-6.18"]
    names = [n for n in prof if n.startswith("net.") and n not in INHERITED | HOST_SIZED and LINUX[n].netns]
    r = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-n", *names], capture_output=True, text=True,
                       check=True)
    seen = r.stdout.split("\n")
    wrong = [f"{n}: kernel {s!r}, profile {prof[n]!r}" for n, s in zip(names, seen) if s.strip() != str(prof[n])]
    assert not wrong, "\n".join(wrong)
    assert len(names) >= 25
