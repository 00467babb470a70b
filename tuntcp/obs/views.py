"""Text views of a running Stack, formatted the way the real tools print them:
``ss -lnt``, ``ss -tni`` (iproute2), the SYN-RECV rows of ``ss -tan``, and FreeBSD's
``netstat -Lan``.

LISTEN rows follow ``inet_diag``/``tcp_diag_get_info``: Recv-Q is the accept-queue length and
Send-Q the backlog after the somaxconn clamp. Connection rows: Recv-Q is unread bytes, Send-Q
is bytes queued but not yet acknowledged (``write_seq - snd_una``).
"""
from __future__ import annotations

from ..wire.ipv6 import addr_port, addr_str

# ss prints these short names (iproute2 misc/ss.c sstate_name)
SS_STATE = {
    "ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECV": "SYN-RECV",
    "FIN-WAIT-1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "TIME-WAIT": "TIME-WAIT",
    "CLOSED": "UNCONN", "CLOSE-WAIT": "CLOSE-WAIT", "LAST-ACK": "LAST-ACK", "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
}
def _g(ms) -> str:
    return f"{ms:g}"


def info_line(info: dict, cc: str = "cubic", options: bool = True) -> str:
    """The second line of ``ss -ti`` from ``conn.info()``, in iproute2's ``tcp_show_info`` field
    order; zero or absent fields are left out as ss leaves them out. ``info`` times are ms
    (like tcp_info's usec / 1000, which ss prints with %g). ``ts sack ecn`` only with
    ``options`` (ss prints them for -o and -e, not for plain -i)."""
    parts = []
    if options:
        parts += [k for k in ("ts", "sack", "ecn") if info.get(k)]
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


def _ss(stack, now=None, **q) -> str:
    from .ss import ss_text
    from .ssfilter import SS_ALL, SS_CONN, SS_LISTENING
    states = {"listen": SS_LISTENING, "all": SS_ALL, "conn": SS_CONN}[q.pop("which")]
    return ss_text(stack, dict(q, states=q.pop("states", states), tcp_only=True), now=now)


def ss_lnt(stack) -> str:
    """``ss -lnt``: one LISTEN row per listener (Recv-Q accept queue, Send-Q backlog)."""
    return _ss(stack, which="listen")


def ss_ti(stack, listening: bool = False) -> str:
    """``ss -tni`` (``ss -tani`` with ``listening``): rows, each with its tcp_info line."""
    return _ss(stack, which="all" if listening else "conn", info=True)


def ss_t(stack, listening: bool = False) -> str:
    """``ss -tn`` (``ss -tan`` with ``listening``: LISTEN, TIME-WAIT and SYN-RECV rows too)."""
    return _ss(stack, which="all" if listening else "conn")


def syn_recv(stack, now: float | None = None) -> str:
    """``ss -tano state syn-recv`` (each row ends with ``timer:(on,<left>,<retrans>)``; lines
    without ss's trailing blanks) plus a ``#`` summary line per listener (queue counts)."""
    from .ssfilter import scan_state
    text = _ss(stack, now=now, which="all", states=scan_state("syn-recv"), options=True)
    text = "".join(ln.rstrip() + "\n" for ln in text.splitlines())
    for lst in sorted(stack.listeners.values(), key=lambda l: (l.port, l.addr)):
        q = lst.queue_lengths()
        text += (f"# {_addr(lst.addr, lst.port)} syn:{q.get('syn', 0)} accept:{q.get('accept', 0)}"
                 f" backlog:{q.get('backlog', lst.backlog)}\n")
    return text


def _addr(ip: int, port) -> str:
    return addr_port(ip, port) if ip else f"0.0.0.0:{port}"


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
    for lst in sorted(stack.listeners.values(), key=lambda l: (l.port, l.addr)):
        q = lst.queue_lengths()
        addr = f"{addr_str(lst.addr)}.{lst.port}" if lst.addr else f"*.{lst.port}"
        qs = f"{q.get('accept', 0)}/{q.get('incomplete', 0)}/{q.get('backlog', lst.backlog)}"
        # inet.c's vchar: "4" (INP_IPV4), "6" (INP_IPV6), "46" for an INET6 socket taking IPv4
        fam = "4" if getattr(lst, "family", 4) == 4 else "6" if lst.v6only else "46"
        lines.append(f"{'tcp' + fam:<5.5} {qs:<{w}.{w}} {addr:<22.22}".rstrip())
    return "\n".join(lines) + "\n"


def _cc(stack) -> str:
    prof = getattr(stack, "profile", None)
    try:
        return prof["net.ipv4.tcp_congestion_control"] if prof is not None else "cubic"
    except KeyError:
        return "cubic"


def nstat_text(counters: dict, zeros: bool = False) -> str:
    """``nstat -a`` text (``nstat -az`` with ``zeros``): see obs/nstat.py."""
    from .nstat import dump
    return dump(counters, {"zeros": zeros})
