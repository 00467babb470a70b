"""`tuntcp ss` / `tuntcp nstat` against the real iproute2 tools for the same situation.

The same sockets are built twice with the same addresses and ports: once with kernel sockets
only, in a namespace of their own (listener 0.0.0.0:9092 backlog 5, addresses on lo), once on the
endpoint with kernel clients from the lab namespace. Each: conn 40001 accepted with 10 unread
bytes, conn 40002 closed by the server first (server side in TIME-WAIT), conn 40003 completed
but never accepted. Then the same ss/nstat command lines run on both, and the outputs are
compared line by line once what differs by nature is masked: numbers where a value is not the
situation's (pids, fds, inodes, socket ids, timers, buffer sizes), the congestion control name
(the host's vs the profile's) and the trailing blanks that pad to the widest tcp_info line.
Rows of the established table are compared as a set: the kernel prints them in hash order.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import trio

from fixtures_endpoint import start_endpoint  # noqa: F401 (fixture)
from tuntcp.obs import commands
from tuntcp.obs.nstat import NstatHistory
from tuntcp.shell.listener import open_tcp_listener

PORT = 9092
SS_CMDS = ["-ltn", "-tan sport = :9092", "-tn sport = :9092", "-tn state time-wait sport = :9092",
           "-n state listening", "-ltnp", "-tanp sport = :9092", "-ltne", "-tnoa sport = :9092",
           "-tnea ( sport = :9092 )", "-tnm sport = :9092", "-tnia sport = :9092",
           "-tn state established dport = :40001", "-tn sport :9092 and not dport = :40003",
           "-s"]
NSTAT_CMDS = ["-az TcpExtListen*", "-azj TcpExtListen*", "-azjp TcpExtListen*", "-az Nomatch*",
              "-azj Nomatch*", "-az"]

KERNEL_SIDE = r"""
import json, socket, subprocess, sys, time
l = socket.socket(); l.bind(("0.0.0.0", 9092)); l.listen(5)
def client(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.1", port)); s.connect(("198.18.1.1", 9092)); return s
a = client(40001); a.send(b"x" * 10); sa, _ = l.accept()
b = client(40002); sb, _ = l.accept(); sb.close(); time.sleep(0.1); b.close()
c = client(40003)
time.sleep(0.3)
out = {}
for cmd in json.loads(sys.argv[1]):
    out["ss " + cmd] = subprocess.run(["ss"] + cmd.split(), capture_output=True, text=True).stdout
for cmd in json.loads(sys.argv[2]):
    out["nstat " + cmd] = subprocess.run(["nstat"] + cmd.split(), capture_output=True, text=True,
                                         env={"NSTAT_HISTORY": sys.argv[3]}).stdout
print(json.dumps(out))
"""


def _kernel_outputs(tmp_path) -> dict:
    ns = f"tuntcp-obs{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for argv in (["ip", "link", "set", "lo", "up"],
                     ["ip", "addr", "add", "198.18.1.1/32", "dev", "lo"],
                     ["ip", "addr", "add", "198.18.0.1/32", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", ns] + argv, check=True)
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", KERNEL_SIDE,
                              json.dumps(SS_CMDS), json.dumps(NSTAT_CMDS),
                              str(tmp_path / "nstat.hist")],
                             capture_output=True, text=True, timeout=60, check=True)
        return json.loads(res.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def _ours(ep, hist) -> dict:
    out = {}
    for cmd in SS_CMDS:
        args = commands_parser("ss").parse_args(cmd.split())
        out["ss " + cmd] = commands.answer(ep, {"cmd": "ss", "query": commands.ss_query(args)}, hist)
    for cmd in NSTAT_CMDS:
        args = commands_parser("nstat").parse_args(cmd.split())
        out["nstat " + cmd] = commands.answer(
            ep, {"cmd": "nstat", "query": commands.nstat_query(args)}, hist)
    return out


def commands_parser(which):
    import argparse
    p = argparse.ArgumentParser(prog=which)
    {"ss": commands.add_ss_arguments, "nstat": commands.add_nstat_arguments}[which](p)
    return p


def _mask(line: str, strip: bool = True) -> str:
    line = re.sub(r" cgroup:\S+", "", line)                # no cgroups here
    line = re.sub(r'\(\("[^"]+",', '(("COMM",', line)       # python3 vs our process name
    line = re.sub(r"sk:[0-9a-f]+", "sk:ID", line)
    line = re.sub(r"\b(bbr|cubic|reno|newreno)\b", "CC", line)
    line = re.sub(r"\d+", "N", line)
    return line.rstrip() if strip else line


# misc/ss.c tcp_stats_print, in order (CC: the congestion control name)
INFO_ORDER = ("ts sack ecn ecnseen fastopen CC wscale rto backoff rtt ato qack mss pmtu rcvmss "
              "advmss cwnd ssthresh bytes_sent bytes_retrans bytes_acked bytes_received segs_out "
              "segs_in data_segs_out data_segs_in send lastsnd lastrcv lastack pacing_rate "
              "delivery_rate delivered delivered_ce app_limited busy rwnd_limited sndbuf_limited "
              "unacked retrans lost sacked dsack_dups fackets reordering reord_seen rcv_rtt "
              "rcv_space rcv_ssthresh notsent minrtt snd_wnd rcv_wnd").split()


def _in_order(keys, order, strict: bool) -> bool:
    """Known keys appear in ``order``'s order; ``strict``: every key is known."""
    idx = [order.index(k) for k in keys if k in order]
    return idx == sorted(idx) and (not strict or len(idx) == len(keys))


def _records(text: str) -> tuple[str, list[str]]:
    """(header, rows): a row with the tab lines that follow it."""
    lines = text.splitlines()
    recs: list[str] = []
    for ln in lines[1:]:
        if ln.startswith("\t") and recs:
            recs[-1] += "\n" + ln
        else:
            recs.append(ln)
    return (lines[0] if lines else ""), recs


async def test_ss_and_nstat_print_what_iproute2_prints(lab, start_endpoint, tmp_path):
    real = await trio.to_thread.run_sync(_kernel_outputs, tmp_path)

    ep = start_endpoint()
    lst = await open_tcp_listener(ep, PORT, 5)
    clients = []
    for port in (40001, 40002, 40003):
        s = lab.socket_in_ns()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("198.18.0.1", port))
        ts = trio.socket.from_stdlib_socket(s)
        await ts.connect((lab.endpoint_addr, PORT))
        clients.append(ts)
        if port == 40001:
            await ts.send(b"x" * 10)
            await lst.accept()                  # accepted, never read
        elif port == 40002:
            await (await lst.accept()).aclose()  # the server closes first: TIME-WAIT here
            await trio.sleep(0.1)
            ts.close()
    await trio.sleep(0.3)
    ours = _ours(ep, NstatHistory())

    for cmd in SS_CMDS:
        key = "ss " + cmd
        if cmd == "-s":
            assert [_mask(x) for x in ours[key].splitlines()] == \
                [_mask(x) for x in real[key].splitlines()], key
            continue
        rh, rrows = _records(real[key])
        oh, orows = _records(ours[key])
        assert _mask(oh) == _mask(rh), key
        if "i" in cmd.split()[0]:
            # tcp_info lines: the same rows, and fields in tcp_stats_print's order
            for rec in orows + rrows:
                if "\n\t " in rec and not rec.startswith("LISTEN"):
                    words = [w for w in rec.split("\n\t ")[1].split() if ":(" not in w]
                    keys = [w.split(":")[0] for w in words]
                    keys = ["CC" if k in ("bbr", "cubic", "reno") else k for k in keys]
                    assert _in_order(keys, INFO_ORDER, strict=rec in orows), (key, rec)
            orows = [r.split("\n\t ")[0] if "\n\t " in r and not r.startswith("LISTEN") else r
                     for r in orows]
            rrows = [r.split("\n\t ")[0] if "\n\t " in r and not r.startswith("LISTEN") else r
                     for r in rrows]
        assert sorted(_mask(r) for r in orows) == sorted(_mask(r) for r in rrows), (
            key, ours[key], real[key])
        if any(r.startswith("LISTEN") for r in rrows):
            assert orows[0].startswith("LISTEN") and rrows[0].startswith("LISTEN")
        if not set("pimoe") & set(cmd.split()[0]):
            # without per-socket extras the widths are the situation's: byte for byte,
            # trailing blanks included (masked ids aside; rows in any order). With extras
            # the header's padding depends on which row comes last (ss never measures the
            # last row's Process field), and the kernel's row order is its hash order.
            o, r = ours[key].splitlines(), real[key].splitlines()
            assert _mask(o[0], False) == _mask(r[0], False), key
            assert sorted(_mask(x, False) for x in o[1:]) == sorted(_mask(x, False) for x in r[1:]), key
    for cmd in NSTAT_CMDS[:-1]:
        key = "nstat " + cmd
        assert ours[key] == real[key], key
    # nstat -az: the names both print come in the same order (Ip, Tcp, TcpExt, IpExt), and
    # every line has nstat's layout
    line = re.compile(r"^(\S+) +(\d+) +(\d+\.\d)$")
    names = {}
    for side, text in (("ours", ours["nstat -az"]), ("real", real["nstat -az"])):
        rows = text.splitlines()
        assert rows[0] == "#kernel"
        for r in rows[1:]:
            m = line.match(r)
            assert m and r == f"{m[1]:<32}{m[2]:<16}{float(m[3]):6.1f}", (side, r)
        names[side] = [r.split()[0] for r in rows[1:]]
    common = set(names["ours"]) & set(names["real"])
    assert len(common) > 40
    assert [n for n in names["ours"] if n in common] == [n for n in names["real"] if n in common]
    assert "TcpCurrEstab" not in names["real"] and "TcpCurrEstab" not in names["ours"]


SYNRECV_CMDS = ["-tn state syn-recv", "-tno state syn-recv", "-tan sport = :9092",
                "-tanp sport = :9092", "-tane sport = :9092"]


async def test_syn_recv_rows_as_iproute2_prints_them(lab):
    """A request sock on both sides: the kernel's, made by a SYN written into the lab's TUN
    (from the endpoint address, which never answers the SYN-ACK), and ours, made by the same
    SYN fed to a Stack. Addresses mirror each other (198.18.0.1 <-> 198.18.1.1): same widths."""
    import os
    from tuntcp.host import SegmentRecorder, Stack
    from tuntcp.profiles import get_profile
    from tuntcp.wire import codec
    from tuntcp.wire.segment import SYN, Segment, TcpOptions
    ksock = lab.socket_in_ns()
    ksock.bind((lab.client_addr, PORT))
    ksock.listen(5)
    syn = Segment(lab.endpoint_ip, lab.client_ip, 40000, PORT, seq=1000, ack=0, flags=SYN,
                  window=65535, options=TcpOptions(mss=1460))
    os.write(lab.tun_fd, codec.build(syn))
    await trio.sleep(0.3)

    def real_ss(cmd):
        return lab.run_in_ns(["ss"] + cmd.split(), stdout=subprocess.PIPE,
                             text=True).communicate(timeout=10)[0]
    real = {c: await trio.to_thread.run_sync(real_ss, c) for c in SYNRECV_CMDS}
    ksock.close()

    st = Stack(get_profile("linux-6.1"), addrs={lab.endpoint_ip}, secret=b"k" * 16,
               encoder=SegmentRecorder())
    st.listen(PORT, 5, addr=lab.endpoint_ip)
    mirror = Segment(lab.client_ip, lab.endpoint_ip, 40000, PORT, seq=1000, ack=0, flags=SYN,
                     window=65535, options=TcpOptions(mss=1460))
    st.receive_segment(mirror, 0.0)
    st.now = 0.3
    for cmd in SYNRECV_CMDS:
        args = commands_parser("ss").parse_args(cmd.split())
        ours = commands.answer(type("E", (), {"stack": st, "io": type("IO", (), {"fd": 7})})(),
                               {"cmd": "ss", "query": commands.ss_query(args)}, None)
        exact = not set("pe") & set(cmd.split()[0])     # pids, fds, ids: their own widths
        o = [_mask(x, not exact) for x in ours.splitlines()]
        r = [_mask(x, not exact) for x in real[cmd].splitlines()]
        assert o[0] == r[0] and sorted(o[1:]) == sorted(r[1:]), (cmd, ours, real[cmd])
        assert any("SYN-RECV" in x or "timer:(on," in x for x in o[1:]) or "state" in cmd
