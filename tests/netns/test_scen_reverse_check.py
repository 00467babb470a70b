"""`tuntcp reverse_check`: the endpoint as a client against a KERNEL listener in the namespace
(SO_RCVBUF 102400, tcp_syncookies=2). On this host (Linux >= 5.10) the kernel carries
909172a14974: the cookie child's receive shift equals the one its SYN-ACK announced."""
import json
import platform

import pytest

from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns



async def test_host_kernel_carries_the_cookie_wscale_fix(tmp_path, netns_available):
    from tuntcp.scenarios.reverse_check import Config, run

    report = await run(Config(out=str(tmp_path)))
    assert_matches_schema(report, tmp_path)
    h, e = report["headline"], report["evidence"]
    # the handshake really was a cookie one, on the kernel's side
    assert report["counters"]["kernel"]["TcpExtSyncookiesSent"] == 1
    assert h["cookie_handshake"] is True
    assert e["synack"]["ts"] and e["synack"]["wscale"] == h["synack_wscale"]
    assert e["kernel_received"] == report["config"]["nbytes"] and e["reply"] == "ok"
    # the verdict and the evidence agree
    assert h["kernel"] == platform.release()
    assert h["verdict"] == "fixed"
    assert h["synack_wscale"] == h["kernel_rcv_wscale_ss"] == h["kernel_rcv_wscale_tcpinfo"]
    assert h["wscales_equal"] is True
    assert h["window_as_client_reads"] == h["window_as_kernel_means"]
    # what we read from the fields covers at least a full MSS (the bug leaves ~1/64 of it)
    assert h["window_as_client_reads"] >= 10 * e["kernel_tcp_info"]["rcv_mss"]
    assert e["endpoint_info"]["snd_wscale"] == h["synack_wscale"]
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["headline"]["verdict"] == "fixed"
    assert "fixed" in (tmp_path / "report.md").read_text()


def test_parse_ss_wscale_picks_the_right_socket():
    from tuntcp.scenarios.reverse_check import parse_ss_wscale
    text = ("State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
            "ESTAB 0 0 198.18.0.1:40000 198.18.1.1:80\n\t cubic wscale:9,9 rto:204\n"
            "ESTAB 0 0 198.18.0.1:9092 198.18.1.1:33000\n\t cubic wscale:7,1 rto:204\n")
    snd, rcv, lines = parse_ss_wscale(text, 9092, "198.18.1.1")
    assert (snd, rcv) == (7, 1) and lines[0].startswith("ESTAB")
    assert parse_ss_wscale(text, 9093, "198.18.1.1") is None
