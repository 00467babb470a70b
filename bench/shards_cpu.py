"""CPU per handshake and per cookie SYN-ACK with the endpoint in 1 or N shards (issue 11).

    PYTHONPATH=. .venv/bin/python bench/shards_cpu.py --rounds 3 --seconds 3

Each round runs, alternating: 1 shard (one endpoint process, the one-process listener state,
``LocalShares``), N shards (N processes on a multi-queue TUN, the listener state in shared
memory, ``MemShares``), and N shards each with its own listener state (``--split``: what
SO_REUSEPORT would give, not the modelled semantics: it separates the price of splitting the
work over processes from the price of sharing the listener), all through ``shard_main``. Workloads:
``ab -c 64`` (handshake + HTTP/1.0 request/response + close) against the http app, then a
``hping3 --flood`` of spoofed SYNs against tcp_syncookies=2 (every SYN answered by a cookie).
CPU is the shard processes' utime+stime (/proc/PID/stat) over the window, divided by the
completed requests (ab) or the cookie SYN-ACKs sent (TcpExtSyncookiesSent summed). The kernel's
ab rate is measured in the same lab against the bench's kernel http server. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import trio

from tuntcp.bench.workloads import SPOOF_TO_TUNTCP, KernelServer, _ab_parse, run_client
from tuntcp.harness import netns
from tuntcp.shell.shards import ShardSet

TICK = os.sysconf("SC_CLK_TCK")
PORT = 8080


def _cpu(pids) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        total += int(v[11]) + int(v[12])
    return total / TICK


def _ab(addr, seconds):
    return ["ab", "-q", "-r", "-s", "10", "-t", str(seconds), "-n", "1000000", "-c", "64",
            f"http://{addr}:{PORT}/"]


async def one(n: int, seconds: int, workload: str, local: bool) -> dict:
    with netns.Lab(queues=n) as lab:
        sysctl = ["net.ipv4.tcp_syncookies=2"] if workload == "cookies" else []
        spec = {"role": "serve", "profile": "linux-6.1", "sysctl": sysctl,
                "secret": os.urandom(16).hex(), "addr": lab.endpoint_ip, "port": PORT,
                "backlog": 4096, "app": "http" if workload == "ab" else "discard", "link": None,
                "local_shares": local}
        shards = ShardSet(lab, spec)
        try:
            async with trio.open_nursery() as nursery:
                await shards.start(nursery)
                pids = [p.pid for p in shards.procs]
                if workload == "ab":
                    c0, t0 = _cpu(pids), time.monotonic()
                    rc, out, err = await run_client(lab, _ab(lab.endpoint_addr, seconds), 120)
                    c1, t1 = _cpu(pids), time.monotonic()
                    r = _ab_parse(rc, out, err)
                    r["cpu_us_per_handshake"] = (c1 - c0) * 1e6 / r["complete"]
                else:
                    p = lab.run_in_ns(["timeout", "-s", "INT", str(seconds + 1.5), "hping3", "-q",
                                       "-S", "--flood", "-a", SPOOF_TO_TUNTCP, "-p", str(PORT),
                                       lab.endpoint_addr],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    await trio.sleep(0.5)
                    k0 = (await shards.counters())["TcpExtSyncookiesSent"]
                    c0, t0 = _cpu(pids), time.monotonic()
                    await trio.sleep(seconds)
                    k1 = (await shards.counters())["TcpExtSyncookiesSent"]
                    c1, t1 = _cpu(pids), time.monotonic()
                    p.wait()
                    r = {"cookie_synacks_per_s": (k1 - k0) / (t1 - t0),
                         "cpu_us_per_cookie": (c1 - c0) * 1e6 / max(1, k1 - k0)}
                r["shard_cpu_share"] = (c1 - c0) / (t1 - t0)
                nursery.cancel_scope.cancel()
        finally:
            shards.close()
    return r


async def kernel(seconds: int) -> float:
    with netns.Lab() as lab:
        srv = KernelServer(lab, "http", PORT)
        try:
            await srv.ready()
            rc, out, err = await run_client(lab, _ab(lab.client_addr, seconds), 120)
        finally:
            srv.kill()
    return _ab_parse(rc, out, err)["handshakes_per_s"]


async def main(args):
    rows = {}
    for r in range(args.rounds):
        confs = [(1, True), (args.shards, False)] + ([(args.shards, True)] if args.split else [])
        for n, local in confs:
            for w in ("ab", "cookies"):
                res = await one(n, args.seconds, w, local)
                res.update(round=r, shards=n, local=local, workload=w, load=os.getloadavg()[0])
                print(json.dumps(res), flush=True)
                rows.setdefault((n, local, w), []).append(res)
        k = await kernel(args.seconds)
        print(json.dumps({"round": r, "kernel_handshakes_per_s": k,
                          "load": os.getloadavg()[0]}), flush=True)
        rows.setdefault("kernel", []).append(k)
    med = statistics.median
    n = args.shards
    out = {"kernel_ab_per_s": med(rows["kernel"])}
    names = {(1, True): "1", (n, False): f"{n}", (n, True): f"{n}split"}
    for key, s in names.items():
        if (*key, "ab") not in rows:
            continue
        out[f"{s}_ab_per_s"] = med(x["handshakes_per_s"] for x in rows[(*key, "ab")])
        out[f"{s}_us_per_handshake"] = med(x["cpu_us_per_handshake"] for x in rows[(*key, "ab")])
        out[f"{s}_us_per_cookie"] = med(x["cpu_us_per_cookie"] for x in rows[(*key, "cookies")])
        out[f"{s}_cookies_per_s"] = med(x["cookie_synacks_per_s"] for x in rows[(*key, "cookies")])
        out[f"{s}_ab_vs_kernel"] = out[f"{s}_ab_per_s"] / out["kernel_ab_per_s"]
        out[f"{s}_handshake_cpu_ratio"] = out[f"{s}_us_per_handshake"] / out["1_us_per_handshake"]
        out[f"{s}_cookie_cpu_ratio"] = out[f"{s}_us_per_cookie"] / out["1_us_per_cookie"]
    print(json.dumps({"medians": out}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--split", action="store_true",
                    help="also N shards with separate listener state (to separate the costs)")
    trio.run(main, ap.parse_args())
