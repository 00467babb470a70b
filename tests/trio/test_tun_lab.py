"""The shell on a real TUN against real kernel TCP clients in a namespace (marker `netns`)."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import trio

from tuntcp.host.stack import Stack
from tuntcp.harness import netns
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.shell.apps import discard, echo, guarded
from tuntcp.wire.pcap import PcapWriter

pytestmark = pytest.mark.netns


@pytest.fixture
def lab():
    reason = netns.probe()
    if reason is not None:
        pytest.skip(reason)
    with netns.Lab() as lab:
        yield lab


def kernel_echo_client(lab, port, blob):
    """Send and read at the same time: a client that only reads after sending everything
    deadlocks against any echo server once both directions' buffers fill (both windows 0)."""
    s = lab.socket_in_ns()
    s.settimeout(10)
    s.connect((lab.endpoint_addr, port))
    got = bytearray()

    def reader():
        while chunk := s.recv(65536):
            got.extend(chunk)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(blob)
    s.shutdown(socket.SHUT_WR)
    t.join()
    s.close()
    return bytes(got)


async def test_kernel_client_echo_through_the_tun(lab, tmp_path, nursery):
    stack = Stack(get_profile("linux-6.1"), addrs={lab.endpoint_ip}, secret=os.urandom(16))
    pcap_path = tmp_path / "echo.pcap"
    pcap = PcapWriter(str(pcap_path))
    ep = Endpoint(stack, lab.tun_fd, pcap=pcap)
    nursery.start_soon(ep.run)
    lst = await open_tcp_listener(ep, 7, 16)
    nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
    blob = os.urandom(1 << 20)
    with trio.fail_after(20):
        got = await trio.to_thread.run_sync(kernel_echo_client, lab, 7, blob)
    assert got == blob
    assert stack.counters["TcpPassiveOpens"] == 1
    assert ep.stats["rx"] > 0 and ep.stats["tx"] > 0 and ep.stats["tx_drops"] == 0
    pcap.flush()
    # pcap holds both directions: 24-byte global header plus one record per packet
    assert pcap_path.stat().st_size > 24 + 16 * (ep.stats["rx"] + ep.stats["tx"])


async def test_kernel_bulk_send_is_drained_in_batches(lab, nursery):
    stack = Stack(get_profile("linux-6.1"), addrs={lab.endpoint_ip}, secret=os.urandom(16))
    ep = Endpoint(stack, lab.tun_fd)
    nursery.start_soon(ep.run)
    lst = await open_tcp_listener(ep, 9, 16)
    nursery.start_soon(trio.serve_listeners, guarded(discard), [lst])
    n = 16 << 20

    def send():
        s = lab.socket_in_ns()
        s.settimeout(30)
        s.connect((lab.endpoint_addr, 9))
        t0 = time.perf_counter()
        s.sendall(b"\0" * n)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)           # our FIN after the discard app read everything
        dt = time.perf_counter() - t0
        s.close()
        return dt
    with trio.fail_after(60):
        dt = await trio.to_thread.run_sync(send)
    print(f"\n16 MiB kernel->tuntcp in {dt:.2f} s = {n / dt / 1e6:.1f} MB/s; "
          f"{ep.stats['rx']} packets in {ep.stats['batches']} batches, largest {ep.stats['max_batch']}")
    assert ep.stats["rx"] > ep.stats["batches"]   # several packets per wakeup on average


def test_cli_serve_curl_ss_then_ctrl_c_cleans_up(tmp_path):
    reason = netns.probe()
    if reason is not None:
        pytest.skip(reason)
    name = f"t{os.getpid()}"
    pcap = tmp_path / "serve.pcap"
    p = subprocess.Popen([sys.executable, "-m", "tuntcp.cli", "serve", "--app", "http", "--port",
                          "8080", "--name", name, "--pcap", str(pcap), "--profile", "linux-5.4",
                          "--sysctl", "net.core.somaxconn=64"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first.startswith("tuntcp: http on 198.18.1.1:8080 (profile linux-5.4, backlog 64")
        ns = first.split("namespace ")[1].split()[0]
        lines = [p.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == f"try:    ip netns exec {ns} curl http://198.18.1.1:8080/"
        out = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sS", "-m", "5",
                              "http://198.18.1.1:8080/"], capture_output=True, text=True)
        assert out.stdout == "hello from tuntcp (linux-5.4)\n"
        ss = subprocess.run([sys.executable, "-m", "tuntcp.cli", "ss", "-lnt", "--name", name],
                            capture_output=True, text=True)
        assert ss.returncode == 0
        assert ss.stdout.splitlines()[1].split() == ["LISTEN", "0", "64", "0.0.0.0:8080", "0.0.0.0:*"]
        ns_out = subprocess.run([sys.executable, "-m", "tuntcp.cli", "nstat", "-a", "--name", name],
                                capture_output=True, text=True).stdout
        assert any(l.split()[:2] == ["TcpPassiveOpens", "1"] for l in ns_out.splitlines())
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
    assert p.returncode == 130, err      # Ctrl-C: 128 + SIGINT, as every subcommand exits
    assert err.strip() == "tuntcp: stopped"
    assert not os.path.exists(f"/run/tuntcp/{name}.sock")
    assert ns not in netns.list_namespaces()
    assert pcap.stat().st_size > 24
