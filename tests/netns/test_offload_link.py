"""Offload (IFF_VNET_HDR) with the link model in between, against real kernel clients.

The kernel hands the endpoint TSO super-packets and takes GSO frames; a ``GsoLink`` each way
delays whole frames and cuts them into wire segments where it drops one (2 % loss here) or
corrupts one. Transfers stay byte-exact (sha256 over the stream) over IPv4 and IPv6, the
losses are recovered by the model's and the kernel's retransmissions, and the corrupted
segments are rejected by checksum on the side that received them.
"""
import pytest
import trio

from test_offload import MB, download, upload
from tuntcp.harness.clients import kernel_counters
from tuntcp.harness.link import GsoLink
from tuntcp.harness.netns import Lab
from tuntcp.host.encode import VnetEncoder
from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint
from fixtures_endpoint import SECRET

pytestmark = pytest.mark.netns


def lossy_endpoint(lab, nursery, **link):
    st = Stack(get_profile("linux-6.18"), addrs={lab.endpoint_ip}, secret=SECRET,
               encoder=VnetEncoder())
    link_in, link_out = GsoLink(1, **link), GsoLink(2, **link)
    ep = Endpoint(st, lab.tun_fd, offload=True, link_in=link_in, link_out=link_out)
    nursery.start_soon(ep.run)
    return ep


@pytest.mark.parametrize("family", [4, 6])
async def test_byte_exact_both_ways_with_offload_and_2pct_loss(netns_available, family):
    with Lab(vnet_hdr=True, family=family) as lab:
        async with trio.open_nursery() as n:
            ep = lossy_endpoint(lab, n, delay=0.002, loss=0.02)
            up = await upload(lab, ep, 5101, 4 * MB, seed=21)
            down = await download(lab, ep, 5102, 4 * MB, seed=22)
            n.cancel_scope.cancel()
    li, lo = ep.link_in.stats, ep.link_out.stats
    c = ep.stack.counters
    assert ep.io.gso_in > 0, "the kernel sent no TSO super-packet"
    assert li["dropped"] > 0 and lo["dropped"] > 0
    # the model recovered what the link dropped on its way out, the kernel what it dropped in
    assert c["TcpRetransSegs"] > 0 and up["total_retrans"] > 0
    # super-packets crossed whole where nothing was dropped: fewer frames than wire segments
    assert ep.stats["rx"] < li["delivered"]
    print(f"\nIPv{family} offload + 2% loss: up {4 / up['seconds']:.1f} MB/s, down "
          f"{4 / down['seconds']:.1f} MB/s; link in {li}, out {lo}; {ep.io.gso_in} TSO in")


async def test_corrupted_segments_are_rejected_on_both_sides(netns_available):
    with Lab(vnet_hdr=True) as lab:
        async with trio.open_nursery() as n:
            ep = lossy_endpoint(lab, n, delay=0.001, corrupt=0.01)
            await upload(lab, ep, 5103, 2 * MB, seed=23)
            down = await download(lab, ep, 5104, 2 * MB, seed=24)
            n.cancel_scope.cancel()
            nstat = kernel_counters(lab)
    assert ep.link_in.stats["corrupted"] > 0 and ep.link_out.stats["corrupted"] > 0
    # corrupted on the way in: the model's checksum check caught it (IP or TCP)
    c = ep.stack.counters
    assert c.get("TcpInCsumErrors", 0) + c.get("IpInHdrErrors", 0) > 0
    # corrupted on the way out: the namespace's kernel dropped it (and we retransmitted)
    assert nstat.get("TcpInCsumErrors", 0) + nstat.get("IpInHdrErrors", 0) > 0
    assert c["TcpRetransSegs"] > 0 and down["bytes"] == 2 * MB


def _acks_per_segment(path, port):
    """From a pcap of the endpoint: (wire segments in, super-packets in, ACKs out, ACKs that
    fall strictly inside a super-packet on a segment boundary)."""
    from scapy.all import TCP, rdpcap
    segs = supers = acks = inside = 0
    last = None                       # (seq, length, mss) of the last super-packet in
    for p in rdpcap(str(path)):
        t = p[TCP]
        n = len(bytes(t.payload))
        if t.dport == port and n:
            mss = 1448
            k = -(-n // mss)
            segs += k
            if k > 1:
                supers += 1
                last = (t.seq, n, mss)
        elif t.sport == port and not n:
            acks += 1
            if last and 0 < (t.ack - last[0]) % 2**32 < last[1] and (t.ack - last[0]) % last[2] == 0:
                inside += 1
    return segs, supers, acks, inside


async def test_pcap_shows_per_mss_acks_inside_super_packets(netns_available, tmp_path):
    """A kernel upload through an offload endpoint: the pcap holds TSO super-packets as read,
    and the endpoint's ACKs fall inside them on MSS boundaries (one per two segments, the
    plain path's rule), not one per super-packet as a GRO receiver would send."""
    from test_offload import start
    from tuntcp.wire.pcap import PcapWriter
    rows = {}
    for offload in (True, False):
        path = tmp_path / f"up-{offload}.pcap"
        with Lab(vnet_hdr=offload) as lab:
            pcap = PcapWriter(str(path))
            async with trio.open_nursery() as n:
                ep = start(lab, n, offload, pcap=pcap)
                await upload(lab, ep, 5105, 3 * MB, seed=25)
                n.cancel_scope.cancel()
            pcap.close()
        rows[offload] = _acks_per_segment(path, 5105)
    segs, supers, acks, inside = rows[True]
    assert supers > 0 and inside > supers
    # One ACK per two segments is the rule while the reader keeps up; a loaded machine reads late,
    # the window stops growing and __tcp_ack_snd_check holds ACKs back, so the floor is loose.
    # A GRO-style receiver would send about one per super-packet.
    assert acks > 2 * supers and acks >= segs / 8
    print(f"\n(segments in, super-packets, ACKs out, ACKs inside a super-packet): offload "
          f"{rows[True]}, plain {rows[False]}")
