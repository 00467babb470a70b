"""Clients with TCP timestamps off: SYN-cookie connections lose window scaling and SACK.

Cloudflare keeps net.ipv4.tcp_timestamps=0 (seed 002). A Linux cookie carries the client's
window scale, SACK and ECN only in the TSval of the SYN-ACK (reference §4.4,
``cookie_init_timestamp``); without client timestamps ``tcp_conn_request`` clears them before
answering (§2.5), so a cookie connection runs with unscaled 16-bit windows: at most 65 535
bytes in flight, i.e. ~64 KB per RTT. A connection that went through the request-sock queue
keeps window scaling and SACK (neither needs timestamps) and is not capped.

How connections are put on each path (``force``), always with the clients' namespace at
tcp_timestamps=0 and the same link model (``rtt_ms``: delay rtt/2 each way):
  syncookies2 (default)  two labs, one after the other: "cookie" has the endpoint's profile at
                         tcp_syncookies=2 (every handshake is a cookie), "queue" has
                         tcp_syncookies=1 and an unloaded queue (clients connect one at a time)
  burst                  one lab, tcp_syncookies=1, listen backlog ``clients``: 2 x ``clients``
                         connect at once, the SYN queue overflows and the rest get cookies
                         (the Cloudflare case); each connection is put on the path it took
The endpoint's listener sets SO_RCVBUF ``rcvbuf`` (with the profile's net.core.rmem_max raised
to allow it): our core does not model receive-buffer autotuning (``tcp_rcv_space_adjust``), so
this stands in for the kernel growing the buffer towards tcp_rmem[2]; it is the same for both
paths, and a cookie connection cannot use more than 65 535 bytes of it anyway.
Each client then sends ``nbytes`` to the endpoint (all of a path's clients at once); the
endpoint measures each connection's goodput from its first to its last byte.

report.json keys:
  scenario, config
  headline   {bound_mb_s: 65535/RTT in MB/s, rtt_ms,
              cookie|queue: {connections, wscale, sack, client_wscale_ok, client_sack,
                             mb_s_min, mb_s_median, mb_s_max, ratio_to_bound (median),
                             max_window_bytes}, summary}
  paths      {cookie|queue: {connections: [{client_port, path, mb_s, seconds, bytes,
              client: {ts, sack, wscale_ok, snd_wscale, rcv_wscale, snd_wnd},
              endpoint: {ts, sack, wscale_ok, snd_wscale, rcv_wscale},
              max_window_field, max_window_bytes}], pcap}}
  counters   {cookie: nstat deltas, queue: ...} (force=burst: {burst: ...}, one lab)
  kernel_log {lab: the "Possible SYN flooding" lines the profile would print}
  kernel_reference  (kernel=True) {cookie|queue: {client: {ts, sack, wscale_ok, snd_wscale,
             rcv_wscale}, server: {...}, syncookies_recv}}: a kernel listener and client in one
             namespace with tcp_timestamps=0 (tcp_syncookies 2, then 1); headline.kernel_agrees
  artifacts  {pcap: {path: file}, markdown}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import os
import socket
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from tuntcp.scenarios.cli_common import out_option, scenario_main, time_option
from tuntcp.scenarios.rig import begin, family_of, family_option, file_saturation
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import write_report
from tuntcp.scenarios.reverse_check import read_pcap

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 5001
PATHS = {"cookie": 2, "queue": 1}      # path -> the endpoint profile's tcp_syncookies
FORCES = ("syncookies2", "burst")
# Each client says HELLO and waits for GO before its bulk data. Without it a burst client whose
# cookie ACK was dropped on a full accept queue sends a window of data at once: the first
# segment re-validates the cookie (seq - 1 is the ISN), every later one fails the check
# (SyncookiesFailed) and is answered with a RST, as cookie_v4_check + tcp_v4_do_rcv do. A
# lone 1-byte hello is retransmitted with the same seq until the child fits.
HELLO, GO = b"h", b"g"
MB = 1_000_000


class TsOffError(UserError, ValueError):
    """A user mistake in the ts_off scenario's knobs."""


@dataclass
class Config:
    clients: int = 3                # per path
    nbytes: int = 3_000_000         # each client sends this much
    rtt_ms: float = 50.0
    rcvbuf: int = 1 << 20           # the listener's SO_RCVBUF (see the module docstring)
    force: str = "syncookies2"      # how connections are put on the cookie path (FORCES)
    kernel: bool = True             # also ask the host kernel what it negotiates (no transfer)
    profile: str = "linux-6.1"
    family: int = 4                 # the lab's address family (--family)
    timeout_s: float = 45.0
    out: str = "out/ts_off"
    pcap: bool = True

    def check(self) -> None:
        if not 1 <= self.clients <= 50:
            raise TsOffError("--clients must be 1..50 (per path)")
        if not 100_000 <= self.nbytes <= 1 << 30:
            raise TsOffError("--bytes must be 100000..2^30 (enough for several windows)")
        if not 2 <= self.rtt_ms <= 1000:
            raise TsOffError("--rtt-ms must be 2..1000 (the cap is per RTT; it needs one)")
        if self.force not in FORCES:
            raise TsOffError(f"--force must be one of {', '.join(FORCES)}")
        if not 4096 <= self.rcvbuf <= 1 << 28:
            raise TsOffError("--rcvbuf must be 4096..2^28 bytes")
        if self.timeout_s <= 0:
            raise TsOffError("--timeout-s must be > 0")

    def bound_mb_s(self) -> float:
        """The unscaled-window ceiling: 65535 bytes per RTT."""
        return 65535 / (self.rtt_ms / 1000.0) / MB


async def run_lab(cfg: Config, label: str, syncookies: int, outdir: Path, show, *,
                  burst: bool = False) -> dict:
    """One lab: kernel clients (one at a time, or ``burst``: 2 x clients at once against
    backlog ``clients``) each send ``nbytes``; per connection the path it took and its rate."""
    from tuntcp.harness.clients import tcp_info
    from tuntcp.harness.link import LinkModel
    from tuntcp.profiles import get_profile
    from tuntcp.shell.listener import open_tcp_listener

    base = get_profile(cfg.profile)
    profile = base.with_overrides([f"net.ipv4.tcp_syncookies={syncookies}",
                                   f"net.core.rmem_max={max(cfg.rcvbuf, base['net.core.rmem_max'])}"])
    pcap_path = outdir / f"ts_off-{label}.pcap"
    nclients = 2 * cfg.clients if burst else cfg.clients
    one_way = cfg.rtt_ms / 2000.0
    conns: dict[int, dict] = {}

    def too_slow():
        return TsOffError(f"{label}: transfers did not finish within --timeout-s {cfg.timeout_s} s "
                          "(lower --bytes or raise --timeout-s)")

    async with rig_endpoint(profile, lab=dict(sysctls={"net.ipv4.tcp_timestamps": 0}, family=cfg.family),
                            pcap=pcap_path if cfg.pcap else None,
                            link_in=LinkModel(1, delay=one_way), link_out=LinkModel(2, delay=one_way),
                            timeout=cfg.timeout_s, too_slow=too_slow) as rig:
        lst = await open_tcp_listener(rig.ep, PORT, cfg.clients if burst else 64,
                                      rcvbuf=cfg.rcvbuf)
        rig.nursery.start_soon(accept_and_sink, lst, conns, rig.nursery)
        show(f"{label}: connecting {nclients} clients (timestamps off)")
        socks = await connect_all(rig.lab, nclients, burst)
        show(f"{label}: sending {cfg.nbytes} bytes per client")
        payload = os.urandom(cfg.nbytes)
        async with trio.open_nursery() as n2:
            for s in socks:
                n2.start_soon(_sendall_then_close, s, payload, conns, tcp_info)
        while sum("t_last" in c for c in conns.values()) < nclients:
            await trio.sleep(0.01)
    windows = max_windows(read_pcap(pcap_path), conns) if cfg.pcap else {}
    return {"connections": [connection_row(port, c, windows.get(port))
                            for port, c in sorted(conns.items())],
            "counters": rig.counters, "kernel_log": rig.kernel_log,
            "pcap": str(pcap_path) if cfg.pcap else None, "saturation": rig.saturation}


async def accept_and_sink(lst, conns: dict, nursery) -> None:
    """Accept every client; each says hello, gets "go", sends its bytes and half-closes."""
    async def serve(stream):
        rec = conns.setdefault(stream.conn.rport, {})
        rec["path"] = stream.conn.path
        hello = await stream.receive_some(1)
        if hello != HELLO:
            raise TsOffError(f"client {stream.conn.rport} sent {hello!r}, not hello")
        await stream.send_all(GO)
        n = 0
        while True:
            data = await stream.receive_some(1 << 20)
            if not data:
                break
            if n == 0:
                rec["t_first"] = trio.current_time()
            n += len(data)
        rec["t_last"] = trio.current_time()
        rec["bytes"] = n
        rec["endpoint"] = stream.info()
        await stream.aclose()

    while True:
        nursery.start_soon(serve, await lst.accept())


async def connect_all(lab, nclients: int, burst: bool) -> list:
    """Kernel client sockets, connected all at once (``burst``) or one at a time (an unloaded
    queue)."""
    from tuntcp.harness.clients import connect_clients
    socks = []
    if burst:
        for r in await connect_clients(lab, nclients, PORT, timeout=10):
            if isinstance(r, BaseException):
                raise TsOffError(f"burst: a client failed to connect: {r}")
            socks.append(trio.socket.from_stdlib_socket(r))
        return socks
    for _ in range(nclients):
        s = trio.socket.from_stdlib_socket(lab.socket_in_ns())
        await s.connect((lab.endpoint_addr, PORT))
        socks.append(s)
    return socks


def connection_row(port: int, c: dict, wf: int | None) -> dict:
    e, k = c["endpoint"], c["client"]
    secs = c["t_last"] - c["t_first"]
    return {
        "client_port": port, "path": c["path"], "bytes": c["bytes"], "seconds": round(secs, 4),
        "mb_s": round(c["bytes"] / secs / MB, 3),
        "client": {x: k.get(x) for x in ("ts", "sack", "wscale_ok", "snd_wscale",
                                         "rcv_wscale", "snd_wnd", "total_retrans")},
        "endpoint": {x: e.get(x) for x in ("ts", "sack", "wscale_ok", "snd_wscale",
                                           "rcv_wscale", "window_clamp")},
        "max_window_field": wf,
        "max_window_bytes": (wf << e["rcv_wscale"]) if wf is not None else None,
    }


async def _sendall_then_close(s, payload: bytes, conns: dict, tcp_info) -> None:
    """A bulk client: say hello, wait for "go" (we were accepted), write everything, read
    TCP_INFO, half-close, wait for the server's FIN."""
    await s.send(HELLO)
    if await s.recv(1) != GO:
        raise TsOffError("the endpoint did not answer hello")
    view = memoryview(payload)
    while view:
        view = view[await s.send(view):]
    port = s.getsockname()[1]
    conns.setdefault(port, {})["client"] = tcp_info(s)
    s.shutdown(socket.SHUT_WR)
    while await s.recv(4096):
        pass
    s.close()


def kernel_reference(family: int = 4) -> dict:
    """What the host kernel negotiates in the same situation: a kernel listener and kernel
    clients in one namespace with tcp_timestamps=0; one connection with tcp_syncookies=2
    (a cookie), one with 1 and an idle queue. Options of both ends from TCP_INFO."""
    import socket as so

    from tuntcp.harness.clients import kernel_counters, tcp_info
    from tuntcp.harness.netns import Lab

    out = {}
    with Lab(sysctls={"net.ipv4.tcp_timestamps": 0}, family=family) as lab:
        ls = lab.socket_in_ns()
        ls.bind((lab.client_addr, PORT))
        ls.listen(16)
        ls.settimeout(5)
        for path in PATHS:
            lab.sysctl("net.ipv4.tcp_syncookies", PATHS[path])
            before = kernel_counters(lab)
            c = lab.socket_in_ns()
            c.settimeout(5)
            c.connect((lab.client_addr, PORT))
            child, _ = ls.accept()
            after = kernel_counters(lab)
            ci, si = tcp_info(c), tcp_info(child)
            keys = ("ts", "sack", "wscale_ok", "snd_wscale", "rcv_wscale")
            out[path] = {"client": {k: ci[k] for k in keys}, "server": {k: si[k] for k in keys},
                         "syncookies_recv": after.get(mib.TcpExtSyncookiesRecv, 0)
                         - before.get(mib.TcpExtSyncookiesRecv, 0)}
            c.close()
            child.setsockopt(so.SOL_SOCKET, so.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            child.close()
    return out


def max_windows(pkts: list, conns: dict) -> dict[int, int]:
    """Largest window field the endpoint sent to each client port (after the handshake)."""
    from tuntcp.wire.segment import SYN
    out: dict[int, int] = {}
    for _, s in pkts:
        if s.sport == PORT and s.dport in conns and not s.flags & SYN:
            out[s.dport] = max(out.get(s.dport, 0), s.window)
    return out


def headline_of(cfg: Config, paths: dict) -> dict:
    bound = cfg.bound_mb_s()
    h: dict = {"bound_mb_s": round(bound, 3), "rtt_ms": cfg.rtt_ms, "force": cfg.force}
    for path, r in paths.items():
        cs = r["connections"]
        if not cs:
            h[path] = None
            continue
        rates = [c["mb_s"] for c in cs]
        med = statistics.median(rates)
        h[path] = {
            "connections": len(cs),
            "handshake_paths": sorted({c["path"] for c in cs}),
            "wscale": all(c["endpoint"]["wscale_ok"] for c in cs),
            "sack": all(c["endpoint"]["sack"] for c in cs),
            "client_wscale_ok": all(c["client"]["wscale_ok"] for c in cs),
            "client_sack": all(c["client"]["sack"] for c in cs),
            "agree": all(c["client"]["wscale_ok"] == c["endpoint"]["wscale_ok"] and
                         c["client"]["sack"] == c["endpoint"]["sack"] for c in cs),
            "mb_s_min": min(rates), "mb_s_median": med, "mb_s_max": max(rates),
            "ratio_to_bound": round(med / bound, 2),
            "max_window_bytes": max((c["max_window_bytes"] or 0) for c in cs),
        }
    parts = []
    for path in paths:
        m = h[path]
        if m is None:
            parts.append(f"{path}: no connections took this path")
            continue
        parts.append(f"{path}: wscale {'on' if m['wscale'] else 'off'}, sack "
                     f"{'on' if m['sack'] else 'off'}, {m['mb_s_median']:.2f} MB/s median "
                     f"({m['ratio_to_bound']}x the bound)")
    h["summary"] = (f"timestamps off, RTT {cfg.rtt_ms:g} ms, 64 KB/RTT bound {bound:.2f} MB/s; "
                    + "; ".join(parts))
    return h


async def run(cfg: Config, show=None) -> dict:
    outdir = begin(cfg)
    show = show or (lambda *a: None)
    if cfg.force == "burst":
        r = await run_lab(cfg, "burst", 1, outdir, show, burst=True)
        paths = {p: {"connections": [c for c in r["connections"] if c["path"] == hs],
                     "pcap": r["pcap"]} for p, hs in (("cookie", "cookie"), ("queue", "synq"))}
        counters, kernel_log = {"burst": r["counters"]}, {"burst": r["kernel_log"]}
        labs = {"burst": r}
    else:
        # one path after the other (a lab each): they would otherwise share our one Python thread
        paths = {p: await run_lab(cfg, p, PATHS[p], outdir, show) for p in PATHS}
        counters = {p: r.pop("counters") for p, r in paths.items()}
        kernel_log = {p: r.pop("kernel_log") for p, r in paths.items()}
        labs = paths
    kref = kernel_reference(cfg.family) if cfg.kernel else None
    headline = headline_of(cfg, paths)
    if kref:
        headline["kernel_agrees"] = all(
            headline[p] is not None and
            kref[p]["server"]["wscale_ok"] == headline[p]["wscale"] and
            kref[p]["server"]["sack"] == headline[p]["sack"] and
            kref[p]["client"]["wscale_ok"] == headline[p]["client_wscale_ok"] for p in PATHS)
    report = {"scenario": "ts_off", "config": asdict(cfg), "headline": headline,
              "kernel_reference": kref,
              "paths": paths, "counters": counters, "kernel_log": kernel_log,
              "artifacts": {"pcap": {p: r["pcap"] for p, r in paths.items()}}}
    file_saturation(report, labs)
    return write_report(report, outdir, render_markdown)


def table(report: dict) -> list[str]:
    h = report["headline"]
    rows = [f"{'path':<8}{'conns':>6}{'wscale':>8}{'sack':>6}{'MB/s min':>10}{'median':>8}"
            f"{'max':>8}{'x bound':>9}{'max wnd B':>11}"]
    for path in report["paths"]:
        m = h[path]
        if m is None:
            rows.append(f"{path:<8}{0:>6}  (no connection took this path)")
            continue
        rows.append(f"{path:<8}{m['connections']:>6}{'yes' if m['wscale'] else 'no':>8}"
                    f"{'yes' if m['sack'] else 'no':>6}{m['mb_s_min']:>10.2f}"
                    f"{m['mb_s_median']:>8.2f}{m['mb_s_max']:>8.2f}{m['ratio_to_bound']:>9}"
                    f"{m['max_window_bytes']:>11}")
    rows.append(f"bound: 65535 B per {h['rtt_ms']:g} ms RTT = {h['bound_mb_s']:.2f} MB/s")
    kref = report.get("kernel_reference")
    if kref:
        for path, r in kref.items():
            rows.append(f"host kernel, {path}: server wscale_ok {r['server']['wscale_ok']} sack "
                        f"{r['server']['sack']}, client wscale_ok {r['client']['wscale_ok']} sack "
                        f"{r['client']['sack']} (SyncookiesRecv {r['syncookies_recv']})")
        rows.append(f"tuntcp agrees with the host kernel: {report['headline']['kernel_agrees']}")
    for lab, lines in report["kernel_log"].items():
        rows += [f"{lab} kernel: {ln}" for ln in lines[:1]]
    for path, cnt in report["counters"].items():
        rows.append(f"{path} counters: " + ", ".join(
            f"{k}={cnt.get(k, 0)}" for k in (mib.TcpExtSyncookiesSent, mib.TcpExtSyncookiesRecv,
                                             mib.TcpPassiveOpens, mib.TcpInSegs, mib.TcpOutSegs)))
    return rows


def render_markdown(report: dict) -> str:
    out = ["# ts_off: timestamps off on the clients, cookie vs queue connections", "",
           f"**{report['headline']['summary']}**", "", "```"] + table(report) + ["```", "",
           "| path | client port | handshake | MB/s | client wscale_ok/sack | endpoint wscale_ok/sack | max window field |",
           "|---|---|---|---|---|---|---|"]
    for path, r in report["paths"].items():
        for c in r["connections"]:
            out.append(f"| {path} | {c['client_port']} | {c['path']} | {c['mb_s']} | "
                       f"{c['client']['wscale_ok']}/{c['client']['sack']} | "
                       f"{c['endpoint']['wscale_ok']}/{c['endpoint']['sack']} | {c['max_window_field']} |")
    return "\n".join(out) + "\n"


# ---- CLI -------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--clients", type=int, default=d.clients, help="connections per path")
    p.add_argument("--bytes", dest="nbytes", type=int, default=d.nbytes, help="bytes per client")
    time_option(p, "--rtt-ms", default=d.rtt_ms,
                help="link RTT from the userspace link model (half each way)")
    p.add_argument("--force", choices=FORCES, default=d.force,
                   help="syncookies2: a lab per path; burst: one lab, SYN-queue overflow")
    p.add_argument("--rcvbuf", type=int, default=d.rcvbuf, help="the endpoint listener's SO_RCVBUF")
    p.add_argument("--profile", default=d.profile, help="the endpoint's Linux profile")
    family_option(p)
    time_option(p, "--timeout-s", old="--timeout", default=d.timeout_s,
                help="limit per lab")
    out_option(p, d.out)
    p.add_argument("--no-pcap", dest="pcap", action="store_false", help="write no pcaps")
    p.add_argument("--no-kernel", dest="kernel", action="store_false",
                   help="skip asking the host kernel what it negotiates")


def main(args) -> int:
    from tuntcp.profiles import get_profile
    cfg = Config(clients=args.clients, nbytes=args.nbytes, rtt_ms=args.rtt_ms,
                 rcvbuf=args.rcvbuf, force=args.force, profile=args.profile, family=family_of(args),
                 timeout_s=args.timeout_s, out=args.out, pcap=args.pcap, kernel=args.kernel)

    def check():
        if get_profile(cfg.profile).family != "linux":
            raise TsOffError("ts-off models Linux cookies; pick a linux-* profile")

    return scenario_main("ts-off", cfg, run, check=check,
                         summary=lambda r: "\n".join(table(r)) + "\n" + r["headline"]["summary"])
