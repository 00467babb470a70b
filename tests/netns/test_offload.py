"""TUN offload (IFF_VNET_HDR + TUNSETOFFLOAD CSUM|TSO4) against real kernel clients.

Kernel -> endpoint: the kernel hands us TSO super-packets marked NEEDS_CSUM and we skip the
TCP checksum. Endpoint -> kernel: our segments go out merged into GSO frames with a partial
checksum the kernel completes. Raw-socket packets carry no mark and are still verified.
Integrity is byte-exact (sha256 over the whole stream).
"""
import hashlib
import socket
import time

import pytest
import trio
from scapy.all import TCP, rdpcap

from fixtures_endpoint import SECRET, KClient, payload_chunks, payload_digest
from tuntcp.host.stack import Stack
from tuntcp.host.encode import VnetEncoder
from tuntcp.harness.netns import Lab
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.shell.vnet import OffloadError
from tuntcp.wire import codec
from tuntcp.wire.pcap import PcapWriter
from tuntcp.wire.segment import SYN, Segment, TcpOptions

pytestmark = pytest.mark.netns

MB = 1_000_000


def start(lab, nursery, offload, pcap=None):
    st = Stack(get_profile("linux-6.1"), addrs={lab.endpoint_ip}, secret=SECRET,
               encoder=VnetEncoder() if offload else None)
    ep = Endpoint(st, lab.tun_fd, offload=offload, pcap=pcap)
    nursery.start_soon(ep.run)
    return ep


async def upload(lab, ep, port, nbytes, seed):
    """A kernel client process sends the seeded payload; we hash it. Returns its report."""
    lst = await open_tcp_listener(ep, port, 16)
    got = []

    async def sink():
        s = await lst.accept()
        h, n = hashlib.sha256(), 0
        while d := await s.receive_some(1 << 20):
            h.update(d)
            n += len(d)
        await s.aclose()
        got.append((n, h.hexdigest()))

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(sink)
            report = await KClient(lab, "send", port, nbytes, seed).result()
    assert report["bytes"] == nbytes and report["sha256"] == payload_digest(seed, nbytes)
    assert got == [(nbytes, report["sha256"])]
    return report


async def download(lab, ep, port, nbytes, seed):
    """We send the seeded payload; a kernel client process hashes it. Returns its report."""
    lst = await open_tcp_listener(ep, port, 16)

    async def source():
        s = await lst.accept()
        for c in payload_chunks(seed, nbytes):
            await s.send_all(c)
        await s.aclose()

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(source)
            report = await KClient(lab, "recv", port).result()
    assert report["bytes"] == nbytes and report["sha256"] == payload_digest(seed, nbytes)
    return report


@pytest.fixture
def vlab(netns_available):
    with Lab(vnet_hdr=True) as lab:
        yield lab


async def test_kernel_sends_20mb_through_tso_and_checksum_offload(vlab, nursery):
    ep = start(vlab, nursery, True)
    r = await upload(vlab, ep, 5001, 20 * MB, seed=11)
    st = ep.stack
    assert ep.io.gso_in > 0, "the kernel sent no TSO super-packet"
    assert ep.stats["rx"] * 5 < 20 * MB // 1448            # far fewer reads than MSS segments
    assert st.counters.get("TcpInCsumErrors", 0) == 0
    print(f"\noffload kernel -> endpoint 20 MB: {20 / r['seconds']:.1f} MB/s, "
          f"{ep.stats['rx']} packets read ({ep.io.gso_in} TSO)")


async def test_endpoint_sends_20mb_as_gso_frames(vlab, nursery):
    ep = start(vlab, nursery, True)
    r = await download(vlab, ep, 5002, 20 * MB, seed=12)
    segs = ep.stack.counters["TcpOutSegs"]
    # many MSS segments per frame written; the kernel took every frame
    assert ep.stats["tx"] * 5 < segs and ep.stats["tx_drops"] == 0
    print(f"\noffload endpoint -> kernel 20 MB: {20 / r['seconds']:.1f} MB/s, "
          f"{segs} segments in {ep.stats['tx']} frames, {r['total_retrans']} kernel retrans")


async def test_raw_socket_packet_with_bad_checksum_is_still_dropped(vlab, nursery, tmp_path):
    """A packet crafted in the namespace reaches the TUN without a checksum mark, so the
    offload path must verify it: bad checksum -> TcpInCsumErrors, no answer; the same packet
    with a good checksum to a closed port gets its RST. The pcap holds bare IP packets."""
    pcap = PcapWriter(tmp_path / "off.pcap")
    ep = start(vlab, nursery, True, pcap=pcap)
    st = ep.stack
    raw = vlab.socket_in_ns(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    syn = codec.build(Segment(vlab.client_ip, vlab.endpoint_ip, 12345, 9, seq=777, flags=SYN,
                              window=1000, options=TcpOptions(mss=1460)))
    bad = bytearray(syn)
    bad[36] ^= 0x5A                                          # TCP checksum field
    raw.sendto(bytes(bad), (vlab.endpoint_addr, 0))
    with trio.fail_after(5):
        while st.counters.get("TcpInCsumErrors", 0) == 0:
            await trio.sleep(0.01)
    assert st.counters["TcpInErrs"] == 1 and st.counters.get("TcpOutRsts", 0) == 0
    raw.sendto(syn, (vlab.endpoint_addr, 0))
    with trio.fail_after(5):
        while st.counters.get("TcpOutRsts", 0) == 0:
            await trio.sleep(0.01)
    assert st.counters["TcpInCsumErrors"] == 1 and st.counters["TcpInSegs"] >= 1
    raw.close()
    pcap.flush()
    pkts = rdpcap(str(tmp_path / "off.pcap"))
    assert [bytes(p)[0] for p in pkts] == [0x45] * 3         # bad SYN, good SYN, our RST
    assert [p[TCP].flags for p in pkts] == ["S", "S", "RA"]


def test_offload_on_a_tun_without_vnet_header_is_a_clear_error(lab):
    st = Stack(get_profile("linux-6.1"), addrs={lab.endpoint_ip}, encoder=VnetEncoder())
    with pytest.raises(OffloadError, match=r"IFF_VNET_HDR \(Lab\(vnet_hdr=True\)\)"):
        Endpoint(st, lab.tun_fd, offload=True)


async def test_throughput_offload_off_vs_on(netns_available, nursery):
    """Reported, not asserted: 20 MB each way with plain packets and with offload. MB/s is
    the client's wall clock; MB per CPU-second is this process (endpoint, app hashing or
    payload generation, and the kernel work our TUN writes trigger)."""
    rows = []
    for offload in (False, True):
        with Lab(vnet_hdr=offload) as lab:
            async with trio.open_nursery() as n:
                ep = start(lab, n, offload)
                c0 = time.process_time()
                up = await upload(lab, ep, 5003, 20 * MB, seed=13)
                c1 = time.process_time()
                down = await download(lab, ep, 5004, 20 * MB, seed=14)
                c2 = time.process_time()
                n.cancel_scope.cancel()
        rows.append((offload, 20 / up["seconds"], 20 / (c1 - c0), 20 / down["seconds"],
                     20 / (c2 - c1)))
    print("\noffload  kernel->endpoint MB/s (MB/cpu-s)  endpoint->kernel MB/s (MB/cpu-s)")
    for offload, u, uc, d, dc in rows:
        print(f"{'on ' if offload else 'off'}      {u:8.1f} ({uc:5.0f})             "
              f"{d:8.1f} ({dc:5.0f})")
