"""TCP connection states as data: the ``State`` enum and the transitions a Connection may take.

``State`` is a ``StrEnum``: each member equals (and hashes like) its RFC 9293 name, so
``conn.state == "ESTABLISHED"`` and ``"SYN-SENT" in {...}`` keep working outside the core.
``TRANSITIONS`` maps (old, new) to the event that causes it, after RFC 9293 3.3.2 (figure 5)
with Linux's ``tcp_set_state`` callers named. ``Connection._set_state`` calls :func:`check`,
so a transition missing here raises :class:`IllegalTransition` (an AssertionError).

Differences from the RFC diagram, all Linux's: a passive child is created ESTABLISHED (its
SYN-RECV half lives in the listener's request sock, ``tcp_create_openreq_child`` then
``tcp_rcv_state_process``), there is no LISTEN connection; FIN-WAIT-1 never goes straight to
TIME-WAIT (the ACK of our FIN moves it to FIN-WAIT-2 before ``tcp_fin`` sees the peer's FIN);
any synchronized state goes to CLOSED on a RST, an abort or a timeout (``tcp_done``).
"""
from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN-SENT"
    SYN_RECV = "SYN-RECV"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSING = "CLOSING"
    TIME_WAIT = "TIME-WAIT"
    CLOSE_WAIT = "CLOSE-WAIT"
    LAST_ACK = "LAST-ACK"


S = State
_DONE = "RST, abort or timeout (tcp_reset / tcp_done)"

TRANSITIONS: dict[tuple[State, State], str] = {
    (S.CLOSED, S.SYN_SENT): "connect() sends SYN (tcp_v4_connect)",
    (S.CLOSED, S.ESTABLISHED): "passive child of a finished handshake (tcp_create_openreq_child)",
    (S.SYN_SENT, S.ESTABLISHED): "SYN-ACK received, ACK sent (tcp_rcv_synsent_state_process)",
    (S.SYN_SENT, S.SYN_RECV): "SYN received: simultaneous open, SYN-ACK sent "
                              "(tcp_rcv_synsent_state_process)",
    (S.SYN_SENT, S.CLOSED): "RST, close() or SYN timeout (tcp_reset / tcp_done)",
    (S.SYN_RECV, S.ESTABLISHED): "ACK of our SYN (tcp_rcv_state_process)",
    (S.SYN_RECV, S.FIN_WAIT_1): "shutdown(): FIN sent (tcp_close_state)",
    (S.SYN_RECV, S.CLOSED): _DONE,
    (S.ESTABLISHED, S.FIN_WAIT_1): "close()/shutdown(): FIN sent (tcp_close_state)",
    (S.ESTABLISHED, S.CLOSE_WAIT): "FIN received (tcp_fin)",
    (S.ESTABLISHED, S.CLOSED): _DONE,
    (S.FIN_WAIT_1, S.FIN_WAIT_2): "ACK of our FIN (tcp_rcv_state_process)",
    (S.FIN_WAIT_1, S.CLOSING): "FIN received: simultaneous close (tcp_fin)",
    (S.FIN_WAIT_1, S.CLOSED): _DONE,
    (S.FIN_WAIT_2, S.TIME_WAIT): "FIN received (tcp_fin -> tcp_time_wait)",
    (S.FIN_WAIT_2, S.CLOSED): "orphan tcp_fin_timeout, TIME-WAIT bucket overflow, " + _DONE,
    (S.CLOSING, S.TIME_WAIT): "ACK of our FIN (tcp_rcv_state_process -> tcp_time_wait)",
    (S.CLOSING, S.CLOSED): "TIME-WAIT bucket overflow, " + _DONE,
    (S.CLOSE_WAIT, S.LAST_ACK): "close()/shutdown(): FIN sent (tcp_close_state)",
    (S.CLOSE_WAIT, S.CLOSED): _DONE,
    (S.LAST_ACK, S.CLOSED): "ACK of our FIN (tcp_rcv_state_process -> tcp_done), " + _DONE,
    (S.TIME_WAIT, S.CLOSED): "2MSL timer, RST, or a new SYN reusing the pair "
                             "(tcp_timewait_state_process)",
}


class IllegalTransition(AssertionError):
    """A state change that TRANSITIONS does not list: a bug in the connection code."""


def check(old: State, new: State) -> None:
    """Raise IllegalTransition unless old -> new is in the table."""
    if (old, new) not in TRANSITIONS:
        raise IllegalTransition(f"TCP state {old} -> {new} is not in tuntcp.core.state.TRANSITIONS")


def table() -> str:
    """The transitions as aligned text, one per line: ``OLD -> NEW  cause``."""
    w = max(len(a) + len(b) for a, b in TRANSITIONS) + 4
    return "\n".join(f"{f'{a} -> {b}':{w}}  {why}" for (a, b), why in TRANSITIONS.items())


def dot() -> str:
    """The transitions as a Graphviz digraph (``tuntcp states --dot | dot -Tsvg``)."""
    lines = ["digraph tcp_states {", "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
    lines += [f'  "{s}";' for s in State]
    for (a, b), why in TRANSITIONS.items():
        label = why.split(" (")[0].replace('"', r'\"')
        lines.append(f'  "{a}" -> "{b}" [label="{label}", fontsize=9];')
    lines.append("}")
    return "\n".join(lines)


# module-level names for the core's comparisons: ``State.X`` costs an enum attribute lookup
# (~130 ns on CPython 3.11), a global ~20 ns
CLOSED, SYN_SENT, SYN_RECV, ESTABLISHED = S.CLOSED, S.SYN_SENT, S.SYN_RECV, S.ESTABLISHED
FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT = S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.TIME_WAIT
CLOSE_WAIT, LAST_ACK = S.CLOSE_WAIT, S.LAST_ACK

# state groups the connection code tests per segment
SYNCED = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING,
                    LAST_ACK, SYN_RECV))
CAN_SEND = frozenset((ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK))
RCV_DATA = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2))
