"""`tuntcp fluentd` (seed 001): hundreds of forwarders' heartbeats against in_forward's backlog
128 print "Possible SYN flooding on port 24224" with no attack; the seed's fix (backlog,
somaxconn, tcp_max_syn_backlog 65535) makes the line disappear under the same load. SYN-RECV is
counted from /proc/net/tcp-style text (local port 5EA0, st 03) as the operator did."""
import json

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



def test_proc_net_tcp_lines_count_like_the_operator():
    from tuntcp.scenarios.fluentd import count_syn_recv
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 00000000:5EA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0\n"
            "   1: 010112C6:5EA0 500013C6:ADB5 03 00000000:00000000 01:00000062 00000000     0        0 0 0 0\n"
            "   2: 010112C6:5EA0 510013C6:ADB6 01 00000000:00000000 00:00000000 00000000     0        0 0 0 0\n"
            "   3: 010112C6:1F90 520013C6:ADB7 03 00000000:00000000 01:00000062 00000000     0        0 0 0 0\n")
    assert count_syn_recv(text) == 1


async def test_fluentd_line_at_128_not_at_65535(tmp_path, netns_available):
    from tuntcp.scenarios.fluentd import Config, run

    cfg = Config(forwarders=250, hosts=50, rounds=2, connect_timeout_s=4.0,
                 settings=("128/1", "2048@128/1", "65535/1", "128/0"), out=str(tmp_path))
    report = await run(cfg)
    assert_matches_schema(report, tmp_path)
    small, fixed = report["headline"]["backlog=128 cookies=1"], report["headline"]["backlog=65535 cookies=1"]
    drop = report["headline"]["backlog=128 cookies=0"]

    assert small["flood_line_printed"]
    assert "Possible SYN flooding on port 24224. Sending cookies." in small["flood_line"]
    assert small["max_syn_recv"] == 128 == small["syn_queue_max"], "the SYN queue is full at the backlog"
    assert small["TCPReqQFullDoCookies"] > 0 and small["SyncookiesSent"] > 0
    assert small["failed"] == 0

    assert not fixed["flood_line_printed"] and fixed["flood_line"] is None
    assert fixed["max_syn_recv"] > 128, "the whole burst sits in the SYN queue"
    assert fixed["TCPReqQFullDoCookies"] == 0 and fixed["ListenOverflows"] == 0 and fixed["failed"] == 0

    # cookies off: the same line says "Dropping request"; the dropped forwarders come back with
    # their SYN retransmission a second later
    assert "Possible SYN flooding on port 24224. Dropping request." in drop["flood_line"]
    assert drop["TCPReqQFullDrop"] > 0 and drop["SyncookiesSent"] == 0
    assert drop["connect_ms"]["p99"] >= 900

    # in_forward's backlog raised alone is clamped to somaxconn: the same line
    alone = report["headline"]["backlog=2048 somaxconn=128 cookies=1"]
    assert alone["flood_line_printed"] and alone["max_syn_recv"] == 128
    assert report["runs"]["backlog=2048 somaxconn=128 cookies=1"]["backlog"] == 128

    run_ = report["runs"]["backlog=128 cookies=1"]
    assert run_["somaxconn"] == 128 and run_["backlog"] == 128
    assert report["runs"]["backlog=65535 cookies=1"]["tcp_max_syn_backlog"] == 65535
    peak = run_["proc_net_tcp_at_peak"].splitlines()
    assert sum(" 03 " in ln and ":5EA0 " in ln for ln in peak) == 128
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert set(on_disk["headline"]) == set(report["headline"])
