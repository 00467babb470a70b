"""Request socks of the Linux listener and the segments they send.

``RequestSock`` is Linux's ``tcp_request_sock`` (state TCP_NEW_SYN_RECV): what a SYN negotiated,
kept until the handshake completes or the request times out. The SYN-ACK and the SYN-RECV ACK
are built here; the listener (``linux.py``) decides when to send them.
"""
from __future__ import annotations

from struct import Struct

from ..core.window import TCP_MSS_DEFAULT, synack_window_field
from ..wire.ipv6 import V4_MAX
from ..wire.segment import ACK, ECE, SYN, Segment, TcpOptions

TCP_MAX_WSCALE = 14

# A SYN flood holds one request per SYN, and every distinct int above 256 is a 32-byte object:
# the 4-tuple and the four 32-bit values of a request are packed into bytes (C-speed both ways).
_KEY = Struct("!IIHH")      # laddr, raddr, lport, rport: Segment's argument order
_KEY6 = Struct("!16s16sHH")  # the same for IPv6 (36 bytes: the length tells the family)
_SEQS = Struct("!IIIIH")    # rcv_isn, snt_isn, ts_recent, ts_off, mss
_U32 = Struct("!I")



def req_key(laddr: int, raddr: int, lport: int, rport: int) -> bytes:
    """The SYN-queue hash key of a 4-tuple (48 bytes where a tuple of four ints costs about
    160; 72 for IPv6)."""
    if laddr <= V4_MAX:
        return _KEY.pack(laddr, raddr, lport, rport)
    return _KEY6.pack(laddr.to_bytes(16, "big"), raddr.to_bytes(16, "big"), lport, rport)


def key_addrs(key: bytes) -> tuple[int, int, int, int]:
    """(laddr, raddr, lport, rport) of a ``req_key``."""
    if len(key) == 12:
        return _KEY.unpack(key)
    la, ra, lp, rp = _KEY6.unpack(key)
    return int.from_bytes(la, "big"), int.from_bytes(ra, "big"), lp, rp


def _seq_field(fmt: str, offset: int, doc: str) -> property:
    one = Struct(fmt)
    return property(lambda self: one.unpack_from(self._seqs, offset)[0], doc=doc)


class RequestSock:
    """A TCP_NEW_SYN_RECV request sock (``struct tcp_request_sock``).

    The 4-tuple is the packed dict key (``key``, see ``addrs``) and the 32-bit values plus the
    MSS are packed too (``_seqs``, see ``seqs``), both read back through properties. Flags and
    small ints stay plain slots (shared objects, and the handshake reads them often).
    """

    __slots__ = ("key", "_seqs", "wscale_ok", "snd_wscale", "sack_ok", "tstamp_ok", "ecn_ok",
                 "rcv_wnd", "window_clamp", "rcv_wscale", "num_timeout", "num_retrans", "acked",
                 "expires", "snt_synack", "last_oow", "alive", "tq", "queued")

    def __init__(self, laddr: int, lport: int, raddr: int, rport: int, rcv_isn: int,
                 snt_isn: int, mss: int, wscale_ok: bool, snd_wscale: int, sack_ok: bool,
                 tstamp_ok: bool, ts_recent: int, ts_off: int, ecn_ok: bool,
                 rwin: tuple[int, int, int] = (0, 0, 0)):
        self.key = req_key(laddr, raddr, lport, rport)
        self._seqs = _SEQS.pack(rcv_isn, snt_isn, ts_recent, ts_off, mss)
        self.wscale_ok, self.snd_wscale, self.sack_ok = wscale_ok, snd_wscale, sack_ok
        self.tstamp_ok, self.ecn_ok = tstamp_ok, ecn_ok
        # tcp_openreq_init_rwin's answer (the listener caches it: shared ints)
        self.rcv_wnd, self.window_clamp, self.rcv_wscale = rwin
        self.num_timeout = 0       # timer expiries (young while 0)
        self.num_retrans = 0       # SYN-ACKs resent (timer or retransmitted SYN)
        self.acked = False
        self.expires = 0.0
        self.snt_synack = 0.0
        self.last_oow = None
        self.alive = True
        self.tq = None             # the listener's timer queue holding its live entry
        self.queued = 0            # entries of this request in that queue (see LinuxListener._arm)

    def addrs(self) -> tuple[int, int, int, int]:
        """(laddr, raddr, lport, rport), Segment's argument order."""
        return key_addrs(self.key)

    def seqs(self) -> tuple[int, int, int, int, int]:
        """(rcv_isn, snt_isn, ts_recent, ts_off, mss) in one go."""
        return _SEQS.unpack(self._seqs)

    laddr = property(lambda self: key_addrs(self.key)[0])
    raddr = property(lambda self: key_addrs(self.key)[1])
    lport = property(lambda self: key_addrs(self.key)[2])
    rport = property(lambda self: key_addrs(self.key)[3])
    rcv_isn = _seq_field("!I", 0, "the SYN's sequence number")
    snt_isn = _seq_field("!I", 4, "our ISN")
    ts_off = _seq_field("!I", 12, "our per-pair TSval offset")
    mss = _seq_field("!H", 16, "peer's MSS option (mss_clamp), 536 if absent")

    @property
    def ts_recent(self) -> int:
        return _U32.unpack_from(self._seqs, 8)[0]

    @ts_recent.setter
    def ts_recent(self, v: int) -> None:
        b = self._seqs
        self._seqs = b[:8] + _U32.pack(v) + b[12:]

    def __repr__(self) -> str:
        return (f"RequestSock({self.laddr:#x}:{self.lport} <- {self.raddr:#x}:{self.rport}, "
                f"num_timeout={self.num_timeout}, num_retrans={self.num_retrans}, "
                f"acked={self.acked}, alive={self.alive})")


def parse_syn_options(profile, opts: TcpOptions, want_cookie: bool,
                      mss_default: int = TCP_MSS_DEFAULT) -> tuple:
    """``tcp_parse_options`` on a SYN plus ``tcp_conn_request``'s cookie clearing.

    Options are only honoured when their sysctl is on; the peer's shift is capped at 14. A
    cookie without client timestamps can carry nothing, so SACK and window scaling are cleared.
    ``mss_default``: the af_ops ``mss_clamp`` when the SYN has no MSS option (536 on IPv4,
    IPV6_MIN_MTU - 60 = 1220 on IPv6, ``tcp_request_sock_ipv6_ops``).
    -> (mss, tstamp_ok, tsval, wscale_ok, snd_wscale, sack_ok)
    """
    mss = opts.mss if opts.mss else mss_default
    tstamp_ok = opts.ts is not None and profile["net.ipv4.tcp_timestamps"] != 0
    tsval = opts.ts[0] if tstamp_ok else 0
    wscale_ok = opts.wscale is not None and profile["net.ipv4.tcp_window_scaling"] != 0
    snd_wscale = min(opts.wscale, TCP_MAX_WSCALE) if wscale_ok else 0
    sack_ok = opts.sack_ok and profile["net.ipv4.tcp_sack"] != 0
    if want_cookie and not tstamp_ok:
        wscale_ok, snd_wscale, sack_ok = False, 0, False
    return mss, tstamp_ok, tsval, wscale_ok, snd_wscale, sack_ok


def make_synack(stack, req: RequestSock, advmss: int) -> Segment:
    """``tcp_make_synack`` for a request sock: mss, sackOK, TS, wscale as negotiated; the
    window field is ``min(rcv_wnd, 65535)``, never scaled (RFC 7323 2.2). (Cookie SYN-ACKs
    keep no request sock: ``LinuxListener._cookie_synack``.)"""
    rcv_isn, snt_isn, ts_recent, ts_off, _ = req.seqs()
    ts = (stack.ts_now(ts_off), ts_recent) if req.tstamp_ok else None
    wscale = req.rcv_wscale if req.wscale_ok else None
    opts = TcpOptions(mss=advmss, wscale=wscale, sack_ok=req.sack_ok, ts=ts)
    flags = SYN | ACK | (ECE if req.ecn_ok else 0)
    return Segment(*req.addrs(), seq=snt_isn, ack=(rcv_isn + 1) & 0xFFFFFFFF, flags=flags,
                   window=synack_window_field(req.rcv_wnd), options=opts)


def make_reqsk_ack(stack, req: RequestSock) -> Segment:
    """``tcp_v4_reqsk_send_ack``: the ACK a request sock sends to an out-of-window segment;
    its window is already scaled by our announced shift."""
    rcv_isn, snt_isn, ts_recent, ts_off, _ = req.seqs()
    ts = (stack.ts_now(ts_off), ts_recent) if req.tstamp_ok else None
    return Segment(*req.addrs(), seq=(snt_isn + 1) & 0xFFFFFFFF,
                   ack=(rcv_isn + 1) & 0xFFFFFFFF, flags=ACK, window=min(req.rcv_wnd >> req.rcv_wscale, 65535),
                   options=TcpOptions(ts=ts))
