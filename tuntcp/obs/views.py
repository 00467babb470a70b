"""Text views of a running Stack, formatted the way the real tools print them:
``ss -lnt``, ``ss -tni`` (iproute2), the SYN-RECV rows of ``ss -tan``, and FreeBSD's
``netstat -Lan``.

LISTEN rows follow ``inet_diag``/``tcp_diag_get_info``: Recv-Q is the accept-queue length and
Send-Q the backlog after the somaxconn clamp. Connection rows: Recv-Q is unread bytes, Send-Q
is bytes queued but not yet acknowledged (``write_seq - snd_una``).
"""
from __future__ import annotations

from ..wire.codec import ip_str

# ss prints these short names (iproute2 misc/ss.c sstate_name)
SS_STATE = {
    "ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECV": "SYN-RECV",
    "FIN-WAIT-1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "TIME-WAIT": "TIME-WAIT",
    "CLOSED": "UNCONN", "CLOSE-WAIT": "CLOSE-WAIT", "LAST-ACK": "LAST-ACK", "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
}
HEADER = ("State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port")


def _addr(ip: int, port) -> str:
    return f"{ip_str(ip) if ip else '0.0.0.0'}:{port}"


def _table(rows: list[tuple]) -> str:
    """Columns like ss: state left-aligned, queues left, local address right-aligned, peer left."""
    rows = [HEADER] + [tuple(str(c) for c in r) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for r in rows:
        out.append(f"{r[0]:<{w[0]}} {r[1]:<{w[1]}} {r[2]:<{w[2]}} {r[3]:>{w[3]}} {r[4]:<{w[4]}}".rstrip())
    return "\n".join(out) + "\n"


def _listeners(stack) -> list:
    return sorted(stack.listeners.values(), key=lambda l: (l.port, l.addr))


def _conns(stack) -> list:
    return sorted(stack.conns.values(), key=lambda c: c.key)


def listen_rows(stack) -> list[tuple]:
    rows = []
    for lst in _listeners(stack):
        q = lst.queue_lengths()
        rows.append(("LISTEN", q.get("accept", 0), q.get("backlog", lst.backlog),
                     _addr(lst.addr, lst.port), "0.0.0.0:*"))
    return rows


def send_queue(conn, info: dict) -> int:
    """Bytes written by the app and not yet acked (ss Send-Q for a connection)."""
    return info.get("send_q", 0)


def conn_row(conn, info: dict | None = None) -> tuple:
    info = conn.info() if info is None else info
    laddr, lport, raddr, rport = conn.key
    state = SS_STATE.get(conn.state, conn.state)
    return (state, conn.readable(), send_queue(conn, info), _addr(laddr, lport), _addr(raddr, rport))


def ss_lnt(stack) -> str:
    """``ss -lnt``: one LISTEN row per listener."""
    return _table(listen_rows(stack))


def _g(ms) -> str:
    return f"{ms:g}"


def info_line(info: dict, cc: str = "cubic") -> str:
    """The second line of ``ss -ti`` from ``conn.info()``, in iproute2's ``tcp_show_info`` field
    order; zero or absent fields are left out as ss leaves them out. ``info`` times are ms
    (like tcp_info's usec / 1000, which ss prints with %g)."""
    parts = []
    if info.get("ts"):
        parts.append("ts")
    if info.get("sack"):
        parts.append("sack")
    if info.get("ecn"):
        parts.append("ecn")
    parts.append(info.get("cc") or cc)
    if info.get("wscale_ok"):
        parts.append(f"wscale:{info.get('snd_wscale', 0)},{info.get('rcv_wscale', 0)}")
    if info.get("rto"):
        parts.append(f"rto:{_g(info['rto'])}")
    if info.get("backoff"):
        parts.append(f"backoff:{info['backoff']}")
    if info.get("rtt"):
        parts.append(f"rtt:{_g(info['rtt'])}/{_g(info.get('rttvar', 0))}")
    if info.get("ato"):
        parts.append(f"ato:{_g(info['ato'])}")
    for k, name in (("mss", "mss"), ("pmtu", "pmtu"), ("rcv_mss", "rcvmss"), ("advmss", "advmss"),
                    ("cwnd", "cwnd")):
        if info.get(k):
            parts.append(f"{name}:{info[k]}")
    ss = info.get("ssthresh")
    if ss is not None and ss < 0xFFFF:  # ss hides the "infinite" initial ssthresh
        parts.append(f"ssthresh:{ss}")
    for k in ("bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "segs_out", "segs_in",
              "data_segs_out", "data_segs_in"):
        if info.get(k):
            parts.append(f"{k}:{info[k]}")
    for k in ("lastsnd", "lastrcv", "lastack"):
        if info.get(k):
            parts.append(f"{k}:{int(info[k])}")
    if info.get("unacked"):
        parts.append(f"unacked:{info['unacked']}")
    if info.get("retrans") or info.get("total_retrans"):
        parts.append(f"retrans:{info.get('retrans', 0)}/{info.get('total_retrans', 0)}")
    for k in ("rcv_space", "rcv_ssthresh", "snd_wnd", "rcv_wnd"):
        if info.get(k):
            parts.append(f"{k}:{info[k]}")
    return " ".join(parts)


def ss_ti(stack, listening: bool = False) -> str:
    """``ss -tni``: each connection's row, then its tab-indented info line. With
    ``listening`` the LISTEN rows come first (``ss -tani``)."""
    cc = _cc(stack)
    rows, infos = [], []
    if listening:
        for r in listen_rows(stack):
            rows.append(r)
            infos.append(None)
    for c in _conns(stack):
        info = c.info()
        rows.append(conn_row(c, info))
        # a TIME-WAIT mini-socket has no tcp_info, so ss prints no info line for it
        infos.append(None if c.state == "TIME-WAIT" else info)
    table = _table(rows).splitlines()
    out = [table[0]]
    for line, info in zip(table[1:], infos):
        out.append(line)
        if info is not None:
            out.append("\t " + info_line(info, cc))
    return "\n".join(out) + "\n"


def ss_t(stack, listening: bool = False) -> str:
    """``ss -tn`` (``-tan`` with ``listening``), without info lines, with SYN-RECV request rows."""
    rows = listen_rows(stack) if listening else []
    rows += [conn_row(c) for c in _conns(stack)]
    rows += syn_recv_rows(stack)
    return _table(rows)


def syn_recv_rows(stack, now: float | None = None) -> list[tuple]:
    """SYN-RECV rows for request socks (``ss -tan state syn-recv``), from each listener's
    ``queue_lengths()["requests"]``: (raddr, rport, num_timeout, acked, expires) tuples.
    With ``now`` each row gets ss -o's ``timer:(on,<ms>,<retrans>)``."""
    rows = []
    for lst in _listeners(stack):
        reqs = lst.queue_lengths().get("requests") or ()
        local = lst.addr or (min(stack.addrs) if len(stack.addrs) == 1 else 0)
        for raddr, rport, num_timeout, _acked, expires in reqs:
            peer = _addr(raddr, rport)
            if now is not None:
                peer += f" timer:(on,{max(0, round((expires - now) * 1000))}ms,{num_timeout})"
            rows.append(("SYN-RECV", 0, 0, _addr(local, lst.port), peer))
    return rows


def syn_recv(stack, now: float | None = None) -> str:
    """SYN-RECV listing plus a per-listener summary line (queue counts)."""
    text = _table(syn_recv_rows(stack, now))
    for lst in _listeners(stack):
        q = lst.queue_lengths()
        text += (f"# {_addr(lst.addr, lst.port)} syn:{q.get('syn', 0)} accept:{q.get('accept', 0)}"
                 f" backlog:{q.get('backlog', lst.backlog)}\n")
    return text


# usr.bin/netstat/inet.c (freebsd/freebsd-src, both versions read): "%-5.5s %-14.14s %-22.22s"
# in the printf era (FreeBSD 9), "%-5.5s %-32.32s %-22.22s" since libxo; the queue sizes are
# cut to the column width, the protocol is "%-3.3s%-2.2s " ("tcp4 "), trailing blanks trimmed.
_LISTEN_WIDTH = {"freebsd-9": 14}


def netstat_lan(stack) -> str:
    """FreeBSD ``netstat -Lan``: ``qlen/incqlen/maxqlen`` per listening socket."""
    prof = getattr(stack, "profile", None)
    w = _LISTEN_WIDTH.get(getattr(prof, "name", ""), 32)
    lines = ["Current listen queue sizes (qlen/incqlen/maxqlen)",
             f"{'Proto':<5.5} {'Listen':<{w}.{w}} {'Local Address':<22.22}".rstrip()]
    for lst in _listeners(stack):
        q = lst.queue_lengths()
        addr = f"{ip_str(lst.addr)}.{lst.port}" if lst.addr else f"*.{lst.port}"
        qs = f"{q.get('accept', 0)}/{q.get('incomplete', 0)}/{q.get('backlog', lst.backlog)}"
        lines.append(f"{'tcp4':<5.5} {qs:<{w}.{w}} {addr:<22.22}".rstrip())
    return "\n".join(lines) + "\n"


def _cc(stack) -> str:
    prof = getattr(stack, "profile", None)
    try:
        return prof["net.ipv4.tcp_congestion_control"] if prof is not None else "cubic"
    except KeyError:
        return "cubic"


def nstat_text(counters: dict, zeros: bool = False) -> str:
    """``nstat`` output: ``#kernel`` then name, value, rate (always 0.0 here). Without
    ``zeros`` only non-zero counters; with it every known name too (``nstat -z``)."""
    from ..mib import ALL
    names = [n for n in ALL if zeros or counters.get(n, 0)]
    lines = ["#kernel"]
    for n in names:
        lines.append(f"{n:<32}{counters.get(n, 0):>18}{0.0:>15.1f}")
    return "\n".join(lines) + "\n"
