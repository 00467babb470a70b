"""Hostile input through the whole receive path: ``Stack.receive`` with a listener and live
connections, not only the codec.

Property: whatever bytes arrive, nothing escapes ``receive``, each packet is counted exactly once
(under its drop reason or as TcpInSegs), every packet we send back passes our own checks, and
the tables stay within the listener's bounds. Then explicit malformed cases, each with the drop
counter Linux would move.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

if str(Path(__file__).resolve().parents[2] / "fuzz") not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
from world import CLIENT, PORT, SERVER, World, raw  # noqa: E402

from tuntcp.wire.segment import ACK, FIN, PSH, RST, SYN  # noqa: E402

U32 = st.integers(0, 0xFFFFFFFF)

# Options as the wire may carry them: well-formed, wrong lengths (0, 1, overflowing), unknown
# kinds, EOL in the middle, or arbitrary bytes.
one_option = st.one_of(
    st.just(b"\x01"), st.just(b"\x00"),
    st.builds(lambda v: b"\x02\x04" + struct.pack("!H", v), st.integers(0, 0xFFFF)),
    st.builds(lambda v: b"\x03\x03" + bytes([v]), st.integers(0, 255)),
    st.just(b"\x04\x02"),
    st.builds(lambda a, b: b"\x08\x0a" + struct.pack("!II", a, b), U32, U32),
    st.builds(lambda n, e: b"\x05" + bytes([2 + 8 * n]) + b"".join(struct.pack("!I", x) for x in e[:2 * n]),
              st.integers(1, 4), st.lists(U32, min_size=8, max_size=8)),
    st.builds(lambda k, ln: bytes([k, ln]), st.integers(0, 255), st.integers(0, 255)),  # silly lengths
    st.builds(lambda k, d: bytes([k, len(d) + 2]) + d, st.integers(6, 255), st.binary(max_size=6)),
    st.binary(min_size=1, max_size=8),
)
options = st.lists(one_option, max_size=8).map(lambda xs: b"".join(xs)[:40])

MUTATIONS = ("none", "none", "none", "none", "truncate", "bad_ip_csum", "bad_tcp_csum", "ihl",
             "doff", "frag", "proto", "ip_opts", "tot", "daddr", "bitflip")


@st.composite
def packet(draw, world_conns: int = 3):
    """(description, bytes): a segment aimed at a live connection, the listener, or nowhere."""
    target = draw(st.sampled_from(("conn", "conn", "listener", "listener", "closed_port")))
    conn_i = draw(st.integers(0, world_conns - 1))
    flags = draw(st.one_of(st.sampled_from((SYN, SYN | ACK, ACK, ACK | PSH, RST, RST | ACK, FIN | ACK,
                                            SYN | FIN, SYN | RST, 0)), st.integers(0, 255)))
    seq_mode = draw(st.sampled_from(("near", "any")))
    seq_off = draw(st.integers(-70000, 70000))
    ack_off = draw(st.integers(-70000, 70000))
    any_seq, any_ack = draw(U32), draw(U32)
    window = draw(st.one_of(st.sampled_from((0, 1, 65535)), st.integers(0, 0xFFFF)))
    opts = draw(options)
    payload = draw(st.binary(max_size=300))
    sport = draw(st.one_of(st.just(None), st.integers(0, 0xFFFF)))
    saddr = draw(st.one_of(st.just(CLIENT), U32))
    mutation = draw(st.sampled_from(MUTATIONS))
    mut_arg = draw(st.integers(0, 1 << 16))
    return dict(target=target, conn_i=conn_i, flags=flags, seq_mode=seq_mode, seq_off=seq_off,
                ack_off=ack_off, any_seq=any_seq, any_ack=any_ack, window=window, opts=opts,
                payload=payload, sport=sport, saddr=saddr, mutation=mutation, mut_arg=mut_arg)


def render(w: World, d: dict) -> bytes:
    kw = {}
    if d["target"] == "conn":
        c = w.conns[d["conn_i"]]
        saddr, sport, dport = c.raddr, c.rport, c.lport
        near = d["seq_mode"] == "near"
        seq = (c.rcv_nxt + d["seq_off"]) if near else d["any_seq"]
        ack = (c.snd_nxt + d["ack_off"]) if near else d["any_ack"]
    else:
        saddr = d["saddr"]
        sport = d["sport"] if d["sport"] is not None else 40000
        dport = PORT if d["target"] == "listener" else 81
        seq, ack = d["any_seq"], d["any_ack"]
    daddr = SERVER
    m, a = d["mutation"], d["mut_arg"]
    if m == "bad_ip_csum":
        kw["bad_ip_csum"] = True
    elif m == "bad_tcp_csum":
        kw["bad_tcp_csum"] = True
    elif m == "ihl":
        kw["ihl"] = a % 16
    elif m == "doff":
        kw["doff"] = a % 16
    elif m == "frag":
        kw["frag"] = a & 0xFFFF | 1  # never a plain DF: at least an offset or MF... or odd offset
    elif m == "proto":
        kw["proto"] = a % 256 if a % 256 != 6 else 17
    elif m == "ip_opts":
        kw["ip_opts"] = bytes([1] * (a % 40))
    elif m == "tot":
        kw["tot"] = a % 2000
    elif m == "daddr":
        daddr = [0xFFFFFFFF, 0xE0000001, 0xC61201FF, SERVER + 1][a % 4]
    pkt = raw(saddr, daddr, sport, dport, seq, ack, d["flags"], d["window"], d["opts"],
              d["payload"], **kw)
    if m == "truncate":
        pkt = pkt[:a % (len(pkt) + 1)]
    elif m == "bitflip":
        b = bytearray(pkt)
        b[a % len(b)] ^= 1 << (a >> 12 & 7)
        pkt = bytes(b)
    return pkt


@pytest.mark.parametrize("profile", ["linux-6.1", "linux-3.10", "freebsd-14"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq_of_packets=st.lists(st.tuples(packet(), st.floats(0, 3.0)), min_size=3, max_size=40))
def test_any_packet_sequence_is_counted_and_bounded(tally, profile, seq_of_packets):
    w = World(profile)
    before = w.server.counters.snapshot()
    for d, dt in seq_of_packets:
        w.feed(render(w, d))           # raises on an escaped exception or a miscount
        if dt > 2.5:
            w.tick(dt)
        w.check_bounds()
    w.tick(130.0)                      # every timer that was armed fires without trouble
    w.check_bounds()
    tally.tried(f"stack.receive sequences ({profile})", len(seq_of_packets))
    tally.dropped(w.server.counters.delta(before))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(U32, st.integers(0, 0xFFFF), st.binary(max_size=40)), min_size=50,
                max_size=300))
def test_spoofed_syn_flood_keeps_state_bounded(tally, syns):
    """SYNs from arbitrary sources with arbitrary options: the SYN queue fills to the backlog,
    then cookies (no state); the accept queue never grows past backlog+1."""
    from tuntcp.host.stack import _martian_source
    w = World()
    before = w.server.counters.snapshot()
    fed = 0
    for src, sport, opts in syns:
        if src == SERVER or _martian_source(src):   # martian sources never reach TCP
            continue
        w.feed(raw(src, SERVER, sport, PORT, 1000, 0, SYN, 65535, opts))
        w.check_bounds()
        fed += 1
    delta = w.server.counters.delta(before)
    if fed > w.listener.backlog + 8:
        assert delta.get("TcpExtSyncookiesSent", 0) > 0 or delta.get("TcpExtListenDrops", 0) > 0
    tally.tried("spoofed SYNs (hypothesis)", len(syns))
    tally.dropped(delta)


# ---- explicit malformed cases ------------------------------------------------------------------

def _conn_seg(w, **kw):
    c = w.conns[0]
    base = dict(seq=c.rcv_nxt, ack=c.snd_nxt, flags=ACK | PSH, window=1000, payload=b"data")
    base.update(kw)
    return raw(c.raddr, SERVER, c.rport, c.lport, **base)


def _listener_syn(**kw):
    base = dict(seq=1, flags=SYN, window=65535, opts=b"\x02\x04\x05\xb4")
    base.update(kw)
    src = base.pop("src", CLIENT)
    return raw(src, SERVER, 40123, PORT, **base)


CASES = [
    # name, builder, counter that must move, and what must not happen
    ("truncated IP header", lambda w: _conn_seg(w)[:19], "IpInHdrErrors"),
    ("IHL 4", lambda w: _conn_seg(w, ihl=4), "IpInHdrErrors"),
    ("IHL 15 beyond packet", lambda w: _conn_seg(w, ihl=15, payload=b""), "IpInHdrErrors"),
    # version 6 goes down the IPv6 path (tun_get_user picks it by the nibble); ip6_rcv_core
    # finds the payload length (here the IPv4 ID field) past the packet's end
    ("IP version 6", lambda w: bytes([0x65]) + _conn_seg(w)[1:], "Ip6InTruncatedPkts"),
    ("bad IP checksum", lambda w: _conn_seg(w, bad_ip_csum=True), "IpInHdrErrors"),
    ("total length > bytes", lambda w: _conn_seg(w, tot=400), "IpExtInTruncatedPkts"),
    ("total length < IHL", lambda w: _conn_seg(w, tot=12), "IpInHdrErrors"),
    ("truncated TCP header", lambda w: _conn_seg(w, payload=b"", tot=30)[:30], "TuntcpTcpTruncated"),
    ("data offset 0", lambda w: _conn_seg(w, doff=0), "TcpInErrs"),
    ("data offset 4", lambda w: _conn_seg(w, doff=4), "TcpInErrs"),
    ("data offset 15 past the end", lambda w: _conn_seg(w, doff=15, payload=b""), "TuntcpTcpTruncated"),
    ("bad TCP checksum", lambda w: _conn_seg(w, bad_tcp_csum=True), "TcpInCsumErrors"),
    ("bad TCP checksum on a SYN", lambda w: _listener_syn(bad_tcp_csum=True), "TcpInCsumErrors"),
    ("IP fragment (MF)", lambda w: _conn_seg(w, frag=0x2000), "IpReasmFails"),
    ("IP fragment (offset)", lambda w: _conn_seg(w, frag=0x0010), "IpReasmFails"),
    ("UDP", lambda w: _conn_seg(w, proto=17), "IpInUnknownProtos"),
    ("ICMP", lambda w: _conn_seg(w, proto=1), "IpInUnknownProtos"),
    ("SYN to broadcast", lambda w: raw(CLIENT, 0xFFFFFFFF, 40000, PORT, 1, 0, SYN), "IpInAddrErrors"),
    ("SYN to multicast", lambda w: raw(CLIENT, 0xE0000001, 40000, PORT, 1, 0, SYN), "IpInAddrErrors"),
]


@pytest.mark.parametrize("name,build,counter", CASES, ids=[c[0] for c in CASES])
def test_malformed_packet_is_dropped_and_counted(tally, name, build, counter):
    w = World()
    states = [c.state for c in w.conns]
    readable = [c.readable() for c in w.conns]
    before = w.server.counters.snapshot()
    out = w.feed(build(w))
    delta = w.server.counters.delta(before)
    assert delta.get(counter) == 1, f"{name}: {delta}"
    assert out == [], f"{name}: a dropped packet must not be answered"
    assert [c.state for c in w.conns] == states and [c.readable() for c in w.conns] == readable
    assert "TcpInSegs" not in delta or counter == "TcpInSegs"
    if counter == "TcpInCsumErrors":
        assert delta.get("TcpInErrs") == 1      # Linux counts a checksum error in both
    tally.tried("explicit malformed", 1)
    tally.dropped(delta)


def test_ip_options_are_skipped_not_fatal(tally):
    """IP options (here NOPs and a router alert) are allowed: the segment is delivered."""
    w = World()
    c = w.conns[0]
    out = w.feed(_conn_seg(w, ip_opts=b"\x94\x04\x00\x00" + b"\x01" * 4))
    assert c.readable() == 4
    assert out  # the data is ACKed
    tally.tried("explicit malformed", 1)


@pytest.mark.parametrize("opts", [b"\x02\x00", b"\x02\x01\x05\xb4", b"\x08\xff" + b"\0" * 6,
                                  b"\x03\x03\xff", b"\x05\x03", b"\x02\x04\x00\x00", b"\x01" * 40,
                                  b"\x04\x02" * 20, b"\xfe\x28" + b"\0" * 38],
                         ids=["len0", "len1", "overflow", "wscale255", "sack-short", "mss0", "nops",
                              "sackok-x20", "kind254-full"])
def test_silly_syn_options_do_not_break_the_listener(tally, opts):
    """tcp_parse_options stops at a silly length and keeps the segment; the SYN is answered
    (or cookied) with a SYN-ACK whose options we can encode and parse back."""
    from tuntcp.wire import codec
    w = World()
    out = w.feed(_listener_syn(opts=opts))
    assert len(out) == 1
    synack = codec.parse(out[0])
    assert synack.flags == SYN | ACK
    assert synack.options.mss is None or 48 <= synack.options.mss <= 1460
    if opts == b"\x03\x03\xff":
        assert w.listener.reqs and next(iter(w.listener.reqs.values())).snd_wscale == 14
    tally.tried("explicit malformed", 1)


def test_syn_fin_and_syn_rst_to_listener_open_nothing(tally):
    """SYN+FIN (tcp_rcv_state_process in LISTEN drops it, as FreeBSD does) and SYN+RST (RST is
    looked at first) neither create a request sock nor draw a SYN-ACK."""
    w = World()
    for flags in (SYN | FIN, SYN | RST, SYN | FIN | ACK, SYN | RST | ACK):
        out = w.feed(_listener_syn(flags=flags))
        assert not any(p[33] & SYN for p in out), f"flags {flags:#x} drew a SYN-ACK"
        assert not w.listener.reqs
    tally.tried("explicit malformed", 4)


def test_zero_and_huge_windows_on_live_connection(tally):
    """A peer advertising 0 then 65535<<14: we stop sending, probe, and resume; nothing breaks."""
    w = World()
    c = w.conns[0]
    peer = w.peers[0]
    c.send(b"x" * 3000, w.now)
    w.server.take_output()
    # zero window from the peer, ACKing nothing new
    w.feed(_conn_seg(w, payload=b"", ack=c.snd_una, window=0))
    assert c.snd_wnd == 0
    w.tick(5.0)                         # the probe timer fires; no crash, still established
    assert c.state == "ESTABLISHED"
    w.feed(_conn_seg(w, payload=b"", ack=c.snd_una, window=0xFFFF))
    assert c.snd_wnd == 0xFFFF << c.snd_wscale
    assert peer.state == "ESTABLISHED"
    tally.tried("explicit malformed", 2)


def test_multicast_or_broadcast_source_syn_is_not_answered(tally):
    """ip_route_input_slow drops a packet from a multicast or limited-broadcast source as a
    martian before TCP sees it: no SYN-ACK may go to such an address."""
    w = World()
    for src in (0xE0000001, 0xFFFFFFFF, 0xEFFFFFFA):
        out = w.feed(_listener_syn(src=src))
        assert out == [], f"answered a SYN from {src:#x}"
    tally.tried("explicit malformed", 3)


def test_challenge_acks_capped_per_namespace_per_second(tally):
    """In-window RSTs on 12 connections within one second: each socket would answer one
    challenge ACK, but net.ipv4.tcp_challenge_ack_limit=5 caps the namespace at 5 per second
    (tcp_send_challenge_ack); no connection is reset by a RST that is not exactly rcv_nxt."""
    w = World(n_conns=12, overrides=["net.ipv4.tcp_challenge_ack_limit=5"])
    w.now = 10.0
    before = w.server.counters.snapshot()
    for c in w.conns:
        w.feed(raw(c.raddr, SERVER, c.rport, c.lport, c.rcv_nxt + 10, 0, RST, 0))
    assert w.server.counters.delta(before).get("TcpExtTCPChallengeACK") == 5
    w.now = 11.2     # next second, and past every socket's tcp_invalid_ratelimit
    for c in w.conns:
        w.feed(raw(c.raddr, SERVER, c.rport, c.lport, c.rcv_nxt + 10, 0, RST, 0))
    delta = w.server.counters.delta(before)
    assert delta.get("TcpExtTCPChallengeACK") == 10
    assert all(c.state == "ESTABLISHED" for c in w.conns)
    tally.tried("in-window RSTs (challenge ACK limit)", 24)
    tally.dropped(delta)
