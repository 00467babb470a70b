"""Delayed ACKs (Linux ``icsk_ack`` and its users in ``tcp_input.c``/``tcp_output.c``/
``tcp_timer.c``): quick-ACK mode, ping-pong mode, ato, ``__tcp_ack_snd_check``,
``tcp_send_delayed_ack``, the delayed-ACK timer and ``tcp_cleanup_rbuf``."""
from __future__ import annotations

from .. import mib
from .seq import MASK
from .state import SYNCED
from .consts import ACK_NOW, ACK_PUSHED, ACK_PUSHED2, ACK_SCHED, ACK_TIMER, MAX_QUICKACKS


class DelackMixin:
    __slots__ = ()

    def in_pingpong(self) -> bool:
        """``inet_csk_in_pingpong_mode``: pingpong count reached tcp_pingpong_thresh."""
        return self.pingpong >= self._pp_thresh_v

    def _incr_quickack(self, max_quickacks: int) -> None:
        """``tcp_incr_quickack``: quick = rcv_wnd / (2 rcv_mss), 0 → 2, at most 16."""
        q = self.win.rcv_wnd // (2 * self.rcv_mss)
        if q == 0:
            q = 2
        q = min(q, max_quickacks)
        if q > self.quick:
            self.quick = q

    def _enter_quickack(self) -> None:
        """``tcp_enter_quickack_mode``: quick ACKs again, leave ping-pong, ato back to min."""
        self._incr_quickack(MAX_QUICKACKS)
        self.pingpong = 0
        self.ato = self._delack_min

    def _schedule_ack(self, extra: int) -> None:
        self.ack_pending |= ACK_SCHED | extra

    def _ack_snd_check(self, now: float) -> None:
        """``__tcp_ack_snd_check``: ACK now if more than one full segment arrived since the last
        window update and (the app has read everything or the window would advance), or in
        quick-ACK mode, or ACK_NOW is set, or out-of-order data is queued; else delay it."""
        rcv_mss = self.rcv_mss
        win = self.win
        unread = self.rcvq.n
        if self.ack_pending & ACK_NOW or (self.quick and self.pingpong < self._pp_thresh_v) \
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
        dmin = self._delack_min
        ato = self.ato
        if ato > dmin:
            max_ato = 0.5
            if self.in_pingpong() or self.ack_pending & ACK_PUSHED:
                max_ato = self._delack_max
            srtt = self.rto.srtt
            if srtt is not None:
                max_ato = min(max_ato, max(srtt, dmin))
            if max_ato < ato:
                ato = max_ato
        timeout = now + ato
        if self.ack_pending & ACK_TIMER and self.dack_at is not None:
            if self.dack_at <= now + ato / 4:
                self._send_ack(now)
                return
            if self.dack_at < timeout:
                timeout = self.dack_at
        self.ack_pending |= ACK_SCHED | ACK_TIMER
        self.dack_at = timeout
        self._wake(timeout)

    def _delack_timer(self, now: float) -> None:
        """``tcp_delack_timer_handler``: send the pending ACK (TcpExtDelayedACKs); a missed delayed
        ACK inflates ato, or in ping-pong mode leaves it."""
        if not self.ack_pending & ACK_TIMER:
            return
        self.ack_pending &= ~ACK_TIMER
        if self.ack_pending & ACK_SCHED and self.state in SYNCED:
            if not self.in_pingpong():
                self.ato = min(self.ato * 2, self.rto.rto)
            else:
                self.pingpong = 0
                self.ato = self._delack_min
            self.stack.counters[mib.TcpExtDelayedACKs] += 1
            self._send_ack(now)

    def _cleanup_rbuf(self, copied: int, now: float) -> None:
        """``tcp_cleanup_rbuf`` after the app read ``copied`` bytes: ACK a pending ACK if more than
        one rcv_mss is unacknowledged, or the read drained a pushed small segment (PUSHED outside
        ping-pong, PUSHED2 always); or if the window can now at least double."""
        win = self.win
        time_to_ack = False
        if self.ack_pending & ACK_SCHED:
            if ((self.rcv_nxt - win.rcv_wup) & MASK) > self.rcv_mss or (
                    copied > 0 and not self.rcvq and (
                        self.ack_pending & ACK_PUSHED2 or
                        (self.ack_pending & ACK_PUSHED and not self.in_pingpong()))):
                time_to_ack = True
        if copied > 0 and not time_to_ack and not self.fin_rcvd and \
                win.window_update_due(self.rcv_nxt, len(self.rcvq), self.rcv_mss):
            time_to_ack = True
        if time_to_ack and self.state in SYNCED:
            self._send_ack(now)
        self.stack.dirty.add(self)
