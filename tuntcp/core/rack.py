"""RACK loss detection (RFC 8985 6; Linux ``tcp_recovery.c``) and Proportional Rate Reduction
(RFC 6937; ``tcp_cwnd_reduction``) for SACK connections of profiles with net.ipv4.tcp_recovery
bit 1 (Linux 4.4+). A mixin of ``Connection``.

The retransmission queue is kept as pieces ``[seq, end, sent, flags, origin]`` in sequence order, one
per transmission unit like Linux's skbs: a (TSO) packet when sent, cut where a SACK block or a
retransmission starts or ends (``tcp_fragment``). ``sent`` is the last (re)transmission time
(``skb_mstamp``); flags are LOST, RETRANS (retransmitted, not since lost: TCPCB_SACKED_RETRANS),
EVER (TCPCB_EVER_RETRANS) and SACKED; ``origin`` is where the first transmission of
the piece started (its MSS grid, kept through cuts and partial ACKs). From them: lost_out, retrans_out and sacked_out in
segments, so packets in flight are packets_out - sacked_out - lost_out + retrans_out
(``tcp_packets_in_flight``) while any piece is marked lost.

Not modelled: the time-ordered list (pieces are scanned in sequence order, which finds the
same pieces), reo_wnd_steps growth on D-SACK (steps stay 1), TCP_RACK_STATIC_REO_WND and
TCP_RACK_NO_DUPTHRESH, and RACK during the Loss state after an RTO (the go-back-N resend
of ``_rtx_timer`` covers it)."""
from __future__ import annotations

from collections import deque

from .. import mib
from .seq import HALF, MASK, seq_gt, seq_lt

LOST, RETRANS, EVER, SACKED = 1, 2, 4, 8
TIMEOUT_MIN = 0.002          # TCP_TIMEOUT_MIN: 2 jiffies at HZ=1000


class RackMixin:
    __slots__ = ()

    def _init_rack(self, p) -> None:
        self.rq = deque()            # a deque: the cumulative ACK pops from the left
        self.lost_out = self.rack_retx = self.sacked_out = 0
        self.rack_t = None           # rack.mstamp / rack.end_seq: the most recently sent
        self.rack_end = 0            # piece known delivered
        self.rack_rtt = 0.0          # rack.rtt_us
        self.rack_adv = False        # rack.advanced
        self.reord_seen = 0
        self.prior_cwnd = self.prr_delivered = self.prr_out = 0
        self._rack_ok = p.family == "linux" and bool(p.get("net.ipv4.tcp_recovery", 0) & 1)

    def _pcount(self, e) -> int:
        mss = self.mss
        return (((e[1] - e[0]) & MASK) + mss - 1) // mss or 1

    def _rack_recount(self) -> None:
        lost = retx = sacked = 0
        pc = self._pcount
        for e in self.rq:
            f = e[3]
            if f & SACKED:
                sacked += pc(e)
            else:
                if f & LOST:
                    lost += pc(e)
                if f & RETRANS:
                    retx += pc(e)
        self.lost_out, self.rack_retx, self.sacked_out = lost, retx, sacked

    def _rq_cut(self, at: int, align: int = 0) -> None:
        """``tcp_fragment``: the piece holding ``at`` strictly inside is cut there. For a SACK
        edge (``tcp_match_skb_to_sack``) the cut is rounded to whole MSS of the piece's first
        transmission: up for a left edge (``align`` 1), down for a right edge (-1), none if
        that leaves nothing on one side (a SACK of part of an MSS marks nothing)."""
        rq = self.rq
        for i, e in enumerate(rq):
            if seq_lt(e[0], at) and seq_lt(at, e[1]):
                if align:
                    mss = self.mss
                    off = (at - e[4]) & MASK
                    off = -(-off // mss) * mss if align > 0 else off // mss * mss
                    at = (e[4] + off) & MASK
                    if not (seq_lt(e[0], at) and seq_lt(at, e[1])):
                        return
                rq.insert(i + 1, [at, e[1], e[2], e[3], e[4]])
                e[1] = at
                return
            if not seq_lt(e[0], at):
                return

    def _rq_sent(self, seq: int, end: int, now: float, retrans: bool) -> None:
        """Record a transmission of [seq, end): new data appends a piece; a retransmission
        marks the pieces it covers RETRANS|EVER (``__tcp_retransmit_skb``) and restamps them."""
        rq = self.rq
        if not retrans:
            if not rq or not seq_lt(seq, rq[-1][1]):
                rq.append([seq, end, now, 0, seq])
                return
        self._rq_cut(seq)
        self._rq_cut(end)
        for e in rq:
            if not seq_lt(e[0], seq) and not seq_gt(e[1], end):
                e[2] = now
                # after an RTO that dropped the marks (go-back-N) only EVER: nothing is LOST
                e[3] |= RETRANS | EVER if self.loss_high is None or e[3] & LOST else EVER
            elif not seq_lt(e[0], end):
                break
        self._rack_recount()

    def _rack_advance(self, e, now: float) -> None:
        """``tcp_rack_advance``: a piece was delivered (SACKed or ACKed). A retransmitted one
        whose RTT is below min_rtt is ignored (the original may have been delivered)."""
        rtt = now - e[2]
        if e[3] & (RETRANS | EVER) and rtt < (self.rto.min_rtt or 0.0):
            return
        self.rack_adv = True
        self.rack_rtt = rtt
        if self.rack_t is None or e[2] > self.rack_t or (e[2] == self.rack_t and seq_gt(e[1], self.rack_end)):
            self.rack_t, self.rack_end = e[2], e[1]

    def _rack_on_sack(self, blocks, una: int, snd_max: int, prior_fack: int, now: float) -> int:
        """``tcp_sacktag_write_queue`` on the pieces: cut them at the block edges, mark the
        newly SACKed ones, advance RACK, and find reordering (``tcp_check_sack_reordering``:
        a never-retransmitted piece SACKed below the previous highest SACK). Returns the
        newly SACKed segments."""
        for l, r in blocks:
            if seq_lt(l, r) and seq_gt(l, una) and not seq_gt(r, snd_max):
                self._rq_cut(l, 1)
                self._rq_cut(r, -1)
        newly = 0
        low = None
        sb = self.sb
        for e in self.rq:
            if e[3] & SACKED or not sb.is_sacked(e[0], e[1]):
                continue
            e[3] = (e[3] | SACKED) & ~(LOST | RETRANS)
            newly += self._pcount(e)
            self._rack_advance(e, now)
            if not e[3] & EVER and seq_lt(e[0], prior_fack) and (low is None or seq_lt(e[0], low)):
                low = e[0]
        if low is not None:
            self._sack_reordering(low)
        self._rack_recount()
        return newly

    def _sack_reordering(self, low: int) -> None:
        """``tcp_check_sack_reordering``: data at ``low`` arrived after data up to the highest
        SACK: tp->reordering grows to that distance in segments (at most 300), reord_seen++."""
        fack = self.sb.highest_sacked()
        if fack is None or not seq_lt(low, fack):
            return
        mss = self.mss
        metric = (fack - low) & MASK
        if metric > self.reordering * mss:
            self.reordering = min((metric + mss - 1) // mss, 300)
        self.reord_seen += 1
        self.stack.counters[mib.TcpExtTCPSACKReorder] += 1

    def _rack_on_ack(self, ack: int, prior_fack: int, now: float) -> int:
        """``tcp_clean_rtx_queue`` on the pieces: drop what ``ack`` covers (RACK advances on
        each one not SACKed before, and on a partly covered one that lost a whole segment),
        trim that one. A never-retransmitted piece ACKed below the highest SACK seen before
        this ACK arrived out of order (``tcp_check_sack_reordering``). Returns the segments
        newly delivered by the cumulative ACK."""
        rq = self.rq
        mss = self.mss
        newly = 0
        low = None
        flagged = False
        last = None                  # never-retransmitted pieces go in order: the last one
        while rq and ((ack - rq[0][1]) & MASK) < HALF:      # end <= ack
            e = rq.popleft()
            f = e[3]
            if not f:
                newly += (((e[1] - e[0]) & MASK) + mss - 1) // mss or 1
                last = e
                if low is None:
                    low = e[0]
                continue
            flagged = True
            if not f & SACKED:
                newly += self._pcount(e)
                if last is not None:
                    self._rack_advance(last, now)
                    last = None
                self._rack_advance(e, now)
                if low is None and not f & EVER:
                    low = e[0]
        if last is not None:         # _rack_advance, inlined for the per-ACK path
            t = last[2]
            self.rack_adv = True
            self.rack_rtt = now - t
            rt = self.rack_t
            if rt is None or t > rt or (t == rt and seq_gt(last[1], self.rack_end)):
                self.rack_t, self.rack_end = t, last[1]
        if rq and seq_lt(rq[0][0], ack):
            e = rq[0]
            before = self._pcount(e)
            start = e[0]
            e[0] = ack
            flagged = flagged or bool(e[3])
            if not e[3] & SACKED and before > self._pcount(e):
                newly += before - self._pcount(e)   # tcp_tso_acked: whole MSS trimmed off
                self._rack_advance(e, now)
                if low is None and not e[3] & EVER:
                    low = start
        if low is not None and seq_lt(low, prior_fack):
            self._sack_reordering(low)
        if flagged:                      # the usual ACK covers unmarked pieces: counts stay
            self._rack_recount()
        return newly

    def _rack_old_ack(self, blocks, now: float) -> None:
        """``tcp_ack``'s old_ack: an ACK below snd_una still carries SACK information: tag it,
        let RACK mark losses (``tcp_fastretrans_alert``) and resend lost pieces in the room
        cwnd already has (``tcp_xmit_recovery``; no cwnd change on such an ACK)."""
        una, snd_max = self.snd_una, self.snd_max
        prior_fack = self.sb.highest_sacked() or una
        self.sb.on_sack(blocks, una, snd_max)
        self._rack_on_sack(blocks, una, snd_max, prior_fack, now)
        if self.loss_high is not None:
            return
        self._rack_mark_lost(now)
        if not self.in_recovery and self.lost_out:
            self._enter_recovery(now)
        if self.in_recovery:
            self._xmit_retransmit_queue(now)

    def _rack_reo_wnd(self) -> float:
        """``tcp_rack_reo_wnd``: no reordering seen yet, 0 in recovery or once sacked_out reaches
        the dupthresh (tp->reordering); else min_rtt / 4, at most srtt."""
        if not self.reord_seen:
            if self.in_recovery or self.loss_high is not None:
                return 0.0
            if self.sacked_out >= self.reordering:
                return 0.0
        return min((self.rto.min_rtt or 0.0) / 4, self.rto.srtt or 0.0)

    def _rack_detect_loss(self, now: float) -> float:
        """``tcp_rack_detect_loss``: a piece sent before the most recently sent delivered one is
        lost once it has been out longer than rack.rtt + reo_wnd (a lost retransmission is
        counted TcpExtTCPLostRetransmit); returns how long the youngest candidate still has
        (0: none)."""
        if self.rack_t is None:
            return 0.0
        reo = self._rack_reo_wnd()
        wait = 0.0
        rt, rend = self.rack_t, self.rack_end
        marked = False
        for e in self.rq:
            f = e[3]
            if f & SACKED or (f & LOST and not f & RETRANS):
                continue
            if not (rt > e[2] or (rt == e[2] and seq_gt(rend, e[1]))):
                continue
            remaining = self.rack_rtt + reo - (now - e[2])
            if remaining <= 1e-9:
                if f & RETRANS:
                    self.stack.counters[mib.TcpExtTCPLostRetransmit] += 1
                e[3] = (f | LOST) & ~RETRANS
                marked = True
            elif remaining > wait:
                wait = remaining
        if marked:
            self._rack_recount()
        return wait

    def _rack_mark_lost(self, now: float) -> None:
        """``tcp_rack_mark_lost`` after an ACK that delivered something: detect losses and arm
        the reordering timer for the youngest candidate (in whole ms, plus TCP_TIMEOUT_MIN)."""
        if not self.rack_adv:
            return
        self.rack_adv = False
        wait = self._rack_detect_loss(now)
        if wait:
            ms = -(-round(wait * 1e6) // 1000)
            self._arm_rtx(now + ms / 1000 + TIMEOUT_MIN, "reo")

    def _rack_reo_timeout(self, now: float) -> None:
        """``tcp_rack_reo_timeout``: the reordering timer fired: mark what is now lost; if that
        changed the packets in flight, enter recovery (one PRR step for one delivered
        packet) and retransmit; then the RTO runs again."""
        before = self._inflight_segs()
        lost = self.lost_out
        self._rack_detect_loss(now)
        if before != self._inflight_segs():
            if not self.in_recovery:
                self._rack_enter_recovery(now)
                self._prr(1, self.lost_out - lost, False)
            self._xmit_retransmit_queue(now)
        if self.rtx_at is None or self.rtx_kind != "rtx":
            self._arm_rtx(now + self.rto.rto, "rtx")

    def _prr(self, newly: int, newly_lost: int, una_advanced: bool) -> None:
        """``tcp_cwnd_reduction`` (PRR, RFC 6937): while packets in flight exceed ssthresh,
        send ssthresh/prior_cwnd of what was delivered; below it, slow-start back up to
        ssthresh but no faster than delivery (+1 when snd_una advanced and nothing new was
        lost); at least one retransmission on entering. cwnd = in flight + that."""
        if newly <= 0 or not self.prior_cwnd:
            return
        cc = self.cc
        inflight = self._inflight_segs()
        ss = cc.ssthresh
        delta = ss - inflight
        self.prr_delivered += newly
        if delta < 0:
            sndcnt = (ss * self.prr_delivered + self.prior_cwnd - 1) // self.prior_cwnd - self.prr_out
        else:
            sndcnt = max(self.prr_delivered - self.prr_out, newly)
            if una_advanced and not newly_lost:
                sndcnt += 1
            sndcnt = min(delta, sndcnt)
        sndcnt = max(sndcnt, 0 if self.prr_out else 1)
        cc.cwnd = inflight + sndcnt

    def _xmit_retransmit_queue(self, now: float) -> None:
        """``tcp_xmit_retransmit_queue``: resend lost, not yet retransmitted pieces in sequence
        order while cwnd has room, each cut to that room and to its skb (TcpExtTCPFastRetrans, prr_out);
        resending the head restarts the RTO. Where the encoder does not show GSO packets
        whole (per-MSS output, VnetEncoder) retransmissions go one MSS of the first
        transmission's grid at a time, as the rest of the core sends them."""
        cc = self.cc
        una = self.snd_una
        tso = self.stack.encoder.gso_exact
        rq = self.rq
        i = -1
        while i + 1 < len(rq):       # by index: sending cuts the piece (the rest comes next)
            i += 1
            e = rq[i]
            if self.rack_retx >= self.lost_out:
                break
            room = cc.cwnd - self._inflight_segs()
            if room <= 0:
                break
            f = e[3]
            if not f & LOST or f & (RETRANS | SACKED):
                continue
            seq = e[0]
            off = (seq - una) & MASK
            mss = self.mss
            cap = room * mss if tso else mss - ((seq - e[4]) & MASK) % mss   # per MSS: on the grid
            skbs = self.skbs
            if tso and skbs:            # tcp_retransmit_skb: one skb (or its head) at a time
                k = self._skb_index(seq)
                if k < len(skbs):
                    cap = min(cap, (skbs[k][0] - seq) & MASK)
            n = min((e[1] - seq) & MASK, cap, len(self.sndq) - off)
            if n <= 0:
                break
            head = seq == una
            p = -(-n // self.mss)
            if not self._xmit(seq, off, n, now, retrans=True):
                break                      # tcp_xmit_retransmit_queue: a failed retransmit stops it
            # the Loss state's retransmissions are slow start's (TCPSlowStartRetrans)
            self.stack.counters[mib.TcpExtTCPSlowStartRetrans if self.loss_high is not None
                                else mib.TcpExtTCPFastRetrans] += p
            self.prr_out += p
            if head and self.rtx_kind != "reo":
                self._arm_rtx(now + self.rto.rto, "rtx")

    def _rack_timeout_mark_lost(self, now: float) -> bool:
        """``tcp_timeout_mark_lost`` (RTO, ``tcp_enter_loss``): the SACK marks stay; every other
        piece is marked lost (``tcp_mark_skb_lost``: a lost retransmission drops RETRANS and
        counts TcpExtTCPLostRetransmit), except, past the head, one sent less than rack.rtt
        ago (``tcp_rack_skb_timeout`` > 0). False where the marks cannot be kept: a SACKed head
        (the receiver reneged: everything goes again) or no data at snd_una (a lone FIN)."""
        rq = self.rq
        if not rq or rq[0][0] != self.snd_una or rq[0][3] & SACKED:
            return False
        head = True
        for e in rq:
            f = e[3]
            if f & SACKED:
                continue
            if not head and self.rack_rtt - (now - e[2]) > 0:
                continue
            head = False
            if f & LOST and f & RETRANS:
                self.stack.counters[mib.TcpExtTCPLostRetransmit] += self._pcount(e)
            e[3] = (f | LOST) & ~RETRANS
        self._rack_recount()
        self.rack_adv = False
        return True

    def _rack_rto_head(self, now: float) -> bool:
        """``tcp_retransmit_timer``: the head goes again, one MSS from snd_una whatever cwnd
        says (``tcp_retransmit_skb`` with segs 1, cut by ``tcp_fragment``; the skb after a
        partial ACK starts at snd_una). False when the local send failed."""
        n = min(self.mss, len(self.sndq))
        return self._xmit(self.snd_una, 0, n, now, retrans=True) if n > 0 else True

    def _rack_loss_ack(self, newly: int, una_advanced: bool, now: float) -> None:
        """``tcp_fastretrans_alert`` in the Loss state (after an RTO that kept the SACK marks):
        RACK marks losses (``tcp_identify_packet_loss``); a retransmission found lost again
        (FLAG_LOST_RETRANS) moves to Recovery (``tcp_enter_recovery``, PRR); then the lost
        pieces go in the room cwnd has (REXMIT_LOST, ``tcp_xmit_retransmit_queue``). cwnd
        itself grows by slow start meanwhile (``tcp_cong_control`` outside a reduction)."""
        retx, lost = self.rack_retx, self.lost_out
        self._rack_mark_lost(now)
        if self.rack_retx < retx:
            self._rack_enter_recovery(now)
            self._prr(newly, max(self.lost_out - lost, 0), una_advanced)
        self._xmit_retransmit_queue(now)

    def _rack_enter_recovery(self, now: float) -> None:
        """``tcp_enter_recovery`` from RACK (an ACK or the reordering timer), also out of the
        Loss state, which then ends (its high_seq becomes recovery's)."""
        self.loss_high = None
        self._enter_recovery(now)

    def _rack_unmark_lost(self) -> None:
        """``tcp_undo_cwnd_reduction`` with unmark_loss: no piece is lost any more; RACK looks
        at every piece again on the next ACK (rack.advanced)."""
        for e in self.rq:
            e[3] &= ~LOST
        self.lost_out = 0
        self.rack_adv = True

    def _rack_reset(self) -> None:
        """RTO (``tcp_enter_loss``): everything goes again from snd_una; the marks start over."""
        for e in self.rq:
            e[3] &= EVER
        self.lost_out = self.rack_retx = self.sacked_out = 0
        self.rack_adv = False
