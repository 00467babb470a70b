"""Request socks of the Linux listener and the segments they send.

``RequestSock`` is Linux's ``tcp_request_sock`` (state TCP_NEW_SYN_RECV): what a SYN negotiated,
kept until the handshake completes or the request times out. The SYN-ACK and the SYN-RECV ACK
are built here; the listener (``linux.py``) decides when to send them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.window import TCP_MSS_DEFAULT, synack_window_field
from ..wire.segment import ACK, ECE, SYN, Segment, TcpOptions
from .cookies import encode_ts

TCP_MAX_WSCALE = 14


@dataclass(slots=True, eq=False)
class RequestSock:
    """A TCP_NEW_SYN_RECV request sock (``struct tcp_request_sock``)."""

    laddr: int
    lport: int
    raddr: int
    rport: int
    rcv_isn: int
    snt_isn: int
    mss: int               # peer's MSS option (mss_clamp), 536 if absent
    wscale_ok: bool
    snd_wscale: int
    sack_ok: bool
    tstamp_ok: bool
    ts_recent: int
    ts_off: int
    ecn_ok: bool
    rcv_wnd: int = 0
    window_clamp: int = 0
    rcv_wscale: int = 0
    num_timeout: int = 0   # timer expiries (young while 0)
    num_retrans: int = 0   # SYN-ACKs resent (timer or retransmitted SYN)
    acked: bool = False
    expires: float = 0.0
    snt_synack: float = 0.0
    last_oow: float | None = None
    alive: bool = True

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.laddr, self.raddr, self.rport)


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
    return Segment(req.laddr, req.raddr, req.lport, req.rport, seq=req.snt_isn,
                   ack=(req.rcv_isn + 1) & 0xFFFFFFFF, flags=flags,
                   window=synack_window_field(req.rcv_wnd), options=opts)


def make_reqsk_ack(stack, req: RequestSock) -> Segment:
    """``tcp_v4_reqsk_send_ack``: the ACK a request sock sends to an out-of-window segment;
    its window is already scaled by our announced shift."""
    ts = (stack.ts_now(req.ts_off), req.ts_recent) if req.tstamp_ok else None
    return Segment(req.laddr, req.raddr, req.lport, req.rport,
                   seq=(req.snt_isn + 1) & 0xFFFFFFFF, ack=(req.rcv_isn + 1) & 0xFFFFFFFF,
                   flags=ACK, window=min(req.rcv_wnd >> req.rcv_wscale, 65535),
                   options=TcpOptions(ts=ts))
