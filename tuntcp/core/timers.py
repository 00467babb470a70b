"""Connection timers (Linux ``tcp_timer.c``): one heap entry per connection, the retransmission
timer in its kinds (SYN, RTO, zero-window probe, loss probe), the delayed ACK and TIME-WAIT /
FIN-WAIT-2. A mixin of ``Connection``."""
from __future__ import annotations

from .. import mib
from .seq import MASK
from .state import CAN_SEND, CLOSED, CLOSING, FIN_WAIT_1, LAST_ACK, SYN_RECV, TIME_WAIT


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
        on 6.5+) retransmissions; the first linear_timeouts backoffs keep the RTO."""
        p = self.profile
        linear = p.get("net.ipv4.tcp_syn_linear_timeouts", 0)
        if self.retransmits >= p["net.ipv4.tcp_syn_retries"] + linear:
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
        backoff has elapsed (``retransmits_timed_out`` with ``tcp_model_timeout``); otherwise
        enter loss (cwnd 1), go back to snd_una and back the timer off."""
        if self.snd_una == self.snd_max:
            return
        p = self.profile
        c = self.stack.counters
        retries = p["net.ipv4.tcp_retries2"]
        if self.app_closed and self.state in (FIN_WAIT_1, CLOSING, LAST_ACK):
            retries = p.get("net.ipv4.tcp_orphan_retries", 0) or 8   # tcp_orphan_retries 0 means 8
        if self.retransmits and now - self.retrans_stamp >= model_timeout(
                retries, p["model.rto_min"], p["model.rto_max"]) - 1e-9:
            c[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done(CLOSED)
            return
        c[mib.TcpExtTCPTimeouts] += 1
        inflight = self._inflight_segs()
        self.cc.on_timeout(inflight, repeat=self.retransmits > 0)
        self.in_recovery = False
        self.dupacks = 0
        self.sb.clear()     # Linux keeps SACK marks on RTO only when it trusts them; we do not
        self.retx_list.clear()
        if self.retrans_stamp is None:
            # Linux keeps the head skb's first send time; the timer was armed one RTO ago
            self.retrans_stamp = now - self.rto.rto
        self.retransmits += 1
        self.rtt_seq = None            # Karn: no sample from retransmitted data
        self.tx_times = None
        self.tlp_high_seq = None
        self.loss_high = self.snd_max  # TCP_CA_Loss until this is ACKed: no loss probes
        self.cwr_high = None
        self._rack_reset()
        self.snd_nxt = self.snd_una    # go back N: mark everything lost (tcp_enter_loss)
        self.rto.backoff()
        self._push(now, head=True)
        self._arm_rtx(now + self.rto.rto, "rtx")

    def _probe_timer(self, now: float) -> None:
        """Zero-window probe (``tcp_probe_timer`` → ``tcp_send_probe0`` → ``tcp_write_wakeup``):
        send what fits in the window if it opened, else an old-sequence probe (TcpExtTCPWinProbe);
        back off; give up after tcp_retries2 unanswered probes."""
        if self.snd_una != self.snd_max or self.state not in CAN_SEND or not self._pending():
            return
        if self.probes_out >= self.profile["net.ipv4.tcp_retries2"]:
            self.stack.counters[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done(CLOSED)
            return
        self.probes_out += 1
        wnd_room = self.snd_wnd - ((self.snd_nxt - self.snd_una) & MASK)
        if wnd_room > 0 and self._pending():
            self._push(now, wakeup=min(wnd_room, self.mss))
        else:
            self.stack.counters[mib.TcpExtTCPWinProbe] += 1
            self._send_ack(now, seq=(self.snd_una - 1) & MASK)
        if self.snd_una == self.snd_max:
            self._arm_rtx(now + min(self.rto.rto * (1 << min(self.probes_out, 20)),
                                    self.rto.rto_max), "probe")
