"""Small pure rules of the Linux passive open, one kernel decision each.

The listener in ``linux.py`` strings them together; every function names the kernel function it
mirrors. Times are float seconds, never read from a clock.

Checked against kernel text with the project's code search (not from memory):
  * ``secs_to_retrans``: 0 s -> 0 rounds; otherwise rounds grow while the seconds exceed the sum
    of the doubling timeouts (1, 2, 4, ... capped at TCP_RTO_MAX); 5 s -> 3 rounds (read back 7 s).
  * ``reqsk_timer_handler``/``syn_ack_recalc``: the young/old shortening changes only the expiry
    threshold; with TCP_DEFER_ACCEPT the *defer rounds* (not the threshold) bound an acked request.
  * ``tcp_syn_ack_timeout`` counts TCPTimeouts on every request-timer expiry; ``tcp_rtx_synack``
    counts TcpRetransSegs and TCPSynRetrans for every resent SYN-ACK (timer or retransmitted SYN).
  * ``tcp_oow_rate_limited`` (the rule is ``core/oow.py``, shared with connections): segments
    with data and no SYN are never rate limited.
  * ``tcp_peer_is_proven`` (no PAWS check): true when the metrics cache holds an RTT for the peer.
  * ``tcp_syn_flood_action``: the old line ends "<msg>.  Check SNMP counters." with the port only;
    d9282e48c608 "tcp: Add listening address to SYN flood message" (net-next, Nov 2022, v6.2)
    prints "<addr>:<port>" and drops the SNMP sentence. dmesg shows the body behind
    tcp_input.c's pr_fmt "TCP: " (real logs: "TCP: TCP: Possible SYN flooding ..." on 3.10,
    "TCP: request_sock_TCP: Possible SYN flooding ..." on 4.x/5.x).
"""
from __future__ import annotations

import ipaddress

from ..core.seq import seq_diff, seq_gt, seq_lt

TCP_PAWS_WINDOW = 1      # TSval may go back by this much (include/net/tcp.h)
TCP_PAWS_MSL = 60        # s; a RST is let through PAWS once ts_recent is this old
SYNCOOKIE_VALID = 120.0  # s; TCP_SYNCOOKIE_VALID = MAX_SYNCOOKIE_AGE * TCP_SYNCOOKIE_PERIOD


def listen_backlog(backlog: int, somaxconn: int) -> int:
    """``__sys_listen``: the backlog compared *unsigned* with net.core.somaxconn.

    A negative backlog is a huge unsigned number, so it becomes somaxconn; 0 stays 0.
    """
    b = backlog & 0xFFFFFFFF
    return somaxconn if b > somaxconn else b


def acceptq_is_full(queued: int, max_backlog: int) -> bool:
    """``sk_acceptq_is_full``: strictly greater, so backlog N holds N+1 children."""
    return queued > max_backlog


def pow2_synq_size(backlog: int, max_syn_backlog: int) -> int:
    """Pre-4.4 ``reqsk_queue_alloc``: roundup_pow_of_two(max(8, min(backlog, max_syn_backlog)) + 1)."""
    nr = max(8, min(backlog, max_syn_backlog)) + 1
    return 1 << (nr - 1).bit_length()


def synq_is_full(mode: str, qlen: int, max_backlog: int, pow2_size: int) -> bool:
    """``inet_csk_reqsk_queue_is_full`` per ``model.synq_full_cmp``.

    "pow2": pre-4.4 (qlen >> max_qlen_log != 0); ">=": 4.4 .. early 2025; ">": 3479c7549fb1.
    """
    if mode == ">=":
        return qlen >= max_backlog
    if mode == ">":
        return qlen > max_backlog
    if mode == "pow2":
        return qlen >= pow2_size
    raise ValueError(f"unknown model.synq_full_cmp {mode!r}")


def acceptq_drops_syn(mode: str, queued: int, max_backlog: int, young: int) -> bool:
    """The accept-queue test of ``tcp_conn_request`` on a SYN.

    "young" (before 5ea8ea2cb7f1, ~4.10): drop only when the accept queue is full *and* more
    than one request is still young; "full": drop whenever the accept queue is full.
    """
    if not acceptq_is_full(queued, max_backlog):
        return False
    return young > 1 if mode == "young" else True


def three_quarter_drop(syncookies: int, max_syn_backlog: int, qlen: int, proven: bool) -> bool:
    """The last ``tcp_max_syn_backlog`` rule in ``tcp_conn_request``.

    Only with tcp_syncookies=0: once fewer than a quarter of max_syn_backlog slots are left,
    SYNs from peers that are not ``tcp_peer_is_proven`` are dropped.
    """
    return (syncookies == 0 and max_syn_backlog - qlen < (max_syn_backlog >> 2)
            and not proven)


TCP_PR_FMT = "TCP: "     # pr_fmt of net/ipv4/tcp_input.c: what dmesg puts before the body


def synflood_line(style: str, proto: str, laddr: int, port: int, cookies: bool,
                  v6: bool = False) -> str:
    """The ``tcp_syn_flood_action`` printk body (model.synflood_msg "old" or "new"),
    without the "TCP: " pr_fmt prefix that dmesg adds. ``v6``: an IPv6 SYN, so
    ``tcp_v6_conn_request``'s name ("TCPv6", or the slab "request_sock_TCPv6") and the AF_INET6
    listener's address as ``[%pI6c]``."""
    msg = "Sending cookies" if cookies else "Dropping request"
    if v6:
        proto += "v6"
    if style == "old":
        return f"{proto}: Possible SYN flooding on port {port}. {msg}.  Check SNMP counters."
    if style == "new":
        where = f"[{ipaddress.IPv6Address(laddr)}]" if v6 else ipaddress.IPv4Address(laddr)
        return f"{proto}: Possible SYN flooding on port {where}:{port}. {msg}."
    raise ValueError(f"unknown model.synflood_msg {style!r}")


def secs_to_retrans(seconds: int, timeout: float = 1.0, rto_max: float = 120.0) -> int:
    """``secs_to_retrans`` (TCP_DEFER_ACCEPT setsockopt): seconds -> SYN-ACK rounds (max 255)."""
    if seconds <= 0:
        return 0
    res, period = 1, timeout
    while seconds > period and res < 255:
        res += 1
        timeout = min(timeout * 2, rto_max)
        period += timeout
    return res


def retrans_to_secs(rounds: int, timeout: float = 1.0, rto_max: float = 120.0) -> float:
    """``retrans_to_secs`` (TCP_DEFER_ACCEPT getsockopt): rounds -> seconds read back."""
    if rounds <= 0:
        return 0
    period = timeout
    for _ in range(rounds - 1):
        timeout = min(timeout * 2, rto_max)
        period += timeout
    return period


def synack_thresh(max_retries: int, qlen: int, young: int, max_backlog: int,
                  pow2_size: int | None = None) -> int:
    """``reqsk_timer_handler``: fewer retries for old requests when the queue is half full.

    Half of the queue is kept for young requests (never retransmitted): while old ones
    outnumber the young ones by more than a power of two, one retry is taken off, down to 2.
    Pre-4.4 ("pow2") the half-full test is against the power-of-two table size.
    """
    thresh = max_retries
    half_full = (qlen >= pow2_size // 2) if pow2_size else (qlen << 1) > max(8, max_backlog)
    if half_full:
        y = young << 1
        while thresh > 2:
            if qlen < y:
                break
            thresh -= 1
            y <<= 1
    return thresh


def syn_ack_recalc(num_timeout: int, thresh: int, defer_rounds: int, acked: bool) -> tuple[bool, bool]:
    """``syn_ack_recalc``: (expire, resend) for one request-timer expiry.

    With TCP_DEFER_ACCEPT an acked request lives until the defer rounds are used up, and its
    SYN-ACK is not resent until the last round (a last chance for the client to send data).
    """
    if not defer_rounds:
        return num_timeout >= thresh, True
    expire = num_timeout >= thresh and (not acked or num_timeout >= defer_rounds)
    resend = (not acked) or num_timeout >= defer_rounds - 1
    return expire, resend


def tcp_in_window(seq: int, end_seq: int, s_win: int, e_win: int) -> bool:
    """``tcp_in_window`` (tcp_minisocks.c): does [seq, end_seq) touch [s_win, e_win]?"""
    if seq == s_win:
        return True
    if seq_gt(end_seq, s_win) and seq_lt(seq, e_win):
        return True
    return seq == e_win and seq == end_seq


def req_paws_reject(ts_recent: int, tsval: int, rst: bool, age: float) -> bool:
    """``tcp_paws_reject`` as ``tcp_check_req`` uses it for a request sock.

    ``age`` is the estimated age of ts_recent (the kernel does not store it for a request and
    uses TCP_TIMEOUT_INIT << num_timeout). A RST passes once ts_recent is TCP_PAWS_MSL old.
    """
    if not ts_recent:
        return False
    if seq_diff(ts_recent, tsval) <= TCP_PAWS_WINDOW:
        return False
    if rst and age >= TCP_PAWS_MSL:
        return False
    return True


def is_bcast_or_mcast(daddr: int) -> bool:
    """``tcp_v4_conn_request``: SYNs to multicast or the limited broadcast address are dropped."""
    return daddr >= 0xE0000000 and (daddr < 0xF0000000 or daddr == 0xFFFFFFFF)


def synq_overflow_stamp(last: float | None, now: float) -> float:
    """``tcp_synq_overflow``: remember a SYN-queue overflow, at most once per second."""
    if last is None or not (last <= now <= last + 1.0):
        return now
    return last


def synq_no_recent_overflow(last: float | None, now: float) -> bool:
    """``tcp_synq_no_recent_overflow``: cookies are only checked in [last - 1 s, last + 120 s]."""
    return last is None or not (last - 1.0 <= now <= last + SYNCOOKIE_VALID)
