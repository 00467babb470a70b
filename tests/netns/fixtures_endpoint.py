"""Shared pieces for netns tests that run our endpoint against real kernel clients.

    from fixtures_endpoint import start_endpoint, kernel_stream, ...   (fixtures by import)

`start_endpoint(**kw)` builds a Stack on the lab's TUN and runs its Endpoint in the test's nursery.
Kernel clients come in two kinds: in-process sockets created inside the namespace and wrapped as
trio sockets (`kernel_connect`), and a client *process* in the namespace (`KClient`) for bulk
transfers, so the kernel side's Python runs on the other core and never competes with our loop.
"""
from __future__ import annotations

import hashlib
import json
import random
import socket
import subprocess
import sys

import pytest
import trio

from tuntcp.host.stack import Stack
from tuntcp.harness.clients import set_linger0
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint

PROFILE = "linux-6.1"
SECRET = b"netns-tests-key!"   # fixed: same ISNs/cookies/TS offsets for the same 4-tuple


# a netns test run once per address family (the conftest's lab fixture takes the family)
BOTH_FAMILIES = pytest.mark.parametrize("lab", [4, 6], indirect=True, ids=["ipv4", "ipv6"])


@pytest.fixture
def start_endpoint(lab, nursery):
    """`start_endpoint(profile=PROFILE, pcap=None, link_in=None, link_out=None, overrides=None)`
    -> a running Endpoint on `lab.tun_fd`; the loop stops with the test's nursery."""
    def start(*, profile: str = PROFILE, overrides=None, **endpoint_kw) -> Endpoint:
        stack = Stack(get_profile(profile, overrides), addrs={lab.endpoint_ip}, secret=SECRET)
        ep = Endpoint(stack, lab.tun_fd, **endpoint_kw)
        nursery.start_soon(ep.run)
        return ep
    return start


async def kernel_connect(lab, port: int, *, rcvbuf: int | None = None, linger0: bool = False,
                         source: str | None = None):
    """A kernel TCP client in the lab namespace, connected to the endpoint: a trio socket."""
    s = lab.socket_in_ns()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if linger0:
        set_linger0(s)
    if source is not None:
        s.bind((source, 0))
    ts = trio.socket.from_stdlib_socket(s)
    await ts.connect((lab.endpoint_addr, port))
    return ts


async def recv_all(sock, limit: int = 1 << 30) -> bytes:
    """Read a trio socket until EOF."""
    buf = bytearray()
    while chunk := await sock.recv(65536):
        buf += chunk
        assert len(buf) <= limit, "peer sent more than expected"
    return bytes(buf)


async def sock_send_all(sock, data) -> None:
    """sendall for a trio socket."""
    view = memoryview(data)
    while view:
        view = view[await sock.send(view):]


async def receive_exactly(stream, n: int) -> bytes:
    """Read exactly n bytes from a TcpStream (EOF before that is a failure)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        assert chunk, f"EOF after {len(buf)} of {n} bytes"
        buf += chunk
    return bytes(buf)


def payload_chunks(seed: int, nbytes: int, chunk: int = 1 << 20):
    """Deterministic pseudo-random bytes (same seed -> same stream), in chunks."""
    rng = random.Random(seed)
    left = nbytes
    while left:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def payload_digest(seed: int, nbytes: int) -> str:
    h = hashlib.sha256()
    for c in payload_chunks(seed, nbytes):
        h.update(c)
    return h.hexdigest()


# A kernel client in its own process: `send` streams the seeded payload then half-closes and
# waits for the server's FIN; `recv` reads to EOF.  It prints one JSON line: bytes, sha256, the
# seconds from connect to the end, and the socket's TCP_INFO at the end (decoded).
KCLIENT = r"""
import hashlib, json, random, socket, sys, time
from tuntcp.harness.clients import tcp_info
mode, addr, port, nbytes, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((addr, port), timeout=120)
t0 = time.perf_counter()
h = hashlib.sha256()
n = 0
if mode == "send":
    rng = random.Random(seed)
    left = nbytes
    while left:
        c = rng.randbytes(min(1 << 20, left))
        s.sendall(c)
        h.update(c)
        n += len(c)
        left -= len(c)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b"", "server sent data to a sender"
else:
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        h.update(memoryview(buf)[:k])
        n += k
dt = time.perf_counter() - t0
info = tcp_info(s)
s.close()
print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "seconds": dt, "tcp_info": info,
                  "total_retrans": info["total_retrans"]}))
"""


class KClient:
    """`KClient(lab, "send"|"recv", port, nbytes, seed)`: the kernel client process; `await
    kc.result()` waits for it and returns its JSON report (a failing client fails the test)."""

    def __init__(self, lab, mode: str, port: int, nbytes: int = 0, seed: int = 0):
        self.proc = lab.run_in_ns([sys.executable, "-c", KCLIENT, mode, lab.endpoint_addr,
                                   str(port), str(nbytes), str(seed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    async def result(self) -> dict:
        out, err = await trio.to_thread.run_sync(self.proc.communicate, abandon_on_cancel=True)
        assert self.proc.returncode == 0, err.decode(errors="replace")
        return json.loads(out)


def ns_run(lab, argv, timeout: float = 30, stdin=None) -> subprocess.CompletedProcess:
    """Run a tool inside the namespace (blocking; call through trio.to_thread)."""
    p = lab.run_in_ns(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


async def ans_run(lab, argv, timeout: float = 30, stdin=None) -> subprocess.CompletedProcess:
    return await trio.to_thread.run_sync(lambda: ns_run(lab, argv, timeout, stdin))


__all__ = ["start_endpoint", "kernel_connect", "recv_all", "receive_exactly", "sock_send_all",
           "payload_chunks", "payload_digest", "KClient", "ns_run", "ans_run", "PROFILE", "SECRET"]
