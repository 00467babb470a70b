"""`tuntcp ss` on a real Stack: iproute2's state defaults, filters, columns and extras."""
import argparse

import pytest

from drillrun import Drive
from tuntcp.obs import commands, ssfilter as F
from tuntcp.obs.ss import render, ms_timer, ss_text, COLUMNS

L, R = "192.0.2.1", "192.0.2.2"
PROC = ("tuntcp", 4242, 7)
SYN = "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1460>\n"


def _stack():
    """Listener 8080 (backlog 4): 40000 in SYN-RECV, 40001 ESTAB in the accept queue, 40002
    accepted with 5 unread bytes, 40003 accepted then closed by us first (TIME-WAIT)."""
    d = Drive("linux-6.1", local_ip=L, remote_ip=R).run("""0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 4) = 0
""")
    d.port(40000).run(SYN)
    d.port(40002).run(SYN + "+.01 < P. 1:6(5) ack 1 win 513\n+0 > . 1:1(0) ack 6\n+0 accept(3, ..., ...) = 4\n")
    d.port(40003).run(SYN + """+.01 < . 1:1(0) ack 1 win 513
+0 accept(3, ..., ...) = 5
+0 close(5) = 0
+0 > F. 1:1(0) ack 1
+.01 < F. 1:1(0) ack 2 win 513
+0 > . 2:2(0) ack 2
""")
    d.port(40001).run(SYN + "+0 < . 1:1(0) ack 1 win 513\n")
    d.run("+.01 write(4, ..., 100) = 100\n+0 > P. 1:101(100) ack 6\n")
    return d.stack


def _q(argv: str) -> dict:
    p = argparse.ArgumentParser()
    commands.add_ss_arguments(p)
    return commands.ss_query(p.parse_args(argv.split()))


def _rows(text):
    return [ln.split() for ln in text.splitlines()[1:] if not ln.startswith("\t")]


@pytest.fixture(scope="module")
def st():
    return _stack()


def test_default_hides_listen_time_wait_and_syn_recv(st):
    # ss without -a/-l/state: SS_CONN (misc/ss.c default_dbs[TCP_DB].states)
    rows = _rows(ss_text(st, _q("-tn"), proc=PROC))
    assert [r[0] for r in rows] == ["ESTAB", "ESTAB"]
    assert {r[4] for r in rows} == {f"{R}:40001", f"{R}:40002"}


def test_all_shows_every_state_listeners_first(st):
    rows = _rows(ss_text(st, _q("-tan"), proc=PROC))
    assert [r[0] for r in rows] == ["LISTEN", "SYN-RECV", "ESTAB", "ESTAB", "TIME-WAIT"]
    assert rows[0][1:3] == ["1", "4"]          # accept queue 1 (40001), backlog 4
    assert rows[3][1] == "5"                     # 40002: five unread bytes


def test_state_filter_and_port_expressions(st):
    text = ss_text(st, _q("-tn state syn-recv sport = :8080"), proc=PROC)
    assert text.splitlines()[0].startswith("Recv-Q Send-Q")     # one state: no State column
    assert _rows(text) == [["0", "0", f"{L}:8080", f"{R}:40000"]]
    assert _rows(ss_text(st, _q("-tn state syn-recv sport = :9092"), proc=PROC)) == []
    both = _rows(ss_text(st, _q("-tn state bucket ( dport = :40000 or dport :40003 )"), proc=PROC))
    assert [r[4] for r in both] == [f"{R}:40000", f"{R}:40003"]
    assert [r[0] for r in _rows(ss_text(st, _q("-tan exclude listening dport > :40001"), proc=PROC))] \
        == ["ESTAB", "TIME-WAIT"]
    assert _rows(ss_text(st, _q("-tan src 192.0.2.0/24:8080 and ! dst 192.0.2.2"), proc=PROC)) == []


def test_netid_column_without_t_and_listening_only(st):
    text = ss_text(st, _q("-ln"), proc=PROC)
    assert text.splitlines()[0].startswith("Netid State  Recv-Q")
    assert _rows(text) == [["tcp", "LISTEN", "1", "4", "0.0.0.0:8080", "0.0.0.0:*"]]


def test_processes_only_for_sockets_with_a_descriptor(st):
    text = ss_text(st, _q("-tanp"), proc=PROC)
    users = {r[4]: r[5:] for r in _rows(text)}
    assert users["0.0.0.0:*"] == ['users:(("tuntcp",pid=4242,fd=7))']
    assert users[f"{R}:40002"] == ['users:(("tuntcp",pid=4242,fd=7))']
    # in the accept queue, in TIME-WAIT, or a request sock: no file, no process
    assert users[f"{R}:40001"] == users[f"{R}:40003"] == users[f"{R}:40000"] == []


def test_timers_details_memory_and_info(st):
    text = ss_text(st, _q("-tnoa state time-wait"), proc=PROC)
    assert _rows(text)[0][-1] == "timer:(timewait,59sec,0)"   # 59.99 s left: ss truncates
    text = ss_text(st, _q("-tnoa state syn-recv"), proc=PROC)
    assert _rows(text)[0][-1] == "timer:(on,960ms,0)"    # resend 1 s after the SYN at 0; now 0.04
    # 40002 has 100 bytes in flight: its retransmit timer shows as "on"
    c = next(c for c in st.conns.values() if c.key[3] == 40002)
    assert c.rtx_kind in ("rtx", "tlp") and c.rtx_at > st.now
    assert _rows(ss_text(st, _q("-tno dport = :40002"), proc=PROC))[0][-1] == \
        f"timer:(on,{ms_timer((c.rtx_at - st.now) * 1000)},0)"
    text = ss_text(st, _q("-tnem dport = :40002"), proc=PROC)
    lines = text.splitlines()
    assert lines[1].split()[-3:-1] == ["ino:0", lines[1].split()[-2]] and lines[1].split()[-1] == "<->"
    assert lines[2].startswith("\t skmem:(r5,rb")
    text = ss_text(st, _q("-tni dport = :40002"), proc=PROC)
    assert text.splitlines()[2].startswith("\t cubic ") and " ts " not in text
    assert ss_text(st, _q("-ltni"), proc=PROC).splitlines()[2] == "\t cubic cwnd:10 unacked:1"


def test_summary_counts(st):
    lines = ss_text(st, _q("-s"), proc=PROC).splitlines()
    assert lines[0] == "Total: 3"         # listener + two connections (TIME-WAIT is no socket)
    assert lines[1] == "TCP:   3 (estab 2, closed 1, orphaned 0, timewait 1)"
    assert lines[6] == "TCP\t  3         3         0        "


def test_render_skips_the_last_rows_process_field():
    en = list(range(2, 10))
    hdr = [COLUMNS[c][1] for c in en]
    row = ["0     ", "5     ", "0.0.0.0:", "80", "0.0.0.0:", "*", " users:((x))", ""]
    # one row: its Process text is never measured, the header stays unpadded
    assert render([hdr, row], en).splitlines()[0].endswith("PortProcess")
    # two rows: the first row's is, so the header pads to it
    two = render([hdr, row, row], en).splitlines()
    assert two[0].endswith("PortProcess     ") and two[2].endswith("users:((x))")


def test_ms_timer_prints_like_ss():
    assert [ms_timer(x) for x in (500, 1500, 59_000, 61_000, 12_345)] == [
        "500ms", "1.500ms", "59sec", "1min1sec", "12sec"]


@pytest.mark.parametrize("words,msg", [
    (["state", "bogus"], "wrong state name"), (["sport", "=", ":http-alt-x"], "does not look like a port"),
    (["(", "sport", "=", ":1"], r"missing '\)'"), (["frobnicate"], "unexpected"),
    (["src", "300.1.1.1"], "inet prefix")])
def test_bad_filters_are_one_line_errors(words, msg):
    with pytest.raises(F.FilterError, match=msg):
        mask, rest = F.parse_states(words)
        F.parse_filter(rest)


def test_cli_combined_flags_and_bad_filter(capsys):
    from tuntcp.cli import build_parser, main
    a = build_parser().parse_args(["ss", "-ltnp"])
    assert a.listening and a.tcp and a.numeric and a.processes
    a = build_parser().parse_args(["ss", "-tni", "state", "syn-recv", "sport", "=", ":9092"])
    assert a.info and a.filter == ["state", "syn-recv", "sport", "=", ":9092"]
    assert main(["ss", "-tn", "state", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong state name: nosuch" in err
