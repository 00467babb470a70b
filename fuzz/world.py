"""A small world for fuzzing the receive path, shared by the atheris harnesses and the
hypothesis tests in tests/reliability.

`World()` is a server Stack (198.18.1.1) with a Linux listener on port 80 and a few connections
ESTABLISHED with a client Stack (198.18.0.1) over a perfect in-memory hand-off. `raw(...)` builds
an IPv4/TCP packet byte by byte, so headers can be wrong in every way the codec refuses (the
real codec.build cannot produce a bad IHL, data offset or checksum).

Accounting rule checked by `World.feed`: each packet fed to `Stack.receive` is counted exactly once,
either under its drop reason (the codec's Malformed reasons, IpInAddrErrors) or as TcpInSegs.
"""
from __future__ import annotations

import struct

from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.checksum import checksum, pseudo_sum, fold

SERVER = 0xC6120101   # 198.18.1.1
CLIENT = 0xC6120001   # 198.18.0.1
PORT = 80
BACKLOG = 64

# Exactly one of these moves per packet given to Stack.receive (TcpInErrs only for data
# offset < 5: a checksum error moves TcpInErrs too, and is counted by TcpInCsumErrors).
ONCE = ("IpInHdrErrors", "IpExtInTruncatedPkts", "IpReasmFails", "IpInUnknownProtos",
        "TuntcpTcpTruncated", "TcpInCsumErrors", "IpInAddrErrors", "TuntcpMartianSrc", "TcpInSegs",
        # a version nibble of 6 sends a packet down the IPv6 path, as the TUN driver does
        "Ip6InHdrErrors", "Ip6InAddrErrors", "Ip6InUnknownProtos", "Ip6InTruncatedPkts",
        "Ip6ReasmFails", "TuntcpIp6RtHdrDrop", "TuntcpIp6CompatAddr", "TuntcpIp6NoOffload")


def raw(saddr: int, daddr: int, sport: int, dport: int, seq: int = 0, ack: int = 0, flags: int = 0,
        window: int = 65535, opts: bytes = b"", payload: bytes = b"", *, ip_opts: bytes = b"",
        frag: int = 0x4000, proto: int = 6, ttl: int = 64, doff: int | None = None,
        ihl: int | None = None, tot: int | None = None, bad_ip_csum: bool = False,
        bad_tcp_csum: bool = False, urg: int = 0) -> bytes:
    """One IPv4 packet; options are padded with EOL to a multiple of 4. ``doff``/``ihl``/``tot``
    override the header fields (in 32-bit words / bytes) after the real lengths are laid out."""
    if len(opts) % 4:
        opts = opts + b"\0" * (4 - len(opts) % 4)
    if len(ip_opts) % 4:
        ip_opts = ip_opts + b"\0" * (4 - len(ip_opts) % 4)
    real_doff = 5 + len(opts) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      ((real_doff if doff is None else doff) & 15) << 4, flags & 0xFF,
                      window & 0xFFFF, 0, urg & 0xFFFF) + opts + payload
    csum = 0xFFFF - fold(pseudo_sum(saddr, daddr, len(tcp)) + _ones(tcp))
    if bad_tcp_csum:
        csum ^= 0x0101
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    real_ihl = 5 + len(ip_opts) // 4
    total = 4 * real_ihl + len(tcp) if tot is None else tot
    hdr = struct.pack("!BBHHHBBHII", 0x40 | ((real_ihl if ihl is None else ihl) & 15), 0,
                      total & 0xFFFF, 0x1234, frag & 0xFFFF, ttl & 0xFF, proto & 0xFF, 0,
                      saddr, daddr) + ip_opts
    c = checksum(hdr)
    if bad_ip_csum:
        c ^= 0x0101
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return hdr + tcp


def _ones(b: bytes) -> int:
    x = int.from_bytes(b, "big")
    if len(b) & 1:
        x <<= 8
    return x % 0xFFFF


class AccountingError(AssertionError):
    pass


class World:
    """Server stack + listener + `n_conns` established connections (accepted and held)."""

    def __init__(self, profile: str = "linux-6.1", n_conns: int = 3, overrides=()):
        self.server = Stack(get_profile(profile, list(overrides)), addrs={SERVER},
                            secret=b"fuzz-server-key!")
        self.client = Stack(get_profile(profile), addrs={CLIENT}, secret=b"fuzz-client-key!")
        self.listener = self.server.listen(PORT, BACKLOG)
        self.now = 1.0
        self.out = 0
        peers = [self.client.connect(CLIENT, SERVER, PORT, self.now) for _ in range(n_conns)]
        self._shuttle()
        self.conns = []
        while (c := self.listener.accept()) is not None:
            self.conns.append(c)
        if len(self.conns) != n_conns or any(p.state != "ESTABLISHED" for p in peers):
            raise RuntimeError("world setup: handshakes did not complete")
        self.peers = peers
        self.base_conns = len(self.server.conns)

    def _shuttle(self) -> None:
        for _ in range(10):
            a = self.client.take_output()
            b = self.server.take_output()
            if not a and not b:
                return
            for p in a:
                self.server.receive(p, self.now)
            for p in b:
                self.client.receive(p, self.now)

    def feed(self, pkt: bytes) -> list[bytes]:
        """Give one packet to the server; check the accounting rule and that every reply is a
        well-formed packet. Returns the replies."""
        c = self.server.counters
        before = [c[k] for k in ONCE]
        delivered6 = c["Ip6InDelivers"]
        errs = c["TcpInErrs"] - c["TcpInCsumErrors"]
        self.server.receive(pkt, self.now)
        moved = sum(c[k] - b for k, b in zip(ONCE, before)) + (c["TcpInErrs"] - c["TcpInCsumErrors"] - errs)
        if c["TcpInSegs"] == before[ONCE.index("TcpInSegs")]:
            # IPv6 delivered to no transport (next header 59, "no next header"): counted delivered
            moved += c["Ip6InDelivers"] - delivered6

        if moved != 1:
            raise AccountingError(f"packet counted {moved} times: {pkt.hex()}")
        out = self.server.take_output()
        for p in out:
            codec.parse(p)    # our own output must pass our own checks (raises Malformed)
        self.out += len(out)
        return out

    def tick(self, dt: float) -> None:
        self.now += dt
        self.server.on_timers(self.now)
        for p in self.server.take_output():
            codec.parse(p)

    def check_bounds(self) -> None:
        """Memory stays bounded by the listener's own limits whatever arrives: the Linux SYN
        and accept queues by the backlog, the FreeBSD syncache by its cachelimit."""
        lst = self.listener
        q = lst.queue_lengths()
        if hasattr(lst, "syncache"):
            assert lst.syncache.count <= lst.syncache.cache_limit, f"syncache {lst.syncache.count}"
        else:
            assert q["syn"] <= lst.backlog + 1, f"SYN queue {q['syn']} > backlog {lst.backlog}"
        assert q["accept"] <= lst.backlog + 1, f"accept queue {q['accept']}"
        # our established ones plus at most the accept queue's worth of children
        assert len(self.server.conns) <= self.base_conns + lst.backlog + 1, \
            f"{len(self.server.conns)} connections"
        assert len(self.server._heap) <= 64 * (len(self.server.conns) + q["syn"] + 16), \
            f"timer heap {len(self.server._heap)} entries"
