"""Congestion control, in segments, with time passed in.

``make_cc(name, mss)`` returns Reno/NewReno (RFC 5681, RFC 6582; Linux ``tcp_reno_cong_avoid``)
or CUBIC (RFC 9438; Linux ``tcp_cubic.c``, the ``bictcp_*`` functions). Both start with
cwnd = 10 (``TCP_INIT_CWND``, RFC 6928) and ssthresh = 0x7fffffff (``TCP_INFINITE_SSTHRESH``).

The connection owns loss detection and tells the controller what happened:
``on_ack`` for newly acknowledged segments outside recovery, ``on_enter_recovery`` on fast
retransmit, ``on_exit_recovery`` when recovery ends, ``on_timeout`` on RTO. Like Linux
(``tcp_is_cwnd_limited``), the window only grows when the sender was cwnd-limited: pass
``cwnd_limited=False`` for application-limited ACKs.
"""
from __future__ import annotations

from .seq import seq_gt

INIT_CWND = 10
INFINITE_SSTHRESH = 0x7FFFFFFF


class _Cc:
    __slots__ = ("name", "mss", "cwnd", "ssthresh", "cwnd_cnt", "in_recovery")

    def __init__(self, name: str, mss: int):
        self.name = name
        self.mss = mss
        self.cwnd = INIT_CWND
        self.ssthresh = INFINITE_SSTHRESH
        self.cwnd_cnt = 0          # snd_cwnd_cnt: ACKed segments toward the next +1
        self.in_recovery = False

    def in_slow_start(self) -> bool:
        """``tcp_in_slow_start``: cwnd < ssthresh."""
        return self.cwnd < self.ssthresh

    def _slow_start(self, acked: int) -> int:
        """``tcp_slow_start`` (RFC 5681 3.1, no ABC limit): grow by acked, not past ssthresh.
        Returns the ACKed segments left over for congestion avoidance."""
        cwnd = min(self.cwnd + acked, self.ssthresh)
        acked -= cwnd - self.cwnd
        self.cwnd = cwnd
        return acked

    def _cong_avoid_ai(self, w: int, acked: int) -> None:
        """``tcp_cong_avoid_ai``: +1 segment per w ACKed segments, with carry."""
        if self.cwnd_cnt >= w:
            self.cwnd_cnt = 0
            self.cwnd += 1
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= w:
            delta = self.cwnd_cnt // w
            self.cwnd_cnt -= delta * w
            self.cwnd += delta

    def on_exit_recovery(self) -> None:
        """Recovery finished: cwnd = ssthresh (``tcp_end_cwnd_reduction``, RFC 6582 full ACK)."""
        if self.in_recovery and self.ssthresh < INFINITE_SSTHRESH:
            self.cwnd = self.ssthresh
        self.in_recovery = False

    def current_ssthresh(self) -> int:
        """``tcp_current_ssthresh``: outside recovery, at least 3/4 of cwnd."""
        if self.in_recovery:
            return self.ssthresh
        return max(self.ssthresh, (self.cwnd >> 1) + (self.cwnd >> 2))

    def cwnd_restart(self, idle: float, rto: float) -> None:
        """``tcp_cwnd_restart`` (RFC 5681 4.1, RFC 2861): new data after ``idle`` seconds with
        nothing in flight and idle > RTO (net.ipv4.tcp_slow_start_after_idle=1, checked by the
        caller, as ``tcp_slow_start_after_idle_check``): halve cwnd per RTO of idle time, not
        below the initial window."""
        self.ssthresh = self.current_ssthresh()
        restart = min(INIT_CWND, self.cwnd)
        cwnd = self.cwnd
        idle -= rto
        while idle > 0 and cwnd > restart:
            cwnd >>= 1
            idle -= rto
        self.cwnd = max(cwnd, restart)

    def on_tx_start(self, now: float, idle: float) -> None:
        """``CA_EVENT_TX_START``: sending with nothing in flight after ``idle`` seconds."""

    def __repr__(self) -> str:
        return f"<{self.name} cwnd={self.cwnd} ssthresh={self.ssthresh}>"


class Reno(_Cc):
    """RFC 5681 / RFC 6582 NewReno window arithmetic (Linux ``tcp_reno_cong_avoid``)."""

    __slots__ = ()

    def on_ack(self, acked_segs: int, now: float, rtt: float | None = None, cwnd_limited: bool = True,
               snd_una: int | None = None, snd_nxt: int | None = None) -> None:
        """Slow start then +1 per cwnd ACKed segments (``tcp_reno_cong_avoid``). snd_una/snd_nxt
        are accepted for the common interface (CUBIC's HyStart uses them); Reno has no HyStart."""
        if self.in_recovery or not cwnd_limited or acked_segs <= 0:
            return
        if self.cwnd < self.ssthresh:
            acked_segs = self._slow_start(acked_segs)
            if not acked_segs:
                return
        self._cong_avoid_ai(self.cwnd, acked_segs)

    def _ssthresh(self) -> int:
        """``tcp_reno_ssthresh``: max(cwnd / 2, 2). RFC 5681 eq. (4) halves FlightSize; Linux
        (and FreeBSD's newreno) halve cwnd, which differs when the sender is app-limited."""
        return max(self.cwnd >> 1, 2)

    def on_enter_recovery(self, now: float, inflight_segs: int) -> None:
        """Fast retransmit or ECN's CWR: ssthresh = ``_ssthresh``; cwnd = ssthresh (where
        Linux's PRR ends up). ``inflight_segs`` is unused (the common interface)."""
        self.ssthresh = self._ssthresh()
        self.cwnd = self.ssthresh
        self.cwnd_cnt = 0
        self.in_recovery = True

    def on_timeout(self, inflight_segs: int, repeat: bool = False) -> None:
        """RTO (``tcp_enter_loss``): ssthresh = ``_ssthresh``, cwnd = 1. ``repeat``: the same
        data timed out again; ssthresh is held (RFC 5681 3.1)."""
        if not repeat:
            self.ssthresh = self._ssthresh()
        self.cwnd = 1
        self.cwnd_cnt = 0
        self.in_recovery = False


# HyStart (tcp_cubic.c): hystart_low_window, hystart_ack_delta_us, HYSTART_MIN_SAMPLES,
# HYSTART_DELAY_MIN/MAX; hystart_ack_delay() is at most 1 ms (USEC_PER_MSEC).
HYSTART_LOW_WINDOW = 16
HYSTART_ACK_DELTA = 0.002
HYSTART_ACK_DELAY = 0.001
HYSTART_MIN_SAMPLES = 8
HYSTART_DELAY_MIN = 0.004
HYSTART_DELAY_MAX = 0.016

# CUBIC constants as Linux has them: beta = 717/1024, C = bic_scale 41 * 10 / 1024.
BETA = 717
BETA_SCALE = 1024
CUBE_C = 41 * 10 / 1024
# tcp_friendliness (cubictcp_register's beta_scale): 8 / alpha with RFC 9438's
# alpha = 3 (1 - beta) / (1 + beta), in integers: 8 * (1024 + beta) / 3 / (1024 - beta) = 15,
# so W_est gains one segment per 15/8 * cwnd ACKed segments (alpha ~ 0.53 per RTT).
_FRIENDLY_SCALE = 8 * (BETA_SCALE + BETA) // 3 // (BETA_SCALE - BETA)


class Cubic(_Cc):
    """CUBIC (RFC 9438) in Linux's ``tcp_cubic.c`` form: fast convergence and TCP
    friendliness on, target computed one ``delay_min`` ahead (``bictcp_update``).

    HyStart (``hystart_update``: ACK-train and delay detection, on by default in Linux) runs
    when the caller passes ``snd_una``/``snd_nxt`` to ``on_ack`` (it needs them to find round
    boundaries); without them slow start ends only at ssthresh.

    Not modelled: pacing (``hystart_ack_delay`` is taken as 1 ms and the ACK-train threshold
    is halved as for an unpaced socket). ``bictcp_update``'s cache of ``cnt`` is kept in the
    usec form of 6.11+ ("tcp_cubic: switch ca->last_time to usec resolution") for every
    profile; older kernels count jiffies, which at HZ=1000 is the same to the millisecond.
    """

    __slots__ = ("last_max_cwnd", "epoch_start", "origin", "k", "delay_min", "ack_cnt", "tcp_cwnd", "cnt",
                 "last_cwnd", "last_time", "found", "round_start", "last_ack", "end_seq", "curr_rtt", "sample_cnt")

    def __init__(self, name: str, mss: int):
        super().__init__(name, mss)
        self._reset()

    def _reset(self) -> None:
        """``bictcp_reset``: forget the epoch, W_max and delay_min."""
        self.last_max_cwnd = 0      # W_max
        self.epoch_start: float | None = None
        self.origin = 0
        self.k = 0.0
        self.delay_min = 0.0
        self.ack_cnt = 0
        self.tcp_cwnd = 0           # Reno-friendly estimate W_est
        self.cnt = 0
        self.last_cwnd = 0          # cwnd and time of the last full cnt computation
        self.last_time = 0.0
        self.found: str | None = None   # "train" / "delay": how HyStart ended slow start
                                        # (TCPHystartTrainDetect / TCPHystartDelayDetect)
        self.end_seq: int | None = None   # HyStart round ends when snd_una passes this

    def _hystart_reset(self, now: float, snd_nxt: int) -> None:
        """``bictcp_hystart_reset``: a new round starts."""
        self.round_start = self.last_ack = now
        self.end_seq = snd_nxt
        self.curr_rtt = float("inf")
        self.sample_cnt = 0

    def _hystart_update(self, now: float, delay: float, snd_una: int, snd_nxt: int) -> None:
        """``hystart_update`` (5.7+ form, 4e1fddc98d25): start a new round once snd_una passes
        end_seq; leave slow start (ssthresh = cwnd) on an ACK train longer than about half the
        minimum RTT, or when the round's minimum RTT exceeds delay_min by
        clamp(delay_min / 8, 4 ms, 16 ms) after 8 samples."""
        if seq_gt(snd_una, self.end_seq):
            self._hystart_reset(now, snd_nxt)
        if now - self.last_ack <= HYSTART_ACK_DELTA:
            self.last_ack = now
            if now - self.round_start > (self.delay_min + HYSTART_ACK_DELAY) / 2:
                self.found = "train"
                self.ssthresh = self.cwnd
                return
        if delay < self.curr_rtt:
            self.curr_rtt = delay
        if self.sample_cnt < HYSTART_MIN_SAMPLES:
            self.sample_cnt += 1
        elif self.curr_rtt > self.delay_min + min(max(self.delay_min / 8, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX):
            self.found = "delay"
            self.ssthresh = self.cwnd

    def target(self, t: float) -> int:
        """W_cubic at t seconds after the epoch start: origin + C (t - K)^3 (RFC 9438 eq. 1),
        truncated toward the origin like Linux's fixed-point delta."""
        offs = t - self.k
        delta = int(CUBE_C * abs(offs) ** 3)
        return self.origin + delta if offs >= 0 else self.origin - delta

    def _update(self, acked: int, now: float) -> None:
        """``bictcp_update``: how many ACKed segments per +1 (``cnt``). ``cnt`` is cached: with
        cwnd unchanged it is recomputed at most every 1/32 s (the ACKs still count toward the
        Reno estimate later), and within 1 ms of the last computation only the TCP-friendly
        bound is applied again."""
        cwnd = self.cwnd
        self.ack_cnt += acked
        since = now - self.last_time
        if self.last_cwnd == cwnd and since <= 1 / 32:
            return
        if self.epoch_start is None or since >= 0.001:
            self.last_cwnd = cwnd
            self.last_time = now
            if self.epoch_start is None:
                self.epoch_start = now
                self.ack_cnt = acked
                self.tcp_cwnd = cwnd
                if self.last_max_cwnd <= cwnd:
                    self.k = 0.0
                    self.origin = cwnd
                else:
                    self.k = ((self.last_max_cwnd - cwnd) / CUBE_C) ** (1 / 3)
                    self.origin = self.last_max_cwnd
            target = self.target(now - self.epoch_start + self.delay_min)
            if target > cwnd:
                cnt = cwnd // (target - cwnd)
            else:
                cnt = 100 * cwnd        # tiny growth in the plateau
            if self.last_max_cwnd == 0 and cnt > 20:
                cnt = 20                # no W_max yet: at least +5 % per RTT
            self.cnt = cnt
        # TCP friendliness: never slower than Reno with the same beta.
        delta = (cwnd * _FRIENDLY_SCALE) >> 3
        if delta > 0:
            while self.ack_cnt > delta:
                self.ack_cnt -= delta
                self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            max_cnt = cwnd // (self.tcp_cwnd - cwnd)
            if self.cnt > max_cnt:
                self.cnt = max_cnt
        self.cnt = max(self.cnt, 2)

    def on_ack(self, acked_segs: int, now: float, rtt: float | None = None, cwnd_limited: bool = True,
               snd_una: int | None = None, snd_nxt: int | None = None) -> None:
        """``bictcp_acked`` (delay_min, HyStart) then ``bictcp_cong_avoid``. ``snd_una`` is
        the cumulative ACK after this ACK, ``snd_nxt`` the next sequence number to send."""
        hystart = snd_una is not None and snd_nxt is not None
        if hystart and self.end_seq is None:
            # cubictcp_init ran at snd_nxt == snd_una: the first update starts a round.
            self._hystart_reset(now, (snd_una - 1) & 0xFFFFFFFF)
        if rtt is not None and rtt > 0:
            # bictcp_acked discards samples for 1 s after an epoch starts (post-recovery noise).
            if self.epoch_start is None or now - self.epoch_start >= 1.0:
                if self.delay_min == 0 or rtt < self.delay_min:
                    self.delay_min = rtt
                if hystart and not self.found and self.cwnd < self.ssthresh \
                        and self.cwnd >= HYSTART_LOW_WINDOW:
                    self._hystart_update(now, rtt, snd_una, snd_nxt)
        if self.in_recovery or not cwnd_limited or acked_segs <= 0:
            return
        if self.cwnd < self.ssthresh:
            acked_segs = self._slow_start(acked_segs)
            if not acked_segs:
                return
        self._update(acked_segs, now)
        self._cong_avoid_ai(self.cnt, acked_segs)

    def on_tx_start(self, now: float, idle: float) -> None:
        """``cubictcp_cwnd_event(CA_EVENT_TX_START)``: the application was idle; shift the
        epoch by the idle time so growth resumes where the curve was, not further along."""
        if self.epoch_start is not None and idle > 0:
            self.epoch_start = min(self.epoch_start + idle, now)

    def _recalc_ssthresh(self) -> int:
        """``bictcp_recalc_ssthresh``: W_max with fast convergence, ssthresh = cwnd * beta."""
        self.epoch_start = None
        cwnd = self.cwnd
        if cwnd < self.last_max_cwnd:
            self.last_max_cwnd = cwnd * (BETA_SCALE + BETA) // (2 * BETA_SCALE)
        else:
            self.last_max_cwnd = cwnd
        return max(cwnd * BETA // BETA_SCALE, 2)

    def on_enter_recovery(self, now: float, inflight_segs: int) -> None:
        """Fast retransmit: ssthresh = 0.7 cwnd, cwnd = ssthresh (PRR's end point).
        Linux's CUBIC uses cwnd, not FlightSize; ``inflight_segs`` is unused."""
        self.ssthresh = self._recalc_ssthresh()
        self.cwnd = self.ssthresh
        self.cwnd_cnt = 0
        self.in_recovery = True

    def on_timeout(self, inflight_segs: int, repeat: bool = False) -> None:
        """RTO (``tcp_enter_loss``): ssthresh from ``bictcp_recalc_ssthresh`` (held when
        ``repeat``), cwnd = 1, then ``bictcp_state(TCP_CA_Loss)`` resets W_max and the epoch."""
        if not repeat:
            self.ssthresh = self._recalc_ssthresh()
        self._reset()
        self.cwnd = 1
        self.cwnd_cnt = 0
        self.in_recovery = False


_ALGOS = {"reno": Reno, "newreno": Reno, "cubic": Cubic}


def make_cc(name: str, mss: int) -> Reno | Cubic:
    """A fresh controller by name ("reno", "newreno", "cubic")."""
    try:
        cls = _ALGOS[name]
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}; choose one of {', '.join(_ALGOS)}") from None
    return cls(name, mss)
