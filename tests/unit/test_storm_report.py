"""The storm report renders what the run measured: tables and plots from a result dict."""
import json

from tuntcp.scenarios.report import percentiles, render_markdown, write_all


def _run(mode, lat_cookie, lat_synq, mism):
    conns = [{"client": "198.18.0.2:40000", "handshake": "cookie", "client_snd_wscale": 1,
              "server_rcv_wscale": 7 if mism else 1, "window_field": 789, "client_snd_wnd": 1578,
              "latency_ms": percentiles(lat_cookie), "retransmits": 0, "connect_s": 0.01}]
    return {"summary": {"connections_made": 1, "time_to_all_connected_s": 0.01, "syn_retransmits": 0,
                        "cookie_connections": 1, "wscale_mismatches": int(mism),
                        "latency_ms_by_handshake": {"cookie": percentiles(lat_cookie), "synq": percentiles(lat_synq)},
                        "counters": {"TcpExtSyncookiesSent": 5}, "kernel_log": ["TCP: Possible SYN flooding"]},
            "connections": conns, "latencies": {"cookie": lat_cookie, "synq": lat_synq},
            "timeline": {"t": [0, 1], "established": [0, 1], "accept_queue": [0, 0], "syn_queue": [3, 0]}}


def test_percentiles_nearest_rank():
    assert percentiles([]) == {"p50": None, "p99": None, "max": None, "n": 0}
    p = percentiles([float(i) for i in range(1, 101)])
    assert (p["p50"], p["p99"], p["max"], p["n"]) == (50.0, 99.0, 100.0, 100)


def test_write_all_makes_markdown_json_and_pngs(tmp_path):
    report = {"scenario": "kafka-broker-restart", "config": {"clients": 1},
              "runs": {"buggy": _run("buggy", [500.0, 520.0], [5.0], True),
                       "fixed": _run("fixed", [5.0, 6.0], [5.0], False)},
              "comparison": {"headline": "cookie p50 100x"}}
    write_all(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "| wscale_mismatches | 1 | 0 |" in md
    assert "| latency_ms cookie p50 | 500.0 | 5.0 |" in md
    assert "Possible SYN flooding" in md
    loaded = json.loads((tmp_path / "report.json").read_text())
    assert loaded["runs"]["buggy"]["connections"][0]["window_field"] == 789
    for p in loaded["artifacts"]["plots"]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
