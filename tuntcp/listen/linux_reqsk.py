"""Request socks of the Linux listener and the segments they send.

``RequestSock`` is Linux's ``tcp_request_sock`` (state TCP_NEW_SYN_RECV): what a SYN negotiated,
kept until the handshake completes or the request times out. The SYN-ACK and the SYN-RECV ACK
are built here; the listener (``linux.py``) decides when to send them.
"""
from __future__ import annotations

from ..core.window import TCP_MSS_DEFAULT, synack_window_field
from ..wire.segment import ACK, ECE, SYN, Segment, TcpOptions
from .cookies import encode_ts

TCP_MAX_WSCALE = 14
_M32 = 0xFFFFFFFF


def req_key(laddr: int, lport: int, raddr: int, rport: int) -> int:
    """The SYN-queue hash key of a 4-tuple, packed in one int (a tuple of four ints costs
    about 160 bytes per request, this about 40)."""
    return laddr << 64 | raddr << 32 | lport << 16 | rport


def _bits(shift: int, mask: int, doc: str) -> property:
    return property(lambda self: (self._imm >> shift) & mask, doc=doc)


class RequestSock:
    """A TCP_NEW_SYN_RECV request sock (``struct tcp_request_sock``).

    A SYN flood holds one per SYN, and every distinct int above 256 is a 32-byte object: the
    4-tuple is packed into the dict key (``key``) and the four 32-bit values plus the MSS into
    one int (``_imm``), read back through properties. Flags and small ints stay plain slots
    (shared objects, and the handshake reads them often).
    """

    __slots__ = ("key", "_imm", "wscale_ok", "snd_wscale", "sack_ok", "tstamp_ok", "ecn_ok",
                 "rcv_wnd", "window_clamp", "rcv_wscale", "num_timeout", "num_retrans", "acked",
                 "expires", "snt_synack", "last_oow", "alive", "tq", "queued")

    def __init__(self, laddr: int, lport: int, raddr: int, rport: int, rcv_isn: int,
                 snt_isn: int, mss: int, wscale_ok: bool, snd_wscale: int, sack_ok: bool,
                 tstamp_ok: bool, ts_recent: int, ts_off: int, ecn_ok: bool,
                 rwin: tuple[int, int, int] = (0, 0, 0)):
        self.key = req_key(laddr, lport, raddr, rport)
        self._imm = rcv_isn << 112 | snt_isn << 80 | ts_recent << 48 | ts_off << 16 | mss
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
        """(laddr, raddr, lport, rport), Segment's argument order, decoded from ``key``."""
        k = self.key
        return k >> 64, (k >> 32) & _M32, (k >> 16) & 0xFFFF, k & 0xFFFF

    laddr = property(lambda self: self.addrs()[0])
    raddr = property(lambda self: self.addrs()[1])
    lport = property(lambda self: self.addrs()[2])
    rport = property(lambda self: self.addrs()[3])
    rcv_isn = _bits(112, _M32, "the SYN's sequence number")
    snt_isn = _bits(80, _M32, "our ISN")
    ts_off = _bits(16, _M32, "our per-pair TSval offset")
    mss = _bits(0, 0xFFFF, "peer's MSS option (mss_clamp), 536 if absent")

    @property
    def ts_recent(self) -> int:
        return (self._imm >> 48) & _M32

    @ts_recent.setter
    def ts_recent(self, v: int) -> None:
        self._imm = self._imm & ~(_M32 << 48) | v << 48

    def __repr__(self) -> str:
        return (f"RequestSock({self.laddr:#x}:{self.lport} <- {self.raddr:#x}:{self.rport}, "
                f"num_timeout={self.num_timeout}, num_retrans={self.num_retrans}, "
                f"acked={self.acked}, alive={self.alive})")


def parse_syn_options(profile, opts: TcpOptions, want_cookie: bool) -> tuple:
    """``tcp_parse_options`` on a SYN plus ``tcp_conn_request``'s cookie clearing.

    Options are only honoured when their sysctl is on; the peer's shift is capped at 14. A
    cookie without client timestamps can carry nothing, so SACK and window scaling are cleared.
    -> (mss, tstamp_ok, tsval, wscale_ok, snd_wscale, sack_ok)
    """
    mss = opts.mss if opts.mss else TCP_MSS_DEFAULT
    tstamp_ok = opts.ts is not None and profile["net.ipv4.tcp_timestamps"] != 0
    tsval = opts.ts[0] if tstamp_ok else 0
    wscale_ok = opts.wscale is not None and profile["net.ipv4.tcp_window_scaling"] != 0
    snd_wscale = min(opts.wscale, TCP_MAX_WSCALE) if wscale_ok else 0
    sack_ok = opts.sack_ok and profile["net.ipv4.tcp_sack"] != 0
    if want_cookie and not tstamp_ok:
        wscale_ok, snd_wscale, sack_ok = False, 0, False
    return mss, tstamp_ok, tsval, wscale_ok, snd_wscale, sack_ok


def make_synack(stack, req: RequestSock, advmss: int, cookie: bool = False,
                no_wscale: bool = False) -> Segment:
    """``tcp_make_synack``: mss, sackOK, TS, wscale as negotiated; the window field is
    ``min(rcv_wnd, 65535)``, never scaled (RFC 7323 2.2).

    A cookie SYN-ACK carries the client's options in the low 6 bits of its TSval
    (``cookie_init_timestamp``) before our per-pair offset is added. ``no_wscale`` is the
    gVisor-style teaching contrast for cookies (no window scaling offered at all).
    """
    ts = None
    if req.tstamp_ok:
        if cookie:
            raw = encode_ts(stack.ts_now(0), req.wscale_ok, req.snd_wscale, req.sack_ok, req.ecn_ok)
            tsval = (raw + req.ts_off) & 0xFFFFFFFF
        else:
            tsval = stack.ts_now(req.ts_off)
        ts = (tsval, req.ts_recent)
    wscale = req.rcv_wscale if req.wscale_ok and not no_wscale else None
    opts = TcpOptions(mss=advmss, wscale=wscale, sack_ok=req.sack_ok, ts=ts)
    flags = SYN | ACK | (ECE if req.ecn_ok else 0)
    return Segment(*req.addrs(), seq=req.snt_isn, ack=(req.rcv_isn + 1) & 0xFFFFFFFF, flags=flags,
                   window=synack_window_field(req.rcv_wnd), options=opts)


def make_reqsk_ack(stack, req: RequestSock) -> Segment:
    """``tcp_v4_reqsk_send_ack``: the ACK a request sock sends to an out-of-window segment;
    its window is already scaled by our announced shift."""
    ts = (stack.ts_now(req.ts_off), req.ts_recent) if req.tstamp_ok else None
    return Segment(*req.addrs(), seq=(req.snt_isn + 1) & 0xFFFFFFFF,
                   ack=(req.rcv_isn + 1) & 0xFFFFFFFF, flags=ACK, window=min(req.rcv_wnd >> req.rcv_wscale, 65535),
                   options=TcpOptions(ts=ts))
