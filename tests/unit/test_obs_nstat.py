"""`tuntcp nstat`: nstat.c's order, format, globs, JSON and history."""
import json

from tuntcp import mib
from tuntcp.mib import Counters
from tuntcp.obs.nstat import NAMES, NstatHistory, dump


def test_kernel_order_ip_then_tcp_then_tcpext_and_no_currestab():
    # nstat loads netstat, snmp6, snmp, each in front: snmp's Ip, Tcp come before TcpExt, IpExt
    groups = [n for n in NAMES if n.startswith(("Ip", "Tcp"))]
    first = {g: min(i for i, n in enumerate(groups) if n.startswith(g) and not n.startswith(g + "Ext"))
             for g in ("Ip", "Tcp")}
    assert first["Ip"] < first["Tcp"] < groups.index(mib.TcpExtSyncookiesSent) < groups.index(
        mib.IpExtInTruncatedPkts)
    assert mib.TcpCurrEstab not in NAMES     # one of nstat's useless_numbers


def test_text_format_globs_and_zeros():
    c = {mib.TcpExtListenOverflows: 12, mib.TcpExtListenDrops: 12, mib.TcpInSegs: 3}
    text = dump(c, {"patterns": ["TcpExtListen*"]})
    assert text == ("#kernel\n"
                    "TcpExtListenOverflows           12                 0.0\n"
                    "TcpExtListenDrops               12                 0.0\n")
    assert dump({}, {"patterns": ["tcpextlisten*"], "zeros": True}) == "#kernel\n"   # case matters
    assert dump({}, {"patterns": ["TcpExtListen*"], "zeros": True}).count("\n") == 3


def test_json_and_pretty():
    c = {mib.TcpExtSyncookiesSent: 4}
    assert dump(c, {"json": True}) == '{"kernel":{"TcpExtSyncookiesSent":4}}\n'
    assert dump({}, {"json": True, "patterns": ["X*"]}) == '{"kernel":{}}\n'
    assert dump(c, {"json": True, "pretty": True}).splitlines() == [
        "{", '    "kernel": {', '        "TcpExtSyncookiesSent": 4', "    }", "}"]
    assert json.loads(dump(c, {"json": True, "zeros": True}))["kernel"][mib.TcpInSegs] == 0


def test_history_increments_noupdate_reset_and_patterns():
    c, h = Counters(), NstatHistory()
    c[mib.TcpInSegs] += 5
    c[mib.TcpOutSegs] += 2
    assert "TcpInSegs                       5" in h.answer(c, {})          # no history: absolute
    c[mib.TcpInSegs] += 1
    assert h.answer(c, {"noupdate": True}).splitlines()[1].split()[:2] == ["TcpInSegs", "1"]
    assert h.answer(c, {"absolute": True}).splitlines()[1].split()[:2] == ["TcpInSegs", "6"]
    assert h.answer(c, {}) == "#kernel\n"                                  # nothing new
    c[mib.TcpInSegs] += 1
    c[mib.TcpOutSegs] += 1
    # a pattern updates only the names it matches; the others keep their history
    assert h.answer(c, {"patterns": ["TcpIn*"]}).split()[1:3] == ["TcpInSegs", "1"]
    assert h.answer(c, {}).split()[1:3] == ["TcpOutSegs", "1"]
    assert h.answer(c, {"reset": True}).split()[1:3] == ["TcpInSegs", "7"]
    assert h.answer(c, {"nooutput": True}) == ""
