"""The listener API over two Stacks joined in memory: a dual-stack ``::`` listener shows its
IPv4 peers as IPv4-mapped addresses, its IPv6 peers as they are; IPV6_V6ONLY refuses IPv4."""
import pytest
import trio

from tuntcp.shell import open_tcp_listener, open_tcp_stream
from tuntcp.wire.ipv6 import addr_int

SRV6, CLI6 = addr_int("2001:2:0:1::1"), addr_int("2001:2::1")


def dual(memlab):
    es, ec = memlab.endpoints("linux-6.18")
    es.stack.addrs.add(SRV6)
    ec.stack.addrs.add(CLI6)
    return es, ec


async def test_dual_listener_accepts_both_families_and_maps_ipv4(memlab, autojump_clock):
    es, ec = dual(memlab)
    lst = await open_tcp_listener(es, 8080, 8, family=6)
    assert lst.v6only is False
    c4 = await open_tcp_stream(ec, "198.18.1.1", 8080)
    c6 = await open_tcp_stream(ec, "2001:2:0:1::1", 8080)
    s4, s6 = await lst.accept(), await lst.accept()
    assert s4.peer_address == ("::ffff:198.18.0.1", c4.local_address[1])
    assert s4.local_address == ("::ffff:198.18.1.1", 8080)
    assert s6.peer_address == ("2001:2::1", c6.local_address[1])
    assert c4.peer_address == ("198.18.1.1", 8080)       # the client's own socket is AF_INET
    await c4.send_all(b"v4")
    assert await s4.receive_some() == b"v4"
    for s in (c4, c6, s4, s6):
        await s.aclose()
    await lst.aclose()


async def test_v6only_listener_refuses_ipv4(memlab, autojump_clock):
    es, ec = dual(memlab)
    lst = await open_tcp_listener(es, 8080, 8, family=6, v6only=True)
    with pytest.raises(ConnectionRefusedError):
        await open_tcp_stream(ec, "198.18.1.1", 8080)
    c6 = await open_tcp_stream(ec, "2001:2:0:1::1", 8080)
    with trio.fail_after(1):
        s6 = await lst.accept()
    assert s6.peer_address[0] == "2001:2::1"
    await c6.aclose()
    await s6.aclose()
    await lst.aclose()
