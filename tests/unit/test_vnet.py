"""TUN offload: the virtio_net_hdr codec, GSO merging of the stack's output, the partial
(pseudo-header) checksum the kernel completes, csum_ok on receive, and TSO super-packets in."""
import ipaddress
import os
import socket

import pytest

from tuntcp.core.conn import Connection
from tuntcp.core.params import HandshakeParams
from tuntcp.harness.link import LinkModel
from tuntcp.host.encode import VnetEncoder
from tuntcp.host.stack import Stack
from tuntcp.wire.vnet import gso_frames
from tuntcp.core.window import openreq_init_rwin
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, memory_pair
from tuntcp.shell.vnet import (F_DATA_VALID, F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, HDR_LEN,
                               OffloadError, VnetHdr, VnetIO, enable_offload)
from tuntcp.wire import checksum, codec
from tuntcp.wire.segment import ACK, FIN, PSH, RST, SYN, URG, Segment, TcpOptions

A, B = 0x0A000001, 0x0A000002
MSS = 1448
TS = TcpOptions(ts=(1000, 2000))


def data(seq, n, *, flags=ACK, sport=80, dport=40000, ack=77, window=500, opts=TS, fill=None):
    body = bytes([(seq + i) % 251 for i in range(n)]) if fill is None else fill * n
    return Segment(A, B, sport, dport, seq=seq & 0xFFFFFFFF, ack=ack, flags=flags, window=window,
                   options=opts, payload=body)


def run(n, size=MSS, seq=1, **kw):
    """n contiguous segments of `size` bytes, PSH on the last (as conn._xmit does)."""
    segs = [data(seq + i * size, size, **kw) for i in range(n)]
    segs[-1].flags |= PSH
    return segs


def split(frame):
    return VnetHdr.unpack(frame), frame[HDR_LEN:]


def complete(pkt, hdr):
    """What the kernel does for NEEDS_CSUM (skb_checksum_help): sum from csum_start to the
    end, with the field as it is, and store the complement at csum_start + csum_offset."""
    b = bytearray(pkt)
    at = hdr.csum_start + hdr.csum_offset
    b[at:at + 2] = checksum.checksum(b[hdr.csum_start:]).to_bytes(2, "big")
    return bytes(b)


def merged(segs):
    """The one Segment a GSO super-packet stands for: first header, last flags, all payload."""
    s = segs[0]
    return Segment(s.saddr, s.daddr, s.sport, s.dport, seq=s.seq, ack=s.ack, flags=segs[-1].flags,
                   window=s.window, options=s.options,
                   payload=b"".join(bytes(x.payload) for x in segs), ttl=s.ttl, tos=s.tos)


# ---- header codec ---------------------------------------------------------------------------

def test_header_layout_is_native_virtio_net_hdr():
    h = VnetHdr(F_NEEDS_CSUM, GSO_TCPV4, 52, 1448, 20, 16)
    # u8 flags, u8 gso_type, then four little-endian u16 (legacy TUN, x86-64)
    assert h.pack() == bytes([1, 1, 52, 0, 0xA8, 0x05, 20, 0, 16, 0])
    assert VnetHdr.unpack(h.pack() + b"rest") == h
    with pytest.raises(ValueError, match="10 bytes"):
        VnetHdr.unpack(b"\x01\x01")


# ---- GSO merge rules ------------------------------------------------------------------------

def test_contiguous_run_of_one_flow_is_one_tcpv4_super_packet():
    segs = run(10)
    (frame,) = gso_frames(segs)
    hdr, pkt = split(frame)
    assert hdr == VnetHdr(F_NEEDS_CSUM, GSO_TCPV4, 20 + 32, MSS, 20, 16)
    # once the kernel completes the checksum it is byte for byte the merged segment
    assert complete(pkt, hdr) == codec.build(merged(segs))
    seg = codec.parse(complete(pkt, hdr))
    assert seg.flags == ACK | PSH and len(seg.payload) == 10 * MSS and seg.seq == 1


def test_checksum_field_holds_the_non_inverted_pseudo_header_sum():
    (frame,) = gso_frames(run(3))
    hdr, pkt = split(frame)
    tcp_len = len(pkt) - 20
    field = int.from_bytes(pkt[36:38], "big")
    assert field == checksum.fold(A + B + 6 + tcp_len)
    assert not checksum.tcp_checksum_ok(A, B, pkt[20:])        # incomplete until the kernel
    assert checksum.tcp_checksum_ok(A, B, complete(pkt, hdr)[20:])
    # the IP header checksum is complete: the kernel checks it in ip_rcv_core
    assert checksum.ip_header_checksum_ok(pkt[:20])
    assert int.from_bytes(pkt[2:4], "big") == len(pkt)


def test_single_segments_and_acks_are_plain_frames_with_needs_csum():
    ack = Segment(A, B, 80, 40000, seq=5, ack=9, flags=ACK, window=100, options=TS)
    syn = Segment(A, B, 80, 40000, seq=5, ack=9, flags=SYN | ACK, window=100,
                  options=TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(1, 2)))
    frames = gso_frames([ack, data(100, 500), syn])
    assert len(frames) == 3
    for frame, seg in zip(frames, (ack, data(100, 500), syn)):
        hdr, pkt = split(frame)
        assert (hdr.flags, hdr.gso_type, hdr.gso_size) == (F_NEEDS_CSUM, GSO_NONE, 0)
        assert (hdr.csum_start, hdr.csum_offset) == (20, 16)
        assert complete(pkt, hdr) == codec.build(seg)


def test_never_merged_across_flows():
    a, b = run(2), run(2, dport=40001)
    frames = gso_frames([a[0], b[0], a[1], b[1]])          # interleaved: four plain frames
    assert [split(f)[0].gso_type for f in frames] == [GSO_NONE] * 4
    frames = gso_frames(a + b)                              # back to back: one per flow
    assert len(frames) == 2
    assert [codec.parse(complete(p, h)).dport for h, p in map(split, frames)] == [40000, 40001]


@pytest.mark.parametrize("flag", [SYN, FIN, RST, URG])
def test_syn_fin_rst_urg_are_never_merged(flag):
    segs = run(3)
    segs[2].flags = ACK | flag
    frames = gso_frames(segs)
    assert len(frames) == 2
    h0, _ = split(frames[0])
    h1, p1 = split(frames[1])
    assert (h0.gso_type, h0.gso_size) == (GSO_TCPV4, MSS)
    assert h1.gso_type == GSO_NONE and codec.parse(complete(p1, h1)).flags == ACK | flag
    segs[0].flags = ACK | flag                              # and never as the head of a run
    assert [split(f)[0].gso_type for f in gso_frames(segs[:2])] == [GSO_NONE, GSO_NONE]


def test_push_and_short_segments_only_end_a_run():
    segs = [data(1, MSS, flags=ACK | PSH), data(1 + MSS, MSS)]
    assert len(gso_frames(segs)) == 2                       # PSH in the middle: split
    short = [data(1, MSS), data(1 + MSS, 100), data(1 + MSS + 100, MSS)]
    f = gso_frames(short)
    assert len(f) == 2 and len(split(f[0])[1]) == 52 + MSS + 100
    bigger = [data(1, 100), data(101, MSS)]                 # a later segment above gso_size
    assert len(gso_frames(bigger)) == 2


def test_gaps_and_header_differences_split_runs():
    gap = [data(1, MSS), data(1 + MSS + 1, MSS)]
    assert len(gso_frames(gap)) == 2
    for kw in ({"ack": 78}, {"window": 501}, {"opts": TcpOptions(ts=(1001, 2000))},
               {"opts": TcpOptions(ts=(1000, 2000), sack_blocks=((5, 9),))}):
        assert len(gso_frames([data(1, MSS), data(1 + MSS, MSS, **kw)])) == 2, kw
    ttl = data(1 + MSS, MSS)
    ttl.ttl = 1
    assert len(gso_frames([data(1, MSS), ttl])) == 2


def test_sequence_wrap_inside_a_run():
    segs = run(4, seq=0xFFFFFFFF - 2000)
    (frame,) = gso_frames(segs)
    hdr, pkt = split(frame)
    assert hdr.gso_type == GSO_TCPV4 and complete(pkt, hdr) == codec.build(merged(segs))


def test_super_packets_stay_within_64k_and_keep_every_byte():
    segs = run(100)
    frames = gso_frames(segs)
    per = (65535 - 52) // MSS                               # 45 segments fit one IPv4 packet
    assert [len(f) - HDR_LEN for f in frames] == [52 + per * MSS, 52 + per * MSS, 52 + 10 * MSS]
    assert all(len(f) - HDR_LEN <= 65535 for f in frames)
    got = b"".join(bytes(codec.parse(complete(p, h)).payload) for h, p in map(split, frames))
    assert got == b"".join(bytes(s.payload) for s in segs)
    assert [codec.parse(complete(p, h)).flags for h, p in map(split, frames)] == [ACK, ACK, ACK | PSH]


# ---- the Stack's offload mode ---------------------------------------------------------------

L, R = int(ipaddress.IPv4Address("192.0.2.1")), int(ipaddress.IPv4Address("192.0.2.2"))


def established(offload=True):
    p = get_profile("linux-6.1")
    st = Stack(p, addrs={L}, secret=b"k" * 16,
               encoder=VnetEncoder() if offload else None)
    buf = p["net.ipv4.tcp_rmem"][1]
    rcv_wnd, clamp, ws = openreq_init_rwin(p, listener_rcvbuf=buf, rcvbuf_locked=False,
                                           listener_window_clamp=0, mss_clamp=1460,
                                           tstamp_ok=True, wscale_ok=True)
    params = HandshakeParams(
        laddr=L, lport=8080, raddr=R, rport=40000, iss=1000, irs=0, mss=1460, advmss=1460,
        wscale_ok=True, snd_wscale=7, rcv_wscale=ws, sack_ok=True, tstamp_ok=True,
        ts_recent=100, ts_off=0, rcv_wnd=rcv_wnd, window_clamp=clamp, snd_wnd=65535 << 7,
        rcvbuf=buf, rcvbuf_locked=False, sndbuf=p["net.ipv4.tcp_wmem"][1], sndbuf_locked=False,
        rtt_sample=0.01)
    return st, Connection.from_handshake(st, params, 0.0)


def inbound(seq, n, *, ack=1001, flags=ACK):
    return Segment(R, L, 40000, 8080, seq=seq, ack=ack, flags=flags, window=1000,
                   options=TcpOptions(ts=(200, 0)), payload=bytes(i % 251 for i in range(n)))


def test_stack_output_in_offload_mode_is_gso_frames():
    st, conn = established()
    msg = bytes(range(256)) * 32
    assert conn.send(msg, 0.0) == 8192                      # the initial send space
    frames = st.take_output()
    assert st.counters["TcpOutSegs"] == 6                   # 5 x 1448 + 952, counted per segment
    (frame,) = frames
    hdr, pkt = split(frame)
    assert (hdr.gso_type, hdr.gso_size) == (GSO_TCPV4, conn.mss)
    seg = codec.parse(complete(pkt, hdr))
    assert bytes(seg.payload) == msg and seg.flags == ACK | PSH
    st2, conn2 = established(offload=False)
    conn2.send(msg, 0.0)
    assert len(st2.take_output()) == 6                     # plain stacks are unchanged


def test_csum_ok_skips_the_tcp_checksum_only_in_offload_mode():
    for offload in (True, False):
        st, conn = established(offload)
        pkt = bytearray(codec.build(inbound(1, 100)))
        pkt[36] ^= 0xFF                                     # bad TCP checksum
        st.receive(bytes(pkt), 0.0, csum_ok=True)
        assert (conn.readable(), st.counters.get("TcpInCsumErrors", 0)) == \
            ((100, 0) if offload else (0, 1))
        st.receive(bytes(pkt), 0.0)                         # unmarked: always verified
        assert st.counters.get("TcpInCsumErrors", 0) == (1 if offload else 2)
        bad_ip = bytearray(pkt)
        bad_ip[10] ^= 0xFF                                  # the IP header is always checked
        st.receive(bytes(bad_ip), 0.0, csum_ok=True)
        assert st.counters["IpInHdrErrors"] == 1


def test_tso_super_packet_from_the_kernel_is_taken_whole():
    """A 64 KB TSO packet is one 'segment' far above the MSS: the connection queues all of
    it, ACKs it at once (more than one rcv_mss unacknowledged) and keeps rcv_mss <= advmss."""
    st, conn = established()
    n = 60000                                               # within the initial 65160 window
    frame = gso_frames([Segment(R, L, 40000, 8080, seq=1, ack=1001, flags=ACK, window=1000,
                                options=TcpOptions(ts=(200, 0)),
                                payload=bytes(i % 251 for i in range(n)))])[0]
    st.receive(frame[HDR_LEN:], 0.0, csum_ok=True)          # partial checksum, marked by kernel
    assert conn.readable() == n
    assert conn.recv(1 << 20, 0.0) == bytes(i % 251 for i in range(n))
    acks = [codec.parse(complete(p, h)) for h, p in map(split, st.take_output())]
    assert acks and acks[0].ack == 1 + n and not acks[0].payload
    assert conn.info()["rcv_mss"] <= conn.info()["advmss"]
    # the same packet with a full checksum and no mark goes through verification and passes
    st.receive(codec.build(inbound(1 + n, 30000)), 0.0)
    assert conn.readable() == 30000 and st.counters.get("TcpInCsumErrors", 0) == 0


def test_tso_super_packet_beyond_the_window_is_trimmed():
    st, conn = established()
    rwin = conn.win.current(conn.rcv_nxt)
    n = min(rwin + 5000, 65535 - 52)
    assert n > rwin, "the initial window should be below 64 KB for this test"
    st.receive(codec.build(inbound(1, n)), 0.0)
    assert conn.readable() == rwin


# ---- VnetIO and the Endpoint option ---------------------------------------------------------

def test_vnet_io_strips_the_header_and_reports_checksum_marks():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        io = VnetIO(a.fileno(), setup=False)
        pkt = codec.build(inbound(1, 10))
        for flags, gso in ((F_NEEDS_CSUM, GSO_TCPV4), (F_DATA_VALID, GSO_NONE), (0, GSO_NONE)):
            b.send(VnetHdr(flags, gso).pack() + pkt)
        b.send(VnetHdr().pack())                            # a header alone is skipped
        got = io.read_batch(10)
        assert [bytes(p) for p in got] == [pkt] * 3
        assert io.csum_ok == [True, True, False] and io.gso_in == 1 and io.gso == [0, 0, 0]
        assert io.read_batch(10) == [] and io.csum_ok == []
    finally:
        a.close()
        b.close()


def test_offload_setup_errors_are_one_clear_line():
    r, w = os.pipe()
    try:
        with pytest.raises(OffloadError, match="not a TUN device"):
            enable_offload(r)
    finally:
        os.close(r)
        os.close(w)
    plain = Stack(get_profile("linux-6.1"), addrs={L})
    off = Stack(get_profile("linux-6.1"), addrs={L}, encoder=VnetEncoder())
    a, _ = memory_pair()
    with pytest.raises(ValueError, match="needs a Stack"):
        Endpoint(plain, a, offload=True)
    with pytest.raises(ValueError, match="use Endpoint\\(offload=True\\)"):
        Endpoint(off, a)
    with pytest.raises(ValueError, match="needs GsoLink link models"):
        Endpoint(off, a, offload=True, link_in=LinkModel(1, delay=0.01))
    with pytest.raises(ValueError, match="TUN fd or a VnetIO"):
        Endpoint(off, a, offload=True)


# ---- property: what the kernel cuts a frame back into is exactly what the stack emitted ------

from hypothesis import given, settings, strategies as st_  # noqa: E402


def resegment(frame):
    """``tcp_gso_segment`` in miniature: gso_size pieces, each with the frame's header, seq
    advanced, PSH only on the last piece; then each piece's checksum done in full."""
    hdr, pkt = split(frame)
    seg = codec.parse(complete(pkt, hdr))
    if hdr.gso_type == GSO_NONE:
        return [codec.build(seg)]
    body = bytes(seg.payload)
    out = []
    for off in range(0, len(body), hdr.gso_size):
        piece = body[off:off + hdr.gso_size]
        last = off + hdr.gso_size >= len(body)
        out.append(codec.build(Segment(seg.saddr, seg.daddr, seg.sport, seg.dport,
                                       seq=(seg.seq + off) & 0xFFFFFFFF, ack=seg.ack,
                                       flags=seg.flags if last else seg.flags & ~PSH,
                                       window=seg.window, options=seg.options, payload=piece,
                                       ttl=seg.ttl, tos=seg.tos)))
    return out


@st_.composite
def emitted(draw):
    """What a batch of take_output may hold: runs of data from two flows, some gaps, short
    tails, PSH, FIN/RST, ACK changes, and pure ACKs, in any interleaving."""
    segs = []
    seqs = {40000: draw(st_.integers(0, 0xFFFFFFFF)), 40001: 5}
    for _ in range(draw(st_.integers(1, 60))):
        port = draw(st_.sampled_from((40000, 40001)))
        n = draw(st_.sampled_from((MSS, MSS, MSS, MSS, 700, 0)))
        flags = ACK | draw(st_.sampled_from((0, 0, 0, PSH, FIN, RST)))
        ack = draw(st_.sampled_from((77, 77, 77, 78)))
        segs.append(data(seqs[port], n, dport=port, flags=flags, ack=ack, fill=bytes([n % 256])))
        seqs[port] += n + draw(st_.sampled_from((0, 0, 0, 0, 1)))
    return segs


@settings(max_examples=150, deadline=None)
@given(emitted())
def test_frames_resegment_into_exactly_the_emitted_packets(segs):
    frames = gso_frames(segs)
    got = [p for f in frames for p in resegment(f)]
    assert got == [codec.build(s) for s in segs]
    for f in frames:
        assert len(f) - HDR_LEN <= 65535
