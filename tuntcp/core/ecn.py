"""Classic ECN (RFC 3168) of a Connection, as Linux's ``tcp_ecn_*`` helpers do it: negotiation
on the handshake, ECT(0) on new data, the receiver's echo of a CE mark (ECE until the sender's
CWR) and the sender's once-per-window reduction (``tcp_enter_cwr``, the CWR state). A mixin
of ``Connection``. AccECN (tcp_ecn 3+) is not modelled."""
from __future__ import annotations

from .seq import seq_gt
from .consts import ACK_NOW
from ..wire.segment import ACK, CWR, ECE, SYN

ECT0 = 2        # INET_ECN_ECT_0
CE = 3          # INET_ECN_CE


class EcnMixin:
    __slots__ = ()

    def _init_ecn(self) -> None:
        self.ecn_ok = False          # TCP_ECN_OK
        self.ecn_demand = False      # TCP_ECN_DEMAND_CWR: echo ECE until the peer's CWR
        self.ecn_queue_cwr = False   # TCP_ECN_QUEUE_CWR: CWR on the next new data
        self.cwr_high = None         # snd_nxt when the CWR state began (tp->high_seq)

    def _ecn_syn_flags(self) -> int:
        """``tcp_ecn_send_syn``: with net.ipv4.tcp_ecn=1 the SYN asks for ECN with ECE|CWR;
        a retransmitted SYN goes without them (``tcp_ecn_clear_syn``, tcp_ecn_fallback=1),
        the socket still counting on ECN until the SYN-ACK says otherwise."""
        if not self.syn_retrans:
            self.ecn_ok = self.profile.get("net.ipv4.tcp_ecn", 0) == 1
            return ECE | CWR if self.ecn_ok else 0
        return 0

    def _ecn_rcv_syn(self, flags: int) -> None:
        """``tcp_ecn_rcv_synack`` (a SYN-ACK must carry ECE without CWR) and
        ``tcp_ecn_rcv_syn`` (a simultaneous-open SYN must carry both)."""
        if flags & ACK:
            ok = flags & ECE and not flags & CWR
        else:
            ok = flags & ECE and flags & CWR
        if not ok:
            self.ecn_ok = False

    def _ecn_out(self, flags: int, new_data: bool) -> tuple[int, int]:
        """``tcp_ecn_send``: new data carries ECT(0) (and CWR once after a reduction); ACKs and
        retransmissions go Not-ECT; every segment echoes ECE while the peer's CE is pending.
        Returns (flags, IP ECN bits)."""
        if not self.ecn_ok:
            return flags, 0
        tos = 0
        if new_data:
            tos = ECT0
            if self.ecn_queue_cwr:
                self.ecn_queue_cwr = False
                flags |= CWR
        if self.ecn_demand:
            flags |= ECE
        return flags, tos

    def _ecn_rcv_data(self, seg) -> None:
        """``tcp_ecn_accept_cwr`` (CWR from the sender ends the echo; with data, ACK at once)
        and ``tcp_ecn_check_ce`` (a CE mark starts the echo and quick ACKs)."""
        if not self.ecn_ok:
            return
        if seg.flags & CWR:
            self.ecn_demand = False
            if seg.payload:
                self._schedule_ack(ACK_NOW)
        if seg.tos & 3 == CE and not self.ecn_demand:
            self.ecn_demand = True
            self._enter_quickack()
            self._schedule_ack(ACK_NOW)

    def _ecn_echo(self, seg, now: float) -> None:
        """An ACK with ECE (``tcp_ecn_rcv_ecn_echo``, not on a SYN) outside loss recovery
        enters CWR once (``tcp_enter_cwr`` → ``tcp_init_cwnd_reduction``: ssthresh from the
        congestion control, CWR queued for the next new data). The reduction is applied at
        once, like recovery's (PRR's end point); it ends when snd_una reaches high_seq."""
        if not self.ecn_ok or not seg.flags & ECE or seg.flags & SYN:
            return
        self._enter_cwr(now)

    def _enter_cwr(self, now: float) -> None:
        """``tcp_enter_cwr`` (an ECN echo, or a local transmit failure in ``__tcp_transmit_skb``):
        below the CWR state (Open, Disorder) start one cwnd reduction (``tcp_init_cwnd_reduction``,
        which queues CWR for an ECN flow); in CWR, Recovery or Loss nothing changes."""
        if self.cwr_high is not None or self.in_recovery or self.loss_high is not None or self.cc is None:
            return
        self.cwr_high = self.snd_max
        self.ecn_queue_cwr = self.ecn_ok
        self.cc.on_enter_recovery(now, self._inflight_segs())

    def _ecn_cwr_done(self, ack: int) -> None:
        """``tcp_fastretrans_alert`` leaves CWR once data above high_seq is ACKed (so the CWR
        bit reached the peer): ``tcp_end_cwnd_reduction``, cwnd = ssthresh."""
        if self.cwr_high is not None and seq_gt(ack, self.cwr_high):
            self.cwr_high = None
            if not self.in_recovery:
                self.cc.on_exit_recovery()

