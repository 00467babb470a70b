"""TcpListener under trio.serve_listeners, active open outcomes, and the control socket,
all over two real Stacks joined by the in-memory link."""
import json
import os

import pytest
import trio
import trio.testing

from tuntcp.host.stack import Stack
from tuntcp.harness.link import LinkModel
from tuntcp.obs.events import EventLog
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint, memory_pair, open_tcp_listener, open_tcp_stream
from tuntcp.shell.apps import echo, guarded, http_app
from tuntcp.shell.control import ControlError, ControlServer, request

SERVER, CLIENT = 0xC6120101, 0xC6120001



async def test_serve_listeners_echo_round_trip(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 7, 8)
    nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
    blob = bytes(range(256)) * 400        # 100 KiB: several windows' worth
    streams = [await open_tcp_stream(ec, "198.18.1.1", 7) for _ in range(3)]
    for s in streams:
        async with trio.open_nursery() as n:
            n.start_soon(s.send_all, blob)
            got = bytearray()
            while len(got) < len(blob):
                got += await s.receive_some()
        assert got == blob
        await s.send_eof()
        assert await s.receive_some() == b""      # echo half-closes after our FIN
        await s.aclose()
    assert es.stack.counters["TcpPassiveOpens"] == 3
    assert ec.stack.counters["TcpActiveOpens"] == 3


async def test_http_app_answers_and_closes(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 80, 8)
    nursery.start_soon(trio.serve_listeners, guarded(http_app("hi")), [lst])
    s = await open_tcp_stream(ec, "198.18.1.1", 80)
    await s.send_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    resp = b""
    while chunk := await s.receive_some():
        resp += chunk
    assert resp.startswith(b"HTTP/1.0 200 OK\r\n") and resp.endswith(b"\r\n\r\nhi\n")
    await s.aclose()


async def test_connect_to_closed_port_is_refused(memlab, nursery, autojump_clock):
    es, ec = memlab.endpoints()
    with pytest.raises(ConnectionRefusedError):
        await open_tcp_stream(ec, "198.18.1.1", 9999)


async def test_connect_into_the_void_times_out_after_syn_retries(nursery, autojump_clock):
    p = get_profile("linux-6.1", ["net.ipv4.tcp_syn_retries=2"])
    client = Stack(p, addrs={CLIENT}, secret=b"c" * 16)
    io_c, io_void = memory_pair()
    ec = Endpoint(client, io_c)
    nursery.start_soon(ec.run)
    t0 = trio.current_time()
    with pytest.raises(TimeoutError):
        await open_tcp_stream(ec, "198.18.1.1", 80)
    # SYN at 0, retransmits at 1 and 3 s, give up at 7 s (1 + 2 + 4)
    assert trio.current_time() - t0 == pytest.approx(7.0)
    assert len(io_void.read_batch(100)) == 3


async def test_listener_aclose_wakes_accept_with_closed(memlab, nursery, autojump_clock):
    es, _ = memlab.endpoints()
    lst = await open_tcp_listener(es, 8080, 8)

    async def closer():
        await trio.testing.wait_all_tasks_blocked()
        await lst.aclose()
    nursery.start_soon(closer)
    with pytest.raises(trio.ClosedResourceError):
        await lst.accept()
    assert es.stack.listeners == {}


async def test_lossy_delayed_link_still_delivers_in_order(nursery, autojump_clock):
    p = get_profile("linux-6.1")
    server = Stack(p, addrs={SERVER}, secret=b"s" * 16)
    client = Stack(p, addrs={CLIENT}, secret=b"c" * 16)
    io_s, io_c = memory_pair()
    lm = dict(delay=0.02, jitter=0.005, loss=0.05)
    es = Endpoint(server, io_s, link_in=LinkModel(seed=3, **lm), link_out=LinkModel(seed=4, **lm))
    ec = Endpoint(client, io_c)
    nursery.start_soon(es.run)
    nursery.start_soon(ec.run)
    lst = await open_tcp_listener(es, 7, 8)
    nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
    s = await open_tcp_stream(ec, "198.18.1.1", 7)
    blob = os.urandom(200_000)
    async with trio.open_nursery() as n:
        n.start_soon(s.send_all, blob)
        got = bytearray()
        while len(got) < len(blob):
            got += await s.receive_some()
    assert got == blob
    assert client.counters["TcpRetransSegs"] + server.counters["TcpRetransSegs"] > 0


async def test_control_socket_serves_ss_and_nstat(memlab, nursery, tmp_path):
    # real clock: the client runs in a thread, which virtual time would not wait for
    es, ec = memlab.endpoints()
    lst = await open_tcp_listener(es, 8080, 5)
    path = str(tmp_path / "lab.sock")
    ctl = ControlServer(es, path)
    await nursery.start(ctl.serve)
    await open_tcp_stream(ec, "198.18.1.1", 8080)   # completes, sits in the accept queue

    def ask(req):
        return request("lab", req, run_dir=str(tmp_path))
    lnt = (await trio.to_thread.run_sync(ask, {"cmd": "ss", "listening": True}))["text"]
    assert lnt.splitlines()[1].split() == ["LISTEN", "1", "5", "0.0.0.0:8080", "0.0.0.0:*"]
    ti = (await trio.to_thread.run_sync(ask, {"cmd": "ss", "info": True}))["text"]
    assert ti.splitlines()[1].split()[0] == "ESTAB" and "cubic wscale:7,7" in ti.splitlines()[2]
    ns = (await trio.to_thread.run_sync(ask, {"cmd": "nstat", "absolute": True}))["text"]
    assert "TcpPassiveOpens" in ns and ns.startswith("#kernel\n")
    # plain nstat shows increments since the previous call: nothing happened since
    ns2 = (await trio.to_thread.run_sync(ask, {"cmd": "nstat"}))["text"]
    assert ns2 == "#kernel\n"
    with pytest.raises(ControlError, match="unknown command"):
        await trio.to_thread.run_sync(ask, {"cmd": "reboot"})


def test_control_client_without_endpoint(tmp_path):
    with pytest.raises(ControlError, match="no endpoint named 'x' is running"):
        request("x", {"cmd": "ss"}, run_dir=str(tmp_path))


async def test_event_log_records_state_changes(nursery, tmp_path, autojump_clock):
    path = tmp_path / "ev.jsonl"
    log = EventLog(str(path))
    p = get_profile("linux-6.1")
    server = Stack(p, addrs={SERVER}, secret=b"s" * 16)
    client = Stack(p, addrs={CLIENT}, secret=b"c" * 16, log=log)
    io_s, io_c = memory_pair()
    es, ec = Endpoint(server, io_s), Endpoint(client, io_c)
    nursery.start_soon(es.run)
    nursery.start_soon(ec.run)
    await trio.sleep(3)
    await open_tcp_listener(es, 8080, 5)
    await open_tcp_stream(ec, "198.18.1.1", 8080)
    log.close()
    events = [json.loads(l) for l in path.read_text().splitlines()]
    assert events and all(set(e) >= {"t", "kind"} for e in events)
    assert all(e["t"] == 3.0 for e in events)   # the stack's now, from MockClock
    states = [(e["old"], e["new"]) for e in events if e["kind"] == "tcp_state"]
    assert ("SYN-SENT", "ESTABLISHED") in states


async def test_netstat_lan_on_a_freebsd_endpoint(memlab, nursery, tmp_path):
    es, ec = memlab.endpoints("freebsd-14")
    lst = await open_tcp_listener(es, 8080, 7)
    for _ in range(2):
        await open_tcp_stream(ec, "198.18.1.1", 8080)   # complete, never accepted
    ctl = ControlServer(es, str(tmp_path / "bsd.sock"))
    await nursery.start(ctl.serve)
    reply = await trio.to_thread.run_sync(
        lambda: request("bsd", {"cmd": "netstat"}, run_dir=str(tmp_path)))
    assert reply["text"].splitlines()[2] == f"tcp4  {'2/0/7':<32} *.8080"
