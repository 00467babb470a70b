"""Issue 3's externally visible checks with REAL kernel clients in a namespace against the tuntcp
endpoint on the TUN: what the client's TCP_INFO and the endpoint's pcap show, not internals.

Clients connect one at a time and each gets SETTLE seconds (well under the client's 1 s SYN
RTO), so "did not complete" means exactly one SYN was dropped."""
import errno
import os
import socket
import struct

import pytest
import trio

from tuntcp.host.stack import Stack
from tuntcp.harness import clients
from tuntcp.harness.clients import peek_error
from tuntcp.harness.raw import send_raw, spoofed_syn
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.wire import codec
from tuntcp.wire.ipv6 import parse_ip
from fixtures_endpoint import BOTH_FAMILIES
from tuntcp.wire.pcap import PcapWriter
from tuntcp.wire.segment import ACK, SYN

pytestmark = pytest.mark.netns

SETTLE = 0.25
EP = "198.18.1.1"


def start(lab, nursery, profile, knobs=(), pcap=None):
    stack = Stack(get_profile(profile, list(knobs)), addrs={lab.endpoint_ip},
                  secret=os.urandom(16))
    ep = Endpoint(stack, lab.tun_fd, pcap=pcap)
    nursery.start_soon(ep.run)
    return stack, ep


def read_pcap(path):
    """(time, Segment) for every record of a LINKTYPE_RAW pcap written by the endpoint."""
    data = open(path, "rb").read()
    assert struct.unpack_from("<I", data, 20)[0] == 101
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        off += 16
        out.append((sec + usec / 1e6, parse_ip(data[off:off + incl], verify=False)))
        off += incl
    return out


def from_endpoint(pkts, ip=codec.ip_int(EP)):
    return [(t, s) for t, s in pkts if s.saddr == ip]


async def connect(lab, port, *, held=False):
    """One kernel client; (socket, handshake finished?) after at most SETTLE s (finished may
    still mean reset right after). A client that did not finish is closed while still SYN-SENT,
    before its SYN is retransmitted."""
    s = lab.socket_in_ns()
    s.setblocking(False)
    if held:  # the client delays its handshake-completing ACK until it sends data
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    assert s.connect_ex((lab.endpoint_addr, port)) in (0, errno.EINPROGRESS)
    with trio.move_on_after(SETTLE):
        await trio.lowlevel.wait_writable(s)   # SO_ERROR is left for peek_error() to see
        await trio.sleep(0.03)      # let the endpoint take the completing ACK
        return s, True
    state = clients.tcp_info(s)["state"]
    clients.set_linger0(s)
    s.close()
    assert state == "SYN-SENT"
    return None, False


# ---- 1. the worked example: SO_RCVBUF 102400, forced cookies -----------------------------

@BOTH_FAMILIES
@pytest.mark.parametrize("profile,ep_wscale", [
    ("linux-5.4", 7),        # the bug: SYN-ACK says 1, the cookie child uses 7: field 789, window 1578
    ("linux-5.10", 1),       # 909172a14974: both sides use 1: field 50476, window 100952
])
async def test_worked_example_cookie_wscale(lab, nursery, tmp_path, profile, ep_wscale):
    """Over IPv6 (cookie_v6_check) the MSS is 20 bytes smaller (1440 - 12 = 1428), so the
    clamp is 102400 - 1428 = 100972 and the fixed profile's field 100972 >> 1 = 50486; the
    buggy field stays 789 (100972 rounded up to 128, >> 7) with the client's window 1578."""
    clamp = 102400 - (1448 if lab.family == 4 else 1428)      # max(2*mss, rcvbuf - mss)
    field = -(-clamp >> ep_wscale)                            # rounded up to 1 << wscale
    client_wnd = field << 1                                   # the client applies our SYN-ACK's 1
    SIZE = 200_000
    pcap_path = tmp_path / "kafka.pcap"
    stack, ep = start(lab, nursery, profile, ["net.ipv4.tcp_syncookies=2"],
                      pcap=PcapWriter(str(pcap_path)))
    lst = await open_tcp_listener(ep, 9092, 16, rcvbuf=102400)
    infos = []

    async def broker():
        s = await lst.accept()
        infos.append(s.info())
        got = 0
        while got < SIZE:                     # reads promptly: the window stays at its top
            got += len(await s.receive_some(65536))
        await s.send_all(b"ok")               # carries the window of an empty buffer
        infos.append(s.info())
        assert await s.receive_some(1) == b""
        await s.aclose()
    nursery.start_soon(broker)

    def producer():
        s = lab.socket_in_ns()
        s.settimeout(10)
        s.connect((lab.endpoint_addr, 9092))
        s.sendall(b"k" * SIZE)
        assert s.recv(2, socket.MSG_WAITALL) == b"ok"
        info = clients.tcp_info(s)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""
        return info
    with trio.fail_after(20):
        cinfo = await trio.to_thread.run_sync(producer)
        while len(infos) < 2:
            await trio.sleep(0.01)
    assert stack.counters["TcpExtSyncookiesSent"] == 1
    assert stack.counters["TcpExtSyncookiesRecv"] == 1
    assert cinfo["snd_wscale"] == 1                   # what the SYN-ACK announced
    assert infos[0]["rcv_wscale"] == ep_wscale        # what the cookie child uses
    assert infos[0]["window_clamp"] == clamp
    assert cinfo["snd_wnd"] == client_wnd
    pkts = from_endpoint(read_pcap(pcap_path), lab.endpoint_ip)
    (synack,) = [s for _, s in pkts if s.flags & SYN]
    assert synack.options.wscale == 1 and synack.window == 65535
    fields = [s.window for _, s in pkts if not s.flags & SYN]
    (ok,) = [s for _, s in pkts if bytes(s.payload) == b"ok"]
    assert max(fields) == field and ok.window == field


# ---- 2. backlog N admits N+1 ----------------------------------------------------------------

@pytest.mark.parametrize("backlog", [3, 0])
async def test_backlog_n_admits_n_plus_one(lab, nursery, backlog):
    stack, ep = start(lab, nursery, "linux-6.12", ["net.ipv4.tcp_syncookies=0"])
    lst = await open_tcp_listener(ep, 8000, backlog)     # the app never accepts
    with trio.fail_after(10):
        done = [await connect(lab, 8000) for _ in range(backlog + 2)]
    assert [ok for _, ok in done] == [True] * (backlog + 1) + [False]
    q = lst.listener.queue_lengths()
    assert q["accept"] == backlog + 1 and q["syn"] == 0 and q["backlog"] == backlog
    c = stack.counters
    assert (c["TcpExtListenOverflows"], c["TcpExtListenDrops"]) == (1, 1)
    assert c["TcpPassiveOpens"] == backlog + 1 and c["TcpExtTCPReqQFullDrop"] == 0
    for s, _ in done[:-1]:
        assert clients.tcp_info(s)["state"] == "ESTABLISHED" and peek_error(s) == 0


# ---- 3. forced cookies keep exactly what Linux keeps ---------------------------------------

@pytest.mark.parametrize("timestamps", [1, 0])
async def test_forced_cookie_options_follow_client_timestamps(lab, nursery, timestamps):
    lab.sysctl("net.ipv4.tcp_timestamps", timestamps)     # the client's choice
    stack, ep = start(lab, nursery, "linux-6.12", ["net.ipv4.tcp_syncookies=2"])
    lst = await open_tcp_listener(ep, 8001, 16)
    with trio.fail_after(10):
        s, ok = await connect(lab, 8001)
        child = await lst.accept()
    assert ok and stack.counters["TcpExtSyncookiesRecv"] == 1
    c, e = clients.tcp_info(s), child.info()
    assert c["ts"] == e["ts"] == bool(timestamps)
    assert c["sack"] == e["sack"] == bool(timestamps)
    assert c["wscale_ok"] == e["wscale_ok"] == bool(timestamps)
    if timestamps:
        # the client's shift rode in our TSval and came back; ours was recomputed
        assert e["snd_wscale"] == c["rcv_wscale"] > 0
        assert c["snd_wscale"] == e["rcv_wscale"] == 7
    else:
        assert c["snd_wscale"] == c["rcv_wscale"] == 0
        assert e["snd_wscale"] == e["rcv_wscale"] == 0


# ---- 4. SYN-ACK retransmission schedule, from the pcap --------------------------------------

async def test_synack_schedule_for_a_silent_peer(lab, nursery, tmp_path):
    """A spoofed SYN from 198.18.0.99 (assigned nowhere; the namespace does not forward, so no
    RST): SYN-ACKs at 0, 1, 3 s with tcp_synack_retries=2, the request gone at 7 s."""
    lab.sysctl("net.ipv4.conf.all.forwarding", 0)
    pcap_path = tmp_path / "synack.pcap"
    pcap = PcapWriter(str(pcap_path))
    stack, ep = start(lab, nursery, "linux-6.12", ["net.ipv4.tcp_synack_retries=2"], pcap=pcap)
    lst = await open_tcp_listener(ep, 8002, 16)
    send_raw(lab, [spoofed_syn("198.18.0.99", EP, 41000, 8002)], EP)
    with trio.fail_after(12):
        while not stack.counters["TcpInSegs"]:
            await trio.sleep(0.01)
        assert lst.listener.queue_lengths()["syn"] == 1
        await trio.sleep(6.5)
        assert lst.listener.queue_lengths()["syn"] == 1    # still there just before 7 s
        await trio.sleep(0.8)
    assert lst.listener.queue_lengths()["syn"] == 0
    pcap.flush()
    pkts = read_pcap(pcap_path)
    t0 = pkts[0][0]
    assert pkts[0][1].flags == SYN
    synacks = [t - t0 for t, s in from_endpoint(pkts) if s.flags == SYN | ACK]
    assert len(synacks) == 3
    for got, want in zip(synacks, [0, 1, 3]):
        assert abs(got - want) <= 0.15, synacks
    c = stack.counters
    assert c["TcpExtTCPSynRetrans"] == 2 and c["TcpExtTCPTimeouts"] == 3


# ---- 5. tcp_abort_on_overflow as the client sees it ----------------------------------------

@pytest.mark.parametrize("abort", [1, 0])
async def test_abort_on_overflow_seen_by_the_client(lab, nursery, abort):
    """Backlog 1 already holding one child; two clients whose ACKs wait for their first byte.
    (Backlog 0 cannot show this on 6.x: the second concurrent SYN finds the SYN queue full,
    qlen 1 > 0, and is answered with a cookie, whose overflowing ACK is dropped silently -
    the host kernel does the same, see test_parity.)"""
    stack, ep = start(lab, nursery, "linux-6.12",
                      [f"net.ipv4.tcp_abort_on_overflow={abort}"])
    lst = await open_tcp_listener(ep, 8003, 1)          # the app never accepts
    with trio.fail_after(10):
        (a, _), (b, _), (c, _) = [await connect(lab, 8003, held=h) for h in (False, True, True)]
        assert lst.listener.queue_lengths()["syn"] == 2
        b.send(b"b")
        await trio.sleep(0.05)
        c.send(b"c")
        await trio.sleep(0.1)
    q = lst.listener.queue_lengths()
    assert q["accept"] == 2
    assert peek_error(a) == peek_error(b) == 0
    cnt = stack.counters
    assert cnt["TcpExtListenOverflows"] == cnt["TcpExtListenDrops"] == 1
    if abort:
        assert peek_error(c) == errno.ECONNRESET
        assert cnt["TcpExtEmbryonicRsts"] == 1 and q["syn"] == 0
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            c.send(b"more")
    else:
        assert peek_error(c) == 0                      # it just stalls, unaware
        assert cnt["TcpExtEmbryonicRsts"] == 0
        (req,) = q["requests"]
        assert req[1] == c.getsockname()[1] and req[3] is True     # kept, marked acked
        assert clients.tcp_info(c)["unacked"] == 1     # its byte waits for a retransmission


# ---- 6. FreeBSD: 3/2 backlog, RST on overflow, accept filters ------------------------------

async def test_freebsd_backlog_fudge_and_rst(lab, nursery):
    stack, ep = start(lab, nursery, "freebsd-14")
    lst = await open_tcp_listener(ep, 8004, 2)          # the app never accepts
    with trio.fail_after(10):
        done = [await connect(lab, 8004) for _ in range(5)]
        await trio.sleep(0.05)
    assert all(ok for _, ok in done)                    # the syncache answers every SYN
    assert lst.listener.queue_lengths()["qlen"] == 4    # floor(1.5 * 2) + 1
    assert [peek_error(s) for s, _ in done] == [0, 0, 0, 0, errno.ECONNRESET]


async def test_freebsd_httpready_with_curl_and_a_partial_request(lab, nursery):
    stack, ep = start(lab, nursery, "freebsd-14")
    lst = await open_tcp_listener(ep, 8080, 8, accept_filter="httpready")
    seen = []

    async def server():
        while True:
            s = await lst.accept()
            seen.append(s.conn.readable())          # bytes already there at accept()
            req = await s.receive_some(4096)
            seen.append(req)
            await s.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n"
                             b"\r\nok\n")
            await s.aclose()
    nursery.start_soon(server)

    def curl():
        p = lab.run_in_ns(["curl", "-sS", "-m", "5", f"http://{EP}:8080/"],
                          stdout=-1, stderr=-1, text=True)
        return p.communicate(timeout=10)
    with trio.fail_after(15):
        out, err = await trio.to_thread.run_sync(curl)
        assert (out, err) == ("ok\n", "")
        assert seen[0] == len(seen[1]) and seen[1].endswith(b"\r\n\r\n")   # whole header

        s, ok = await connect(lab, 8080)
        s.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        await trio.sleep(0.2)
        q = lst.listener.queue_lengths()
        assert ok and (q["qlen"], q["incqlen"]) == (0, 1) and len(seen) == 2
        s.send(b"\r\n")
        while len(seen) < 4:
            await trio.sleep(0.01)
    assert seen[3] == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert lst.listener.queue_lengths()["incqlen"] == 0


async def test_freebsd_dataready_waits_for_a_byte(lab, nursery):
    stack, ep = start(lab, nursery, "freebsd-14")
    lst = await open_tcp_listener(ep, 8005, 8, accept_filter="dataready")
    with trio.fail_after(10):
        s, ok = await connect(lab, 8005)
        await trio.sleep(0.2)
        q = lst.listener.queue_lengths()
        assert ok and (q["qlen"], q["incqlen"]) == (0, 1)
        s.send(b"x")
        child = await lst.accept()
    assert await child.receive_some(10) == b"x"
    assert lst.listener.queue_lengths()["incqlen"] == 0
