"""Each scenario that takes ``--family`` once over IPv6, short: the headline finding holds with
kernel clients at 2001:2::1 and the endpoint at 2001:2:0:1::1, and the report says ipv6. What
cannot run over IPv6 (soak's hping3 bursts) is refused in one line."""
import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



async def test_ts_off_over_ipv6(tmp_path, netns_available):
    from tuntcp.scenarios.ts_off import Config, run

    report = await run(Config(clients=1, nbytes=300_000, rtt_ms=20, pcap=True, family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6" and report["config"]["family"] == 6
    h = report["headline"]
    ck, q = h["cookie"], h["queue"]
    assert ck["handshake_paths"] == ["cookie"] and q["handshake_paths"] == ["synq"]
    assert (ck["wscale"], ck["sack"], ck["client_wscale_ok"], ck["client_sack"]) == (False,) * 4
    assert (q["wscale"], q["sack"], q["client_wscale_ok"], q["client_sack"]) == (True,) * 4
    assert all(c["max_window_field"] is not None for c in report["paths"]["cookie"]["connections"])
    assert h["kernel_agrees"] is True


async def test_defer_accept_over_ipv6(tmp_path, netns_available):
    from tuntcp.scenarios.defer_accept import Config, run

    report = await run(Config(defer_s=2, late_s=0.5, family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6"
    q, c = report["headline"]["queue"], report["headline"]["cookies"]
    assert q["bare_s"] >= 1.7 and q["data_s"] < 0.5 and q["defer_drops"] == 3, q
    assert c["bare_s"] < 0.5 and c["defer_drops"] == 0 and c["syncookies_recv"] == 3, c
    kq, kc = q["kernel"], c["kernel"]          # the host kernel over IPv6: the same answer
    assert kq["defer_drops"] == 3 and kc["defer_drops"] == 0 and kc["syncookies_recv"] == 3, (kq, kc)


async def test_slow_accept_over_ipv6(tmp_path, netns_available):
    from tuntcp.scenarios.slow_accept import Config, run

    report = await run(Config(clients=14, backlog=4, stall_s=1.0, pace_ms=10, rtt_ms=40, family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6"
    for h in report["headline"].values():
        assert h["send_q"] == 4 and h["recv_q_during"] == 5, h     # backlog + 1, read from ss -lnt
        assert h["listen_overflows"] > 0 and h["timeout"] == 0
    off, on = report["headline"]["abort_on_overflow=0"], report["headline"]["abort_on_overflow=1"]
    assert off["ok"] == 14 and on["reset"] > 0


async def test_fluentd_over_ipv6(tmp_path, netns_available):
    from tuntcp.scenarios.fluentd import Config, run

    report = await run(Config(forwarders=200, hosts=40, rounds=1, connect_timeout_s=4.0,
                              settings=("128/1", "65535/1"), family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6"
    small, fixed = report["headline"]["backlog=128 cookies=1"], report["headline"]["backlog=65535 cookies=1"]
    assert "Possible SYN flooding on port 24224. Sending cookies." in small["flood_line"]
    assert small["max_syn_recv"] == 128 and small["failed"] == 0
    assert not fixed["flood_line_printed"] and fixed["max_syn_recv"] > 128
    peak = report["runs"]["backlog=128 cookies=1"]["proc_net_tcp_at_peak"].splitlines()
    assert "remote_address" in peak[0]                       # /proc/net/tcp6's header
    rows = [ln for ln in peak if " 03 " in ln and ":5EA0 " in ln]
    assert len(rows) == 128 and all(len(ln.split()[1]) == 32 + 5 for ln in rows)   # 32 hex digits:port


async def test_freebsd_queue_over_ipv6(tmp_path, netns_available):
    from tuntcp.scenarios.freebsd_queue import Config, run

    report = await run(Config(profiles=("freebsd-14",), backlog=4, clients=10, hosts=3, rexmtlimit=1,
                              family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6"
    x = report["headline"]["freebsd-14"]
    assert (x["queue_limit"], x["queued"], x["reset"]) == (7, 7, 3), x        # 1.5 x backlog, then RST
    lt = x["lifetime"]
    assert len(lt["synack_times_s"]) == 2 and abs(lt["lifetime_s"] - lt["expected_lifetime_s"]) <= 0.5, lt
    f = x["filters"]
    assert f["httpready"]["http_split"]["whole_request"] is True
    assert f["dataready"]["http_split"]["whole_request"] is False
    assert report["profiles"]["freebsd-14"]["filters"]["httpready"]["curl"]["curl_output"] == "ok"


async def test_soak_over_ipv6_without_the_hping3_flood(netns_available):
    from tuntcp.scenarios.report import stamp
    from tuntcp.scenarios.soak_load import SoakConfig, run_soak

    report = stamp(await run_soak(SoakConfig(seconds=4, clients=6, hosts=3, bulk_bytes=1 << 20,
                                             flood_seconds=0, family=6)))
    assert report["family"] == "ipv6"
    st = report["stats"]
    assert not report["failures"] and st["exchanges"] > 20 and st["bulk_transfers"] >= 1, st


@pytest.mark.parametrize("argv,why", [
    (["soak", "--family", "ipv6"], "add --flood-s 0"),
    (["synflood", "--family", "ipv6", "--spoof", "198.18.200.1"], "not an IPv6 address"),
    (["synflood", "--family", "ipv6", "--spoof", "2001:2:0:1::9"], "assigned nowhere"),
])
def test_ipv6_refusals_say_why_in_one_line(argv, why, tmp_path, capsys):
    from tuntcp.cli import main
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err, err
    assert not (tmp_path / "o").exists()


async def test_reverse_check_over_ipv6_asks_the_hosts_cookie_v6(tmp_path, netns_available):
    """909172a14974 fixed net/ipv6/syncookies.c too: the host's IPv6 cookie child uses the
    window scale its SYN-ACK announced."""
    from tuntcp.scenarios.reverse_check import Config, run

    report = await run(Config(family=6, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6"
    h = report["headline"]
    assert h["cookie_handshake"] is True and h["verdict"] == "fixed"
    assert h["synack_wscale"] == h["kernel_rcv_wscale_ss"] == h["kernel_rcv_wscale_tcpinfo"]


async def test_synflood_over_ipv6_cookies_keep_everyone_in(tmp_path, netns_available):
    """hping3 has no IPv6: FLOOD6 sends the spoofed SYNs; cookies on, every legitimate client
    connects at its first SYN while the flood holds the SYN queue."""
    from tuntcp.scenarios.synflood import Config, run

    report = await run(Config(legit=20, modes=("cookies",), flood_s=2.0, legit_window_s=1.5, family=6,
                              out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    assert report["family"] == "ipv6" and report["config"]["family"] == 6
    on = report["headline"]["cookies"]
    assert on["flood_sent"] > 2000 and on["success_rate"] == 1.0, on
    assert on["SyncookiesSent"] > 1000 and on["legit_syn_retransmits"] == 0, on
