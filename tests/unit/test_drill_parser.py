"""tuntcp.drill parser: the grammar of packetdrill's syntax.md on small scripts written here."""
import pytest

from tuntcp.drill.model import ELLIPSIS, ScriptSyntaxError
from tuntcp.drill.parser import parse


def one(text, **kw):
    s = parse(text, **kw)
    assert len(s.events) == 1
    return s.events[0]


@pytest.mark.parametrize("text,kind,usecs,end", [
    ("0 close(3) = 0", "abs", 0, 0),
    ("+.1 close(3) = 0", "rel", 100000, 0),
    ("1.5 close(3) = 0", "abs", 1500000, 0),
    ("* > . 1:1(0) ack 1", "any", 0, 0),
    ("0.1~0.2 > . 1:1(0) ack 1", "abs_range", 100000, 200000),
    ("+.1~+.15 > . 1:1(0) ack 1", "rel_range", 100000, 150000),
])
def test_times(text, kind, usecs, end):
    t = one(text).time
    assert (t.kind, t.usecs, t.end) == (kind, usecs, end)


def test_packet_with_flags_numbers_and_options_in_order():
    p = one("+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 100 ecr 7,nop,wscale 8>").packet
    assert (p.direction, p.flags, p.start, p.end, p.length, p.ack, p.win) == (">", "S.", 0, 0, 0, 1, 65535)
    assert [(o.name, o.value) for o in p.options] == [
        ("mss", 1460), ("sackOK", None), ("TS", (100, 7)), ("nop", None), ("wscale", 8)]


def test_packet_sack_blocks_ellipsis_options_and_ecn_mark():
    p = one("+0 < [ect0] . 1:1(0) ack 1 win 257 <sack 1001:2001 3001:4001,nop,nop>").packet
    assert p.ip_info == "ect0"
    assert p.options[0].value == ((1001, 2001), (3001, 4001))
    assert one("+0 > P. 1:11(10) ack 1 <...>").packet.options_any


def test_syscall_arguments_results_errno_and_end_time():
    e = one("+0...0.200 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)")
    sc = e.syscall
    assert sc.name == "accept" and sc.args == [3, ELLIPSIS, ELLIPSIS]
    assert (sc.ret, sc.errno, sc.end.usecs) == (-1, "EAGAIN", 200000)
    sc = one("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0").syscall
    assert sc.args[3] == ("{}", [("=", "onoff", 1), ("=", "linger", 0)])
    sc = one("+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0").syscall
    assert sc.args[2] == ("|", "O_RDWR", "O_NONBLOCK")


def test_multiline_syscall_commands_code_and_comments():
    s = parse("""// a comment
`sysctl -q net.ipv4.tcp_timestamps=0
sysctl -q net.ipv4.tcp_sack=0`
/* block
   comment */
   0 sendmsg(4, {msg_name(...)=...,
                 msg_iov(2)=[{..., 10}, {..., 20}], msg_flags=0}, 0) = 30
  +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%
""")
    kinds = [e.kind for e in s.events]
    assert kinds == ["command", "syscall", "code"]
    assert "tcp_sack=0" in s.events[0].text
    assert s.events[1].line == 6 and s.events[1].syscall.ret == 30
    assert "tcpi_snd_cwnd" in s.events[2].text


def test_defines_replace_words_with_values():
    p = one("+0 > . 1:1(0) ack 1 win WIN", defines={"WIN": "528"}).packet
    assert p.win == 528


def test_script_options_at_the_top():
    s = parse("--tolerance_usecs=10000\n--strict_segments\n0 close(3) = 0\n")
    assert s.options == {"tolerance_usecs": "10000", "strict_segments": ""}


@pytest.mark.parametrize("text,line", [
    ("0 close(3) = 0\n+0 > S. 0:0(0 ack 1\n", 2),
    ("0 close(3) = 0\n\n+0 > S. 0:0(0) ack 1 <mss>\n", 3),
    ("close(3) = 0\n", 1),
    ("0 > . 1:1(0) ack WIN\n", 1),
])
def test_syntax_errors_name_the_line(text, line):
    with pytest.raises(ScriptSyntaxError) as e:
        parse(text)
    assert e.value.line == line
