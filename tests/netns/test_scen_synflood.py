"""`tuntcp synflood`: a bounded hping3 flood from an unassigned spoofed source, inside the
namespace, while legitimate kernel clients connect. Cookies on: every legitimate client connects
at its first SYN (no SYN retransmission in its kernel) and SyncookiesSent is in the thousands.
Cookies off: their SYNs are dropped on the full SYN queue and their connect times sit at the
kernel's SYN retransmit schedule (1, 3, 7 s)."""
import json

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



def test_schedule_and_nearness():
    from tuntcp.scenarios.synflood import near_point, syn_schedule
    assert syn_schedule(3, 0) == [0.0, 1.0, 3.0, 7.0]
    assert syn_schedule(6, 0)[-1] == 63.0
    assert syn_schedule(6, 4) == [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]
    pts = [1.0, 3.0, 7.0]
    assert near_point(7.3, pts, 0.1) == 7.0      # a coarse timer-wheel level fires late
    assert near_point(6.7, pts, 0.1) is None     # never early
    assert near_point(2.0, pts, 0.1) is None


def test_spoof_must_be_unassigned():
    from tuntcp.scenarios.synflood import Config, SynfloodError
    for bad in ("198.19.0.5", "198.18.1.7", "10.0.0.1", "198.18.0.1"):
        with pytest.raises(SynfloodError):
            Config(spoof=bad).check()


async def test_synflood_cookies_on_vs_off(tmp_path, netns_available):
    from tuntcp.scenarios.synflood import Config, run

    cfg = Config(legit=40, out=str(tmp_path))
    report = await run(cfg)
    assert_matches_schema(report, tmp_path)
    on, off = report["headline"]["cookies"], report["headline"]["nocookies"]
    assert on["flood_sent"] > 2000 and off["flood_sent"] > 2000
    assert on["tun_dropped"] == 0, "the paced flood does not outrun the endpoint"

    assert on["success_rate"] == 1.0
    assert on["SyncookiesSent"] > 1000 and on["TCPReqQFullDoCookies"] == on["SyncookiesSent"]
    assert on["legit_syn_retransmits"] == 0, "a cookie SYN-ACK answers the first SYN"
    assert report["counters"]["cookies"]["TcpExtSyncookiesRecv"] >= 40

    assert off["SyncookiesSent"] == 0 and off["TCPReqQFullDrop"] > 1000
    assert off["legit_syn_retransmits"] > 0
    assert off["success_rate"] >= 0.9
    assert off["near_schedule_fraction"] >= 0.9
    hist = report["runs"]["nocookies"]["histogram"]
    assert hist["0"] == 0 and hist["3"] > 0 and hist["7"] > 0
    assert report["runs"]["nocookies"]["schedule_s"] == [0.0, 1.0, 3.0, 7.0]
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert set(on_disk["headline"]) == {"cookies", "nocookies"}
