"""Loss recovery of a Connection (Linux ``tcp_input.c``/``tcp_recovery.c``/``tcp_timer.c``):
fast retransmit on duplicate ACKs or the SACK scoreboard (RFC 5681, RFC 6675), NewReno partial
ACKs, lost retransmissions (RACK's rule, RFC 8985 6.2), undo of a spurious episode by
timestamps (Eifel, RFC 3522) or D-SACKs (RFC 2883, 3708) in Recovery, Open and after an RTO,
reordering estimate, and tail loss probes (RFC 8985 7). Where the profile has RACK (tcp_recovery bit 1)
a SACK connection's loss detection and recovery cwnd are rack.py's; this module keeps the
recovery state (entry, exit, undo) and the paths without RACK. A mixin of ``Connection``."""
from __future__ import annotations

from .. import mib
from .reasm import Scoreboard
from .rack import EVER
from .seq import HALF, MASK, seq_gt, seq_lt
from .state import CAN_SEND
from ..wire.segment import Segment


class RecoveryMixin:
    __slots__ = ()

    def _init_recovery(self, p) -> None:
        """The loss-recovery fields of a new connection (profile ``p``)."""
        self.dupacks = 0
        self.recover = 0
        self.in_recovery = False
        self.retx_nxt = 0
        self.sb = Scoreboard()
        self.reordering = p.get("net.ipv4.tcp_reordering", 3)
        self.undo_cwnd = self.undo_ssthresh = 0
        self.retx_tsval = None
        self.undo_hold = False       # this ACK: tcp_try_undo_partial held marking and resending
        self.retx_list = []          # [seq, end, snd_max then, time] of this recovery's retransmits
        self.tlp_high_seq = None     # snd_nxt when the outstanding probe went out
        self.tlp_retrans = False
        self.tlp_rto_at = None       # where the RTO stands while the probe timer is armed
        self.loss_high = None
        self._tlp_ok = p.family == "linux" and p["net.ipv4.tcp_early_retrans"] in (3, 4)
        self._rto_min = p["model.rto_min"]

    def _recovery_ack(self, seg, ack: int, now: float, acked_segs: int = 1) -> None:
        """New data acknowledged during fast recovery (``tcp_fastretrans_alert``, Recovery).

        A partial ACK (below ``recover``, high_seq) whose TSecr predates our first
        retransmission (``tcp_packet_delayed``) was a delayed original, not a repair
        (``tcp_try_undo_partial``): with retransmissions still out, recovery goes on but this
        ACK marks and resends nothing more (``undo_hold``; PRR still clocks new data out);
        with none out, the window cut is undone (TcpExtTCPPartialUndo, loss marks cleared)
        and recovery ends. Any other partial ACK: RACK carries on, or NewReno (RFC 6582 3.2
        step 3) resends a lost retransmission or the next hole. The ACK that reaches
        ``recover`` ends recovery (``tcp_try_undo_recovery``): the cut is undone if the ACK
        proves it spurious (TcpExtTCPFullUndo), else cwnd = ssthresh
        (``tcp_end_cwnd_reduction``). ``acked_segs``: segments this ACK took off the queue
        (what ``tcp_clean_rtx_queue`` took off retrans_out before this runs)."""
        delayed = self._spurious_recovery(seg)
        if seq_lt(ack, self.recover):
            if delayed:
                out = self.rack_retx if self.sack_ok and self._rack_ok else \
                    max(self.retrans_out - acked_segs, 0)
                if out:
                    self.undo_hold = True
                    return
                self.stack.counters[mib.TcpExtTCPPartialUndo] += 1
                if self.sack_ok and self._rack_ok:
                    self._rack_unmark_lost()
                self._undo_recovery()
            elif self._try_undo_dsack():
                pass                       # RACK may find a loss and recover again at once
            elif self.sack_ok and self._rack_ok:
                pass                       # _rack_after_ack: PRR and the retransmit queue
            elif not (self.sack_ok and self._lost_retransmit(now)):
                self._retransmit_next(now)
            return
        if self._may_undo(delayed):
            self.stack.counters[mib.TcpExtTCPFullUndo] += 1
            self._undo_recovery()
            return
        self.in_recovery = False
        self.cc.on_exit_recovery()
        self.dupacks = 0

    def _undo_recovery(self) -> None:
        """The reduction undone and Recovery left (``tcp_try_keep_open``)."""
        self.in_recovery = False
        self.cc.in_recovery = False
        self._undo_cwnd_reduction()
        self.dupacks = 0

    def _undo_cwnd_reduction(self) -> None:
        """``tcp_undo_cwnd_reduction``: cwnd and ssthresh back to at least what they were when
        the episode began (``tcp_reno_undo_cwnd``); no second undo in it (undo_marker and the
        first retransmission's TSval go)."""
        cc = self.cc
        cc.cwnd = max(cc.cwnd, self.undo_cwnd)
        cc.ssthresh = max(cc.ssthresh, self.undo_ssthresh)
        self.retx_tsval = None
        self.undo_marker = None

    def _init_undo(self) -> None:
        """``tcp_init_undo``: the episode may be undone from snd_una on; the retransmissions
        already out (a loss probe's too) must be D-SACKed first; none out: -1 until one goes
        (``tcp_retransmit_skb`` adds each)."""
        self.undo_marker = self.snd_una
        out = self.rack_retx if self.sack_ok and self._rack_ok else self.retrans_out
        if self.tlp_high_seq is not None and self.tlp_retrans:
            out += 1
        self.undo_retrans = out or -1

    def _may_undo(self, delayed: bool) -> bool:
        """``tcp_may_undo``: every retransmission D-SACKed, or the ACK proves an original
        arrived (``tcp_packet_delayed``, ``delayed``)."""
        return self.undo_marker is not None and (self.undo_retrans == 0 or delayed)

    def _try_undo_dsack(self) -> bool:
        """``tcp_try_undo_dsack``: the peer D-SACKed every retransmission of the episode (each
        duplicated data it already had): the reduction was spurious. Undone (lost marks stay),
        TcpExtTCPDSACKUndo; in Recovery, Recovery ends (``tcp_try_keep_open``)."""
        if self.undo_marker is None or self.undo_retrans:
            return False
        self.stack.counters[mib.TcpExtTCPDSACKUndo] += 1
        self._undo_recovery()
        return True

    def _try_undo_loss(self, seg: Segment) -> bool:
        """``tcp_try_undo_loss`` (an ACK that advances snd_una in the Loss state): the RTO was
        spurious (``tcp_may_undo``): the reduction undone, nothing marked lost any more, the
        retry count cleared (icsk_retransmits), TcpExtTCPLossUndo; a SACK connection is Open
        again (without SACK, Loss holds until high_seq is ACKed)."""
        if self.undo_marker is None or not self._may_undo(self._spurious_recovery(seg)):
            return False
        self.stack.counters[mib.TcpExtTCPLossUndo] += 1
        self._undo_cwnd_reduction()
        self.retransmits = 0
        if self.sack_ok and self._rack_ok:
            self._rack_unmark_lost()
        elif ((self.snd_nxt - self.snd_una) & MASK) < ((self.snd_max - self.snd_una) & MASK):
            self.snd_nxt = self.snd_max    # the go-back-N resend stops: nothing is lost
        if self.sack_ok:
            self.loss_high = None
        return True

    def _check_dsack(self, blocks, ack: int, prior_una: int) -> bool:
        """``tcp_check_dsack``: the first SACK block is a D-SACK (RFC 2883) when it starts
        below the ACK (TcpExtTCPDSACKRecv) or lies inside the second (TcpExtTCPDSACKOfoRecv).
        ``tcp_dsack_seen`` ignores it (TcpExtTCPDSACKIgnoredDubious) when empty, wider than
        the peer's largest window, or when more segments were D-SACKed than ever resent.
        One that counts takes its segments off undo_retrans: below prior snd_una by dumb
        counting (the data is gone), above it for pieces we retransmitted
        (``tcp_sacktag_one``)."""
        l0, r0 = blocks[0]
        c = self.stack.counters
        if seq_lt(l0, ack):
            c[mib.TcpExtTCPDSACKRecv] += 1
        elif len(blocks) > 1 and not (seq_gt(r0, blocks[1][1]) or seq_lt(l0, blocks[1][0])):
            c[mib.TcpExtTCPDSACKOfoRecv] += 1
        else:
            return False
        n = (r0 - l0) & MASK
        segs = -(-n // self.mss) if n > self.mss else 1
        if n == 0 or n >= HALF or n > self.max_window:
            c[mib.TcpExtTCPDSACKIgnoredDubious] += 1
            return False
        self.dsack_dups += segs
        if self.dsack_dups > self.total_retrans:
            c[mib.TcpExtTCPDSACKIgnoredDubious] += 1
            return False
        c[mib.TcpExtTCPDSACKRecvSegs] += segs
        if self.undo_marker is None or self.undo_retrans <= 0 or not seq_gt(r0, self.undo_marker):
            return True
        if not seq_gt(r0, prior_una):
            self.undo_retrans = max(self.undo_retrans - segs, 0)
        elif self.sack_ok and self._rack_ok:
            resent = sum(self._pcount(e) for e in self.rq if e[3] & EVER and
                         not seq_lt(e[0], l0) and not seq_gt(e[1], r0))
            self.undo_retrans = max(self.undo_retrans - resent, 0)
        return True

    def _on_dupack(self, now: float) -> None:
        """Fast retransmit on the third duplicate ACK, or when SACK shows the head lost
        (RFC 5681 3.2, RFC 6675 IsLost; Linux ``tcp_time_to_recover``); during recovery
        each further dupack may retransmit the next hole (RFC 6675 NextSeg). With RACK
        (``_rack_ok``) SACK connections leave loss detection to ``_rack_after_ack``."""
        if self.sack_ok and self._rack_ok:
            return
        if self.in_recovery:
            if self.sack_ok and not self._lost_retransmit(now):
                self._retransmit_next(now)
            return
        k = self.reordering
        lost = self.dupacks >= k or (self.sack_ok and self.sb.is_lost(self.snd_una, self.mss, k))
        if not lost:
            return
        self._enter_recovery(now)
        self._retransmit_next(now)

    def _enter_recovery(self, now: float) -> None:
        """``tcp_enter_recovery``: TcpExt{Sack,Reno}Recovery, recover = snd_max (high_seq), undo
        values, the window cut (``tcp_init_cwnd_reduction``, none if ECN's CWR already cut it;
        prior_cwnd and PRR's counters start), no loss probe while it lasts."""
        c = self.stack.counters
        c[mib.TcpExtTCPSackRecovery if self.sack_ok else mib.TcpExtTCPRenoRecovery] += 1
        self._init_undo()
        self.in_recovery = True
        self.recover = self.snd_max
        self.retx_list.clear()
        self.undo_cwnd, self.undo_ssthresh = self.cc.cwnd, self.cc.current_ssthresh()
        self.tlp_high_seq = None       # tcp_init_cwnd_reduction
        self.retx_tsval = self.stack.ts_now(self.ts_off) if self.ts_ok else None
        if self.cwr_high is None:      # tcp_enter_recovery: no second cut while in CWR
            self.prior_cwnd = self.cc.cwnd
            self.prr_delivered = self.prr_out = 0
            self.cc.on_enter_recovery(now, self._inflight_segs())
        self.cwr_high = None
        self.retx_nxt = self.snd_una
        self.rtt_seq = None
        if self.rtx_kind == "tlp":
            self._arm_rtx(now + self.rto.rto, "rtx")

    def _reordering_seen(self, dist_bytes: int) -> None:
        """``tcp_check_sack_reordering``: a segment was cumulatively ACKed below data already
        SACKed; unless we retransmitted it, it arrived out of order by that many segments.
        The loss threshold follows (``tp->reordering``, at most tcp_max_reordering 300)."""
        if self.in_recovery or self.retrans_out:
            return
        dist = (dist_bytes + self.mss - 1) // self.mss
        if dist > self.reordering:
            self.reordering = min(dist, 300)
            self.reord_seen += 1
            self.stack.counters[mib.TcpExtTCPSACKReorder] += 1

    def _rack_after_ack(self, newly: int, una_advanced: bool, now: float) -> None:
        """The RACK part of ``tcp_fastretrans_alert`` and ``tcp_cong_control`` for a SACK
        connection, after the ACK's SACK blocks and cumulative ACK were applied: mark losses
        (``tcp_rack_mark_lost``), enter recovery once something is lost
        (``tcp_time_to_recover``: lost_out), then PRR sets cwnd and the lost pieces go
        again (``tcp_xmit_recovery``). ``newly``: segments this ACK delivered. After an RTO
        (the Loss state) ``_rack_loss_ack``, or nothing where the RTO dropped the marks (the
        go-back-N resend stands in)."""
        hold, self.undo_hold = self.undo_hold, False
        if self.loss_high is not None:
            if self.lost_out or self.rack_retx:
                self._rack_loss_ack(newly, una_advanced, now)
            return
        lost = self.lost_out
        if hold:        # tcp_try_undo_partial held this ACK: PRR only, nothing marked or resent
            self._prr(newly, 0, una_advanced)
            return
        self._rack_mark_lost(now)
        if not self.in_recovery and self.lost_out:
            self._rack_enter_recovery(now)
        if self.in_recovery:
            self._prr(newly, max(self.lost_out - lost, 0), una_advanced)
            self._xmit_retransmit_queue(now)

    def _spurious_recovery(self, seg: Segment) -> bool:
        """Eifel detection with timestamps (RFC 3522, ``tcp_packet_delayed``): the ACK that
        advances snd_una echoes a TSval older than our first retransmission, so an original
        arrived and the "loss" was reordering: raise the reordering estimate
        (``tcp_check_sack_reordering``) and say so; ``_recovery_ack`` decides the undo."""
        ts = seg.options.ts
        if self.retx_tsval is None or ts is None or not ts[1] or not seq_lt(ts[1], self.retx_tsval):
            return False
        high = self.sb.highest_sacked()
        if high is not None:
            self.reordering = min(max(self.reordering,
                                      ((high - self.snd_una) & MASK) // self.mss + 1), 300)
        return True

    def _lost_retransmit(self, now: float) -> bool:
        """A retransmission that is itself lost (RACK's rule, RFC 8985 6.2, simplified; Linux
        counts TcpExtTCPLostRetransmit): the oldest retransmitted segment still neither ACKed
        nor SACKed is resent when data sent after it (new data above the snd_max of its
        sending, or a later retransmission) has been SACKed and it has been out for more than
        srtt plus a quarter (RACK's reordering window). Without this only the RTO repairs it.
        Returns True if it retransmitted."""
        una = self.snd_una
        # drop what the cumulative ACK covers; re-sent entries go to the end, so the list is
        # not in sequence order and ACKed entries may sit behind unACKed ones
        lst = self.retx_list = [e for e in self.retx_list if seq_gt(e[1], una)]
        high = self.sb.highest_sacked()
        if not lst or high is None:
            return False
        wait = (self.rto.srtt or 0.0) * 1.25
        for i, (seq, end, above, sent) in enumerate(lst):
            if seq_lt(seq, una):
                seq = una
            if self.sb.is_sacked(seq, end):
                continue
            if now - sent < wait or not (seq_gt(high, above) or
                                         any(self.sb.is_sacked(e[0], e[1]) for e in lst[i + 1:])):
                return False
            off = (seq - una) & MASK
            n = min((end - seq) & MASK, len(self.sndq) - off)
            if n <= 0:
                return False
            self.stack.counters[mib.TcpExtTCPLostRetransmit] += 1
            if not self._xmit(seq, off, n, now, retrans=True):
                return False               # dropped locally: still lost, tried again later
            del lst[i]
            lst.append([seq, end, self.snd_max, now])
            return True
        return False

    def _retransmit_next(self, now: float) -> None:
        """Retransmit the first not-yet-retransmitted, un-SACKed segment at or after snd_una
        and below ``recover`` (TcpExtTCPFastRetrans)."""
        seq = self.retx_nxt if seq_gt(self.retx_nxt, self.snd_una) else self.snd_una
        while seq_lt(seq, self.recover) and seq_lt(seq, self.snd_nxt):
            off = (seq - self.snd_una) & MASK
            n = min(self.mss, len(self.sndq) - off)
            if n <= 0:
                break
            end = (seq + n) & MASK
            if self.sack_ok and self.sb.is_sacked(seq, end):
                seq = end
                continue
            if self.sack_ok and self.sb.highest_sacked() is not None and \
                    not seq_lt(seq, self.sb.highest_sacked()) and seq != self.snd_una:
                break                      # nothing presumed lost above the highest SACK
            if not self._xmit(seq, off, n, now, retrans=True):
                return                     # dropped locally (tcp_xmit_retransmit_queue stops)
            self.stack.counters[mib.TcpExtTCPFastRetrans] += 1
            self.retx_list.append([seq, end, self.snd_max, now])
            self.retx_nxt = end
            if self.rtx_at is None or self.rtx_kind != "rtx":
                self._arm_rtx(now + self.rto.rto, "rtx")
            return

    def _schedule_loss_probe(self, now: float, advancing_rto: bool) -> bool:
        """``tcp_schedule_loss_probe`` (RFC 8985 7.2): with SACK, data in flight and no
        recovery or loss episode going on (CA_Open), arm the probe timeout instead of the RTO:
        PTO = 2 * srtt, plus TCP_RTO_MIN when a single segment is out (the peer may be
        delaying its ACK) or TCP_TIMEOUT_MIN (2 jiffies) otherwise; 1 s (TCP_TIMEOUT_INIT)
        without an RTT sample. Never later than the RTO: a full RTO from now after an ACK
        (``advancing_rto``), else the RTO that is already running. net.ipv4.tcp_early_retrans
        3 (the default) or 4 enables it; FreeBSD's default stack
        has no TLP. The 3.10-era PTO (max(2 srtt, 10 ms), 1.5 srtt + 200 ms for one
        segment) is not modelled."""
        if not self._tlp_ok or not self.sack_ok or self.in_recovery or \
                self.loss_high is not None or self.snd_una == self.snd_max:
            return False
        rto = self.rto
        srtt = rto.srtt
        if srtt:
            one = ((self.snd_max - self.snd_una) & MASK) <= self.mss
            pto = 2 * srtt + (self._rto_min if one else 0.002)
        else:
            pto = self.profile["model.rto_initial"]
        if advancing_rto or self.rtx_kind not in ("rtx", "tlp") or self.rtx_at is None:
            rto_at = now + rto.rto
        else:
            rto_at = self.tlp_rto_at if self.rtx_kind == "tlp" else self.rtx_at
        if rto_at > now:
            pto = min(pto, rto_at - now)
        self.tlp_rto_at = rto_at
        self._arm_rtx(now + pto, "tlp")
        return True

    def _send_loss_probe(self, now: float) -> None:
        """``tcp_send_loss_probe`` (RFC 8985 7.3): one probe per episode (none while
        tlp_high_seq is set). New data goes if the peer's window takes a segment (cwnd and
        Nagle ignored); otherwise the last segment sent is retransmitted (at most one MSS from
        its end, with the FIN if that was last) unless it starts beyond the peer's window. Counted TcpExtTCPLossProbes; the RTO then runs
        a full RTO from now. If no probe went, the RTO stays where it was."""
        if self.state not in CAN_SEND or self.snd_una == self.snd_max:
            return
        if self.tlp_high_seq is None:
            self.tlp_retrans = False
            off = (self.snd_nxt - self.snd_una) & MASK
            avail = len(self.sndq) - off
            sent = False
            if self.snd_nxt == self.snd_max and avail > 0 and not seq_gt(
                    (self.snd_nxt + min(avail, self.mss)) & MASK,
                    (self.snd_una + self.snd_wnd) & MASK):
                sent = self._push(now, wakeup=self.mss)   # False: dropped locally (rearm_timer)
            else:
                fin = self.fin_seq is not None and self.snd_max == (self.fin_seq + 1) & MASK
                data_end = (self.snd_max - fin) & MASK
                start = self.last_new_seq if seq_gt(self.last_new_seq, self.snd_una) \
                    else self.snd_una
                if ((data_end - start) & MASK) > self.mss:
                    start = (data_end - self.mss) & MASK
                n = (data_end - start) & MASK
                beyond = start != self.snd_una and not seq_lt(
                    start, (self.snd_una + self.snd_wnd) & MASK)   # __tcp_retransmit_skb
                if (n or fin) and not beyond:
                    self.tlp_retrans = sent = self._xmit(start, (start - self.snd_una) & MASK, n, now,
                                                         retrans=True, fin=fin, probe=True)
                    if not sent and start == self.snd_una:
                        # __tcp_transmit_skb stamped the head skb before the device dropped it:
                        # tcp_rearm_rto's delta (tcp_rto_delta_us) is a whole RTO again
                        self.tlp_rto_at = now + self.rto.rto
            if sent:
                self.tlp_high_seq = self.snd_max
                self.stack.counters[mib.TcpExtTCPLossProbes] += 1
                self._arm_rtx(now + self.rto.rto, "rtx")
                return
        self._arm_rtx(max(self.tlp_rto_at or now, now), "rtx")

    def _process_tlp_ack(self, seg: Segment, ack: int, advanced: bool, now: float) -> None:
        """``tcp_process_tlp_ack``: once the ACK reaches tlp_high_seq the episode ends. A probe
        of new data, a D-SACK (original and probe both arrived) or a pure duplicate ACK mean
        no loss; an ACK beyond tlp_high_seq after a retransmitted probe means the probe
        repaired a loss: reduce cwnd once (``tcp_init_cwnd_reduction`` to
        ``tcp_end_cwnd_reduction``), TcpExtTCPLossProbeRecovery."""
        high = self.tlp_high_seq
        if seq_lt(ack, high):
            return
        blocks = seg.options.sack_blocks
        dsack = bool(blocks) and not seq_gt(blocks[0][1], ack)
        if not self.tlp_retrans or dsack:
            self.tlp_high_seq = None
        elif seq_gt(ack, high):
            self.tlp_high_seq = None
            self.cc.on_enter_recovery(now, self._inflight_segs())
            self.cc.on_exit_recovery()
            self.stack.counters[mib.TcpExtTCPLossProbeRecovery] += 1
        elif not advanced and not seg.payload:
            self.tlp_high_seq = None
