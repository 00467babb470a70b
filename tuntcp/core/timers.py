"""Connection timers (Linux ``tcp_timer.c``): one heap entry per connection, the retransmission
timer in its kinds (SYN, RTO, zero-window probe, loss probe), the delayed ACK and TIME-WAIT /
FIN-WAIT-2. A mixin of ``Connection``."""
from __future__ import annotations

from .. import mib
from .seq import MASK, seq_gt
from .state import CAN_SEND, CLOSED, CLOSING, FIN_WAIT_1, LAST_ACK, SYN_RECV, TIME_WAIT

# TCP_RESOURCE_PROBE_INTERVAL (HZ/2): the retry after a send the local device queue refused
RESOURCE_PROBE_INTERVAL = 0.5


def model_timeout(boundary: int, rto_base: float, rto_max: float) -> float:
    """``tcp_model_timeout``: how long ``boundary`` doubling retransmissions starting at
    ``rto_base`` take (capped at rto_max). Used by ``retransmits_timed_out`` for tcp_retries2."""
    thresh = 0
    while rto_base * (2 << thresh) <= rto_max:     # ilog2(rto_max / rto_base)
        thresh += 1
    if boundary <= thresh:
        return ((2 << boundary) - 1) * rto_base
    return ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max


class TimerMixin:
    __slots__ = ()

    def _wake(self, when: float) -> None:
        if self.deadline is None or when < self.deadline:
            self.stack.schedule(self, when)

    def _arm_rtx(self, when: float, kind: str) -> None:
        self.rtx_at = when
        self.rtx_kind = kind
        self._wake(when)

    def _arm_tw(self, when: float) -> None:
        self.tw_at = when
        self._wake(when)

    def on_timer(self, now: float) -> None:
        self.stack.now = now
        if self.dack_at is not None and self.dack_at <= now:
            self.dack_at = None
            self._delack_timer(now)
        if self.rtx_at is not None and self.rtx_at <= now:
            self.rtx_at = None
            kind = self.rtx_kind
            if kind == "syn":
                self._syn_timer(now)
            elif kind == "probe":
                self._probe_timer(now)
            elif kind == "tlp":
                self._send_loss_probe(now)
            elif kind == "reo":
                self._rack_reo_timeout(now)
            else:
                self._rtx_timer(now)
        if self.tw_at is not None and self.tw_at <= now:
            self.tw_at = None
            if self.state is TIME_WAIT:
                self.stack.counters[mib.TcpExtTW] += 1
            self._done(CLOSED)
            return
        nxt = min((t for t in (self.dack_at, self.rtx_at, self.tw_at) if t is not None), default=None)
        if nxt is not None and self.state is not CLOSED:
            self._wake(nxt)

    def _syn_timer(self, now: float) -> None:
        """SYN (or simultaneous-open SYN-ACK) retransmission (``tcp_retransmit_timer`` in
        SYN_SENT, ``tcp_write_timeout``): give up after tcp_syn_retries (+ tcp_syn_linear_timeouts
        on 6.5+) retransmissions, or with TCP_USER_TIMEOUT once that long has passed since the
        first SYN (``retransmits_timed_out`` from retrans_stamp, which ``tcp_connect`` sets);
        the first linear_timeouts backoffs keep the RTO."""
        p = self.profile
        linear = p.get("net.ipv4.tcp_syn_linear_timeouts", 0)
        if self.retransmits >= p["net.ipv4.tcp_syn_retries"] + linear or (
                self.user_timeout and self.retransmits and
                now - self.rtt_time >= self.user_timeout - 1e-9):   # since the first SYN
            self.error = "timeout"
            self._done(CLOSED)
            return
        self.syn_retrans = True
        self.stack.counters[mib.TcpExtTCPTimeouts] += 1
        self.stack.counters[mib.TcpRetransSegs] += 1
        self.stack.counters[mib.TcpExtTCPSynRetrans] += 1
        self.total_retrans += 1
        self._send_syn(now, ack=self.state is SYN_RECV)
        self.retransmits += 1
        if self.retransmits > linear:
            self.rto.backoff()
        self._arm_rtx(now + self.rto.rto, "syn")

    def _rtx_timer(self, now: float) -> None:
        """RTO (``tcp_retransmit_timer``, RFC 6298 5.4-5.6): give up when tcp_retries2 worth of
        backoff has elapsed (``retransmits_timed_out`` with ``tcp_model_timeout``), or with
        TCP_USER_TIMEOUT set, when that long has passed since retrans_stamp (it replaces the
        modelled timeout, orphan retries included); otherwise enter loss (cwnd 1), go back to
        snd_una and back the timer off, the next expiry no later than the user timeout's end
        (``tcp_clamp_rto_to_user_timeout``)."""
        if self.snd_una == self.snd_max:
            return
        p = self.profile
        c = self.stack.counters
        retries = p["net.ipv4.tcp_retries2"]
        if self.app_closed and self.state in (FIN_WAIT_1, CLOSING, LAST_ACK):
            retries = p.get("net.ipv4.tcp_orphan_retries", 0) or 8   # tcp_orphan_retries 0 means 8
        timeout = self.user_timeout or model_timeout(retries, p["model.rto_min"], p["model.rto_max"])
        if self.retransmits and now - self.retrans_stamp >= timeout - 1e-9:
            c[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done(CLOSED)
            return
        c[mib.TcpExtTCPTimeouts] += 1
        inflight = self._inflight_segs()
        # tcp_enter_loss: an episode starts (undo from here) unless this RTO falls inside one
        # (Recovery or Loss with high_seq not yet ACKed, a Loss retry, CWR)
        high = self.recover if self.in_recovery else self.loss_high if self.loss_high is not None \
            else self.cwr_high
        if high is None or not seq_gt(high, self.snd_una) or (self.loss_high is not None and
                                                               not self.retransmits):
            self.undo_cwnd, self.undo_ssthresh = self.cc.cwnd, self.cc.current_ssthresh()
            self._init_undo()
            self.retx_tsval = self.stack.ts_now(self.ts_off) if self.ts_ok else None
        self.cc.on_timeout(inflight, repeat=self.retransmits > 0)
        self.in_recovery = False
        self.dupacks = 0
        self.retx_list.clear()
        if self.retrans_stamp is None:
            # tcp_retransmit_skb stamps it after __tcp_transmit_skb has re-stamped the skb:
            # the first retransmission's time (measured on 6.18 through TCP_USER_TIMEOUT)
            self.retrans_stamp = now
        self.retransmits += 1
        self.rtt_seq = None            # Karn: no sample from retransmitted data
        self.tx_times = None
        self.tlp_high_seq = None
        self.loss_high = self.snd_max  # TCP_CA_Loss until this is ACKed: no loss probes
        self.cwr_high = None
        if self._rack_ok and self.sack_ok and self._rack_timeout_mark_lost(now):
            # tcp_enter_loss with RACK: SACKed data stays, cwnd = packets in flight + 1, and
            # the head goes again (tcp_retransmit_timer); later ACKs send the rest
            self.cc.cwnd = self._inflight_segs() + 1
            sent = self._rack_rto_head(now)
        else:
            # without RACK's pieces (or a reneging receiver): forget SACK, go back N
            self.sb.clear()
            self._rack_reset()
            self.snd_nxt = self.snd_una
            sent = self._push(now, head=True)
        if not sent:
            # the head's retransmission failed locally: retry in TCP_RESOURCE_PROBE_INTERVAL,
            # no backoff, no user-timeout clamp (tcp_retransmit_timer)
            self._arm_rtx(now + RESOURCE_PROBE_INTERVAL, "rtx")
            return
        self.rto.backoff()
        when = self.rto.rto
        if self.user_timeout:
            left = self.user_timeout - (now - self.retrans_stamp)
            when = min(when, left) if left > 0 else 0.001     # passed: fire at once (1 jiffy)
        self._arm_rtx(now + when, "rtx")

    def _probe_timer(self, now: float) -> None:
        """Zero-window probe (``tcp_probe_timer`` → ``tcp_send_probe0`` → ``tcp_write_wakeup``):
        send what fits in the window if it opened, else an old-sequence probe (TcpExtTCPWinProbe);
        back off (icsk_backoff, up to tcp_retries2); give up after tcp_retries2 unanswered probes
        (every ACK clears icsk_probes_out: a peer that answers is probed forever, RFC 1122
        4.2.2.17), or with TCP_USER_TIMEOUT once
        that long has passed since the first probe (icsk_probes_tstamp, cleared when the window
        opens: 5.11+, 9d9b1ee0b2d1), the next probe no later than then
        (``tcp_clamp_probe0_to_user_timeout``, at least TCP_TIMEOUT_MIN)."""
        if self.snd_una != self.snd_max or self.state not in CAN_SEND or not self._pending():
            self.probes_out = 0
            self.probes_tstamp = None
            return
        if self.probes_tstamp is None:
            self.probes_tstamp = now
        elif self.user_timeout and now - self.probes_tstamp >= self.user_timeout - 1e-9:
            self.stack.counters[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done(CLOSED)
            return
        if self.probes_out >= self.profile["net.ipv4.tcp_retries2"]:
            self.stack.counters[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done(CLOSED)
            return
        self.probes_out += 1
        wnd_room = self.snd_wnd - ((self.snd_nxt - self.snd_una) & MASK)
        if wnd_room > 0 and self._pending():
            ok = self._push(now, wakeup=min(wnd_room, self.mss), probe=True)
            if self.snd_una != self.snd_max:
                self.probes_tstamp = None   # tcp_send_probe0: data out, probing is over
        else:
            self.stack.counters[mib.TcpExtTCPWinProbe] += 1
            ok = not self._send_ack(now, seq=(self.snd_una - 1) & MASK)
        if self.snd_una == self.snd_max:
            # tcp_send_probe0: back off (icsk_backoff, at most tcp_retries2) after a probe that
            # left; one the device dropped retries in TCP_RESOURCE_PROBE_INTERVAL unbacked
            if ok and self.rto.backoffs < self.profile["net.ipv4.tcp_retries2"]:
                self.rto.backoff()
            self._arm_rtx(now + self._probe0_when(now, None if ok else RESOURCE_PROBE_INTERVAL), "probe")

    def _probe0_when(self, now: float, when: float | None = None) -> float:
        """``tcp_probe0_when`` (the RTO backed off by icsk_backoff, at most rto_max) or the given
        interval, cut to what is left of TCP_USER_TIMEOUT (``tcp_clamp_probe0_to_user_timeout``;
        TCP_TIMEOUT_MIN 2 ms)."""
        if when is None:
            when = self.rto.rto
        if self.user_timeout and self.probes_tstamp is not None:
            left = self.user_timeout - max(now - self.probes_tstamp, 0.0)
            when = min(max(left, 0.002), when)
        return when
