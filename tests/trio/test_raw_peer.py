"""An Endpoint running a real Stack, driven by a raw-packet peer on the in-memory pipe, in
virtual time: what goes in, what must come out, and when."""
import pytest
import trio
import trio.testing

from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, memory_pair, open_tcp_listener
from tuntcp.wire import codec
from tuntcp.wire.segment import ACK, RST, SYN, Segment, TcpOptions

SERVER, CLIENT = 0xC6120101, 0xC6120001


def syn(sport=40000, seq=1000):
    return codec.build(Segment(CLIENT, SERVER, sport, 8080, seq=seq, flags=SYN, window=64240,
                               options=TcpOptions(mss=1460, sack_ok=True, wscale=7)))


async def record(peer, out):
    """Every packet the endpoint writes, parsed, with the virtual time it came out."""
    while True:
        await peer.wait_readable()
        for p in peer.read_batch(100):
            out.append((trio.current_time(), codec.parse(p)))


async def test_synack_retransmits_at_the_listeners_timer_deadlines(nursery, autojump_clock):
    stack = Stack(get_profile("linux-6.1"), addrs={SERVER}, secret=b"k" * 16)
    io, peer = memory_pair()
    ep = Endpoint(stack, io)
    nursery.start_soon(ep.run)
    await open_tcp_listener(ep, 8080, 16)
    seen = []
    nursery.start_soon(record, peer, seen)
    await trio.testing.wait_all_tasks_blocked()   # the loop's first pass is done
    peer.write(syn())
    await trio.sleep(120)
    # SYN-ACK at once, then tcp_synack_retries=5 resends, the RTO doubling from 1 s
    assert [t for t, _ in seen] == [0, 1, 3, 7, 15, 31]
    assert all(s.flags == SYN | ACK and s.ack == 1001 for _, s in seen)
    # the request is gone after the last timeout: nothing in the SYN queue
    assert stack.listeners[(0, 8080, 4)].queue_lengths()["syn"] == 0
    # the loop ran once at start, once for the SYN, once per resend and once when the request
    # expired (63 s): woken by deadlines only, no periodic tick
    assert ep.stats["batches"] == 1
    assert ep.stats["passes"] == 1 + 1 + 5 + 1


async def test_malformed_packets_are_counted_and_the_loop_goes_on(nursery, autojump_clock):
    stack = Stack(get_profile("linux-6.1"), addrs={SERVER}, secret=b"k" * 16)
    io, peer = memory_pair()
    ep = Endpoint(stack, io)
    nursery.start_soon(ep.run)
    await open_tcp_listener(ep, 8080, 16)
    seen = []
    nursery.start_soon(record, peer, seen)
    good = bytearray(syn())
    bad_csum = bytearray(good)
    bad_csum[-1] ^= 0xFF            # last option byte: the TCP checksum no longer matches
    peer.write(b"\x45\x00")          # truncated IP header
    peer.write(bytes(bad_csum))
    peer.write(bytes(good))
    await trio.testing.wait_all_tasks_blocked()
    assert stack.counters["IpInHdrErrors"] == 1
    assert stack.counters["TcpInCsumErrors"] == 1
    assert [s.flags for _, s in seen] == [SYN | ACK]


async def test_syn_to_a_closed_port_gets_a_reset_from_the_loop(nursery, autojump_clock):
    stack = Stack(get_profile("linux-6.1"), addrs={SERVER}, secret=b"k" * 16)
    io, peer = memory_pair()
    nursery.start_soon(Endpoint(stack, io).run)
    seen = []
    nursery.start_soon(record, peer, seen)
    peer.write(syn(seq=5))
    await trio.testing.wait_all_tasks_blocked()
    assert [(s.flags, s.seq, s.ack) for _, s in seen] == [(RST | ACK, 0, 6)]


async def test_views_show_a_real_request_sock_as_syn_recv(nursery, autojump_clock):
    from tuntcp.obs import views
    stack = Stack(get_profile("linux-6.1"), addrs={SERVER}, secret=b"k" * 16)
    io, peer = memory_pair()
    ep = Endpoint(stack, io)
    nursery.start_soon(ep.run)
    await open_tcp_listener(ep, 8080, 16)
    peer.write(syn(sport=40123))
    await trio.sleep(0.5)
    rows = views.ss_t(stack, listening=True).splitlines()
    assert rows[1].split() == ["LISTEN", "0", "16", "0.0.0.0:8080", "0.0.0.0:*"]
    assert rows[2].split() == ["SYN-RECV", "0", "0", "198.18.1.1:8080", "198.18.0.1:40123"]
    # first SYN-ACK resend is due 1 s after the SYN: 500 ms left, no resend yet
    assert views.syn_recv(stack, now=trio.current_time()).splitlines()[1].endswith(
        "198.18.0.1:40123 timer:(on,500ms,0)")
