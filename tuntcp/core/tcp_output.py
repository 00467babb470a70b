"""Connection output (Linux ``tcp_output.c``): ``tcp_write_xmit`` with Nagle and the peer's
window, TSO sizing, ``tcp_transmit_skb`` (options, the advertised window, ``tcp_event_ack_sent``),
bare ACKs, D-SACK, challenge ACKs and resets. A mixin of ``Connection``."""
from __future__ import annotations

from .. import mib
from .seq import MASK, seq_gt, seq_lt
from .state import CAN_SEND, SYN_RECV
from .consts import MSS_DEFAULT, TSO_MAX
from .oow import oow_rate_limited
from ..wire.segment import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions

# tp->nonagle bits (include/net/tcp.h)
NAGLE_OFF, NAGLE_CORK, NAGLE_PUSH = 1, 2, 4
# enum tcp_chrono (TCP_CHRONO_SNDBUF_LIMITED is not modelled)
CHRONO_BUSY, CHRONO_RWND_LIMITED = 1, 2


class OutputMixin:
    __slots__ = ()

    def _pending(self) -> bool:
        """Unsent data, or an unsent FIN."""
        off = (self.snd_nxt - self.snd_una) & MASK
        if off < len(self.sndq):
            return True
        return self.fin_queued and seq_lt(self.snd_nxt, (self.fin_seq + 1) & MASK)

    def _inflight_segs(self) -> int:
        """``tcp_packets_in_flight`` less retransmissions: out minus SACKed, and without SACK
        each duplicate ACK counts one segment as left the network (``tcp_add_reno_sack``,
        at least one hole kept: ``tcp_limit_reno_sacked``), which lets limited transmit
        (RFC 3042) send new data on the first two dupacks."""
        if self.lost_out or self.rack_retx:
            # tcp_packets_in_flight over RACK's pieces: out - sacked - lost + retransmitted
            pc = self._pcount
            return sum(pc(e) for e in self.rq) - self.sacked_out - self.lost_out + self.rack_retx
        out = ((self.snd_nxt - self.snd_una) & MASK) - self.sb.sacked_bytes
        segs = max((out + self.mss - 1) // self.mss, 0)
        if self.dupacks and not self.sack_ok and segs > 1:
            segs -= min(self.dupacks, segs - 1)
        return segs

    def _nonagle(self) -> int:
        """tp->nonagle: TCP_NAGLE_OFF (TCP_NODELAY), TCP_NAGLE_CORK (TCP_CORK) and
        TCP_NAGLE_PUSH (a one-shot push set when TCP_NODELAY goes on, or TCP_CORK off with
        TCP_NODELAY on; cleared when a new skb is queued: ``tcp_skb_entail``)."""
        return (NAGLE_OFF if self.nodelay else 0) | (NAGLE_CORK if self.cork else 0) | (
            NAGLE_PUSH if self.nagle_push else 0)

    def _nagle_holds(self, nonagle: int, seq: int) -> bool:
        """``tcp_nagle_test`` / ``tcp_nagle_check`` for a sub-MSS tail at ``seq`` (new data,
        the queue's last skb, no FIN): never with TCP_NAGLE_PUSH, always when corked
        (TCP_CORK or MSG_MORE), else with Nagle on while a small segment is unacked
        (Minshall: ``tcp_minshall_check``)."""
        if nonagle & NAGLE_PUSH:
            return False
        if nonagle & NAGLE_CORK:
            return True
        return not nonagle and seq_gt(self.snd_sml, self.snd_una) and not seq_gt(self.snd_sml, seq)

    def _push(self, now: float, wakeup: int = 0, head: bool = False, nonagle: int | None = None,
              probe: bool = False, one: bool = False) -> bool:
        """``tcp_write_xmit``: send MSS-sized segments from snd_nxt while cwnd, the peer's window
        (``tcp_snd_wnd_test``: the whole segment must fit) and Nagle (``tcp_nagle_test``,
        Minshall's variant) allow. ``wakeup`` is ``tcp_write_wakeup``'s window-sized send;
        ``head``: on RTO the segment at snd_una goes even if the window shrank below it
        (``tcp_retransmit_skb`` only refuses segments beyond the window after the head).
        When nothing is in flight and nothing could be sent, arm the zero-window probe timer
        (``tcp_check_probe_timer``): it also ends a cork that nothing else lifts (the probe
        sends the held data). ``nonagle``: the caller's tp->nonagle (``tcp_push`` passes
        TCP_NAGLE_CORK for MSG_MORE); ``probe``: ``tcp_write_wakeup``, which sets PSH; ``one``:
        ``tcp_push_one``, at most one packet (without offload: the MSS segments of one skb).
        Returns False when a transmit failed locally (the device queue dropped it): the loop
        stops there, nothing more goes out this time.
        With ``stack.offload`` new data goes as TSO segments of up to 64 KB (``_tso_len``);
        retransmissions stay one MSS each."""
        if nonagle is None:
            nonagle = self._nonagle()
        if self.state not in CAN_SEND:
            return True
        mss = self.mss
        sndq = self.sndq
        cc = self.cc
        tso = self.stack.offload
        sent = 0
        failed = False
        rwnd_limited = False
        skbs = self.skbs
        si = -1                            # index of snd_nxt's skb, found once, then walked
        if self.snd_una == self.snd_max and not wakeup and cc is not None and \
                len(sndq) > ((self.snd_nxt - self.snd_una) & MASK):
            self._idle_restart(now)
        while True:
            seq = self.snd_nxt
            off = (seq - self.snd_una) & MASK
            avail = len(sndq) - off
            fin_here = self.fin_queued and seq_lt(seq, (self.fin_seq + 1) & MASK) and \
                avail <= mss
            if avail <= 0:
                if not fin_here:
                    break
                n = 0
                room = 0
                last = True
            elif skbs:
                if si < 0:
                    si = self._skb_index(seq)
                else:
                    d = (seq - self.snd_una) & MASK
                    while si < len(skbs) and ((skbs[si][0] - self.snd_una) & MASK) <= d:
                        si += 1
                last = si >= len(skbs) - 1
                room = avail if last else (skbs[si][0] - seq) & MASK
                n = min(avail, room, wakeup or mss)
            else:
                room, last = avail, True
                n = min(avail, wakeup or mss)
            if not wakeup:
                if self._inflight_segs() >= cc.cwnd:
                    break
                if seq_gt((seq + n + (1 if fin_here and n == avail else 0)) & MASK,
                          (self.snd_una + self.snd_wnd) & MASK) and not (head and seq == self.snd_una):
                    rwnd_limited = True
                    break                  # tcp_snd_wnd_test: the whole segment must fit
                if 0 < n < mss and last and not fin_here and not seq_lt(seq, self.snd_max) and \
                        self._nagle_holds(nonagle, seq):
                    break                  # Nagle/Minshall, or corked
            new = not seq_lt(seq, self.snd_max)
            if tso and new and n == mss < min(avail, room) and not wakeup:
                n = self._tso_len(seq, min(avail, room), last, nonagle)
            if n < avail:
                fin_here = False
            if self.sack_ok and not new and n and self.sb.is_sacked(seq, (seq + n) & MASK):
                self.snd_nxt = (seq + n) & MASK    # the peer has it: skip
                continue
            if not self._xmit(seq, off, n, now, retrans=not new, fin=fin_here,
                              skb=skbs[si] if skbs and 0 <= si < len(skbs) else None, psh=probe):
                failed = True
                break                      # tcp_write_xmit: a failed tcp_transmit_skb stops it
            sent += new
            if wakeup or one and (tso or n >= room):
                break                      # tcp_push_one: one skb (one TSO packet)
        if not wakeup:                     # tcp_write_xmit's chronograph update
            if rwnd_limited:
                self._chrono_start(CHRONO_RWND_LIMITED, now)
            else:
                self._chrono_stop(CHRONO_RWND_LIMITED, now)
        if not wakeup and cc is not None:
            lim = self._inflight_segs() >= cc.cwnd
            if sent or lim:
                self._cwnd_validate(lim)
        if self.snd_una == self.snd_max and self._pending():
            if self.rtx_at is None:
                self._arm_rtx(now + self.rto.rto, "probe")
        elif sent and not wakeup and not head and self._schedule_loss_probe(now, False):
            pass                           # tcp_write_xmit: one loss probe per tail episode
        elif self.snd_una != self.snd_max and (self.rtx_at is None or self.rtx_kind == "probe"):
            self._arm_rtx(now + self.rto.rto, "rtx")   # a pending loss probe stays armed
        return not failed

    def _size_goal(self) -> int:
        """``tcp_xmit_size_goal``: gso_max_size - 1 - MAX_TCP_HEADER bounded to half the peer's
        largest window (``tcp_bound_to_half_wnd``), in whole MSS: how big an skb grows."""
        mss = self.mss
        mw = self.max_window
        goal = min(TSO_MAX, mw // 2 if mw > MSS_DEFAULT else mw)
        return max(goal - goal % mss, mss)

    def _tail_room(self) -> int:
        """What the write queue's tail skb can still take (``tcp_sendmsg_locked``: size_goal
        less its unsent bytes; the sent part went to the retransmit queue, ``tso_fragment``),
        0 when there is no unsent, non-EOR tail."""
        skbs = self.skbs
        if not skbs or skbs[-1][2] or not seq_lt(self.snd_max, skbs[-1][0]):
            return 0
        start = skbs[-2][0] if len(skbs) > 1 and seq_gt(skbs[-2][0], self.snd_max) else self.snd_max
        return max(self._size_goal() - ((skbs[-1][0] - start) & MASK), 0)

    def _tail_is_send_head(self) -> bool:
        """The tail skb holds snd_nxt: ``skb == tcp_send_head(sk)``."""
        skbs = self.skbs
        return len(skbs) < 2 or not seq_gt(skbs[-2][0], self.snd_nxt)

    def _skb_queue(self, n: int, eor: bool, mark: bool = True, copied: int = 0) -> None:
        """``tcp_sendmsg_locked`` for n bytes just queued, as skbs [end_seq, psh, eor]: the
        write queue's tail skb (unsent part, not EOR: ``tcp_skb_can_collapse_to``) takes up to
        size_goal (its PSH cleared when this write has copied nothing yet), then new skbs of size_goal; a full
        skb gets PSH when write_seq - pushed_seq > max_window/2 (``forced_push``,
        ``tcp_mark_push``), and ``tcp_push`` marks the last one unless ``mark`` is False (MSG_MORE,
        unless forced_push); MSG_EOR: nothing appends. A new skb clears TCP_NAGLE_PUSH."""
        skbs = self.skbs
        if skbs is None:
            skbs = self.skbs = []
        goal = self._size_goal()
        half = self.max_window >> 1
        write_seq = (self.snd_una + len(self.sndq) - n) & MASK
        if skbs and not skbs[-1][2] and seq_lt(self.snd_max, skbs[-1][0]):
            tail = skbs[-1]
            start = skbs[-2][0] if len(skbs) > 1 and seq_gt(skbs[-2][0], self.snd_max) else self.snd_max
            take = min(goal - ((tail[0] - start) & MASK), n)
            if take > 0:
                write_seq = tail[0] = (tail[0] + take) & MASK
                if not copied:
                    tail[1] = False
                n -= take
                if n and seq_gt(write_seq, (self.pushed_seq + half) & MASK):
                    tail[1] = True
                    self.pushed_seq = write_seq
        while n:
            take = min(goal, n)
            n -= take
            write_seq = (write_seq + take) & MASK
            skbs.append([write_seq, False, False])
            self.nagle_push = False
            if n and seq_gt(write_seq, (self.pushed_seq + half) & MASK):
                skbs[-1][1] = True
                self.pushed_seq = write_seq
        if mark or seq_gt(write_seq, (self.pushed_seq + half) & MASK):
            skbs[-1][1] = True
            self.pushed_seq = write_seq
        skbs[-1][2] = eor

    def _skb_index(self, seq: int) -> int:
        """Index of the skb holding ``seq`` (at or after snd_una; len(skbs) past the last):
        a binary search on the skb ends' distance from snd_una (acked skbs are gone, so the
        distances increase). A packet never spans two skbs: ``tcp_write_xmit`` sends one
        skb, or a ``tso_fragment`` of it."""
        skbs = self.skbs
        una = self.snd_una
        d = (seq - una) & MASK
        hi = len(skbs)
        if hi == 1 or ((skbs[-2][0] - una) & MASK) <= d:
            return hi - 1 if ((skbs[-1][0] - una) & MASK) > d else hi    # new data: the tail
        lo = 0
        while lo < hi:
            mid = (lo + hi) >> 1
            if ((skbs[mid][0] - una) & MASK) > d:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _cwnd_validate(self, lim: bool) -> None:
        """``tcp_cwnd_validate`` after ``tcp_write_xmit``: remember, per window of data (until
        snd_una passes cwnd_usage_seq), whether the sender was cwnd-limited and else the most
        packets it had out; ``_cwnd_limited`` reads them on the ACKs of that window."""
        out = (((self.snd_max - self.snd_una) & MASK) + self.mss - 1) // self.mss
        if not seq_lt(self.snd_una, self.cwnd_usage_seq) or lim or (
                not self.cwnd_lim and out > self.max_pkts_out):
            self.cwnd_lim = lim
            self.max_pkts_out = out
            self.cwnd_usage_seq = self.snd_max

    def _cwnd_limited(self) -> bool:
        """``tcp_is_cwnd_limited``: cwnd-limited in this window, or in slow start with cwnd
        below twice the most packets out (so it grows to twice what was ACKed)."""
        if self.cwnd_lim:
            return True
        cc = self.cc
        return cc.cwnd < cc.ssthresh and cc.cwnd < 2 * self.max_pkts_out

    def _tso_len(self, seq: int, avail: int, last: bool = True, nonagle: int = 0) -> int:
        """With offload (TSO): how much new data from ``seq`` goes as one segment, given that
        one MSS passed ``_push``'s tests: what the per-MSS loop would send in a row (cwnd,
        ``tcp_snd_wnd_test`` per piece, Nagle on a short tail; a FIN-carrying last piece is
        left to it), capped at ``tcp_xmit_size_goal``: gso_max_size - 1 - MAX_TCP_HEADER
        bounded to half the peer's largest window (``tcp_bound_to_half_wnd``), in whole MSS.
        Where the encoder shows GSO packets whole (``gso_exact``: packetdrill's tun) they are
        cut as ``tcp_write_xmit`` cuts them: ``_autosize`` and half the cwnd. ``tcp_tso_should_defer`` is not modelled: the wire carries the
        same bytes as without offload."""
        mss = self.mss
        goal = self._size_goal()
        quota = self.cc.cwnd - self._inflight_segs()
        if self.stack.encoder.gso_exact:
            quota = min(quota, max(self.cc.cwnd >> 1, 1))   # tcp_cwnd_test: 2 GSO packets in flight
            if self.rto.srtt:
                goal = min(goal, self._autosize(mss))         # tcp_tso_segs
        wnd_room = (self.snd_una + self.snd_wnd - seq) & MASK
        n = min(avail, quota * mss, wnd_room, goal)
        tail = n % mss
        if n < avail:
            return n - tail
        if not last:
            return n                       # a whole skb that is not the queue's tail goes
        if self.fin_queued:
            return n - (tail or mss)       # the FIN rides on the last piece: _push sends it
        if tail and self._nagle_holds(nonagle, (seq + n - tail) & MASK):
            return n - tail                # Nagle/Minshall or a cork holds the short tail back
        return n

    def _autosize(self, mss: int) -> int:
        """``tcp_tso_autosize``: a TSO packet carries about 1 ms of the pacing rate
        (``tcp_update_pacing_rate``: mss * max(cwnd, packets_out) / srtt, times
        tcp_pacing_ss_ratio below ssthresh/2 else tcp_pacing_ca_ratio, in %; shifted by
        sk_pacing_shift 10), plus gso_max_size >> (rtt_us >> tcp_tso_rtt_log 9) on short
        paths (srtt stands in for min_rtt), at least tcp_min_tso_segs segments."""
        cc = self.cc
        p = self.profile
        srtt = self.rto.srtt
        ratio = p["net.ipv4.tcp_pacing_ss_ratio" if cc.cwnd < cc.ssthresh // 2 else "net.ipv4.tcp_pacing_ca_ratio"]
        size = int(mss * ratio * max(cc.cwnd, self._inflight_segs()) / (100 * srtt)) >> 10
        r = int(srtt * 1e6) >> 9
        if r < 32:
            size += TSO_MAX >> r
        return max(min(size, TSO_MAX) // mss, p["net.ipv4.tcp_min_tso_segs"]) * mss

    def _xmit(self, seq: int, off: int, n: int, now: float, retrans: bool, fin: bool = False,
              skb=False, psh: bool = False, probe: bool = False) -> bool:
        """Build and emit one data/FIN segment (``tcp_transmit_skb``); counts retransmissions.
        False when the device queue dropped it (``tcp_transmit_skb`` returned NET_XMIT_DROP):
        the segment counts as attempted, not sent.
        PSH where the queued data ends, and (``__tcp_transmit_skb``, profile knob
        model.tso_psh) on every TSO packet: pcount > 1 forces PSH to expedite GRO flushes
        (where the encoder shows GSO packets whole; VnetEncoder re-merges runs itself).
        ``skb``: the skb holding ``seq`` when the caller knows it; ``probe``: a loss probe's
        retransmission (``__tcp_retransmit_skb`` alone: not counted for undo)."""
        payload = bytes(self.sndq[off:off + n]) if n else b""
        flags = ACK
        if fin:
            flags |= FIN
        if psh and n:
            flags |= PSH                   # tcp_write_wakeup
        elif n:
            e = skb
            if e is False:
                skbs = self.skbs
                i = self._skb_index(seq) if skbs else 0
                e = skbs[i] if skbs and i < len(skbs) else None
            if (e[1] and e[0] == (seq + n) & MASK) if e is not None else off + n == len(self.sndq):
                flags |= PSH               # the end of an skb marked by tcp_mark_push
            elif n > self.mss and self.profile["model.tso_psh"] and self.stack.encoder.gso_exact:
                flags |= PSH               # every TSO packet, retransmissions too
        end = (seq + n + (1 if fin else 0)) & MASK
        c = self.stack.counters
        segs = -(-n // self.mss) or 1          # a TSO retransmission counts its segments
        if retrans:
            # __tcp_retransmit_skb counts before tcp_transmit_skb; tcp_retransmit_skb stamps
            # the first attempted retransmission either way
            c[mib.TcpRetransSegs] += segs
            self.total_retrans += segs
            if self.retrans_stamp is None:
                self.retrans_stamp = now
            if not probe:           # tcp_retransmit_skb: the episode's undo waits for its D-SACK
                self.undo_retrans = max(self.undo_retrans, 0) + segs
        else:
            self.bytes_sent += n
            # tcp_event_data_sent: CA_EVENT_TX_START when nothing was in flight
            if self.snd_una == self.snd_max:
                self.cc.on_tx_start(now, now - self.lsndtime)
            self.lsndtime = now
            # tcp_event_data_sent: a reply within ato of the last receive counts toward ping-pong
            if now - self.dack.lrcvtime < self.dack.ato:
                self.dack.pingpong += 1
        if self._output(flags, seq, payload, now, new_data=bool(n) and not retrans):
            # the device dropped it: nothing was sent (no tcp_event_new_data_sent, no
            # TCPCB_RETRANS); __tcp_retransmit_skb counts TCPRetransFail
            if retrans:
                c[mib.TcpExtTCPRetransFail] += segs
            return False
        if n and self._rack_ok and self.sack_ok:
            self._rq_sent(seq, (seq + n) & MASK, now, retrans)
            if not retrans and self.in_recovery:
                self.prr_out += -(-n // self.mss)     # tcp_write_xmit: prr_out += sent_pkts
        if retrans:
            self.retrans_out += segs
            self._mark_retrans(seq, end)
        else:
            if self.rtt_seq is None and n:
                self.rtt_seq = seq
                self.rtt_time = now
            self._log_sent(seq, end, n, now)
        if n % self.mss:
            self.snd_sml = end     # tcp_minshall_update: skb->len < pcount * mss
        if seq_gt(end, self.snd_nxt):
            self.snd_nxt = end
        if seq_gt(end, self.snd_max):
            self.snd_max = end
        return True

    def _output(self, flags: int, seq: int, payload, now: float, new_data: bool = False) -> int:
        """Every segment of a synchronized connection: options (TS, SACK blocks), the window from
        ``RecvWindow.select`` (which records rcv_wup/rcv_wnd like ``tcp_select_window``), ECN
        marks (``_ecn_out``) and ``tcp_event_ack_sent`` (one quick ACK used, pending ACK and
        delack timer cleared). Returns the host's verdict, non-zero when the device dropped
        the segment: ``__tcp_transmit_skb`` then enters CWR (``tcp_enter_cwr``), the
        ``net_xmit_eval`` error its callers see."""
        o = TcpOptions()
        if self.ts_ok:
            o.ts = (self.stack.ts_now(self.ts_off), self.ts_recent)
        if self.sack_ok and (self.reasm.blocks or self.dsack):
            limit = 3 if self.ts_ok else 4
            if self.dsack:
                o.sack_blocks = (self.dsack,) + tuple(self.reasm.sack_blocks(limit - 1))
                self.dsack = None
            else:
                o.sack_blocks = tuple(self.reasm.sack_blocks(limit))
        wnd = self.win.select(self.rcv_nxt, len(self.rcvq), self.win.rcv_mss)
        tos = 0
        if self.ecn_ok:
            flags, tos = self._ecn_out(flags, new_data)
        seg = Segment(self.laddr, self.raddr, self.lport, self.rport, seq=seq, ack=self.rcv_nxt,
                      flags=flags, window=wnd, options=o, payload=payload, tos=self.tos | tos)
        mss = self.mss
        if len(payload) > mss:
            seg.gso_size = mss        # TSO: tcp_gso_segment cuts it; pcount segments out
            self.segs_out += -(-len(payload) // mss)
        else:
            self.segs_out += 1
        self.lastsnd = now
        err = self.stack.emit(seg)
        if flags & ACK:
            self.dack.ack_sent()
            self.dack_at = None
        if err:
            self._enter_cwr(now)
        return err

    def _send_ack(self, now: float, seq: int | None = None) -> int:
        """``tcp_send_ack``: a bare ACK at the highest sequence sent (Linux's snd_nxt; ours
        rewinds during go-back-N, and an old sequence number would make the peer drop the
        ACK as out of window), or at ``seq`` for a window probe (``tcp_xmit_probe_skb``, whose
        error, non-zero when the device dropped it, ``tcp_send_probe0`` reads)."""
        if self.state is SYN_RECV:
            return 0
        return self._output(ACK, self.snd_max if seq is None else seq, b"", now)

    def _send_dupack(self, seg: Segment, now: float) -> None:
        """``tcp_send_dupack``: old data means our ACK was lost: quick-ACK mode, then ACK."""
        if seg.payload and seq_lt(seg.seq, self.rcv_nxt):
            self.stack.counters[mib.TcpExtDelayedACKLost] += 1
            end = (seg.seq + len(seg.payload)) & MASK
            self._dsack_set(seg.seq, end if seq_lt(end, self.rcv_nxt) else self.rcv_nxt)
            self._enter_quickack()
        self._send_ack(now)

    def _dsack_set(self, left: int, right: int) -> None:
        """``tcp_dsack_set`` (RFC 2883, net.ipv4.tcp_dsack=1): report the duplicate range as
        the first SACK block of the next ACK (TcpExtTCPDSACKOldSent)."""
        if self.sack_ok and self.profile.get("net.ipv4.tcp_dsack", 1):
            self.dsack = (left, right)
            self.stack.counters[mib.TcpExtTCPDSACKOldSent] += 1

    def _oow_limited(self, seg: Segment | None, now: float, counter: str) -> bool:
        """``tcp_oow_rate_limited`` (``oow.oow_rate_limited``); ``seg`` None for a challenge
        ACK (``__tcp_oow_rate_limited``: no exemption for data)."""
        has_data = seg is not None and seg.seg_len > 0
        syn = seg is not None and bool(seg.flags & SYN)
        if oow_rate_limited(self.last_oow, now,
                            self.profile.get("net.ipv4.tcp_invalid_ratelimit", 500), has_data, syn):
            self.stack.counters[counter] += 1
            return True
        if syn or not has_data:
            self.last_oow = now
        return False

    def _syn_challenge(self, now: float) -> None:
        self.stack.counters[mib.TcpExtTCPSYNChallenge] += 1
        self._challenge_ack(now)

    def _challenge_ack(self, now: float) -> None:
        """``tcp_send_challenge_ack`` (RFC 5961 3.2/4.2/5.2): per socket one per
        tcp_invalid_ratelimit, then the per-namespace tcp_challenge_ack_limit per second."""
        if self._oow_limited(None, now, mib.TcpExtTCPACKSkippedChallenge):
            return
        if not self.stack.challenge_allowed(now):
            return
        self.stack.counters[mib.TcpExtTCPChallengeACK] += 1
        self._send_ack(now)

    def _send_rst(self, now: float) -> None:
        """Active reset (``tcp_send_active_reset``): RST|ACK at snd_nxt, with the TS option
        when the connection uses timestamps (it goes out through tcp_transmit_skb)."""
        o = TcpOptions(ts=(self.stack.ts_now(self.ts_off), self.ts_recent)) if self.ts_ok else TcpOptions()
        seg = Segment(self.laddr, self.raddr, self.lport, self.rport, seq=self.snd_max,
                      ack=self.rcv_nxt, flags=RST | ACK, options=o)
        self.segs_out += 1
        self.stack.emit(seg)

    def _send_rst_for(self, seg: Segment) -> None:
        """A reset made from an ACK segment (``tcp_v4_send_reset``): <SEQ=SEG.ACK><CTL=RST>, for an
        unacceptable ACK in SYN-SENT/SYN-RECV (RFC 9293 3.10.7.3) and data for a closed socket."""
        self.stack.emit(Segment(self.laddr, self.raddr, self.lport, self.rport, seq=seg.ack,
                                flags=RST))
