"""tuntcp.drill runner, matcher and shim against the real model (virtual time), and the CLI."""
import argparse
import os

import pytest

from tuntcp.drill import cli, score
from tuntcp.drill.result import run_file

HEAD = """`sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_rmem="4096 131072 6291456"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 10) = 0
   +0 < S 0:0(0) win 64240 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>
 +.01 < . 1:1(0) ack 1 win 502
   +0 accept(3, ..., ...) = 4
"""


def run(tmp_path, body, name="t.pkt", profile="linux-6.12", **kw):
    p = tmp_path / name
    p.write_text(HEAD + body)
    return run_file(str(p), profile, **kw)


def test_match_with_coalesced_segments(tmp_path):
    r = run(tmp_path, "   +0 write(4, ..., 3000) = 3000\n   +0 > P. 1:3001(3000) ack 1\n")
    assert r.verdict == "MATCH", r.message


def test_strict_segments_sees_each_segment(tmp_path):
    r = run(tmp_path, "   +0 write(4, ..., 3000) = 3000\n   +0 > P. 1:3001(3000) ack 1\n",
            strict_segments=True)
    assert r.verdict == "DIVERGENCE" and "actual packet:  0.010000 P. 1:2001(2000)" in r.message


def test_failure_message_is_packetdrills(tmp_path):
    r = run(tmp_path, "   +0 write(4, ..., 100) = 100\n   +0 > P. 1:101(100) ack 1 win 9\n")
    assert r.verdict == "DIVERGENCE"
    assert r.message.startswith("t.pkt:11: error handling packet: live packet field tcp_window: expected: 9")
    assert "script packet:" in r.message and "actual packet:" in r.message


def test_timing_tolerance_is_max_of_fixed_and_percent(tmp_path):
    late = "   +0 write(4, ..., 100) = 100\n +.005 > P. 1:101(100) ack 1\n"
    assert run(tmp_path, late).verdict == "DIVERGENCE"           # 5 ms > 4 ms tolerance
    assert run(tmp_path, late, tolerance_usecs=6000).verdict == "MATCH"


def test_syscall_result_and_errno_checked(tmp_path):
    r = run(tmp_path, "   +0 read(4, ..., 10) = 0\n", name="r.pkt")
    assert r.verdict == "DIVERGENCE" and "runtime error in read call" in r.message
    r = run(tmp_path, "   +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n   +0 read(4, ..., 10) = -1 EAGAIN (x)\n")
    assert r.verdict == "MATCH", r.message


def test_blocking_read_returns_when_data_arrives(tmp_path):
    r = run(tmp_path, "   +0...0.110 read(4, ..., 1000) = 100\n +.1 < P. 1:101(100) ack 1 win 502\n"
                      "   +0 > . 1:1(0) ack 101\n")
    assert r.verdict == "MATCH", r.message


def test_code_blocks_see_tcp_info(tmp_path):
    ok = run(tmp_path, "   +0 %{ assert tcpi_snd_mss == 1000 and tcpi_state == 1, tcpi_snd_mss }%\n")
    assert ok.verdict == "MATCH", ok.message
    bad = run(tmp_path, "   +0 %{ assert tcpi_snd_cwnd == 3, tcpi_snd_cwnd }%\n")
    assert bad.verdict == "DIVERGENCE" and "error in Python code" in bad.message


def test_code_blocks_share_names_like_one_program(tmp_path):
    r = run(tmp_path, "   +0 %{ MSS = 1000 }%\n   +0 %{ assert tcpi_snd_mss == MSS and tcpi_state == TCP_ESTABLISHED }%\n")
    assert r.verdict == "MATCH", r.message


@pytest.mark.parametrize("body,feature", [
    ("   +0 setsockopt(4, SOL_SOCKET, SO_MARK, [1], 4) = 0\n", "setsockopt SO_MARK"),
    ("   +0 %{ assert tcpi_delivery_rate == 0 }%\n", "tcp_info field tcpi_delivery_rate"),
    ("`tc qdisc add dev tun0 root fq`\n", "command tc"),
    ("   +0 epoll_create(1) = 5\n", "syscall epoll_create"),
])
def test_unsupported_names_the_feature(tmp_path, body, feature):
    r = run(tmp_path, body)
    assert r.verdict == "UNSUPPORTED" and r.feature == feature


def test_sysctl_lines_set_profile_knobs(tmp_path):
    # tcp_timestamps=1 from the command line of the script: the SYN-ACK then carries TS
    p = tmp_path / "ts.pkt"
    p.write_text(HEAD.replace("tcp_timestamps=0", "tcp_timestamps=1").replace(
        "<mss 1000,sackOK,nop,nop,nop,wscale 7>", "<mss 1000,sackOK,TS val 1 ecr 0,nop,wscale 7>").replace(
        "<mss 1460,nop,nop,sackOK,nop,wscale 7>", "<mss 1460,sackOK,TS val 1 ecr 1,nop,wscale 7>").replace(
        "ack 1 win 502", "ack 1 win 502 <nop,nop,TS val 2 ecr 1>"))
    assert run_file(str(p), "linux-6.12").verdict == "MATCH"


def _args(**kw):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return argparse.Namespace(**{**vars(p.parse_args([])), **kw})


def test_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "g.pkt"
    good.write_text(HEAD)
    bad = tmp_path / "b.pkt"
    bad.write_text(HEAD + "   +0 read(4, ..., 10) = 5\n")
    assert cli.main(_args(scripts=[str(good)])) == 0
    assert cli.main(_args(scripts=[str(bad)])) == 1
    assert "b.pkt:10: runtime error in read call" in capsys.readouterr().err
    assert cli.main(_args(scripts=[str(good)], profile="linux-0.1")) == 2
    assert cli.main(_args(scripts=[str(good)], defines=["NOEQUALS"])) == 2
    assert cli.main(_args(scripts=[str(tmp_path / "missing.pkt")])) == 2
    assert cli.main(_args(suite=str(tmp_path / "nofolder"))) == 2


def test_scoreboard_counts_and_kernel_drift(tmp_path):
    suite = tmp_path / "suite" / "f"
    suite.mkdir(parents=True)
    (suite / "ok.pkt").write_text(HEAD)
    (suite / "bad.pkt").write_text(HEAD + "   +0 read(4, ..., 10) = 5\n")
    (suite / "drift.pkt").write_text(HEAD + "   +0 read(4, ..., 10) = 5\n")
    base = tmp_path / "base.csv"
    base.write_text("script,host_kernel_6.18,first_error\nf/ok.pkt,pass,\nf/bad.pkt,pass,\nf/drift.pkt,fail,x\n")
    rows = score.score(str(tmp_path / "suite"), "linux-6.12", score.read_baseline(str(base)))
    assert {r["script"]: r["verdict"] for r in rows} == {
        "f/ok.pkt": "MATCH", "f/bad.pkt": "DIVERGENCE", "f/drift.pkt": "KERNEL_DRIFT"}
    assert score.target(rows) == (1, 2)
    csv_path, md_path = score.write(rows, str(tmp_path / "out"), "linux-6.12", "suite")
    assert os.path.exists(csv_path) and "1 / 2 MATCH" in open(md_path).read()
