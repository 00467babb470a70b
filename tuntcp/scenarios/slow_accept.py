"""Cloudflare's "SYN packet handling in the wild": the application stalls accept() for a moment.

The endpoint listens with a small backlog and its application does not call accept() for
``stall_s`` while real kernel clients (one every ``pace_ms``, over a ``rtt_ms`` link) connect and
send one request each. The accept queue fills to backlog + 1 (``sk_acceptq_is_full`` is a strict
``>``), which ``ss -lnt`` shows as Recv-Q = Send-Q + 1; from then on SYNs are dropped and completing
ACKs overflow (TcpExtListenOverflows, TcpExtListenDrops). After the stall the application drains
the queue: ``ss -lnt`` shows Recv-Q 0 again, and only the counters remember.

The same load runs once per ``tcp_abort_on_overflow`` setting:
  0  an overflowing ACK is dropped and the request sock kept (acked); the SYN-ACK timer and the
     client's own retransmissions let it in once there is room: clients stall, then succeed.
  1  an overflowing ACK is answered with a RST: the client, already ESTABLISHED after its ACK,
     sees ECONNRESET on its first send/recv.

report.json keys:
  scenario, config
  headline: {setting: {"recv_q_during", "recv_q_after", "send_q", "listen_overflows",
             "ok", "reset", "timeout", "other"}}      (setting = "abort_on_overflow=0" / "=1")
  counters: {setting: endpoint MIB deltas, nstat names}
  runs: {setting: {"ss_lnt_during", "ss_lnt_after" (view text), "max_accept_queue",
         "clients": [{"client", "start_s", "connect_s", "outcome", "error", "done_s"}],
         "connect_s": percentiles, "kernel_client_counters": the namespace's MIB deltas}}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import errno
import random
from dataclasses import asdict, dataclass, field

import trio

from tuntcp.scenarios.cli_common import out_option, progress, quiet_option, scenario_main, sysctl_option, time_option
from tuntcp.scenarios.rig import begin, collect, family_of, family_option
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import percentiles, write_report

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 8080
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
RESPONSE = b"HTTP/1.0 200 OK\r\n\r\n"


class SlowAcceptError(UserError, ValueError):
    """A user mistake in the scenario's knobs."""


@dataclass
class Config:
    clients: int = 40
    backlog: int = 16
    stall_s: float = 2.0            # accept() is not called for this long after listen()
    pace_ms: float = 20.0           # one client connect every pace_ms
    rtt_ms: float = 100.0           # link RTT: SYNs admitted just before the queue filled
                                    # complete (and overflow) one RTT later
    profile: str = "linux-6.1"
    settings: tuple[int, ...] = (0, 1)   # tcp_abort_on_overflow values to run
    client_timeout_s: float = 12.0  # a client gives up after this (connect + request)
    seed: int = 1
    sysctl: list[str] = field(default_factory=list)
    family: int = 4                 # the lab's address family (--family)
    out: str = "out/slow_accept"

    def check(self) -> None:
        if not 1 <= self.clients <= 5000:
            raise SlowAcceptError("--clients must be 1..5000")
        if not 0 <= self.backlog <= 65535:
            raise SlowAcceptError("--backlog must be 0..65535")
        if self.stall_s < 0 or self.pace_ms < 0 or self.rtt_ms < 0:
            raise SlowAcceptError("--stall-s, --pace-ms and --rtt-ms must be >= 0")
        if not self.settings or any(s not in (0, 1) for s in self.settings):
            raise SlowAcceptError("--abort-on-overflow takes 0 and/or 1")
        if self.client_timeout_s <= 0:
            raise SlowAcceptError("--client-timeout must be > 0")
        from tuntcp.profiles import ProfileError, get_profile
        try:
            p = get_profile(self.profile, self.sysctl)
        except ProfileError as e:
            raise SlowAcceptError(str(e)) from None
        if p.family != "linux":
            raise SlowAcceptError("slow_accept models tcp_abort_on_overflow: use a linux-* profile")


def listen_row_queues(ss_text: str, port: int) -> tuple[int, int]:
    """(Recv-Q, Send-Q) of the LISTEN row for ``port`` in ``ss -lnt`` text, read the way an
    operator reads it: the second and third columns of the row whose local address ends :port."""
    for line in ss_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4 and cols[0] == "LISTEN" and cols[3].endswith(f":{port}"):
            return int(cols[1]), int(cols[2])
    raise ValueError(f"no LISTEN row for port {port}")


class Client:
    """One kernel socket: connect, send the request, read the response (or fail)."""

    def __init__(self, idx: int, start: float):
        self.idx, self.start = idx, start
        self.local = None
        self.connect_s: float | None = None
        self.done_s: float | None = None
        self.outcome = "timeout"
        self.error: str | None = None

    async def run(self, lab, dst: str, t0: float, timeout: float) -> None:
        await trio.sleep_until(t0 + self.start)
        raw = lab.socket_in_ns()
        s = trio.socket.from_stdlib_socket(raw)
        t = trio.current_time()
        try:
            with trio.move_on_after(timeout):
                try:
                    await s.connect((dst, PORT))
                    self.connect_s = trio.current_time() - t
                    self.local = raw.getsockname()
                    await s.send(REQUEST)
                    got = b""
                    while len(got) < len(RESPONSE):
                        chunk = await s.recv(4096)
                        if not chunk:
                            raise ConnectionAbortedError(errno.ECONNABORTED, "closed early")
                        got += chunk
                    self.outcome = "ok"
                except OSError as e:
                    reset = e.errno in (errno.ECONNRESET, errno.EPIPE)
                    self.outcome = "reset" if reset else "other"
                    self.error = errno.errorcode.get(e.errno, str(e))
            self.done_s = trio.current_time() - t
        finally:
            s.close()


class App:
    """The endpoint's application: accept() only after the stall, then answer each request."""

    def __init__(self, listener):
        self.listener = listener
        self.accepted = 0

    async def serve(self, nursery, resume_at: float) -> None:
        await trio.sleep_until(resume_at)
        while True:
            stream = await self.listener.accept()
            self.accepted += 1
            nursery.start_soon(self._one, stream)

    async def _one(self, stream) -> None:
        try:
            got = b""
            while len(got) < len(REQUEST):
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                got += chunk
            await stream.send_all(RESPONSE)
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            stream.abort()


async def run_setting(cfg: Config, abort: int, show) -> dict:
    from tuntcp.harness.link import LinkModel
    from tuntcp.obs.views import ss_lnt
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    rng = random.Random(cfg.seed)
    profile = get_profile(cfg.profile, [*cfg.sysctl, f"net.ipv4.tcp_abort_on_overflow={abort}"])
    one_way = cfg.rtt_ms / 2000.0
    links = dict(link_in=LinkModel(cfg.seed, delay=one_way),
                 link_out=LinkModel(cfg.seed + 1, delay=one_way)) if one_way else {}
    clients = [Client(i, 0.1 + i * cfg.pace_ms / 1000.0) for i in range(cfg.clients)]
    views: dict = {}
    max_q = 0
    async with rig_endpoint(profile, lab=dict(family=cfg.family), secret=rng.randbytes(16), kernel=True,
                            **links) as rig:
        lab = rig.lab
        listener = await open_tcp_listener(rig.ep, PORT, cfg.backlog)
        lst = listener.listener
        t0 = trio.current_time()
        rig.nursery.start_soon(App(listener).serve, rig.nursery, t0 + cfg.stall_s)
        async with trio.open_nursery() as cn:
            for c in clients:
                cn.start_soon(c.run, lab, lab.endpoint_addr, t0, cfg.client_timeout_s)
            # watch the queue; take `ss -lnt` just before accept() resumes
            while trio.current_time() < t0 + cfg.stall_s - 0.05:
                max_q = max(max_q, lst.queue_lengths()["accept"])
                await trio.sleep(0.01)
            views["during"] = ss_lnt(rig.stack)
            show(msg=f"abort_on_overflow={abort}: stall ends; ss -lnt during the stall:\n"
                     + views["during"].rstrip())
        # every client finished: let the last FIN/ACKs settle, then look again
        await trio.sleep(0.3)
        views["after"] = ss_lnt(rig.stack)
    return setting_result(clients, views, max_q, rig)


def setting_result(clients: list[Client], views: dict, max_q: int, rig) -> dict:
    during, send_q = listen_row_queues(views["during"], PORT)
    after, _ = listen_row_queues(views["after"], PORT)
    rows = [{"client": f"{c.local[0]}:{c.local[1]}" if c.local else None,
             "start_s": round(c.start, 3),
             "connect_s": None if c.connect_s is None else round(c.connect_s, 4),
             "outcome": c.outcome, "error": c.error,
             "done_s": None if c.done_s is None else round(c.done_s, 4)} for c in clients]
    outcomes = {k: sum(r["outcome"] == k for r in rows) for k in ("ok", "reset", "timeout", "other")}
    head = {"recv_q_during": during, "recv_q_after": after, "send_q": send_q,
            "listen_overflows": rig.counters.get(mib.TcpExtListenOverflows, 0), **outcomes}
    return {"headline": head, "counters": rig.counters,
            "run": {"ss_lnt_during": views["during"], "ss_lnt_after": views["after"],
                    "max_accept_queue": max_q, "clients": rows,
                    "connect_s": percentiles([c.connect_s for c in clients if c.connect_s is not None]),
                    "done_s": percentiles([c.done_s for c in clients if c.outcome == "ok"]),
                    "kernel_client_counters": rig.kernel_delta},
            "saturation": rig.saturation}


async def run(cfg: Config, show=None) -> dict:
    out = begin(cfg)
    show = show or (lambda **kw: None)
    report = {"scenario": "slow-accept", "config": {**asdict(cfg), "settings": list(cfg.settings)},
              "headline": {}, "counters": {}, "runs": {}}
    for abort in cfg.settings:
        name = f"abort_on_overflow={abort}"
        show(msg=f"{name}: {cfg.clients} clients, backlog {cfg.backlog}, accept() stalled {cfg.stall_s} s")
        collect(report, name, await run_setting(cfg, abort, show))
    return write_report(report, out, markdown)


def summary_table(report: dict) -> str:
    heads = report["headline"]
    names = list(heads)
    keys = ["send_q", "recv_q_during", "recv_q_after", "listen_overflows", "ok", "reset", "timeout", "other"]
    w = 18
    lines = [f"{'':{w}}" + "".join(f"{n:>24}" for n in names)]
    for k in keys:
        lines.append(f"{k:{w}}" + "".join(f"{heads[n][k]:>24}" for n in names))
    for k in (mib.TcpExtListenDrops, mib.TcpExtEmbryonicRsts, mib.TcpExtTCPSynRetrans):
        lines.append(f"{k:{w}}" + "".join(f"{report['counters'][n].get(k, 0):>24}" for n in names))
    return "\n".join(lines)


def markdown(report: dict) -> str:
    out = ["# slow accept (Cloudflare, SYN packet handling in the wild)", "",
           "Config: " + ", ".join(f"`{k}={v}`" for k, v in report["config"].items()), "",
           "```", summary_table(report), "```"]
    for name, run_ in report["runs"].items():
        out += ["", f"## {name}", "", "`ss -lnt` during the stall:", "", "```",
                run_["ss_lnt_during"].rstrip(), "```", "", "after the stall:", "", "```",
                run_["ss_lnt_after"].rstrip(), "```", "",
                f"client connect time (s): {run_['connect_s']}"]
    return "\n".join(out) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--clients", type=int, default=d.clients, help="kernel clients")
    p.add_argument("--backlog", type=int, default=d.backlog, help="listen backlog")
    time_option(p, "--stall-s", old="--stall", dest="stall", default=d.stall_s,
                help="how long accept() is not called after listen()")
    time_option(p, "--pace-ms", default=d.pace_ms, help="time between client connects")
    time_option(p, "--rtt-ms", default=d.rtt_ms, help="link RTT (half each way)")
    p.add_argument("--profile", default=d.profile, help="kernel profile of the endpoint")
    p.add_argument("--abort-on-overflow", default="0,1",
                   help="tcp_abort_on_overflow values to run: 0,1 or one of them")
    time_option(p, "--client-timeout-s", old="--client-timeout", dest="client_timeout",
                default=d.client_timeout_s, help="a client gives up after this")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the endpoint's secret")
    sysctl_option(p)
    family_option(p)
    out_option(p, d.out)
    quiet_option(p)


def main(args) -> int:
    try:
        settings = tuple(int(x) for x in args.abort_on_overflow.split(",") if x.strip())
    except ValueError:
        raise SlowAcceptError(f"--abort-on-overflow takes 0 and/or 1, got "
                              f"{args.abort_on_overflow!r}") from None
    cfg = Config(clients=args.clients, backlog=args.backlog, stall_s=args.stall,
                 pace_ms=args.pace_ms, rtt_ms=args.rtt_ms, profile=args.profile, settings=settings,
                 client_timeout_s=args.client_timeout, seed=args.seed, sysctl=list(args.sysctl),
                 family=family_of(args), out=args.out)

    return scenario_main("slow-accept", cfg, run, summary=summary_table, show=progress(args.quiet))
