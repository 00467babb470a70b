"""Kernel TCP clients inside a lab: TCP_INFO decoding, the namespace's own MIB counters, and a
trio helper that opens many non-blocking connections at once.

`tcp_info(sock)` decodes Linux `struct tcp_info` (include/uapi/linux/tcp.h, filled by
`tcp_get_info` in net/ipv4/tcp.c).  Only fields the returned length covers are present, so an
older kernel simply yields fewer keys.  Units are the kernel's: rto/ato/rtt/rttvar/rcv_rtt/min_rtt
in microseconds, last_* in milliseconds, busy/rwnd/sndbuf_limited in microseconds.
"""
from __future__ import annotations

import errno
import socket
import struct

TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_INFO_BUFLEN = 512  # more than any kernel fills; the kernel copies min(len, sizeof)

STATES = {1: "ESTABLISHED", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
          6: "TIME-WAIT", 7: "CLOSED", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
          11: "CLOSING", 12: "NEW-SYN-RECV"}
CA_STATES = {0: "Open", 1: "Disorder", 2: "CWR", 3: "Recovery", 4: "Loss"}

TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4
TCPI_OPT_ECN = 8
TCPI_OPT_ECN_SEEN = 16
TCPI_OPT_SYN_DATA = 32

# (offset, struct code, name) after the first 8 single bytes; offsets follow the uapi layout
# (natural alignment, no padding holes).  Fields are appended over kernel versions, never moved.
_FIELDS = [
    (8, "I", "rto"), (12, "I", "ato"), (16, "I", "snd_mss"), (20, "I", "rcv_mss"),
    (24, "I", "unacked"), (28, "I", "sacked"), (32, "I", "lost"), (36, "I", "retrans"),
    (40, "I", "fackets"), (44, "I", "last_data_sent"), (48, "I", "last_ack_sent"),
    (52, "I", "last_data_recv"), (56, "I", "last_ack_recv"), (60, "I", "pmtu"),
    (64, "I", "rcv_ssthresh"), (68, "I", "rtt"), (72, "I", "rttvar"), (76, "I", "snd_ssthresh"),
    (80, "I", "snd_cwnd"), (84, "I", "advmss"), (88, "I", "reordering"), (92, "I", "rcv_rtt"),
    (96, "I", "rcv_space"), (100, "I", "total_retrans"), (104, "Q", "pacing_rate"),
    (112, "Q", "max_pacing_rate"), (120, "Q", "bytes_acked"), (128, "Q", "bytes_received"),
    (136, "I", "segs_out"), (140, "I", "segs_in"), (144, "I", "notsent_bytes"),
    (148, "I", "min_rtt"), (152, "I", "data_segs_in"), (156, "I", "data_segs_out"),
    (160, "Q", "delivery_rate"), (168, "Q", "busy_time"), (176, "Q", "rwnd_limited"),
    (184, "Q", "sndbuf_limited"), (192, "I", "delivered"), (196, "I", "delivered_ce"),
    (200, "Q", "bytes_sent"), (208, "Q", "bytes_retrans"), (216, "I", "dsack_dups"),
    (220, "I", "reord_seen"), (224, "I", "rcv_ooopack"), (228, "I", "snd_wnd"),
    (232, "I", "rcv_wnd"), (236, "I", "rehash"), (240, "H", "total_rto"),
    (242, "H", "total_rto_recoveries"), (244, "I", "total_rto_time"),
]


def decode_tcp_info(buf: bytes) -> dict:
    """Decode the bytes getsockopt(TCP_INFO) returned; only fields fully inside `buf`."""
    if len(buf) < 8:
        raise ValueError(f"tcp_info too short: {len(buf)} bytes")
    state, ca, retransmits, probes, backoff, options, wscale, flags = buf[:8]
    info = {
        "state": STATES.get(state, str(state)), "state_num": state,
        "ca_state": ca, "ca_state_name": CA_STATES.get(ca, str(ca)),
        "retransmits": retransmits, "probes": probes, "backoff": backoff, "options": options,
        "ts": bool(options & TCPI_OPT_TIMESTAMPS), "sack": bool(options & TCPI_OPT_SACK),
        "wscale_ok": bool(options & TCPI_OPT_WSCALE), "ecn": bool(options & TCPI_OPT_ECN),
        "ecn_seen": bool(options & TCPI_OPT_ECN_SEEN),
        "syn_data": bool(options & TCPI_OPT_SYN_DATA),
        # Two 4-bit fields in one byte; on little-endian bitfields the first declared
        # (snd_wscale, the peer's shift) is the low nibble.
        "snd_wscale": wscale & 0x0F, "rcv_wscale": wscale >> 4,
        "delivery_rate_app_limited": flags & 1, "fastopen_client_fail": (flags >> 1) & 3,
    }
    n = len(buf)
    for off, code, name in _FIELDS:
        size = struct.calcsize("=" + code)
        if off + size > n:
            break
        info[name] = struct.unpack_from("=" + code, buf, off)[0]
    return info


def tcp_info(sock: socket.socket) -> dict:
    """TCP_INFO of a kernel socket (any namespace), decoded; see `decode_tcp_info`."""
    return decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_BUFLEN))


def peek_error(sock) -> int:
    """What a kernel client would learn from its connection without consuming data: 0 while
    it is alive and idle, the pending errno (ECONNRESET, ECONNREFUSED, ...) once it failed,
    -1 at EOF (the peer's FIN)."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        return err
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return 0
    except OSError as e:
        return e.errno
    return -1


def set_linger0(sock: socket.socket) -> None:
    """SO_LINGER {on, 0}: close() then sends RST and frees the socket at once (no TIME-WAIT)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_mib(paths) -> dict:
    from .kstat import parse_proc_tables
    out = {}
    for path in paths:
        with open(path) as f:
            out.update(parse_proc_tables(f.read()))
    return out


def _mib_here() -> dict:
    # thread-self: /proc/self/net would show the main thread's namespace, not this thread's.
    return _read_mib(["/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"])


def kernel_counters(lab) -> dict:
    """The lab namespace's kernel MIB, nstat-named (`TcpExtSyncookiesSent`, `TcpActiveOpens`,
    ...), read from /proc inside the namespace: what the kernel *clients* counted."""
    return lab.call_in_ns(_mib_here)


async def connect_clients(lab, n: int, port: int, *, addr: str | None = None,
                          sources: list[str] | None = None, linger0: bool = False,
                          rcvbuf: int | None = None, timeout: float | None = None) -> list:
    """Open `n` kernel TCP connections from the lab namespace to `addr:port` (default: the lab's
    endpoint), all connects issued before any is awaited (a SYN burst).  `sources` are local
    addresses to bind round-robin (e.g. `lab.add_client_addrs(k)`), `linger0` makes a later
    close() send RST, `rcvbuf` sets SO_RCVBUF before connect (it shapes the SYN's window scale).

    Returns a list of `n` entries, in order: the connected socket, or the OSError the connect
    failed with (ECONNREFUSED, ETIMEDOUT, ...), or TimeoutError if `timeout` ran out first.
    Sockets are non-blocking and tracked by the lab (closed by lab.close()).
    """
    import trio

    addr = addr or lab.endpoint_addr
    socks = lab.sockets_in_ns(n)
    results: list = [None] * n
    for i, s in enumerate(socks):
        s.setblocking(False)
        if linger0:
            set_linger0(s)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sources:
            s.bind((sources[i % len(sources)], 0))
        err = s.connect_ex((addr, port))
        if err not in (0, errno.EINPROGRESS):
            results[i] = OSError(err, errno.errorcode.get(err, str(err)))

    async def finish(i, s):
        await trio.lowlevel.wait_writable(s)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        results[i] = s if err == 0 else OSError(err, errno.errorcode.get(err, str(err)))

    with trio.move_on_after(timeout if timeout is not None else float("inf")):
        async with trio.open_nursery() as nursery:
            for i, s in enumerate(socks):
                if results[i] is None:
                    nursery.start_soon(finish, i, s)
    return [r if r is not None else TimeoutError("connect did not finish in time")
            for r in results]
