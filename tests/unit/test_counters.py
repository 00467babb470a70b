"""MIB counters: one declared list (tuntcp/mib.py), one way to increment, nstat-style text."""
import ast
import pathlib

import tuntcp
from tuntcp import mib
from tuntcp.mib import Counters
from tuntcp.obs.views import nstat_text

SRC = pathlib.Path(tuntcp.__file__).parent
PREFIXES = ("Ip", "Tcp", "FreeBSD", "Tuntcp", "Icmp", "Udp")


def _modules():
    for p in sorted(SRC.rglob("*.py")):
        if p.name != "mib.py":
            yield p, ast.parse(p.read_text())


def test_nstat_without_zeros_lists_only_nonzero():
    c = Counters()
    c[mib.TcpExtListenOverflows] += 3
    c[mib.TuntcpTunTxDrops] += 1
    text = nstat_text(c, zeros=False)
    assert "TcpExtListenOverflows" in text and "TuntcpTunTxDrops" in text
    assert "TcpExtSyncookiesSent" not in text


def test_nstat_with_zeros_lists_every_declared_name():
    text = nstat_text(Counters(), zeros=True)
    assert text.startswith("#kernel\n")
    from tuntcp.obs.nstat import USELESS      # nstat never prints TcpCurrEstab
    assert all(n in text for n in mib.ALL if n not in USELESS)


def test_delta_reports_only_changes():
    c = Counters()
    c[mib.TcpInSegs] += 5
    before = c.snapshot()
    c[mib.TcpInSegs] += 2
    c[mib.TcpOutSegs] += 1
    assert c.delta(before) == {"TcpInSegs": 2, "TcpOutSegs": 1}
    assert c["NeverTouched"] == 0


def test_every_name_is_declared_once_and_spelled_as_its_value():
    assert len(set(mib.ALL)) == len(mib.ALL)
    for n in mib.ALL:
        assert getattr(mib, n) == n


def test_no_counter_name_is_spelled_outside_mib():
    """A counter name written as a string elsewhere would bypass the declared list."""
    found = []
    for p, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in mib.ALL:
                found.append(f"{p.relative_to(SRC)}:{node.lineno} {node.value}")
    # docstrings may mention names; only expression statements are docstrings
    docs = set()
    for p, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                docs.add(f"{p.relative_to(SRC)}:{node.value.lineno} {node.value.value}")
    assert [f for f in found if f not in docs] == []


def test_every_increment_uses_a_declared_name():
    """``counters[X] += n``: X is ``mib.Name``, or a local bound from mib names (checked by value)."""
    bad = []
    for p, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "mib" and node.attr not in dir(mib):
                bad.append(f"{p.relative_to(SRC)}:{node.lineno} mib.{node.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "inc":
                bad.append(f"{p.relative_to(SRC)}:{node.lineno} .inc() (use counters[mib.X] += n)")
    assert bad == []


def test_every_declared_name_is_reachable_or_kernel_only():
    used = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "mib":
                used.add(node.attr)
    unreachable = [n for n in mib.ALL if n not in used and n not in mib.KERNEL_ONLY]
    assert unreachable == []
    assert not (mib.KERNEL_ONLY & used)
