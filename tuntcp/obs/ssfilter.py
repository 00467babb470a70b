"""``ss`` state names and filter expressions, parsed as iproute2 parses them.

States follow misc/ss.c ``scan_state`` (names, the groups ``all``/``connected``/``synchronized``/
``bucket``/``big``, ``state X`` / ``exclude X``); expressions follow misc/ssfilter.y: ``sport``,
``dport`` (with ``=``/``==``/``eq``, ``!=``, ``>=``, ``<=``, ``>``, ``<`` or no operator), ``src``,
``dst`` (address[/prefix][:port]), ``!``/``not``, ``and``/``&``/``&&``, ``or``/``|``/``||`` and
``( )``; two expressions side by side are ANDed, and the chain is read left to right as the yacc
grammar reads it. The parsed filter is a JSON-able list tree so it can cross the control socket:
``["and", a, b]``, ``["or", a, b]``, ``["not", a]``, ``["sport"|"dport", op, port]``,
``["src"|"dst", prefix or None, port or -1]``.
"""
from __future__ import annotations

import ipaddress
import socket

# misc/ss.c enum: SS_ESTABLISHED = 1 ... SS_CLOSING = 11
SS_NUM = {"ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
          "TIME-WAIT": 6, "CLOSED": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11}
SS_ALL = (1 << 12) - 1
_B = {k: 1 << v for k, v in SS_NUM.items()}
# default_dbs[TCP_DB].states: everything but LISTEN, CLOSE, TIME-WAIT and SYN-RECV
SS_CONN = SS_ALL & ~(_B["LISTEN"] | _B["CLOSED"] | _B["TIME-WAIT"] | _B["SYN-RECV"])
SS_LISTENING = _B["LISTEN"] | _B["CLOSED"]          # ss -l

_NAMES = {"established": _B["ESTABLISHED"], "syn-sent": _B["SYN-SENT"], "syn-recv": _B["SYN-RECV"],
          "syn-rcv": _B["SYN-RECV"], "fin-wait-1": _B["FIN-WAIT-1"], "fin-wait-2": _B["FIN-WAIT-2"],
          "time-wait": _B["TIME-WAIT"], "unconnected": _B["CLOSED"], "close": _B["CLOSED"],
          "closed": _B["CLOSED"], "close-wait": _B["CLOSE-WAIT"], "last-ack": _B["LAST-ACK"],
          "listening": _B["LISTEN"], "closing": _B["CLOSING"], "all": SS_ALL,
          "connected": SS_ALL & ~(_B["CLOSED"] | _B["LISTEN"]),
          "synchronized": SS_ALL & ~(_B["CLOSED"] | _B["LISTEN"] | _B["SYN-SENT"]),
          "bucket": _B["SYN-RECV"] | _B["TIME-WAIT"],
          "big": SS_ALL & ~(_B["SYN-RECV"] | _B["TIME-WAIT"])}
STATE_NAMES = tuple(_NAMES)


class FilterError(ValueError):
    """A filter the real ss would refuse too (the message says which word)."""


def scan_state(name: str) -> int:
    """``scan_state``: a state name or group -> bit mask (case-insensitive, as ss reads it)."""
    try:
        return _NAMES[name.lower()]
    except KeyError:
        raise FilterError(f"wrong state name: {name} (one of {', '.join(STATE_NAMES)})") from None


def parse_states(words: list[str]) -> tuple[int, list[str]]:
    """Leading ``state X`` / ``exclude X`` pairs (ss's main loop) -> (mask or 0, the rest)."""
    mask, saw = 0, False
    i = 0
    while i < len(words) and words[i] in ("state", "exclude", "excl"):
        if i + 1 >= len(words):
            raise FilterError(f"'{words[i]}' needs a state name")
        bits = scan_state(words[i + 1])
        if words[i] == "state":
            mask = (mask if saw else 0) | bits
        else:
            mask = (mask if saw else SS_ALL) & ~bits
        saw = True
        i += 2
    return mask, words[i:]


_OPS = {"=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "neq": "ne", ">=": "ge",
        "ge": "ge", "geq": "ge", "<=": "le", "le": "le", "leq": "le", ">": "gt", "gt": "gt",
        "<": "lt", "lt": "lt"}


def _tokens(words: list[str]) -> list[str]:
    # yylex splits every argument again at blanks: 'sport = :22' may come as one word
    return [t for w in words for t in w.split()]


def _port(text: str) -> int:
    t = text[1:] if text.startswith(":") else text
    if t in ("", "*"):
        return -1
    if t.isdigit():
        return int(t)
    try:
        return socket.getservbyname(t, "tcp")
    except OSError:
        raise FilterError(f'"{t}" does not look like a port.') from None


def _hostcond(text: str) -> list:
    """``parse_hostcond`` for src/dst: ``addr``, ``addr/len``, ``addr:port``, ``[v6]:port``, ``*:port``."""
    addr, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise FilterError(f'an inet prefix is expected rather than "{text}".')
        addr, port = text[1:end], text[end + 1:]
    elif text.startswith("*"):
        addr, port = "", text[1:]
    elif text.count(":") == 1:
        addr, port = text.split(":")
        port = ":" + port
    prefix = None
    if addr and addr != "*":
        try:
            prefix = str(ipaddress.ip_network(addr, strict=False))
        except ValueError:
            raise FilterError(f'an inet prefix is expected rather than "{addr}".') from None
    return [prefix, _port(port) if port else -1]


def parse_filter(words: list[str]):
    """The expression after the state words -> a list tree, or None when there is none."""
    toks = _tokens(words)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def expr():
        t = peek()
        if t is None:
            raise FilterError("filter ends too early")
        take()
        if t == "(":
            e = exprlist()
            if peek() != ")":
                raise FilterError("missing ')' in filter")
            take()
            return e
        if t in ("!", "not"):
            return ["not", expr()]
        if t in ("sport", "dport"):
            op = "eq"
            if peek() in _OPS:
                op = _OPS[take()]
            if peek() is None:
                raise FilterError(f"'{t}' needs a port, e.g. {t} = :8080")
            port = _port(take())
            return ["true"] if port < 0 else [t, op, port]     # ':*' is any port
        if t in ("src", "dst"):
            if peek() in ("=", "==", "eq"):
                take()
            if peek() is None:
                raise FilterError(f"'{t}' needs an address")
            return [t] + _hostcond(take())
        raise FilterError(f'unexpected "{t}" in filter (sport, dport, src, dst, not, and, or, "(")')

    def exprlist():
        e = expr()
        while peek() is not None and peek() != ")":
            t = peek()
            if t in ("|", "||", "or"):
                take()
                e = ["or", e, expr()]
            elif t in ("&", "&&", "and"):
                take()
                e = ["and", e, expr()]
            else:
                e = ["and", e, expr()]
        return e

    if not toks:
        return None
    tree = exprlist()
    if pos != len(toks):
        raise FilterError(f'unexpected "{toks[pos]}" in filter')
    return tree


def _cmp(op: str, a: int, b: int) -> bool:
    return {"eq": a == b, "ne": a != b, "ge": a >= b, "le": a <= b, "gt": a > b, "lt": a < b}[op]


def matches(tree, laddr: str, lport: int, raddr: str, rport: int) -> bool:
    """``run_ssfilter`` on one socket (addresses as text, ports as ints)."""
    if tree is None:
        return True
    k = tree[0]
    if k == "true":
        return True
    if k == "and":
        return matches(tree[1], laddr, lport, raddr, rport) and matches(tree[2], laddr, lport, raddr, rport)
    if k == "or":
        return matches(tree[1], laddr, lport, raddr, rport) or matches(tree[2], laddr, lport, raddr, rport)
    if k == "not":
        return not matches(tree[1], laddr, lport, raddr, rport)
    if k == "sport":
        return _cmp(tree[1], lport, tree[2])
    if k == "dport":
        return _cmp(tree[1], rport, tree[2])
    addr, port = (laddr, lport) if k == "src" else (raddr, rport)
    prefix, want = tree[1], tree[2]
    if want != -1 and want != port:
        return False
    return prefix is None or ipaddress.ip_address(addr) in ipaddress.ip_network(prefix)
