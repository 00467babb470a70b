"""The harness itself: a lab's namespace and TUN come and go cleanly, kernel clients' packets come
out of the TUN fd, our packets go in, sysctls stay inside, TCP_INFO decodes real sockets."""
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from pyroute2 import IPRoute
from scapy.layers.inet import IP, TCP

from tuntcp.harness import clients, netns
from tuntcp.harness.netns import Lab, LabError

pytestmark = pytest.mark.netns


def root_has_link(name):
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def read_packet(fd, timeout=2.0):
    r, _, _ = select.select([fd], [], [], timeout)
    assert r, "nothing came out of the TUN"
    return os.read(fd, 65536)


def start_connect(lab, port, **kw):
    s = lab.socket_in_ns()
    s.setblocking(False)
    for name, value in kw.items():
        s.setsockopt(socket.SOL_SOCKET, name, value)
    assert s.connect_ex((lab.endpoint_addr, port)) == 115  # EINPROGRESS
    return s


def test_lab_lives_in_its_own_namespace_and_leaves_nothing(netns_available):
    lab = Lab()
    try:
        assert lab.ns_name in netns.list_namespaces()
        assert lab.ns_name.startswith(f"tuntcp-{os.getpid()}-")
        assert not root_has_link(lab.tun_name)  # moved out of the root namespace
        assert lab.endpoint_addr == "198.18.1.1" and lab.endpoint_ip == 0xC6120101
        assert lab.client_addr == "198.18.0.1" and lab.client_ip == 0xC6120001
        assert os.get_blocking(lab.tun_fd) is False
        link = lab._ipr.get_links(lab.tun_index)[0]
        assert link.get_attr("IFLA_MTU") == 1500
        assert link.get_attr("IFLA_TXQLEN") == 20000
        assert link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
    finally:
        lab.close()
    assert lab.ns_name not in netns.list_namespaces()
    assert not root_has_link(lab.tun_name)
    lab.close()  # idempotent
    with pytest.raises(LabError):
        lab.socket_in_ns()


def test_kernel_client_syn_comes_out_of_the_tun(lab):
    sock = start_connect(lab, 8080)
    pkt = IP(read_packet(lab.tun_fd))
    assert pkt.src == "198.18.0.1" and pkt.dst == "198.18.1.1"
    assert pkt[TCP].dport == 8080 and pkt[TCP].flags == "S"
    opts = dict(pkt[TCP].options)
    assert opts["MSS"] == 1460  # MTU 1500 - 40
    assert "SAckOK" in opts and "Timestamp" in opts and "WScale" in opts
    sock.close()


def test_mtu_is_configurable(netns_available):
    with Lab(mtu=1280) as lab:
        start_connect(lab, 80)
        assert dict(IP(read_packet(lab.tun_fd))[TCP].options)["MSS"] == 1240


def test_packets_written_to_the_fd_reach_the_kernel_client(lab):
    """RST+ACK in answer to the SYN: the client's connect must fail with ECONNREFUSED."""
    sock = start_connect(lab, 9)
    syn = IP(read_packet(lab.tun_fd))
    rst = IP(src=syn.dst, dst=syn.src) / TCP(sport=syn[TCP].dport, dport=syn[TCP].sport,
                                             seq=0, ack=syn[TCP].seq + 1, flags="RA", window=0)
    os.write(lab.tun_fd, bytes(rst))
    _, w, _ = select.select([], [sock], [], 2.0)
    assert w
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 111  # ECONNREFUSED
    stats = lab.tun_stats()
    assert stats["tx_packets"] >= 1 and stats["rx_packets"] == 1


def test_sysctl_changes_stay_inside_the_namespace(lab):
    path = "/proc/sys/net/ipv4/tcp_syn_retries"
    host_before = open(path).read()
    new = "2" if host_before.strip() != "2" else "3"
    assert lab.sysctl("net.ipv4.tcp_syn_retries", int(new)) == new
    assert lab.sysctl("net.ipv4.tcp_syn_retries") == new
    assert open(path).read() == host_before
    lab.sysctl("net.ipv4.ip_local_port_range", (20000, 20010))
    assert lab.sysctl("net.ipv4.ip_local_port_range").split() == ["20000", "20010"]
    assert open("/proc/sys/net/ipv4/ip_local_port_range").read().split() != ["20000", "20010"]
    # IPv6 is off inside (no RS/MLD noise on the TUN), whatever the host has.
    assert lab.sysctl(f"net.ipv6.conf.{lab.tun_name}.disable_ipv6") == "1"


def test_global_sysctls_are_refused(lab):
    with pytest.raises(LabError, match="per-namespace"):
        lab.sysctl("net.core.rmem_max", 1 << 20)
    with pytest.raises(LabError, match="not a network sysctl"):
        lab.sysctl("kernel.pid_max")
    with pytest.raises(LabError, match="no sysctl net.ipv4.tcp_synretries"):
        lab.sysctl("net.ipv4.tcp_synretries")
    with pytest.raises(LabError, match="refused"):
        lab.sysctl("net.ipv4.tcp_syn_retries", "many")


def test_lab_removed_and_children_killed_on_exception(netns_available):
    with pytest.raises(RuntimeError, match="boom"):
        with Lab() as lab:
            child = lab.run_in_ns(["sleep", "60"])
            name = lab.ns_name
            raise RuntimeError("boom")
    assert name not in netns.list_namespaces()
    assert child.poll() is not None


def test_run_in_ns_sees_the_namespace(lab):
    out = lab.run_in_ns(["ip", "-o", "-4", "addr", "show"], stdout=subprocess.PIPE,
                        text=True).communicate(timeout=5)[0]
    assert "198.18.0.1/32" in out and lab.tun_name in out


def test_extra_client_addresses_can_connect(lab):
    addrs = lab.add_client_addrs(3)
    assert addrs == ["198.19.0.1", "198.19.0.2", "198.19.0.3"]
    assert lab.add_client_addrs(65531)[-1] == "198.19.255.254"
    with pytest.raises(LabError):
        lab.add_client_addrs(1)
    s = lab.socket_in_ns()
    s.setblocking(False)
    s.bind(("198.19.200.3", 0))
    s.connect_ex((lab.endpoint_addr, 80))
    syn = IP(read_packet(lab.tun_fd))
    assert syn.src == "198.19.200.3"
    # ...and what we send to that address reaches the socket.
    rst = IP(src=syn.dst, dst=syn.src) / TCP(sport=80, dport=syn[TCP].sport,
                                             ack=syn[TCP].seq + 1, flags="RA")
    os.write(lab.tun_fd, bytes(rst))
    select.select([], [s], [], 2.0)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 111  # ECONNREFUSED


CHILD = textwrap.dedent("""
    import signal, sys, time
    from tuntcp.harness.netns import Lab
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    if sys.argv[1] == "trio":
        import trio
        async def main():
            with Lab() as lab:
                lab.run_in_ns(["sleep", "60"])
                print(lab.ns_name, lab.tun_name, lab._children[0].pid, flush=True)
                await trio.sleep(60)
        trio.run(main)
    else:
        with Lab() as lab:
            lab.run_in_ns(["sleep", "60"])
            print(lab.ns_name, lab.tun_name, lab._children[0].pid, flush=True)
            if sys.argv[1] == "kill9":
                import os; os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)
""")


def spawn_lab_child(mode):
    p = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert len(line) == 3, p.stderr.read()
    return p, line[0], line[1], int(line[2])


def pid_gone(pid, timeout=3.0):
    """Dead: no such process, or a zombie (an orphan waits for a slow reaper; it runs no more)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("mode,sig", [("sync", signal.SIGTERM), ("sync", signal.SIGINT),
                                      ("trio", signal.SIGTERM), ("trio", signal.SIGINT)])
def test_signal_unwinds_and_cleans_up(netns_available, mode, sig):
    p, ns, tun, grandchild = spawn_lab_child(mode)
    assert ns in netns.list_namespaces()
    p.send_signal(sig)
    p.wait(timeout=10)
    assert p.returncode != 0  # the signal was not swallowed
    assert "KeyboardInterrupt" in p.stderr.read()
    assert ns not in netns.list_namespaces()
    assert not root_has_link(tun)
    assert pid_gone(grandchild)


def test_sweep_stale_removes_namespaces_of_dead_runs(netns_available):
    p, ns, tun, grandchild = spawn_lab_child("kill9")
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    assert ns in netns.list_namespaces()  # SIGKILL leaves the namespace behind...
    assert not root_has_link(tun)  # ...but the TUN died with its fd
    with Lab() as mine:
        removed = netns.sweep_stale()
        assert ns in removed
        assert mine.ns_name not in removed and mine.ns_name in netns.list_namespaces()
    assert ns not in netns.list_namespaces()
    assert pid_gone(grandchild)  # the orphaned tool inside the namespace was killed too


def expected_wscale(lab):
    """The shift Linux announces with an unlocked buffer: the smallest that lets
    max(tcp_rmem[2], rmem_max) fit a 16-bit window, at most 14 (tcp_select_initial_window)."""
    space = max(int(lab.sysctl("net.ipv4.tcp_rmem").split()[2]),
                int(lab.sysctl("net.core.rmem_max")))
    shift = 0
    while space > 65535 and shift < 14:
        space >>= 1
        shift += 1
    return shift


def loopback_pair(lab, client_rcvbuf=None):
    # The 4.20..6.x default; newer kernels (and hosts) use 32 MiB, i.e. wscale 10.  Setting it
    # in the namespace also shows the kernel clients obey the lab's sysctls.
    lab.sysctl("net.ipv4.tcp_rmem", (4096, 131072, 6291456))
    srv = lab.socket_in_ns()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = lab.socket_in_ns()
    if client_rcvbuf:
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_rcvbuf)
    cli.connect(srv.getsockname())
    acc, _ = srv.accept()
    return srv, cli, acc


def test_tcp_info_of_a_real_loopback_connection(lab):
    srv, cli, acc = loopback_pair(lab)
    cli.sendall(b"x" * 10000)
    assert len(acc.recv(10000, socket.MSG_WAITALL)) == 10000
    acc.sendall(b"y" * 100)
    cli.recv(100, socket.MSG_WAITALL)
    time.sleep(0.01)
    info = clients.tcp_info(cli)
    assert info["state"] == "ESTABLISHED" and info["ca_state_name"] == "Open"
    assert info["ts"] and info["sack"] and info["wscale_ok"]
    ws = expected_wscale(lab)
    assert ws == 7 or int(lab.sysctl("net.core.rmem_max")) > 6291456
    assert info["snd_wscale"] == ws and info["rcv_wscale"] == ws
    assert info["advmss"] == 65483  # lo MTU 65536 - 40 - 12 (timestamps)
    assert 536 <= info["snd_mss"] <= info["advmss"]  # bounded by half the peer's max window
    assert info["pmtu"] == 65536 or info["pmtu"] == 65535
    assert info["bytes_acked"] == 10001  # + the SYN
    assert info["bytes_received"] == 100
    assert info["bytes_sent"] == 10000 and info["bytes_retrans"] == 0
    assert info["data_segs_out"] >= 1 and info["segs_out"] > info["data_segs_out"]
    assert 0 < info["rtt"] < 100_000 and info["rto"] >= 200_000
    assert info["total_retrans"] == 0 and info["unacked"] == 0
    assert info["snd_wnd"] > 0 and info["snd_cwnd"] >= 10
    assert clients.tcp_info(srv)["state"] == "LISTEN"


def test_tcp_info_wscale_nibbles_match_ss(lab):
    """A locked small SO_RCVBUF makes the client announce wscale 0 while the server announces 7:
    snd_wscale is the peer's shift, rcv_wscale our own (reference §8.3), as `ss` shows it."""
    srv, cli, acc = loopback_pair(lab, client_rcvbuf=4096)
    c, a = clients.tcp_info(cli), clients.tcp_info(acc)
    ws = expected_wscale(lab)
    assert (c["snd_wscale"], c["rcv_wscale"]) == (ws, 0)
    assert (a["snd_wscale"], a["rcv_wscale"]) == (0, ws)
    port = cli.getsockname()[1]
    out = lab.run_in_ns(["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
                        stdout=subprocess.PIPE, text=True).communicate(timeout=5)[0]
    assert f"wscale:{ws},0" in out
    fields = dict(kv.split(":", 1) for kv in out.split() if ":" in kv and "(" not in kv)
    c = clients.tcp_info(cli)
    assert int(fields["mss"]) == c["snd_mss"] and int(fields["advmss"]) == c["advmss"]
    assert int(fields["cwnd"]) == c["snd_cwnd"] and int(fields["rcvmss"]) == c["rcv_mss"]
    assert int(fields["snd_wnd"]) == c["snd_wnd"]


def test_kernel_counters_are_the_namespaces_own(lab):
    before = clients.kernel_counters(lab)
    srv, cli, acc = loopback_pair(lab)
    after = clients.kernel_counters(lab)
    assert after["TcpActiveOpens"] == before["TcpActiveOpens"] + 1
    assert after["TcpPassiveOpens"] == before["TcpPassiveOpens"] + 1
    assert "TcpExtSyncookiesSent" in after


async def test_connect_clients_burst_from_trio(lab):
    """20 non-blocking connects to a port nobody answers on our side, answered by RST from the
    test: every entry comes back as ECONNREFUSED; sockets without an answer time out."""
    import trio

    async def answer_with_rst(n):
        seen = 0
        while seen < n:
            await trio.lowlevel.wait_readable(lab.tun_fd)
            while True:
                try:
                    raw = os.read(lab.tun_fd, 65536)
                except BlockingIOError:
                    break
                syn = IP(raw)
                if syn[TCP].flags != "S":
                    continue
                seen += 1
                rst = IP(src=syn.dst, dst=syn.src) / TCP(
                    sport=syn[TCP].dport, dport=syn[TCP].sport, ack=syn[TCP].seq + 1,
                    flags="RA", window=0)
                os.write(lab.tun_fd, bytes(rst))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer_with_rst, 20)
        results = await clients.connect_clients(lab, 20, 7, linger0=True, timeout=5)
    assert len(results) == 20
    assert all(isinstance(r, OSError) and r.errno == 111 for r in results)
    late = await clients.connect_clients(lab, 2, 7, timeout=0.2)
    assert all(isinstance(r, TimeoutError) for r in late)


def drain(fd):
    out = []
    while True:
        try:
            out.append(os.read(fd, 65536))
        except BlockingIOError:
            return out


@pytest.mark.parametrize("txqueuelen,expect_dropped", [(20000, 0), (500, 100)])
def test_txqueuelen_decides_whether_a_syn_burst_survives(netns_available, txqueuelen,
                                                        expect_dropped):
    """600 SYNs queued before we read anything: the default 500-packet TUN queue silently
    drops the excess (tx_dropped), the lab's default of 20000 keeps them all."""
    with Lab(txqueuelen=txqueuelen) as lab:
        socks = lab.sockets_in_ns(600)
        for s in socks:
            s.setblocking(False)
            s.connect_ex((lab.endpoint_addr, 80))
        time.sleep(0.05)
        syns = [IP(p) for p in drain(lab.tun_fd)]
        assert len(syns) == 600 - expect_dropped
        assert all(p[TCP].flags == "S" for p in syns)
        assert lab.tun_stats()["tx_dropped"] == expect_dropped


def test_vnet_hdr_prefixes_each_packet(netns_available):
    with Lab(vnet_hdr=True) as lab:
        start_connect(lab, 80)
        raw = read_packet(lab.tun_fd)
        hdr, pkt = raw[:10], IP(raw[10:])  # struct virtio_net_hdr, then the IP packet
        assert pkt[TCP].flags == "S" and pkt.len == len(raw) - 10
        assert hdr[0] & ~1 == 0  # flags: at most NEEDS_CSUM; no GSO on a bare SYN
        assert hdr[1] == 0  # gso_type NONE


def test_without_privilege_the_error_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(netns, "_cap_effective", lambda: 0)
    monkeypatch.setattr(netns, "_ready", False)
    monkeypatch.setattr(netns, "_read_int", lambda path: 0 if "max_user_namespaces" in path else None)
    msg = netns.privilege_problem()
    assert msg == ("tuntcp needs CAP_NET_ADMIN (run as root) or unprivileged user namespaces: user "
                   "namespaces are disabled (fix: sysctl -w user.max_user_namespaces=10000)")
    with pytest.raises(LabError) as e:
        Lab()
    assert str(e.value) == msg


def test_rootless_without_a_usable_tun_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(netns, "_cap_effective", lambda: 0)
    monkeypatch.setattr(netns, "_userns_problem", lambda: None)
    monkeypatch.setenv("TUNTCP_TUN_DEVICE", str(tmp_path / "tun"))
    msg = netns.privilege_problem()
    assert msg.startswith(f"rootless tuntcp needs a TUN device it may open: no TUN device {tmp_path}/tun")
    assert "mknod DIR/tun c 10 200; chmod 0666 DIR/tun; then TUNTCP_TUN_DEVICE=DIR/tun" in msg
    assert "\n" not in msg


def test_addresses_outside_the_benchmarking_range_are_refused(netns_available):
    with pytest.raises(LabError, match="198.18.0.0/15"):
        Lab(endpoint_addr="10.0.0.1")
    with pytest.raises(LabError, match="inside the endpoint prefix"):
        Lab(client_addr="198.18.1.7")
    with pytest.raises(LabError, match="not an IPv4 address"):
        Lab(client_addr="198.18.0")
    with pytest.raises(LabError, match="MTU"):
        Lab(mtu=20)


def test_constructor_sysctls_govern_the_kernel_clients(netns_available):
    with Lab(sysctls={"net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_sack": 0}) as lab:
        start_connect(lab, 80)
        opts = dict(IP(read_packet(lab.tun_fd))[TCP].options)
        assert "Timestamp" not in opts and "SAckOK" not in opts and "WScale" in opts


def test_decode_tcp_info_fills_only_what_the_kernel_returned():
    """A 104-byte tcp_info (kernels before pacing_rate): wscale byte 0x3e means the peer's
    shift (low nibble) is 14 and ours (high nibble) is 3."""
    import struct
    head = bytes([1, 0, 0, 0, 0, 7, 0x3E, 0]) + struct.pack("=24I", *range(100, 124))
    info = clients.decode_tcp_info(head)
    assert (info["snd_wscale"], info["rcv_wscale"]) == (14, 3)
    assert info["state"] == "ESTABLISHED" and info["ts"] and info["sack"] and info["wscale_ok"]
    assert info["rto"] == 100 and info["total_retrans"] == 123
    assert "pacing_rate" not in info and "snd_wnd" not in info
    with pytest.raises(ValueError):
        clients.decode_tcp_info(b"\x01\x00")
