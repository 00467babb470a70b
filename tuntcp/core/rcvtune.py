"""Receive-buffer autotuning of a Connection (Linux dynamic right-sizing): the receiver RTT
estimate (``tcp_rcv_rtt_measure``, ``tcp_rcv_rtt_measure_ts``) and ``tcp_rcv_space_adjust``
growing sk_rcvbuf and window_clamp after reads. A mixin of ``Connection``."""
from __future__ import annotations

from .seq import HALF, MASK, seq_lt
from . import window as _window
from .consts import SKB_TRUESIZE_OVERHEAD
from ..wire.segment import Segment


class RcvTuneMixin:
    __slots__ = ()

    def _init_rcvtune(self, now: float) -> None:
        """The autotuning fields of a new connection."""
        self.rcv_rtt = 0.0           # smoothed receiver-side RTT, s (rcv_rtt_est.rtt_us >> 3)
        self.rcv_rtt_seq = 0
        self.rcv_rtt_time = None
        self.rcv_rtt_last_tsecr = 0
        self.rcvq_space = 0
        self.rcvq_seq = 0
        self.rcvq_time = now
        self.copied = 0              # bytes the application has read (copied_seq)

    def _init_rcvq_space(self, now: float) -> None:
        """``tcp_init_buffer_space``'s autotuning start: the first measurement compares
        against min(rcv_ssthresh, rcv_wnd, TCP_INIT_CWND * advmss)."""
        win = self.win
        self.rcvq_space = min(win.rcv_ssthresh, win.rcv_wnd, 10 * self.advmss)
        self.rcvq_seq = self.copied
        self.rcvq_time = now

    def _rcv_space_adjust(self, now: float) -> None:
        """``tcp_rcv_space_adjust`` (dynamic right-sizing), after each read: once per receiver
        RTT, compare the bytes the application copied with the previous RTT's (rcvq_space).
        If more, and net.ipv4.tcp_moderate_rcvbuf=1 and SO_RCVBUF was not set (a locked buffer,
        like the Kafka broker's, never grows): want a window of 2 * copied + 16 * advmss, plus
        twice its relative growth (sender in slow start), turn it into buffer space and grow
        sk_rcvbuf to that (at most tcp_rmem[2]); window_clamp follows (win_from_space).
        Buffer per window: adv_win_scale kernels (4.19-6.5) charge whole segments of
        SKB_TRUESIZE(advmss + MAX_TCP_HEADER) rounded up until one holds advmss; 6.6+
        (``tcp_space_from_win``) divide by the connection's scaling ratio; window_clamp is
        ``tcp_win_from_space`` of the new buffer with that ratio."""
        if self.rcv_rtt <= 0 or now - self.rcvq_time < self.rcv_rtt:
            return
        copied = self.copied - self.rcvq_seq
        space = self.rcvq_space
        if copied > space:
            win = self.win
            p = self.profile
            if p.get("net.ipv4.tcp_moderate_rcvbuf", 1) and not self.rcvbuf_locked and space:
                advmss = self.advmss
                rcvwin = 2 * copied + 16 * advmss
                rcvwin += 2 * (rcvwin * (copied - space) // space)
                if p["model.win_from_space"] == "scaling_ratio":
                    want = (rcvwin << 8) // win.scaling_ratio    # tcp_space_from_win
                else:
                    rcvmem = advmss + SKB_TRUESIZE_OVERHEAD
                    while _window.win_from_space(p, rcvmem) < advmss:
                        rcvmem += 128
                    want = rcvwin // advmss * rcvmem
                rcvbuf = min(want, p["net.ipv4.tcp_rmem"][2])
                if rcvbuf > win.rcvbuf:
                    win.rcvbuf = rcvbuf     # grows without locking
                    win.window_clamp = win.win_from_space(rcvbuf)
            self.rcvq_space = copied
        self.rcvq_seq = self.copied
        self.rcvq_time = now

    def _rcv_rtt_update(self, sample: float, win_dep: bool) -> None:
        """``tcp_rcv_rtt_update``: a 1/8 EWMA of timestamp samples; per-window samples
        (``win_dep``) only ever lower the estimate."""
        if not self.rcv_rtt:
            self.rcv_rtt = sample
        elif not win_dep:
            self.rcv_rtt += (sample - self.rcv_rtt) / 8
        elif sample < self.rcv_rtt:
            self.rcv_rtt = sample

    def _rcv_rtt_measure(self, now: float) -> None:
        """``tcp_rcv_rtt_measure`` (no timestamps needed): the time for the peer to fill one
        advertised window beyond the point where the measurement started."""
        if self.rcv_rtt_time is not None:
            if seq_lt(self.rcv_nxt, self.rcv_rtt_seq):
                return
            self._rcv_rtt_update(max(now - self.rcv_rtt_time, 1e-6), True)
        self.rcv_rtt_seq = (self.rcv_nxt + self.win.rcv_wnd) & MASK
        self.rcv_rtt_time = now

    def _rcv_rtt_measure_ts(self, seg: Segment) -> None:
        """``tcp_rcv_rtt_measure_ts``: a segment of at least rcv_mss echoing a new TSecr gives
        a receiver RTT sample of our TS clock minus TSecr (1 ms ticks, 0 counts as 1)."""
        ts = seg.options.ts
        if ts is None or not self.ts_ok or ts[1] == self.rcv_rtt_last_tsecr:
            return
        self.rcv_rtt_last_tsecr = ts[1]
        if len(seg.payload) >= self.win.rcv_mss:
            delta = (self.stack.ts_now(self.ts_off) - ts[1]) & MASK
            if delta < HALF:
                self._rcv_rtt_update(max(delta, 1) / 1000.0, False)
