"""`tuntcp slow_accept`: accept() stalls while real kernel clients connect (Cloudflare, "SYN
packet handling in the wild"). During the stall `ss -lnt` shows Recv-Q = backlog + 1, after it 0,
and ListenOverflows remembers; with tcp_abort_on_overflow=1 the clients whose completing ACK
overflowed see ECONNRESET, with 0 they stall and then succeed."""
import json

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



async def test_slow_accept_queue_and_abort_on_overflow(tmp_path, netns_available):
    from tuntcp.scenarios.slow_accept import Config, run

    cfg = Config(clients=30, backlog=8, stall_s=1.5, out=str(tmp_path))
    report = await run(cfg)
    assert_matches_schema(report, tmp_path)
    off, on = report["headline"]["abort_on_overflow=0"], report["headline"]["abort_on_overflow=1"]
    for h in (off, on):
        assert h["send_q"] == 8
        assert h["recv_q_during"] == 9, "a full accept queue holds backlog + 1"
        assert h["recv_q_after"] == 0
        assert h["listen_overflows"] > 0
        assert h["timeout"] == 0 and h["other"] == 0
    # 0: every client stalls and then gets its answer; 1: some are reset, the rest succeed
    assert off["ok"] == 30 and off["reset"] == 0
    assert on["reset"] > 0 and on["ok"] + on["reset"] == 30
    assert report["counters"]["abort_on_overflow=1"]["TcpExtEmbryonicRsts"] == on["reset"]
    assert report["counters"]["abort_on_overflow=0"].get("TcpExtEmbryonicRsts", 0) == 0
    resets = [c for c in report["runs"]["abort_on_overflow=1"]["clients"] if c["outcome"] == "reset"]
    assert all(c["error"] == "ECONNRESET" and c["connect_s"] is not None for c in resets), \
        "the reset comes after connect() returned, on the first send/recv"
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert set(on_disk["headline"]) == {"abort_on_overflow=0", "abort_on_overflow=1"}
