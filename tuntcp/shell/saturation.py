"""Is this run measuring the modelled kernel, or the Python process's CPU?

The endpoint calls two hooks per pass of its loop:

    sat.on_pass(now, due)   due: the earliest deadline (stack timer or link-model delivery)
                            pending when the pass starts; if due <= now the pass is late by
                            now - due (loop lag: a packet or timer handled after it was due)
    sat.on_batch(n)         packets handled by the pass

``report()`` adds the CPU share of the process (``time.process_time()`` over wall time since
``start()``), TUN ring drops (our refused writes, TuntcpTunTxDrops, plus the TUN's tx_dropped /
rx_dropped from ``tun_stats()``), and a verdict:

    cpu-bound    cpu_share >= CPU_BOUND_SHARE (the loop was busy nearly all the time), or
                 a process the measurement depends on (``others``: producers, a kernel broker)
                 used as much, or the machine's CPUs were >= MACHINE_BUSY busy, or
                 loop lag p99 > LAG_SHARE_OF_RTT x the link RTT (at least LAG_FLOOR_MS), or
                 the TUN ring dropped packets (the reader fell behind the kernel's writes)
    model-bound  otherwise: packets and timers were handled when due, so latencies are the
                 model's (and the link's) and not the queue in front of the Python loop.

Why these numbers (measured 2026-12-06 on the shared 2-core machine, docs/storm-report.md): a
100-producer storm at 20 ms RTT had cpu_share 0.2 and lag p99 2.9-3.8 ms (limit 5 ms); the
1,000-producer default storm, whose fixed column issue 11 showed as slow as the buggy one, had
endpoint cpu_share 0.2-0.6 but lag p99 10-28 ms, thousands of TUN ring drops and every CPU of
the machine busy. The endpoint's own share alone would have called that run model-bound, hence
the lag, drop and machine tests. A lag of a quarter of the RTT already stretches each of the
buggy window's ~42 round trips per request by that much.

Lag is kept in a log histogram (8 buckets per octave of microseconds, ~9 % resolution), so
memory stays constant however long the run.
"""
from __future__ import annotations

import math
import time

from .. import mib

CPU_BOUND_SHARE = 0.9     # of one core: the endpoint is a single trio thread
LAG_SHARE_OF_RTT = 0.25
LAG_FLOOR_MS = 2.0        # below this, scheduler noise on a shared machine, not saturation
MACHINE_BUSY = 0.95       # every core busy: the processes of the run wait for each other
_PER_OCTAVE = 8


def _bucket(us: float) -> int:
    return int(math.log2(us + 1.0) * _PER_OCTAVE)


def _bucket_ms(b: int) -> float:
    # upper edge of bucket b, in ms
    return (2.0 ** ((b + 1) / _PER_OCTAVE) - 1.0) / 1000.0


def _hist_pct(hist: dict[int, int], n: int, p: float):
    if not n:
        return None
    rank, seen = max(1, math.ceil(p * n)), 0
    for k in sorted(hist):
        seen += hist[k]
        if seen >= rank:
            return k
    return max(hist)


def _machine_ticks():
    """(busy, total) jiffies of all CPUs from /proc/stat (host-wide: other work counts too)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)       # idle + iowait
    return sum(v) - idle, sum(v)


def _machine_busy(t0, t1):
    if t0 is None or t1 is None or t1[1] <= t0[1]:
        return None
    return (t1[0] - t0[0]) / (t1[1] - t0[1])


class Saturation:
    def __init__(self, *, rtt_ms: float = 0.0, tun_stats=None, counters=None,
                 wall=time.monotonic, cpu=time.process_time, machine=None):
        self.wall, self.cpu = wall, cpu     # clocks for the CPU share (tests pass fakes)
        self.machine = machine or _machine_ticks
        self.rtt_ms = rtt_ms
        self.tun_stats = tun_stats      # () -> {"tx_dropped": n, "rx_dropped": n} or None
        self.counters = counters        # the stack's Counters, for TuntcpTunTxDrops
        self.lag_hist: dict[int, int] = {}
        self.lag_n = 0
        self.lag_max_ms = 0.0
        self.batch_hist: dict[int, int] = {}
        self.passes = self.packets = 0
        self.start()

    def start(self) -> None:
        """Begin a measurement window (a storm calls it when its storm phase starts)."""
        self.lag_hist.clear()
        self.batch_hist.clear()
        self.lag_n = self.passes = self.packets = 0
        self.lag_max_ms = 0.0
        self._wall0 = self.wall()
        self._cpu0 = self.cpu()
        self._drops0 = self._drops()
        self._machine0 = self.machine()

    # -- hooks, once per pass ------------------------------------------------------------

    def on_pass(self, now: float, due: float) -> None:
        self.passes += 1
        if due <= now:
            lag_us = (now - due) * 1e6
            b = _bucket(lag_us)
            self.lag_hist[b] = self.lag_hist.get(b, 0) + 1
            self.lag_n += 1
            if lag_us > self.lag_max_ms * 1000.0:
                self.lag_max_ms = lag_us / 1000.0

    def on_batch(self, n: int) -> None:
        if n:
            self.batch_hist[n] = self.batch_hist.get(n, 0) + 1
            self.packets += n

    # -- the report ----------------------------------------------------------------------

    def _drops(self) -> dict:
        own = self.counters.get(mib.TuntcpTunTxDrops, 0) if self.counters is not None else 0
        st = {}
        if self.tun_stats is not None:
            try:
                st = self.tun_stats() or {}
            except Exception:       # the lab may be closing; drops then stay as last read
                st = {}
        return {"endpoint_write_refused": own, "tun_tx_dropped": st.get("tx_dropped", 0),
                "tun_rx_dropped": st.get("rx_dropped", 0)}

    def report(self, others: dict | None = None) -> dict:
        """``others``: CPU shares of the processes the measurement depends on (the storm's
        producer workers, a kernel broker), each judged like the endpoint's own."""
        wall = max(1e-9, self.wall() - self._wall0)
        cpu_s = self.cpu() - self._cpu0
        cpu_share = cpu_s / wall
        machine = _machine_busy(self._machine0, self.machine())
        others = {k: round(v, 3) for k, v in (others or {}).items() if v is not None}
        d1 = self._drops()
        drops = {k: d1[k] - self._drops0.get(k, 0) for k in d1}
        lag = {"p50": None, "p99": None, "max": None}
        if self.lag_n:
            lag = {"p50": round(_bucket_ms(_hist_pct(self.lag_hist, self.lag_n, 0.5)), 3),
                   "p99": round(_bucket_ms(_hist_pct(self.lag_hist, self.lag_n, 0.99)), 3),
                   "max": round(self.lag_max_ms, 3)}
        nb = sum(self.batch_hist.values())
        batch = {"p50": _hist_pct(self.batch_hist, nb, 0.5), "max": max(self.batch_hist, default=None),
                 "passes_with_packets": nb}
        lag_limit = max(LAG_FLOOR_MS, LAG_SHARE_OF_RTT * self.rtt_ms)
        total_drops = sum(drops.values())
        why = []
        if cpu_share >= CPU_BOUND_SHARE:
            why.append(f"the endpoint process used {cpu_share:.2f} of a core")
        why += [f"the {k} used {v:.2f} of a core" for k, v in others.items() if v >= CPU_BOUND_SHARE]
        if machine is not None and machine >= MACHINE_BUSY:
            why.append(f"the machine's CPUs were {machine:.0%} busy (this run and everything else)")
        if lag["p99"] is not None and lag["p99"] > lag_limit:
            why.append(f"packets and timers were handled up to {lag['p99']:.1f} ms late (p99; "
                       f"limit {lag_limit:.1f} ms)")
        if total_drops:
            why.append(f"the TUN ring dropped {total_drops} packets")
        if why:
            verdict = "cpu-bound"
            reason = ("Not the model's latency: " + "; ".join(why) + ".")
        else:
            verdict = "model-bound"
            reason = (f"The endpoint kept up: {cpu_share:.2f} of a core, lag p99 "
                      f"{lag['p99'] if lag['p99'] is not None else 0:.1f} ms (limit "
                      f"{lag_limit:.1f} ms), no TUN drops"
                      + (f", machine {machine:.0%} busy" if machine is not None else "") + ".")
        return {"verdict": verdict, "reason": reason, "cpu_share": round(cpu_share, 3),
                "other_cpu_share": others,
                "machine_busy": None if machine is None else round(machine, 3),
                "wall_s": round(wall, 3), "loop_lag_ms": lag, "lag_limit_ms": lag_limit,
                "late_passes": self.lag_n, "passes": self.passes, "tun_drops": drops,
                "packets_in": self.packets,   # read from the TUN (the relay: both TUNs)
                "cpu_us_per_packet": round(cpu_s * 1e6 / self.packets, 1) if self.packets else None,
                "batch": batch}
