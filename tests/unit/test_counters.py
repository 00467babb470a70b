"""nstat-style counter text: -a shows absolute values, -z adds the zeros."""
from tuntcp.obs.counters import Counters


def test_nstat_without_zeros_keeps_known_and_unknown_nonzero():
    c = Counters()
    c.inc("TcpExtListenOverflows", 3)
    c.inc("TuntcpTunTxDrops")
    text = c.nstat(zeros=False)
    assert "TcpExtListenOverflows" in text and "TuntcpTunTxDrops" in text
    assert "TcpExtSyncookiesSent" not in text


def test_nstat_with_zeros_lists_known_names():
    text = Counters().nstat(zeros=True)
    assert "TcpExtSyncookiesSent" in text and text.startswith("#kernel\n")


def test_delta_reports_only_changes():
    c = Counters()
    c.inc("TcpInSegs", 5)
    before = c.snapshot()
    c.inc("TcpInSegs", 2)
    c.inc("TcpOutSegs")
    assert c.delta(before) == {"TcpInSegs": 2, "TcpOutSegs": 1}
    assert c["NeverTouched"] == 0
