"""The LINE Kafka broker restart, end to end with real kernel producers.

The endpoint plays the broker: backlog 50 (Kafka's hard-wired default before KIP-764),
SO_RCVBUF 102400 (socket.receive.buffer.bytes), tcp_syncookies=1, a pre-5.10 profile. N kernel
producers in the namespace connect (paced, so none needs a cookie), the broker "restarts"
(resets every connection, is down for a moment, listens again) and every producer reconnects
with its reconnect policy at once. The SYN burst overflows the 50-deep SYN queue, the rest of
the producers get SYN cookies, and on the buggy derivation those connections advertise with
wscale 7 while the producer applies the SYN-ACK's wscale 1. Each producer then sends
produce-sized requests and times the broker's responses.

The same clients, seed and knobs run twice: "buggy" (cookie path without the SO_RCVBUF clamp)
and "fixed" (909172a14974). See docs/storm-report.md for the report's keys.
"""
from __future__ import annotations

import math
import random
import resource
import socket
import struct
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import trio

from tuntcp.scenarios.report import percentiles, write_all

PORT = 9092
RESPONSE = 64          # bytes of a produce response body
PORTS_PER_ADDR = 60999 - 32768 + 1   # the lab namespace's default ip_local_port_range
MAX_CLIENTS = 100_000  # the broker process's memory and CPU, see docs/storm-report.md


class StormError(ValueError):
    """A user mistake in the storm's knobs."""


@dataclass
class StormConfig:
    clients: int = 200
    hosts: int = 30                     # source addresses the producers spread over
    backlog: int = 50
    syncookies: int = 1
    profile: str = "linux-5.4"
    rcvbuf: int = 102400
    request_bytes: int = 65536           # a produce request with a few 16 KiB partition batches
    requests_per_client: int = 5
    request_interval_s: float = 1.0     # per producer; each starts at a random phase in it
    rtt_ms: float = 2.0
    loss: float = 0.0
    backoff: str = "kafka"              # kafka | immediate | fixed
    fixed_backoff_ms: float = 100.0
    down_s: float = 0.2                 # how long the broker is gone
    batch: int = 8                      # packets per endpoint pass (a NAPI-like budget), so the
                                        # acceptor runs between passes as on a multi-core broker
    duration_s: float = 60.0            # hard limit for one mode
    seed: int = 1
    sysctl: list[str] = field(default_factory=list)
    out: str = "out/storm"
    pcap: bool = True
    modes: tuple[str, ...] = ("buggy", "fixed")
    control_name: str = "storm"         # control socket for `tuntcp ss/nstat --name storm`
    clients_per_process: int = 0        # producers per process; 0: as many as RLIMIT_NOFILE allows

    def check(self) -> None:
        if not 1 <= self.hosts <= 4000:
            raise StormError("--hosts must be 1..4000")
        # bind(addr, 0) takes a port from ip_local_port_range that is free on that address
        limit = min(MAX_CLIENTS, self.hosts * PORTS_PER_ADDR)
        if not 1 <= self.clients <= limit:
            raise StormError(f"--clients must be 1..{limit} (at most {PORTS_PER_ADDR} source ports "
                             f"per --hosts address, and {MAX_CLIENTS} for the broker's memory)")
        budget = fd_budget()
        if not 0 <= self.clients_per_process <= budget:
            raise StormError(f"--clients-per-process must be 0 (auto) or 1..{budget} (the open-files "
                             f"limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]} less headroom)")
        from tuntcp.shell.control import ControlError, socket_path
        try:
            socket_path(self.control_name)
        except ControlError as e:
            raise StormError(f"--name: {e}") from None
        if self.backoff not in ("kafka", "immediate", "fixed"):
            raise StormError("--backoff must be kafka, immediate or fixed")
        if self.request_bytes < 1 or self.requests_per_client < 0:
            raise StormError("--request-bytes must be >= 1 and --requests >= 0")
        if not 0.0 <= self.loss < 0.5:
            raise StormError("--loss must be in [0, 0.5)")
        if self.rtt_ms < 0:
            raise StormError("--rtt-ms must be >= 0")


def fd_budget() -> int:
    """Sockets one producer process may hold: the hard RLIMIT_NOFILE (raise_fd_limit lifts the
    soft one to it) less 10 % for the interpreter, trio, pipes and the TUN."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    return max(1, hard - max(256, hard // 10))


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def plan_slices(cfg: StormConfig) -> list[tuple[int, int]]:
    """Producer index ranges, one per process: a single range runs in this process, more run in
    worker processes (scenarios/storm_worker.py) because one cannot hold all the sockets."""
    per = cfg.clients_per_process or fd_budget()
    n = math.ceil(cfg.clients / per)
    return [(cfg.clients * k // n, cfg.clients * (k + 1) // n) for k in range(n)]


def backoff_delays(policy: str, rng: random.Random, fixed_ms: float):
    """Reconnect delays in seconds. "kafka": reconnect.backoff.ms 50 doubling to
    reconnect.backoff.max.ms 1000 with +-20 % jitter (ClusterConnectionStates)."""
    attempt = 0
    while True:
        if policy == "immediate":
            yield 0.0
        elif policy == "fixed":
            yield fixed_ms / 1000.0
        else:
            base = min(0.05 * (2 ** attempt), 1.0)
            yield base * rng.uniform(0.8, 1.2)
        attempt += 1


# ---- the broker -------------------------------------------------------------------------------

class Broker:
    """The endpoint as a Kafka broker: reads size-prefixed requests, answers each with RESPONSE
    bytes once the whole request is in (like a produce with acks=1 on a healthy broker)."""

    def __init__(self, endpoint, cfg: StormConfig):
        self.ep = endpoint
        self.cfg = cfg
        self.listener = None
        self.streams: dict[tuple[int, int], object] = {}
        self.final_info: dict[tuple[int, int], dict] = {}
        self.relisten_at: float | None = None

    async def listen(self, nursery) -> None:
        from tuntcp.shell.listener import open_tcp_listener
        self.listener = await open_tcp_listener(self.ep, PORT, self.cfg.backlog, rcvbuf=self.cfg.rcvbuf)
        nursery.start_soon(self._accept_loop, self.listener, nursery)

    async def _accept_loop(self, listener, nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            key = (stream.conn.raddr, stream.conn.rport)
            self.streams[key] = stream
            nursery.start_soon(self._serve, key, stream)

    async def _serve(self, key, stream) -> None:
        stream.setsockopt_nodelay(True)     # Kafka's Acceptor sets TCP_NODELAY on accepted sockets
        buf = bytearray()
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 4:
                    need = 4 + struct.unpack_from("!I", buf)[0]
                    if len(buf) < need:
                        break
                    del buf[:need]
                    await stream.send_all(struct.pack("!I", RESPONSE) + bytes(RESPONSE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.final_info[key] = stream.info()

    async def restart(self) -> None:
        """The broker process dies: the listener closes and every connection is reset (the
        kernel resets sockets with unread data; Kafka's are never idle for long), then after
        down_s a new listener appears."""
        await self.listener.aclose()
        for stream in list(self.streams.values()):
            stream.abort()
        self.streams.clear()
        self.final_info.clear()
        await trio.sleep(self.cfg.down_s)


# ---- producers (real kernel sockets in the namespace) -----------------------------------------

class Producer:
    """One Kafka producer. ``new_socket()`` makes a kernel socket in the lab's namespace (the
    Lab's namespace thread in-process, plain socket.socket in a worker started inside it)."""

    def __init__(self, idx: int, src: str, cfg: StormConfig, new_socket, rng: random.Random):
        self.idx, self.src, self.cfg, self.new_socket, self.rng = idx, src, cfg, new_socket, rng
        self.sock = None
        self.local = None
        self.connected_at: float | None = None
        self.latencies: list[float] = []
        self.info: dict = {}
        self.attempts = 0
        self.error: str | None = None
        self.resets = 0

    async def connect_once(self, dst: str) -> bool:
        raw = self.new_socket()
        raw.bind((self.src, 0))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # Kafka's Selector.connect
        s = trio.socket.from_stdlib_socket(raw)
        self.attempts += 1
        try:
            await s.connect((dst, PORT))
        except OSError:
            s.close()
            return False
        self.sock = s
        self.local = raw.getsockname()
        return True

    async def reconnect(self, dst: str, t0: float) -> None:
        delays = backoff_delays(self.cfg.backoff, self.rng, self.cfg.fixed_backoff_ms)
        while True:
            await trio.sleep(next(delays))
            if await self.connect_once(dst):
                self.connected_at = trio.current_time() - t0
                return

    async def wait_broken(self) -> None:
        """Block until the broker side resets or closes the connection."""
        try:
            while await self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.sock.close()
        self.sock = None

    async def produce(self, dst: str, t0: float) -> None:
        """Send the requests; a reset connection is re-established with the reconnect policy
        and the request retried (Kafka's NetworkClient), its latency counted from the first try."""
        cfg = self.cfg
        req = struct.pack("!I", cfg.request_bytes) + self.rng.randbytes(cfg.request_bytes)
        await trio.sleep(self.rng.uniform(0, cfg.request_interval_s))
        for _ in range(cfg.requests_per_client):
            t = trio.current_time()
            while True:
                try:
                    await self._exchange(req)
                    break
                except OSError as e:
                    self.resets += 1
                    self.error = f"{type(e).__name__}: {e}"
                    self.sock.close()
                    self.sock = None
                    await self.reconnect(dst, t0)
            self.latencies.append((trio.current_time() - t) * 1000.0)
            await trio.sleep(cfg.request_interval_s)

    async def _exchange(self, req: bytes) -> None:
        view = memoryview(req)
        while view:
            n = await self.sock.send(view)
            view = view[n:]
        got = 0
        while got < 4 + RESPONSE:
            chunk = await self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("broker closed the connection")
            got += len(chunk)

    def capture(self) -> None:
        from tuntcp.harness.clients import tcp_info
        self.info = tcp_info(self.sock)      # trio sockets have getsockopt too

    def record(self) -> dict:
        """What summarize() needs of this producer, JSON-ready (a worker sends it as is)."""
        return {"idx": self.idx, "local": list(self.local) if self.local else None,
                "connected_at": self.connected_at, "latencies": self.latencies,
                "info": {k: self.info.get(k) for k in INFO_KEYS}, "resets": self.resets}


INFO_KEYS = ("snd_wscale", "rcv_wscale", "snd_wnd", "total_retrans")


def make_producers(cfg: StormConfig, srcs: list[str], first: int, stop: int, new_socket) -> list:
    """Producers ``first..stop-1`` of the storm: the same address and RNG per index whichever
    process runs them."""
    return [Producer(i, srcs[i % len(srcs)], cfg, new_socket, random.Random(cfg.seed * 100003 + i))
            for i in range(first, stop)]


class Fleet:
    """The producer side of one storm, phase by phase. run_mode drives it in-process; a worker
    (scenarios/storm_worker.py) drives one on its slice, and WorkerFleet has the same methods."""

    def __init__(self, producers: list[Producer], dst: str):
        self.producers, self.dst = producers, dst

    async def connect(self, first: int, stop: int) -> int:
        """Phase 1: connect producers ``first..stop-1`` (those this fleet has) at once; returns
        how many of them did."""
        base = self.producers[0].idx if self.producers else 0
        ps = self.producers[max(0, first - base):max(0, stop - base)]
        async with trio.open_nursery() as n:
            for p in ps:
                n.start_soon(p.connect_once, self.dst)
        return sum(p.sock is not None for p in ps)

    async def wait_broken(self) -> None:
        """Phase 2: every producer notices the broker's reset."""
        async with trio.open_nursery() as n:
            for p in self.producers:
                if p.sock is not None:
                    n.start_soon(p.wait_broken)

    async def storm(self, t0: float) -> None:
        """Phase 3: all reconnect at once with their policy, produce, then read TCP_INFO."""
        async def one(p):
            await p.reconnect(self.dst, t0)
            await p.produce(self.dst, t0)
            p.capture()

        async with trio.open_nursery() as n:
            for p in self.producers:
                n.start_soon(one, p)

    def progress(self) -> tuple[int, int]:
        """(producers connected since the restart, requests answered)."""
        return (sum(p.connected_at is not None for p in self.producers),
                sum(len(p.latencies) for p in self.producers))

    async def records(self) -> list[dict]:
        return [p.record() for p in self.producers]



# ---- one run -----------------------------------------------------------------------------------

def _profile_for(cfg: StormConfig, mode: str):
    from tuntcp.profiles import get_profile
    return get_profile(cfg.profile, [*cfg.sysctl, f"net.ipv4.tcp_syncookies={cfg.syncookies}",
                                     f"model.cookie_wscale_clamp={'true' if mode == 'fixed' else 'false'}"])


async def run_mode(cfg: StormConfig, mode: str, outdir: Path, show=None) -> dict:
    """One complete storm (connect, restart, reconnect, produce) under ``mode``."""
    from tuntcp.host.stack import Stack
    from tuntcp.harness.link import LinkModel
    from tuntcp.harness.netns import Lab
    from tuntcp.shell.control import ControlServer, socket_path
    from tuntcp.shell.endpoint import Endpoint
    from tuntcp.wire.pcap import PcapWriter

    show = show or (lambda **kw: None)
    show(mode=mode, phase="setup")
    rng = random.Random(cfg.seed)
    profile = _profile_for(cfg, mode)
    kernel_log: list[str] = []

    def log(kind, **fields):
        if kind == "kernel_log":
            kernel_log.append(fields.get("line", ""))
            show(log_line=fields.get("line", ""))

    # The ring must hold the whole reconnect burst (every producer's SYN at once) plus the
    # first data of the earliest ones, or the storm measures TUN drops instead of the SYN queue.
    txq = max(20000, 4 * cfg.clients)
    raise_fd_limit()
    with Lab(txqueuelen=txq) as lab:
        srcs = lab.add_client_addrs(cfg.hosts) if cfg.hosts > 1 else [lab.client_addr]
        stack = Stack(profile, addrs={lab.endpoint_ip}, secret=rng.randbytes(16), log=log)
        pcap_path = outdir / f"storm-{mode}.pcap"
        pcap = PcapWriter(str(pcap_path)) if cfg.pcap else None
        one_way = cfg.rtt_ms / 2000.0
        link_in = LinkModel(cfg.seed, delay=one_way, loss=cfg.loss) if (one_way or cfg.loss) else None
        link_out = LinkModel(cfg.seed + 1, delay=one_way, loss=cfg.loss) if (one_way or cfg.loss) else None
        ep = Endpoint(stack, lab.tun_fd, pcap=pcap, link_in=link_in, link_out=link_out,
                      max_batch=cfg.batch)
        broker = Broker(ep, cfg)
        slices = plan_slices(cfg)
        timeline = {"t": [], "established": [], "accept_queue": [], "syn_queue": []}
        result: dict = {}
        try:
            with trio.fail_after(cfg.duration_s):
                async with trio.open_nursery() as nursery:
                    if len(slices) == 1:
                        fleet = Fleet(make_producers(cfg, srcs, 0, cfg.clients, lab.socket_in_ns),
                                      lab.endpoint_addr)
                    else:
                        from tuntcp.scenarios.storm_worker import WorkerFleet
                        fleet = await WorkerFleet.start(lab, cfg, srcs, slices, nursery)
                    nursery.start_soon(ep.run)
                    # `tuntcp ss -lnt --name storm` / `tuntcp nstat --name storm` while it runs
                    await nursery.start(ControlServer(ep, socket_path(cfg.control_name)).serve)
                    await broker.listen(nursery)
                    # phase 1: producers connect a few at a time, as over a normal day. Each
                    # step waits until the broker has accepted it: producers in other processes
                    # are not slowed by a busy broker, and a cookie connection whose ACK met a
                    # full accept queue would never reach it (the producer stays idle).
                    step, connected = max(1, cfg.backlog // 2), 0
                    for first in range(0, cfg.clients, step):
                        connected += await fleet.connect(first, first + step)
                        while len(broker.streams) < connected:
                            await trio.sleep(0.001)
                        show(phase="connecting", connected=connected)
                    before = stack.counters.snapshot()
                    # phase 2: restart; every producer notices and reconnects with its policy
                    async with trio.open_nursery() as n:
                        n.start_soon(fleet.wait_broken)
                        await broker.restart()
                    await broker.listen(nursery)
                    t0 = trio.current_time()
                    done = trio.Event()
                    nursery.start_soon(_sample, stack, broker, fleet, timeline, t0, done, show)
                    await fleet.storm(t0)
                    done.set()
                    # let the last window updates reach the broker's final state
                    await trio.sleep(0.05)
                    server = {k: s.info() for k, s in broker.streams.items()}
                    counters = stack.counters.delta(before)
                    records = await fleet.records()
                    nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            raise StormError(f"{mode} run did not finish within --duration {cfg.duration_s} s "
                             f"(raise it, or lower --clients / --requests)") from None
        except BaseExceptionGroup as eg:
            # a producer process failed: its one-line StormError, not the nursery's group
            from tuntcp.errors import leaves
            raise next((e for e in leaves(eg) if isinstance(e, StormError)), eg) from None
        finally:
            if pcap:
                pcap.close()
        syn_retrans = count_syn_retransmits(pcap_path) if cfg.pcap else None
        result = summarize(mode, profile, records, server, counters, kernel_log, timeline, syn_retrans)
        result["processes"] = len(slices)
        result["pcap"] = str(pcap_path) if cfg.pcap else None
        return result


async def _sample(stack, broker, fleet, timeline, t0, done, show) -> None:
    while not done.is_set():
        t = trio.current_time() - t0
        lst = broker.listener.listener if broker.listener else None
        q = lst.queue_lengths() if lst else {"accept": 0, "syn": 0}
        est, answered = fleet.progress()
        timeline["t"].append(round(t, 4))
        timeline["established"].append(est)
        timeline["accept_queue"].append(q["accept"])
        timeline["syn_queue"].append(q["syn"])
        show(phase="storm", t=t, established=est, syn=q["syn"], accept=q["accept"], done=answered)
        await trio.sleep(0.02)


def count_syn_retransmits(pcap_path: Path) -> int:
    """SYNs seen more than once for the same (addr, port, ISN): client SYN retransmissions."""
    from tuntcp.wire.codec import Malformed, parse
    from tuntcp.wire.segment import ACK, SYN
    seen: dict[tuple, int] = {}
    with open(pcap_path, "rb") as f:
        data = f.read()
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        pkt = data[off + 16: off + 16 + incl]
        off += 16 + incl
        try:
            seg = parse(pkt, verify=False)
        except Malformed:
            continue
        if seg.flags & SYN and not seg.flags & ACK and seg.dport == PORT:
            k = (seg.saddr, seg.sport, seg.seq)
            seen[k] = seen.get(k, 0) + 1
    return sum(n - 1 for n in seen.values())


def summarize(mode, profile, records, server, counters, kernel_log, timeline, syn_retrans) -> dict:
    """The report of one run from the producers' records (Producer.record(), from this process
    or merged from the workers, in producer order) and the broker's view of each connection."""
    conns, lat_by = [], {"synq": [], "cookie": []}
    for r in records:
        if r["local"] is None or r["connected_at"] is None:
            continue
        addr, port = r["local"]
        s = server.get((int(IPv4Address(addr)), port))
        if s is None:
            continue
        hs = s.get("path", "synq")
        info = r["info"]
        lat_by.setdefault(hs, []).extend(r["latencies"])
        conns.append({
            "client": f"{addr}:{port}",
            "handshake": hs,
            "client_snd_wscale": info.get("snd_wscale"),
            "client_rcv_wscale": info.get("rcv_wscale"),
            "server_rcv_wscale": s["rcv_wscale"],
            "window_field": s["rcv_wnd"] >> s["rcv_wscale"],
            "client_snd_wnd": info.get("snd_wnd"),
            "latency_ms": percentiles(r["latencies"]),
            "retransmits": info.get("total_retrans"),
            "connect_s": round(r["connected_at"], 4),
            "resets": r["resets"],
        })
    summary = {
        "connections_made": len(conns),
        "time_to_all_connected_s": max((c["connect_s"] for c in conns), default=None),
        "syn_retransmits": syn_retrans,
        "cookie_connections": sum(c["handshake"] == "cookie" for c in conns),
        "wscale_mismatches": sum(c["client_snd_wscale"] != c["server_rcv_wscale"] for c in conns),
        "latency_ms_by_handshake": {k: percentiles(v) for k, v in lat_by.items()},
        "counters": counters,
        "kernel_log": kernel_log,
        "producer_resets": sum(r["resets"] for r in records),
    }
    return {"mode": mode, "profile": profile.name,
            "cookie_wscale_clamp": profile["model.cookie_wscale_clamp"],
            "connections": conns, "summary": summary, "timeline": timeline,
            "latencies": {k: [round(x, 3) for x in v] for k, v in lat_by.items()}}


def compare(runs: dict) -> dict:
    out = {}
    b, f = runs.get("buggy"), runs.get("fixed")
    if b and f:
        def p(run, q):
            return run["summary"]["latency_ms_by_handshake"].get("cookie", {}).get(q)
        for q in ("p50", "p99"):
            if p(b, q) and p(f, q):
                out[f"cookie_latency_{q}_ratio"] = round(p(b, q) / p(f, q), 1)
        out["headline"] = (
            f"buggy: {b['summary']['wscale_mismatches']} of {b['summary']['cookie_connections']} cookie "
            f"connections disagree on wscale, cookie p50 {p(b, 'p50')} ms; fixed: "
            f"{f['summary']['wscale_mismatches']} mismatches, cookie p50 {p(f, 'p50')} ms")
    return out


async def run_storm(cfg: StormConfig, show=None) -> dict:
    """Run the broker-restart storm once per ``cfg.modes``; returns the report (docs/storm-report.md)
    after writing report.json/report.md and plots into ``cfg.out``."""
    cfg.check()
    outdir = Path(cfg.out)
    outdir.mkdir(parents=True, exist_ok=True)
    runs = {}
    for mode in cfg.modes:
        runs[mode] = await run_mode(cfg, mode, outdir, show)
    cfg_dict = asdict(cfg)
    cfg_dict["modes"] = list(cfg.modes)
    report = {"scenario": "kafka-broker-restart", "config": cfg_dict, "runs": runs,
              "comparison": compare(runs),
              "artifacts": {"pcap": {m: r["pcap"] for m, r in runs.items()}}}
    return write_all(report, outdir)
