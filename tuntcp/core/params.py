"""What a finished handshake hands to a new connection: the negotiated state of a request sock
(Linux ``tcp_create_openreq_child``) or a FreeBSD syncache entry (``syncache_socket``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class HandshakeParams:
    laddr: int
    lport: int
    raddr: int
    rport: int
    iss: int                 # our initial sequence number (SYN-ACK seq)
    irs: int                 # peer's initial sequence number (SYN seq)
    mss: int                 # MSS we send with: peer's MSS option (536 if absent), clamped
    advmss: int              # MSS we advertised
    wscale_ok: bool
    snd_wscale: int          # peer's shift: applied to windows we receive (0 if not wscale_ok)
    rcv_wscale: int          # our shift: applied to windows we send (0 if not wscale_ok)
    sack_ok: bool
    tstamp_ok: bool
    ts_recent: int           # peer's last TSval (0 if not tstamp_ok)
    ts_off: int              # our per-flow TSval offset
    rcv_wnd: int             # window we announced in the SYN-ACK, bytes (unscaled field)
    window_clamp: int        # from tcp_select_initial_window (before tcp_init_buffer_space)
    snd_wnd: int             # peer's window from its ACK, already scaled by snd_wscale
    rcvbuf: int              # sk_rcvbuf inherited from the listener (already doubled)
    rcvbuf_locked: bool      # SOCK_RCVBUF_LOCK inherited
    sndbuf: int
    sndbuf_locked: bool
    ecn_ok: bool = False
    path: str = "synq"       # "synq" (request sock) or "cookie" (stateless) or "syncache"
    synack_retransmitted: bool = False   # RFC 6298 5.7: RTO falls back to 3 s
    rtt_sample: float | None = None      # SYN-ACK -> ACK time, seeds srtt
