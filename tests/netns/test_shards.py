"""--shards N: one listener over N endpoint processes on a multi-queue TUN (shell/shards.py).

Against real kernel clients: the listener's rules are the one-process rules (backlog N holds
N+1 children, the same overflow counts), the views sum the shards, a storm completes, and a
shard that dies ends the run with one line and leaves nothing behind.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from tuntcp.harness import netns
from tuntcp.shell.shards import ShardSet

ROOT = Path(__file__).resolve().parents[2]
PORT = 8080


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'netns'}", **extra)
    return env


async def _overflow_run(queues: int, backlog: int, clients: int):
    """``clients`` kernel connects, one every 0.15 s, to a listener nobody accepts from."""
    with netns.Lab(queues=queues) as lab:
        spec = {"role": "shard_roles:hold", "profile": "linux-6.1", "sysctl": [],
                "secret": os.urandom(16).hex(), "addr": lab.endpoint_ip, "port": PORT,
                "backlog": backlog, "link": None}
        shards = ShardSet(lab, spec)
        socks = []
        try:
            async with trio.open_nursery() as nursery:
                await shards.start(nursery)
                for k in range(clients):
                    s = lab.socket_in_ns()
                    s.setblocking(False)
                    s.connect_ex((lab.endpoint_addr, PORT))
                    socks.append(s)
                    await trio.sleep(0.15)
                counters = await shards.counters()
                queues = await shards.call_all("queues")
                nursery.cancel_scope.cancel()
        finally:
            shards.close()
            for s in socks:
                s.close()
    keys = ("TcpPassiveOpens", "TcpExtListenOverflows", "TcpExtListenDrops",
            "TcpExtSyncookiesSent")
    return {k: counters.get(k, 0) for k in keys}, queues


async def test_backlog_rules_and_counters_match_one_shard(netns_available, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    one, q1 = await _overflow_run(1, backlog=3, clients=8)
    two, q2 = await _overflow_run(2, backlog=3, clients=8)
    # backlog 3 holds 4 children, over both shards; every later SYN meets a full accept queue
    assert q1[0]["accept"] == 4 and all(q["accept"] == 4 for q in q2)
    assert sum(q["mine"] for q in q2) == 4
    assert one == two
    assert one["TcpPassiveOpens"] == 4 and one["TcpExtListenOverflows"] == 4


def _serve(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "tuntcp.cli", "serve", *args], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _banner(p):
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, f"serve ended early: {p.stderr.read()}"
        lines.append(line)
        if line.startswith("  shards:"):
            return "".join(lines)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tuntcp.cli", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=30)


def _ns_of(banner: str) -> str:
    return banner.split("clients in namespace ")[1].split()[0]


def _pids(banner: str) -> list[int]:
    part = banner.split("(pids ")[1].split(")")[0]
    return [int(x) for x in part.split(", ")]


def _gone(ns: str, pids: list[int]) -> None:
    assert ns not in netns.list_namespaces()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


HOLD = """
import socket, sys, time
socks = [socket.create_connection(("198.18.1.1", 8080)) for _ in range(10)]
for s in socks:
    s.sendall(b"x")
    assert s.recv(1) == b"x"
print("up", flush=True)
sys.stdin.readline()
"""


def test_serve_two_shards_views_sum_the_shards(netns_available, tmp_path):
    events = tmp_path / "events.jsonl"
    p = _serve("--shards", "2", "--app", "echo", "--name", "shtest1", "--duration-s", "60",
               "--events", str(events))
    try:
        banner = _banner(p)
        ns = _ns_of(banner)
        holder = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", HOLD],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline() == "up\n"
            nstat = json.loads(_cli("nstat", "-a", "--json", "--name", "shtest1").stdout)["kernel"]
            assert nstat["TcpPassiveOpens"] == 10
            ss = _cli("ss", "-tan", "--name", "shtest1").stdout.splitlines()
            assert sum(ln.startswith("LISTEN") for ln in ss) == 1
            assert sum(ln.startswith("ESTAB") for ln in ss) == 10
            assert "estab 10," in _cli("ss", "-s", "--name", "shtest1").stdout
            assert "0/0/4096" in _cli("netstat", "-Lan", "--name", "shtest1").stdout
        finally:
            holder.stdin.close()
            holder.wait(timeout=10)
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    assert p.returncode == 130
    _gone(ns, _pids(banner))
    # the shards' event files, merged in time order into the one --events file
    recs = [json.loads(line) for line in events.read_text().splitlines()]
    assert sum(r["kind"] == "accept_queued" for r in recs) == 10
    assert [r["t"] for r in recs] == sorted(r["t"] for r in recs)
    assert sorted(tmp_path.iterdir()) == [events]


@pytest.mark.parametrize("how", ["kill-shard", "sigterm"])
def test_a_dying_shard_or_a_signal_leaves_nothing(netns_available, how):
    p = _serve("--shards", "2", "--name", "shtest2", "--duration-s", "60")
    banner = _banner(p)
    ns, pids = _ns_of(banner), _pids(banner)
    if how == "kill-shard":
        os.kill(pids[1], signal.SIGKILL)
    else:
        p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    err = p.stderr.read().strip().splitlines()
    if how == "kill-shard":
        assert p.returncode == 2
        assert err == [f"tuntcp serve: error: shard 1 (pid {pids[1]}) died (killed by signal 9); "
                       "the run is stopped and its namespace removed"]
    else:
        assert p.returncode == 143 and err == ["tuntcp: stopped"]
    _gone(ns, pids)


async def test_storm_with_two_shards_keeps_the_headline(netns_available, tmp_path):
    from test_storm import assert_headline, small_storm

    from tuntcp.scenarios.storm import run_storm
    report = await run_storm(small_storm(tmp_path, shards=2, modes=("buggy", "fixed")))
    assert_headline(report, 100)
    for run in report["runs"].values():
        s, c = run["summary"], run["summary"]["counters"]
        assert run["shards"] == 2 and len(run["saturation"]["shards"]) == 2
        assert all(sh["packets_in"] > 0 for sh in run["saturation"]["shards"])
        # one listener: one flood line for both shards, cookies counted once each
        assert len(s["kernel_log"]) == 1
        assert c["TcpExtSyncookiesRecv"] == s["cookie_connections"]


@pytest.mark.parametrize("argv, needle", [
    (["serve", "--shards", "0"], "--shards must be 1..64"),
    (["serve", "--shards", "2", "--profile", "freebsd-14"], "--shards > 1 models Linux's listener"),
    (["serve", "--shards", "2", "--front", "127.0.0.1:6379"], "--front runs one relay"),
    (["storm", "--shards", "0", "--out", "o"], "--shards must be 1..64"),
    (["storm", "--shards", "2", "--profile", "freebsd-14", "--out", "o"],
     "--shards > 1 models Linux's listener"),
])
def test_bad_shards_is_one_line_and_creates_nothing(tmp_path, argv, needle):
    p = subprocess.Popen([sys.executable, "-m", "tuntcp.cli", *argv], cwd=tmp_path, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"tuntcp {argv[0]}: error: ") and needle in line
    assert list(tmp_path.iterdir()) == []
    assert not [n for n in netns.list_namespaces() if n.startswith(f"{netns.PREFIX}{p.pid}-")]
