"""Parsing /proc/net/{snmp,netstat} into nstat names."""
from tuntcp.harness.kstat import delta, parse_proc_tables

SAMPLE = """TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops
TcpExt: 3 2 1 7 9
Tcp: RtoAlgorithm RtoMin ActiveOpens PassiveOpens
Tcp: 1 200 5 4
"""


def test_names_are_prefixed_like_nstat():
    c = parse_proc_tables(SAMPLE)
    assert c["TcpExtSyncookiesSent"] == 3
    assert c["TcpExtListenDrops"] == 9
    assert c["TcpPassiveOpens"] == 4


def test_delta_only_named():
    before = parse_proc_tables(SAMPLE)
    after = dict(before, TcpExtListenOverflows=10)
    assert delta(after, before, ["TcpExtListenOverflows", "TcpPassiveOpens"]) == {
        "TcpExtListenOverflows": 3, "TcpPassiveOpens": 0}
