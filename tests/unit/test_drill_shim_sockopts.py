"""The drill shim's socket options and calls beyond the basics: TCP_INQ / TCP_CM_INQ, files for
sendfile, SO_ZEROCOPY, TCP_USER_TIMEOUT, TCP_NOTSENT_LOWAT, IP_TOS / IP_MTU_DISCOVER, and the
tcp_info chronograph (each against the real model, in virtual time)."""
import pytest

from test_drill_runner import HEAD       # listen, handshake (MSS 1000, wscale 7), accept fd 4
from tuntcp.drill.result import run_file


def run(tmp_path, body, profile="linux-6.18", head=HEAD):
    p = tmp_path / "t.pkt"
    p.write_text(head + body)
    return run_file(str(p), profile)


def _recvmsg(n, inq):
    return (f"   +0 recvmsg(4, {{msg_name(...)=..., msg_iov(1)=[{{..., {n}}}], msg_flags=0, "
            f"msg_control=[{{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data={inq}}}]}}, 0) = {n}\n")


def test_inq_cmsg_counts_unread_bytes_and_the_fin(tmp_path):
    body = ("   +0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n"
            "   +0 < P. 1:3001(3000) ack 1 win 502\n"
            + _recvmsg(1000, 2000) +
            "   +0 < F. 3001:3001(0) ack 1 win 502\n"
            + _recvmsg(1000, 1001) + _recvmsg(1000, 1) +
            "   +0 read(4, ..., 100) = 0\n")
    r = run(tmp_path, body)
    assert r.verdict == "MATCH", r.message


def test_inq_cmsg_value_is_checked(tmp_path):
    body = ("   +0 setsockopt(4, SOL_TCP, TCP_INQ, [1], 4) = 0\n"
            "   +0 < P. 1:3001(3000) ack 1 win 502\n" + _recvmsg(1000, 1999))
    r = run(tmp_path, body)
    assert r.verdict == "DIVERGENCE" and "2000" in r.message


def test_no_inq_cmsg_without_the_option(tmp_path):
    r = run(tmp_path, "   +0 < P. 1:3001(3000) ack 1 win 502\n" + _recvmsg(1000, 2000))
    assert r.verdict == "DIVERGENCE"


def test_sendfile_sends_the_file_that_dd_made(tmp_path):
    head = "`/bin/rm -f /tmp/f\n/bin/dd bs=1 count=7 if=/dev/zero of=/tmp/f status=none`\n" + HEAD
    body = ("   +0 open(\"/tmp/f\", O_RDONLY) = 5\n"
            "   +0 sendfile(4, 5, [0], 100) = 7\n"
            "   +0 > P. 1:8(7) ack 1\n"
            "   +0 open(\"/tmp/g\", O_RDONLY) = -1 ENOENT (No such file or directory)\n"
            "   +0 close(5) = 0\n")
    r = run(tmp_path, body, head=head)
    assert r.verdict == "MATCH", r.message


@pytest.mark.parametrize("cmd", ["/bin/dd if=/dev/zero of=/tmp/f", "/bin/rm -rf /tmp",
                                 "/bin/dd if=/etc/passwd of=/tmp/f count=1"])
def test_other_file_commands_are_unsupported(tmp_path, cmd):
    r = run(tmp_path, "", head=f"`{cmd}`\n" + HEAD)
    assert r.verdict == "UNSUPPORTED" and r.feature.startswith("command")


def test_zerocopy_send_and_its_frag_limit(tmp_path):
    ok = ("   +0 setsockopt(4, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n"
          "   +0 sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {..., 50}], msg_flags=0}, "
          "MSG_ZEROCOPY) = 60\n"
          "   +0 > P. 1:61(60) ack 1\n")
    assert run(tmp_path, ok).verdict == "MATCH"
    many = ", ".join(["{..., 1}"] * 18)
    r = run(tmp_path, "   +0 setsockopt(4, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n"
            f"   +0 sendmsg(4, {{msg_name(...)=..., msg_iov(18)=[{many}], msg_flags=0}}, MSG_ZEROCOPY) = 18\n")
    assert r.verdict == "UNSUPPORTED" and "MAX_SKB_FRAGS" in r.feature


@pytest.mark.parametrize("profile,val,res", [
    ("linux-6.18", 3000, "0"), ("linux-6.18", -1, "-1 EINVAL (Invalid argument)"),
    ("freebsd-14", 3000, "-1 ENOPROTOOPT (Protocol not available)"),
])
def test_user_timeout_setsockopt(tmp_path, profile, val, res):
    head = HEAD.replace("ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>", "ack 1 <...>")
    r = run(tmp_path, f"   +0 setsockopt(4, SOL_TCP, TCP_USER_TIMEOUT, [{val}], 4) = {res}\n",
            profile=profile, head=head)
    assert r.verdict == "MATCH", r.message


def test_notsent_lowat_option_and_profiles(tmp_path):
    body = ("   +0 getsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [0], [4]) = 0\n"
            "   +0 setsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [4000], 4) = 0\n"
            "   +0 getsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [4000], [4]) = 0\n")
    assert run(tmp_path, body).verdict == "MATCH"
    r = run(tmp_path, "   +0 setsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [4000], 4) = "
            "-1 ENOPROTOOPT (Protocol not available)\n", profile="linux-3.10")
    assert r.verdict == "MATCH", r.message


def test_notsent_lowat_limits_a_write_and_pollout(tmp_path):
    """tcp_sendmsg_locked refills the send-head skb to size_goal (32000: half the peer's window)
    while tcp_push_one sends it, then a new skb needs unsent bytes below the mark: 10000 sent +
    32000 queued. POLLOUT waits until unsent bytes are below half the mark (wake=1)."""
    head = HEAD.replace('tcp_rmem="4096 131072 6291456"',
                        'tcp_rmem="4096 131072 6291456" net.ipv4.tcp_wmem="4096 262144 4194304"')
    body = ("   +0 setsockopt(4, SOL_TCP, TCP_NOTSENT_LOWAT, [3000], 4) = 0\n"
            "   +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
            "   +0 write(4, ..., 60000) = 42000\n"
            "   +0 > P. 1:10001(10000) ack 1\n"
            "   +0 poll([{fd=4, events=POLLOUT, revents=0}], 1, 0) = 0\n"
            "+.01 < . 1:1(0) ack 10001 win 502\n"
            "   +0 > P. 10001:30001(20000) ack 1\n"
            "   +0 poll([{fd=4, events=POLLOUT, revents=0}], 1, 0) = 0\n"
            "+.01 < . 1:1(0) ack 30001 win 502\n"
            "   +0 > P. 30001:42001(12000) ack 1\n"
            "   +0 poll([{fd=4, events=POLLOUT, revents=POLLOUT}], 1, 0) = 1\n")
    r = run(tmp_path, body, head=head)
    assert r.verdict == "MATCH", r.message


def test_ip_tos_on_segments_and_mtu_discover(tmp_path):
    body = ("   +0 getsockopt(4, SOL_IP, IP_MTU_DISCOVER, [1], [4]) = 0\n"
            "   +0 setsockopt(4, SOL_IP, IP_MTU_DISCOVER, [IP_PMTUDISC_DONT], 4) = 0\n"
            "   +0 setsockopt(4, SOL_IP, IP_MTU_DISCOVER, [9], 4) = -1 EINVAL (Invalid argument)\n"
            "   +0 setsockopt(4, SOL_IP, IP_TOS, [0x2b], 4) = 0\n"
            "   +0 getsockopt(4, SOL_IP, IP_TOS, [0x28], [4]) = 0\n")
    r = run(tmp_path, body)
    assert r.verdict == "MATCH", r.message


def test_ip_tos_reaches_the_connections_segments():
    from tuntcp.drill.parser import parse
    from tuntcp.drill.runner import Runner
    text = HEAD + "   +0 setsockopt(4, SOL_IP, IP_TOS, [0x10], 4) = 0\n   +0 write(4, ..., 10) = 10\n"
    r = Runner(parse(text, "t.pkt"), "linux-6.18")
    r.run()
    assert [seg.tos for _, seg in r.pending if seg.payload] == [0x10]


def test_rwnd_limited_chronograph(tmp_path):
    """tcp_chrono: rwnd-limited from the write that the closed window stops until the window
    opens (tcp_write_xmit), busy until everything is acked (tcp_clean_rtx_queue)."""
    head = HEAD.replace(" +.01 < . 1:1(0) ack 1 win 502", " +.01 < . 1:1(0) ack 1 win 0")
    body = ("   +0 %{ assert tcpi_busy_time == 0 and tcpi_rwnd_limited == 0 }%\n"
            "   +0 write(4, ..., 1000) = 1000\n"
            " +.1 < . 1:1(0) ack 1 win 502\n"
            "   +0 > P. 1:1001(1000) ack 1\n"
            " +.05 < . 1:1(0) ack 1001 win 502\n"
            " +.1 %{ assert tcpi_rwnd_limited == 100000, tcpi_rwnd_limited }%\n"
            "   +0 %{ assert tcpi_busy_time == 152000, tcpi_busy_time }%\n")
    r = run(tmp_path, body, head=head)
    assert r.verdict == "MATCH", r.message
