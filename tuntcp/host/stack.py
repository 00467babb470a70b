"""The host: demux, the deadline heap, counters, ISN/TS secrets and the output queue.

The shell feeds IP packets and the current time in and takes its encoder's output out; nothing
here reads a clock or touches a socket. One ``Stack`` plays the part of one network namespace:
its connection table (``inet_lookup`` in Linux: established hash, then listeners), its MIB
counters, its secrets (``secure_tcp_seq``, ``secure_tcp_ts_off``) and its passive-open
personality (``tuntcp.listen.personality``, chosen from the profile's family). Connections and
listeners see it through ``tuntcp.core.host.Host``.
"""
from __future__ import annotations

from .. import mib

import hashlib
import heapq
import itertools
import struct

from ..core.conn import Connection
from ..core.host import NET_XMIT_DROP, NET_XMIT_SUCCESS
from ..errors import StackError
from ..listen.personality import personality_for
from ..listen.shared import LocalShares
from ..mib import Counters
from ..wire import codec, ipv6
from ..wire.ipv6 import V4_MAX
from ..wire.segment import ACK, RST, Segment
from ..wire.vnet import split
from .encode import PacketEncoder

__all__ = ["Stack", "StackError"]

EPHEMERAL_LO, EPHEMERAL_HI = 32768, 60999   # net.ipv4.ip_local_port_range default

_ADDR2 = struct.Struct("!II")
_TUPLE = struct.Struct("!IHIH")
_ADDR2_6 = struct.Struct("!16s16s")
_TUPLE6 = struct.Struct("!16sH16sH")


# first octets of martian sources: zeronet, loopback, multicast (255.255.255.255 is the other)
_MARTIAN_TOP = frozenset((0, 127, *range(224, 240)))


def _martian_source(a: int) -> bool:
    """``ip_route_input_slow``'s source checks."""
    return a >> 24 in _MARTIAN_TOP or a == 0xFFFFFFFF


class Stack:
    """One TCP/IP endpoint. See docs/design.md for the contract.

    Timers: ``schedule(owner, when)`` pushes ``(when, n, owner)`` and sets ``owner.deadline``;
    an entry whose time no longer equals ``owner.deadline`` is stale and skipped (lazy deletion),
    so moving a timer costs one heap push and nothing walks all connections.
    """

    def __init__(self, profile, addrs=(), secret: bytes = b"\0" * 16, log=None, encoder=None):
        self.profile = profile
        self.addrs = set(addrs)
        self.secret = bytes(secret)
        self._log = log
        # how the output queue is encoded (the shell's choice; PacketEncoder: plain IPv4)
        self.encoder = PacketEncoder() if encoder is None else encoder
        self.offload = self.encoder.tso     # connections may send TSO segments
        self.counters = Counters()
        self.conns: dict[tuple[int, int, int, int], object] = {}
        self.listeners: dict[tuple[int, int, int], object] = {}   # (addr, port, family 4 or 6)
        self.dirty: set = set()
        self.tw_count = 0           # TIME-WAIT sockets, bounded by net.ipv4.tcp_max_tw_buckets
        self.now = 0.0
        self._heap: list = []
        self._tick = itertools.count()
        self._out: list = []
        self._next_port = EPHEMERAL_LO
        self.ttl = profile.get("net.ipv4.ip_default_ttl", 64)
        self.mtu = 1500
        # the device queue refuses every packet (a root qdisc ``pfifo limit 0``, drill/commands)
        self.txq_drop_all = False
        # IPv6 output: hop limit and flow labels (encoders build IPv6 packets through it)
        self.encoder.ip6 = ipv6.Ip6Out(profile.get("net.ipv6.conf.default.hop_limit", 64),
                                       profile.get("net.ipv6.auto_flowlabels", 1), self.secret)
        self._ts_offs: dict = {}
        self._challenge_second = -1
        self._challenge_count = 0
        self.personality = personality_for(self)    # Linux or FreeBSD passive open
        # where a Linux listener keeps the state every CPU sees (shards swap in MemShares)
        self.listen_shares = LocalShares()

    # ---- input -------------------------------------------------------------------------

    def receive(self, packet, now: float, csum_ok: bool = False, gso_size: int = 0) -> None:
        """One IP packet from the TUN; malformed ones are counted under their reason and dropped.

        ``csum_ok`` (honoured only with ``offload=True``): the kernel marked the packet
        NEEDS_CSUM/DATA_VALID, so the TCP checksum is not verified (``skb_csum_unnecessary``
        in ``tcp_checksum_complete``); unmarked packets are verified as always.
        ``gso_size``: the packet is a TSO super-packet; it is taken as the wire segments it
        stands for (``wire.vnet.split``, what ``tcp_gso_segment`` cuts), each counted and
        handled as if it had arrived alone in this batch. So rcv_mss, the per-segment truesize
        charge, delayed-ACK decisions and the counters are those of the plain path (a Linux
        receiver without GRO), and only the reads and the checksum work are saved.
        """
        c = self.counters
        try:
            seg = codec.parse(packet, not (csum_ok and self.offload))
        except codec.Malformed as e:
            # IPv6 is told apart where IPv4's version check fails: no cost on the IPv4 path
            if e.reason == mib.IpInHdrErrors and isinstance(packet, (bytes, bytearray, memoryview)) \
                    and len(packet) and packet[0] >> 4 == 6:
                self._receive6(packet, now, csum_ok, gso_size)
                return
            c[mib.IpInReceives] += 1
            c[e.reason] += 1
            if e.reason == mib.TcpInCsumErrors:
                self.counters[mib.TcpInErrs] += 1   # Linux bumps both (tcp_v4_rcv csum_error)
            return
        if gso_size and len(seg.payload) > gso_size:
            segs = split(seg, gso_size)
            c[mib.IpInReceives] += len(segs)
            for s in segs:
                self.receive_segment(s, now)
            return
        c[mib.IpInReceives] = c.get(mib.IpInReceives, 0) + 1
        self.receive_segment(seg, now)

    def _receive6(self, packet, now: float, csum_ok: bool, gso_size: int = 0) -> None:
        """``ipv6_rcv`` + ``tcp_v6_rcv`` up to the socket lookup: parse6 (its drops counted under
        their Ip6 reasons), Ip6InAddrErrors for a destination not ours, then the common demux.

        IPv4-compatible addresses (::/96, deprecated by RFC 4291) are dropped as
        TuntcpIp6CompatAddr: Linux takes them, but here an IPv4 key is an int below 2**32, so a
        ::a.b.c.d peer would share its 4-tuple with a.b.c.d."""
        c = self.counters
        c[mib.Ip6InReceives] += 1
        try:
            seg = ipv6.parse6(packet, not (csum_ok and self.offload), c)
        except codec.Malformed as e:
            c[e.reason] += 1
            if e.reason == mib.TcpInCsumErrors:
                c[mib.TcpInErrs] += 1   # tcp_v6_rcv csum_error bumps both, as IPv4
            return
        if seg.saddr <= V4_MAX or seg.daddr <= V4_MAX:
            c[mib.TuntcpIp6CompatAddr] += 1
            return
        if self.addrs and seg.daddr not in self.addrs:
            c[mib.Ip6InAddrErrors] += 1
            return
        if gso_size and len(seg.payload) > gso_size:
            segs = split(seg, gso_size)
            c[mib.Ip6InReceives] += len(segs) - 1     # the first is counted above
            for s in segs:
                self.receive_segment(s, now)
            return
        self.receive_segment(seg, now)

    def receive_segment(self, seg: Segment, now: float) -> None:
        """Demux like ``__inet_lookup``: 4-tuple (incl. TIME-WAIT) → listener → RST."""
        self.now = now
        c = self.counters
        daddr, saddr, dport = seg.daddr, seg.saddr, seg.dport
        if self.addrs and daddr not in self.addrs:
            c[mib.IpInAddrErrors] += 1
            return
        if _martian_source(saddr):
            # ip_route_input_slow: a multicast, limited-broadcast, zeronet or loopback source
            # never reaches TCP (Linux counts it only as rt_cache in_martian_src)
            c[mib.TuntcpMartianSrc] += 1
            return
        c[mib.TcpInSegs] = c.get(mib.TcpInSegs, 0) + 1
        conn = self.conns.get((daddr, dport, saddr, seg.sport))
        if conn is not None and conn.on_segment(seg, now):
            return
        lst = self.listener_for(daddr, dport)
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

    def emit(self, seg: Segment) -> int:
        """Queue one segment for output (TcpOutSegs; TcpOutRsts for RSTs, as ``tcp_v4_send_reset``).

        Returns what ``dev_queue_xmit`` would: NET_XMIT_DROP when the device queue takes
        nothing (``pfifo_enqueue`` over its limit: ``qdisc_drop``), the segment then never
        leaves. TCP counts TcpOutSegs in ``__tcp_transmit_skb`` before handing the packet down,
        so a dropped segment is counted too."""
        c = self.counters
        g = seg.gso_size     # a TSO segment counts its MSS pieces (tcp_skb_pcount)
        c[mib.TcpOutSegs] = c.get(mib.TcpOutSegs, 0) + (-(-len(seg.payload) // g) if g else 1)
        if seg.flags & RST:
            c[mib.TcpOutRsts] += 1
        if self.txq_drop_all:
            return NET_XMIT_DROP
        seg.ttl = self.ttl
        self._out.append(seg)
        return NET_XMIT_SUCCESS

    def emit_synack(self, laddr: int, raddr: int, lport: int, rport: int, seq: int, ack: int,
                    flags: int, window: int, mss: int, wscale, sack_ok: bool, ts) -> None:
        """Queue a SYN-ACK given by its fields (no Segment needed: the encoder may build it
        from a template). ``wscale``/``ts`` None: option absent. Counts TcpOutSegs."""
        c = self.counters
        c[mib.TcpOutSegs] = c.get(mib.TcpOutSegs, 0) + 1
        if self.txq_drop_all:
            return      # tcp_conn_request ignores send_synack's error: the reqsk timer resends
        self._out.append(self.encoder.synack(laddr, raddr, lport, rport, seq, ack, flags, window,
                                             mss, wscale, sack_ok, ts, self.ttl))

    def take_output(self) -> list:
        """Everything queued since the last call, in order, as the encoder makes it (IPv4
        packets, vnet frames or Segments)."""
        out = self._out
        if not out:
            return []           # the loop asks after every pass, most often for nothing
        self._out = []
        return self.encoder.encode(out)

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
        self.encoder.open(conn.key)

    def unregister(self, conn) -> None:
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]
            self.encoder.close(conn.key)

    def listener_for(self, daddr: int, dport: int):
        """The listener a segment to (daddr, dport) reaches, or None.

        ``__inet_lookup_listener``: the (daddr, port) bucket, then the wildcard one; within a
        bucket ``compute_score`` prefers an AF_INET socket (score + 1 for PF_INET) and skips an
        AF_INET6 one with ``ipv6_only_sock``. So an IPv4 segment reaches an IPv4 listener first,
        then a dual-stack ``::`` listener (one bound to an IPv6 address has no IPv4 receive
        address: ``inet6_bind``). ``inet6_lookup_listener`` takes AF_INET6 sockets only. An IPv4
        SYN on a ``::`` listener then takes the IPv4 path all through (``tcp_v6_conn_request``
        hands ETH_P_IP to ``tcp_v4_conn_request``, ``tcp_v6_syn_recv_sock`` to
        ``tcp_v4_syn_recv_sock``): IPv4 cookies, MSS and wire; only the socket API shows the
        peer as ::ffff:a.b.c.d (``ipv6_addr_set_v4mapped``, shell/listener.py).
        """
        get = self.listeners.get
        if daddr <= V4_MAX:
            lst = get((daddr, dport, 4)) or get((0, dport, 4))
            if lst is None:
                lst = get((0, dport, 6))
                if lst is not None and lst.v6only:
                    return None
            return lst
        return get((daddr, dport, 6)) or get((0, dport, 6))

    def listen(self, port: int, backlog: int, *, addr: int = 0, family: int | None = None,
               v6only: bool | None = None, rcvbuf=None, sndbuf=None, defer_accept: int = 0,
               synack_retries=None, accept_filter=None):
        """listen(2): a listener of this stack's personality (Linux or FreeBSD) on (addr, port).

        ``family`` 4 (AF_INET) or 6 (AF_INET6); None: the family of ``addr``, and for the
        wildcard the stack's (6 when every address it has is IPv6). An AF_INET6 wildcard (``::``)
        also takes IPv4 peers, as IPv4-mapped addresses on the IPv4 wire, unless ``v6only``
        (IPV6_V6ONLY); None takes the profile's default as ``inet6_create`` does
        (``sk_ipv6only = net.ipv6.bindv6only``; FreeBSD ``in6_pcballoc``: net.inet6.ip6.v6only).
        """
        if not 0 < port < 65536:
            raise StackError(f"bad port {port}")
        family = self._listen_family(addr, family)
        if family == 4:
            v6only = False
        elif v6only is None:
            p = self.profile
            v6only = bool(p.get("net.inet6.ip6.v6only", 1) if getattr(p, "family", "linux") == "freebsd"
                          else p.get("net.ipv6.bindv6only", 0))
        if self._bind_conflict(addr, port, family, v6only):
            raise StackError(f"address in use: port {port} already has a listener")
        lst = self.personality.listen(port=port, backlog=backlog, addr=addr, rcvbuf=rcvbuf,
                                      sndbuf=sndbuf, defer_accept=defer_accept,
                                      synack_retries=synack_retries, accept_filter=accept_filter)
        lst.family, lst.v6only = family, bool(v6only)
        self.listeners[(addr, port, family)] = lst
        return lst

    def _listen_family(self, addr: int, family) -> int:
        if family is None:
            if addr:
                return 6 if addr > V4_MAX else 4
            return 6 if self.addrs and all(a > V4_MAX for a in self.addrs) else 4
        if family not in (4, 6):
            raise StackError(f"family must be 4 or 6, got {family!r}")
        if family == 4 and addr > V4_MAX:
            raise StackError(f"an IPv4 listener cannot bind the IPv6 address {ipv6.addr_str(addr)}")
        if family == 6 and 0 < addr <= V4_MAX:
            raise StackError(f"an IPv6 listener binds an IPv6 address or ::, not {ipv6.addr_str(addr)}")
        if family == 6 and addr >> 32 == 0xFFFF:
            raise StackError("binding an IPv4-mapped address is not modelled: listen on :: or the IPv4 address")
        return family

    def _bind_conflict(self, addr: int, port: int, family: int, v6only: bool) -> bool:
        """``inet_csk_bind_conflict`` for listeners: the same (addr, port, family), or across
        families a dual-stack ``::`` and any IPv4 listener on the port (``inet_rcv_saddr_equal``:
        a v6 wildcard without ipv6only matches every IPv4 address)."""
        ls = self.listeners
        if (addr, port, family) in ls:
            return True
        if family == 4:
            dual = ls.get((0, port, 6))
            return dual is not None and not dual.v6only
        return addr == 0 and not v6only and any(k[1] == port and k[2] == 4 for k in ls)

    def unlisten(self, lst) -> None:
        key = (lst.addr, lst.port, lst.family)
        if self.listeners.get(key) is lst:
            del self.listeners[key]

    def connect(self, laddr: int, raddr: int, rport: int, now: float, *, lport=None,
                rcvbuf=None, sndbuf=None, user_mss=0):
        """connect(2): pick an ephemeral port if needed and send the SYN."""
        self.now = now
        if self.addrs and laddr not in self.addrs:
            raise StackError(f"cannot connect from {ipv6.addr_str(laddr)}: not an address of this stack")
        if not 0 < rport < 65536:
            raise StackError(f"bad port {rport}")
        if lport is None:
            lport = self._ephemeral(laddr, raddr, rport)
        elif (laddr, lport, raddr, rport) in self.conns:
            raise StackError(f"address in use: {laddr}:{lport} -> {raddr}:{rport}")
        return Connection.active(self, laddr, lport, raddr, rport, now, rcvbuf=rcvbuf, sndbuf=sndbuf,
                                 user_mss=user_mss)

    def _ephemeral(self, laddr, raddr, rport) -> int:
        span = EPHEMERAL_HI - EPHEMERAL_LO + 1
        for _ in range(span):
            p = self._next_port
            self._next_port = EPHEMERAL_LO + (p + 1 - EPHEMERAL_LO) % span
            if (laddr, p, raddr, rport) not in self.conns and not any(
                    (a, p, f) in self.listeners for a in (laddr, 0) for f in (4, 6)):
                return p
        raise StackError("no free ephemeral port (EADDRNOTAVAIL)")

    def advmss(self, laddr: int) -> int:
        """``tcp_mtu_to_mss`` for the interface MTU: minus 40 on IPv4, 60 on IPv6
        (``icsk_af_ops->net_header_len`` + the TCP header)."""
        return self.mtu - 40 if laddr <= V4_MAX else ipv6.mss_for_mtu6(self.mtu)

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

    @property
    def logging(self) -> bool:
        """Whether ``log`` writes anywhere: hot paths skip building an event's fields if not."""
        return self._log is not None

    def ts_now(self, ts_off: int) -> int:
        """Our TSval clock: milliseconds (``tcp_time_stamp_raw``, 1 kHz) plus the flow offset."""
        return (int(self.now * 1000) + ts_off) & 0xFFFFFFFF

    def isn(self, laddr: int, lport: int, raddr: int, rport: int) -> int:
        """``secure_tcp_seq`` / ``secure_tcpv6_seq``: keyed hash of the 4-tuple plus a 4 µs
        clock (RFC 6528)."""
        if laddr > V4_MAX:
            t = _TUPLE6.pack(laddr.to_bytes(16, "big"), lport, raddr.to_bytes(16, "big"), rport)
        else:
            t = _TUPLE.pack(laddr, lport, raddr, rport)
        h = hashlib.blake2s(t, key=self.secret[:32], digest_size=4).digest()
        return (int.from_bytes(h, "big") + int(self.now * 250_000)) & 0xFFFFFFFF

    def ts_offset(self, laddr: int, raddr: int) -> int:
        """``secure_tcp_ts_off`` (``secure_tcpv6_ts_off``): per address pair with
        tcp_timestamps=1, 0 otherwise.

        Remembered per pair (a flood from one spoofed source hashes once); the memo is
        emptied when it reaches 1024 pairs, so random sources cannot grow it."""
        if self.profile.get("net.ipv4.tcp_timestamps", 1) != 1:
            return 0
        key = (laddr, raddr)
        off = self._ts_offs.get(key)
        if off is None:
            pair = (_ADDR2_6.pack(laddr.to_bytes(16, "big"), raddr.to_bytes(16, "big"))
                    if laddr > V4_MAX else _ADDR2.pack(laddr, raddr))
            h = hashlib.blake2s(pair, key=self.secret[:32], digest_size=4, person=b"tsoff").digest()
            if len(self._ts_offs) >= 1024:
                self._ts_offs.clear()
            off = self._ts_offs[key] = int.from_bytes(h, "big")
        return off
