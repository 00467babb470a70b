"""The saturation verdict (shell/saturation.py) and how a storm reports it."""
from tuntcp import mib
from tuntcp.mib import Counters
from tuntcp.shell import saturation as S


class Clocks:
    """Wall and CPU clocks the test moves: wall time moves 5 s per reading, CPU time `busy` of it."""

    def __init__(self, busy=0.3):
        self.t, self.busy = 0.0, busy

    def wall(self):
        self.t += 5.0
        return self.t

    def cpu(self):
        return self.t * self.busy


def Saturation(busy=0.3, **kw):
    c = Clocks(busy)
    kw.setdefault("machine", lambda: None)
    return S.Saturation(wall=c.wall, cpu=c.cpu, **kw)


def test_on_time_passes_are_model_bound():
    sat = Saturation(rtt_ms=20.0)
    for i in range(1000):
        now = i * 0.001
        sat.on_pass(now, now - 0.0002)       # 0.2 ms late: scheduler noise
        sat.on_batch(3)
    r = sat.report()
    assert r["verdict"] == "model-bound", r
    assert r["loop_lag_ms"]["p99"] < 0.25
    assert r["batch"]["p50"] == 3 and r["batch"]["max"] == 3
    assert r["lag_limit_ms"] == 5.0          # a quarter of the RTT (floor 2 ms)


def test_late_passes_are_cpu_bound_and_say_why():
    sat = Saturation(rtt_ms=2.0)
    for i in range(100):
        sat.on_pass(1.0, 1.0 - (0.050 if i >= 90 else 0.0001))   # 10 % of passes 50 ms late
    r = sat.report()
    assert r["verdict"] == "cpu-bound"
    assert 45 <= r["loop_lag_ms"]["p99"] <= 55 and r["loop_lag_ms"]["max"] == 50.0
    assert "late" in r["reason"] and r["reason"].endswith(".")
    assert r["late_passes"] == 100


def test_a_busy_core_is_cpu_bound():
    r = Saturation(busy=0.95).report()
    assert r["verdict"] == "cpu-bound" and r["cpu_share"] == 0.95
    assert "0.95 of a core" in r["reason"]


def test_a_busy_producer_or_machine_is_cpu_bound():
    r = Saturation().report({"producer processes": 0.97})
    assert r["verdict"] == "cpu-bound" and "the producer processes used 0.97 of a core" in r["reason"]
    assert Saturation().report({"producer processes": 0.5})["verdict"] == "model-bound"
    ticks = iter([(0, 1000), (980, 2000)])             # 98 % of all CPUs busy in between
    r = Saturation(machine=lambda: next(ticks)).report()
    assert r["verdict"] == "cpu-bound" and r["machine_busy"] == 0.98 and "98% busy" in r["reason"]


def test_passes_with_nothing_due_are_not_lag():
    sat = Saturation()
    sat.on_pass(1.0, float("inf"))
    sat.on_pass(1.0, 2.0)
    r = sat.report()
    assert r["late_passes"] == 0 and r["loop_lag_ms"]["p50"] is None
    assert r["passes"] == 2


def test_tun_drops_since_start_make_it_cpu_bound():
    counters = Counters()
    stats = {"tx_dropped": 5, "rx_dropped": 0}
    sat = Saturation(counters=counters, tun_stats=lambda: dict(stats))
    assert sat.report()["verdict"] == "model-bound"   # drops before start() do not count
    stats["tx_dropped"] += 7
    counters[mib.TuntcpTunTxDrops] += 2
    r = sat.report()
    assert r["tun_drops"] == {"endpoint_write_refused": 2, "tun_tx_dropped": 7, "tun_rx_dropped": 0}
    assert r["verdict"] == "cpu-bound" and "dropped 9 packets" in r["reason"]


def _run(mode, cookies, mismatches, cookie_p50, verdict="model-bound"):
    lat = {"cookie": {"p50": cookie_p50, "p99": cookie_p50}} if cookies else {}
    return {"profile": "kernel (host 6.18)" if mode == "kernel" else "linux-5.4",
            "summary": {"cookie_connections": cookies, "wscale_mismatches": mismatches,
                        "latency_ms_by_handshake": lat, "connections_made": 80,
                        "latency_ms_all": {"p50": 5.0, "p99": 9.0}},
            "saturation": {"verdict": verdict, "reason": "The endpoint could not keep up: x."}}


def test_headline_without_cookie_connections_says_so():
    """`tuntcp storm --clients 80 --requests 1` printed "fixed: 0 mismatches, cookie p50 None ms"."""
    from tuntcp.scenarios.storm import compare
    c = compare({"buggy": _run("buggy", 30, 30, 200.0), "fixed": _run("fixed", 0, 0, None),
                 "kernel": _run("kernel", 0, 0, None)})
    assert "None" not in c["headline"]
    assert "fixed: no cookie connections" in c["headline"]
    assert "kernel (host 6.18): p50 5.0 ms" in c["headline"]
    c = compare({"fixed": {**_run("fixed", 4, 0, None)}})
    assert "no cookie connection completed a request" in c["headline"]


def test_console_says_cpu_bound_in_one_line():
    from tuntcp.scenarios.storm_cli import saturation_line
    assert saturation_line("fixed", _run("fixed", 1, 0, 1.0)) is None
    line = saturation_line("fixed", _run("fixed", 1, 0, 1.0, "cpu-bound"))
    assert "\n" not in line and line.startswith("fixed: CPU-BOUND") and "--clients" in line


def test_framer_counts_requests_however_they_are_cut():
    import struct
    from tuntcp.scenarios.storm_fleet import Framer
    data = b"".join(struct.pack("!I", n) + bytes(n) for n in (3, 0, 1578, 65536))
    for size in (1, 2, 5, 1578, 1448 * 2, len(data)):
        f = Framer()
        assert sum(f.feed(data[i:i + size]) for i in range(0, len(data), size)) == 4, size
        assert f.left == -1 and f.hdr == b""


def test_link_fifo_keeps_delivery_order_when_the_clock_goes_back():
    from tuntcp.harness.link import LinkModel
    link = LinkModel(1, delay=0.010)
    link.push(b"a", 1.0)
    link.push(b"b", 0.5)            # due 0.51: before a
    link.push(b"c", 1.0)
    assert link.next_deadline() == 0.51 and len(link) == 3
    assert link.pop_due(2.0) == [b"b", b"a", b"c"]
