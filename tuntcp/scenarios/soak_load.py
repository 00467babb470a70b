"""Soak: a mixed load on one endpoint for a configurable time, with resident memory and table
sizes sampled, and a verdict on whether they stayed flat.

The load, all from real kernel clients in one lab namespace:
  * storm-like reconnects: `clients` sockets spread over `hosts` source addresses, each
    looping connect -> 1 KB echo exchange (checked byte for byte) -> close;
  * bulk transfers: a client process sends `bulk_bytes` seeded bytes to a sink that answers
    with the sha256 of what it got; the client compares it with its own;
  * SYN flood bursts: hping3 --flood --rand-source for `flood_seconds` every `flood_every`.

Flat means: the median RSS of the last third of the samples is within `tolerance` (default
5 %) of the middle third's; the connection table likewise (plus a small absolute slack: a
handful of connections come and go all the time); the SYN queue never exceeds the backlog; no
exchange or transfer failed. The first third is warm-up (imports, allocator arenas).

RSS is read every `sample_every` s and judged raw. With `trim_every` > 0 it is also read right
after glibc's malloc_trim(0) every `trim_every` s, and those "live" samples decide instead: a
way to tell memory the endpoint holds from freed memory glibc keeps in its heap.

Measured here (2 cores): 10 minutes, raw RSS, one bulk client process: middle-third median
52136 kB, last-third 53344 kB (+2.3 %), 59852 connects, 6348 bulk transfers (26.6 GB), 83
flood bursts, no failure. An earlier version that started a client process per bulk transfer
grew 13 % (56832 -> 64284 kB): `Lab.run_in_ns` keeps every Popen until the lab closes.

    tuntcp soak --minutes 10            (by hand)       tuntcp soak --seconds 20   (CI)
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import trio

ECHO_PORT, SINK_PORT = 7, 9

BULK_CLIENT = r"""
import hashlib, json, random, socket, sys, time
addr, port, nbytes, seed, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
t0 = time.monotonic()
k = 0
while time.monotonic() - t0 < seconds:
    k += 1
    try:
        s = socket.create_connection((addr, port), timeout=60)
        h = hashlib.sha256()
        rng = random.Random(seed + k)
        left = nbytes
        while left:
            c = rng.randbytes(min(65536, left))
            s.sendall(c)
            h.update(c)
            left -= len(c)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(128):
            reply += chunk
        s.close()
        ok, err = reply.decode() == h.hexdigest(), None
    except OSError as e:
        ok, err = False, str(e)
    print(json.dumps({"ok": ok, "bytes": nbytes, "error": err}), flush=True)
"""


class SoakError(UserError, RuntimeError):
    """The soak cannot run here (missing tool, bad knob): one line for the user."""


@dataclass
class SoakConfig:
    seconds: float = 20.0
    clients: int = 20
    hosts: int = 8
    bulk_bytes: int = 4 << 20
    flood_every: float = 6.0
    flood_seconds: float = 1.0
    sample_every: float = 0.5
    tolerance: float = 0.05
    trim_every: float = 0.0             # > 0: judge RSS read after malloc_trim(0) every so often
    profile: str = "linux-6.1"
    backlog: int = 128
    seed: int = 1
    sysctl: list = field(default_factory=list)
    family: int = 4                     # the lab's address family (--family)

    def check(self) -> None:
        if self.seconds < 3:
            raise SoakError("a soak needs at least 3 seconds (three thirds of samples)")
        if not 1 <= self.clients <= 2000 or not 1 <= self.hosts <= 4000:
            raise SoakError("--clients must be 1..2000 and --hosts 1..4000")
        if self.family == 6 and self.flood_seconds > 0:
            raise SoakError("--family ipv6: the SYN flood bursts come from hping3, which sends IPv4 only; "
                            "add --flood-s 0")
        if self.flood_seconds > 0 and not (shutil.which("hping3") or shutil.which("hping3", path="/usr/sbin")):
            raise SoakError("hping3 is not installed (make tools), or pass --flood-s 0")
        if not 0 < self.tolerance < 1:
            raise SoakError("--tolerance is a fraction, e.g. 0.05")


def malloc_trim() -> bool:
    """glibc ``malloc_trim(0)``: give freed heap pages back to the kernel. False if unavailable."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def thirds(values: list) -> tuple[list, list, list]:
    n = len(values)
    a, b = n // 3, 2 * n // 3
    return values[:a], values[a:b], values[b:]


def flat(values: list, tolerance: float, slack: float = 0.0) -> tuple[bool, float, float]:
    """(ok, middle median, last median): the last third's median within tolerance (+slack) of
    the middle third's."""
    _, mid, last = thirds(values)
    if not mid or not last:
        return False, 0.0, 0.0
    m, l_ = statistics.median(mid), statistics.median(last)
    return l_ <= m * (1 + tolerance) + slack, m, l_


class Soak:
    def __init__(self, cfg: SoakConfig, show=None):
        self.cfg = cfg
        self.show = show or (lambda **kw: None)
        self.rng = random.Random(cfg.seed)
        self.stats = {"connects": 0, "exchanges": 0, "echo_bytes": 0, "bulk_transfers": 0,
                      "bulk_bytes": 0, "flood_bursts": 0, "failures": 0}
        self.failures: list[str] = []
        self.samples: list[dict] = []

    async def _client(self, lab, src: str, i: int, stop: trio.Event) -> None:
        rng = random.Random(self.cfg.seed * 1000 + i)
        k = 0
        while not stop.is_set():
            k += 1
            msg = rng.randbytes(1024)
            s = None
            try:
                s = lab.socket_in_ns()
                s.bind((src, 0))
                ts = trio.socket.from_stdlib_socket(s)
                with trio.fail_after(10):
                    await ts.connect((lab.endpoint_addr, ECHO_PORT))
                    self.stats["connects"] += 1
                    await ts.send(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = await ts.recv(len(msg) - len(got))
                        if not chunk:
                            break
                        got += chunk
                if got != msg:
                    raise AssertionError(f"echo returned {len(got)} different bytes")
                self.stats["exchanges"] += 1
                self.stats["echo_bytes"] += 2 * len(msg)
            except (OSError, trio.TooSlowError, AssertionError) as e:
                self._fail(f"client {i} round {k}: {type(e).__name__}: {e}")
            finally:
                if s is not None:
                    s.close()
            await trio.sleep(rng.uniform(0.05, 0.25))

    def _fail(self, what: str) -> None:
        self.stats["failures"] += 1
        if len(self.failures) < 20:
            self.failures.append(what)

    async def _bulk(self, lab, stop: trio.Event) -> None:
        """One client process for the whole soak (a process per transfer would also measure
        the harness keeping every Popen); it prints one JSON line per transfer."""
        p = lab.run_in_ns([sys.executable, "-c", BULK_CLIENT, lab.endpoint_addr, str(SINK_PORT),
                           str(self.cfg.bulk_bytes), str(self.cfg.seed), str(self.cfg.seconds)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def read_lines():
            for line in p.stdout:
                try:
                    res = json.loads(line)
                except ValueError:
                    res = {"ok": False, "error": line[-200:]}
                if res.get("ok"):
                    self.stats["bulk_transfers"] += 1
                    self.stats["bulk_bytes"] += self.cfg.bulk_bytes
                else:
                    self._fail(f"bulk transfer {self.stats['bulk_transfers'] + 1}: {res.get('error')}")
            p.wait()
        await trio.to_thread.run_sync(read_lines, abandon_on_cancel=True)
        if p.returncode:
            self._fail(f"bulk client exited {p.returncode}: {p.stderr.read()[-300:]!r}")

    async def _flood(self, lab, stop: trio.Event) -> None:
        cfg = self.cfg
        if cfg.flood_seconds <= 0:
            return
        while True:
            with trio.move_on_after(cfg.flood_every):
                await stop.wait()
            if stop.is_set():
                return
            argv = ["timeout", "-s", "INT", str(cfg.flood_seconds), "hping3", "-S", "-p",
                    str(ECHO_PORT), "--flood", "--rand-source", "-q", lab.endpoint_addr]
            p = lab.run_in_ns(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await trio.to_thread.run_sync(p.wait, abandon_on_cancel=True)
            self.stats["flood_bursts"] += 1

    async def _sample(self, ep, listener, t0: float, stop: trio.Event) -> None:
        stack = ep.stack
        last_trim = -1e9
        while not stop.is_set():
            q = listener.queue_lengths()
            t = trio.current_time() - t0
            sample = {"t": round(t, 3), "rss_kb": rss_kb(), "conns": len(stack.conns),
                      "syn_queue": q["syn"], "accept_queue": q["accept"],
                      "timer_heap": len(stack._heap), "rx": ep.stats["rx"]}
            if self.cfg.trim_every and t - last_trim >= self.cfg.trim_every:
                last_trim = t
                if malloc_trim():
                    sample["rss_trimmed_kb"] = rss_kb()
            self.samples.append(sample)
            self.show(**sample, **self.stats)
            await trio.sleep(self.cfg.sample_every)

    async def run(self) -> dict:
        from ..host.stack import Stack
        from ..profiles import get_profile
        from ..shell import Endpoint, open_tcp_listener
        from ..shell.apps import echo, guarded
        from ..harness.netns import Lab

        cfg = self.cfg
        cfg.check()
        profile = get_profile(cfg.profile, list(cfg.sysctl))

        async def sink(stream):
            import hashlib
            h = hashlib.sha256()
            async with stream:
                while chunk := await stream.receive_some():
                    h.update(chunk)
                await stream.send_all(h.hexdigest().encode())

        with Lab(family=cfg.family) as lab:
            srcs = lab.add_client_addrs(cfg.hosts)
            stack = Stack(profile, addrs={lab.endpoint_ip}, secret=self.rng.randbytes(16))
            ep = Endpoint(stack, lab.tun_fd)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ep.run)
                lst = await open_tcp_listener(ep, ECHO_PORT, cfg.backlog)
                snk = await open_tcp_listener(ep, SINK_PORT, cfg.backlog)
                nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
                nursery.start_soon(trio.serve_listeners, guarded(sink), [snk])
                t0 = trio.current_time()
                wall0 = time.time()
                async with trio.open_nursery() as load:
                    load.start_soon(self._sample, ep, lst.listener, t0, stop)
                    for i in range(cfg.clients):
                        load.start_soon(self._client, lab, srcs[i % len(srcs)], i, stop)
                    load.start_soon(self._bulk, lab, stop)
                    load.start_soon(self._flood, lab, stop)
                    await trio.sleep(cfg.seconds)
                    stop.set()
                counters = stack.counters.snapshot()
                nursery.cancel_scope.cancel()
        return self.report(counters, time.time() - wall0)

    def report(self, counters: dict, wall: float) -> dict:
        cfg, s = self.cfg, self.samples
        rss = [x["rss_kb"] for x in s]
        trimmed = [x["rss_trimmed_kb"] for x in s if "rss_trimmed_kb" in x]
        ok_raw, raw_mid, raw_last = flat(rss, cfg.tolerance)
        if len(trimmed) >= 6:
            # live memory: glibc's freed-but-kept heap is not the endpoint holding memory
            ok_rss, rss_mid, rss_last = flat(trimmed, cfg.tolerance)
        else:
            ok_rss, rss_mid, rss_last = ok_raw, raw_mid, raw_last
        slack = max(8, cfg.clients // 2)
        ok_conns, c_mid, c_last = flat([x["conns"] for x in s], cfg.tolerance, slack)
        heap = [x["timer_heap"] for x in s]
        _, h_mid_l, h_last_l = thirds(heap)
        verdict = {
            "rss_measure": "after malloc_trim" if len(trimmed) >= 6 else "raw",
            "rss_flat": ok_rss, "rss_kb_middle_median": rss_mid, "rss_kb_last_median": rss_last,
            "raw_rss_flat": ok_raw, "raw_rss_kb_middle_median": raw_mid, "raw_rss_kb_last_median": raw_last,
            "rss_kb_first": rss[0] if rss else 0, "rss_kb_max": max(rss, default=0),
            "conns_flat": ok_conns, "conns_middle_median": c_mid, "conns_last_median": c_last,
            # the timer heap keeps stale entries until they surface (lazy deletion), so its
            # size follows the load's burstiness; reported, judged through RSS
            "timer_heap_middle_max": max(h_mid_l, default=0),
            "timer_heap_last_max": max(h_last_l, default=0),
            "syn_queue_max": max((x["syn_queue"] for x in s), default=0),
            "accept_queue_max": max((x["accept_queue"] for x in s), default=0),
            "no_failures": self.stats["failures"] == 0,
        }
        verdict["ok"] = ok_rss and ok_conns and verdict["no_failures"] and \
            verdict["syn_queue_max"] <= cfg.backlog
        keep = (mib.TcpPassiveOpens, mib.TcpExtSyncookiesSent, mib.TcpExtSyncookiesRecv, mib.TcpExtListenDrops,
                mib.TcpExtListenOverflows, mib.TcpRetransSegs, mib.TcpInSegs, mib.TcpOutSegs, mib.TcpOutRsts)
        return {"config": asdict(cfg), "wall_seconds": round(wall, 1), "stats": dict(self.stats),
                "failures": self.failures, "verdict": verdict,
                "counters": {k: counters.get(k, 0) for k in keep}, "samples": s}


async def run_soak(cfg: SoakConfig, show=None) -> dict:
    return await Soak(cfg, show).run()


def summary(report: dict) -> str:
    v, st = report["verdict"], report["stats"]
    lines = [
        f"soak {report['wall_seconds']} s: {'FLAT' if v['ok'] else 'NOT FLAT'}",
        f"  load      {st['connects']} connects, {st['exchanges']} echo exchanges, "
        f"{st['bulk_transfers']} bulk transfers ({st['bulk_bytes'] / 1e6:.0f} MB verified), "
        f"{st['flood_bursts']} SYN flood bursts, {st['failures']} failures",
        f"  rss       ({v['rss_measure']}) middle third median {v['rss_kb_middle_median']:.0f} kB, last"
        f" third median {v['rss_kb_last_median']:.0f} kB",
        f"  raw rss   first {v['rss_kb_first']} kB, middle third median "
        f"{v['raw_rss_kb_middle_median']:.0f} kB, last third median "
        f"{v['raw_rss_kb_last_median']:.0f} kB, max {v['rss_kb_max']} kB",
        f"  conns     middle median {v['conns_middle_median']:.0f}, last median "
        f"{v['conns_last_median']:.0f}; SYN queue max {v['syn_queue_max']}, accept queue max "
        f"{v['accept_queue_max']}; timer heap max {v['timer_heap_middle_max']} (middle) "
        f"{v['timer_heap_last_max']} (last)",
        "  counters  " + ", ".join(f"{k} {n}" for k, n in report["counters"].items()),
    ]
    lines += [f"  failure: {f}" for f in report["failures"][:5]]
    return "\n".join(lines)
