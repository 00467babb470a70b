"""``tuntcp drill --ip_version``: packetdrill's three address-family variants."""
import argparse

import pytest

from tuntcp.drill import cli, host, score
from tuntcp.drill.parser import parse
from tuntcp.drill.result import run_file
from tuntcp.drill.runner import Runner
from tuntcp.wire.ipv6 import V4_MAX

SCRIPT = """`sysctl -q net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 10) = 0
   +0 < S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 10>
 +.01 < . 1:1(0) ack 1 win 502
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 2920) = 2920
   +0 > P. 1:2921(2920) ack 1
"""


def runner(text, **kw):
    r = Runner(parse(text, "t.pkt", {}), "linux-6.18", **kw)
    r.run()
    return r


@pytest.mark.parametrize("ip_version", host.IP_VERSIONS)
def test_the_same_script_matches_in_every_family(ip_version):
    """MSS 1460 in all three: IPv6 runs at MTU 1520 (1520 - 60), as run_all.py does."""
    r = runner(SCRIPT, ip_version=ip_version)
    v6 = ip_version == "ipv6"
    assert (r.laddr > V4_MAX, r.raddr > V4_MAX) == (v6, v6)
    assert r.settings.mtu == (1520 if v6 else 1500)


def test_ipv6_headers_on_the_packets_the_runner_builds_and_matches():
    """Inbound script packets enter as IPv6 bytes through the stack's IPv6 input (parse6 and the
    pseudo-header checksum); what the model sends back must carry the family's addresses."""
    r = runner(SCRIPT, ip_version="ipv6")
    assert r.local_ip == "fd3d:a0b:17d6::1" and r.remote_ip == "fd3d:fa7b:d17d::1"
    assert r.stack.advmss(r.laddr) == 1460
    c = r.stack.counters
    assert c["Ip6InReceives"] == 2 and c.get("IpInReceives", 0) == 0
    r4 = runner(SCRIPT, ip_version="ipv4")
    assert r4.stack.counters["IpInReceives"] == 2 and r4.stack.counters.get("Ip6InReceives", 0) == 0


def test_an_outbound_packet_with_the_wrong_addresses_is_a_mismatch(monkeypatch):
    """The script's inbound packets come from one address; the runner expects the replies to go
    to another: the match fails on the addresses, not silently on ports alone."""
    from tuntcp.drill import runner as runner_mod
    from tuntcp.drill.model import Mismatch
    r = Runner(parse(SCRIPT, "t.pkt", {}), "linux-6.18", ip_version="ipv6")
    real, sender = runner_mod.build_inbound, r.raddr
    r.raddr += 1
    monkeypatch.setattr(runner_mod, "build_inbound", lambda p, f, la, ra: real(p, f, la, sender))
    with pytest.raises(Mismatch, match="live packet addresses fd3d:a0b:17d6::1 > fd3d:fa7b:d17d::1"):
        r.run()


def test_ipv6_at_mtu_1500_advertises_1440(tmp_path):
    p = tmp_path / "t.pkt"
    p.write_text(SCRIPT)
    res = run_file(str(p), "linux-6.18", ip_version="ipv6", mtu=1500)
    assert res.verdict == "DIVERGENCE" and "mss" in res.message and "1440" in res.message


def test_script_addresses_must_fit_the_family(tmp_path):
    p = tmp_path / "t.pkt"
    p.write_text("--local_ip=192.168.0.1\n" + SCRIPT)
    res = run_file(str(p), "linux-6.18", ip_version="ipv6")
    assert res.verdict == "UNSUPPORTED" and "192.168.0.1" in res.message, res


def args(*a):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(list(a))


def test_cli_ip_version_and_mtu(tmp_path, capsys):
    p = tmp_path / "t.pkt"
    p.write_text(SCRIPT)
    assert cli.main(args("--profile", "linux-6.18", "--ip_version", "ipv6", str(p))) == 0
    assert cli.main(args("--profile", "linux-6.18", "--ip_version", "ipv6", "--mtu", "1500", str(p))) == 1
    assert cli.main(args("--profile", "linux-6.18", "--mtu", "9", str(p))) == 2
    assert "--mtu 9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        args("--ip_version", "ipv5")


def test_scoreboard_names_its_family(tmp_path):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "a.pkt").write_text(SCRIPT)
    rows = score.score(str(tmp_path / "suite"), "linux-6.18", {}, ip_version="ipv6")
    assert rows[0]["verdict"] == "MATCH"
    _, md_path = score.write(rows, str(tmp_path / "out"), "linux-6.18", "suite", "ipv6")
    title = "# tuntcp drill scoreboard: profile linux-6.18"
    assert open(md_path).readline() == title + ", --ip_version ipv6\n"
    score.write(rows, str(tmp_path / "out4"), "linux-6.18", "suite")
    assert open(tmp_path / "out4" / "scoreboard.md").readline() == title + "\n"


def test_headers_per_family_defines():
    from tuntcp.drill.headers import read_headers
    h = read_headers("// tuntcp-define linux-5.4: W=1 X=2\n// tuntcp-define linux-5.4 ipv6: W=3\n"
                     "// tuntcp-kernel: valid -D W=5\n// tuntcp-kernel ipv6: -D W=6\n")
    assert h.model_defines("linux-5.4") == {"W": "1", "X": "2"}
    assert h.model_defines("linux-5.4", "ipv6") == {"W": "3", "X": "2"}
    assert h.model_defines("linux-5.4", "ipv4-mapped-ipv6") == {"W": "1", "X": "2"}
    assert h.kernel_defines() == {"W": "5"} and h.kernel_defines("ipv6") == {"W": "6"}
