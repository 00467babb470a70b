"""`tuntcp bench --quick` end to end: every workload is measured on both sides and reported.

No gates on the numbers (the machine is noisy); what must hold is that each row has a tuntcp
value, a kernel value and their ratio, that the targets are evaluated, that the Markdown table
is written, and that no namespace or process is left behind.
"""
import json
import os
import subprocess
import sys

import pytest

from tuntcp.bench.cli import TARGETS, WORKLOADS
from tuntcp.harness import netns

pytestmark = pytest.mark.netns


def _leftover_bench_processes():
    """Processes the bench starts in its labs (servers, clients, floods) that are still alive."""
    marks = ("tuntcp.bench.kernel_server", "tuntcp.bench.clients", "hping3", "TCP:198.18.")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in marks):
            found.append(cmd)
    return found


def test_bench_quick_reports_every_workload_on_both_sides(netns_available, tmp_path):
    out = tmp_path / "results.json"
    tuntcp = os.path.join(os.path.dirname(sys.executable), "tuntcp")
    p = subprocess.Popen([tuntcp, "bench", "--quick", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=600)
    finally:
        p.kill()
    assert p.returncode == 0, err[-2000:]
    # the bench's labs are named tuntcp-<its pid>-<n>; other tests may run labs meanwhile
    assert [n for n in netns.list_namespaces() if n.startswith(f"tuntcp-{p.pid}-")] == []
    res = json.loads(out.read_text())

    assert res["errors"] == []
    expected = {row.name for wl in WORKLOADS for row in wl.rows}
    assert set(res["rows"]) == expected
    slab = os.access("/proc/slabinfo", os.R_OK)    # root-only (0400): a rootless run cannot
    for name, row in res["rows"].items():            # read the kernel's slab object sizes
        sides = ("tuntcp", "kernel")
        if name.startswith("mem_") and not slab:
            assert row["kernel"]["median"] is None, row
            sides = ("tuntcp",)
        for side in sides:
            s = row[side]
            assert isinstance(s["median"], (int, float)), (name, side, s)
            assert s["min"] <= s["median"] <= s["max"], (name, side, s)
            assert len(s["values"]) == res["meta"]["rounds"] == 1
        if len(sides) == 2:
            assert row["ratio"] == pytest.approx(row["tuntcp"]["median"] / row["kernel"]["median"])

    assert [t["target"] for t in res["targets"]] == [t[3] for t in TARGETS]
    assert all(t["met"] in (True, False) for t in res["targets"])
    # every checksum verified on the endpoint's ingest path, none bad
    assert res["rows"]["ingest_MBps_mtu1500"]["tuntcp"]["extras"]["csum_errors"] == [0]
    storm = res["rows"]["storm_10k_s"]
    assert storm["tuntcp"]["extras"]["established"] == [10000]
    assert storm["kernel"]["extras"]["established"] == [10000]
    assert res["rows"]["ingest_MBps_mtu1500_vnet"]["tuntcp"]["extras"]["csum_errors"] == [0]

    md = out.with_suffix(".md").read_text()
    assert "| handshakes/s" in md and "## Targets" in md
    assert _leftover_bench_processes() == []


@pytest.mark.parametrize("args, msg", [
    (["--only", "nope"], "unknown workload(s) nope"),
    (["--rounds", "0"], "--rounds must be >= 1"),
    (["--seconds", "-1"], "--seconds must be > 0"),
    (["--profile-row", "vnet_offload"], "--profile-row must be a measured row"),
])
def test_bench_user_mistakes_are_one_line_and_exit_2(args, msg):
    p = subprocess.run([sys.executable, "-c", "import sys; from tuntcp.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "bench", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith("tuntcp bench: error: ") and msg in p.stderr   # one prefix style: "tuntcp CMD: error:"
    assert len(p.stderr.strip().splitlines()) == 1


def test_top_functions_merges_lines_and_counts_self_and_inclusive(tmp_path):
    from tuntcp.bench.cli import top_functions
    raw = tmp_path / "p.txt"
    raw.write_text("run (a.py:1);parse (codec.py:10) 6\n"
                   "run (a.py:2);parse (codec.py:12) 2\n"
                   "run (a.py:1);write (tun.py:5) 2\n")
    top = top_functions(raw)
    assert top[0] == ("parse (codec.py)", 0.8, 0.8)
    assert top[1] == ("write (tun.py)", 0.2, 0.2)
    assert [fn for fn, _, _ in top] == ["parse (codec.py)", "write (tun.py)"]
