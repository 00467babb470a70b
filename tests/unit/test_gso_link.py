"""Offload on a lossy link: cutting GSO frames (``wire.vnet.segment_frame``/``split``), the
``GsoLink`` that carries vnet frames, and a stack taking a TSO super-packet as its wire
segments (the same output, counters and window as when the segments arrive one by one)."""
import pytest
from hypothesis import given, settings, strategies as st_

from test_vnet import MSS, emitted, established, inbound, run
from tuntcp.harness.link import GsoLink, LinkModel
from tuntcp.wire import codec
from tuntcp.wire.ipv6 import Ip6Out, Segment6, addr_int, parse6
from tuntcp.wire.segment import ACK, CWR, FIN, PSH, TcpOptions
from tuntcp.wire.vnet import (F_NEEDS_CSUM, HDR_LEN, VnetHdr, complete_csum, cuts, frame_info,
                              gso_frames, segment_frame, split)


def wire(frame):
    """The frame's packet as the receiver checks it (checksums verified)."""
    hdr = VnetHdr.unpack(frame)
    pkt = frame[HDR_LEN:]
    return codec.parse(pkt) if pkt[0] >> 4 == 4 and not hdr.flags else None


def test_cuts_keep_cwr_first_and_fin_psh_last():
    assert cuts(0xFFFFFFF0, ACK | CWR | PSH | FIN, 25, 10) == [
        (0, 10, 0xFFFFFFF0, ACK | CWR), (10, 10, 0xFFFFFFFA, ACK), (20, 5, 4, ACK | PSH | FIN)]


@settings(max_examples=100, deadline=None)
@given(emitted())
def test_segment_frame_gives_back_the_emitted_segments_with_full_checksums(segs):
    got = []
    for f in gso_frames(segs):
        pieces = segment_frame(f)
        assert len(pieces) == frame_info(f)[2]
        ids = []
        for p in pieces:
            hdr = VnetHdr.unpack(p)
            if hdr.flags & F_NEEDS_CSUM:                     # a plain frame, left alone
                p = complete_csum(p)
            got.append(codec.parse(p[HDR_LEN:]))             # verifies IP and TCP checksums
            ids.append(got[-1].ip_id)
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # inet_gso_segment counts ids up
    for g in got:
        g.ip_id = 0
    assert got == [codec.parse(codec.build(s)) for s in segs]


def test_split_matches_segment_frame_for_ipv6_with_its_flow_label():
    ip6 = Ip6Out(64, 1, b"s" * 16)
    a, b = addr_int("2001:2::1"), addr_int("2001:2:0:1::1")
    seg = Segment6(a, b, 80, 40000, seq=7, ack=9, flags=ACK | PSH, window=300,
                   options=TcpOptions(ts=(1, 2)), payload=bytes(range(250)) * 20)
    seg.gso_size = 1000
    (frame,) = gso_frames([seg], ip6)
    assert VnetHdr.unpack(frame).gso_type == 4                # GSO_TCPV6
    pieces = [parse6(p[HDR_LEN:]) for p in segment_frame(frame)]   # checksums verified
    whole = parse6(complete_csum(frame)[HDR_LEN:])
    assert pieces == split(whole, 1000)
    assert [len(p.payload) for p in pieces] == [1000] * 5 and pieces[-1].flags == ACK | PSH
    assert {p.flowlabel for p in pieces} == {ip6.flowlabel(a, 80, b, 40000)}


def frames_of(n_segs, size=MSS):
    return gso_frames(run(n_segs, size))


def test_a_delayed_super_packet_crosses_whole_and_counts_its_segments():
    link = GsoLink(1, delay=0.01)
    (f,) = frames_of(10)
    link.push_all([f], 0.0)
    assert link.pop_due(0.005) == [] and link.pop_due(0.01) == [f]
    assert link.stats["sent"] == 10 and link.stats["delivered"] == 10


@pytest.mark.parametrize("loss", [0.05, 0.3])
def test_loss_drops_the_same_wire_segments_as_the_plain_link(loss):
    frames = frames_of(40) * 20
    gso, plain = GsoLink(7, delay=0.01, loss=loss), LinkModel(7, delay=0.01, loss=loss)
    gso.push_all(frames, 0.0)
    plain.push_all([p for f in frames for p in segment_frame(f)], 0.0)
    got = [p for f in gso.pop_due(1.0) for p in segment_frame(f)]
    assert got == plain.pop_due(1.0)
    assert gso.stats == plain.stats and 0 < gso.stats["dropped"] < gso.stats["sent"]


def test_corruption_hits_one_wire_segment_which_the_receiver_then_rejects():
    link = GsoLink(3, corrupt=1.0)
    (f,) = frames_of(4)
    link.push(f, 0.0)
    out = link.pop_due(0.0)
    assert len(out) == 4 and link.stats["corrupted"] == 4
    for p in out:
        assert VnetHdr.unpack(p).flags == 0                   # no mark: the receiver verifies
        with pytest.raises(codec.Malformed):
            codec.parse(p[HDR_LEN:])


def test_jitter_cuts_frames_and_reorders_segments():
    link = GsoLink(5, delay=0.01, jitter=0.01)
    link.push_all(frames_of(20), 0.0)
    out = link.pop_due(1.0)
    assert len(out) == 20 and all(VnetHdr.unpack(p).gso_type == 0 for p in out)
    seqs = [codec.parse(p[HDR_LEN:]).seq for p in out]
    assert sorted(seqs) != seqs


# ---- the stack takes a super-packet as its wire segments -----------------------------------

def test_super_packet_in_gives_the_output_counters_and_window_of_its_segments():
    """A 20-segment TSO packet with gso_size read at once, against the same 20 segments read
    one by one in the same batch: identical ACKs (one per two full segments, per-MSS
    accounting), counters, rcv_mss and advertised window."""
    results = []
    for whole in (True, False):
        st, conn = established()
        n = 20 * MSS
        seg = inbound(1, n)
        if whole:
            st.receive(codec.build(seg), 0.0, csum_ok=True, gso_size=MSS)
        else:
            for s in split(seg, MSS):
                st.receive(codec.build(s), 0.0, csum_ok=True)
        acks = [codec.parse(complete_csum(f)[HDR_LEN:]) for f in st.take_output()]
        info = conn.info()
        results.append(([(a.ack, a.window) for a in acks], dict(st.counters),
                        info["rcv_mss"], conn.readable()))
    assert results[0] == results[1]
    acks = [a for a, _ in results[0][0]]
    assert len(acks) > 1 and all((a - 1) % MSS == 0 for a in acks)
    # taken whole (no gso_size: a GRO receiver), the same packet gets one ACK
    st, conn = established()
    st.receive(codec.build(inbound(1, 20 * MSS)), 0.0, csum_ok=True)
    assert len(st.take_output()) == 1
