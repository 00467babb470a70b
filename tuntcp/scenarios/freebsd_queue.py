"""FreeBSD listen queues, syncache lifetimes and accept filters (seed 003), with real clients.

For each profile (freebsd-9 and freebsd-14, one lab each, side by side) the endpoint listens on
four ports at once:

  overflow   backlog ``backlog``, the application never accepts. ``clients`` kernel clients
             from ``hosts`` source addresses connect in one burst. ``sonewconn`` refuses while
             qlen > 3 * backlog / 2, so floor(1.5 * backlog) + 1 get in and every later one is
             answered with a RST (rst_on_sock_fail=1): "Connection reset" per client.
             ``netstat -Lan`` text is captured while the queue is full.
  lifetime   one spoofed SYN from an address nobody answers for: the syncache entry resends its
             SYN-ACK at rexmit_initial * (1, 2, 4, ...) and is dropped after rexmtlimit resends
             (freebsd-9: 3 s base, 0/3/9/21 s, gone at 45 s; freebsd-14: 1 s base, 0/1/3/7 s,
             gone at 15 s). SYN-ACK times come from the pcap, the drop from the syncache's
             "syncache_expired" event. ``rexmtlimit`` overrides the limit on this listener only
             (setsockopt-style) to keep runs short.
  httpready  accept filter accf_http: a GET/HEAD request is held until its header is complete;
  dataready  accf_data: held until the first data. Three clients each: curl (one GET), an
             "http-split" raw client sending a GET header in two parts ``split_s`` apart, and a
             non-HTTP "line" client sending one line ``line_s`` after connecting. netstat -Lan
             shows the held ones in incqlen.

report.json keys:
  scenario, config
  headline   {freebsd-9|freebsd-14: {backlog, queue_limit, queued, reset, resets_per_source,
              netstat_full, lifetime: {rexmtlimit, rexmit_initial_s, synack_times_s,
              expected_synack_times_s, lifetime_s, expected_lifetime_s},
              filters: {httpready|dataready: {curl|http_split|line: {accept_delay_s,
              bytes_at_accept, whole_request}}}}, summary}
             accept_delay_s: seconds from the raw client's connect() returning (curl: from its
             SYN) to our accept(); whole_request: what was buffered at accept was all it sent
  profiles   per profile: {overflow: {clients: [{source, port, outcome}], netstat_full},
              lifetime: {...}, filters: {...}, netstat_held, netstat_s (syncache stats text),
              kernel_log, counters}
  counters   {profile: nstat/FreeBSD-named counter deltas}
  artifacts  {pcap: {profile: file}, markdown}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import errno
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

from tuntcp.scenarios.cli_common import out_option, scenario_main, sysctl_option, time_option
from tuntcp.scenarios.rig import begin, family_of, family_option, file_saturation, side_by_side, url_host
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import write_report
from tuntcp.scenarios.reverse_check import read_pcap

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PROFILES = ("freebsd-9", "freebsd-14")
P_OVERFLOW, P_LIFETIME, P_HTTP, P_DATA = 7000, 7001, 7080, 7081
# per family: assigned nowhere; the namespace does not forward: nobody answers
SPOOF_SRC = {4: "198.18.0.99", 6: "2001:2::99"}
SPLIT_1 = b"GET /split HTTP/1.1\r\nHost: x\r\n"
SPLIT_2 = b"\r\n"
LINE = b"HELLO tuntcp\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class FreeBSDQueueError(UserError, ValueError):
    """A user mistake in the freebsd_queue scenario's knobs."""


@dataclass
class Config:
    profiles: tuple[str, ...] = PROFILES
    backlog: int = 4
    clients: int = 10               # overflow burst size
    hosts: int = 3                  # source addresses the burst spreads over
    rexmtlimit: int | None = None   # None: the profile's net.inet.tcp.syncache.rexmtlimit (3)
    split_s: float = 0.5
    line_s: float = 0.5
    timeout_s: float = 120.0
    family: int = 4                 # the lab's address family (--family)
    out: str = "out/freebsd_queue"
    pcap: bool = True
    sysctl: list[str] = field(default_factory=list)

    def check(self) -> None:
        if not self.profiles or any(not p.startswith("freebsd-") for p in self.profiles):
            raise FreeBSDQueueError("--profiles takes FreeBSD profiles (freebsd-9, freebsd-14)")
        if not 1 <= self.backlog <= 64:
            raise FreeBSDQueueError("--backlog must be 1..64")
        if not 1 <= self.clients <= 500:
            raise FreeBSDQueueError("--clients must be 1..500")
        if not 1 <= self.hosts <= 100:
            raise FreeBSDQueueError("--hosts must be 1..100")
        if self.rexmtlimit is not None and not 0 <= self.rexmtlimit <= 6:
            raise FreeBSDQueueError("--rexmtlimit must be 0..6")
        if not 0.05 <= self.split_s <= 10 or not 0.05 <= self.line_s <= 10:
            raise FreeBSDQueueError("--split-s and --line-s must be 0.05..10 seconds")
        if self.timeout_s <= 0:
            raise FreeBSDQueueError("--timeout-s must be > 0")


def expected_schedule(rexmit_initial_s: float, limit: int) -> tuple[list[float], float]:
    """``syncache_timeout``: SYN-ACK k at r * (2^k - 1) for k = 0..limit, dropped at
    r * (2^(limit+1) - 1) (backoff 1, 2, 4, ... stays under the 64 s cap for limit <= 5)."""
    r = rexmit_initial_s
    return [r * ((1 << k) - 1) for k in range(limit + 1)], r * ((1 << (limit + 1)) - 1)


async def run_profile(cfg: Config, name: str, outdir: Path, show) -> dict:
    from tuntcp.harness.clients import connect_clients
    from tuntcp.harness.raw import send_raw, spoofed_syn
    from tuntcp.obs.views import netstat_lan
    from tuntcp.listen.freebsd_syncache import syncache_stats
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    profile = get_profile(name, cfg.sysctl)
    limit = profile["net.inet.tcp.syncache.rexmtlimit"] if cfg.rexmtlimit is None else cfg.rexmtlimit
    r0 = profile["net.inet.tcp.rexmit_initial"] / 1000.0
    exp_times, exp_life = expected_schedule(r0, limit)
    pcap_path = outdir / f"{name}.pcap"
    events: list = []

    def log(kind, **f):
        if kind == "syncache_expired":
            events.append((trio.current_time(), f))

    def too_slow():
        return FreeBSDQueueError(f"{name}: did not finish within --timeout-s {cfg.timeout_s} s")

    res: dict = {}
    async with rig_endpoint(profile, lab=dict(family=cfg.family), log=log, pcap=pcap_path if cfg.pcap else None,
                            timeout=cfg.timeout_s, too_slow=too_slow) as rig:
        lab, ep = rig.lab, rig.ep
        lab.sysctl("net.ipv4.conf.all.forwarding", 0)
        srcs = lab.add_client_addrs(cfg.hosts)
        lst_over = await open_tcp_listener(ep, P_OVERFLOW, cfg.backlog)
        await open_tcp_listener(ep, P_LIFETIME, 8, synack_retries=limit)
        filt = {"httpready": await open_tcp_listener(ep, P_HTTP, 8, accept_filter="httpready"),
                "dataready": await open_tcp_listener(ep, P_DATA, 8, accept_filter="dataready")}
        # 1. the lifetime probe first: its clock runs while the rest happens
        t_spoof = trio.current_time()
        send_raw(lab, [spoofed_syn(SPOOF_SRC[cfg.family], lab.endpoint_addr, 41000, P_LIFETIME)],
                 lab.endpoint_addr)
        show(f"{name}: spoofed SYN sent; syncache entry should live {exp_life:g} s")
        # 2. the overflow burst
        res["overflow"] = await _overflow(cfg, lab, srcs, lst_over, connect_clients,
                                          lambda: netstat_lan(rig.stack))
        show(f"{name}: overflow {res['overflow']['queued']} queued, "
             f"{res['overflow']['reset']} reset")
        # 3. the accept filters
        res["filters"], res["netstat_held"] = await _filters(
            cfg, lab, filt, rig.nursery, lambda: netstat_lan(rig.stack))
        show(f"{name}: accept filters done; waiting for the syncache entry to expire")
        while not events:
            await trio.sleep(0.05)
        lifetime_s = round(events[0][0] - t_spoof, 3)
        rig.finish()
        res["counters"] = rig.counters
        res["netstat_s"] = syncache_stats(rig.stack)
    synacks = synack_times(pcap_path, cfg.family) if cfg.pcap else []
    res["lifetime"] = {"rexmtlimit": limit, "rexmit_initial_s": r0, "synack_times_s": synacks,
                       "expected_synack_times_s": exp_times, "lifetime_s": lifetime_s,
                       "expected_lifetime_s": exp_life,
                       "stale": res["counters"].get(mib.FreeBSDSyncacheStale, 0),
                       "retransmitted": res["counters"].get(mib.FreeBSDSyncacheRetransmitted, 0)}
    res["kernel_log"] = rig.kernel_log
    res["pcap"] = str(pcap_path) if cfg.pcap else None
    res["saturation"] = rig.saturation
    return res


def synack_times(pcap_path, family: int = 4) -> list[float]:
    """Seconds from the spoofed SYN to each SYN-ACK the endpoint sent it (from the pcap)."""
    from tuntcp.wire.ipv6 import addr_int
    from tuntcp.wire.segment import ACK, SYN
    spoof = addr_int(SPOOF_SRC[family])
    pkts = read_pcap(pcap_path)
    t_syn = next((t for t, s in pkts if s.saddr == spoof and s.flags == SYN), None)
    return [round(t - t_syn, 3) for t, s in pkts
            if s.daddr == spoof and s.flags & (SYN | ACK) == SYN | ACK and t_syn is not None]


async def _overflow(cfg: Config, lab, srcs, lst, connect_clients, netstat) -> dict:
    from tuntcp.harness.clients import peek_error
    results = await connect_clients(lab, cfg.clients, P_OVERFLOW, sources=srcs, timeout=3.0)
    await trio.sleep(0.3)             # the completing ACKs are in; RSTs have arrived
    clients = []
    for i, r in enumerate(results):
        src = srcs[i % len(srcs)]
        if isinstance(r, BaseException):
            outcome = "reset" if getattr(r, "errno", None) == errno.ECONNRESET else f"error: {r}"
            port = None
        else:
            port = r.getsockname()[1]
            err = peek_error(r)
            outcome = "queued" if err == 0 else \
                "reset" if err == errno.ECONNRESET else f"error {errno.errorcode.get(err, err)}"
        clients.append({"source": src, "port": port, "outcome": outcome})
    per_source: dict = {}
    for c in clients:
        d = per_source.setdefault(c["source"], {"queued": 0, "reset": 0, "other": 0})
        d[c["outcome"] if c["outcome"] in ("queued", "reset") else "other"] += 1
    q = lst.listener.queue_lengths()
    return {"clients": clients, "per_source": per_source,
            "queued": sum(c["outcome"] == "queued" for c in clients),
            "reset": sum(c["outcome"] == "reset" for c in clients),
            "qlen": q["qlen"], "netstat_full": netstat()}


async def _filters(cfg: Config, lab, filt: dict, nursery, netstat) -> tuple[dict, str]:
    """Three clients per filter; returns per filter per client kind the accept facts."""
    out: dict = {f: {} for f in filt}
    raw_ports: dict[int, tuple[str, str, dict]] = {}
    done = trio.Event()
    expected = 3 * len(filt)
    accepted = [0]

    async def server(fname, lst):
        while True:
            s = await lst.accept()
            t = trio.current_time()
            buffered = s.conn.readable()
            who = raw_ports.get(s.conn.rport)
            kind = who[1] if who else "curl"
            rec = out[fname].setdefault(kind, {})
            rec["accepted_t"] = t
            rec["bytes_at_accept"] = buffered
            nursery.start_soon(_answer, s, kind, rec, accepted, expected, done)

    for fname, lst in filt.items():
        nursery.start_soon(server, fname, lst)

    async def raw_client(fname, port, kind):
        raw = lab.socket_in_ns()
        raw.setblocking(False)
        err = raw.connect_ex((lab.endpoint_addr, port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        rec = out[fname].setdefault(kind, {})
        raw_ports[raw.getsockname()[1]] = (fname, kind, rec)
        await trio.lowlevel.wait_writable(raw)
        rec["connected_t"] = trio.current_time()
        if kind == "http_split":
            raw.send(SPLIT_1)
            rec["first_data_t"] = trio.current_time()
            await trio.sleep(cfg.split_s)
            raw.send(SPLIT_2)
            rec["sent"] = len(SPLIT_1) + len(SPLIT_2)
        else:
            await trio.sleep(cfg.line_s)
            rec["first_data_t"] = trio.current_time()
            raw.send(LINE)
            rec["sent"] = len(LINE)
        rec["first_part"] = len(SPLIT_1) if kind == "http_split" else len(LINE)
        s = trio.socket.from_stdlib_socket(raw)
        while await s.recv(4096):
            pass
        s.close()

    async def curl(fname, port):
        t = trio.current_time()
        p = lab.run_in_ns(["curl", "-sS", "-m", "10", f"http://{url_host(lab.endpoint_addr)}:{port}/"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outp, errp = await trio.to_thread.run_sync(p.communicate)
        rec = out[fname].setdefault("curl", {})
        rec["connected_t"] = t
        rec["curl_output"] = outp.strip()
        rec["curl_error"] = errp.strip()

    async with trio.open_nursery() as n:
        for fname, lst in filt.items():
            port = lst.port
            n.start_soon(raw_client, fname, port, "http_split")
            n.start_soon(raw_client, fname, port, "line")
            n.start_soon(curl, fname, port)
        await trio.sleep(min(cfg.split_s, cfg.line_s) / 2)
        held = netstat()                 # the raw clients are connected and still held
        await done.wait()
    for fname, kinds in out.items():
        for kind, rec in kinds.items():
            rec["accept_delay_s"] = round(rec["accepted_t"] - rec["connected_t"], 3)
            if "first_data_t" in rec:
                rec["after_first_data_s"] = round(rec["accepted_t"] - rec["first_data_t"], 3)
            rec["whole_request"] = rec.get("request_len") == rec["bytes_at_accept"] \
                if kind == "curl" else rec["bytes_at_accept"] == rec.get("sent")
            for k in ("accepted_t", "connected_t", "first_data_t"):
                rec.pop(k, None)
    return out, held


async def _answer(stream, kind, rec, accepted, expected, done) -> None:
    """Read what the client sent (curl: its whole request), answer curl, close."""
    buf = b""
    try:
        if kind == "curl":
            while b"\r\n\r\n" not in buf:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                buf += chunk
            rec["request_len"] = len(buf)
            rec["request_head"] = buf.split(b"\r\n", 1)[0].decode(errors="replace")
            await stream.send_all(RESPONSE)
        else:
            want = len(SPLIT_1) + len(SPLIT_2) if kind == "http_split" else len(LINE)
            while len(buf) < want:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                buf += chunk
        await stream.aclose()
    finally:
        accepted[0] += 1
        if accepted[0] >= expected:
            done.set()


def headline_of(cfg: Config, profiles: dict) -> dict:
    h: dict = {}
    parts = []
    for name, r in profiles.items():
        o, lt = r["overflow"], r["lifetime"]
        filters = {f: {k: {x: v.get(x) for x in ("accept_delay_s", "after_first_data_s",
                                                  "bytes_at_accept", "whole_request")}
                       for k, v in kinds.items()} for f, kinds in r["filters"].items()}
        h[name] = {"backlog": cfg.backlog, "queue_limit": 3 * cfg.backlog // 2 + 1,
                   "queued": o["queued"], "reset": o["reset"], "resets_per_source": {
                       s: d["reset"] for s, d in o["per_source"].items()},
                   "netstat_full": o["netstat_full"], "lifetime": lt, "filters": filters}
        parts.append(f"{name}: {o['queued']} queued / {o['reset']} reset at backlog {cfg.backlog}, "
                     f"SYN-ACKs at {lt['synack_times_s']} s, entry gone after {lt['lifetime_s']} s "
                     f"(expected {lt['expected_lifetime_s']:g})")
    h["summary"] = "; ".join(parts)
    return h


async def run(cfg: Config, show=None) -> dict:
    outdir = begin(cfg)
    show = show or (lambda *a: None)
    profiles = await side_by_side(cfg.profiles, lambda name: run_profile(cfg, name, outdir, show))
    conf = asdict(cfg)
    conf["profiles"] = list(cfg.profiles)
    report = {"scenario": "freebsd_queue", "config": conf, "headline": headline_of(cfg, profiles),
              "profiles": profiles, "counters": {p: r["counters"] for p, r in profiles.items()},
              "artifacts": {"pcap": {p: r["pcap"] for p, r in profiles.items()}}}
    file_saturation(report, profiles)
    return write_report(report, outdir, render_markdown)


def table(report: dict) -> list[str]:
    h = report["headline"]
    names = list(report["profiles"])
    w = 34
    rows = [f"{'':{w}}" + "".join(f"{n:>22}" for n in names)]

    def row(label, fn):
        rows.append(f"{label:{w}}" + "".join(f"{str(fn(h[n])):>22}" for n in names))
    row("backlog / queue limit", lambda x: f"{x['backlog']} / {x['queue_limit']}")
    row("burst: queued / reset", lambda x: f"{x['queued']} / {x['reset']}")
    row("rexmtlimit, initial RTO s", lambda x: f"{x['lifetime']['rexmtlimit']}, "
        f"{x['lifetime']['rexmit_initial_s']:g}")
    row("SYN-ACKs at (s)", lambda x: ",".join(f"{t:g}" for t in x["lifetime"]["synack_times_s"]))
    row("  expected", lambda x: ",".join(f"{t:g}" for t in x["lifetime"]["expected_synack_times_s"]))
    row("syncache entry lifetime s", lambda x: x["lifetime"]["lifetime_s"])
    row("  expected", lambda x: f"{x['lifetime']['expected_lifetime_s']:g}")
    for f in ("httpready", "dataready"):
        for k in ("curl", "http_split", "line"):
            row(f"{f} {k}: delay s / bytes", lambda x, f=f, k=k: (
                f"{x['filters'][f][k]['accept_delay_s']} / {x['filters'][f][k]['bytes_at_accept']}"))
    for n in names:
        rows.append(f"--- {n}: netstat -Lan while the burst filled the queue")
        rows += report["profiles"][n]["overflow"]["netstat_full"].rstrip().splitlines()
        rows += [f"{n} kernel: {ln}" for ln in report["profiles"][n]["kernel_log"][:1]]
    return rows


def render_markdown(report: dict) -> str:
    out = ["# freebsd_queue: listen queue, syncache lifetime, accept filters", "",
           f"**{report['headline']['summary']}**", "", "```"] + table(report) + ["```", ""]
    for n, r in report["profiles"].items():
        out += [f"## {n}", "", "netstat -Lan while clients were held by the accept filters:", "",
                "```", r["netstat_held"].rstrip(), "```", "", "netstat -s -p tcp (syncache):", "",
                "```", r["netstat_s"].rstrip(), "```", "", "Resets per source address: "
                + ", ".join(f"{s}: {d['reset']} of {d['queued'] + d['reset'] + d['other']}"
                            for s, d in r["overflow"]["per_source"].items()), ""]
    return "\n".join(out)


# ---- CLI -------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--profiles", default=",".join(d.profiles), help="FreeBSD profiles to run, side by side")
    p.add_argument("--backlog", type=int, default=d.backlog, help="listen backlog of the overflow listener")
    p.add_argument("--clients", type=int, default=d.clients, help="overflow burst size")
    p.add_argument("--hosts", type=int, default=d.hosts, help="source addresses of the burst")
    p.add_argument("--rexmtlimit", type=int, default=None,
                   help="SYN-ACK resends on the lifetime listener (default: the profile's, 3)")
    time_option(p, "--split-s", old="--split", dest="split_s", default=d.split_s,
                help="gap between the two parts of the split GET")
    time_option(p, "--line-s", old="--line", dest="line_s", default=d.line_s,
                help="delay before the non-HTTP client's line")
    time_option(p, "--timeout-s", old="--timeout", default=d.timeout_s, help="limit per profile")
    sysctl_option(p)
    family_option(p)
    out_option(p, d.out)
    p.add_argument("--no-pcap", dest="pcap", action="store_false", help="write no pcaps")


def main(args) -> int:
    from tuntcp.profiles import get_profile
    cfg = Config(profiles=tuple(p.strip() for p in args.profiles.split(",") if p.strip()),
                 backlog=args.backlog, clients=args.clients, hosts=args.hosts,
                 rexmtlimit=args.rexmtlimit, split_s=args.split_s, line_s=args.line_s,
                 timeout_s=args.timeout_s, family=family_of(args), out=args.out, pcap=args.pcap,
                 sysctl=list(args.sysctl))

    def check():
        for p in cfg.profiles:
            get_profile(p, cfg.sysctl)

    return scenario_main("freebsd-queue", cfg, run, check=check,
                         summary=lambda r: "\n".join(table(r)) + "\n" + r["headline"]["summary"])
