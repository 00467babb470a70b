"""``ss`` for a running Stack, printed the way iproute2 (6.x) prints it when stdout is not a
terminal: the column renderer of misc/ss.c (``render_calc_width`` in compact mode, ``render``),
its column set (Netid, State, Recv-Q, Send-Q, Local Address:Port, Peer Address:Port, Process),
its state defaults (without ``-a``/``-l``/a state filter: no LISTEN, TIME-WAIT or SYN-RECV
rows; ``-l``: LISTEN and CLOSE) and its per-socket extras: ``-p`` users, ``-o``/``-e`` timers,
``-e`` details, ``-m`` skmem, ``-i`` tcp_info, each in the "Process" column as ss puts them.

Rows: listeners first (the kernel dumps the listening hash before the established one), then
connections, TIME-WAIT and request socks sorted by address (ss prints the established hash in
bucket order, which is arbitrary). What has no counterpart here: inodes (``ino:0``, as the
kernel shows for TIME-WAIT and request socks), cgroups (not printed), and ``fd`` in ``-p``,
which is the TUN device's descriptor: every socket of the endpoint lives behind it.
"""
from __future__ import annotations

import ipaddress
import os

from . import ssfilter as F
from .views import SS_STATE, info_line, _cc

# misc/ss.c columns[]: (align, header, left delimiter); COL_EXT's header is "Process"
NETID, STATE, RECVQ, SENDQ, ADDR, SERV, RADDR, RSERV, EXT, PROC = range(10)
COLUMNS = (("L", "Netid", ""), ("L", "State", " "), ("L", "Recv-Q", " "), ("L", "Send-Q", " "),
           ("R", "Local Address:", " "), ("L", "Port", ""), ("R", "Peer Address:", " "),
           ("L", "Port", ""), ("L", "Process", ""), ("L", "", ""))


def render(lines: list[list[str]], enabled: list[int], header: bool = True) -> str:
    """``render()`` of misc/ss.c with no terminal (compact output): each column as wide as its
    widest token (plus its delimiter, except the first), right-aligned address columns, every
    left-aligned field padded to its width. ``lines`` hold one token per enabled column.
    ss measures a token when it moves past it (``field_flush``), and it never moves past the
    last row's Process field: that one token does not count, so a single row's long
    ``users:``/``-i`` text leaves the header unpadded."""
    width = {}
    first = True
    for i, col in enumerate(enabled):
        toks = [ln[i] for ln in lines]
        if col >= EXT and (len(lines) > 1 or not header):
            toks = toks[:-1] or [""]
        m = max(len(t) for t in toks)
        width[col] = m + len(COLUMNS[col][2]) if not first and m else m
        if width[col]:
            first = False
    out = []
    for ln in lines:
        parts = []
        for i, (col, tok) in enumerate(zip(enabled, ln)):
            align, _, delim = COLUMNS[col]
            printed = len(delim) if i else 0
            s = delim if i else ""
            if align == "R" and width[col]:
                pad = width[col] - len(tok) - printed
                if pad > 0:
                    s += " " * pad
                    printed += pad
            s += tok
            printed += len(tok)
            if align == "L" and width[col] > printed:
                s += " " * (width[col] - printed)
            parts.append(s)
        out.append("".join(parts))
    return "\n".join(out) + "\n"


def ms_timer(ms: int) -> str:
    """``print_ms_timer``: 58sec, 1.234ms (sic: seconds.millis), 2min, 500ms."""
    secs, msecs = divmod(max(0, int(ms)), 1000)
    minutes, secs = divmod(secs, 60)
    buf = ""
    if minutes:
        msecs = 0
        buf = f"{minutes}min"
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        buf += f"{secs}{'.' if msecs else 'sec'}"
    if msecs:
        buf += f"{msecs:03d}ms"
    return buf


def _host(ip, v6: int = 0) -> str:
    """The address as ss prints it. ``v6``: the socket is AF_INET6, so an IPv4 address of it
    is IPv4-mapped ([::ffff:a.b.c.d]); its wildcard is "*" when the socket takes IPv4 too
    (``v6`` 1) and "[::]" under IPV6_V6ONLY (``v6`` 2), as misc/ss.c ``inet_addr_print`` does."""
    if v6 and ip <= 0xFFFFFFFF:
        return ("*" if v6 == 1 else "[::]") if ip == 0 else f"[::ffff:{ipaddress.IPv4Address(ip)}]"
    a = ipaddress.ip_address(ip)
    return f"[{a}]" if a.version == 6 else str(a)


def _v6(lst) -> int:
    """``_host``'s ``v6`` for a listener: 0 AF_INET, 1 AF_INET6, 2 AF_INET6 with IPV6_V6ONLY."""
    return 0 if lst is None or getattr(lst, "family", 4) == 4 else 2 if lst.v6only else 1


def default_local(stack, lst, raddr: int = 0) -> int:
    """A wildcard listener's request sock from ``raddr``: the stack's address of that family
    when it has one (a dual stack has one per family)."""
    if lst.addr:
        return lst.addr
    same = [a for a in stack.addrs if (a > 0xFFFFFFFF) == (raddr > 0xFFFFFFFF)] if raddr else list(stack.addrs)
    return same[0] if len(same) == 1 else 0


class Sock:
    """One row: what ``inet_diag`` reports for a socket, minus what ss computes itself."""

    __slots__ = ("state", "rq", "wq", "laddr", "lport", "raddr", "rport", "obj", "kind",
                 "timer", "v6")

    def __init__(self, state, rq, wq, laddr, lport, raddr, rport, obj, kind, timer=None, v6=0):
        self.state, self.rq, self.wq = state, rq, wq
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.obj, self.kind, self.timer = obj, kind, timer
        self.v6 = v6    # an AF_INET6 socket (see _host)


def sockets(stack, now: float | None = None) -> list[Sock]:
    """Every socket in the order described in the module docstring."""
    now = getattr(stack, "now", 0.0) if now is None else now
    rows = []
    listeners = sorted(stack.listeners.values(), key=lambda l: (l.port, l.addr))
    for lst in listeners:
        q = lst.queue_lengths()
        rows.append(Sock("LISTEN", q.get("accept", 0), q.get("backlog", lst.backlog), lst.addr,
                         lst.port, 0, 0, lst, "listen", v6=_v6(lst)))
    # children not yet accepted have no file descriptor: no process in -p (accept_q on Linux,
    # so_comp on FreeBSD)
    queued = {id(c) for lst in listeners
              for q in (getattr(lst, "accept_q", ()), getattr(lst, "comp", ())) for c in q}
    rest = []
    for c in stack.conns.values():
        laddr, lport, raddr, rport = c.key
        tw = c.state == "TIME-WAIT"
        rq = 0 if tw else c.readable()
        wq = 0 if tw else c.info().get("send_q", 0)
        timer = _timer(c, now)
        rest.append(Sock(c.state, rq, wq, laddr, lport, raddr, rport, c,
                         "tw" if tw else "queued" if id(c) in queued else "conn", timer,
                         _v6(getattr(c, "listener", None))))
    for lst in listeners:
        for raddr, rport, num_timeout, _acked, expires in lst.queue_lengths().get("requests") or ():
            rest.append(Sock("SYN-RECV", 0, 0, default_local(stack, lst, raddr), lst.port, raddr, rport, None, "req",
                             ("on", (expires - now) * 1000, num_timeout), _v6(lst)))
    rest.sort(key=lambda s: (s.laddr, s.lport, s.raddr, s.rport))
    return rows + rest


def _timer(c, now: float):
    """``inet_sk_diag_fill``'s idiag_timer: 1 "on" (retransmit, loss probe), 4 "persist"
    (zero-window probe), 2 "keepalive" (sk_timer: an orphaned FIN-WAIT-2's), and TIME-WAIT's
    "timewait"; the count is icsk_retransmits (our RTO backoffs)."""
    rtx_at, tw_at = getattr(c, "rtx_at", None), getattr(c, "tw_at", None)
    if c.state == "TIME-WAIT":
        return None if tw_at is None else ("timewait", (tw_at - now) * 1000, 0)
    rto = getattr(c, "rto", None)
    n = getattr(rto, "backoffs", 0)
    if rtx_at is not None:
        return ("persist" if c.rtx_kind == "probe" else "on", (rtx_at - now) * 1000, n)
    if tw_at is not None:
        return ("keepalive", (tw_at - now) * 1000, 0)
    return None


def _users(s: Sock, proc: tuple) -> str:
    if s.kind in ("tw", "req", "queued"):     # no file descriptor, so no process
        return ""
    comm, pid, fd = proc
    return f' users:(("{comm}",pid={pid},fd={fd}))'


def _details(s: Sock) -> str:
    """``sock_details_print`` + the shutdown arrows of a full socket."""
    text = f" ino:0 sk:{id(s.obj) if s.obj is not None else id(s):x}"
    if s.kind in ("listen", "conn", "queued"):
        rcv = s.kind != "listen" and s.obj.state in ("CLOSE-WAIT", "LAST-ACK", "CLOSING", "TIME-WAIT")
        snd = s.kind != "listen" and s.obj.state in ("FIN-WAIT-1", "FIN-WAIT-2", "CLOSING",
                                                    "LAST-ACK")
        text += f" {'-' if rcv else '<'}-{'-' if snd else '>'}"
    return text


def _skmem(s: Sock) -> str:
    """``print_skmeminfo``: r rcvbuf-used, rb rcvbuf, t in flight, tb sndbuf, w queued."""
    o = s.obj
    if s.kind == "listen":
        return f" skmem:(r0,rb{getattr(o, 'rcvbuf', 0)},t0,tb{getattr(o, 'sndbuf', 0)},f0,w0,o0,bl0,d0)"
    info = o.info()
    return (f" skmem:(r{s.rq},rb{info.get('rcvbuf', 0)},t0,tb{getattr(o, 'sndbuf', 0)},f0,"
            f"w{s.wq},o0,bl0,d0)")


def _ext(s: Sock, q: dict, cc: str, proc: tuple) -> str:
    text = ""
    if q.get("processes"):
        text += _users(s, proc)
    if q.get("options") and s.timer is not None:
        name, ms, n = s.timer
        text += f" timer:({name},{ms_timer(ms)},{n})"
    if q.get("extended"):
        text += _details(s)
    if q.get("memory") or q.get("info"):
        text += "\n\t"
        if q.get("memory") and s.kind in ("listen", "conn", "queued"):
            text += _skmem(s)
        if q.get("info"):
            if s.kind == "listen":
                # tcp_get_info on a listener: cwnd, and tcpi_unacked = the accept queue
                text += f" {cc} cwnd:10" + (f" unacked:{s.rq}" if s.rq else "")
            elif s.kind in ("conn", "queued"):
                text += " " + info_line(s.obj.info(), cc, options=bool(q.get("options")))
    return text


def _count_states(mask: int) -> int:
    return bin(mask).count("1")


def ss_text(stack, q: dict, now: float | None = None, proc: tuple | None = None) -> str:
    """The whole ``ss`` answer for a parsed query ``q`` (obs/commands.py ``ss_query``);
    ``proc`` is (comm, pid, fd) for ``-p`` (``process_of``)."""
    if q.get("summary"):
        return summary(stack)
    states = q["states"]
    tree = q.get("filter")
    enabled = [c for c in range(10)
               if not (c == NETID and q.get("tcp_only")) and not (c == STATE and _count_states(states) == 1)]
    lines = [] if q.get("no_header") else [[COLUMNS[c][1] for c in enabled]]
    cc = _cc(stack)
    proc = proc or process_of(-1)
    for s in sockets(stack, now):
        if not states & (1 << F.SS_NUM[s.state]):
            continue
        la, ra = _host(s.laddr, s.v6), _host(s.raddr, s.v6)
        if tree is not None and not F.matches(tree, la, s.lport, ra, s.rport):
            continue
        tok = {NETID: "tcp", STATE: SS_STATE.get(s.state, s.state), RECVQ: f"{s.rq:<6}",
               SENDQ: f"{s.wq:<6}", ADDR: la + ":", SERV: str(s.lport) if s.lport else "*",
               RADDR: ra + ":", RSERV: str(s.rport) if s.rport else "*",
               EXT: _ext(s, q, cc, proc), PROC: ""}
        lines.append([tok[c] for c in enabled])
    if not lines:
        return ""
    return render(lines, enabled, header=not q.get("no_header"))


_proc_cache: dict = {}


def process_of(fd: int) -> tuple:
    """(comm, pid, fd) for ``-p``: comm as /proc/PID/stat names it (what ss reads), and ``fd``,
    the endpoint's TUN descriptor."""
    pid = os.getpid()
    comm = _proc_cache.get(pid)
    if comm is None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
            comm = text[text.index("(") + 1:text.rindex(")")]
        except OSError:
            comm = "python3"
        _proc_cache[pid] = comm
    return comm, pid, fd


def summary(stack) -> str:
    """``ss -s`` (``print_summary``) from the stack's sockets; RAW, UDP and FRAG are always 0.
    Total = sockets held; TCP alloc = inuse = listeners + connections not in TIME-WAIT;
    closed is ss's own formula alloc - (inuse - timewait)."""
    tw = sum(1 for c in stack.conns.values() if c.state == "TIME-WAIT")
    inuse = len(stack.listeners) + len(stack.conns) - tw
    estab = sum(1 for c in stack.conns.values() if c.state in ("ESTABLISHED", "CLOSE-WAIT"))
    alloc = inuse
    closed = alloc - (inuse - tw)
    rows = [("RAW", 0, 0), ("UDP", 0, 0), ("TCP", inuse, 0), ("INET", inuse, 0), ("FRAG", 0, 0)]
    out = [f"Total: {inuse}",
           f"TCP:   {alloc} (estab {estab}, closed {closed}, orphaned 0, timewait {tw})",
           "", "Transport Total     IP        IPv6"]
    out += [f"{n}\t  {a + b:<9} {a:<9} {b:<9}" for n, a, b in rows]
    return "\n".join(out) + "\n\n"
