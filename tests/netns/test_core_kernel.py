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

from fixtures_endpoint import start_endpoint  # noqa: F401  (a fixture, used by name)
from fixtures_endpoint import (BOTH_FAMILIES, KClient, ans_run, kernel_connect, payload_chunks, payload_digest,
                               receive_exactly, recv_all, sock_send_all)
from tuntcp.harness.clients import tcp_info
from tuntcp.shell import open_tcp_listener

pytestmark = pytest.mark.netns

TS_LEN = 12   # the timestamp option (10 bytes + 2 NOPs) every segment carries when TS is on
MTU_MSS = {4: 1460, 6: 1440}    # 1500 - 40 / 1500 - 60


# ---- 1. handshake options ---------------------------------------------------------------------

@BOTH_FAMILIES
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
        # linux-6.1: the smallest shift that fits tcp_rmem[2] = 6 MiB into 16 bits
        assert e["rcv_wscale"] == 7 and k["rcv_wscale"] > 0
    else:
        assert (e["rcv_wscale"], e["snd_wscale"]) == (0, 0)
    tslen = TS_LEN if ts else 0
    assert k["snd_mss"] == e["advmss"] == MTU_MSS[lab.family] - tslen
    assert e["mss"] == k["advmss"] == MTU_MSS[lab.family] - tslen
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
    return stream


async def serve_seeded_source(lst, seed, nbytes):
    """Accept one stream, send the seeded payload, then close (FIN)."""
    stream = await lst.accept()
    for chunk in payload_chunks(seed, nbytes):
        await stream.send_all(chunk)
    await stream.aclose()
    return stream


async def bulk_upload(lab, ep, port, nbytes, seed, timeout):
    """A kernel client process sends `nbytes` of seeded payload; we hash what arrives."""
    lst = await open_tcp_listener(ep, port, 16)
    got_n, got_digest, streams = [], [], []
    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            n.start_soon(lambda: _keep(streams, serve_hash_sink(lst, got_n, got_digest)))
            report = await KClient(lab, "send", port, nbytes, seed).result()
    assert report["bytes"] == nbytes
    assert got_n == [nbytes] and got_digest == [report["sha256"]]
    assert report["sha256"] == payload_digest(seed, nbytes)
    # TCP_INFO counts sequence space: the kernel's SYN and FIN were acked too
    assert report["tcp_info"]["bytes_acked"] == nbytes + 2
    # ours counts payload bytes only (Linux's tcpi_bytes_received would add 1 for the FIN)
    assert streams[0].info()["bytes_received"] == nbytes
    return report


async def bulk_download(lab, ep, port, nbytes, seed, timeout):
    """We send `nbytes` of seeded payload; a kernel client process hashes what arrives."""
    lst = await open_tcp_listener(ep, port, 16)
    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            streams = []
            n.start_soon(lambda: _keep(streams, serve_seeded_source(lst, seed, nbytes)))
            report = await KClient(lab, "recv", port).result()
        conn = streams[0].conn
        while conn.state != "TIME-WAIT":      # the client's FIN, after its process closed
            await trio.sleep(0.01)
    assert report["bytes"] == nbytes
    assert report["sha256"] == payload_digest(seed, nbytes)
    # the kernel received our data and our FIN (TCP_INFO counts the FIN's sequence number);
    # ours counts payload bytes only (Linux's tcpi_bytes_acked would add 1 for the FIN)
    assert report["tcp_info"]["bytes_received"] == nbytes + 1
    assert conn.info()["bytes_acked"] == nbytes
    return report


async def _keep(box, coro):
    box.append(await coro)


MB = 1_000_000


@BOTH_FAMILIES
async def test_bulk_100mb_kernel_to_endpoint(lab, start_endpoint):
    ep = start_endpoint()
    r = await bulk_upload(lab, ep, 5001, 100 * MB, seed=1, timeout=60)
    assert ep.stats["tx_drops"] == 0
    print(f"\nkernel -> endpoint 100 MB: {r['seconds']:.2f} s = {100 / r['seconds']:.1f} MB/s")


@BOTH_FAMILIES
async def test_bulk_100mb_endpoint_to_kernel(lab, start_endpoint):
    ep = start_endpoint()
    r = await bulk_download(lab, ep, 5002, 100 * MB, seed=2, timeout=60)
    print(f"\nendpoint -> kernel 100 MB: {r['seconds']:.2f} s = {100 / r['seconds']:.1f} MB/s")
    assert ep.stats["tx_drops"] == 0


# ---- 3. the same through a lossy, reordering link -----------------------------------------------

def lossy_links(seed):
    """2 % loss each way; 2 ms +- 1 ms delay (jitter reorders) plus 3 % of packets sent ahead."""
    from tuntcp.harness.link import LinkModel
    kw = dict(delay=0.002, jitter=0.001, loss=0.02, reorder=0.03)
    return LinkModel(seed=seed, **kw), LinkModel(seed=seed + 1, **kw)


async def lossy_transfer(lab, start_endpoint, direction, nbytes, timeout):
    link_in, link_out = lossy_links(seed=7)
    ep = start_endpoint(link_in=link_in, link_out=link_out)
    t0 = trio.current_time()
    if direction == "up":
        r = await bulk_upload(lab, ep, 5003, nbytes, seed=3, timeout=timeout)
    else:
        r = await bulk_download(lab, ep, 5004, nbytes, seed=4, timeout=timeout)
    dt = trio.current_time() - t0
    data_link = link_in if direction == "up" else link_out
    assert data_link.stats["dropped"] > 0 and data_link.stats["reordered"] > 0
    print(f"\nlossy {direction} {nbytes / MB:.0f} MB: {dt:.2f} s = {nbytes / MB / dt:.1f} MB/s; "
          f"in {link_in.stats} out {link_out.stats}; client retrans {r['total_retrans']}; "
          f"endpoint: " + ", ".join(f"{k} {ep.stack.counters[k]}" for k in (
              "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPSackRecovery",
              "TcpExtTCPFastRetrans", "TcpExtTCPOFOQueue")))
    return r, ep


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_lossy_reordering_link_delivers_every_byte(lab, start_endpoint, direction):
    r, ep = await lossy_transfer(lab, start_endpoint, direction, 10 * MB, timeout=60)
    if direction == "up":
        assert r["total_retrans"] > 0     # the kernel repaired the losses
    else:
        assert ep.stack.counters["TcpRetransSegs"] > 0   # we repaired them


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["up", "down"])
async def test_lossy_reordering_link_100mb(lab, start_endpoint, direction):
    await lossy_transfer(lab, start_endpoint, direction, 100 * MB, timeout=600)


# ---- 4. hundreds of concurrent connections ------------------------------------------------------

def ss_peers(text: str, port: int) -> set[str]:
    """The client-side `addr:port` of each row of ss-style output for server port `port`."""
    out = set()
    for line in text.splitlines():
        addrs = [f for f in line.split() if f.count(":") == 1 and f[0].isdigit()]
        if len(addrs) == 2:
            peer = addrs[1] if addrs[0].endswith(f":{port}") else addrs[0]
            out.add(peer)
    return out


async def test_500_concurrent_kernel_clients_echo(lab, start_endpoint):
    """500 kernel connects in one burst: all established, and our ss view and the kernel's `ss`
    list the same 500 connections.  Then each client sends its own payload, half-closes, and
    must read exactly that back (the echo app half-closes after the client's FIN); afterwards
    the kernel holds 500 TIME-WAIT sockets and we hold nothing."""
    from tuntcp.harness.clients import connect_clients, kernel_counters
    from tuntcp.obs.views import ss_t
    from tuntcp.shell.apps import echo, guarded

    n = 500
    ep = start_endpoint()
    stack = ep.stack
    lst = await open_tcp_listener(ep, 7, 1024)
    assert lst.listener.backlog == 1024
    k_before = kernel_counters(lab)

    def payload(i):
        return b"client %04d " % i + hashlib.sha256(b"%d" % i).digest() * (1 + i % 7)

    async def round_trip(i, s, results):
        ts = trio.socket.from_stdlib_socket(s)
        await sock_send_all(ts, payload(i))
        ts.shutdown(socket.SHUT_WR)
        results[i] = await recv_all(ts, limit=len(payload(i)))

    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            socks = await connect_clients(lab, n, 7, timeout=20)
            assert [type(s) for s in socks] == [socket.socket] * n   # no refusal, no timeout
            c = stack.counters
            while c["TcpPassiveOpens"] < n:     # the last ACKs may still sit in the TUN queue
                await trio.sleep(0.01)
            assert c["TcpPassiveOpens"] == n and c["TcpCurrEstab"] == n
            assert lst.listener.queue_lengths()["accept"] == n        # nobody accepted yet
            ours = ss_t(stack)
            assert sum(line.startswith("ESTAB ") for line in ours.splitlines()) == n
            kss = await ans_run(lab, ["ss", "-tnH", "state", "established", "( dport = :7 )"])
            theirs = kss.stdout.decode()
            assert len(theirs.splitlines()) == n
            assert ss_peers(ours, 7) == ss_peers(theirs, 7) == {
                "%s:%d" % s.getsockname() for s in socks}

            nursery.start_soon(trio.serve_listeners, guarded(echo), [lst])
            results = [None] * n
            async with trio.open_nursery() as clients:
                for i, s in enumerate(socks):
                    clients.start_soon(round_trip, i, s, results)
            while stack.conns:      # the clients' last ACKs may still be in our TUN queue
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert [results[i] == payload(i) for i in range(n)] == [True] * n
    c = stack.counters
    assert c["TcpPassiveOpens"] == n and c["TcpActiveOpens"] == 0 and c["TcpCurrEstab"] == 0
    assert c["TcpExtListenOverflows"] == 0 and c["TcpExtSyncookiesSent"] == 0
    assert c["TcpEstabResets"] == 0 and c["TcpAttemptFails"] == 0 and c["TcpOutRsts"] == 0
    k = kernel_counters(lab)
    assert k["TcpActiveOpens"] - k_before["TcpActiveOpens"] == n
    assert k["TcpAttemptFails"] == k_before["TcpAttemptFails"]
    assert k["TcpEstabResets"] == k_before["TcpEstabResets"]
    tw = await ans_run(lab, ["ss", "-tnH", "state", "time-wait", "( dport = :7 )"])
    assert len(tw.stdout.decode().splitlines()) == n


# ---- 5. half-close -------------------------------------------------------------------------------

async def test_client_half_close_endpoint_still_sends(lab, start_endpoint):
    """client: send 3000 bytes, shutdown(SHUT_WR)  ->  endpoint: reads them, then b"" (EOF),
    then sends 200 kB  ->  client reads all of it, then EOF after the endpoint's close."""
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8001, 16)
    reply = bytes(range(256)) * 800
    got = []

    async def client_reads_to_eof():
        got.append(await recv_all(client))

    with trio.fail_after(20):
        client = await kernel_connect(lab, 8001)
        stream = await lst.accept()
        await sock_send_all(client, b"q" * 3000)
        client.shutdown(socket.SHUT_WR)
        assert await receive_exactly(stream, 3000) == b"q" * 3000
        assert await stream.receive_some() == b""
        assert await stream.receive_some() == b""          # EOF stays EOF
        assert stream.conn.state == "CLOSE-WAIT"
        assert tcp_info(client)["state"] in ("FIN-WAIT-1", "FIN-WAIT-2")   # our ACK may be delayed
        async with trio.open_nursery() as n:
            n.start_soon(client_reads_to_eof)
            await stream.send_all(reply)
            await stream.aclose()
    assert got == [reply]
    # the client sent the first FIN: its socket moved to TIME-WAIT (a timewait sock), the
    # user's socket is left CLOSED
    assert tcp_info(client)["state"] == "CLOSED"
    client.close()


async def test_endpoint_half_close_client_still_sends(lab, start_endpoint):
    """endpoint: send 5000 bytes, send_eof()  ->  client reads them then EOF, and can still
    send 300 kB  ->  endpoint reads all of it, then the client's FIN (b"")."""
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8002, 16)
    upload = bytes(reversed(range(256))) * 1200
    with trio.fail_after(20):
        client = await kernel_connect(lab, 8002)
        stream = await lst.accept()
        await stream.send_all(b"e" * 5000)
        await stream.send_eof()
        assert await recv_all(client) == b"e" * 5000
        assert tcp_info(client)["state"] == "CLOSE-WAIT"
        assert stream.conn.state in ("FIN-WAIT-1", "FIN-WAIT-2")   # the kernel may delay its ACK
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"late")
        async with trio.open_nursery() as n:
            n.start_soon(sock_send_all, client, upload)
            assert await receive_exactly(stream, len(upload)) == upload
        client.shutdown(socket.SHUT_WR)
        assert await stream.receive_some() == b""
        assert stream.conn.state == "TIME-WAIT"           # we sent the first FIN
        await stream.aclose()
    client.close()


# ---- 6. RST ----------------------------------------------------------------------------------------

async def test_kernel_linger0_close_breaks_the_endpoint_stream(lab, start_endpoint):
    """client: SO_LINGER 0, exchange a little, close()  ->  RST  ->  endpoint: the next
    receive_some and send_all raise BrokenResourceError."""
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8003, 16)
    with trio.fail_after(10):
        client = await kernel_connect(lab, 8003, linger0=True)
        stream = await lst.accept()
        await sock_send_all(client, b"hello")
        assert await receive_exactly(stream, 5) == b"hello"
        client.close()
        with pytest.raises(trio.BrokenResourceError):
            await stream.receive_some()
        with pytest.raises(trio.BrokenResourceError):
            await stream.send_all(b"anyone there?")
    assert stream.conn.error == "reset" and stream.conn.state == "CLOSED"
    assert ep.stack.counters["TcpEstabResets"] == 1
    await stream.aclose()


async def test_endpoint_abort_resets_the_kernel_client(lab, start_endpoint):
    """endpoint: stream.abort()  ->  RST  ->  client recv() raises ECONNRESET."""
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8004, 16)
    with trio.fail_after(10):
        client = await kernel_connect(lab, 8004)
        stream = await lst.accept()
        stream.abort()
        with pytest.raises(ConnectionResetError):
            await client.recv(100)
    assert ep.stack.counters["TcpOutRsts"] == 1
    client.close()


async def test_endpoint_close_with_unread_data_resets_the_kernel_client(lab, start_endpoint):
    """client sends 1000 bytes nobody reads; endpoint aclose()  ->  RST (not FIN), like close(2)
    with a non-empty receive queue  ->  client recv() raises ECONNRESET."""
    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 8005, 16)
    with trio.fail_after(10):
        client = await kernel_connect(lab, 8005)
        stream = await lst.accept()
        await sock_send_all(client, b"u" * 1000)
        while stream.conn.readable() < 1000:
            await trio.sleep(0.005)
        await stream.aclose()
        with pytest.raises(ConnectionResetError):
            await client.recv(100)
    c = ep.stack.counters
    assert c["TcpExtTCPAbortOnClose"] == 1 and c["TcpOutRsts"] == 1
    client.close()


async def test_connect_to_a_closed_port_is_refused(lab, start_endpoint):
    """No listener on 8006 (one exists on 8007): the kernel client's SYN gets RST+ACK."""
    ep = start_endpoint()
    await open_tcp_listener(ep, 8007, 16)
    with trio.fail_after(10):
        with pytest.raises(ConnectionRefusedError):
            await kernel_connect(lab, 8006)
    assert ep.stack.counters["TcpOutRsts"] == 1
    assert ep.stack.counters["TcpPassiveOpens"] == 0


# ---- 7. clients we did not write ---------------------------------------------------------------

async def test_curl_gets_the_http_app(lab, start_endpoint, nursery):
    from tuntcp.shell.apps import guarded, http_app

    ep = start_endpoint()
    lst = await open_tcp_listener(ep, 80, 16)
    nursery.start_soon(trio.serve_listeners, guarded(http_app("hello from the netns test")), [lst])
    with trio.fail_after(20):
        r = await ans_run(lab, ["curl", "-sS", "-m", "10", "-D", "-", "http://198.18.1.1/x"])
        head = await ans_run(lab, ["curl", "-sS", "-m", "10", "-I", "http://198.18.1.1/"])
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert text.startswith("HTTP/1.0 200 OK\r\n")
    assert "Content-Length: 26\r\n" in text
    assert text.endswith("\r\n\r\nhello from the netns test\n")
    assert head.returncode == 0 and head.stdout.decode().startswith("HTTP/1.0 200 OK\r\n")
    assert head.stdout.decode().endswith("\r\n\r\n")     # HEAD: no body
    assert ep.stack.counters["TcpPassiveOpens"] == 2


async def test_socat_file_into_sink_and_through_echo(lab, start_endpoint, nursery, tmp_path):
    """socat sends a 4 MB file into a hashing sink (byte-exact), then through the echo app
    (what comes back is the file)."""
    from tuntcp.shell.apps import echo, guarded

    data = b"".join(payload_chunks(11, 4 * MB))
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    ep = start_endpoint()
    sink = await open_tcp_listener(ep, 9, 16)
    echo_lst = await open_tcp_listener(ep, 7, 16)
    nursery.start_soon(trio.serve_listeners, guarded(echo), [echo_lst])
    got_n, got_digest = [], []
    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            n.start_soon(serve_hash_sink, sink, got_n, got_digest)
            r = await ans_run(lab, ["socat", "-u", f"FILE:{src}", "TCP:198.18.1.1:9"])
        assert r.returncode == 0, r.stderr
        assert got_n == [len(data)] and got_digest == [hashlib.sha256(data).hexdigest()]
        with open(src, "rb") as f:
            r = await ans_run(lab, ["socat", "-t", "30", "-", "TCP:198.18.1.1:7"], stdin=f)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == len(data) and r.stdout == data


# ---- 8. pcap, tcpdump, tshark, ss ------------------------------------------------------------------

def run_tool(argv):
    import subprocess
    from tuntcp.harness.netns import as_plain_user     # tcpdump drops root: not possible rootless
    return subprocess.run(as_plain_user(argv), capture_output=True, text=True, timeout=30)


async def test_pcap_reads_in_tcpdump_and_tshark_and_wscale_matches_ss(lab, start_endpoint,
                                                                      tmp_path):
    """A ping/pong exchange recorded by the endpoint's PcapWriter.  tcpdump and tshark both read
    the file and show the SYN and SYN-ACK with their options; the shifts they show, the shifts
    our stream.info() reports and the shifts the kernel client's `ss -tin` shows all agree.
    The client locks SO_RCVBUF at 300000, so it announces a smaller shift than ours."""
    from tuntcp.wire.pcap import PcapWriter

    path = tmp_path / "x.pcap"
    pcap = PcapWriter(str(path))
    ep = start_endpoint(pcap=pcap)
    lst = await open_tcp_listener(ep, 8010, 16)
    with trio.fail_after(20):
        client = await kernel_connect(lab, 8010, rcvbuf=300000)
        stream = await lst.accept()
        await sock_send_all(client, b"ping")
        assert await receive_exactly(stream, 4) == b"ping"
        await stream.send_all(b"pong")
        assert await client.recv(4) == b"pong"
        cport = client.getsockname()[1]
        ss = await ans_run(lab, ["ss", "-tinH", "state", "established",
                                 f"( sport = :{cport} )"])
        info = stream.info()
        client.close()
        assert await stream.receive_some() == b""
        await stream.aclose()
        while ep.stack.conns:           # until the client's ACK of our FIN is in
            await trio.sleep(0.01)
    pcap.flush()

    assert ss.returncode == 0, ss.stderr
    fields = [f for f in ss.stdout.decode().split() if f.startswith("wscale:")]
    assert len(fields) == 1, ss.stdout
    ss_snd, ss_rcv = map(int, fields[0][len("wscale:"):].split(","))
    # the client's snd_wscale is our rcv_wscale and vice versa
    assert (ss_snd, ss_rcv) == (info["rcv_wscale"], info["snd_wscale"])
    assert 0 < info["snd_wscale"] < info["rcv_wscale"]   # so a swapped pair would show

    dump = await trio.to_thread.run_sync(run_tool, ["tcpdump", "-nn", "-r", str(path)])
    assert dump.returncode == 0, dump.stderr
    lines = dump.stdout.splitlines()
    syn = [ln for ln in lines if "Flags [S]," in ln]
    synack = [ln for ln in lines if "Flags [S.]," in ln]
    assert len(syn) == 1 and len(synack) == 1, dump.stdout
    assert f"198.18.0.1.{cport} > 198.18.1.1.8010" in syn[0]
    assert f"198.18.1.1.8010 > 198.18.0.1.{cport}" in synack[0]
    assert "mss 1460,sackOK,TS val" in syn[0] and f"wscale {info['snd_wscale']}]" in syn[0]
    assert "mss 1460,sackOK,TS val" in synack[0] and f"wscale {info['rcv_wscale']}]" in synack[0]
    assert sum("Flags [R" in ln for ln in lines) == 0   # a clean FIN close
    assert sum("Flags [F" in ln for ln in lines) == 2

    shark = await trio.to_thread.run_sync(run_tool, ["tshark", "-n", "-r", str(path)])
    assert shark.returncode == 0, shark.stderr
    tlines = shark.stdout.splitlines()
    tsyn = [ln for ln in tlines if "[SYN]" in ln]
    tsynack = [ln for ln in tlines if "[SYN, ACK]" in ln]
    assert len(tsyn) == 1 and len(tsynack) == 1, shark.stdout
    for ln, shift in ((tsyn[0], info["snd_wscale"]), (tsynack[0], info["rcv_wscale"])):
        assert "MSS=1460" in ln and "SACK_PERM" in ln and "TSval=" in ln
        assert f"WS={1 << shift}" in ln
    assert len(tlines) == len(lines) == pcap.count


# ---- D-SACK (RFC 2883) -------------------------------------------------------------------------

async def test_duplicates_from_reordering_are_dsacked_to_the_kernel(lab, start_endpoint):
    """A reordering-only link (no loss): the kernel sender retransmits spuriously, we receive
    duplicates (TcpExtDelayedACKLost) and must tell it with D-SACK blocks, which the kernel
    counts as TcpExtTCPDSACKRecv (and uses to widen its RACK reordering window)."""
    from tuntcp.harness.clients import kernel_counters
    from tuntcp.harness.link import LinkModel

    kw = dict(delay=0.002, jitter=0.001, reorder=0.03)
    ep = start_endpoint(link_in=LinkModel(seed=5, **kw), link_out=LinkModel(seed=6, **kw))
    before = kernel_counters(lab)
    r = await bulk_upload(lab, ep, 5005, 3 * MB, seed=5, timeout=60)
    assert r["total_retrans"] > 0 and ep.stack.counters["TcpExtDelayedACKLost"] > 0
    assert kernel_counters(lab)["TcpExtTCPDSACKRecv"] > before["TcpExtTCPDSACKRecv"]
