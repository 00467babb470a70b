"""Retransmission timeout estimator: RFC 6298 with Linux's arithmetic.

Modelled on ``tcp_rtt_estimator`` and ``__tcp_set_rto``/``tcp_bound_rto`` (net/ipv4/tcp_input.c):

* srtt gain 1/8, mdev gain 1/4 (RFC 6298 alpha/beta), first sample srtt = R, mdev = R/2;
* Linux's Eifel-like tweak: when the sample is *below* srtt and |err| exceeds mdev, mdev grows
  with gain 1/32 instead of 1/4, so a falling RTT does not inflate the RTO;
* RTO = srtt + var, where var (Linux ``rttvar_us``) follows the largest 4 * mdev seen in the
  current round trip (``mdev_max_us``, floored at ``tcp_rto_min``): it rises at once and, at
  the end of each round, decays a quarter of the way down to that round's maximum. The 200 ms
  floor thus applies to the variance term, not to the whole RTO as in RFC 6298 2.4: a 1 ms
  path gets RTO 201 ms, which is what ``ss -ti`` shows on loopback.

Linux ends a round when snd_una passes ``rtt_seq``; callers that take one sample per round
trip (BSD-style timing of one segment) leave ``round_end=True``; callers sampling every ACK
pass ``round_end`` themselves.
Backoff (``inet_csk_rto_backoff``): rto << backoffs, capped at rto_max.
"""
from __future__ import annotations

TIMEOUT_FALLBACK = 3.0   # TCP_TIMEOUT_FALLBACK, RFC 6298 5.7


class RtoEstimator:
    __slots__ = ("rto_initial", "rto_min", "rto_max", "srtt", "rttvar", "backoffs", "_base", "samples",
                 "var", "mdev_max", "min_rtt")

    def __init__(self, rto_initial: float = 1.0, rto_min: float = 0.2, rto_max: float = 120.0):
        if not 0 < rto_min <= rto_max or not 0 < rto_initial:
            raise ValueError(f"bad RTO bounds: initial={rto_initial} min={rto_min} max={rto_max}")
        self.rto_initial = rto_initial
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.srtt: float | None = None     # seconds, None until the first sample
        self.rttvar: float | None = None   # mdev (RFC 6298 RTTVAR; tcpi_rttvar), seconds
        self.var = 0.0                     # rttvar_us: the variance term of the RTO
        self.mdev_max = 0.0                # mdev_max_us: largest 4 * mdev this round
        self.min_rtt: float | None = None  # tcp_min_rtt (the 5-minute window is not modelled)
        self.backoffs = 0
        self.samples = 0
        self._base = min(rto_initial, rto_max)

    @property
    def rto(self) -> float:
        """Current timeout with exponential backoff applied, capped at rto_max."""
        return min(self._base * (1 << min(self.backoffs, 31)), self.rto_max)

    def sample(self, rtt: float, round_end: bool = True) -> None:
        """Feed one valid RTT measurement in seconds (Karn's rule is the caller's job).

        ``tcp_rtt_estimator`` then ``tcp_set_rto``; a new sample does not clear backoff: Linux
        resets ``icsk_backoff`` when an ACK acknowledges new data (see ``reset_backoff``).
        """
        if rtt <= 0:
            rtt = 1e-6    # Linux clamps m to 1 us
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt            # tcp_update_rtt_min
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
            self.var = self.mdev_max = max(2 * rtt, self.rto_min)
        else:
            err = rtt - self.srtt
            self.srtt += err / 8
            if err < 0:
                d = -err - self.rttvar
                if d > 0:
                    d /= 8          # gain 1/32 when the RTT falls (tcp_rtt_estimator)
            else:
                d = err - self.rttvar
            self.rttvar += d / 4
            v = 4 * self.rttvar
            if v > self.mdev_max:
                self.mdev_max = v
                if v > self.var:
                    self.var = v
            if round_end:
                if self.mdev_max < self.var:
                    self.var -= (self.var - self.mdev_max) / 4
                self.mdev_max = self.rto_min
        self.samples += 1
        self._base = min(self.srtt + self.var, self.rto_max)

    def backoff(self) -> None:
        """The retransmission timer fired: double the timeout (``icsk_backoff++``)."""
        self.backoffs += 1    # keeps counting past the cap: callers use it as retry count

    def reset_backoff(self) -> None:
        """New data acknowledged: back to the computed RTO (``icsk_backoff = 0``)."""
        self.backoffs = 0

    def fallback(self) -> None:
        """No RTT sample from the handshake: RTO 3 s (``tcp_init_metrics``, RFC 6298 5.7).

        Linux applies this when srtt is still 0 once the connection is established, which
        happens when the SYN or SYN-ACK was retransmitted (Karn forbids the sample).
        """
        if self.srtt is None:
            self.rttvar = TIMEOUT_FALLBACK / 4   # mdev_us = 3 s is 4x the RFC RTTVAR
            self.var = self.mdev_max = TIMEOUT_FALLBACK
            self._base = min(TIMEOUT_FALLBACK, self.rto_max)
