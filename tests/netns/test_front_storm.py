"""`tuntcp storm --front HOST:PORT`: the storm's broker is the modelled listen path relaying each
producer to redis-server (not ours) in the lab namespace, with redis's own protocol (PING\\r\\n
out, +PONG\\r\\n back). The reconnect burst overflows the SYN queue: on the buggy derivation
the cookie connections disagree on the window scale, on the fixed one they do not. The backlog is
4, not Kafka's 50: 150 producers reconnecting over Kafka's jittered 50 ms overflow 50 only when
the machine is slow enough to hold handshakes back (CI once saw no cookie at all on a quiet run)."""
import json
import subprocess
import sys

import pytest

from front_common import need
from tuntcp.harness.netns import PREFIX, list_namespaces

pytestmark = pytest.mark.netns

REDIS = "redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no --logfile ''"
STORM = [sys.executable, "-m", "tuntcp.cli", "storm", "--quiet", "--no-pcap"]


def _storm(*args, timeout=240):
    p = subprocess.Popen([*STORM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=timeout)
    assert not [n for n in list_namespaces() if n.startswith(f"{PREFIX}{p.pid}-")]
    return p.returncode, out, err


def test_storm_front_relays_producers_to_redis(tmp_path, netns_available):
    need("redis-server")
    rc, out, err = _storm("--clients", "150", "--backlog", "4", "--requests", "3", "--interval", "0.3",
                          "--front", "127.0.0.1:16379", "--front-cmd", REDIS,
                          "--request", r"PING\r\n", "--reply-delim", r"\r\n", "--out", str(tmp_path))
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["runs"]) == ["buggy", "fixed"]
    assert report["config"]["front"] == ["127.0.0.1", 16379]
    for mode, run in report["runs"].items():
        s = run["summary"]
        assert s["connections_made"] == 150, mode
        assert s["latency_ms_all"]["n"] == 450, mode     # every PING answered by redis
        assert s["producer_resets"] == 0, mode
    buggy, fixed = (report["runs"][m]["summary"] for m in ("buggy", "fixed"))
    assert buggy["cookie_connections"] > 0
    assert buggy["wscale_mismatches"] == buggy["cookie_connections"]
    assert fixed["wscale_mismatches"] == 0


@pytest.mark.parametrize("args, msg", [
    (["--modes", "buggy,kernel"], "--front runs the buggy and fixed modes (storm the backend "
                                  "itself on the host kernel with --target CMD)"),
    (["--shards", "2"], "--front relays from one endpoint: leave out --shards")])
def test_storm_front_mistakes_are_one_line(tmp_path, netns_available, args, msg):
    rc, out, err = _storm("--front", "127.0.0.1:16379", *args, "--out", str(tmp_path), timeout=60)
    assert rc == 2 and "Traceback" not in err
    assert err.strip() == f"tuntcp storm: error: {msg}"
