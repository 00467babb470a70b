"""Shared pieces of the --front tests: a lab with a modelled listener relaying to a real server
that runs on the lab namespace's loopback (started with run_in_ns, killed by lab.close())."""
from __future__ import annotations

import contextlib
import csv
import io
import shutil
import subprocess

import pytest
import trio

from tuntcp.host.stack import Stack
from tuntcp.harness import netns
from tuntcp.harness.clients import tcp_info
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.shell.relay import Front, lab_sockets, start_backend

SECRET = b"front-tests-key!"
FRONT_PORT = 6379


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None
               and shutil.which(t, path="/usr/sbin:/sbin") is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/install-tools.sh installs them)")


@contextlib.asynccontextmanager
async def front_lab(backend_argv, backend, *, profile="linux-5.4", overrides=(), backlog=128,
                    rcvbuf=None, port=FRONT_PORT, connects=4):
    """Yields (lab, endpoint, front): the modelled listener on `port` relays to `backend`
    (host, port) in the namespace, where `backend_argv` runs."""
    with netns.Lab() as lab:
        stack = Stack(get_profile(profile, list(overrides)), addrs={lab.endpoint_ip}, secret=SECRET)
        ep = Endpoint(stack, lab.tun_fd)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ep.run)
            sockets = lab_sockets(lab)
            if backend_argv:
                await start_backend(lab, backend_argv, backend, sockets)
            lst = await open_tcp_listener(ep, port, backlog, rcvbuf=rcvbuf)
            front = Front(lst, backend, sockets, connects=connects)
            await nursery.start(front.serve)
            yield lab, ep, front
            nursery.cancel_scope.cancel()


async def ns_tool(lab, argv, timeout=120) -> str:
    """Run a client tool in the namespace; its stdout (a failure fails the test)."""
    def run():
        p = lab.run_in_ns(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        assert p.returncode == 0, f"{argv[0]} exited {p.returncode}: {err.decode()[-500:]}"
        return out.decode()
    return await trio.to_thread.run_sync(run)


def redis_csv(text: str) -> dict:
    """redis-benchmark --csv -> {test: {"rps": float, "p50": ms, "avg": ms, "p99": ms}}."""
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        out[row["test"]] = {"rps": float(row["rps"]), "avg": float(row["avg_latency_ms"]),
                            "p50": float(row["p50_latency_ms"]), "p99": float(row["p99_latency_ms"])}
    return out


async def probe_connection(lab, ep, request: bytes, port=FRONT_PORT):
    """One kernel client connected through the front that sent `request` and read the first
    bytes of the answer: (socket, its TCP_INFO, the endpoint's view of the same connection).
    The caller closes the socket."""
    s = lab.socket_in_ns()
    ts = trio.socket.from_stdlib_socket(s)
    await ts.connect((lab.endpoint_addr, port))
    await ts.send(request)
    assert await ts.recv(4096), "the backend did not answer through the front"
    lport = s.getsockname()[1]
    for _ in range(100):
        mine = [c for c in ep.stack.conns.values() if c.key[3] == lport and c.key[1] == port]
        if mine:
            break
        await trio.sleep(0.01)
    return ts, tcp_info(s), mine[0].info()
