"""Connection input processing (Linux ``tcp_input.c``): PAWS, header prediction, the
synchronized-state steps of RFC 9293 3.10.7.4, SYN-SENT and TIME-WAIT, ACK processing
(``tcp_ack``) and the data queue (``tcp_data_queue``, ``tcp_fin``, ``tcp_event_data_recv``).

A mixin of ``Connection`` (tuntcp/core/conn.py): methods only, the state is the connection's
slots, so the per-segment path reads attributes of one object."""
from __future__ import annotations

from .. import mib
from .cc import make_cc
from .seq import HALF, MASK, seq_gt, seq_lt
from . import window as _window
from .state import (CAN_SEND, CLOSED, CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,
                    LAST_ACK, RCV_DATA, SYN_RECV)
from .consts import (ACK_NOW, ACK_PUSHED, ACK_PUSHED2, ACK_SCHED, MAX_QUICKACKS, MIN_MSS,
                     MSS_DEFAULT, MSS_DEFAULT6, PAWS_24DAYS, TS_LEN)
from .tcp_output import CHRONO_BUSY
from ..wire.ipv6 import V4_MAX
from ..wire.segment import ACK, FIN, PSH, RST, SYN, URG, Segment


def _tcp_hdr_len(seg: Segment) -> int:
    """The TCP header length of a received segment with the options we parse (TS, SACK)."""
    o = seg.options
    sack = 4 + 8 * len(o.sack_blocks) if o.sack_blocks else 0
    return 20 + (TS_LEN if o.ts is not None else 0) + sack


def _covered(ranges, seq: int, end: int) -> bool:
    """[seq, end) lies inside one of the (sorted) SACKed ranges."""
    return any(not seq_lt(seq, l) and not seq_gt(end, r) for l, r in ranges)


class InputMixin:
    __slots__ = ()

    def _paws_reject(self, seg: Segment, now: float) -> bool:
        """PAWS (RFC 7323 5, ``tcp_paws_discard``): TSval older than ts_recent by more than 1 →
        TcpExtPAWSEstab and a duplicate ACK (unless RST)."""
        ts = seg.options.ts
        if not self.ts_ok or ts is None:
            return False
        if self._ts_acceptable(ts[0], now, 1):
            return False
        d = (self.ts_recent - ts[0]) & MASK
        if not self._disordered_ack(seg, d):
            if not seg.flags & RST:
                self.stack.counters[mib.TcpExtPAWSEstab] += 1
                self._send_dupack(seg, now)
            return True
        return False

    def _disordered_ack(self, seg: Segment, d: int) -> bool:
        """``tcp_disordered_ack``: a reordered pure duplicate ACK (seq == rcv_nxt, ack ==
        snd_una, no window change) is let through PAWS if its TSval is at most ~RTO old."""
        return (seg.flags & (SYN | FIN | RST)) == 0 and not seg.payload and \
            seg.seq == self.rcv_nxt and seg.ack == self.snd_una and \
            seg.window << self.snd_wscale == self.snd_wnd and d <= self.rto.rto * 1000

    def _ts_acceptable(self, tsval: int, now: float, paws_win: int) -> bool:
        """``tcp_paws_check``: TSval at most ``paws_win`` older than ts_recent, or ts_recent
        is 0 (some peers' SYNs carry 0), or ts_recent is older than TCP_PAWS_24DAYS."""
        d = (self.ts_recent - tsval) & MASK
        if d >= HALF:
            d -= 1 << 32                  # (s32)(ts_recent - tsval)
        return d <= paws_win or not self.ts_recent or now - self.ts_recent_stamp >= PAWS_24DAYS

    def _replace_ts_recent(self, seg: Segment, now: float) -> None:
        """``tcp_replace_ts_recent`` (RFC 7323 4.3), called by ``tcp_ack`` once the segment
        passed the window check and its ACK is neither old nor for unsent data: remember the
        TSval if the segment covers rcv_wup (seq <= rcv_wup, the last ACK we sent) and the
        TSval is not older than ts_recent (``tcp_paws_check`` with window 0). PAWS lets a TSval
        one tick older through; that one must not move ts_recent back."""
        ts = seg.options.ts
        if ts is None or not self.ts_ok or seq_gt(seg.seq, self.win.rcv_wup):
            return
        if self._ts_acceptable(ts[0], now, 0):
            self.ts_recent = ts[0]            # tcp_store_ts_recent
            self.ts_recent_stamp = now

    def _fast_path(self, seg: Segment, now: float) -> None:
        """Header prediction (``tcp_rcv_established`` fast path): in-order segment, ACK only
        (maybe PSH), acknowledging nothing beyond what we sent, no SACK, nothing out of order. Pure ACKs and in-order data land here.
        A TSval older than ts_recent goes to the slow path, as in Linux; otherwise it is
        stored when rcv_nxt == rcv_wup (``tcp_store_ts_recent``). What it skips: PAWS and the
        sequence/RST/SYN checks (nothing to check), and ``_ack`` for data acknowledging
        nothing new; what it counts: TcpExtTCPHPHits / TcpExtTCPHPAcks. The data and the
        ACK decision go through the slow path's ``_data`` and ``_after_input``."""
        if not seg.flags & ACK:
            return
        ts = seg.options.ts
        if self.ts_ok and ts is not None:
            if (ts[0] - self.ts_recent) & HALF:           # (s32)(tsval - ts_recent) < 0
                self._rcv_synced(seg, now)
                return
            if self.rcv_nxt == self.win.rcv_wup:
                self.ts_recent = ts[0]
                self.ts_recent_stamp = now
        payload = seg.payload
        c = self.stack.counters
        if payload:
            if seg.ack == self.snd_una and self.tlp_high_seq is None and \
                    seg.window << self.snd_wscale == self.snd_wnd:
                if ((seg.seq - self.snd_wl1) & MASK) < HALF:
                    self.snd_wl1 = seg.seq     # nothing new acknowledged: what _ack would
                    self.snd_wl2 = seg.ack     # do (wl1 never moves back: tcp_may_update_window)
            elif not self._ack(seg, now) or self.state is CLOSED:
                return
            c[mib.TcpExtTCPHPHits] = c.get(mib.TcpExtTCPHPHits, 0) + 1
            if ts is not None and ts[1] != self.rcv_rtt_last_tsecr:
                self._rcv_rtt_measure_ts(seg)
            self._data(seg, now)
        else:
            if not self._ack(seg, now) or self.state is CLOSED:
                return
            c[mib.TcpExtTCPHPAcks] = c.get(mib.TcpExtTCPHPAcks, 0) + 1
            if ts is not None:
                self.rcv_rtt_last_tsecr = ts[1]
        self._after_input(now)

    def _rcv_synced(self, seg: Segment, now: float) -> None:
        """Synchronized states (RFC 9293 3.10.7.4; ``tcp_validate_incoming`` then ``tcp_ack``,
        ``tcp_data_queue``, ``tcp_fin``)."""
        flags = seg.flags
        st = self.state
        if self._paws_reject(seg, now):
            return
        # 1. sequence acceptability (tcp_sequence): not wholly left of rcv_wup, not right of window
        rwin = self.win.current(self.rcv_nxt) if self.win else 0
        end = (seg.seq + seg.seg_len) & MASK
        if seq_lt(end, self.win.rcv_wup if self.win else self.rcv_nxt) or \
                seq_gt(seg.seq, (self.rcv_nxt + rwin) & MASK):
            if not flags & RST:
                if flags & SYN:
                    self._syn_challenge(now)
                elif not self._oow_limited(seg, now, mib.TcpExtTCPACKSkippedSeq):
                    self._send_dupack(seg, now)
            return
        # 2. RST (RFC 5961 3.2): exact match resets, otherwise challenge ACK
        if flags & RST:
            if seg.seq == self.rcv_nxt or (seg.seq == (self.rcv_nxt - 1) & MASK and
                                           st in (CLOSE_WAIT, LAST_ACK, CLOSING)):
                self._reset(now)
            else:
                self._challenge_ack(now)
            return
        # 3. SYN in a synchronized state (RFC 5961 4): challenge ACK
        if flags & SYN:
            if st is SYN_RECV and seg.seq == self.irs and flags & ACK and seg.ack == self.snd_nxt:
                pass    # the peer's SYN-ACK of a simultaneous open (tcp_validate_incoming)
            elif st is SYN_RECV and seg.seq == self.irs:
                self._send_syn(now, ack=True)      # our SYN-ACK was lost: resend it
                return
            else:
                self._syn_challenge(now)
                return
        # 4. ACK
        if not flags & ACK:
            return
        if st is SYN_RECV:
            if not (seq_gt(seg.ack, self.snd_una) and not seq_gt(seg.ack, self.snd_max)):
                self._send_rst_for(seg)
                return
            self._established_from_synrecv(seg, now)
        if not seq_lt(seg.ack, self.snd_una) and not seq_gt(seg.ack, self.snd_max):
            self._replace_ts_recent(seg, now)
        if not self._ack(seg, now):
            return
        if self.state is CLOSED:
            return
        # 5. data and FIN (urgent pointer first: tcp_urg)
        st = self.state
        if flags & URG and st in RCV_DATA:
            self._check_urg(seg)
        if seg.payload:
            self._rcv_rtt_measure_ts(seg)
        if seg.payload or flags & FIN:
            if st in RCV_DATA:
                if self.app_closed and seg.payload and seq_gt(
                        (end - (1 if flags & FIN else 0)) & MASK, self.rcv_nxt):
                    # RFC 1122 4.2.2.13: data for a closed socket → RST (tcp_rcv_state_process
                    # returns non-zero: tcp_v4_do_rcv answers with tcp_v4_send_reset, a RST
                    # made from the segment, seq = its ACK number)
                    self.stack.counters[mib.TcpExtTCPAbortOnData] += 1
                    self._send_rst_for(seg)
                    self._done(CLOSED)
                    return
                self._data(seg, now)
            elif flags & FIN and seg.seq == (self.rcv_nxt - 1) & MASK or seq_lt(seg.seq, self.rcv_nxt):
                self._schedule_ack(ACK_NOW)   # retransmitted FIN or old data: re-ACK
        self._after_input(now)

    def _check_urg(self, seg: Segment) -> None:
        """``tcp_check_urg``: the urgent pointer (BSD reading, tcp_stdurg=0: it points one past
        the urgent byte) marks tp->urg_seq, unless that byte was already read, is older than
        rcv_nxt, or an urgent pointer at or after it is pending."""
        ptr = seg.urg
        if ptr and not self.profile.get("net.ipv4.tcp_stdurg", 0):
            ptr -= 1
        ptr = (ptr + seg.seq) & MASK
        if seq_gt(self._copied_seq(), ptr) or seq_lt(ptr, self.rcv_nxt):
            return
        if self.urg_seq is not None and not seq_gt(ptr, self.urg_seq):
            return
        self.urg_seq = ptr

    def _after_input(self, now: float) -> None:
        """``tcp_data_snd_check`` + ``tcp_ack_snd_check``: send what the ACK allowed, then
        decide between an immediate and a delayed ACK."""
        if (self.sndq or self.fin_queued) and self.state in CAN_SEND and self._pending():
            self._push(now)                # (_pending is False with nothing queued)
        if self.dack.pending & ACK_SCHED:
            self._ack_snd_check(now)

    def _established_from_synrecv(self, seg: Segment, now: float) -> None:
        self.snd_una = seg.ack
        self.snd_wnd = seg.window << self.snd_wscale
        self.max_window = max(self.max_window, self.snd_wnd)
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        self.rtx_at = None
        self.retransmits = 0
        self.rto.reset_backoff()
        if self.syn_retrans:
            self.rto.fallback()
        self._set_state(ESTABLISHED)

    def _rcv_synsent(self, seg: Segment, now: float) -> None:
        """SYN-SENT (RFC 9293 3.10.7.3, ``tcp_rcv_synsent_state_process``)."""
        flags = seg.flags
        if flags & ACK and (not seq_gt(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max)):
            if not flags & RST:
                self._send_rst_for(seg)
            return
        if flags & RST:
            if flags & ACK:
                self.error = "refused"
                self._done(CLOSED)
            return
        if not flags & SYN:
            return
        if self.ecn_ok:
            self._ecn_rcv_syn(flags)
        o = seg.options
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & MASK
        p = self.profile
        self.sack_ok = bool(o.sack_ok and p.get("net.ipv4.tcp_sack", 1))
        self.ts_ok = bool(o.ts is not None and p.get("net.ipv4.tcp_timestamps", 1))
        if o.wscale is not None and self.wscale_ok:
            self.snd_wscale = min(o.wscale, 14)     # RFC 7323 2.3: cap at 14
        else:
            self.wscale_ok = False
            self.snd_wscale = self.rcv_wscale = 0
            self._init_clamp = min(self._init_clamp or 65535, 65535)
        if self.ts_ok:
            self.ts_recent = o.ts[0]
            self.ts_recent_stamp = now
        tslen = TS_LEN if self.ts_ok else 0
        # no MSS option: the af_ops mss_clamp, 536 on IPv4, 1220 on IPv6 (tcp_v6_connect)
        peer_mss = o.mss if o.mss else MSS_DEFAULT6 if self.laddr > V4_MAX else MSS_DEFAULT
        self.mss = max(min(peer_mss, self.advmss) - tslen, MIN_MSS)    # advmss: mtu - 40 or 60, user_mss
        self.advmss -= tslen           # tcp_rcv_synsent_state_process: advmss -= TS option
        self.cc = make_cc(p.get("net.ipv4.tcp_congestion_control", "cubic"), self.mss)
        self.win = _window.RecvWindow(
            p, rcvbuf=self.rcvbuf, rcvbuf_locked=self.rcvbuf_locked, rcv_wscale=self.rcv_wscale,
            window_clamp=self._init_clamp, rcv_wnd=self._init_rcv_wnd, advmss=self.advmss,
            rcv_nxt=self.rcv_nxt, mss=self.mss, counters=self.stack.counters)
        self._init_rcvq_space(now)
        if flags & ACK:
            self.snd_una = seg.ack
            self.snd_wnd = seg.window              # never scaled in a SYN (RFC 7323 2.2)
            self.max_window = self.snd_wnd
            self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
            self.rtx_at = None
            if self.syn_retrans:
                self.rto.fallback()
            else:
                self.rto.sample(now - self.rtt_time)
                self.mdev_seq = self.snd_max
            self.rto.reset_backoff()
            self.retransmits = 0
            self._set_state(ESTABLISHED)
            self._send_ack(now)
        else:
            # simultaneous open: SYN-RECV, answer SYN-ACK with our ISS (RFC 9293 3.5 fig. 8)
            self.snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self._set_state(SYN_RECV)
            self._send_syn(now, ack=True)

    def _rcv_timewait(self, seg: Segment, now: float) -> bool:
        """TIME-WAIT (RFC 9293 3.10.7.4, ``tcp_timewait_state_process``): a retransmitted FIN is
        ACKed and restarts 2MSL; a RST kills the socket (RFC 1337 not applied, Linux default);
        a SYN with a higher sequence number (or newer TSval) may start a new connection."""
        flags = seg.flags
        if flags & RST:
            self._done(CLOSED)
            return True
        if flags & SYN and not flags & ACK:
            newer_ts = self.ts_ok and seg.options.ts is not None and \
                seq_gt(seg.options.ts[0], self.ts_recent)
            if seq_gt(seg.seq, self.rcv_nxt) or newer_ts:
                self._done(CLOSED)
                return False
            self._send_ack(now)
            return True
        if flags & FIN and (seg.seq + seg.seg_len) & MASK == self.rcv_nxt:
            self._send_ack(now)
            self._restart_tw(now)
            return True
        if seg.seg_len and not self._oow_limited(seg, now, mib.TcpExtTCPACKSkippedSeq):
            self._send_ack(now)
        return True

    def _ack(self, seg: Segment, now: float) -> bool:
        """``tcp_ack``: validate (RFC 5961 5.2), update the send window (``tcp_ack_update_window``),
        then a duplicate ACK (``_ack_dup``) or new data acknowledged (``_ack_new``).
        Returns False when the segment must be dropped."""
        ack = seg.ack
        una = self.snd_una
        snd_max = self.snd_max
        # sequence comparisons inlined (seq.py): this runs for every ACK
        if ((snd_max - ack) & MASK) >= HALF:
            self._challenge_ack(now)       # ACK for data never sent: drop and ACK
            return False
        acked = (ack - una) & MASK
        if acked >= HALF:                  # ack before snd_una
            if seq_lt(ack, (una - self.max_window) & MASK):
                self._challenge_ack(now)
                return False
            if seg.options.sack_blocks and self.sack_ok and self._rack_ok:
                self._rack_old_ack(seg.options.sack_blocks, now)
            return True                    # old duplicate: ignore the ACK, keep the data
        self.lastack = now
        nwin = seg.window << self.snd_wscale
        win_changed = False
        # RFC 9293 3.10.7.4: WL1 < SEG.SEQ, or WL1 == SEG.SEQ and WL2 =< SEG.ACK (Linux's
        # tcp_may_update_window also updates on any new ACK)
        sseq = seg.seq
        if acked or ((self.snd_wl1 - sseq) & MASK) >= HALF or (
                sseq == self.snd_wl1 and ((ack - self.snd_wl2) & MASK) < HALF):
            win_changed = nwin != self.snd_wnd
            self.snd_wnd = nwin
            self.snd_wl1 = sseq
            self.snd_wl2 = ack
            if nwin > self.max_window:
                self.max_window = nwin
        blocks = seg.options.sack_blocks
        rack = self._rack_ok and self.sack_ok
        newly = 0
        ranges = self.sb.ranges
        prior_fack = ranges[-1][1] if ranges else una        # tcp_highest_sack_seq
        dsack = False
        if blocks and self.sack_ok:
            dsack = self._check_dsack(blocks, ack, una)
            self.sb.on_sack(blocks, una, snd_max)
            if rack:
                newly = self._rack_on_sack(blocks, una, snd_max, prior_fack, now)
            # tcp_fastretrans_alert in Open/Disorder, or Recovery on a duplicate ACK (a partial
            # ACK's turn comes in _recovery_ack): D-SACKs may have undone the episode
            if dsack and self.loss_high is None and self.cwr_high is None and \
                    (not acked or not self.in_recovery):
                self._try_undo_dsack()
        if self.ecn_ok:
            self._ecn_echo(seg, now)
        if acked == 0:
            self._ack_dup(seg, win_changed, now)
            if rack:
                self._rack_after_ack(newly, False, now)
                # tcp_may_raise_cwnd: with reordering above the sysctl's, SACKed data is
                # forward progress and grows cwnd outside recovery
                if newly and not self.in_recovery and self.cwr_high is None and \
                        self.reordering > self.profile.get("net.ipv4.tcp_reordering", 3):
                    self._cc_ack(newly, now, None, self._cwnd_limited())
            return True
        # tcp_ack_is_dubious: SACK blocks, or outside the Open state (SACKed/lost data out)
        dubious = rack and (blocks or ranges or self.in_recovery or self.lost_out or self.rack_retx)
        if rack:
            newly += self._rack_on_ack(seg.ack, prior_fack, now)
        if not self._ack_new(seg, acked, snd_max, now, prior_fack, ranges):
            return False
        if dubious and self.state in CAN_SEND:
            self._rack_after_ack(newly, True, now)
        return True

    def _ack_dup(self, seg: Segment, win_changed: bool, now: float) -> None:
        """``tcp_ack`` with nothing new acknowledged: a duplicate ACK (RFC 5681 2: no data, no
        window change, data outstanding) goes to loss detection; else TcpExtTCPPureAcks. A
        window that opened stops the zero-window probes; a loss probe episode may end."""
        self.probes_out = 0                # tcp_ack: any acceptable ACK (icsk_probes_out)
        if self.snd_una != self.snd_max and not seg.payload and not win_changed and \
                not seg.flags & (SYN | FIN):
            self.dupacks += 1
            self._on_dupack(now)
        elif not seg.payload:
            self.stack.counters[mib.TcpExtTCPPureAcks] += 1
        if self.snd_wnd and self.rtx_kind == "probe" and self.rtx_at is not None:
            self.rtx_at = None         # window opened (tcp_ack_probe): _push restarts transmission
            self.rto.reset_backoff()
            self.probes_tstamp = None
        elif self.rtx_kind == "probe" and self.rtx_at is not None and self.snd_una == self.snd_max:
            # tcp_ack_probe: still closed, the probe timer restarts from this ACK
            self._arm_rtx(now + self._probe0_when(now), "probe")
        if self.tlp_high_seq is not None:
            self._process_tlp_ack(seg, seg.ack, False, now)

    def _ack_new(self, seg: Segment, acked: int, snd_max: int, now: float,
                 prior_fack: int | None = None, prior=()) -> bool:
        """``tcp_ack`` for new data acknowledged: ``tcp_clean_rtx_queue`` (drop it, RTT sample
        by Karn, ca_rtt, SACK reordering), recovery or congestion control, the loss probe
        episode, ``tcp_set_xmit_timer`` (RFC 6298 5.3), ``tcp_sndbuf_expand``, and our FIN
        acknowledged (``_fin_acked``). ``snd_max`` as the ACK found it; ``prior_fack`` the
        highest SACKed sequence before this ACK, ``prior`` the SACK ranges before it.
        Returns False when the connection went away."""
        ack = seg.ack
        una = self.snd_una
        fin_seq = self.fin_seq
        fin_acked = fin_seq is not None and ack == (fin_seq + 1) & MASK
        data_acked = acked - 1 if fin_acked else acked
        if data_acked > 0:
            del self.sndq[:data_acked]
            skbs = self.skbs
            if skbs and ((ack - skbs[0][0]) & MASK) < HALF:    # the first skb is all acked
                i = 1
                while i < len(skbs) and not seq_gt(skbs[i][0], ack):
                    i += 1
                del skbs[:i]
            self.bytes_acked += data_acked
        self.snd_una = ack
        if ((self.snd_nxt - ack) & MASK) >= HALF:
            self.snd_nxt = ack
        if ack == self.snd_max:
            self._chrono_stop(CHRONO_BUSY, now)   # tcp_clean_rtx_queue: the rtx queue emptied
        self.probes_out = 0
        # RTT (Karn: only segments never retransmitted)
        rto = self.rto
        rtts = self._ack_rtts(ack, now) if self.tx_times else None
        ca_rtt = rtts[1] if rtts else None
        if self.profile.family == "linux":
            if not rtts and self.sb.ranges is not prior and self.tx_times:
                rtts = self._sack_rtts(ack, prior, now)
                ca_rtt = rtts[1] if rtts else None    # ca_rtt_us: the last SACKed one
            if not rtts:
                rtts = self._tsecr_rtt(seg)
                ca_rtt = rtts[1] if rtts else None
            if rtts:
                # tcp_ack_update_rtt: a sample on every ACK (seq_rtt, the oldest acked segment);
                # tcp_rtt_estimator ends its mdev round once snd_una passes rtt_seq
                end = seq_gt(ack, self.mdev_seq)
                rto.sample(rtts[0], end)
                if end:
                    self.mdev_seq = self.snd_max
        elif self.rtt_seq is not None and ((self.rtt_seq - ack) & MASK) >= HALF:
            rto.sample(now - self.rtt_time)     # one timed segment per round trip
            self.rtt_seq = None
        rto.backoffs = 0                   # RtoEstimator.reset_backoff
        self.retransmits = 0
        self.retrans_stamp = None
        sb = self.sb
        was_sacked = 0
        if sb.ranges:
            # tcp_clean_rtx_queue: data cumulatively ACKed below what was SACKed before this
            # ACK arrived out of order, by the distance to the highest SACK now
            high = sb.highest_sacked() if self.sack_ok else None
            if high is not None and prior_fack is not None and seq_gt(prior_fack, una) and \
                    not self._rack_ok:         # RACK's pieces know what was retransmitted
                self._reordering_seen((high - una) & MASK)
            was_sacked = sb.sacked_bytes
            sb.clear_below(ack)
            was_sacked -= sb.sacked_bytes
        mss = self.mss
        acked_segs = (acked + mss - 1) // mss or 1
        if self.cwr_high is not None:
            self._ecn_cwr_done(ack)
        self.undo_hold = False
        if self.loss_high is not None and self.undo_marker is not None:
            self._try_undo_loss(seg)
        if self.in_recovery:
            self._recovery_ack(seg, ack, now, acked_segs)
        if not self.in_recovery:
            # tcp_cong_control (also on the ACK that just ended recovery: tcp_fastretrans_alert
            # ran first) gets what this ACK delivered: data SACKed before was counted
            # then, and without SACK each dupack counted one (tcp_remove_reno_sacks)
            delivered = (acked - was_sacked + mss - 1) // mss if was_sacked else acked_segs
            if self.dupacks and not self.sack_ok:
                delivered = max(delivered - self.dupacks, 1)
            self.dupacks = 0
            self._cc_ack(delivered, now, ca_rtt, self._cwnd_limited())
        if self.retrans_out:
            self.retrans_out = max(self.retrans_out - acked_segs, 0)
        if self.loss_high is not None and not seq_lt(ack, self.loss_high):
            self.loss_high = None
        if self.tlp_high_seq is not None:
            self._process_tlp_ack(seg, ack, True, now)
        # tcp_set_xmit_timer: a loss probe if one may go, else restart the RTO (RFC 6298 5.3)
        if ack == snd_max:
            if self.rtx_kind != "probe":
                self.rtx_at = None
        elif not self._schedule_loss_probe(now, True):
            self._arm_rtx(now + rto.rto, "rtx")
        if not self.sndbuf_locked and self.sndbuf < self._wmem_max:
            self._sndbuf_expand()
        self._check_space()
        self.stack.dirty.add(self)
        if fin_acked:
            return self._fin_acked(now)
        return True

    def _sack_rtts(self, ack: int, prior, now: float) -> tuple[float, float] | None:
        """``tcp_ack_update_rtt``'s second choice, sack_rtt_us (``tcp_sacktag_one``'s
        first_sackt/last_sackt): time since the lowest and the highest never-retransmitted
        segment this ACK newly SACKed were sent. Preferred to the TSecr echo."""
        sb = self.sb
        mss = self.mss
        first = last = None
        start = ack
        for e in self.tx_times:
            end, t = e[0], e[1]
            if len(e) == 3:
                start = e[2]
            if t is not None and seq_gt(end, ack):
                # a TSO entry is SACKed by whole MSS pieces (tcp_match_skb_to_sack fragments
                # the skb on the MSS grid); a plain one whole
                step = mss if len(e) == 3 else (end - start) & MASK
                lo = start
                while seq_lt(lo, end):
                    hi = (lo + step) & MASK
                    if seq_gt(hi, end):
                        hi = end
                    if sb.is_sacked(lo, hi) and not _covered(prior, lo, hi):
                        last = t
                        if first is None:
                            first = t
                        break           # one send time per entry: first == last within it
                    lo = hi
            start = end
        if first is None:
            return None
        return now - first, now - last

    def _tsecr_rtt(self, seg: Segment) -> tuple[float, float] | None:
        """``tcp_ack_update_rtt``'s fallback when Karn leaves no seq_rtt (a retransmitted
        segment was ACKed): the time since the TSval the ACK echoes, in TS ticks (1 ms)."""
        ts = seg.options.ts if self.ts_ok and seg.options is not None else None
        if not ts or not ts[1]:
            return None
        delta = (self.stack.ts_now(self.ts_off) - ts[1]) & MASK
        if delta >= HALF:
            return None
        rtt = max(delta, 1) / 1000.0
        return rtt, rtt

    def _fin_acked(self, now: float) -> bool:
        """Our FIN was acknowledged (``tcp_rcv_state_process``): FIN-WAIT-1 → FIN-WAIT-2 (an
        orphan gets tcp_fin_timeout), CLOSING → TIME-WAIT, LAST-ACK → CLOSED. False when the
        connection is gone."""
        st = self.state
        if st is FIN_WAIT_1:
            self._set_state(FIN_WAIT_2)
            if self.app_closed:
                self._arm_tw(now + self.profile.get("net.ipv4.tcp_fin_timeout", 60))
        elif st is CLOSING:
            if not self._enter_timewait(now):
                return False
        elif st is LAST_ACK:
            self._done(CLOSED)
            return False
        return True

    def _cc_ack(self, acked_segs: int, now: float, rtt, cwnd_limited: bool) -> None:
        """``tcp_cong_control`` outside recovery. The controller gets snd_una and snd_nxt (our
        snd_max) for HyStart's rounds (CUBIC); a HyStart exit is counted like ``hystart_update``
        (TcpExtTCPHystart{Train,Delay}Detect, ...Cwnd += cwnd)."""
        cc = self.cc
        found = getattr(cc, "found", None)
        cc.on_ack(acked_segs, now, rtt, cwnd_limited, self.snd_una, self.snd_max)
        if found is None and getattr(cc, "found", None):
            c = self.stack.counters
            if cc.found == "train":
                c[mib.TcpExtTCPHystartTrainDetect] += 1
                c[mib.TcpExtTCPHystartTrainCwnd] += cc.cwnd
            else:
                c[mib.TcpExtTCPHystartDelayDetect] += 1
                c[mib.TcpExtTCPHystartDelayCwnd] += cc.cwnd

    def _sndbuf_expand(self) -> bool:
        """``tcp_sndbuf_expand`` after an ACK: an unlocked send buffer grows to hold about two
        congestion windows (capped by tcp_wmem[2])."""
        if self.sndbuf_locked or self.cc is None:
            return False
        want = min(4 * self.cc.cwnd * (self.mss + 240), self._wmem_max)
        if want > self.sndbuf:
            self.sndbuf = want
            return True
        return False

    def _data(self, seg: Segment, now: float) -> None:
        """``tcp_data_queue``: in-order data to the receive queue, out-of-order to reassembly
        (TcpExtTCPOFOQueue, immediate ACK with SACK), duplicates re-ACKed at once
        (TcpExtDelayedACKLost), data on a zero window dropped (TcpExtTCPZeroWindowDrop),
        data beyond the window trimmed (RFC 9293 3.10.7.4)."""
        if self.ecn_ok:
            self._ecn_rcv_data(seg)
        payload = seg.payload
        seq = seg.seq
        n = len(payload)
        fin = bool(seg.flags & FIN)
        if not n:
            if fin:
                self._queue_fin(seq, now)
            return
        c = self.stack.counters
        rcv_nxt = self.rcv_nxt
        rwin = self.win.current(rcv_nxt)
        off = ((seq - rcv_nxt + HALF) & MASK) - HALF
        if off == 0 and not self.reasm.blocks:          # the common case: in order
            if rwin == 0:
                c[mib.TcpExtTCPZeroWindowDrop] += 1
                self._enter_quickack()
                self._schedule_ack(ACK_NOW)
                return
            if n > rwin:
                payload = payload[:rwin]
                n = rwin
                fin = False
            self.rcvq += payload
            self.rcv_nxt = (rcv_nxt + n) & MASK
            self.bytes_received += n
            self._event_data_recv(seg, n, now)
            self.stack.dirty.add(self)
            if fin:
                self._queue_fin(self.rcv_nxt, now)
            return
        if off + n <= 0:
            # wholly old: a retransmission of data we have, so our ACK was probably lost
            c[mib.TcpExtDelayedACKLost] += 1
            self._dsack_set(seq, (seq + n) & MASK)
            self._enter_quickack()
            self._schedule_ack(ACK_NOW)
            return
        if off + n > rwin:
            if off >= rwin:
                c[mib.TcpExtTCPZeroWindowDrop if rwin == 0 else mib.TcpExtTCPOFODrop] += 1
                self._enter_quickack()
                self._schedule_ack(ACK_NOW)
                return
            payload = payload[:rwin - off]
            fin = False
        had_ooo = bool(self.reasm.blocks)
        if off > 0:
            c[mib.TcpExtTCPOFOQueue] += 1
            if fin:
                self.ofo_fin = (seq + len(payload)) & MASK
        got, nxt = self.reasm.insert(seq, payload, rcv_nxt)
        if got:
            self.rcvq += got
            self.bytes_received += len(got)
            self.rcv_nxt = nxt
            self._event_data_recv(seg, len(got), now)
            self.stack.dirty.add(self)
            if had_ooo and not self.reasm.blocks:
                self.dack.pending |= ACK_NOW     # gap filled: ACK at once (RFC 5681 4.2)
        self._schedule_ack(ACK_NOW if self.reasm.blocks else 0)
        if fin and off <= 0:
            self._queue_fin((seq + len(payload)) & MASK, now)
        elif self.ofo_fin is not None and self.ofo_fin == self.rcv_nxt and not self.reasm.blocks:
            self._fin(now)

    def _queue_fin(self, fin_at: int, now: float) -> None:
        """A FIN at ``fin_at``: consume it if everything before it arrived, else remember it."""
        if fin_at == self.rcv_nxt and not self.reasm.blocks:
            self._fin(now)
        elif seq_gt(fin_at, self.rcv_nxt):
            self.ofo_fin = fin_at
            self._schedule_ack(ACK_NOW)
        else:
            self._schedule_ack(ACK_NOW)

    def _fin(self, now: float) -> None:
        """``tcp_fin``: consume the FIN (RFC 9293 3.10.7.4 eighth step)."""
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        self.fin_rcvd = True
        self.ofo_fin = None
        self.stack.dirty.add(self)
        st = self.state
        self._schedule_ack(0)
        if st is ESTABLISHED:
            self._set_state(CLOSE_WAIT)
            self.dack.enter_pingpong()
        elif st is FIN_WAIT_1:
            self._send_ack(now)
            self._set_state(CLOSING)
        elif st is FIN_WAIT_2:
            self._send_ack(now)
            self._enter_timewait(now)

    def _event_data_recv(self, seg: Segment, n: int, now: float) -> None:
        """``tcp_event_data_recv``: schedule an ACK, measure rcv_mss, adapt ato, arm quick-ACK
        mode on the first data and after an idle gap longer than the RTO; grow rcv_ssthresh."""
        d = self.dack
        d.pending |= ACK_SCHED
        self._measure_rcv_mss(seg)
        dmin = d.delack_min
        if not d.ato:
            self._incr_quickack(MAX_QUICKACKS)
            d.ato = dmin
        else:
            m = now - d.lrcvtime
            if m <= dmin / 2:
                d.ato = d.ato / 2 + dmin / 2
            elif m < d.ato:
                d.ato = min(d.ato / 2 + m, self.rto.rto)
            elif m > self.rto.rto:
                self._incr_quickack(MAX_QUICKACKS)
        d.lrcvtime = now
        self._rcv_rtt_measure(now)
        self.win.on_data(n, self.rcvq.n)

    def _measure_rcv_mss(self, seg: Segment) -> None:
        """``tcp_measure_rcv_mss``: rcv_mss follows full-sized segments (up to advmss), and a
        length other than rcv_mss re-measures the scaling ratio from len/truesize
        (:meth:`RecvWindow.measure_ratio`; a new clamp below rcvq_space lowers it, f5da7c45188e);
        a small segment marks ACK_PUSHED (twice in a row: PUSHED2), which lets recv() ACK at once."""
        n = len(seg.payload)
        d = self.dack
        win = self.win
        lss = d.last_seg_size
        d.last_seg_size = 0
        # the kernel compares gso_size ?: len; a segment longer than advmss is a GSO aggregate
        # (IFF_VNET_HDR) whose gso_size the vnet header gave and we take as advmss
        size = n if n <= self.advmss else self.advmss
        if size >= win.rcv_mss:
            if size != win.rcv_mss and win.measure_ratio(
                    n, _tcp_hdr_len(seg) + (40 if self.laddr > V4_MAX else 20)):
                self.rcvq_space = min(self.rcvq_space, win.window_clamp)
            win.rcv_mss = size
            return
        hdr = _tcp_hdr_len(seg)
        ln = n + hdr
        if ln >= MSS_DEFAULT + 20 or (ln >= MIN_MSS + 20 and not seg.flags & (FIN | PSH | SYN)):
            ln -= 20 + (TS_LEN if self.ts_ok else 0)
            d.last_seg_size = ln
            if ln == lss:
                win.rcv_mss = ln
                return
        if d.pending & ACK_PUSHED:
            d.pending |= ACK_PUSHED2
        d.pending |= ACK_PUSHED
