"""The storm's knobs and its producers (real kernel sockets in the lab's namespace), shared by
the parent (scenarios/storm.py) and the producer processes (scenarios/storm_worker.py).

The producers always run in worker processes, never in the broker's: a producer's CPU would
otherwise be taken from the endpoint it measures (issue 11).
"""
from __future__ import annotations

import math
import random
import resource
import socket
import struct
from dataclasses import dataclass, field

import trio

from tuntcp.errors import UserError

PORT = 9092
RESPONSE = 64          # bytes of a produce response body
REPLY = struct.pack("!I", RESPONSE) + bytes(RESPONSE)
PORTS_PER_ADDR = 60999 - 32768 + 1   # the lab namespace's default ip_local_port_range
MAX_CLIENTS = 100_000  # the broker process's memory and CPU, see docs/storm-report.md


class Framer:
    """Counts complete size-prefixed requests in a byte stream without keeping their bodies:
    the broker only needs to know when a request is in. The buggy window delivers a 64 KiB
    request in ~42 pieces of 1-2 segments; buffering and slicing each piece cost the broker
    a copy per piece (storm profile in docs/storm-report.md)."""

    __slots__ = ("hdr", "left")

    def __init__(self):
        self.hdr = b""
        self.left = -1           # body bytes still to come; -1 while reading a 4-byte header

    def feed(self, data) -> int:
        n = len(data)
        if n < self.left:        # the common piece: inside a body
            self.left -= n
            return 0
        done, i = 0, 0
        while i < n:
            if self.left < 0:
                take = min(4 - len(self.hdr), n - i)
                self.hdr += bytes(data[i:i + take])
                i += take
                if len(self.hdr) < 4:
                    break
                self.left = struct.unpack("!I", self.hdr)[0]
                self.hdr = b""
            take = min(self.left, n - i)
            self.left -= take
            i += take
            if self.left == 0:
                self.left = -1
                done += 1
        return done


class StormError(UserError, ValueError):
    """A user mistake in the storm's knobs."""


@dataclass
class StormConfig:
    clients: int = 200
    hosts: int = 30                     # source addresses the producers spread over
    family: int = 4                     # 4 or 6: the lab's, the producers' and the broker's
    backlog: int = 50
    syncookies: int = 1
    profile: str = "linux-5.4"
    rcvbuf: int = 102400
    request_bytes: int = 65536           # a produce request with a few 16 KiB partition batches
    requests_per_client: int = 5
    request_interval_s: float = 1.0     # per producer; each starts at a random phase in it
    rtt_ms: float = 2.0
    loss: float = 0.0
    loss_from_restart: bool = False     # True: phase 1 (the normal day) is lossless; loss
                                        # starts with the restart (storm_reliability uses it)
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
    offload: bool = True                # IFF_VNET_HDR on the model's TUN (see storm.offload_note)
    modes: tuple[str, ...] = ("buggy", "fixed", "kernel")   # kernel: the host's own listener
    control_name: str = "storm"         # control socket for `tuntcp ss/nstat --name storm`
    clients_per_process: int = 0        # producers per process; 0: as many as RLIMIT_NOFILE allows
    shards: int = 1                     # broker endpoint processes (multi-queue TUN, storm_shards.py)
    # --target: the user's server command, started in the kernel column's namespace, and the
    # request/response shape it speaks (default: the Kafka-like size-prefixed produce)
    target: str = ""
    target_port: int = PORT
    request: str = ""                   # literal request ("PING\\r\\n", escapes allowed); "":
                                        # 4-byte size prefix + request_bytes random bytes
    reply_bytes: int = 4 + RESPONSE     # a response is this many bytes ...
    reply_delim: str = ""               # ... or ends with this (escapes allowed)
    # --front: the modelled broker relays to a backend (HOST, PORT) in its namespace, started
    # there by front_cmd (shell/relay.py StormFront)
    front: tuple = ()
    front_cmd: str = ""

    def check(self) -> None:
        if self.family not in (4, 6):
            raise StormError("--family must be ipv4 or ipv6")
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
        if not 1 <= self.shards <= 64:
            raise StormError("--shards must be 1..64")
        if self.backoff not in ("kafka", "immediate", "fixed"):
            raise StormError("--backoff must be kafka, immediate or fixed")
        if self.request_bytes < 1 or self.requests_per_client < 0:
            raise StormError("--request-bytes must be >= 1 and --requests >= 0")
        if not 0.0 <= self.loss < 0.5:
            raise StormError("--loss must be in [0, 0.5)")
        if self.rtt_ms < 0:
            raise StormError("--rtt-ms must be >= 0")
        if self.reply_bytes < 1:
            raise StormError("--reply-bytes must be >= 1")
        for name in ("request", "reply_delim"):
            try:
                unescape(getattr(self, name))
            except ValueError as e:
                raise StormError(f"--{name.replace('_', '-')}: {e}") from None
        if self.target and any(m != "target" for m in self.modes):
            raise StormError("--target storms the given server only: leave out --modes")
        if "target" in self.modes and not self.target:
            raise StormError("mode 'target' needs --target CMD")
        if self.front and not set(self.modes) <= {"buggy", "fixed"}:
            raise StormError("--front runs the buggy and fixed modes (storm the backend itself "
                             "on the host kernel with --target CMD)")
        if self.front and self.shards > 1:
            raise StormError("--front relays from one endpoint: leave out --shards")
        if self.front_cmd and not self.front:
            raise StormError("--front-cmd needs --front HOST:PORT")
        if not 1 <= self.target_port <= 65535:
            raise StormError("--target-port must be 1..65535")

    def request_for(self, rng: random.Random) -> bytes:
        if self.request:
            return unescape(self.request)
        return struct.pack("!I", self.request_bytes) + rng.randbytes(self.request_bytes)


def unescape(text: str) -> bytes:
    """``PING\\r\\n`` as typed on a command line -> the bytes it means."""
    try:
        return text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    except UnicodeError as e:
        raise ValueError(f"bad escape in {text!r} ({e.reason})") from None


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
    """Producer index ranges, one per worker process (scenarios/storm_worker.py): as few as the
    open-files limit allows, so the producers take one core at most and the endpoint keeps its."""
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
        self.delim = unescape(cfg.reply_delim)

    async def connect_once(self, dst: str) -> bool:
        raw = self.new_socket()
        raw.bind((self.src, 0))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # Kafka's Selector.connect
        s = trio.socket.from_stdlib_socket(raw)
        self.attempts += 1
        try:
            await s.connect((dst, self.cfg.target_port if self.cfg.target else PORT))
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
        """Block until the broker side resets or closes the connection. On a lossy link the
        broker's one RST may be lost (a RST is never retransmitted): after RST_WAIT_S the
        producer stops listening and keeps its dead socket, and finds it dead when its first
        request is answered by a RST (``produce`` then reconnects), as a real client would."""
        with trio.move_on_after(RST_WAIT_S if self.cfg.loss else math.inf):
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
        req = cfg.request_for(self.rng)
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
        got, delim, want = b"", self.delim, self.cfg.reply_bytes
        while not (got.endswith(delim) if delim else len(got) >= want):
            chunk = await self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("broker closed the connection")
            got = got[-len(delim):] + chunk if delim else got + chunk[:want - len(got)]

    def capture(self) -> None:
        from tuntcp.harness.clients import tcp_info
        self.info = tcp_info(self.sock)      # trio sockets have getsockopt too

    def record(self) -> dict:
        """What summarize() needs of this producer, JSON-ready (a worker sends it as is)."""
        return {"idx": self.idx, "local": list(self.local[:2]) if self.local else None,
                "connected_at": self.connected_at, "latencies": self.latencies,
                "info": {k: self.info.get(k) for k in INFO_KEYS}, "resets": self.resets,
                "error": self.error}


RST_WAIT_S = 5.0    # how long a producer listens for the broker's reset on a lossy link
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
            if p.sock is None:               # else it missed the reset (see wait_broken)
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
