"""Helpers for the reliability tests in a namespace: an echo endpoint on the lab's TUN, a
"legitimate client" that must keep succeeding, a packet injector process, RSS sampling.

The injector is a separate process inside the namespace that writes pre-built IP packets to an
AF_PACKET socket on the TUN interface: the bytes reach the endpoint exactly as crafted (a raw
IP socket would let the kernel fix lengths and checksums), and the flood does not share a CPU
or the GIL with the endpoint loop.
"""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys

import trio

from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.shell.apps import echo, guarded

SECRET = b"reliability-key!"

INJECTOR = r"""
import json, socket, struct, sys, time
ifname, path, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
data = open(path, "rb").read()
pkts, i = [], 0
while i < len(data):
    (n,) = struct.unpack_from("!H", data, i)
    pkts.append(data[i + 2:i + 2 + n])
    i += 2 + n
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((ifname, 0x0800))
s.setblocking(False)
dst = (ifname, 0x0800)
sent = dropped = 0
t0 = time.monotonic()
k = 0
while True:
    if seconds and time.monotonic() - t0 >= seconds:
        break
    if not seconds and k == len(pkts):
        break
    p = pkts[k % len(pkts)]
    k += 1
    try:
        s.sendto(p, dst)
        sent += 1
    except (BlockingIOError, OSError):
        dropped += 1
    if rate:
        ahead = k / rate - (time.monotonic() - t0)
        if ahead > 0.001:
            time.sleep(ahead)
print(json.dumps({"sent": sent, "dropped": dropped, "seconds": time.monotonic() - t0}))
"""


def start_endpoint(lab, nursery, *, profile="linux-6.1", overrides=(), **ep_kw) -> Endpoint:
    stack = Stack(get_profile(profile, list(overrides)), addrs={lab.endpoint_ip}, secret=SECRET)
    ep = Endpoint(stack, lab.tun_fd, **ep_kw)
    nursery.start_soon(ep.run)
    return ep


async def start_echo(ep, nursery, port=7, backlog=128, **sockopts):
    lst = await open_tcp_listener(ep, port, backlog, **sockopts)
    nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
    return lst


async def kernel_connect(lab, port: int, timeout: float = 10.0, rcvbuf=None):
    s = lab.socket_in_ns()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ts = trio.socket.from_stdlib_socket(s)
    with trio.fail_after(timeout):
        await ts.connect((lab.endpoint_addr, port))
    return ts


async def recv_exactly(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class LegitClient:
    """Real kernel clients that must keep working while the endpoint is under attack: one
    long-lived echo connection exchanging a seeded 1 KB message every `interval`, and a fresh
    connection (connect, echo, close) every `reconnect_every` exchanges. Every reply is compared
    byte for byte; any failure is recorded with its reason."""

    def __init__(self, lab, port=7, interval=0.02, reconnect_every=10, timeout=5.0):
        self.lab, self.port, self.interval = lab, port, interval
        self.reconnect_every, self.timeout = reconnect_every, timeout
        self.exchanges = self.connects = self.bytes = 0
        self.connect_times: list[float] = []
        self.failures: list[str] = []
        self._stop = trio.Event()

    async def _exchange(self, sock, i: int) -> None:
        msg = struct.pack("!I", i) * 256
        with trio.fail_after(self.timeout):
            await sock.send(msg)
            got = await recv_exactly(sock, len(msg))
        if got != msg:
            raise AssertionError("echo returned different bytes")
        self.bytes += 2 * len(msg)

    async def run(self) -> None:
        sock = None
        i = 0
        try:
            sock = await kernel_connect(self.lab, self.port, self.timeout)
            self.connects += 1
            while not self._stop.is_set():
                i += 1
                try:
                    await self._exchange(sock, i)
                    self.exchanges += 1
                    if i % self.reconnect_every == 0:
                        t0 = trio.current_time()
                        fresh = await kernel_connect(self.lab, self.port, self.timeout)
                        self.connect_times.append(trio.current_time() - t0)
                        self.connects += 1
                        await self._exchange(fresh, i)
                        fresh.close()
                except (OSError, trio.TooSlowError, AssertionError, EOFError) as e:
                    self.failures.append(f"exchange {i}: {type(e).__name__}: {e}")
                    if sock is not None:
                        sock.close()
                    sock = await kernel_connect(self.lab, self.port, self.timeout)
                await trio.sleep(self.interval)
        finally:
            if sock is not None:
                sock.close()

    def stop(self) -> None:
        self._stop.set()


def write_packets(path, pkts) -> None:
    with open(path, "wb") as f:
        for p in pkts:
            f.write(struct.pack("!H", len(p)) + bytes(p))


def start_injector(lab, path, *, rate: float = 0.0, seconds: float = 0.0) -> subprocess.Popen:
    """Send the packets of `path` into the TUN from inside the namespace: each once (seconds=0)
    or round-robin for `seconds`; `rate` packets/s (0: as fast as possible)."""
    return lab.run_in_ns([sys.executable, "-c", INJECTOR, lab.tun_name, str(path), str(rate),
                          str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def injector_result(proc, timeout=60) -> dict:
    out, err = await trio.to_thread.run_sync(lambda: proc.communicate(timeout=timeout),
                                             abandon_on_cancel=True)
    assert proc.returncode == 0, err.decode(errors="replace")
    return json.loads(out)


def rss_kb(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples this process's resident memory every `every` seconds (trio task)."""

    def __init__(self, every=0.1):
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = trio.Event()

    async def run(self):
        while not self._stop.is_set():
            self.samples.append((trio.current_time(), rss_kb()))
            await trio.sleep(self.every)

    def stop(self):
        self._stop.set()

    def peak(self) -> int:
        return max(v for _, v in self.samples)


def ensure_tool(name: str) -> None:
    import shutil
    if shutil.which(name) is None:
        raise RuntimeError(f"{name} is not installed (make tools)")


