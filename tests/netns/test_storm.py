"""`tuntcp storm` at small scale: the headline finding of the LINE incident, against real
kernel producers. Buggy: every cookie connection's client applies wscale 1 while the broker
advertises with 7 (field 789 -> the client's window 1578) and cookie requests are >= 10x slower
than on the fixed derivation, where nothing mismatches. The same holds when the producers are
split over worker processes and their records merged; a worker that dies ends the run with a
one-line error and leaves no process or namespace behind."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import trio

from tuntcp.harness.netns import PREFIX, list_namespaces, probe

pytestmark = pytest.mark.netns


@pytest.fixture
def require_netns():
    reason = probe()
    if reason:
        pytest.skip(reason)


def small_storm(tmp_path, **kw):
    from tuntcp.scenarios.storm import StormConfig
    # A 20 ms RTT makes each round of the 1578-byte window cost the link, not the CPU: ~42
    # rounds per 64 KiB request on the buggy path against ~3 (slow start) when fixed. The
    # aggregate rate stays low (~3 MB/s) so a busy CI machine does not starve the fixed run.
    return StormConfig(clients=100, hosts=10, requests_per_client=2, request_interval_s=2.0, rtt_ms=20,
                       request_bytes=65536, out=str(tmp_path), duration_s=60, pcap=False, **kw)


def assert_headline(report, clients):
    buggy, fixed = report["runs"]["buggy"], report["runs"]["fixed"]
    for run in (buggy, fixed):
        s = run["summary"]
        assert s["connections_made"] == clients
        assert s["cookie_connections"] > 0, "the burst must overflow the 50-deep SYN queue"
        assert any("Possible SYN flooding on port 9092" in ln for ln in s["kernel_log"])
        assert s["counters"]["TcpExtSyncookiesSent"] > 0
    cookies = [c for c in buggy["connections"] if c["handshake"] == "cookie"]
    assert all(c["client_snd_wscale"] == 1 and c["server_rcv_wscale"] == 7 for c in cookies)
    assert buggy["summary"]["wscale_mismatches"] == len(cookies)
    assert {c["window_field"] for c in cookies} <= {512, 789}
    assert any(c["window_field"] == 789 and c["client_snd_wnd"] == 1578 for c in cookies)
    # queue-path connections of the same buggy run are fine
    assert all(c["client_snd_wscale"] == c["server_rcv_wscale"] == 1
               for c in buggy["connections"] if c["handshake"] == "synq")
    assert fixed["summary"]["wscale_mismatches"] == 0
    b = buggy["summary"]["latency_ms_by_handshake"]["cookie"]["p50"]
    f = fixed["summary"]["latency_ms_by_handshake"]["cookie"]["p50"]
    assert b >= 10 * f, f"buggy cookie p50 {b} ms vs fixed {f} ms"


async def test_storm_buggy_vs_fixed(tmp_path, require_netns):
    from tuntcp.scenarios.storm import run_storm
    report = await run_storm(small_storm(tmp_path))
    assert_headline(report, 100)
    # producers run in one worker process, never in the broker's
    assert {run["processes"] for run in report["runs"].values()} == {1}
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert set(on_disk["runs"]) == {"buggy", "fixed", "kernel"}
    assert (tmp_path / "report.md").exists()
    # the host kernel's listener, same producers and link: it overflows its 50-deep SYN queue
    # too, sends cookies, and every connection agrees on wscale (the kernel has the fix)
    k = report["runs"]["kernel"]
    assert k["profile"].startswith("kernel (host ")
    assert k["summary"]["connections_made"] == 100
    assert k["summary"]["counters"]["TcpExtSyncookiesSent"] > 0
    assert k["summary"]["cookie_connections"] == k["summary"]["counters"]["TcpExtSyncookiesRecv"] > 0
    assert k["summary"]["wscale_mismatches"] == 0
    assert k["summary"]["latency_ms_all"]["n"] == 200
    for run in report["runs"].values():
        sat = run["saturation"]
        assert sat["verdict"] in ("model-bound", "cpu-bound") and sat["reason"]
        assert sat["passes"] > 0 and sat["batch"]["max"] >= 1
        assert 0 < sat["cpu_share"] < 2.0
    md = (tmp_path / "report.md").read_text()
    assert "## Saturation" in md and k["profile"] in md


async def test_storm_over_ipv6(tmp_path, require_netns):
    """`tuntcp storm --family ipv6`: the same incident through cookie_v6_check, producers spread
    over 10 IPv6 sources, and the kernel column's IPv6 listener agreeing on wscale."""
    from tuntcp.scenarios.storm import run_storm
    report = await run_storm(small_storm(tmp_path, family=6, control_name=f"storm6-{os.getpid()}"))
    assert_headline(report, 100)
    buggy = report["runs"]["buggy"]
    assert all(c["client"].startswith("[2001:2:0:ff::") for c in buggy["connections"])
    assert len({c["client"].rpartition(":")[0] for c in buggy["connections"]}) == 10
    k = report["runs"]["kernel"]["summary"]
    assert k["connections_made"] == 100 and k["wscale_mismatches"] == 0
    assert k["cookie_connections"] > 0


async def test_storm_split_over_worker_processes(tmp_path, require_netns):
    """100 producers in 3 worker processes (33, 33, 34): the merged records say the same."""
    from tuntcp.scenarios.storm import run_storm
    report = await run_storm(small_storm(tmp_path, clients_per_process=40))
    assert_headline(report, 100)
    for run in report["runs"].values():
        assert run["processes"] == 3
        clients = [c["client"] for c in run["connections"]]
        assert len(set(clients)) == 100                     # every worker's records, once each
        assert len({c.split(":")[0] for c in clients}) == 10   # over all --hosts addresses
        assert run["timeline"]["established"][-1] == 100    # progress summed over the workers
    assert _workers() == []


def _workers(parent: int | None = None) -> list[int]:
    """Live storm worker processes started by `parent` (this process)."""
    return _children_named(parent or os.getpid(), b"tuntcp.scenarios.storm_worker")


def _children_named(parent: int, name: bytes) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and name in cmd:
            pids.append(int(entry))
    return pids


def _my_namespaces() -> list[str]:
    return [n for n in list_namespaces() if n.startswith(f"{PREFIX}{os.getpid()}-")]


async def test_storm_worker_killed_is_a_one_line_error(tmp_path, require_netns):
    from tuntcp.scenarios.storm import StormError, run_storm
    killed = []

    def show(**kw):
        if kw.get("phase") == "storm" and not killed:
            pids = _workers()
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    cfg = small_storm(tmp_path, clients_per_process=50, modes=("buggy",))
    with pytest.raises(StormError, match=r"^producer process [12] of 2 \(pid \d+\) was killed by "
                                         r"SIGKILL while waiting for 'storm_done'$"):
        with trio.fail_after(30):
            await run_storm(cfg, show)
    assert killed
    assert _workers() == []
    assert _my_namespaces() == []


def test_storm_sigterm_removes_workers_and_namespace(tmp_path, require_netns):
    """SIGTERM to `tuntcp storm` while its workers produce: exit 143, nothing left behind."""
    cmd = [sys.executable, "-m", "tuntcp.cli", "storm", "--clients", "60", "--clients-per-process",
           "20", "--requests", "50", "--interval", "0.1", "--quiet", "--no-pcap", "--out", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    workers = []
    while len(workers) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        workers = _workers(p.pid)
    assert len(workers) == 3
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "Traceback" not in err
    assert not [w for w in workers if os.path.exists(f"/proc/{w}")]
    assert not [n for n in list_namespaces() if n.startswith(f"{PREFIX}{p.pid}-")]



def test_storm_sigterm_in_kernel_column_removes_both_labs(tmp_path, require_netns):
    """SIGTERM while the kernel column runs: its broker process, the producers and both
    namespaces (producers' and broker's) are gone, exit 143."""
    cmd = [sys.executable, "-m", "tuntcp.cli", "storm", "--clients", "60", "--modes", "kernel",
           "--requests", "50", "--interval", "0.1", "--quiet", "--no-pcap", "--out", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    brokers = []
    while not brokers and time.monotonic() < deadline:
        time.sleep(0.1)
        brokers = _children_named(p.pid, b"tuntcp.scenarios.storm_kernel")
    assert brokers, "the kernel broker never started"
    assert len([n for n in list_namespaces() if n.startswith(f"{PREFIX}{p.pid}-")]) == 2
    time.sleep(1.5)
    workers = _workers(p.pid)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "Traceback" not in err
    assert not [w for w in brokers + workers if os.path.exists(f"/proc/{w}")]
    assert not [n for n in list_namespaces() if n.startswith(f"{PREFIX}{p.pid}-")]
