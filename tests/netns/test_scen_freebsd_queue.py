"""`tuntcp freebsd_queue`: FreeBSD 9 vs 14 with real kernel clients. Backlog 4 holds
floor(1.5 * 4) + 1 = 7 completed connections and every later one is reset; the syncache entry
of a SYN nobody answers resends on a 3 s (9) or 1 s (14) base; accf_http holds a GET until its
header is complete but passes a non-HTTP client at its first data; accf_data holds each until
its first data."""
import json
import re

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



def netstat_rows(text):
    """{port: (qlen, incqlen, maxqlen)} from netstat -Lan text."""
    return {int(m[4]): (int(m[1]), int(m[2]), int(m[3]))
            for m in re.finditer(r"tcp4\s+(\d+)/(\d+)/(\d+)\s+\S*\.(\d+)", text)}


def check_lifetime(lt, tol):
    assert len(lt["synack_times_s"]) == lt["rexmtlimit"] + 1, lt
    for got, want in zip(lt["synack_times_s"], lt["expected_synack_times_s"]):
        assert abs(got - want) <= tol, lt
    assert abs(lt["lifetime_s"] - lt["expected_lifetime_s"]) <= 2 * tol, lt
    assert lt["stale"] == 1 and lt["retransmitted"] == lt["rexmtlimit"]


async def test_freebsd_queue_overflow_lifetime_and_filters(tmp_path, netns_available):
    from tuntcp.scenarios.freebsd_queue import Config, run

    cfg = Config(backlog=4, clients=10, hosts=3, rexmtlimit=1, out=str(tmp_path))
    report = await run(cfg)
    assert_matches_schema(report, tmp_path)
    h = report["headline"]
    for name in ("freebsd-9", "freebsd-14"):
        x, prof = h[name], report["profiles"][name]
        # sonewconn: 7 get in, the other 3 are reset, spread over the sources
        assert (x["queue_limit"], x["queued"], x["reset"]) == (7, 3 + 4, 3), x
        assert sum(x["resets_per_source"].values()) == 3 and len(x["resets_per_source"]) == 3
        assert netstat_rows(x["netstat_full"])[7000] == (7, 0, 4)
        assert any("Listen queue overflow: 7 already in queue" in ln for ln in prof["kernel_log"])
        assert report["counters"][name]["FreeBSDListenDrops"] == 3
        held = netstat_rows(prof["netstat_held"])
        assert held[7080][0] == 0 and held[7080][1] >= 2     # split GET + silent line client
        assert held[7081][0] == 0 and held[7081][1] >= 1     # the silent line client
        check_lifetime(x["lifetime"], tol=0.25)
        f = x["filters"]
        for flt in ("httpready", "dataready"):
            assert f[flt]["curl"]["whole_request"] is True
            assert prof["filters"][flt]["curl"]["curl_output"] == "ok"
            # the non-HTTP line is held until it arrives, then passed at once
            assert f[flt]["line"]["accept_delay_s"] >= cfg.line_s - 0.05
            assert f[flt]["line"]["after_first_data_s"] < 0.25
            assert f[flt]["line"]["whole_request"] is True
        # httpready waits for the blank line; dataready lets the first part through
        assert f["httpready"]["http_split"]["whole_request"] is True
        assert f["httpready"]["http_split"]["after_first_data_s"] >= cfg.split_s - 0.05
        assert f["dataready"]["http_split"]["whole_request"] is False
        assert f["dataready"]["http_split"]["after_first_data_s"] < 0.25
        assert f["dataready"]["http_split"]["bytes_at_accept"] == 30
    # rexmtlimit 1: 3 s base -> gone at 9 s; 1 s base -> gone at 3 s
    assert h["freebsd-9"]["lifetime"]["expected_lifetime_s"] == 9.0
    assert h["freebsd-14"]["lifetime"]["expected_lifetime_s"] == 3.0
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["headline"]["freebsd-9"]["reset"] == 3


@pytest.mark.slow
async def test_freebsd_syncache_full_lifetime_45_vs_15(tmp_path, netns_available):
    """The seed's numbers with the default rexmtlimit 3: 0/3/9/21 s and 45 s on 9.x,
    0/1/3/7 s and 15 s on 14."""
    from tuntcp.scenarios.freebsd_queue import Config, run

    report = await run(Config(rexmtlimit=None, out=str(tmp_path), timeout_s=90))
    assert_matches_schema(report, tmp_path)
    for name, times, life in (("freebsd-9", [0, 3, 9, 21], 45.0), ("freebsd-14", [0, 1, 3, 7], 15.0)):
        lt = report["headline"][name]["lifetime"]
        assert lt["rexmtlimit"] == 3 and lt["expected_synack_times_s"] == times
        assert lt["expected_lifetime_s"] == life
        check_lifetime(lt, tol=0.4)


def test_expected_schedule_and_config_errors():
    from tuntcp.scenarios.freebsd_queue import Config, FreeBSDQueueError, expected_schedule
    assert expected_schedule(3.0, 3) == ([0.0, 3.0, 9.0, 21.0], 45.0)
    assert expected_schedule(1.0, 3) == ([0.0, 1.0, 3.0, 7.0], 15.0)
    with pytest.raises(FreeBSDQueueError, match="--profiles"):
        Config(profiles=("linux-6.1",)).check()
    with pytest.raises(FreeBSDQueueError, match="--rexmtlimit"):
        Config(rexmtlimit=9).check()
