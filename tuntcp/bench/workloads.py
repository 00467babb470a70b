"""The workloads of `tuntcp bench`, each as a pair of runs: tuntcp (this process, on the lab's TUN)
and kernel (a server process in the lab namespace), driven by the same real client.

Every run returns a dict of metrics.  Clients we did not write: ab (handshakes), socat (ingest,
egress), hping3 (unpaced SYN flood).  Our own small kernel-socket clients (tuntcp.bench.clients) do the
request/response latency and the connect storms.  Memory is measured sans-IO with tracemalloc.
"""
from __future__ import annotations

from .. import mib

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from contextlib import asynccontextmanager
from functools import partial

import trio

KERNEL_PORT = 8080
TUNTCP_PORT = 8080
SPOOF_TO_TUNTCP = "198.18.0.77"     # unassigned: our SYN-ACKs to it die in the namespace
SPOOF_TO_KERNEL = "198.18.1.77"     # routed into the TUN: the kernel's SYN-ACKs come to our sink


class BenchError(RuntimeError):
    """A run could not be measured (a client failed, timed out, or is missing)."""


class CpuMeter:
    """Share of one core this process (the endpoint) used from creation to `share()`."""

    def __init__(self):
        self.c0, self.t0 = self._cpu(), time.perf_counter()

    @staticmethod
    def _cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def share(self) -> float:
        return (self._cpu() - self.c0) / max(1e-9, time.perf_counter() - self.t0)


# ---- processes in the namespace -----------------------------------------------------------

async def run_client(lab, argv, timeout: float) -> tuple[int, str, str]:
    """Run a client inside the namespace to completion; (returncode, stdout, stderr)."""
    p = lab.run_in_ns(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = await trio.to_thread.run_sync(partial(p.communicate, timeout=timeout),
                                                 abandon_on_cancel=True)
    except subprocess.TimeoutExpired:
        _terminate(p)
        raise BenchError(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    return p.returncode, out, err


def _terminate(p: subprocess.Popen) -> None:
    """SIGTERM first (`timeout` passes it on to its child and reaps it), then SIGKILL the whole
    process group (the child was started in its own session)."""
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=5)


class KernelServer:
    """A tuntcp.bench.kernel_server process in the namespace."""

    def __init__(self, lab, mode: str, port: int, seconds: float = 2.0):
        argv = [sys.executable, "-m", "tuntcp.bench.kernel_server", mode, "--addr",
                lab.client_addr, "--port", str(port), "--seconds", str(seconds)]
        self.p = lab.run_in_ns(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def ready(self, timeout: float = 10.0) -> None:
        with trio.move_on_after(timeout):
            line = await trio.to_thread.run_sync(self.p.stdout.readline, abandon_on_cancel=True)
            if line.strip() == "READY":
                return
            err = self.p.stderr.read() if self.p.poll() is not None else ""
            raise BenchError(f"kernel server did not start: {line.strip()} {err.strip()}")
        _terminate(self.p)
        raise BenchError("kernel server did not report READY")

    async def result(self, timeout: float, stop: bool = False) -> dict:
        """The server's JSON report; `stop` sends SIGTERM first (servers that run forever)."""
        if stop and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            out, err = await trio.to_thread.run_sync(partial(self.p.communicate, timeout=timeout),
                                                     abandon_on_cancel=True)
        except subprocess.TimeoutExpired:
            _terminate(self.p)
            raise BenchError("kernel server did not report") from None
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise BenchError(f"kernel server printed no report: {err.strip()[-300:]}")
        return json.loads(lines[-1])

    def kill(self) -> None:
        _terminate(self.p)


# ---- the tuntcp side ----------------------------------------------------------------------

def make_stack(lab, profile):
    from ..host.stack import Stack
    from ..shell.endpoint import encoder_for
    stack = Stack(profile, addrs={lab.endpoint_ip}, secret=os.urandom(16),
                  encoder=encoder_for(lab.vnet_hdr))
    stack.mtu = lab.mtu          # advmss = MTU - 40, as the kernel derives it from the route
    return stack


def drain_tun(lab) -> None:
    """Throw away whatever earlier runs left in the TUN queue."""
    while True:
        try:
            os.read(lab.tun_fd, 65536)
        except BlockingIOError:
            return


@asynccontextmanager
async def tuntcp_endpoint(lab, profile, handler, port: int = TUNTCP_PORT):
    """A fresh Stack + Endpoint on the lab's TUN, serving `handler(stream)` on `port`."""
    from ..shell.apps import guarded
    from ..shell.endpoint import Endpoint
    from ..shell.listener import TcpListener, serve_tcp

    drain_tun(lab)
    stack = make_stack(lab, profile)
    ep = Endpoint(stack, lab.tun_fd, offload=lab.vnet_hdr)
    lst = TcpListener(ep, stack.listen(port, 65535))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ep.run)
        nursery.start_soon(serve_tcp, guarded(handler), [lst])
        try:
            yield stack, ep
            await trio.sleep(0.2)     # let closing handshakes finish before the stack goes
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def tun_sink(lab):
    """For kernel runs: read and drop whatever the namespace routes into the TUN."""
    from ..shell.tun import FdIO
    io = FdIO(lab.tun_fd)
    drain_tun(lab)

    async def sink():
        while True:
            await io.wait_readable()
            io.read_batch(65536)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink)
        try:
            yield
        finally:
            nursery.cancel_scope.cancel()


# ---- handshakes: ab, non-keep-alive ----------------------------------------------------------

_AB_RPS = re.compile(r"Requests per second:\s+([\d.]+)")
_AB_FAILED = re.compile(r"Failed requests:\s+(\d+)")
_AB_DONE = re.compile(r"Complete requests:\s+(\d+)")


def _ab_argv(addr, port, cfg):
    # -t bounds the run; -n (after -t, as ab wants it) caps the requests
    return ["ab", "-q", "-r", "-s", "10", "-t", f"{max(1, round(cfg.seconds))}", "-n",
            str(cfg.ab_n), "-c", "64", f"http://{addr}:{port}/"]


def _ab_parse(rc, out, err) -> dict:
    m = _AB_RPS.search(out)
    if rc != 0 or not m:
        raise BenchError(f"ab failed (rc {rc}): {(err or out).strip()[-300:]}")
    return {"handshakes_per_s": float(m.group(1)),
            "failed": int(_AB_FAILED.search(out).group(1)),
            "complete": int(_AB_DONE.search(out).group(1))}


async def handshakes_tuntcp(lab, profile, cfg) -> dict:
    from ..shell.apps import http_app
    async with tuntcp_endpoint(lab, profile, http_app("hello from tuntcp")) as (stack, ep):
        meter = CpuMeter()
        rc, out, err = await run_client(lab, _ab_argv(lab.endpoint_addr, TUNTCP_PORT, cfg),
                                        timeout=120)
        cpu = meter.share()
    r = _ab_parse(rc, out, err)
    r["endpoint_cpu"] = cpu
    r["synack_retrans"] = stack.counters.get(mib.TcpRetransSegs, 0)
    return r


async def handshakes_kernel(lab, profile, cfg) -> dict:
    srv = KernelServer(lab, "http", KERNEL_PORT)
    try:
        await srv.ready()
        rc, out, err = await run_client(lab, _ab_argv(lab.client_addr, KERNEL_PORT, cfg),
                                        timeout=120)
    finally:
        srv.kill()
    return _ab_parse(rc, out, err)


# ---- SYN cookies under a SYN flood ---------------------------------------------------------

def _flood_argv(spoof, addr, port, seconds, pps):
    if pps is None:
        return ["timeout", "-s", "INT", f"{seconds:.2f}", "hping3", "-q", "-S", "--flood",
                "-a", spoof, "-p", str(port), addr]
    return [sys.executable, "-m", "tuntcp.bench.clients", "synflood", "--addr", addr, "--port",
            str(port), "--spoof", spoof, "--pps", str(pps), "--seconds", f"{seconds:.2f}"]


async def _flood(lab, cfg, spoof, addr, port, sample, pps) -> dict:
    """Flood for warmup + cfg.seconds (hping3 --flood, or our paced sender at `pps`);
    `sample()` -> (cookies_sent, offered_packets), read at both ends of the window."""
    warm = 0.5
    p = lab.run_in_ns(_flood_argv(spoof, addr, port, warm + cfg.seconds + 0.5, pps),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await trio.sleep(warm)
        if p.poll() is not None:
            raise BenchError(f"the SYN flooder exited early: {p.stderr.read().strip()[-300:]}")
        c0, o0, t0 = *sample(), time.perf_counter()
        meter = CpuMeter()
        await trio.sleep(cfg.seconds)
        cpu = meter.share()
        c1, o1, t1 = *sample(), time.perf_counter()
    finally:
        _terminate(p)
    dt = t1 - t0
    offered = (o1 - o0) / dt
    sent = (c1 - c0) / dt
    return {"cookie_synacks_per_s": sent, "offered_pps": offered,
            "answered_share": sent / offered if offered else 0.0, "process_cpu": cpu}


def _tuntcp_flood_sampler(lab, stack):
    def sample():
        c = stack.counters
        drops = lab.tun_stats().get("tx_dropped", 0)   # SYNs the TUN ring dropped before us
        return c.get(mib.TcpExtSyncookiesSent, 0), c.get(mib.IpInReceives, 0) + drops
    return sample


def _kernel_flood_sampler(lab):
    from ..harness.clients import kernel_counters

    def sample():
        k = kernel_counters(lab)
        return k.get(mib.TcpExtSyncookiesSent, 0), k.get(mib.IpInReceives, 0)
    return sample


async def _idle(stream):
    await stream.receive_some()


async def cookies_tuntcp(lab, profile, cfg, pps=None) -> dict:
    prof = profile.with_overrides({"net.ipv4.tcp_syncookies": 2})
    async with tuntcp_endpoint(lab, prof, _idle) as (stack, ep):
        r = await _flood(lab, cfg, SPOOF_TO_TUNTCP, lab.endpoint_addr, TUNTCP_PORT,
                         _tuntcp_flood_sampler(lab, stack), pps)
    if stack.counters.get(mib.TcpExtSyncookiesSent, 0) == 0:
        raise BenchError("the endpoint sent no SYN cookies (the flood did not arrive)")
    r["endpoint_cpu"] = r.pop("process_cpu")
    return r


async def cookies_kernel(lab, profile, cfg, pps=None) -> dict:
    old = lab.sysctl("net.ipv4.tcp_syncookies")
    lab.sysctl("net.ipv4.tcp_syncookies", 2)
    srv = KernelServer(lab, "hold", KERNEL_PORT)
    try:
        await srv.ready()
        async with tun_sink(lab):
            r = await _flood(lab, cfg, SPOOF_TO_KERNEL, lab.client_addr, KERNEL_PORT,
                             _kernel_flood_sampler(lab), pps)
    finally:
        srv.kill()
        lab.sysctl("net.ipv4.tcp_syncookies", old)
    del r["process_cpu"]          # that was our TUN sink, not the endpoint
    return r


async def cookies50k_tuntcp(lab, profile, cfg) -> dict:
    return await cookies_tuntcp(lab, profile, cfg, pps=50000)


async def cookies50k_kernel(lab, profile, cfg) -> dict:
    return await cookies_kernel(lab, profile, cfg, pps=50000)


# ---- ingest (socat /dev/zero -> discard) and egress (source -> socat /dev/null) --------------

def _socat_in(addr, port, seconds):
    return ["timeout", "-s", "TERM", f"{seconds:.2f}", "socat", "-u", "-b", "262144",
            "OPEN:/dev/zero", f"TCP:{addr}:{port}"]


def _socat_out(addr, port):
    return ["socat", "-u", "-b", "262144", f"TCP:{addr}:{port}", "OPEN:/dev/null"]


async def ingest_tuntcp(lab, profile, cfg) -> dict:
    box: dict = {}
    done = trio.Event()

    async def discard(stream):
        t0 = time.perf_counter()
        n = 0
        try:
            while True:
                data = await stream.receive_some(1 << 20)
                if not data:
                    break
                n += len(data)
        finally:
            box.update(bytes=n, seconds=time.perf_counter() - t0)
            done.set()
            await stream.aclose()

    async with tuntcp_endpoint(lab, profile, discard) as (stack, ep):
        meter = CpuMeter()
        await run_client(lab, _socat_in(lab.endpoint_addr, TUNTCP_PORT, cfg.seconds),
                         timeout=cfg.seconds + 30)
        with trio.move_on_after(10):
            await done.wait()
        cpu = meter.share()
    if not done.is_set() or not box["bytes"]:
        raise BenchError("the discard app received nothing")
    c = stack.counters
    return {"MBps": box["bytes"] / box["seconds"] / 1e6, "bytes": box["bytes"],
            "csum_errors": c.get(mib.TcpInCsumErrors, 0), "segs_in": c.get(mib.TcpInSegs, 0),
            "checksums_verified": not lab.vnet_hdr, "endpoint_cpu": cpu}


async def ingest_kernel(lab, profile, cfg) -> dict:
    srv = KernelServer(lab, "discard", KERNEL_PORT)
    try:
        await srv.ready()
        await run_client(lab, _socat_in(lab.client_addr, KERNEL_PORT, cfg.seconds),
                         timeout=cfg.seconds + 30)
        r = await srv.result(timeout=10)
    finally:
        srv.kill()
    return {"MBps": r["bytes"] / r["seconds"] / 1e6, "bytes": r["bytes"]}


async def egress_tuntcp(lab, profile, cfg) -> dict:
    box: dict = {}
    done = trio.Event()
    chunk = bytes(1 << 18)

    async def source(stream):
        t0 = time.perf_counter()
        end = t0 + cfg.seconds
        try:
            while time.perf_counter() < end:
                await stream.send_all(chunk)
            box.update(bytes=stream.info().get("bytes_acked", 0),
                       seconds=time.perf_counter() - t0)
        finally:
            done.set()
            await stream.aclose()

    async with tuntcp_endpoint(lab, profile, source) as (stack, ep):
        meter = CpuMeter()
        await run_client(lab, _socat_out(lab.endpoint_addr, TUNTCP_PORT),
                         timeout=cfg.seconds + 30)
        with trio.move_on_after(10):
            await done.wait()
        cpu = meter.share()
    if not box.get("bytes"):
        raise BenchError("the source app sent nothing that was acknowledged")
    return {"MBps": box["bytes"] / box["seconds"] / 1e6, "bytes": box["bytes"],
            "endpoint_cpu": cpu}


async def egress_kernel(lab, profile, cfg) -> dict:
    srv = KernelServer(lab, "source", KERNEL_PORT, seconds=cfg.seconds)
    try:
        await srv.ready()
        await run_client(lab, _socat_out(lab.client_addr, KERNEL_PORT), timeout=cfg.seconds + 30)
        r = await srv.result(timeout=10)
    finally:
        srv.kill()
    return {"MBps": r["bytes"] / r["seconds"] / 1e6, "bytes": r["bytes"]}


# ---- request/response latency ------------------------------------------------------------------

def _rr_argv(addr, port, count):
    return [sys.executable, "-m", "tuntcp.bench.clients", "rr", "--addr", addr, "--port",
            str(port), "--count", str(count)]


def _json_out(rc, out, err, what) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if rc != 0 or not lines:
        raise BenchError(f"{what} failed (rc {rc}): {err.strip()[-300:]}")
    return json.loads(lines[-1])


async def latency_tuntcp(lab, profile, cfg) -> dict:
    async def echo(stream):
        stream.setsockopt_nodelay(True)
        async with stream:
            while True:
                data = await stream.receive_some()
                if not data:
                    return
                await stream.send_all(data)

    async with tuntcp_endpoint(lab, profile, echo):
        meter = CpuMeter()
        r = _json_out(*await run_client(lab, _rr_argv(lab.endpoint_addr, TUNTCP_PORT,
                                                       cfg.rr_count), timeout=60), "rr client")
        r["endpoint_cpu"] = meter.share()
    return r


async def latency_kernel(lab, profile, cfg) -> dict:
    srv = KernelServer(lab, "echo", KERNEL_PORT)
    try:
        await srv.ready()
        r = _json_out(*await run_client(lab, _rr_argv(lab.client_addr, KERNEL_PORT,
                                                       cfg.rr_count), timeout=60), "rr client")
    finally:
        srv.kill()
    return r


# ---- connect storms --------------------------------------------------------------------------

def _storm_argv(addr, port, n):
    return [sys.executable, "-m", "tuntcp.bench.clients", "storm", "--addr", addr, "--port",
            str(port), "--count", str(n), "--timeout", "10"]


def _storm_result(r, n) -> dict:
    if r["established"] != n:
        # an unfinished storm is a measurement, not an error: report the time it took anyway
        r["incomplete"] = True
    return r


async def storm_tuntcp(lab, profile, cfg, n) -> dict:
    held = []

    async def hold(stream):
        held.append(stream)
        await stream.receive_some()

    async with tuntcp_endpoint(lab, profile, hold) as (stack, ep):
        d0 = lab.tun_stats().get("tx_dropped", 0)
        meter = CpuMeter()
        r = _json_out(*await run_client(lab, _storm_argv(lab.endpoint_addr, TUNTCP_PORT, n),
                                        timeout=60), "storm client")
        r["endpoint_cpu"] = meter.share()
        r["tun_tx_dropped"] = lab.tun_stats().get("tx_dropped", 0) - d0
    r["synack_retrans"] = stack.counters.get(mib.TcpRetransSegs, 0)
    return _storm_result(r, n)


async def storm_kernel(lab, profile, cfg, n) -> dict:
    srv = KernelServer(lab, "hold", KERNEL_PORT)
    try:
        await srv.ready()
        r = _json_out(*await run_client(lab, _storm_argv(lab.client_addr, KERNEL_PORT, n),
                                        timeout=60), "storm client")
    finally:
        srv.kill()
    return _storm_result(r, n)


# ---- memory: sans-IO, tracemalloc -------------------------------------------------------------

CLIENT_BASE = 0xC6130001     # 198.19.0.1: SYN sources spread over addresses and ports


def _mem_stack(profile):
    from ..host.stack import Stack
    prof = profile.with_overrides({"net.ipv4.tcp_syncookies": 0, "net.core.somaxconn": 65535,
                                   "net.ipv4.tcp_max_syn_backlog": 65535})
    stack = Stack(prof, addrs={0xC6120101}, secret=b"0123456789abcdef")
    lst = stack.listen(80, 65535)
    return stack, lst


def _syn(i):
    from ..wire import codec
    from ..wire.segment import SYN, Segment, TcpOptions
    return codec.build(Segment(CLIENT_BASE + i // 50000, 0xC6120101, 1024 + i % 50000, 80,
                               1000 + i, 0, SYN, 64240,
                               TcpOptions(1460, 7, True, (1000 + i, 0))))


def mem_halfopen(profile, n: int) -> dict:
    """Bytes per request sock: N distinct SYNs into a listener with cookies off."""
    stack, lst = _mem_stack(profile)
    syns = [_syn(i) for i in range(n)]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, p in enumerate(syns):
        stack.receive(p, 1.0 + i * 1e-6)
        stack.take_output()
    used = tracemalloc.get_traced_memory()[0] - base
    top = _top_sites(tracemalloc.take_snapshot(), n)
    tracemalloc.stop()
    q = lst.queue_lengths()
    held = q.get("syn", 0)
    if held != n:
        raise BenchError(f"only {held} of {n} SYNs got a request sock (queue {q})")
    return {"bytes_per_item": used / n, "items": n, "top_sites": top}


def mem_idle_conn(profile, n: int) -> dict:
    """Bytes per accepted, idle ESTABLISHED connection (3-way handshake, accept(), no data)."""
    from ..wire import codec
    from ..wire.segment import ACK, Segment, TcpOptions
    stack, lst = _mem_stack(profile)
    syns = [_syn(i) for i in range(n)]
    conns = []
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, p in enumerate(syns):
        now = 1.0 + i * 1e-6
        stack.receive(p, now)
        out = stack.take_output()
        sa = codec.parse(out[-1])
        ack = Segment(sa.daddr, sa.saddr, sa.dport, sa.sport, sa.ack, sa.seq + 1, ACK, 502,
                      TcpOptions(ts=(1001 + i, sa.options.ts[0] if sa.options.ts else 0)))
        stack.receive(codec.build(ack), now)
        stack.take_output()
        c = lst.accept()
        if c is None:
            raise BenchError(f"handshake {i} did not complete in the memory test")
        conns.append(c)
    del sa, ack, out, c
    used = tracemalloc.get_traced_memory()[0] - base
    top = _top_sites(tracemalloc.take_snapshot(), n)
    tracemalloc.stop()
    ok = sum(1 for c in conns if c.state == "ESTABLISHED")
    if ok != n:
        raise BenchError(f"only {ok} of {n} connections are ESTABLISHED")
    return {"bytes_per_item": used / n, "items": n, "top_sites": top}


def _top_sites(snapshot, n: int, k: int = 6) -> list:
    """The allocation sites holding the most memory, as [file:line, bytes per item]."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for st in snapshot.statistics("lineno")[:k]:
        fr = st.traceback[0]
        name = os.path.relpath(fr.filename, os.path.dirname(here)) \
            if fr.filename.startswith(here) else os.path.basename(fr.filename)
        out.append([f"{name}:{fr.lineno}", round(st.size / n, 1)])
    return out


def slab_objsize(cache: str) -> int | None:
    """Object size of a kernel slab cache (/proc/slabinfo), e.g. request_sock_TCP, TCP."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == cache:
                    return int(parts[3])
    except OSError:
        return None
    return None
