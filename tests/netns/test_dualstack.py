"""A dual-stack ``::`` listener against real kernel clients of both families in one lab (the TUN
carries 198.18.0.1 and 2001:2::1): the IPv4 client connects over the IPv4 wire and is accepted
as ::ffff:198.18.0.1, with the IPv4 MSS (and, under cookies, the IPv4 cookie path); the IPv6
client as itself. With IPV6_V6ONLY the IPv4 client is refused by the RST Linux sends."""
import socket

import pytest
import trio

from fixtures_endpoint import SECRET, recv_all, sock_send_all
from tuntcp import mib
from tuntcp.harness import netns
from tuntcp.harness.clients import tcp_info
from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener

PORT = 8080


@pytest.fixture
def dual_lab(netns_available):
    with netns.Lab(family=6, dual=True) as lab:
        yield lab


def start(lab, nursery, knobs=()) -> Endpoint:
    stack = Stack(get_profile("linux-6.18", list(knobs)), addrs=lab.endpoint_ips, secret=SECRET)
    ep = Endpoint(stack, lab.tun_fd)
    nursery.start_soon(ep.run)
    return ep


async def client(lab, af, addr):
    s = trio.socket.from_stdlib_socket(lab.socket_in_ns(af))
    with trio.fail_after(10):
        await s.connect((addr, PORT))
    return s


async def test_ipv4_and_ipv6_kernel_clients_on_one_dual_listener(dual_lab, nursery):
    lab = dual_lab
    ep = start(lab, nursery)
    lst = await open_tcp_listener(ep, PORT, 16, family=6)
    c4 = await client(lab, socket.AF_INET, lab.endpoint_addr4)
    c6 = await client(lab, socket.AF_INET6, lab.endpoint_addr)
    with trio.fail_after(10):
        s4, s6 = await lst.accept(), await lst.accept()
    assert s4.peer_address == (f"::ffff:{lab.client_addr4}", c4.getsockname()[1])
    assert s6.peer_address == (lab.client_addr, c6.getsockname()[1])
    # the IPv4 connection runs on the IPv4 wire: MSS 1460 (mtu - 40) less the TS option
    assert tcp_info(c4._sock)["snd_mss"] == 1448 and tcp_info(c6._sock)["snd_mss"] == 1428
    for c, s, tag in ((c4, s4, b"v4"), (c6, s6, b"v6")):
        blob = tag * 50000
        await sock_send_all(c, blob)
        c.shutdown(socket.SHUT_WR)
        got = bytearray()
        with trio.fail_after(20):
            while len(got) < len(blob):
                got += await s.receive_some()
            await s.send_all(bytes(got[::-1]))
            await s.aclose()
            assert await recv_all(c) == blob[::-1]
        c.close()
    c = ep.stack.counters
    assert c[mib.TcpPassiveOpens] == 2 and c[mib.Ip6InReceives] > 0 and c[mib.IpInReceives] > 0


async def test_ipv4_client_of_a_dual_listener_under_cookies(dual_lab, nursery):
    lab = dual_lab
    ep = start(lab, nursery, ["net.ipv4.tcp_syncookies=2"])
    lst = await open_tcp_listener(ep, PORT, 16, family=6)
    c4 = await client(lab, socket.AF_INET, lab.endpoint_addr4)
    with trio.fail_after(10):
        s4 = await lst.accept()
    assert s4.conn.key[0] == lab.endpoint_ip4                # an IPv4 connection underneath
    assert ep.stack.counters[mib.TcpExtSyncookiesRecv] == 1
    assert tcp_info(c4._sock)["snd_mss"] == 1448          # cookie_v4's MSS table has 1460
    c4.close()


async def test_v6only_dual_listener_refuses_the_ipv4_client(dual_lab, nursery):
    lab = dual_lab
    ep = start(lab, nursery)
    lst = await open_tcp_listener(ep, PORT, 16, family=6, v6only=True)
    with pytest.raises(ConnectionRefusedError):
        await client(lab, socket.AF_INET, lab.endpoint_addr4)
    assert ep.stack.counters[mib.TcpOutRsts] == 1
    c6 = await client(lab, socket.AF_INET6, lab.endpoint_addr)
    with trio.fail_after(10):
        s6 = await lst.accept()
    assert s6.peer_address[0] == lab.client_addr
    c6.close()


@pytest.mark.parametrize("name,backlog,steps,sysctls", [
    ("cookies on overflow", 2, [("syn_flood", 3), ("connect", 4), ("accept", None)],
     {"net.ipv4.tcp_syncookies": 1}),
    ("forced cookies", 1, [("connect", 3), ("accept", 1), ("connect", 1), ("accept", None)],
     {"net.ipv4.tcp_syncookies": 2}),
])
async def test_dual_listener_parity_with_the_kernel(name, backlog, steps, sysctls, netns_available):
    """The same IPv4 clients against the host kernel's own AF_INET6 listener on :: and against
    ours: who connects, who gets a cookie, who is accepted, the options, the counters agree."""
    from tuntcp.scenarios.parity import DUAL, Scenario, closest_profile, compare, run_parity
    with trio.fail_after(30):
        kernel, ours = await run_parity(Scenario(f"dual: {name}", backlog, steps, sysctls, family=DUAL))
    diffs = compare(kernel, ours)
    assert diffs == [], f"tuntcp ({closest_profile()}) differs:\n" + "\n".join(diffs) + "\n" + kernel.table() \
        + "\n" + ours.table()
    assert any(c.cookie for c in kernel.clients) and any(c.accepted for c in kernel.clients)


def test_serve_family_dual_answers_both_families(netns_available, tmp_path):
    """`tuntcp serve --family dual`: curl over IPv4 and over IPv6 in the printed namespace."""
    import os
    import re
    import subprocess
    import sys
    import time
    from tuntcp.harness.netns import ip_command
    p = subprocess.Popen([sys.executable, "-m", "tuntcp.cli", "serve", "--family", "dual", "--app", "http",
                          "--port", "8080", "--duration-s", "8", "--name", f"dual-{os.getpid()}"],
                         stdout=subprocess.PIPE, text=True)   # the environment's tuntcp (rootless too)
    try:
        line = p.stdout.readline()
        ns = re.search(r"namespace (\S+)", line).group(1)
        time.sleep(0.3)
        for url in ("http://198.18.1.1:8080/", "http://[2001:2:0:1::1]:8080/"):
            r = subprocess.run([ip_command(), "netns", "exec", ns, "curl", "-sS", "-m", "5", url],
                               capture_output=True, text=True, timeout=10)
            assert r.stdout.startswith("hello from tuntcp"), (url, r.stderr)
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert p.returncode in (0, 143)
