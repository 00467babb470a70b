"""The sans-IO stack: demux, the deadline heap, counters, ISN/TS secrets and output queue.

The shell feeds IP packets and the current time in and takes packets out; nothing here reads a
clock or touches a socket. One ``Stack`` plays the part of one network namespace: its connection
table (``inet_lookup`` in Linux: established hash, then listeners), its MIB counters and its
secrets (``secure_tcp_seq``, ``secure_tcp_ts_off``).
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import struct

from ..obs.counters import Counters
from ..wire import codec
from ..wire.segment import ACK, RST, SYN, FIN, Segment

EPHEMERAL_LO, EPHEMERAL_HI = 32768, 60999   # net.ipv4.ip_local_port_range default

_ADDR2 = struct.Struct("!II")
_TUPLE = struct.Struct("!IHIH")


class StackError(ValueError):
    """A user mistake (port in use, unknown address): reported without a traceback."""


class Stack:
    """One TCP/IP endpoint. See docs/design.md for the contract.

    Timers: ``schedule(owner, when)`` pushes ``(when, n, owner)`` and sets ``owner.deadline``;
    an entry whose time no longer equals ``owner.deadline`` is stale and skipped (lazy deletion),
    so moving a timer costs one heap push and nothing walks all connections.
    """

    def __init__(self, profile, addrs=(), secret: bytes = b"\0" * 16, log=None, build: bool = True):
        self.profile = profile
        self.addrs = set(addrs)
        self.secret = bytes(secret)
        self._log = log
        self.build = build
        self.counters = Counters()
        self.conns: dict[tuple[int, int, int, int], object] = {}
        self.listeners: dict[tuple[int, int], object] = {}
        self.dirty: set = set()
        self.now = 0.0
        self._heap: list = []
        self._tick = itertools.count()
        self._out: list = []
        self._next_port = EPHEMERAL_LO
        self.ttl = profile.get("net.ipv4.ip_default_ttl", 64)
        self.mtu = 1500
        self._challenge_second = -1
        self._challenge_count = 0

    # ---- input -------------------------------------------------------------------------

    def receive(self, packet, now: float) -> None:
        """One IP packet from the TUN; malformed ones are counted under their reason and dropped."""
        self.counters.inc("IpInReceives")
        try:
            seg = codec.parse(packet)
        except codec.Malformed as e:
            self.counters.inc(e.reason)
            if e.reason == "TcpInCsumErrors":
                self.counters.inc("TcpInErrs")   # Linux bumps both (tcp_v4_rcv csum_error)
            return
        self.receive_segment(seg, now)

    def receive_segment(self, seg: Segment, now: float) -> None:
        """Demux like ``__inet_lookup``: 4-tuple (incl. TIME-WAIT) → listener → RST."""
        self.now = now
        c = self.counters
        if self.addrs and seg.daddr not in self.addrs:
            c.inc("IpInAddrErrors")
            return
        c["TcpInSegs"] = c.get("TcpInSegs", 0) + 1
        conn = self.conns.get((seg.daddr, seg.dport, seg.saddr, seg.sport))
        if conn is not None and conn.on_segment(seg, now):
            return
        lst = self.listeners.get((seg.daddr, seg.dport)) or self.listeners.get((0, seg.dport))
        if lst is not None:
            lst.on_segment(seg, now)
            return
        self.reset_for(seg)

    # ---- timers ------------------------------------------------------------------------

    def schedule(self, owner, when: float) -> None:
        """Arrange ``owner.on_timer(now)`` at/after ``when``; replaces owner's previous deadline."""
        owner.deadline = when
        heapq.heappush(self._heap, (when, next(self._tick), owner))

    def on_timers(self, now: float) -> None:
        """Fire every live deadline <= now (owners reschedule themselves from ``on_timer``)."""
        self.now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, owner = heapq.heappop(heap)
            if owner.deadline != when:
                continue        # stale: the owner moved or cancelled this timer
            owner.deadline = None
            owner.on_timer(now)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].deadline != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # ---- output ------------------------------------------------------------------------

    def emit(self, seg: Segment) -> None:
        """Queue one segment for output (TcpOutSegs; TcpOutRsts for RSTs, as ``tcp_v4_send_reset``)."""
        c = self.counters
        c["TcpOutSegs"] = c.get("TcpOutSegs", 0) + 1
        if seg.flags & RST:
            c.inc("TcpOutRsts")
        seg.ttl = self.ttl
        self._out.append(seg)

    def take_packets(self) -> list[bytes]:
        out, self._out = self._out, []
        if not self.build:
            raise StackError("this Stack was created with build=False: use take_segments()")
        return [codec.build(s) for s in out]

    def take_segments(self) -> list[Segment]:
        out, self._out = self._out, []
        return out

    def reset_for(self, seg: Segment) -> None:
        """RST for a segment that matched no socket (RFC 9293 3.10.7.1, ``tcp_v4_send_reset``).

        Never answer a RST. If the segment had an ACK the RST takes its sequence number from it,
        otherwise it is <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
        """
        if seg.flags & RST:
            return
        if seg.flags & ACK:
            rst = Segment(seg.daddr, seg.saddr, seg.dport, seg.sport, seq=seg.ack, flags=RST)
        else:
            rst = Segment(seg.daddr, seg.saddr, seg.dport, seg.sport, seq=0,
                          ack=(seg.seq + seg.seg_len) & 0xFFFFFFFF, flags=RST | ACK)
        self.emit(rst)

    # ---- tables ------------------------------------------------------------------------

    def register(self, conn) -> None:
        self.conns[conn.key] = conn

    def unregister(self, conn) -> None:
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]

    def listen(self, port: int, backlog: int, *, addr: int = 0, rcvbuf=None, sndbuf=None,
               defer_accept: int = 0, synack_retries=None, accept_filter=None):
        """listen(2): a Linux or FreeBSD listener (by ``profile.family``) on (addr, port)."""
        if not 0 < port < 65536:
            raise StackError(f"bad port {port}")
        if (addr, port) in self.listeners:
            raise StackError(f"address in use: port {port} already has a listener")
        kw = dict(port=port, backlog=backlog, addr=addr, rcvbuf=rcvbuf, sndbuf=sndbuf,
                  defer_accept=defer_accept, synack_retries=synack_retries)
        if self.profile.family == "freebsd":
            from ..listen.freebsd import FreeBSDListener
            lst = FreeBSDListener(self, accept_filter=accept_filter, **kw)
        else:
            if accept_filter is not None:
                raise StackError("accept filters are a FreeBSD feature; use defer_accept on Linux")
            from ..listen.linux import LinuxListener
            lst = LinuxListener(self, **kw)
        self.listeners[(addr, port)] = lst
        return lst

    def unlisten(self, lst) -> None:
        if self.listeners.get((lst.addr, lst.port)) is lst:
            del self.listeners[(lst.addr, lst.port)]

    def connect(self, laddr: int, raddr: int, rport: int, now: float, *, lport=None,
                rcvbuf=None, sndbuf=None):
        """connect(2): pick an ephemeral port if needed and send the SYN."""
        from .conn import Connection
        self.now = now
        if self.addrs and laddr not in self.addrs:
            raise StackError(f"cannot connect from {codec.ip_str(laddr)}: not an address of this stack")
        if not 0 < rport < 65536:
            raise StackError(f"bad port {rport}")
        if lport is None:
            lport = self._ephemeral(laddr, raddr, rport)
        elif (laddr, lport, raddr, rport) in self.conns:
            raise StackError(f"address in use: {laddr}:{lport} -> {raddr}:{rport}")
        return Connection.active(self, laddr, lport, raddr, rport, now, rcvbuf=rcvbuf, sndbuf=sndbuf)

    def _ephemeral(self, laddr, raddr, rport) -> int:
        span = EPHEMERAL_HI - EPHEMERAL_LO + 1
        for _ in range(span):
            p = self._next_port
            self._next_port = EPHEMERAL_LO + (p + 1 - EPHEMERAL_LO) % span
            if (laddr, p, raddr, rport) not in self.conns and (laddr, p) not in self.listeners \
                    and (0, p) not in self.listeners:
                return p
        raise StackError("no free ephemeral port (EADDRNOTAVAIL)")

    def challenge_allowed(self, now: float) -> bool:
        """The per-namespace challenge-ACK budget (``tcp_send_challenge_ack``:
        net.ipv4.tcp_challenge_ack_limit per second; the later random jitter is not modelled)."""
        sec = int(now)
        if sec != self._challenge_second:
            self._challenge_second = sec
            self._challenge_count = 0
        if self._challenge_count >= self.profile.get("net.ipv4.tcp_challenge_ack_limit", 1000):
            return False
        self._challenge_count += 1
        return True

    # ---- clocks and secrets ------------------------------------------------------------

    def log(self, kind: str, **fields) -> None:
        if self._log is not None:
            self._log(kind, t=self.now, **fields)

    def ts_now(self, ts_off: int) -> int:
        """Our TSval clock: milliseconds (``tcp_time_stamp_raw``, 1 kHz) plus the flow offset."""
        return (int(self.now * 1000) + ts_off) & 0xFFFFFFFF

    def isn(self, laddr: int, lport: int, raddr: int, rport: int) -> int:
        """``secure_tcp_seq``: keyed hash of the 4-tuple plus a 4 µs clock (RFC 6528)."""
        h = hashlib.blake2s(_TUPLE.pack(laddr, lport, raddr, rport), key=self.secret[:32],
                            digest_size=4).digest()
        return (int.from_bytes(h, "big") + int(self.now * 250_000)) & 0xFFFFFFFF

    def ts_offset(self, laddr: int, raddr: int) -> int:
        """``secure_tcp_ts_off``: per address pair with tcp_timestamps=1, 0 otherwise."""
        if self.profile.get("net.ipv4.tcp_timestamps", 1) != 1:
            return 0
        h = hashlib.blake2s(_ADDR2.pack(laddr, raddr), key=self.secret[:32], digest_size=4,
                            person=b"tsoff").digest()
        return int.from_bytes(h, "big")
