"""pytest plugin (entry point ``pytest11: tuntcp``): test your own server against modelled
kernels and real kernel clients.

Fixtures:
    tuntcp_lab        a fresh Lab (namespace + TUN), removed after the test
    tuntcp_endpoint   factory: tuntcp_endpoint(profile=, backlog=, sysctl=, handler=, port=,
                      rcvbuf=) -> a running endpoint (needs pytest-trio's ``nursery``)
    kernel_clients    async factory: await kernel_clients(n, port, **connect_clients kw)
    reconnect_storm   async factory: await reconnect_storm(**StormConfig fields) -> report

Tests that use them get the ``tuntcp`` marker. Without privileges they skip with the reason;
``TUNTCP_REQUIRE_NETNS=1`` (CI) makes that a failure instead.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import pytest

FIXTURES = ("tuntcp_lab", "tuntcp_endpoint", "kernel_clients", "reconnect_storm")
_names = itertools.count()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "tuntcp: uses a tuntcp lab (root or CAP_NET_ADMIN, "
                            "/dev/net/tun); skipped with the reason when unavailable")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in FIXTURES):
            item.add_marker(pytest.mark.tuntcp)


@pytest.fixture(scope="session")
def _tuntcp_usable() -> None:
    from .harness import netns
    reason = netns.probe()
    if reason is not None:
        if os.environ.get("TUNTCP_REQUIRE_NETNS") == "1":
            pytest.fail(f"tuntcp lab unavailable under TUNTCP_REQUIRE_NETNS=1: {reason}",
                        pytrace=False)
        pytest.skip(f"tuntcp lab unavailable: {reason}")
    netns.sweep_stale()


@pytest.fixture
def tuntcp_lab(_tuntcp_usable):
    """A fresh ``tuntcp.Lab``: kernel clients live in ``lab.ns_name``, the endpoint is
    ``lab.endpoint_addr``."""
    from .harness.netns import Lab
    with Lab() as lab:
        yield lab


@dataclass
class RunningEndpoint:
    """What ``tuntcp_endpoint(...)`` returns: the pieces of one running endpoint."""
    lab: Any
    stack: Any
    endpoint: Any
    listener: Any = None        # a TcpListener when port= was given
    addr: str = ""              # where kernel clients connect


@pytest.fixture
def tuntcp_endpoint(tuntcp_lab, nursery):
    """Factory: ``tuntcp_endpoint(profile="linux-6.1", backlog=128, sysctl=(), handler=None,
    port=None, rcvbuf=None)`` runs an Endpoint on the lab's TUN in the test's nursery;
    with ``port`` it listens there, and with ``handler`` serves each connection with it."""
    from .host.stack import Stack
    from .profiles import get_profile
    from .shell import Endpoint, TcpListener, serve_tcp

    def start(*, profile: str = "linux-6.1", backlog: int = 128, sysctl=(), handler=None,
              port: int | None = None, rcvbuf: int | None = None) -> RunningEndpoint:
        if handler is not None and port is None:
            raise ValueError("tuntcp_endpoint(handler=...) needs port=")
        stack = Stack(get_profile(profile, list(sysctl)), addrs={tuntcp_lab.endpoint_ip},
                      secret=os.urandom(16))
        ep = Endpoint(stack, tuntcp_lab.tun_fd)
        nursery.start_soon(ep.run)
        run = RunningEndpoint(tuntcp_lab, stack, ep, addr=tuntcp_lab.endpoint_addr)
        if port is not None:
            run.listener = TcpListener(ep, stack.listen(port, backlog, rcvbuf=rcvbuf))
            if handler is not None:
                nursery.start_soon(serve_tcp, handler, [run.listener])
        return run
    return start


@pytest.fixture
def kernel_clients(tuntcp_lab):
    """Async factory: ``await kernel_clients(n, port, timeout=5, ...)`` -> n entries, each a
    connected kernel socket from the lab namespace or the OSError its connect failed with."""
    from .harness.clients import connect_clients

    async def connect(n: int, port: int, **kw):
        return await connect_clients(tuntcp_lab, n, port, **kw)
    return connect


@pytest.fixture
def reconnect_storm(_tuntcp_usable, tmp_path):
    """Async factory: ``await reconnect_storm(clients=40, syncookies=2, ...)`` runs
    ``tuntcp.run_storm`` (its own labs) with output in a temporary directory, no pcap by
    default, and returns the report."""
    from .scenarios.storm import StormConfig, run_storm

    async def storm(**fields) -> dict:
        fields.setdefault("out", str(tmp_path / "storm"))
        fields.setdefault("pcap", False)
        fields.setdefault("control_name", f"pt{os.getpid()}-{next(_names)}")
        return await run_storm(StormConfig(**fields))
    return storm
