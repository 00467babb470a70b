"""The skeleton every scenario mode shares, written once.

    out = begin(cfg)                         # inputs, privileges, then the output folder
    async with endpoint(profile, lab={...}, pcap=out / "x.pcap") as rig:
        listener = await open_tcp_listener(rig.ep, PORT, backlog)
        ...                                  # the mode's body: clients, samplers, views
        rig.finish()                         # counters now (else at the end of the block)
    rig.counters, rig.kernel_log, rig.client_cc, rig.saturation

``endpoint`` builds the Lab, the Stack (profile, secret, event log) and the Endpoint (pcap,
link models) and runs the endpoint in a nursery the body can use; it always closes the pcap and
the Lab, whatever the body raises. ``collect`` files one mode's result under the report's
``headline``/``counters``/``runs`` keys.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

import trio

from tuntcp.errors import make_out_dir

FAMILIES = {"ipv4": 4, "ipv6": 6}


def family_option(p) -> None:
    """``--family ipv4|ipv6``, the one option every scenario's address family comes from: the
    lab (IPv6: clients 2001:2::1, endpoint 2001:2:0:1::1), its kernel clients and the endpoint's
    listener."""
    p.add_argument("--family", choices=tuple(FAMILIES), default="ipv4",
                   help="address family of the lab, its clients and the endpoint")


def family_of(args) -> int:
    """4 or 6 from ``--family``."""
    return FAMILIES[getattr(args, "family", "ipv4")]


def url_host(addr: str) -> str:
    """An address as a URL or curl wants it: IPv6 in brackets."""
    return f"[{addr}]" if ":" in addr else addr


def require_privileges() -> None:
    """LabError (one line, exit 2) unless labs can be built here."""
    from tuntcp.harness.netns import LabError, privilege_problem, tun_problem
    problem = privilege_problem()
    if problem:
        raise LabError(problem)
    problem = tun_problem()      # $TUNTCP_TUN_DEVICE or /dev/net/tun
    if problem:
        raise LabError(problem)


def begin(cfg) -> Path:
    """Check the config, then the privileges, then make the output folder: nothing is created
    before the first two pass."""
    cfg.check()
    require_privileges()
    return Path(make_out_dir(cfg.out))


def collect(report: dict, name: str, result: dict) -> None:
    """File one mode's ``{"headline", "counters", "run"}`` under ``name`` in the report, and
    its ``saturation`` (the endpoint's, when it measures one) under ``report["saturation"]``."""
    for key, part in (("headline", "headline"), ("counters", "counters"), ("runs", "run")):
        report.setdefault(key, {})[name] = result[part]
    if result.get("saturation") is not None:
        report.setdefault("saturation", {})[name] = result["saturation"]


def file_saturation(report: dict, results: dict) -> None:
    """Move each result's ``saturation`` (None when the endpoint measures none) into
    ``report["saturation"]``, keyed like ``results``; no key when none has one."""
    sat = {name: r.pop("saturation", None) for name, r in results.items()}
    if any(v is not None for v in sat.values()):
        report["saturation"] = sat


async def side_by_side(names, run_one) -> dict:
    """``{name: await run_one(name)}`` with every name's lab running at once, in ``names``
    order."""
    results: dict = {}

    async def one(name):
        results[name] = await run_one(name)
    async with trio.open_nursery() as n:
        for name in names:
            n.start_soon(one, name)
    return {name: results[name] for name in names}


class Rig:
    """One lab and one endpoint in it, for the length of an ``endpoint`` block."""

    def __init__(self, lab, stack, ep, *, kernel: bool):
        self.lab, self.stack, self.ep = lab, stack, ep
        self.nursery: trio.Nursery | None = None
        self.kernel_log: list[str] = []
        self.before = stack.counters.snapshot()
        self.counters: dict | None = None
        self.kernel_delta: dict | None = None
        self._kbefore = _kernel_counters(lab) if kernel else None
        self.client_cc = _client_cc(lab)
        self.saturation: dict | None = None

    def finish(self) -> None:
        """Take the counter deltas (endpoint and, if asked, the clients' kernel) and stop the
        endpoint. The block's end calls it when the body did not."""
        if self.counters is None:
            self.counters = self.stack.counters.delta(self.before)
            if self._kbefore is not None:
                after = _kernel_counters(self.lab)
                self.kernel_delta = {k: v - self._kbefore.get(k, 0) for k, v in after.items()
                                     if v != self._kbefore.get(k, 0)}
            sat = getattr(self.ep, "saturation", None)
            self.saturation = sat.report() if sat is not None else None
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()


@asynccontextmanager
async def endpoint(profile, *, lab: dict | None = None, secret: bytes | None = None, log=None,
                   pcap: Path | str | None = None, link_in=None, link_out=None,
                   timeout: float | None = None, too_slow=None, kernel: bool = False,
                   **ep_kw):
    """A Lab (``Lab(**lab)``), a Stack for ``profile`` at the lab's endpoint address and an
    Endpoint running in a nursery; yields the Rig. ``log(kind, **fields)`` sees every event
    (kernel_log lines are also kept in ``rig.kernel_log``). With ``timeout`` the whole block is
    bounded and ``too_slow()`` (an exception) is raised when it runs out."""
    from tuntcp.host.stack import Stack
    from tuntcp.harness.netns import Lab
    from tuntcp.shell.endpoint import Endpoint
    from tuntcp.wire.pcap import PcapWriter

    kernel_log: list[str] = []

    def on_event(kind, **fields):
        if kind == "kernel_log":
            kernel_log.append(fields.get("line", ""))
        if log is not None:
            log(kind, **fields)

    with Lab(**(lab or {})) as the_lab:
        stack = Stack(profile, addrs=the_lab.endpoint_ips,
                      secret=os.urandom(16) if secret is None else secret, log=on_event)
        writer = PcapWriter(str(pcap)) if pcap else None
        try:
            ep = Endpoint(stack, the_lab.tun_fd, pcap=writer, link_in=link_in,
                          link_out=link_out, **ep_kw)
            rig = Rig(the_lab, stack, ep, kernel=kernel)
            rig.kernel_log = kernel_log
            try:
                with trio.fail_after(timeout) if timeout else nullcontext():
                    async with trio.open_nursery() as nursery:
                        rig.nursery = nursery
                        nursery.start_soon(ep.run)
                        yield rig
                        rig.finish()
            except trio.TooSlowError:
                if too_slow is None:
                    raise
                raise too_slow() from None
        finally:
            if writer is not None:
                writer.close()


def client_linear_timeouts(lab, value: int | None) -> int | None:
    """Set the clients' net.ipv4.tcp_syn_linear_timeouts; None on a host kernel without it
    (exponential SYN backoff from the start)."""
    from tuntcp.harness.netns import LabError
    if value is None:
        return None
    try:
        return int(lab.sysctl("net.ipv4.tcp_syn_linear_timeouts", value))
    except LabError:
        return None


def _kernel_counters(lab) -> dict:
    from tuntcp.harness.clients import kernel_counters
    return kernel_counters(lab)


def _client_cc(lab) -> str | None:
    """The congestion control the lab's kernel clients use: a new namespace inherits the
    host's default (net.ipv4.tcp_congestion_control), it is not reset to cubic."""
    from tuntcp.harness.netns import LabError
    from tuntcp.scenarios.report import note_client_cc
    try:
        cc = lab.sysctl("net.ipv4.tcp_congestion_control").strip()
    except (LabError, OSError):      # then the report falls back to a fresh namespace
        return None
    note_client_cc(cc)
    return cc
