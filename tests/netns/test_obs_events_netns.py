"""Events with real kernel clients: the LINE incident told by the event log.

linux-5.4, SO_RCVBUF 102400, cookies forced (tcp_syncookies=2) and the pre-909172a14974 cookie
window scale: every client's handshake is a cookie one. The log must say, per connection,
what the SYN-ACK announced (1) and what the child uses (7), and the announced value must be
the one the kernel client actually took (its TCP_INFO snd_wscale). `tuntcp events` then counts
the split. A second part overflows the accept queue (backlog 1, nobody accepting) with
cookies off and checks the SYN drops and ACK drops against the MIB counters.
"""
from __future__ import annotations

import json

import trio

from fixtures_endpoint import SECRET
from tuntcp import mib
from tuntcp.host.stack import Stack
from tuntcp.harness.clients import tcp_info
from tuntcp.obs.events import EventLog
from tuntcp.profiles import get_profile
from tuntcp.shell import Endpoint
from tuntcp.shell.listener import open_tcp_listener

PORT = 9092


def _endpoint(lab, nursery, path, profile, overrides):
    log = EventLog(str(path))
    stack = Stack(get_profile(profile, overrides), addrs={lab.endpoint_ip}, secret=SECRET, log=log)
    ep = Endpoint(stack, lab.tun_fd)
    nursery.start_soon(ep.run)
    return ep, log


async def _connect(lab, n, wait=0.5):
    """n kernel clients connecting at once; those still connecting after ``wait`` give up."""
    socks = [lab.socket_in_ns() for _ in range(n)]
    pairs = [(s, trio.socket.from_stdlib_socket(s)) for s in socks]

    async def one(ts):
        with trio.move_on_after(wait):
            await ts.connect((lab.endpoint_addr, PORT))
    async with trio.open_nursery() as n_:
        for _, ts in pairs:
            n_.start_soon(one, ts)
    return pairs


async def test_cookie_wscale_split_as_the_kernel_client_saw_it(lab, nursery, tmp_path, capsys):
    path = tmp_path / "ev.jsonl"
    ep, log = _endpoint(lab, nursery, path, "linux-5.4",
                        ["net.ipv4.tcp_syncookies=2", "model.cookie_wscale_clamp=false"])
    await open_tcp_listener(ep, PORT, 50, rcvbuf=102400)
    socks = await _connect(lab, 5)
    await trio.sleep(0.2)
    log.close()
    evs = [json.loads(x) for x in path.read_text().splitlines()]
    acc = {e["rport"]: e for e in evs if e["kind"] == "cookie_accepted"}
    assert len(acc) == 5
    for s, _ in socks:
        e = acc[s.getsockname()[1]]
        assert e["raddr"] == lab.client_addr and e["laddr"] == lab.endpoint_addr
        assert (e["announced_wscale"], e["child_wscale"]) == (1, 7)
        assert tcp_info(s)["snd_wscale"] == e["announced_wscale"]      # what the client took
        assert e["peer_wscale"] == tcp_info(s)["rcv_wscale"]          # what it announced to us
    sent = [e for e in evs if e["kind"] == "cookie_sent"]
    assert len(sent) >= 5 and all(e["opts_in_ts"] and e["wscale"] == 1 for e in sent)
    from tuntcp.cli import main
    assert main(["events", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {"path": "cookie", "announced": 1, "child": 7, "connections": 5, "mismatch": True} \
        in s["wscale"]
    assert s["kinds"]["cookie_accepted"] == s["kinds"]["accept_queued"] == 5
    for _, ts in socks:
        ts.close()


async def test_overflow_events_match_the_counters(lab, nursery, tmp_path):
    path = tmp_path / "ev.jsonl"
    ep, log = _endpoint(lab, nursery, path, "linux-6.1", ["net.ipv4.tcp_syncookies=0"])
    # backlog 2, nobody accepting, six clients at once: two request socks (the SYN queue is
    # full at 2), two children; the four SYNs resent 1 s later find room for two requests
    # (the accept queue takes backlog + 1), the first ACK fills it, the second overflows
    await open_tcp_listener(ep, PORT, 2)
    socks = await _connect(lab, 6, wait=2.5)
    log.close()
    c = ep.stack.counters
    evs = [json.loads(x) for x in path.read_text().splitlines()]
    kinds = [e["kind"] for e in evs]
    syn_drops = [e for e in evs if e["kind"] == "syn_drop"]
    ack_drops = [e for e in evs if e["kind"] == "accept_overflow"]
    assert syn_drops and ack_drops
    # every ListenOverflows is one accept-queue-full event (SYN or ACK), every ListenDrops one drop
    full = [e for e in syn_drops if e["reason"] == "accept_queue_full"]
    assert len(full) + len(ack_drops) == c[mib.TcpExtListenOverflows]
    assert len(syn_drops) + len(ack_drops) == c[mib.TcpExtListenDrops]
    assert kinds.count("synack_retransmit") == c[mib.TcpExtTCPSynRetrans]
    assert all(e["raddr"] == lab.client_addr for e in syn_drops + ack_drops)
    for _, ts in socks:
        ts.close()
