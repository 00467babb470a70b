"""Delayed ACKs (Linux ``icsk_ack`` and its users in ``tcp_input.c``/``tcp_output.c``/
``tcp_timer.c``): quick-ACK mode, ping-pong mode, ato, ``__tcp_ack_snd_check``,
``tcp_send_delayed_ack``, the delayed-ACK timer and ``tcp_cleanup_rbuf``."""
from __future__ import annotations

from .. import mib
from .seq import MASK
from .state import SYNCED
from .consts import ACK_NOW, ACK_PUSHED, ACK_PUSHED2, ACK_SCHED, ACK_TIMER, MAX_QUICKACKS


class DelayedAck:
    """``icsk_ack`` (include/net/inet_connection_sock.h): the delayed-ACK state of one
    connection. ``pending`` holds the ICSK_ACK_* bits (consts.ACK_*), ``quick`` the quick ACKs
    left, ``pingpong`` the interactive-mode count, ``ato`` the ACK timeout (s), ``lrcvtime`` the
    last data arrival, ``last_seg_size`` for ``tcp_measure_rcv_mss``. The profile's
    delack_min/max and tcp_pingpong_thresh ride along (read per segment)."""

    __slots__ = ("pending", "quick", "pingpong", "ato", "lrcvtime", "last_seg_size",
                 "delack_min", "delack_max", "pp_thresh")

    def __init__(self, profile, now: float):
        self.pending = 0
        self.quick = 0
        self.pingpong = 0
        self.ato = 0.0
        self.lrcvtime = now
        self.last_seg_size = 0
        self.delack_min = profile["model.delack_min"]
        self.delack_max = profile["model.delack_max"]
        self.pp_thresh = profile.get("net.ipv4.tcp_pingpong_thresh", 1)

    def in_pingpong(self) -> bool:
        """``inet_csk_in_pingpong_mode``: pingpong count reached tcp_pingpong_thresh."""
        return self.pingpong >= self.pp_thresh

    def enter_pingpong(self) -> None:
        """``inet_csk_enter_pingpong_mode``."""
        if self.pingpong < self.pp_thresh:
            self.pingpong = self.pp_thresh

    def incr_quickack(self, rcv_wnd: int, rcv_mss: int, max_quickacks: int) -> None:
        """``tcp_incr_quickack``: quick = rcv_wnd / (2 rcv_mss), 0 → 2, at most max_quickacks."""
        q = rcv_wnd // (2 * rcv_mss)
        if q == 0:
            q = 2
        q = min(q, max_quickacks)
        if q > self.quick:
            self.quick = q

    def enter_quickack(self, rcv_wnd: int, rcv_mss: int) -> None:
        """``tcp_enter_quickack_mode``: quick ACKs again, leave ping-pong, ato back to min."""
        self.incr_quickack(rcv_wnd, rcv_mss, MAX_QUICKACKS)
        self.pingpong = 0
        self.ato = self.delack_min

    def ack_sent(self) -> None:
        """``tcp_event_ack_sent`` → ``inet_csk_clear_xmit_timer(ICSK_TIME_DACK)`` and
        ``tcp_dec_quickack_mode``: one quick ACK used (ato back to min when the last one
        goes), nothing pending."""
        if self.quick:
            self.quick -= 1
            if not self.quick:
                self.ato = self.delack_min
        self.pending = 0


class DelackMixin:
    __slots__ = ()

    def _incr_quickack(self, max_quickacks: int) -> None:
        """``tcp_incr_quickack`` with this connection's window and rcv_mss."""
        win = self.win
        self.dack.incr_quickack(win.rcv_wnd, win.rcv_mss, max_quickacks)

    def _enter_quickack(self) -> None:
        """``tcp_enter_quickack_mode`` with this connection's window and rcv_mss."""
        win = self.win
        self.dack.enter_quickack(win.rcv_wnd, win.rcv_mss)

    def _schedule_ack(self, extra: int) -> None:
        self.dack.pending |= ACK_SCHED | extra

    def _ack_snd_check(self, now: float) -> None:
        """``__tcp_ack_snd_check``: ACK now if more than one full segment arrived since the last
        window update and (the app has read everything or the window would advance), or in
        quick-ACK mode, or ACK_NOW is set, or out-of-order data is queued; else delay it."""
        win = self.win
        rcv_mss = win.rcv_mss
        unread = self.rcvq.n
        d = self.dack
        if d.pending & ACK_NOW or (d.quick and d.pingpong < d.pp_thresh) \
                or self.reasm.blocks or (
                    ((self.rcv_nxt - win.rcv_wup) & MASK) > rcv_mss and
                    (not unread or win.would_advance(self.rcv_nxt, unread, rcv_mss))):
            self._send_ack(now)
            return
        self._send_delayed_ack(now)

    def _send_delayed_ack(self, now: float) -> None:
        """``tcp_send_delayed_ack``: arm the timer for ato (bounded by 500 ms, by TCP_DELACK_MAX
        in ping-pong or after a pushed small segment, and by max(srtt, delack_min)); an earlier
        pending timer wins, and one about to expire sends the ACK now."""
        d = self.dack
        dmin = d.delack_min
        ato = d.ato
        if ato > dmin:
            max_ato = 0.5
            if d.in_pingpong() or d.pending & ACK_PUSHED:
                max_ato = d.delack_max
            srtt = self.rto.srtt
            if srtt is not None:
                max_ato = min(max_ato, max(srtt, dmin))
            if max_ato < ato:
                ato = max_ato
        timeout = now + ato
        if d.pending & ACK_TIMER and self.dack_at is not None:
            if self.dack_at <= now + ato / 4:
                self._send_ack(now)
                return
            if self.dack_at < timeout:
                timeout = self.dack_at
        d.pending |= ACK_SCHED | ACK_TIMER
        self.dack_at = timeout
        self._wake(timeout)

    def _delack_timer(self, now: float) -> None:
        """``tcp_delack_timer_handler``: send the pending ACK (TcpExtDelayedACKs); a missed delayed
        ACK inflates ato, or in ping-pong mode leaves it."""
        if not self.dack.pending & ACK_TIMER:
            return
        self.dack.pending &= ~ACK_TIMER
        if self.dack.pending & ACK_SCHED and self.state in SYNCED:
            if not self.dack.in_pingpong():
                self.dack.ato = min(self.dack.ato * 2, self.rto.rto)
            else:
                self.dack.pingpong = 0
                self.dack.ato = self.dack.delack_min
            self.stack.counters[mib.TcpExtDelayedACKs] += 1
            self._send_ack(now)

    def _cleanup_rbuf(self, copied: int, now: float) -> None:
        """``tcp_cleanup_rbuf`` after the app read ``copied`` bytes: ACK a pending ACK if more than
        one rcv_mss is unacknowledged, or the read drained a pushed small segment (PUSHED outside
        ping-pong, PUSHED2 always); or if the window can now at least double."""
        win = self.win
        time_to_ack = False
        if self.dack.pending & ACK_SCHED:
            if ((self.rcv_nxt - win.rcv_wup) & MASK) > self.win.rcv_mss or (
                    copied > 0 and not self.rcvq and (
                        self.dack.pending & ACK_PUSHED2 or
                        (self.dack.pending & ACK_PUSHED and not self.dack.in_pingpong()))):
                time_to_ack = True
        if copied > 0 and not time_to_ack and not self.fin_rcvd and \
                win.window_update_due(self.rcv_nxt, len(self.rcvq), self.win.rcv_mss):
            time_to_ack = True
        if time_to_ack and self.state in SYNCED:
            self._send_ack(now)
        self.stack.dirty.add(self)
