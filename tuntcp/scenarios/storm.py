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

import random
import struct
from dataclasses import asdict
from pathlib import Path

import trio

from tuntcp import mib
from tuntcp.scenarios.report import percentiles, write_all
from tuntcp.wire.ipv6 import addr_int, addr_port
from tuntcp.scenarios.storm_fleet import (  # noqa: F401  (the storm's public names live here too)
    MAX_CLIENTS, PORT, PORTS_PER_ADDR, REPLY, RESPONSE, Framer, StormConfig, StormError, fd_budget,
    plan_slices, raise_fd_limit)

# ---- the broker -------------------------------------------------------------------------------

class Broker:
    """The endpoint as a Kafka broker: reads size-prefixed requests, answers each with RESPONSE
    bytes once the whole request is in (like a produce with acks=1 on a healthy broker). The
    kernel column's broker (storm_kernel.server) runs the same Framer on kernel sockets."""

    def __init__(self, endpoint, cfg: StormConfig):
        self.ep = endpoint
        self.cfg = cfg
        self.listener = None
        self.streams: dict[tuple[int, int], object] = {}
        self.final_info: dict[tuple[int, int], dict] = {}
        self.relisten_at: float | None = None
        self.replies = 0        # responses sent since the last listen (the reliability count)

    async def listen(self, nursery) -> None:
        from tuntcp.shell.listener import open_tcp_listener
        self.listener = await open_tcp_listener(self.ep, PORT, self.cfg.backlog, rcvbuf=self.cfg.rcvbuf)
        nursery.start_soon(self._accept_loop, self.listener, nursery)

    async def _accept_loop(self, listener, nursery) -> None:
        # each wake-up takes every queued connection, as the kernel column's broker does
        # (storm_kernel.server: accept until EAGAIN), so both columns run the same application
        while True:
            try:
                streams = await listener.accept_batch()
            except trio.ClosedResourceError:
                return
            for stream in streams:
                key = (stream.conn.raddr, stream.conn.rport)
                self.streams[key] = stream
                nursery.start_soon(self._serve, key, stream)

    async def _serve(self, key, stream) -> None:
        stream.setsockopt_nodelay(True)     # Kafka's Acceptor sets TCP_NODELAY on accepted sockets
        framer = Framer()
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                for _ in range(framer.feed(data)):
                    await stream.send_all(REPLY)
                    self.replies += 1
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
        self.replies = 0
        await trio.sleep(self.cfg.down_s)


# ---- one run -----------------------------------------------------------------------------------

def _profile_for(cfg: StormConfig, mode: str):
    from tuntcp.profiles import get_profile
    return get_profile(cfg.profile, [*cfg.sysctl, f"net.ipv4.tcp_syncookies={cfg.syncookies}",
                                     f"model.cookie_wscale_clamp={'true' if mode == 'fixed' else 'false'}"])


def _links(cfg: StormConfig, offload: bool = False):
    """The link model pair (producers -> broker, broker -> producers), the same for every mode
    (GsoLink on an offload TUN: the same per-segment loss, whole frames when only delayed)."""
    from tuntcp.harness.link import GsoLink, LinkModel
    one_way = cfg.rtt_ms / 2000.0
    if not (one_way or cfg.loss):
        return None, None
    cls = GsoLink if offload else LinkModel
    loss = 0.0 if cfg.loss_from_restart else cfg.loss      # _lossy() sets it at the restart
    return (cls(cfg.seed, delay=one_way, loss=loss), cls(cfg.seed + 1, delay=one_way, loss=loss))


def _lossy(cfg: StormConfig, *links) -> None:
    """From the restart on, the links drop as configured (``loss_from_restart``)."""
    for link in links:
        if link is not None:
            link.loss = cfg.loss


def offload_note(cfg: StormConfig, mode: str) -> dict:
    """Whether ``mode`` runs with TUN offload, and why (the report's ``offload`` key)."""
    if mode in ("kernel", "target"):
        return {"on": False, "why": "the kernel column's relay moves plain packets between two "
                "TUNs, so the host's listener sees wire segments as the model does"}
    if not cfg.offload:
        return {"on": False, "why": "--no-offload"}
    if cfg.shards > 1:
        return {"on": False, "why": "--shards > 1: the shards' multi-queue TUN is opened without "
                "IFF_VNET_HDR (not wired up yet)"}
    return {"on": True, "why": "IFF_VNET_HDR: the kernel's checksum marks are trusted, a producer's "
            "TSO super-packet is read once and taken as its wire segments (per-MSS rcv_mss, "
            "truesize, delayed ACKs and counters as without offload), the broker's output "
            "goes out as GSO frames; the link model drops per wire segment"}


class ModelSide:
    """The tuntcp endpoint as the broker, driven by _choreography."""

    def __init__(self, ep, broker: Broker, stack):
        self.ep, self.broker, self.stack = ep, broker, stack
        self.saturation = ep.saturation

    @property
    def accepted(self) -> int:
        return len(self.broker.streams)

    def queues(self) -> dict:
        lst = self.broker.listener.listener if self.broker.listener else None
        return lst.queue_lengths() if lst else {"accept": 0, "syn": 0}

    async def restart(self) -> None:
        await self.broker.restart()

    async def relisten(self, nursery) -> None:
        await self.broker.listen(nursery)

    async def server_info(self) -> dict:
        return {k: s.info() for k, s in self.broker.streams.items()}

    def mark_cpu(self) -> None:
        pass                     # the broker app runs in the endpoint's process

    def other_cpu(self) -> dict:
        return {}


async def _choreography(cfg, lab, side, nursery, timeline, show):
    """The storm's phases against either side; returns (server, counters_before, records)."""
    from tuntcp.scenarios.storm_worker import WorkerFleet
    fleet = await WorkerFleet.start(lab, cfg, _srcs(lab, cfg), plan_slices(cfg), nursery)
    # phase 1: producers connect a few at a time, as over a normal day. Each step waits until
    # the broker has accepted it: producers in other processes are not slowed by a busy
    # broker, and a cookie connection whose ACK met a full accept queue would never reach it.
    step, connected = max(1, cfg.backlog // 2), 0
    for first in range(0, cfg.clients, step):
        connected += await fleet.connect(first, first + step)
        while side.accepted < connected:
            await trio.sleep(0.001)
        show(phase="connecting", connected=connected)
    before = await _maybe(side.counters())
    _lossy(cfg, *getattr(side, "links", ()))
    # phase 2: restart; every producer notices and reconnects with its policy
    async with trio.open_nursery() as n:
        n.start_soon(fleet.wait_broken)
        await side.restart()
    await side.relisten(nursery)
    t0 = trio.current_time()
    await _maybe(side.saturation.start())
    done = trio.Event()
    nursery.start_soon(_sample, side, fleet, timeline, t0, done, show)
    side.mark_cpu()
    await fleet.storm(t0)
    done.set()
    saturation = await _maybe(side.saturation.report({"producer processes": max(fleet.cpu_shares),
                                                      **side.other_cpu()}))
    # let the last window updates reach the broker's final state
    await trio.sleep(0.05)
    server = await side.server_info()
    counters = await _maybe(side.counters_delta(before))
    records = await fleet.records()
    return server, counters, records, saturation


async def _maybe(x):
    """A side's answer, awaited when the side is another process (storm_shards.ShardSide)."""
    return await x if hasattr(x, "__await__") else x


def _srcs(lab, cfg) -> list[str]:
    return lab.extra_client_addrs if cfg.hosts > 1 else [lab.client_addr]


def _txqueuelen(cfg) -> int:
    # The ring must hold the whole reconnect burst (every producer's SYN at once) plus the
    # first data of the earliest ones, or the storm measures TUN drops instead of the SYN queue
    # (at 4 per producer the 20k buggy storm dropped 71,514 packets here; at 16, none).
    return max(20000, 16 * cfg.clients)


async def run_mode(cfg: StormConfig, mode: str, outdir: Path, show=None) -> dict:
    """One complete storm (connect, restart, reconnect, produce) under ``mode``."""
    show = show or (lambda **kw: None)
    show(mode=mode, phase="setup")
    raise_fd_limit()
    if mode in ("kernel", "target"):
        return await _run_kernel(cfg, show, mode)
    if cfg.shards > 1:
        from tuntcp.scenarios.storm_shards import run_sharded
        result = await run_sharded(cfg, mode, outdir, show)
        result["offload"] = offload_note(cfg, mode)
        return result
    from tuntcp.host.stack import Stack
    from tuntcp.harness.netns import Lab
    from tuntcp.shell.control import ControlServer, socket_path
    from tuntcp.shell.endpoint import Endpoint, encoder_for
    from tuntcp.shell.relay import StormFront
    from tuntcp.wire.pcap import PcapWriter

    rng = random.Random(cfg.seed)
    profile = _profile_for(cfg, mode)
    kernel_log: list[str] = []

    def log(kind, **fields):
        if kind == "kernel_log":
            kernel_log.append(fields.get("line", ""))
            show(log_line=fields.get("line", ""))

    offload = offload_note(cfg, mode)
    with Lab(txqueuelen=_txqueuelen(cfg), family=cfg.family, vnet_hdr=offload["on"]) as lab:
        if cfg.hosts > 1:
            lab.add_client_addrs(cfg.hosts)
        stack = Stack(profile, addrs={lab.endpoint_ip}, secret=rng.randbytes(16), log=log,
                      encoder=encoder_for(offload["on"]))
        pcap_path = outdir / f"storm-{mode}.pcap"
        pcap = PcapWriter(str(pcap_path)) if cfg.pcap else None
        link_in, link_out = _links(cfg, offload["on"])
        ep = Endpoint(stack, lab.tun_fd, pcap=pcap, link_in=link_in, link_out=link_out,
                      max_batch=cfg.batch, offload=offload["on"])
        ep.saturation.rtt_ms = cfg.rtt_ms
        ep.saturation.tun_stats = lab.tun_stats
        broker = (StormFront(ep, lab, cfg.front, cfg.front_cmd, PORT, cfg.backlog, cfg.rcvbuf,
                             cfg.down_s) if cfg.front else Broker(ep, cfg))
        side = ModelSide(ep, broker, stack)
        side.links = (link_in, link_out)
        side.counters = stack.counters.snapshot
        side.counters_delta = stack.counters.delta
        timeline = {"t": [], "established": [], "accept_queue": [], "syn_queue": []}
        try:
            with trio.fail_after(cfg.duration_s):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ep.run)
                    # `tuntcp ss -lnt --name storm` / `tuntcp nstat --name storm` while it runs
                    await nursery.start(ControlServer(ep, socket_path(cfg.control_name)).serve)
                    await side.broker.listen(nursery)
                    server, counters, records, sat = await _choreography(
                        cfg, lab, side, nursery, timeline, show)
                    nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            raise _too_slow(cfg, mode, ep.saturation.report()) from None
        except BaseExceptionGroup as eg:
            raise _one_error(eg) from None
        finally:
            if pcap:
                pcap.close()
        syn_retrans = count_syn_retransmits(pcap_path) if cfg.pcap else None
        result = summarize(mode, profile.name, profile["model.cookie_wscale_clamp"], records,
                           server, counters, kernel_log, timeline, syn_retrans)
        result["processes"] = len(plan_slices(cfg))
        result["pcap"] = str(pcap_path) if cfg.pcap else None
        result["saturation"] = sat
        result["offload"] = offload
        result["summary"]["broker_replies"] = side.broker.replies
        return result


async def _run_kernel(cfg: StormConfig, show, mode: str = "kernel") -> dict:
    """The same storm against the host kernel's listener in a second lab (storm_kernel.py):
    the built-in kernel broker, or the user's server (``mode="target"``, --target CMD)."""
    from tuntcp.harness import netns
    from tuntcp.harness.netns import Lab
    from tuntcp.scenarios.storm_kernel import KernelSide, Relay, TargetSide, host_label, join_labs
    from tuntcp.shell.saturation import Saturation

    v6 = cfg.family == 6
    # lab B is lab A mirrored: its "client" address is the broker's
    with Lab(txqueuelen=_txqueuelen(cfg), family=cfg.family) as lab, \
            Lab(txqueuelen=_txqueuelen(cfg), family=cfg.family,
                client_addr=netns.ENDPOINT_ADDR6 if v6 else netns.ENDPOINT_ADDR,
                endpoint_addr=netns.CLIENT_ADDR6 if v6 else netns.CLIENT_ADDR,
                sysctls={"net.ipv4.tcp_syncookies": cfg.syncookies}) as lab_b:
        if cfg.hosts > 1:
            lab.add_client_addrs(cfg.hosts)
        join_labs(lab, lab_b, str(netns.EXTRA_CLIENT_NET6 if v6 else netns.EXTRA_CLIENT_NET))
        link_in, link_out = _links(cfg)

        def drops():
            a, b = lab.tun_stats(), lab_b.tun_stats()
            return {"tx_dropped": a.get("tx_dropped", 0) + b.get("tx_dropped", 0),
                    "rx_dropped": a.get("rx_dropped", 0) + b.get("rx_dropped", 0)}
        relay = Relay(lab.tun_fd, lab_b.tun_fd, link_in, link_out,
                      Saturation(rtt_ms=cfg.rtt_ms, tun_stats=drops))
        side = (TargetSide if mode == "target" else KernelSide)(lab_b, cfg)
        side.saturation = relay.saturation
        side.links = (link_in, link_out)
        timeline = {"t": [], "established": [], "accept_queue": [], "syn_queue": []}
        try:
            with trio.fail_after(cfg.duration_s):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(relay.run)
                    await side.start(nursery)
                    server, counters, records, sat = await _choreography(
                        cfg, lab, side, nursery, timeline, show)
                    await side.aclose()
                    nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            raise _too_slow(cfg, mode, relay.saturation.report()) from None
        except BaseExceptionGroup as eg:
            raise _one_error(eg) from None
    sat["relay_write_refused"] = relay.drops
    label = host_label() if mode == "kernel" else f"target `{cfg.target}` on {host_label()}"
    result = summarize(mode, label, True, records, server, counters, [], timeline, None)
    # the kernel does not mark cookie sockets; it counts the cookie ACKs it accepted
    result["summary"]["cookie_connections"] = counters.get(mib.TcpExtSyncookiesRecv, 0)
    result["summary"]["cookie_connections_from"] = mib.TcpExtSyncookiesRecv
    result["processes"] = len(plan_slices(cfg))
    result["pcap"] = None
    result["saturation"] = sat
    result["offload"] = offload_note(cfg, mode)
    return result


def _too_slow(cfg, mode, sat) -> StormError:
    hint = f" ({sat['reason']})" if sat["verdict"] == "cpu-bound" else ""
    return StormError(f"{mode} run did not finish within --duration {cfg.duration_s} s "
                      f"(raise it, or lower --clients / --requests){hint}")


def _one_error(eg: BaseExceptionGroup) -> BaseException:
    """A producer or broker process failed: its one-line StormError, not the nursery's group."""
    from tuntcp.errors import leaves
    return next((e for e in leaves(eg) if isinstance(e, StormError)), eg)


async def _sample(side, fleet, timeline, t0, done, show) -> None:
    while not done.is_set():
        t = trio.current_time() - t0
        q = side.queues()
        est, answered = fleet.progress()
        timeline["t"].append(round(t, 4))
        timeline["established"].append(est)
        timeline["accept_queue"].append(q["accept"])
        if q["syn"] is not None:
            timeline["syn_queue"].append(q["syn"])
        show(phase="storm", t=t, established=est, syn=q["syn"], accept=q["accept"], done=answered)
        await trio.sleep(0.02)


def count_syn_retransmits(pcap_path: Path) -> int:
    """SYNs seen more than once for the same (addr, port, ISN): client SYN retransmissions."""
    from tuntcp.wire.codec import Malformed
    from tuntcp.wire.ipv6 import parse_ip as parse
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


def summarize(mode, profile_name, clamp, records, server, counters, kernel_log, timeline,
              syn_retrans) -> dict:
    """The report of one run from the producers' records (Producer.record(), from this process
    or merged from the workers, in producer order) and the broker's view of each connection."""
    conns, lat_by = [], {"synq": [], "cookie": []}
    for r in records:
        if r["local"] is None or r["connected_at"] is None:
            continue
        addr, port = r["local"]
        s = server.get((addr_int(addr), port))
        if s is None:
            continue
        hs = s.get("path", "synq")
        info = r["info"]
        lat_by.setdefault(hs, []).extend(r["latencies"])
        conns.append({
            "client": addr_port(addr_int(addr), port),
            "handshake": hs,
            "client_snd_wscale": info.get("snd_wscale"),
            "client_rcv_wscale": info.get("rcv_wscale"),
            "server_rcv_wscale": s["rcv_wscale"],
            "window_field": None if s["rcv_wnd"] is None else s["rcv_wnd"] >> s["rcv_wscale"],
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
        "latency_ms_all": percentiles([x for v in lat_by.values() for x in v]),
        "counters": counters,
        "kernel_log": kernel_log,
        "producer_resets": sum(r["resets"] for r in records),
        # the reliability accounting (scenarios/storm_reliability.py): what the producers got
        "producers_recorded": len(records),
        "requests_answered": sum(len(r["latencies"]) for r in records),
        "producer_errors": _error_counts(records),
    }
    return {"mode": mode, "profile": profile_name, "cookie_wscale_clamp": clamp,
            "connections": conns, "summary": summary, "timeline": timeline,
            "latencies": {k: [round(x, 3) for x in v] for k, v in lat_by.items()}}


def _error_counts(records) -> dict:
    """The last socket error each producer met (then retried), counted by kind."""
    out: dict = {}
    for r in records:
        e = r.get("error")
        if e:
            kind = e.split(":", 1)[0]
            out[kind] = out.get(kind, 0) + 1
    return out


def _cookie_part(run: dict) -> str:
    s = run["summary"]
    n = s["cookie_connections"]
    if not n:
        return "no cookie connections (the reconnect burst fit in the SYN queue)"
    p50 = s["latency_ms_by_handshake"].get("cookie", {}).get("p50")
    lat = f"cookie p50 {p50} ms" if p50 is not None else "no cookie connection completed a request"
    return f"{s['wscale_mismatches']} of {n} cookie connections disagree on wscale, {lat}"


def compare(runs: dict) -> dict:
    out = {}
    b, f = runs.get("buggy"), runs.get("fixed")
    k = runs.get("kernel") or runs.get("target")

    def p(run, q, hs="cookie"):
        return run["summary"]["latency_ms_by_handshake"].get(hs, {}).get(q)
    if b and f:
        for q in ("p50", "p99"):
            if p(b, q) and p(f, q):
                out[f"cookie_latency_{q}_ratio"] = round(p(b, q) / p(f, q), 1)
    if k:
        kall = k["summary"]["latency_ms_all"]
        for q in ("p50", "p99"):
            out[f"kernel_latency_{q}_ms"] = kall[q]
            if f and f["summary"]["latency_ms_all"][q] and kall[q]:
                out[f"fixed_to_kernel_{q}_ratio"] = round(f["summary"]["latency_ms_all"][q] / kall[q], 2)
    parts = [f"{m}: {_cookie_part(r)}" for m, r in runs.items() if m in ("buggy", "fixed")]
    if k:
        parts.append(f"{k['profile']}: p50 {k['summary']['latency_ms_all']['p50']} ms over all "
                     f"{k['summary']['connections_made']} connections")
    out["headline"] = "; ".join(parts)
    out["verdicts"] = {m: r.get("saturation", {}).get("verdict") for m, r in runs.items()}
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
    for m, how in (("kernel", KERNEL_HOW), ("target", TARGET_HOW)):
        if m in runs:
            report["kernel_column"] = {"label": runs[m]["profile"], "how": how}
    report = write_all(report, outdir)
    with open(report["artifacts"]["markdown"], "a") as f:
        f.write(saturation_markdown(report))
    return report


KERNEL_HOW = ("The kernel column runs the same producers (same seed, backoff, produce mix) against "
              "a listener on the host kernel's own sockets in a second namespace, with the same "
              "backlog, SO_RCVBUF and tcp_syncookies. Its namespace is joined to the producers' "
              "by two TUNs whose packets this process relays through the same seeded userspace "
              "LinkModel pair as the tuntcp endpoint uses, so the RTT and loss apply alike. The "
              "kernel does not say which connections were cookies, so its latency is over all "
              "connections (latency_ms_all); its counters are the namespace's nstat deltas.")


TARGET_HOW = ("The target column runs the storm's producers against the --target command, started "
              "in a second namespace behind the same relayed userspace LinkModel pair as the "
              "kernel column; the server chooses its own backlog and socket buffers. Accepted "
              "connections, the accept queue, window scales and counters come from that "
              "namespace's kernel (TcpPassiveOpens, /proc/net/tcp, ss -ti, nstat).")


def saturation_markdown(report: dict) -> str:
    """The saturation section of report.md (one column per mode)."""
    runs = report["runs"]
    modes = [m for m in runs if runs[m].get("saturation")]
    if not modes:
        return ""
    heads = [runs[m]["profile"] if m in ("kernel", "target") else m for m in modes]
    out = ["", "## Saturation: model-bound or cpu-bound", "",
           "The endpoint (for the kernel column: the relay) measures whether it handled packets "
           "and timers when they were due; see docs/storm-report.md for the rule.", "",
           "| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(modes)]

    def row(name, get):
        out.append(f"| {name} | " + " | ".join(str(get(runs[m]["saturation"])) for m in modes) + " |")
    row("verdict", lambda s: f"**{s['verdict']}**")
    row("cpu_share (of one core)", lambda s: s["cpu_share"])
    for q in ("p50", "p99", "max"):
        row(f"loop_lag_ms {q}", lambda s, q=q: s["loop_lag_ms"][q])
    row("tun_drops", lambda s: sum(s["tun_drops"].values()))
    row("other processes' CPU share", lambda s: ", ".join(
        f"{k} {v}" for k, v in s.get("other_cpu_share", {}).items()) or "-")
    row("machine busy (all CPUs)", lambda s: s.get("machine_busy"))
    row("CPU µs per packet read", lambda s: s.get("cpu_us_per_packet"))
    row("batch p50 / max", lambda s: f"{s['batch']['p50']} / {s['batch']['max']}")
    out.append("| latency_ms all p50 / p99 | " + " | ".join(
        f"{runs[m]['summary']['latency_ms_all']['p50']} / {runs[m]['summary']['latency_ms_all']['p99']}"
        for m in modes) + " |")
    out.append("")
    out += [f"- {h}: {runs[m]['saturation']['reason']}" for m, h in zip(modes, heads)]
    out += [f"- offload, {h}: {'on' if runs[m]['offload']['on'] else 'off'} ({runs[m]['offload']['why']})"
            for m, h in zip(modes, heads) if runs[m].get("offload")]
    if report.get("kernel_column"):
        out += ["", "### How the kernel column is measured", "", report["kernel_column"]["how"]]
    return "\n".join(out) + "\n"
