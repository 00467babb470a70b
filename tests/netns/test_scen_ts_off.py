"""`tuntcp ts_off`: clients with net.ipv4.tcp_timestamps=0 over a 50 ms RTT link. Cookie
connections have nowhere to carry wscale/SACK (no TSval), so both ends run unscaled and the
transfer is capped by 65535 bytes per RTT (~1.31 MB/s); queue connections keep wscale and SACK
and are not capped."""
import json

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



async def test_ts_off_cookie_connections_are_capped(tmp_path, netns_available):
    from tuntcp.scenarios.ts_off import Config, run

    cfg = Config(clients=3, nbytes=3_000_000, rtt_ms=50, out=str(tmp_path))
    report = await run(cfg)
    assert_matches_schema(report, tmp_path)
    h = report["headline"]
    assert abs(h["bound_mb_s"] - 1.311) < 0.01
    ck, q = h["cookie"], h["queue"]
    assert ck["connections"] == q["connections"] == 3
    assert ck["handshake_paths"] == ["cookie"] and q["handshake_paths"] == ["synq"]
    # what was negotiated, seen from both ends
    assert (ck["wscale"], ck["sack"], ck["client_wscale_ok"], ck["client_sack"]) == (False,) * 4
    assert (q["wscale"], q["sack"], q["client_wscale_ok"], q["client_sack"]) == (True,) * 4
    assert ck["agree"] and q["agree"]
    for c in report["paths"]["cookie"]["connections"]:
        assert c["client"]["snd_wscale"] == c["client"]["rcv_wscale"] == 0
        assert c["endpoint"]["snd_wscale"] == c["endpoint"]["rcv_wscale"] == 0
        assert c["client"]["ts"] is False and c["max_window_field"] <= 65535
        assert c["bytes"] == cfg.nbytes
    for c in report["paths"]["queue"]["connections"]:
        assert c["client"]["ts"] is False and c["endpoint"]["rcv_wscale"] > 0
        assert c["bytes"] == cfg.nbytes
    # the cap: a cookie connection cannot beat 64 KB per RTT; a queue one does, clearly
    assert ck["mb_s_max"] <= 1.05 * h["bound_mb_s"], ck
    assert q["max_window_bytes"] > 4 * 65535
    # (generous: the queue path is CPU-bound on a loaded 2-core box, the cookie path is not)
    assert q["mb_s_median"] >= 1.3 * h["bound_mb_s"], q
    assert q["mb_s_median"] >= 1.3 * ck["mb_s_median"]
    # the window each client was left with says the same without a clock
    assert all(c["client"]["snd_wnd"] <= 65535 for c in report["paths"]["cookie"]["connections"])
    assert all(c["client"]["snd_wnd"] > 4 * 65535 for c in report["paths"]["queue"]["connections"])
    # the host kernel, asked the same question (kernel listener + clients, timestamps off)
    kref = report["kernel_reference"]
    assert kref["cookie"]["syncookies_recv"] == 1 and kref["queue"]["syncookies_recv"] == 0
    assert kref["cookie"]["server"]["wscale_ok"] is False and kref["cookie"]["server"]["sack"] is False
    assert kref["queue"]["server"]["wscale_ok"] is True and kref["queue"]["server"]["sack"] is True
    assert h["kernel_agrees"] is True
    cnt = report["counters"]
    assert cnt["cookie"]["TcpExtSyncookiesRecv"] == 3 and cnt["queue"].get("TcpExtSyncookiesSent", 0) == 0
    assert json.loads((tmp_path / "report.json").read_text())["headline"]["cookie"]["wscale"] is False


async def test_ts_off_burst_puts_the_overflow_on_cookies(tmp_path, netns_available):
    """One lab, tcp_syncookies=1, backlog 3, 6 clients at once: the SYN queue takes 3, the
    other 3 get cookies, and the same split shows up on the same link."""
    from tuntcp.scenarios.ts_off import Config, run

    report = await run(Config(clients=3, nbytes=2_000_000, force="burst", kernel=False,
                              out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    h = report["headline"]
    ck, q = h["cookie"], h["queue"]
    assert ck["connections"] == q["connections"] == 3
    assert (ck["wscale"], ck["sack"], ck["client_wscale_ok"], ck["client_sack"]) == (False,) * 4
    assert (q["wscale"], q["sack"], q["client_wscale_ok"], q["client_sack"]) == (True,) * 4
    assert ck["mb_s_max"] <= 1.05 * h["bound_mb_s"], ck
    assert q["max_window_bytes"] > 4 * 65535 >= 65535 >= ck["max_window_bytes"]
    # no rate ratio here: both paths share one Python thread, so on a loaded box both are
    # CPU-bound; the windows tell the story without a clock
    assert all(c["client"]["snd_wnd"] <= 65535 for c in report["paths"]["cookie"]["connections"])
    assert all(c["client"]["snd_wnd"] > 4 * 65535 for c in report["paths"]["queue"]["connections"])
    assert report["counters"]["burst"]["TcpExtSyncookiesSent"] == 3
    assert any("Possible SYN flooding on port" in ln for ln in report["kernel_log"]["burst"])


def test_ts_off_config_errors():
    from tuntcp.scenarios.ts_off import Config, TsOffError
    with pytest.raises(TsOffError, match="--rtt-ms"):
        Config(rtt_ms=0).check()
    with pytest.raises(TsOffError, match="--clients"):
        Config(clients=0).check()
    with pytest.raises(TsOffError, match="--force"):
        Config(force="loud").check()
