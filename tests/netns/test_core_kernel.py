"""The core endpoint against REAL kernel TCP clients in a namespace (issue 2's "done when").

Each test is a script: kernel clients (sockets in the lab namespace, client processes, curl,
socat, ss, tcpdump, tshark) on one side of the TUN, our Stack + Endpoint on the other; what goes
in, what must come out.  Integrity checks are byte-exact (sha256 over the whole stream).
"""
import hashlib
import itertools
import socket

import pytest
import trio

from fixtures_endpoint import (KClient, ans_run, kernel_connect, payload_chunks, payload_digest,
                               receive_exactly, recv_all, start_endpoint)  # noqa: F401 (fixture)
from tuntcp.harness.clients import tcp_info
from tuntcp.shell import open_tcp_listener

pytestmark = pytest.mark.netns

TS_LEN = 12   # the timestamp option (10 bytes + 2 NOPs) every segment carries when TS is on
MTU_MSS = 1460


# ---- 1. handshake options ---------------------------------------------------------------------

@pytest.mark.parametrize("ts,sack,ws", list(itertools.product((1, 0), repeat=3)))
async def test_handshake_options_agree_with_kernel_client(lab, start_endpoint, ts, sack, ws):
    """The client namespace's sysctls decide what its SYN offers; our endpoint (all three on)
    answers; both ends must then report the same negotiated options, shifts and MSS."""
    lab.sysctl("net.ipv4.tcp_timestamps", ts)
    lab.sysctl("net.ipv4.tcp_sack", sack)
    lab.sysctl("net.ipv4.tcp_window_scaling", ws)
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8000, 16)
    with trio.fail_after(10):
        client = await kernel_connect(lab, 8000)
        stream = await lst.accept()
    k, e = tcp_info(client), stream.info()
    assert k["state"] == "ESTABLISHED" and e["state"] == "ESTABLISHED"
    assert (k["ts"], k["sack"], k["wscale_ok"]) == (bool(ts), bool(sack), bool(ws))
    assert (e["ts"], e["sack"], e["wscale_ok"]) == (bool(ts), bool(sack), bool(ws))
    # snd_wscale is the peer's shift, rcv_wscale our own: they cross over.
    assert k["snd_wscale"] == e["rcv_wscale"] and k["rcv_wscale"] == e["snd_wscale"]
    if ws:
        assert e["rcv_wscale"] > 0 and k["rcv_wscale"] > 0
    else:
        assert (e["rcv_wscale"], e["snd_wscale"]) == (0, 0)
    tslen = TS_LEN if ts else 0
    assert k["snd_mss"] == e["advmss"] == MTU_MSS - tslen
    assert e["mss"] == k["advmss"] == MTU_MSS - tslen
    # and the connection works after this handshake: one round trip each way
    with trio.fail_after(10):
        await client.send(b"ping")
        assert await receive_exactly(stream, 4) == b"ping"
        await stream.send_all(b"pong")
        assert await client.recv(4) == b"pong"
    client.close()
    await stream.aclose()


# ---- 2. bulk transfer, both directions ----------------------------------------------------------

async def serve_hash_sink(lst, nbytes_box, digest_box):
    """Accept one stream, hash everything until EOF, then close (FIN)."""
    stream = await lst.accept()
    h = hashlib.sha256()
    n = 0
    while data := await stream.receive_some(1 << 20):
        h.update(data)
        n += len(data)
    nbytes_box.append(n)
    digest_box.append(h.hexdigest())
    await stream.aclose()


async def serve_seeded_source(lst, seed, nbytes):
    """Accept one stream, send the seeded payload, then close (FIN)."""
    stream = await lst.accept()
    for chunk in payload_chunks(seed, nbytes):
        await stream.send_all(chunk)
    await stream.aclose()
    return stream


async def bulk_upload(lab, ep, port, nbytes, seed, timeout):
    lst = await open_tcp_listener(ep, port, 16)
    got_n, got_digest = [], []
    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            n.start_soon(serve_hash_sink, lst, got_n, got_digest)
            report = await KClient(lab, "send", port, nbytes, seed).result()
    assert report["bytes"] == nbytes
    assert got_n == [nbytes] and got_digest == [report["sha256"]]
    assert report["sha256"] == payload_digest(seed, nbytes)
    return report


async def bulk_download(lab, ep, port, nbytes, seed, timeout):
    lst = await open_tcp_listener(ep, port, 16)
    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            n.start_soon(serve_seeded_source, lst, seed, nbytes)
            report = await KClient(lab, "recv", port).result()
    assert report["bytes"] == nbytes
    assert report["sha256"] == payload_digest(seed, nbytes)
    return report


MB = 1_000_000


async def test_bulk_100mb_kernel_to_endpoint(lab, start_endpoint):
    ep = start_endpoint()
    r = await bulk_upload(lab, ep, 5001, 100 * MB, seed=1, timeout=60)
    print(f"\nkernel -> endpoint 100 MB: {r['seconds']:.2f} s = {100 / r['seconds']:.1f} MB/s")


async def test_bulk_100mb_endpoint_to_kernel(lab, start_endpoint):
    ep = start_endpoint()
    r = await bulk_download(lab, ep, 5002, 100 * MB, seed=2, timeout=60)
    print(f"\nendpoint -> kernel 100 MB: {r['seconds']:.2f} s = {100 / r['seconds']:.1f} MB/s")
    assert ep.stats["tx_drops"] == 0
