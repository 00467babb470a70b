"""The send-time log of a Connection: when each new-data segment went out (``skb->skb_mstamp_ns``
in Linux's retransmit queue), for ``tcp_clean_rtx_queue``'s ca_rtt (HyStart, Karn) and
TCPCB_RETRANS marks. Entries are ``[end_seq, sent at or None once retransmitted]``, plus the
start seq for a TSO segment or one that does not follow the previous entry (the first one sent
after an RTO emptied the log). A mixin of ``Connection``."""
from __future__ import annotations

from collections import deque

from .seq import HALF, MASK, seq_gt, seq_lt


class TxLogMixin:
    __slots__ = ()

    def _log_sent(self, seq: int, end: int, n: int, now: float) -> None:
        """New data [seq, end) of ``n`` bytes went out at ``now`` (the log is made by the first
        send); also remembers where the last new-data segment starts (the "last skb")."""
        tt = self.tx_times
        if tt is None:
            tt = self.tx_times = deque()
        mss = self.mss
        if n > mss:
            # a TSO segment: one [end, sent, start] entry (_ack_rtts trims it by whole MSS);
            # its last piece is what a loss probe resends (tcp_send_loss_probe's tcp_fragment)
            tt.append([end, now, seq])
            self.last_new_seq = (seq + (n - 1) // mss * mss) & MASK
        else:
            self.last_new_seq = seq
            # after a gap (the RTO emptied the log; the go-back-N retransmissions below are
            # not logged) the entry keeps its start: _sack_rtts must not stretch it down to
            # snd_una, where a TSO entry would know its own start
            tt.append([end, now] if tt and tt[-1][0] == seq else [end, now, seq])

    def _ack_rtts(self, ack: int, now: float) -> tuple[float, float] | None:
        """``tcp_clean_rtx_queue``'s (seq_rtt, ca_rtt): time since the oldest and the newest
        segment this ACK covers completely were sent; none if any covered segment was
        retransmitted (Karn: FLAG_RETRANS_DATA_ACKED)."""
        tt = self.tx_times
        first = last = None
        retx = False
        while tt and ((ack - tt[0][0]) & MASK) < HALF:     # entry end <= ack
            t = tt.popleft()[1]
            if t is None:
                retx = True
            else:
                last = t
                if first is None:
                    first = t
        if tt and len(tt[0]) == 3:
            # a TSO entry [end, sent, start]: ``tcp_tso_acked`` trims the whole MSS the ACK
            # covers off the skb, and a trimmed skb counts as ACKed for ca_rtt
            e = tt[0]
            d = (ack - e[2]) & MASK
            if HALF > d >= self.mss:
                e[2] = (e[2] + d - d % self.mss) & MASK
                if e[1] is None:
                    retx = True
                else:
                    last = e[1]
                    if first is None:
                        first = last
        if retx or last is None:
            return None
        return now - first, now - last

    def _mark_retrans(self, seq: int, end: int) -> None:
        """TCPCB_RETRANS on the send-time entries a retransmission of [seq, end) covers: no
        RTT sample from them (Karn). A TSO entry [end, sent, start] is first cut at the MSS
        boundaries around the range (``tcp_fragment`` before ``tcp_retransmit_skb``), so its
        other pieces keep their send time."""
        tt = self.tx_times
        if not tt:
            return
        mss = self.mss
        i = 0
        while i < len(tt):
            e = tt[i]
            if seq_gt(e[0], seq):
                if len(e) == 3 and e[1] is not None:
                    eend, t, lo = e
                    d = (seq - lo) & MASK
                    if d < HALF and d >= mss:           # pieces below the range keep t
                        cut = (lo + d - d % mss) & MASK
                        tt.insert(i, [cut, t, lo])
                        i += 1
                        lo = e[2] = cut
                    d = (end - lo) & MASK
                    hi = (lo + max(-(-d // mss) if d < HALF else 0, 1) * mss) & MASK
                    if seq_lt(hi, eend):                # pieces above the range keep t
                        e[0] = hi
                        tt.insert(i + 1, [eend, t, hi])
                e[1] = None
                if not seq_lt(e[0], end):
                    break
            i += 1
