"""Does THIS host's kernel carry the SYN-cookie window-scale fix (909172a14974)?

The roles of the storm are reversed: a KERNEL listener in the lab namespace plays the Kafka
broker (SO_RCVBUF 102400 set before listen(), net.ipv4.tcp_syncookies=2 in the namespace so every
handshake is a cookie), and the tuntcp endpoint is the CLIENT (active open with timestamps and
window scaling, so the cookie can carry our shift in its TSval). The endpoint reads the shift
the kernel announced in its SYN-ACK, sends data, and looks at what the kernel's child socket then
advertises, while `ss -tin` inside the namespace shows the child's own `wscale:<snd>,<rcv>`.

Reference §5: a pre-5.10 kernel (or an unpatched stable) announces wscale 1 in the SYN-ACK but
the cookie child recomputes its receive shift without the SO_RCVBUF clamp (7), so its window
fields are ~1/64 of what the client needs. Verdict "buggy" when the child's rcv wscale differs
from the SYN-ACK's; "fixed" when they agree (and the window fields scaled by the SYN-ACK's shift
cover what the child means).

report.json keys:
  scenario, config            the knobs
  headline                    {verdict: "fixed"|"buggy"|"inconclusive" (no cookie handshake:
                               e.g. --syncookies 1 with an idle listener), kernel: uname -r, synack_wscale,
                               kernel_rcv_wscale_ss, kernel_rcv_wscale_tcpinfo, wscales_equal,
                               max_window_field, window_as_client_reads, window_as_kernel_means}
  evidence                    {synack: {window, wscale, mss, ts, sack} from the pcap,
                               ss_line: the child's `ss -tin` lines, kernel_tcp_info: subset,
                               window_fields: kernel->endpoint window fields after the handshake,
                               endpoint_info: our conn info (snd_wscale, snd_wnd, ...)}
  counters                    {"endpoint": our nstat-named counters,
                               "kernel": the namespace's TcpExt deltas (SyncookiesSent/Recv ...)}
  artifacts                   {pcap, markdown}
"""
from __future__ import annotations

from tuntcp.errors import UserError

from .. import mib

import argparse
import platform
import re
import socket
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from tuntcp.scenarios.cli_common import out_option, scenario_main, time_option
from tuntcp.scenarios.rig import begin, family_of, family_option, url_host
from tuntcp.scenarios.rig import endpoint as rig_endpoint
from tuntcp.scenarios.report import write_report

NEEDS_LAB = True        # tuntcp.cli checks privileges and --out before main()
PORT = 9092


class ReverseCheckError(UserError, ValueError):
    """A user mistake in the reverse check's knobs."""


@dataclass
class Config:
    rcvbuf: int = 102400            # the kernel listener's SO_RCVBUF (Kafka's default)
    nbytes: int = 200_000           # the endpoint sends this much to the kernel child
    profile: str = "linux-6.1"      # the endpoint's own (client) personality
    syncookies: int = 2             # namespace net.ipv4.tcp_syncookies for the kernel listener
    timeout_s: float = 30.0
    family: int = 4                 # the lab's address family (--family; 6: cookie_v6 of the host)
    out: str = "out/reverse_check"
    pcap: bool = True

    def check(self) -> None:
        if not 256 <= self.rcvbuf <= 1 << 30:
            raise ReverseCheckError("--rcvbuf must be 256..2^30 bytes")
        if not 1 <= self.nbytes <= 1 << 30:
            raise ReverseCheckError("--bytes must be 1..2^30")
        if self.syncookies not in (0, 1, 2):
            raise ReverseCheckError("--syncookies must be 0, 1 or 2")
        if self.timeout_s <= 0:
            raise ReverseCheckError("--timeout-s must be > 0")


def read_pcap(path) -> list:
    """(time, Segment) for every record of a LINKTYPE_RAW pcap written by the endpoint (IPv4
    or IPv6 records, by their version nibble)."""
    from tuntcp.wire.codec import Malformed
    from tuntcp.wire.ipv6 import parse_ip as parse
    data = Path(path).read_bytes()
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        off += 16
        try:
            out.append((sec + usec / 1e6, parse(data[off:off + incl], verify=False)))
        except Malformed:
            pass
        off += incl
    return out


WSCALE_RE = re.compile(r"wscale:(\d+),(\d+)")


def parse_ss_wscale(text: str, lport: int, peer: str) -> tuple[int, int, list[str]] | None:
    """From `ss -tin` text, the (snd, rcv) wscale of the socket lport -> peer, and its lines."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        cols = ln.split()
        if len(cols) >= 5 and cols[3].endswith(f":{lport}") and cols[4].startswith(peer + ":"):
            detail = lines[i + 1] if i + 1 < len(lines) else ""
            m = WSCALE_RE.search(detail)
            if m:
                return int(m.group(1)), int(m.group(2)), [ln, detail.strip()]
    return None


async def run(cfg: Config, show=None) -> dict:
    """Build the lab, run the check, write report.json/report.md into cfg.out; returns the report."""
    from tuntcp.profiles import get_profile
    from tuntcp.wire.ipv6 import addr_int

    outdir = begin(cfg)
    show = show or (lambda *a: None)
    pcap_path = outdir / "reverse_check.pcap"
    got: dict = {}

    def too_slow():
        return ReverseCheckError(f"the check did not finish within --timeout-s {cfg.timeout_s} s")

    async with rig_endpoint(get_profile(cfg.profile),
                            lab=dict(sysctls={"net.ipv4.tcp_syncookies": cfg.syncookies}, family=cfg.family),
                            pcap=pcap_path if cfg.pcap else None, kernel=True,
                            timeout=cfg.timeout_s, too_slow=too_slow) as rig:
        await exchange(cfg, rig, kernel_listener(cfg, rig.lab), got, show)
    kdelta = {k: rig.kernel_delta.get(k, 0) for k in
              (mib.TcpExtSyncookiesSent, mib.TcpExtSyncookiesRecv, mib.TcpExtSyncookiesFailed,
               mib.TcpExtTCPReqQFullDoCookies, mib.TcpPassiveOpens, mib.TcpExtListenDrops)}
    report = summarize(cfg, got, kdelta, dict(rig.stack.counters.snapshot()),
                       read_pcap(pcap_path) if cfg.pcap else [], addr_int(rig.lab.client_addr))
    report["artifacts"] = {"pcap": str(pcap_path) if cfg.pcap else None}
    if rig.saturation is not None:
        report["saturation"] = {"check": rig.saturation}
    return write_report(report, outdir, render_markdown)


def kernel_listener(cfg: Config, lab) -> socket.socket:
    ls = lab.socket_in_ns()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.rcvbuf)   # before listen: the clamp
    ls.bind((lab.client_addr, PORT))
    ls.listen(16)
    ls.setblocking(False)
    return ls


async def exchange(cfg: Config, rig, ls, got: dict, show) -> None:
    """The endpoint connects to the kernel listener and sends ``nbytes``; the kernel answers
    "ok" once it has them all. Both ends' views go into ``got``."""
    from tuntcp.harness.clients import tcp_info
    from tuntcp.shell.listener import open_tcp_stream
    lab = rig.lab
    show("connecting to the kernel listener")
    stream = await open_tcp_stream(rig.ep, lab.client_addr, PORT)
    got["endpoint_after_handshake"] = stream.info()
    lsock = trio.socket.from_stdlib_socket(ls)
    child, _ = await lsock.accept()
    show("sending data")

    async def sink():
        n = 0
        while n < cfg.nbytes:
            chunk = await child.recv(65536)
            if not chunk:
                break
            n += len(chunk)
        got["kernel_received"] = n
        await child.send(b"ok")       # carries the window of an empty buffer
    async with trio.open_nursery() as n2:
        n2.start_soon(sink)
        await stream.send_all(b"k" * cfg.nbytes)
    reply = b""
    while len(reply) < 2:
        chunk = await stream.receive_some(2 - len(reply))
        if not chunk:
            break
        reply += chunk
    got["reply"] = reply.decode(errors="replace")
    await trio.sleep(0.05)
    got["endpoint_final"] = stream.info()
    got["kernel_tcp_info"] = tcp_info(child)
    got["ss"] = await trio.to_thread.run_sync(_ss, lab)
    got["endpoint_addr"] = lab.endpoint_addr
    await stream.aclose()
    child.close()


def _ss(lab) -> str:
    p = lab.run_in_ns(["ss", "-tin"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=10)
    return out


def summarize(cfg: Config, got: dict, kdelta: dict, ours: dict, pkts: list, kernel_ip: int) -> dict:
    """The verdict: "fixed" when the child's receive shift (ss and tcp_info) equals the shift
    its cookie SYN-ACK announced, "buggy" otherwise; plus the evidence behind it."""
    from tuntcp.wire.segment import SYN
    ep0 = got["endpoint_after_handshake"]
    kinfo = got["kernel_tcp_info"]
    synack_ws = ep0["snd_wscale"]
    ss = parse_ss_wscale(got["ss"], PORT, url_host(got["endpoint_addr"]))     # ss brackets IPv6
    ss_rcv = ss[1] if ss else None
    from_kernel = [s for _, s in pkts if s.saddr == kernel_ip]
    synacks = [s for s in from_kernel if s.flags & SYN]
    synack = None
    if synacks:
        o = synacks[0].options
        synack = {"window": synacks[0].window, "wscale": o.wscale, "mss": o.mss,
                  "ts": o.ts is not None, "sack": bool(o.sack_ok)}
        if o.wscale is not None and o.wscale != synack_ws:
            raise RuntimeError(f"pcap SYN-ACK wscale {o.wscale} != endpoint snd_wscale {synack_ws}")
    fields = [s.window for s in from_kernel if not s.flags & SYN]
    max_field = max(fields) if fields else None
    tinfo_rcv = kinfo["rcv_wscale"]
    equal = ss_rcv == synack_ws and tinfo_rcv == synack_ws
    cookie = kdelta.get(mib.TcpExtSyncookiesRecv, 0) >= 1
    # without a cookie handshake the cookie path was never exercised: nothing to conclude
    verdict = ("fixed" if equal else "buggy") if cookie else "inconclusive"
    headline = {
        "verdict": verdict,
        "kernel": platform.release(),
        "synack_wscale": synack_ws,
        "kernel_rcv_wscale_ss": ss_rcv,
        "kernel_rcv_wscale_tcpinfo": tinfo_rcv,
        "wscales_equal": equal,
        "cookie_handshake": cookie,
        "max_window_field": max_field,
        "window_as_client_reads": (max_field << synack_ws) if max_field is not None else None,
        "window_as_kernel_means": (max_field << tinfo_rcv) if max_field is not None else None,
        "kernel_rcv_wnd": kinfo.get("rcv_wnd"),
    }
    headline["summary"] = (
        f"{verdict}: kernel {headline['kernel']} announced wscale {synack_ws} in its cookie SYN-ACK; "
        f"its child uses rcv wscale {ss_rcv} (ss) / {tinfo_rcv} (tcp_info); largest window field "
        f"{max_field} -> {headline['window_as_client_reads']} bytes as we read it, "
        f"{headline['window_as_kernel_means']} as the kernel means it")
    epf = got["endpoint_final"]
    return {
        "scenario": "reverse_check",
        "config": asdict(cfg),
        "headline": headline,
        "evidence": {
            "synack": synack,
            "ss_lines": ss[2] if ss else None,
            "ss_raw": got["ss"],
            "kernel_tcp_info": {k: kinfo.get(k) for k in (
                "state", "snd_wscale", "rcv_wscale", "ts", "sack", "wscale_ok", "rcv_wnd",
                "rcv_space", "rcv_ssthresh", "snd_mss", "rcv_mss", "advmss")},
            "window_fields": {"n": len(fields), "min": min(fields) if fields else None,
                              "max": max_field, "last": fields[-1] if fields else None},
            "endpoint_info": {k: epf.get(k) for k in ("snd_wscale", "rcv_wscale", "snd_wnd", "ts",
                                                      "sack", "wscale_ok", "mss", "bytes_acked")},
            "kernel_received": got.get("kernel_received"),
            "reply": got.get("reply"),
        },
        "counters": {"endpoint": ours, "kernel": kdelta},
    }


def render_markdown(r: dict) -> str:
    h, e = r["headline"], r["evidence"]
    out = ["# reverse_check: does this kernel carry 909172a14974?", "",
           f"**Verdict: {h['verdict']}** (kernel `{h['kernel']}`)", "",
           "| evidence | value |", "|---|---|"]
    for k in ("synack_wscale", "kernel_rcv_wscale_ss", "kernel_rcv_wscale_tcpinfo",
              "cookie_handshake", "max_window_field", "window_as_client_reads",
              "window_as_kernel_means", "kernel_rcv_wnd"):
        out.append(f"| {k} | {h[k]} |")
    out += ["", f"SYN-ACK from the pcap: `{e['synack']}`", "", "`ss -tin` of the kernel child:", ""]
    out += [f"    {ln}" for ln in (e["ss_lines"] or ["(not found)"])]
    out += ["", "Kernel counters (namespace): " + ", ".join(f"{k}={v}" for k, v in
                                                          r["counters"]["kernel"].items()), ""]
    out += [h["summary"], ""]
    return "\n".join(out)


# ---- CLI -------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--rcvbuf", type=int, default=d.rcvbuf, help="kernel listener SO_RCVBUF")
    p.add_argument("--bytes", dest="nbytes", type=int, default=d.nbytes, help="bytes to send")
    p.add_argument("--profile", default=d.profile, help="the endpoint's (client) profile")
    p.add_argument("--syncookies", type=int, default=d.syncookies,
                   help="namespace tcp_syncookies (2 forces a cookie handshake)")
    time_option(p, "--timeout-s", old="--timeout", default=d.timeout_s, help="limit for the check")
    family_option(p)
    out_option(p, d.out)
    p.add_argument("--no-pcap", dest="pcap", action="store_false", help="write no pcap")


def main(args) -> int:
    from tuntcp.profiles import get_profile
    cfg = Config(rcvbuf=args.rcvbuf, nbytes=args.nbytes, profile=args.profile,
                 syncookies=args.syncookies, timeout_s=args.timeout_s, family=family_of(args), out=args.out,
                 pcap=args.pcap)

    def summary(report) -> str:
        h = report["headline"]
        lines = [f"{k:28}{h[k]}" for k in (
            "verdict", "kernel", "synack_wscale", "kernel_rcv_wscale_ss",
            "kernel_rcv_wscale_tcpinfo", "cookie_handshake", "max_window_field",
            "window_as_client_reads", "window_as_kernel_means")]
        lines.append(h["summary"])
        if cfg.pcap:
            lines.append(f"pcap: {report['artifacts']['pcap']}   (tshark -r FILE)")
        return "\n".join(lines)

    return scenario_main("reverse-check", cfg, run, check=lambda: get_profile(cfg.profile),
                         summary=summary)
