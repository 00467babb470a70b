"""The scaling ratio against the host kernel (issue 12 item 3): a broker with SO_RCVBUF 102400 and
a kernel producer. Since 6.6 the receiver learns skb len/truesize per connection and, since 6.11,
moves its window clamp with it, so what the producer may send after data depends on what the
receiving driver allocated, not only on SO_RCVBUF.

Both sides are measured behind the same kind of TUN: the kernel broker sits in a second namespace
whose TUN this process feeds (the storm's kernel column topology, no link model), the modelled
broker on the lab's TUN. Plain TUN (MTU 1500): each 1448-byte segment costs 2304 bytes, ratio 160,
clamp 128000, and rcv_ssthresh stops where a queued segment leaves 126560 (field 63280). TUN with
IFF_VNET_HDR: the kernel receiver keeps GSO packets as page-backed skbs, so the ratio (252 for a
full 64 KB) lifts the clamp past 131070 and the field saturates at 65535 (window 131070) - also
what the 6.18 kernel shows over loopback (issue 12: rcv_ssthresh 162947 there). The model's
offload path is a receiver without GRO (wire segments), so it keeps the plain TUN's 126560.
Profiles without the adaptation (6.1, adv_win_scale) keep tcp_init_buffer_space's 100952."""
import os
import socket
import threading

import pytest
import trio

from tuntcp.harness import clients, netns
from tuntcp.harness.netns import Lab
from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.scenarios.storm_kernel import Relay, join_labs
from tuntcp.shell import Endpoint, open_tcp_listener
from tuntcp.shell.endpoint import encoder_for
from tuntcp.shell.saturation import Saturation
from tuntcp.shell.vnet import enable_offload

pytestmark = pytest.mark.netns

SIZE = 138 * 1448      # whole segments: no short tail segment to grow rcv_ssthresh last
PORT = 9092


def producer(lab):
    """A kernel producer in lab A: SIZE bytes, wait for "ok", then its TCP_INFO."""
    s = lab.socket_in_ns()
    s.settimeout(10)
    s.connect((lab.endpoint_addr, PORT))
    s.sendall(b"k" * SIZE)
    assert s.recv(2, socket.MSG_WAITALL) == b"ok"
    info = clients.tcp_info(s)
    s.close()
    return info


def kernel_broker(srv, out):
    """The host kernel's broker (socket made in lab B): read everything promptly, answer "ok"."""
    c, _ = srv.accept()
    got = 0
    while got < SIZE:
        got += len(c.recv(65536))
    c.sendall(b"ok")
    out.append(clients.tcp_info(c))
    c.recv(1)
    c.close()


async def run_kernel(vnet_hdr, family=4):
    v6 = family == 6
    with Lab(vnet_hdr=vnet_hdr, family=family) as lab, \
            Lab(vnet_hdr=vnet_hdr, family=family,
                client_addr=netns.ENDPOINT_ADDR6 if v6 else netns.ENDPOINT_ADDR,
                endpoint_addr=netns.CLIENT_ADDR6 if v6 else netns.CLIENT_ADDR) as lab_b:
        join_labs(lab, lab_b, str(netns.EXTRA_CLIENT_NET6 if v6 else netns.EXTRA_CLIENT_NET))
        if vnet_hdr:            # TSO/GSO frames pass through whole, as into the endpoint
            enable_offload(lab.tun_fd)
            enable_offload(lab_b.tun_fd)
        srv = lab_b.socket_in_ns()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 102400)   # before listen, as Kafka
        srv.bind((lab_b.client_addr, PORT))
        srv.listen(8)
        out = []
        t = threading.Thread(target=kernel_broker, args=(srv, out), daemon=True)
        t.start()
        relay = Relay(lab.tun_fd, lab_b.tun_fd, None, None, Saturation(rtt_ms=0.0))
        async with trio.open_nursery() as n:
            n.start_soon(relay.run)
            with trio.fail_after(20):
                cinfo = await trio.to_thread.run_sync(producer, lab)
            n.cancel_scope.cancel()
        t.join(5)
        srv.close()
        return cinfo, out[0]


async def run_model(profile, vnet_hdr, family=4):
    with Lab(vnet_hdr=vnet_hdr, family=family) as lab:
        stack = Stack(get_profile(profile), addrs={lab.endpoint_ip}, secret=os.urandom(16),
                      encoder=encoder_for(vnet_hdr))
        ep = Endpoint(stack, lab.tun_fd, offload=vnet_hdr)
        async with trio.open_nursery() as n:
            n.start_soon(ep.run)
            lst = await open_tcp_listener(ep, PORT, 8, rcvbuf=102400)
            infos = []

            async def broker():
                s = await lst.accept()
                got = 0
                while got < SIZE:
                    got += len(await s.receive_some(65536))
                await s.send_all(b"ok")
                infos.append(s.info())
                await s.receive_some(1)
                await s.aclose()
            n.start_soon(broker)
            with trio.fail_after(20):
                cinfo = await trio.to_thread.run_sync(producer, lab)
                while not infos:
                    await trio.sleep(0.01)
            n.cancel_scope.cancel()
        return cinfo, infos[0]


@pytest.mark.parametrize("vnet_hdr,family,field", [(False, 4, 63280), (True, 4, 65535), (False, 6, 62489)],
                         ids=["tun-1500", "tun-vnet-gso", "tun-1500-ipv6"])
async def test_linux_6_18_window_after_data_matches_the_host_kernel(netns_available, vnet_hdr, family,
                                                                    field):
    """IPv6: 1428-byte segments with 72 header bytes still cost 2304 (ratio 158, clamp 126400);
    the queued one leaves (204800 - 2304) * 158 >> 8 = 124978, field 62489. (No IPv6 vnet case:
    the lab's offload turns on TSO4 only, and the offload endpoint does not carry IPv6 yet.)"""
    kc, ks = await run_kernel(vnet_hdr, family)
    assert kc["snd_wscale"] == 1 and ks["rcv_wscale"] == 1
    assert kc["snd_wnd"] == field << 1, (kc["snd_wnd"], ks["rcv_ssthresh"])
    for profile in ("linux-6.18", "linux-6.12"):
        mc, ms = await run_model(profile, vnet_hdr, family)
        assert mc["snd_wscale"] == 1 and ms["rcv_wscale"] == 1
        # the clamp moved off tcp_init_buffer_space's 102400 - 1448 with the measured ratio,
        # 160 (1448 / 2304). With vnet the kernel receiver keeps each GSO packet as one skb
        # (as after GRO), so its ratio comes from 64 KB skbs: 131070. The model's offload path
        # is deliberately a receiver without GRO (a super-packet is taken as its wire segments,
        # so rcv_mss, delayed ACKs and memory stay per MSS: issue 11 item 5), so it measures
        # the plain TUN's ratio there - a stated difference, not a match.
        want = (63280 << 1) if vnet_hdr else kc["snd_wnd"]
        assert mc["snd_wnd"] == want, (profile, mc["snd_wnd"], ms["rcv_ssthresh"])
        assert ms["window_clamp"] == (128000 if family == 4 else 126400)


@pytest.mark.parametrize("vnet_hdr", [False, True], ids=["tun-1500", "tun-vnet-gso"])
async def test_profiles_without_the_ratio_keep_the_init_clamp(netns_available, vnet_hdr):
    """6.1 (adv_win_scale 1): half of 204800 less one advmss, whatever the driver allocated."""
    mc, ms = await run_model("linux-6.1", vnet_hdr)
    assert ms["window_clamp"] == 100952
    assert mc["snd_wnd"] <= 100952
