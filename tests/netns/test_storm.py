"""`tuntcp storm` at small scale: the headline finding of the LINE incident, against real
kernel producers. Buggy: every cookie connection's client applies wscale 1 while the broker
advertises with 7 (field 789 -> the client's window 1578) and cookie requests are >= 10x slower
than on the fixed derivation, where nothing mismatches."""
import json

import pytest

from tuntcp.harness.netns import probe

pytestmark = pytest.mark.netns


@pytest.fixture
def require_netns():
    reason = probe()
    if reason:
        pytest.skip(reason)


async def test_storm_buggy_vs_fixed(tmp_path, require_netns):
    from scenarios.storm import StormConfig, run_storm

    # A 20 ms RTT makes each round of the 1578-byte window cost the link, not the CPU: ~42
    # rounds per 64 KiB request on the buggy path against ~3 (slow start) when fixed. The
    # aggregate rate stays low (~3 MB/s) so a busy CI machine does not starve the fixed run.
    cfg = StormConfig(clients=100, hosts=10, requests_per_client=2, request_interval_s=2.0, rtt_ms=20,
                      request_bytes=65536,
                      out=str(tmp_path), duration_s=60, pcap=False)
    report = await run_storm(cfg)
    buggy, fixed = report["runs"]["buggy"], report["runs"]["fixed"]
    for run in (buggy, fixed):
        s = run["summary"]
        assert s["connections_made"] == 100
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
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert set(on_disk["runs"]) == {"buggy", "fixed"}
    assert (tmp_path / "report.md").exists()
