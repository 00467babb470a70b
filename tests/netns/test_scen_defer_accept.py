"""`tuntcp defer_accept`: TCP_DEFER_ACCEPT 3 s (2 SYN-ACK rounds) against real kernel clients,
and the same clients against a kernel listener with TCP_DEFER_ACCEPT as the reference.
Without cookies the bare-ACK client waits for the end of the rounds (its ACK swallowed, the
SYN-ACK resent at 1 + 2 = 3 s), a client with data is accepted at once; with forced cookies
the bare client is accepted at once (cookie_v4_check has no defer logic)."""
import json

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



async def test_defer_accept_queue_vs_cookies(tmp_path, netns_available):
    from tuntcp.scenarios.defer_accept import Config, run

    report = await run(Config(defer_s=3, late_s=1.0, out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    h = report["headline"]
    assert h["defer_rounds"] == 2
    q, c = h["queue"], h["cookies"]
    # queue: the bare client waits for the defer rounds; data releases the others at once
    assert 2.7 <= q["bare_s"] <= 4.0, q
    assert q["data_s"] < 0.5 and 0.9 <= q["late_s"] < 2.0, q
    assert q["defer_drops"] == 3            # every client's handshake-completing bare ACK
    assert q["synacks_to_bare"] == 2 and q["syncookies_recv"] == 0
    bare = next(x for x in report["modes"]["queue"]["clients"] if x["kind"] == "bare")
    assert abs(bare["synack_times_s"][1] - 3.0) < 0.3       # resent at the end of the rounds
    assert bare["bytes_at_accept"] == 0 and bare["client_state"] == "ESTABLISHED"
    for x in report["modes"]["queue"]["clients"]:
        if x["kind"] != "bare":
            assert x["bytes_at_accept"] == len(b"PING\r\n") and x["synacks"] == 1
    # cookies: the defer is bypassed, nothing is swallowed, no SYN-ACK is resent
    assert c["bare_s"] < 0.5 and c["data_s"] < 0.5 and c["late_s"] < 0.5, c
    assert c["defer_drops"] == 0 and c["synacks_to_bare"] == 1
    assert c["syncookies_recv"] == 3
    assert report["counters"]["queue"]["TcpExtTCPSynRetrans"] == 1
    # the host kernel's own listener, same clients, same tcp_syncookies: the same answer
    kq, kc = q["kernel"], c["kernel"]
    assert 2.7 <= kq["bare_s"] <= 4.0 and kq["data_s"] < 0.5 and 0.9 <= kq["late_s"] < 2.0, kq
    assert kq["defer_drops"] == q["defer_drops"] == 3 and kq["synack_retrans"] == 1
    assert kc["bare_s"] < 0.5 and kc["defer_drops"] == 0 and kc["syncookies_recv"] == 3, kc
    assert json.loads((tmp_path / "report.json").read_text())["headline"]["queue"]["defer_drops"] == 3


def test_defer_accept_config_errors():
    from tuntcp.scenarios.defer_accept import Config, DeferAcceptError
    with pytest.raises(DeferAcceptError, match="--defer"):
        Config(defer_s=0).check()
    with pytest.raises(DeferAcceptError, match="--modes"):
        Config(modes=("queue", "bogus")).check()
