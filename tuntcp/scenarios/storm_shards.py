"""``tuntcp storm --shards N``: the modelled broker as N endpoint shards (shell/shards.py).

Each shard runs the storm's ``Broker`` on its queue of the lab's multi-queue TUN; the listener's
queue lengths, flood flag and overflow stamp are shared (listen/shared.py), so the broker still
has one backlog. ``ShardSide`` gives ``storm._choreography`` the same side interface as
``ModelSide``: counters summed over the shards, queue lengths read from the shared memory,
``server_info`` merged, saturation judged per shard (the run is cpu-bound if any shard is).
"""
from __future__ import annotations

import mmap
from pathlib import Path

import trio

from tuntcp.listen.shared import MemShares, mem_size
from tuntcp.scenarios.storm_fleet import PORT, StormConfig, StormError, plan_slices
from tuntcp.shell.shards import RecordLock, ShardError, ShardSet, merge_pcaps, shard_path


# ---- inside a shard -----------------------------------------------------------------------------

async def storm_role(ep, stack, spec, nursery, handlers) -> None:
    from dataclasses import fields

    from tuntcp.scenarios.storm import Broker
    from tuntcp.shell.shards import note_sender
    known = {f.name for f in fields(StormConfig)}
    cfg = StormConfig(**{k: (tuple(v) if k == "modes" else v) for k, v in spec["cfg"].items()
                         if k in known})
    ep.saturation.rtt_ms = cfg.rtt_ms
    broker = Broker(ep, cfg)
    note = note_sender()

    async def announce():
        # the parent's phase 1 waits on the accepted count: tell it when it changes
        last = -1
        while True:
            n = len(broker.streams)
            if n != last:
                note({"accepted": n})
                last = n
            await trio.sleep(0.002)

    async def listen():
        await broker.listen(nursery)

    async def restart():
        await broker.restart()

    async def server_info():
        return [[k[0], k[1], s.info()] for k, s in broker.streams.items()]

    async def sat_start():
        ep.saturation.start()

    async def sat_report():
        return ep.saturation.report()

    handlers.update(listen=listen, restart=restart, server_info=server_info,
                    sat_start=sat_start, sat_report=sat_report)
    await broker.listen(nursery)
    nursery.start_soon(announce)


# ---- the parent's side --------------------------------------------------------------------------

def merge_saturation(parts: list[dict], others: dict, tun: dict) -> dict:
    """One saturation section for N shards: the worst shard's verdict and lag (cpu-bound if any
    shard is, or if the lab's TUN dropped packets), CPU summed, each shard's figures kept."""
    worst = max(parts, key=lambda r: (r["verdict"] == "cpu-bound", r["loop_lag_ms"]["p99"] or 0))
    out = dict(worst)
    cpu = sum(r["cpu_share"] for r in parts)
    pkts = sum(r["packets_in"] for r in parts)
    out["cpu_share"] = round(cpu, 3)
    out["packets_in"] = pkts
    out["cpu_us_per_packet"] = round(cpu * worst["wall_s"] * 1e6 / pkts, 1) if pkts else None
    out["other_cpu_share"] = {k: round(v, 3) for k, v in others.items() if v is not None}
    out["shards"] = [{"cpu_share": r["cpu_share"], "loop_lag_ms": r["loop_lag_ms"],
                      "packets_in": r["packets_in"], "verdict": r["verdict"]} for r in parts]
    drops = {k: sum(r["tun_drops"].get(k, 0) for r in parts) + tun.get(k, 0)
             for k in {*tun, *(k for r in parts for k in r["tun_drops"])}}
    out["tun_drops"] = drops
    if sum(drops.values()) and out["verdict"] != "cpu-bound":
        out["verdict"] = "cpu-bound"
        out["reason"] = f"Not the model's latency: the TUN ring dropped {sum(drops.values())} packets."
    return out


class _Saturation:
    """``side.saturation`` of a sharded broker: async start/report over the shards."""

    def __init__(self, side):
        self.side = side
        self._tun0: dict = {}

    def _tun(self) -> dict:
        s = self.side.lab.tun_stats()
        return {k: s.get(k, 0) for k in ("tx_dropped", "rx_dropped")}

    async def start(self) -> None:
        self._tun0 = self._tun()
        await self.side.shards.call_all("sat_start")

    async def report(self, others: dict | None = None) -> dict:
        parts = await self.side.shards.call_all("sat_report")
        t1 = self._tun()
        return merge_saturation(parts, others or {},
                                {k: t1[k] - self._tun0.get(k, 0) for k in t1})


class ShardSide:
    """The sharded broker, driven by storm._choreography like ModelSide."""

    def __init__(self, lab, shards: ShardSet, mem_fd: int):
        self.lab, self.shards = lab, shards
        self._accepted = [0] * shards.n
        shards.on_note = self._note
        self._shares = MemShares(memoryview(mmap.mmap(mem_fd, mem_size())), RecordLock(mem_fd),
                                 0, shards.n)
        self.saturation = _Saturation(self)

    def _note(self, i: int, msg: dict) -> None:
        if "accepted" in msg:
            self._accepted[i] = msg["accepted"]

    @property
    def accepted(self) -> int:
        return sum(self._accepted)

    def queues(self) -> dict:
        qlen, _, acceptq = self._shares.peek(0, PORT)
        return {"accept": acceptq, "syn": qlen}

    async def restart(self) -> None:
        await self.shards.call_all("restart")
        self._accepted = [0] * self.shards.n

    async def relisten(self, nursery) -> None:
        await self.shards.call_all("listen")

    async def server_info(self) -> dict:
        return {(a, p): info for part in await self.shards.call_all("server_info")
                for a, p, info in part}

    async def counters(self) -> dict:
        return dict(await self.shards.counters())

    async def counters_delta(self, before: dict) -> dict:
        now = await self.shards.counters()
        return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}

    def mark_cpu(self) -> None:
        pass

    def other_cpu(self) -> dict:
        return {}


async def run_sharded(cfg: StormConfig, mode: str, outdir: Path, show) -> dict:
    """One storm mode with the broker in ``cfg.shards`` endpoint processes."""
    import os

    from tuntcp.harness.netns import Lab
    from tuntcp.scenarios import storm as S
    from tuntcp.shell.control import ControlServer, socket_path
    from tuntcp.shell.shards import ShardControl

    profile = S._profile_for(cfg, mode)
    kernel_log: list[str] = []

    def on_log(line):
        kernel_log.append(line)
        show(log_line=line)

    one_way = cfg.rtt_ms / 2000.0
    link = dict(seed=cfg.seed, delay=one_way, loss=cfg.loss) if (one_way or cfg.loss) else None
    pcap_path = outdir / f"storm-{mode}.pcap"
    with Lab(txqueuelen=S._txqueuelen(cfg), family=cfg.family, queues=cfg.shards) as lab:
        if cfg.hosts > 1:
            lab.add_client_addrs(cfg.hosts)
        from dataclasses import asdict
        spec = {"role": "storm", "profile": profile.name,
                "sysctl": [*cfg.sysctl, f"net.ipv4.tcp_syncookies={cfg.syncookies}",
                           "model.cookie_wscale_clamp="
                           f"{'true' if mode == 'fixed' else 'false'}"],
                "secret": os.urandom(16).hex(), "addr": lab.endpoint_ip, "link": link,
                "max_batch": cfg.batch, "cfg": dict(asdict(cfg), modes=list(cfg.modes))}
        shards = ShardSet(lab, spec, on_log=on_log)
        shards.per_shard = {i: {"pcap": shard_path(str(pcap_path), i) if cfg.pcap else None}
                            for i in range(cfg.shards)}
        timeline = {"t": [], "established": [], "accept_queue": [], "syn_queue": []}
        sat = None
        try:
            with trio.fail_after(cfg.duration_s):
                async with trio.open_nursery() as nursery:
                    await shards.start(nursery)
                    side = ShardSide(lab, shards, shards.memfd)
                    await nursery.start(ControlServer(None, socket_path(cfg.control_name),
                                                      handler=ShardControl(shards).handle).serve)
                    server, counters, records, sat = await S._choreography(
                        cfg, lab, side, nursery, timeline, show)
                    nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            raise StormError(f"{mode} run did not finish within --duration {cfg.duration_s} s "
                             "(raise it, or lower --clients / --requests)") from None
        except BaseExceptionGroup as eg:
            from tuntcp.errors import leaves
            err = next((e for e in leaves(eg) if isinstance(e, (StormError, ShardError))), eg)
            raise (StormError(str(err)) if err is not eg else eg) from None
        except ShardError as e:
            raise StormError(str(e)) from None
        finally:
            shards.close()
    if cfg.pcap:
        merge_pcaps([shard_path(str(pcap_path), i) for i in range(cfg.shards)], str(pcap_path))
    syn_retrans = S.count_syn_retransmits(pcap_path) if cfg.pcap else None
    result = S.summarize(mode, profile.name, profile["model.cookie_wscale_clamp"], records,
                         server, counters, kernel_log, timeline, syn_retrans)
    result["processes"] = len(plan_slices(cfg))
    result["shards"] = cfg.shards
    result["pcap"] = str(pcap_path) if cfg.pcap else None
    result["saturation"] = sat
    return result
