"""The State enum and its transition table (tuntcp.core.state): every transition the
connection code takes is in the table (Connection._set_state checks it), every table entry is
taken by one of the drives below, and the table/--dot renderings show every entry."""
import argparse

import pytest

from test_conn_close import seg, to_state
from test_conn_handshake import crossed_syns
from test_conn_handshake import test_listener_and_connect_between_two_stacks as _listen_connect
from test_conn_handshake import test_rst_to_syn_is_connection_refused as _refused
from tuntcp.core import state
from tuntcp.core.state import State, TRANSITIONS
from tuntcp.scenarios import states as states_cli
from tuntcp.wire.segment import ACK, RST


def _simultaneous_open():
    a, b, ca, cb = crossed_syns()
    sa, sb = a.take_output(), b.take_output()
    for s in sa:
        b.receive_segment(s, 0.02)
    for s in sb:
        a.receive_segment(s, 0.02)
    assert ca.state == cb.state == "ESTABLISHED"


def _syn_recv_shutdown_and_abort():
    a, b, ca, cb = crossed_syns()
    ca.shutdown_write(0.02)
    assert ca.state == "FIN-WAIT-1"
    cb.abort(0.02)
    assert cb.state == "CLOSED"


def _close_sequences():
    st, c = to_state("TIME-WAIT")
    st.receive_segment(seg(RST, 2), 0.2)
    assert c.state == "CLOSED"
    st, c = to_state("CLOSING")
    st.receive_segment(seg(ACK, 2, 2), 0.2)
    assert c.state == "TIME-WAIT"
    st, c = to_state("LAST-ACK")
    st.receive_segment(seg(ACK, 2, 2), 0.2)
    assert c.state == "CLOSED"
    for name in ("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "CLOSE-WAIT", "LAST-ACK"):
        st, c = to_state(name)
        c.abort(0.2)
        assert c.state == "CLOSED"


DRIVES = [_simultaneous_open, _syn_recv_shutdown_and_abort, _close_sequences,
          _listen_connect, _refused]


def test_every_transition_taken_is_in_the_table_and_every_entry_is_taken(monkeypatch):
    seen = set()
    real = state.check

    def record(old, new):
        seen.add((old, new))
        real(old, new)
    monkeypatch.setattr(state, "check", record)
    for drive in DRIVES:
        drive()
    assert seen <= set(TRANSITIONS)
    assert set(TRANSITIONS) - seen == set(), "table entries no drive takes"


def test_illegal_transition_raises():
    st, c = to_state("ESTABLISHED")
    with pytest.raises(state.IllegalTransition):
        c._set_state(State.TIME_WAIT)
    assert isinstance(state.IllegalTransition("x"), AssertionError)


def test_string_values_unchanged():
    assert [s.value for s in State] == ["CLOSED", "SYN-SENT", "SYN-RECV", "ESTABLISHED",
                                        "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT",
                                        "CLOSE-WAIT", "LAST-ACK"]
    assert State.SYN_SENT == "SYN-SENT" and "SYN-SENT" in {State.SYN_SENT}
    assert f"{State.TIME_WAIT}" == "TIME-WAIT"


def test_renderings_show_every_transition(capsys):
    dot = state.dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for a, b in TRANSITIONS:
        assert f'"{a}" -> "{b}"' in dot
    table = state.table().splitlines()
    assert len(table) == len(TRANSITIONS)
    for line, (a, b) in zip(table, TRANSITIONS):
        assert line.split()[:3] == [a, "->", b]
    ap = argparse.ArgumentParser()
    states_cli.add_arguments(ap)
    assert states_cli.main(ap.parse_args(["--dot"])) == 0
    assert capsys.readouterr().out.strip() == dot
    assert states_cli.main(ap.parse_args([])) == 0
    assert capsys.readouterr().out.strip() == state.table()
