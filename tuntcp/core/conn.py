"""One TCP connection, sans-IO: the RFC 9293 state machine with Linux's choices.

Every method takes ``now``; output goes through ``stack.emit`` and timers through
``stack.schedule``. The receive path is ``on_segment`` (Linux ``tcp_rcv_established`` /
``tcp_rcv_state_process``); the send path is ``_push`` (``tcp_write_xmit``). Receive-window
arithmetic lives in ``window.RecvWindow``; RTO, congestion control, reassembly and the SACK
scoreboard in their own modules.

Fast path: ``on_segment`` sends an in-order ESTABLISHED segment with only ACK/PSH and nothing
out of order to ``_fast_path`` (header prediction): ts_recent, ``_ack`` (skipped for data that
acknowledges nothing new, as Linux does), append to the receive queue, ACK decision. Everything
else takes ``_rcv_synced`` (RFC 9293 3.10.7.4 step by step).

Also modelled: tail loss probes (``_schedule_loss_probe``), HyStart input (per-ACK ca_rtt from
segment send times), idle restart, receive-buffer autotuning (``_rcv_space_adjust``).

Approximations (deliberate): the send queue is a byte stream cut at MSS (Linux keeps skbs),
or with ``Stack(offload=True)`` new data is cut into TSO segments of up to 64 KB covering what
the per-MSS cut would send (``_tso_len``) and retransmitted one MSS at a time;
after an RTO transmission goes back to snd_una (``tcp_enter_loss`` marks everything lost and
Linux resends from its queue without rewinding snd_nxt: here ``snd_max`` plays snd_nxt's part
for ACKs); loss recovery is SACK/NewReno with one retransmission per ACK; RACK only resends lost
retransmissions (no RACK time-based marking of first transmissions, so a probe that gets SACKed
does not start recovery by itself), no PRR or F-RTO; D-SACK only for duplicates below rcv_nxt;
no ECN; no keepalive; the send buffer grows by ``_sndbuf_expand`` rather
than by truesize accounting; receive-buffer autotuning (``_rcv_space_adjust``) uses Linux's
rule for every profile, FreeBSD's included (FreeBSD's own recvbuf_auto differs).

Timers: one heap entry per connection at a time. ``rtx_at`` (SYN/data retransmission,
zero-window probe or tail loss probe, ``rtx_kind`` "syn"/"rtx"/"probe"/"tlp" says which), ``dack_at`` (delayed ACK) and ``tw_at``
(TIME-WAIT / orphaned FIN-WAIT-2). Moving a timer later costs nothing: the early heap entry
fires, finds nothing due and re-arms at the real deadline.
"""
from __future__ import annotations

from .. import mib

from collections import deque

from .cc import make_cc
from .reasm import Reassembly, Scoreboard
from .rto import RtoEstimator
from .seq import HALF, MASK, seq_gt, seq_lt
from . import window as _window
from ..wire.segment import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions

MSS_DEFAULT = 536            # TCP_MSS_DEFAULT: peer sent no MSS option (RFC 9293 3.7.1)
TSO_MAX = 65536 - 1 - 320    # tcp_xmit_size_goal: GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER
MIN_MSS = 88                 # TCP_MIN_MSS
TS_LEN = 12                  # TCPOLEN_TSTAMP_ALIGNED
# SKB_TRUESIZE(advmss + MAX_TCP_HEADER) - advmss on x86-64: MAX_TCP_HEADER 320 plus
# SKB_DATA_ALIGN(sizeof(struct sk_buff)) 256 and SKB_DATA_ALIGN(sizeof(skb_shared_info)) 320
SKB_TRUESIZE_OVERHEAD = 320 + 256 + 320
PAWS_24DAYS = 24 * 86400     # TCP_PAWS_24DAYS: ts_recent older than this is not trusted
MAX_QUICKACKS = 16           # TCP_MAX_QUICKACKS

# icsk_ack.pending bits (include/net/inet_connection_sock.h)
ACK_SCHED, ACK_TIMER, ACK_PUSHED, ACK_PUSHED2, ACK_NOW = 1, 2, 4, 8, 16

SYNCED = frozenset(("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
                    "LAST-ACK", "SYN-RECV"))
CAN_SEND = frozenset(("ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "CLOSING", "LAST-ACK"))
RCV_DATA = frozenset(("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2"))


class RecvQueue:
    """The in-order receive queue: payloads kept as they arrived, joined when read. A bytearray
    with reads from the front and appends at the back copies its whole content whenever it
    grows, which costs microseconds per segment once autotuning lets megabytes queue up.
    The deque is created by the first payload: an empty one costs 760 bytes, more than the
    rest of an idle connection's receive side."""

    __slots__ = ("chunks", "n")

    def __init__(self):
        self.chunks = None
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0

    def __iadd__(self, data) -> "RecvQueue":
        if data:
            # parse() hands out read-only views of the packet, and the shell reads immutable
            # bytes: such a view is kept as it is (no copy); a view of memory that could still
            # change (a bytearray, a reused buffer) is copied
            if data.__class__ is not bytes and (data.__class__ is not memoryview or
                                                data.obj.__class__ is not bytes):
                data = bytes(data)
            chunks = self.chunks
            if chunks is None:
                chunks = self.chunks = deque()
            chunks.append(data)
            self.n += len(data)
        return self

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks) if self.chunks else b""

    def take(self, n: int) -> bytes:
        """Remove and return the first min(n, len) bytes."""
        chunks = self.chunks
        if n >= self.n:
            if not chunks:
                return b""
            data = b"".join(chunks)
            chunks.clear()              # kept: a reader that drains often would reallocate
            self.n = 0
            return data
        out = []
        need = n
        while need:
            c = chunks[0]
            if len(c) <= need:
                out.append(chunks.popleft())
                need -= len(c)
            else:
                out.append(c[:need])
                chunks[0] = c[need:]
                need = 0
        self.n -= n
        return b"".join(out)


class ConnectionStateError(ValueError):
    """An application call that the connection's state forbids (send after shutdown...)."""


def model_timeout(boundary: int, rto_base: float, rto_max: float) -> float:
    """``tcp_model_timeout``: how long ``boundary`` doubling retransmissions starting at
    ``rto_base`` take (capped at rto_max). Used by ``retransmits_timed_out`` for tcp_retries2."""
    thresh = 0
    while rto_base * (2 << thresh) <= rto_max:     # ilog2(rto_max / rto_base)
        thresh += 1
    if boundary <= thresh:
        return ((2 << boundary) - 1) * rto_base
    return ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max


class Connection:
    __slots__ = (
        "stack", "profile", "laddr", "lport", "raddr", "rport", "key", "state", "error",
        "deadline", "rtx_at", "rtx_kind", "dack_at", "tw_at", "listener", "path",
        # send side
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_window",
        "snd_wscale", "mss", "sndq", "sndbuf", "sndbuf_locked", "fin_queued", "fin_seq",
        "snd_sml", "nodelay", "dupacks", "recover", "in_recovery", "retx_nxt", "cc", "rto",
        "sb", "rtt_seq", "rtt_time", "retrans_stamp", "retransmits", "probes_out",
        "retrans_out", "total_retrans", "syn_retrans", "reordering", "undo_cwnd",
        "undo_ssthresh", "retx_tsval", "dsack", "retx_list",
        # receive side
        "irs", "rcv_nxt", "rcvq", "reasm", "win", "rcvbuf", "rcvbuf_locked", "rcv_wscale",
        "advmss", "rcv_mss", "fin_rcvd", "ofo_fin",
        # options
        "wscale_ok", "sack_ok", "ts_ok", "ts_recent", "ts_recent_stamp", "ts_off", "last_oow",
        # delayed ACK (icsk_ack)
        "ack_pending", "quick", "pingpong", "ato", "lrcvtime", "last_seg_size",
        # bookkeeping
        "app_closed", "bytes_sent", "bytes_acked", "bytes_received", "segs_out", "segs_in",
        "lastsnd", "lastrcv", "lastack", "_init_rcv_wnd", "_init_clamp",
        # congestion-control inputs: send time of each new-data segment, last data send
        "tx_times", "lsndtime",
        # receive-buffer autotuning: receiver RTT estimate (rcv_rtt_est), rcvq_space, copied_seq
        "rcv_rtt", "rcv_rtt_seq", "rcv_rtt_time", "rcv_rtt_last_tsecr",
        "rcvq_space", "rcvq_seq", "rcvq_time", "copied",
        # tail loss probe; loss_high: snd_max at the last RTO while in the Loss state
        "tlp_high_seq", "tlp_retrans", "tlp_rto_at", "last_new_seq", "loss_high",
        # profile values read per segment (the profile is immutable)
        "_delack_min", "_delack_max", "_pp_thresh_v", "_wmem_max", "_tlp_ok", "_rto_min",
    )

    def __init__(self, stack, laddr: int, lport: int, raddr: int, rport: int, now: float):
        p = stack.profile
        self.stack = stack
        self.profile = p
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.key = (laddr, lport, raddr, rport)
        self.state = "CLOSED"
        self.error = None
        self.deadline = None
        self.rtx_at = self.dack_at = self.tw_at = None
        self.rtx_kind = None
        self.listener = None
        self.path = "active"
        self.iss = self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = self.snd_wl1 = self.snd_wl2 = self.max_window = 0
        self.snd_wscale = self.rcv_wscale = 0
        self.mss = MSS_DEFAULT
        self.sndq = bytearray()
        self.sndbuf = p["net.ipv4.tcp_wmem"][1]
        self.sndbuf_locked = False
        self.fin_queued = False
        self.fin_seq = None
        self.snd_sml = 0
        self.nodelay = False
        self.dupacks = 0
        self.recover = 0
        self.in_recovery = False
        self.retx_nxt = 0
        self.cc = None
        self.rto = RtoEstimator(p["model.rto_initial"], p["model.rto_min"], p["model.rto_max"])
        self.sb = Scoreboard()
        self.rtt_seq = None
        self.rtt_time = 0.0
        self.retrans_stamp = None
        self.retransmits = 0
        self.probes_out = 0
        self.retrans_out = 0
        self.total_retrans = 0
        self.syn_retrans = False
        self.reordering = p.get("net.ipv4.tcp_reordering", 3)
        self.undo_cwnd = self.undo_ssthresh = 0
        self.retx_tsval = None
        self.dsack = None
        self.retx_list = []          # [seq, end, snd_max then, time] of this recovery's retransmits
        self.irs = self.rcv_nxt = 0
        self.rcvq = RecvQueue()
        self.reasm = Reassembly()
        self.win = None
        self.rcvbuf = p["net.ipv4.tcp_rmem"][1]
        self.rcvbuf_locked = False
        self.advmss = stack.mtu - 40
        self.rcv_mss = MSS_DEFAULT
        self.fin_rcvd = False
        self.ofo_fin = None
        self.wscale_ok = self.sack_ok = self.ts_ok = False
        self.ts_recent = 0
        self.ts_recent_stamp = now
        self.ts_off = 0
        self.last_oow = -1.0
        self.ack_pending = 0
        self.quick = 0
        self.pingpong = 0
        self.ato = 0.0
        self.lrcvtime = now
        self.last_seg_size = 0
        self.app_closed = False
        self.bytes_sent = self.bytes_acked = self.bytes_received = 0
        self.segs_out = self.segs_in = 0
        self.lastsnd = self.lastrcv = self.lastack = now
        self.tx_times = None         # deque of [end_seq, sent at or None once retransmitted]
                                     # (+ start seq for a TSO segment), made on first send
        self.lsndtime = now
        self.rcv_rtt = 0.0           # smoothed receiver-side RTT, s (rcv_rtt_est.rtt_us >> 3)
        self.rcv_rtt_seq = 0
        self.rcv_rtt_time = None
        self.rcv_rtt_last_tsecr = 0
        self.rcvq_space = 0
        self.rcvq_seq = 0
        self.rcvq_time = now
        self.copied = 0              # bytes the application has read (copied_seq)
        self.tlp_high_seq = None     # snd_nxt when the outstanding probe went out
        self.tlp_retrans = False
        self.tlp_rto_at = None       # where the RTO stands while the probe timer is armed
        self.last_new_seq = 0        # start of the last new-data segment (the "last skb")
        self.loss_high = None
        self._delack_min = p["model.delack_min"]
        self._delack_max = p["model.delack_max"]
        self._pp_thresh_v = p.get("net.ipv4.tcp_pingpong_thresh", 1)
        self._wmem_max = p["net.ipv4.tcp_wmem"][2]
        self._tlp_ok = p.family == "linux" and p["net.ipv4.tcp_early_retrans"] in (3, 4)
        self._rto_min = p["model.rto_min"]
        self._init_rcv_wnd = 0
        self._init_clamp = 0

    # ================================================================== creation

    @classmethod
    def active(cls, stack, laddr, lport, raddr, rport, now, *, rcvbuf=None, sndbuf=None):
        """connect(2): ``tcp_v4_connect`` → ``tcp_connect_init`` → ``tcp_connect``.

        The SYN carries mss, sackOK, TS, wscale as the profile allows (tcp_sack,
        tcp_timestamps, tcp_window_scaling). Our window in the SYN is never scaled (RFC 7323
        2.2). ``tcp_connect_init`` clamps window_clamp to the full space when SO_RCVBUF is set.
        """
        c = cls(stack, laddr, lport, raddr, rport, now)
        p = c.profile
        if rcvbuf is not None:
            c.set_rcvbuf(rcvbuf)
        if sndbuf is not None:
            c.set_sndbuf(sndbuf)
        c.ts_off = stack.ts_offset(laddr, raddr)
        c.iss = stack.isn(laddr, lport, raddr, rport)
        c.snd_una = c.iss
        c.snd_nxt = c.snd_max = (c.iss + 1) & MASK
        c.snd_sml = c.iss
        space = _window.full_space(p, c.rcvbuf)
        clamp = space if c.rcvbuf_locked else 0
        c.wscale_ok = bool(p.get("net.ipv4.tcp_window_scaling", 1))
        c._init_rcv_wnd, c._init_clamp, c.rcv_wscale = _window.select_initial_window(
            p, space, c.advmss, clamp, c.wscale_ok)
        c.state = "SYN-SENT"
        stack.register(c)
        stack.counters[mib.TcpActiveOpens] += 1
        c._send_syn(now, ack=False)
        c.retrans_stamp = None
        c.rtt_time = now
        c._arm_rtx(now + c.rto.rto, "syn")
        return c

    def _syn_options(self, now) -> TcpOptions:
        """Our SYN / SYN-ACK options (``tcp_syn_options``): the codec lays them out like Linux."""
        p = self.profile
        o = TcpOptions(mss=self.advmss)
        if self.state == "SYN-SENT":
            if p.get("net.ipv4.tcp_sack", 1):
                o.sack_ok = True
            if p.get("net.ipv4.tcp_timestamps", 1):
                o.ts = (self.stack.ts_now(self.ts_off), 0)
            if self.wscale_ok:
                o.wscale = self.rcv_wscale
        else:    # simultaneous open: answer with what both sides offered
            o.sack_ok = self.sack_ok
            if self.ts_ok:
                o.ts = (self.stack.ts_now(self.ts_off), self.ts_recent)
            if self.wscale_ok:
                o.wscale = self.rcv_wscale
        return o

    def _send_syn(self, now, ack: bool) -> None:
        seg = Segment(self.laddr, self.raddr, self.lport, self.rport, seq=self.iss,
                      ack=self.rcv_nxt if ack else 0, flags=SYN | ACK if ack else SYN,
                      window=min(self._init_rcv_wnd, 65535), options=self._syn_options(now))
        self.segs_out += 1
        self.lastsnd = now
        self.stack.emit(seg)

    @classmethod
    def from_handshake(cls, stack, params, now, listener=None):
        """A child socket from a finished passive handshake (``tcp_create_openreq_child``,
        then ``tcp_init_transfer``/``tcp_init_buffer_space`` inside RecvWindow).

        ``params.mss`` is the option-level MSS; like Linux (``tcp_sync_mss``) the TS option's
        12 bytes come off both the send MSS and advmss when timestamps are on. If the SYN-ACK
        was retransmitted and there is no RTT sample, the RTO falls back to 3 s (RFC 6298 5.7).
        """
        c = cls(stack, params.laddr, params.lport, params.raddr, params.rport, now)
        c.listener = listener
        c.path = params.path
        c.iss, c.irs = params.iss, params.irs
        c.snd_una = c.snd_nxt = c.snd_max = (params.iss + 1) & MASK
        c.snd_sml = c.snd_una
        c.rcv_nxt = (params.irs + 1) & MASK
        c.wscale_ok = params.wscale_ok
        c.snd_wscale, c.rcv_wscale = params.snd_wscale, params.rcv_wscale
        c.sack_ok, c.ts_ok = params.sack_ok, params.tstamp_ok
        c.ts_recent, c.ts_off = params.ts_recent, params.ts_off
        c.rcvbuf, c.rcvbuf_locked = params.rcvbuf, params.rcvbuf_locked
        c.sndbuf, c.sndbuf_locked = params.sndbuf, params.sndbuf_locked
        tslen = TS_LEN if c.ts_ok else 0
        c.mss = max(min(params.mss, stack.mtu - 40) - tslen, MIN_MSS)
        c.advmss = params.advmss - tslen
        c.snd_wnd = c.max_window = params.snd_wnd
        c.snd_wl1, c.snd_wl2 = c.rcv_nxt, c.snd_una
        c.win = _window.RecvWindow(
            c.profile, rcvbuf=c.rcvbuf, rcvbuf_locked=c.rcvbuf_locked, rcv_wscale=c.rcv_wscale,
            window_clamp=params.window_clamp, rcv_wnd=params.rcv_wnd, advmss=c.advmss,
            rcv_nxt=c.rcv_nxt)
        c._init_rcv_mss()
        c._init_rcvq_space(now)
        c.cc = make_cc(c.profile.get("net.ipv4.tcp_congestion_control", "cubic"), c.mss)
        if params.rtt_sample is not None and not params.synack_retransmitted:
            c.rto.sample(params.rtt_sample)
        else:
            c.rto.fallback()
        c.state = "ESTABLISHED"
        stack.counters[mib.TcpPassiveOpens] += 1   # tcp_create_openreq_child
        stack.counters[mib.TcpCurrEstab] += 1
        stack.register(c)
        return c

    def _init_rcvq_space(self, now: float) -> None:
        """``tcp_init_buffer_space``'s autotuning start: the first measurement compares
        against min(rcv_ssthresh, rcv_wnd, TCP_INIT_CWND * advmss)."""
        win = self.win
        self.rcvq_space = min(win.rcv_ssthresh, win.rcv_wnd, 10 * self.advmss)
        self.rcvq_seq = self.copied
        self.rcvq_time = now

    def _init_rcv_mss(self) -> None:
        """``tcp_initialize_rcv_mss``: a conservative first guess of the peer's MSS."""
        hint = min(self.advmss, self.mss, self.win.rcv_wnd // 2, MSS_DEFAULT)
        self.rcv_mss = max(hint, MIN_MSS)

    # ================================================================== application API

    def send_space(self) -> int:
        """Free payload room in the send buffer: ``sk_stream_wspace`` with truesize ≈ 2x."""
        if self.state not in CAN_SEND or self.fin_queued:
            return 0
        return max(self.sndbuf // 2 - len(self.sndq), 0)

    def send(self, data, now: float) -> int:
        """write(2): take what fits, then ``tcp_push`` (Nagle applies unless nodelay)."""
        self.stack.now = now
        if self.error:
            raise ConnectionStateError(f"send on a connection that failed: {self.error}")
        if self.fin_queued or self.state in ("CLOSED", "TIME-WAIT"):
            raise ConnectionStateError(f"send after shutdown/close (state {self.state})")
        if self.state not in CAN_SEND:
            return 0
        n = min(len(data), self.send_space())
        if n:
            if self.snd_una == self.snd_max and self.cc is not None:
                self._idle_restart(now)
            self.sndq += data[:n]
            self._push(now)
        return n

    def _idle_restart(self, now: float) -> None:
        """``tcp_slow_start_after_idle_check`` (when data is queued with nothing in flight,
        net.ipv4.tcp_slow_start_after_idle=1): after more than an RTO without sending data,
        ``tcp_cwnd_restart`` halves cwnd per RTO of idleness, down to the initial window
        (RFC 5681 4.1, RFC 2861)."""
        if not self.profile.get("net.ipv4.tcp_slow_start_after_idle", 1):
            return
        idle = now - self.lsndtime
        if idle > self.rto.rto:
            self.cc.cwnd_restart(idle, self.rto.rto)

    def readable(self) -> int:
        return len(self.rcvq)

    def at_eof(self) -> bool:
        return self.fin_rcvd and not self.rcvq

    def recv(self, max_bytes: int, now: float) -> bytes:
        """read(2): copy out, then ``tcp_cleanup_rbuf`` decides whether an ACK goes now."""
        self.stack.now = now
        q = self.rcvq
        if not q:
            return b""
        n = min(max_bytes, len(q))
        data = q.take(n)
        self.copied += n
        if self.win is not None:
            self._rcv_space_adjust(now)
        self._cleanup_rbuf(n, now)
        return data

    def _rcv_space_adjust(self, now: float) -> None:
        """``tcp_rcv_space_adjust`` (dynamic right-sizing), after each read: once per receiver
        RTT, compare the bytes the application copied with the previous RTT's (rcvq_space).
        If more, and net.ipv4.tcp_moderate_rcvbuf=1 and SO_RCVBUF was not set (a locked buffer,
        like the Kafka broker's, never grows): want a window of 2 * copied + 16 * advmss, plus
        twice its relative growth (sender in slow start), turn it into buffer space and grow
        sk_rcvbuf to that (at most tcp_rmem[2]); window_clamp follows (win_from_space).
        Buffer per window: adv_win_scale kernels (4.19-6.5) charge whole segments of
        SKB_TRUESIZE(advmss + MAX_TCP_HEADER) rounded up until one holds advmss; 6.6+
        (``tcp_space_from_win``) divide by the scaling ratio."""
        if self.rcv_rtt <= 0 or now - self.rcvq_time < self.rcv_rtt:
            return
        copied = self.copied - self.rcvq_seq
        space = self.rcvq_space
        if copied > space:
            win = self.win
            p = self.profile
            if p.get("net.ipv4.tcp_moderate_rcvbuf", 1) and not self.rcvbuf_locked and space:
                advmss = self.advmss
                rcvwin = 2 * copied + 16 * advmss
                rcvwin += 2 * (rcvwin * (copied - space) // space)
                if p["model.win_from_space"] == "scaling_ratio":
                    want = (rcvwin << 8) // p["model.scaling_ratio"]
                else:
                    rcvmem = advmss + SKB_TRUESIZE_OVERHEAD
                    while _window.win_from_space(p, rcvmem) < advmss:
                        rcvmem += 128
                    want = rcvwin // advmss * rcvmem
                rcvbuf = min(want, p["net.ipv4.tcp_rmem"][2])
                if rcvbuf > win.rcvbuf:
                    self.rcvbuf = win.rcvbuf = rcvbuf     # grows without locking
                    win.window_clamp = _window.win_from_space(p, rcvbuf)
            self.rcvq_space = copied
        self.rcvq_seq = self.copied
        self.rcvq_time = now

    def shutdown_write(self, now: float) -> None:
        """shutdown(SHUT_WR): FIN after queued data (``tcp_shutdown`` → ``tcp_send_fin``)."""
        self.stack.now = now
        st = self.state
        if st in ("SYN-SENT",):
            self._done("CLOSED")
            return
        if self.fin_queued or st not in ("ESTABLISHED", "CLOSE-WAIT", "SYN-RECV"):
            return
        self.fin_queued = True
        self.fin_seq = (self.snd_una + len(self.sndq)) & MASK
        self._set_state("FIN-WAIT-1" if st in ("ESTABLISHED", "SYN-RECV") else "LAST-ACK")
        self._push(now)

    def close(self, now: float) -> None:
        """close(2) (``tcp_close``): unread data → RST (RFC 9293 3.10.4, TcpExtTCPAbortOnClose);
        otherwise FIN, and the socket becomes an orphan that drops later data with a RST."""
        self.stack.now = now
        if self.state == "CLOSED":
            return
        self.app_closed = True
        if self.rcvq:
            self.stack.counters[mib.TcpExtTCPAbortOnClose] += 1
            self._send_rst(now)
            self._done("CLOSED")
            return
        if self.state == "SYN-SENT":
            self._done("CLOSED")
            return
        self.shutdown_write(now)
        if self.state == "FIN-WAIT-2":
            self._arm_tw(now + self.profile.get("net.ipv4.tcp_fin_timeout", 60))

    def abort(self, now: float) -> None:
        """SO_LINGER 0 close (``tcp_disconnect``): RST in synchronized states
        (``tcp_need_reset``), counted TcpExtTCPAbortOnData as Linux does."""
        self.stack.now = now
        if self.state == "CLOSED":
            return
        self.app_closed = True
        if self.state in SYNCED:
            self.stack.counters[mib.TcpExtTCPAbortOnData] += 1
            self._send_rst(now)
        self._done("CLOSED")

    def set_rcvbuf(self, n: int) -> None:
        """SO_RCVBUF: ``sock_set_rcvbuf`` (limit rmem_max, double, lock)."""
        self.rcvbuf = _window.sock_set_rcvbuf(self.profile, n)
        self.rcvbuf_locked = True
        if self.win is not None:
            self.win.set_rcvbuf(n)          # applies the same limit-and-double itself

    def set_sndbuf(self, n: int) -> None:
        """SO_SNDBUF (``sock_setsockopt``): limited by wmem_max, doubled, floored, locked."""
        self.sndbuf = _window.sock_set_sndbuf(self.profile, n)
        self.sndbuf_locked = True

    # ================================================================== timers

    def _wake(self, when: float) -> None:
        if self.deadline is None or when < self.deadline:
            self.stack.schedule(self, when)

    def _arm_rtx(self, when: float, kind: str) -> None:
        self.rtx_at = when
        self.rtx_kind = kind
        self._wake(when)

    def _arm_tw(self, when: float) -> None:
        self.tw_at = when
        self._wake(when)

    def on_timer(self, now: float) -> None:
        self.stack.now = now
        if self.dack_at is not None and self.dack_at <= now:
            self.dack_at = None
            self._delack_timer(now)
        if self.rtx_at is not None and self.rtx_at <= now:
            self.rtx_at = None
            kind = self.rtx_kind
            if kind == "syn":
                self._syn_timer(now)
            elif kind == "probe":
                self._probe_timer(now)
            elif kind == "tlp":
                self._send_loss_probe(now)
            else:
                self._rtx_timer(now)
        if self.tw_at is not None and self.tw_at <= now:
            self.tw_at = None
            if self.state == "TIME-WAIT":
                self.stack.counters[mib.TcpExtTW] += 1
            self._done("CLOSED")
            return
        nxt = min((t for t in (self.dack_at, self.rtx_at, self.tw_at) if t is not None), default=None)
        if nxt is not None and self.state != "CLOSED":
            self._wake(nxt)

    def _syn_timer(self, now: float) -> None:
        """SYN (or simultaneous-open SYN-ACK) retransmission (``tcp_retransmit_timer`` in
        SYN_SENT, ``tcp_write_timeout``): give up after tcp_syn_retries (+ tcp_syn_linear_timeouts
        on 6.5+) retransmissions; the first linear_timeouts backoffs keep the RTO."""
        p = self.profile
        linear = p.get("net.ipv4.tcp_syn_linear_timeouts", 0)
        if self.retransmits >= p["net.ipv4.tcp_syn_retries"] + linear:
            self.error = "timeout"
            self._done("CLOSED")
            return
        self.syn_retrans = True
        self.stack.counters[mib.TcpExtTCPTimeouts] += 1
        self.stack.counters[mib.TcpRetransSegs] += 1
        self.stack.counters[mib.TcpExtTCPSynRetrans] += 1
        self.total_retrans += 1
        self._send_syn(now, ack=self.state == "SYN-RECV")
        self.retransmits += 1
        if self.retransmits > linear:
            self.rto.backoff()
        self._arm_rtx(now + self.rto.rto, "syn")

    def _rtx_timer(self, now: float) -> None:
        """RTO (``tcp_retransmit_timer``, RFC 6298 5.4-5.6): give up when tcp_retries2 worth of
        backoff has elapsed (``retransmits_timed_out`` with ``tcp_model_timeout``); otherwise
        enter loss (cwnd 1), go back to snd_una and back the timer off."""
        if self.snd_una == self.snd_max:
            return
        p = self.profile
        c = self.stack.counters
        retries = p["net.ipv4.tcp_retries2"]
        if self.app_closed and self.state in ("FIN-WAIT-1", "CLOSING", "LAST-ACK"):
            retries = p.get("net.ipv4.tcp_orphan_retries", 0) or 8   # tcp_orphan_retries 0 means 8
        if self.retransmits and now - self.retrans_stamp >= model_timeout(
                retries, p["model.rto_min"], p["model.rto_max"]) - 1e-9:
            c[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done("CLOSED")
            return
        c[mib.TcpExtTCPTimeouts] += 1
        inflight = self._inflight_segs()
        self.cc.on_timeout(inflight, repeat=self.retransmits > 0)
        self.in_recovery = False
        self.dupacks = 0
        self.sb.clear()     # Linux keeps SACK marks on RTO only when it trusts them; we do not
        self.retx_list.clear()
        if self.retrans_stamp is None:
            # Linux keeps the head skb's first send time; the timer was armed one RTO ago
            self.retrans_stamp = now - self.rto.rto
        self.retransmits += 1
        self.rtt_seq = None            # Karn: no sample from retransmitted data
        self.tx_times = None
        self.tlp_high_seq = None
        self.loss_high = self.snd_max  # TCP_CA_Loss until this is ACKed: no loss probes
        self.snd_nxt = self.snd_una    # go back N: mark everything lost (tcp_enter_loss)
        self.rto.backoff()
        self._push(now, head=True)
        self._arm_rtx(now + self.rto.rto, "rtx")

    def _probe_timer(self, now: float) -> None:
        """Zero-window probe (``tcp_probe_timer`` → ``tcp_send_probe0`` → ``tcp_write_wakeup``):
        send what fits in the window if it opened, else an old-sequence probe (TcpExtTCPWinProbe);
        back off; give up after tcp_retries2 unanswered probes."""
        if self.snd_una != self.snd_max or self.state not in CAN_SEND or not self._pending():
            return
        if self.probes_out >= self.profile["net.ipv4.tcp_retries2"]:
            self.stack.counters[mib.TcpExtTCPAbortOnTimeout] += 1
            self.error = "timeout"
            self._done("CLOSED")
            return
        self.probes_out += 1
        wnd_room = self.snd_wnd - ((self.snd_nxt - self.snd_una) & MASK)
        if wnd_room > 0 and self._pending():
            self._push(now, wakeup=min(wnd_room, self.mss))
        else:
            self.stack.counters[mib.TcpExtTCPWinProbe] += 1
            self._send_ack(now, seq=(self.snd_una - 1) & MASK)
        if self.snd_una == self.snd_max:
            self._arm_rtx(now + min(self.rto.rto * (1 << min(self.probes_out, 20)),
                                    self.rto.rto_max), "probe")

    # ================================================================== receive path

    def on_segment(self, seg: Segment, now: float) -> bool:
        """Entry point from the stack's demux. False = not ours after all (a SYN that may
        reopen a TIME-WAIT pair goes on to the listener)."""
        self.segs_in += 1
        self.lastrcv = now
        st = self.state
        if st == "ESTABLISHED" and seg.flags & (SYN | RST | FIN) == 0 and seg.seq == self.rcv_nxt \
                and not seg.options.sack_blocks and not self.reasm.blocks:
            self._fast_path(seg, now)
        elif st == "SYN-SENT":
            self._rcv_synsent(seg, now)
        elif st == "TIME-WAIT":
            return self._rcv_timewait(seg, now)
        elif st == "CLOSED":
            return False
        else:
            self._rcv_synced(seg, now)
        return True

    def _paws_reject(self, seg: Segment, now: float) -> bool:
        """PAWS (RFC 7323 5, ``tcp_paws_discard``): TSval older than ts_recent by more than 1 →
        TcpExtPAWSEstab and a duplicate ACK (unless RST)."""
        ts = seg.options.ts
        if not self.ts_ok or ts is None:
            return False
        if self._ts_acceptable(ts[0], now, 1):
            return False
        d = (self.ts_recent - ts[0]) & MASK
        if not self._disordered_ack(seg, d):
            if not seg.flags & RST:
                self.stack.counters[mib.TcpExtPAWSEstab] += 1
                self._send_dupack(seg, now)
            return True
        return False

    def _disordered_ack(self, seg: Segment, d: int) -> bool:
        """``tcp_disordered_ack``: a reordered pure duplicate ACK (seq == rcv_nxt, ack ==
        snd_una, no window change) is let through PAWS if its TSval is at most ~RTO old."""
        return (seg.flags & (SYN | FIN | RST)) == 0 and not seg.payload and \
            seg.seq == self.rcv_nxt and seg.ack == self.snd_una and \
            seg.window << self.snd_wscale == self.snd_wnd and d <= self.rto.rto * 1000

    def _ts_acceptable(self, tsval: int, now: float, paws_win: int) -> bool:
        """``tcp_paws_check``: TSval at most ``paws_win`` older than ts_recent, or ts_recent
        is 0 (some peers' SYNs carry 0), or ts_recent is older than TCP_PAWS_24DAYS."""
        d = (self.ts_recent - tsval) & MASK
        if d >= HALF:
            d -= 1 << 32                  # (s32)(ts_recent - tsval)
        return d <= paws_win or not self.ts_recent or now - self.ts_recent_stamp >= PAWS_24DAYS

    def _replace_ts_recent(self, seg: Segment, now: float) -> None:
        """``tcp_replace_ts_recent`` (RFC 7323 4.3), called by ``tcp_ack`` once the segment
        passed the window check and its ACK is neither old nor for unsent data: remember the
        TSval if the segment covers rcv_wup (seq <= rcv_wup, the last ACK we sent) and the
        TSval is not older than ts_recent (``tcp_paws_check`` with window 0). PAWS lets a TSval
        one tick older through; that one must not move ts_recent back."""
        ts = seg.options.ts
        if ts is None or not self.ts_ok or seq_gt(seg.seq, self.win.rcv_wup):
            return
        if self._ts_acceptable(ts[0], now, 0):
            self.ts_recent = ts[0]            # tcp_store_ts_recent
            self.ts_recent_stamp = now

    def _fast_path(self, seg: Segment, now: float) -> None:
        """Header prediction (``tcp_rcv_established`` fast path): in-order segment, ACK only
        (maybe PSH), no SACK, nothing out of order. Pure ACKs and in-order data land here.
        A TSval older than ts_recent goes to the slow path, as in Linux; otherwise it is
        stored when rcv_nxt == rcv_wup (``tcp_store_ts_recent``)."""
        if not seg.flags & ACK:
            return
        ts = seg.options.ts
        if self.ts_ok and ts is not None:
            if (ts[0] - self.ts_recent) & HALF:           # (s32)(tsval - ts_recent) < 0
                self._rcv_synced(seg, now)
                return
            if self.rcv_nxt == self.win.rcv_wup:
                self.ts_recent = ts[0]
                self.ts_recent_stamp = now
        payload = seg.payload
        c = self.stack.counters
        if payload:
            if seg.ack == self.snd_una and self.tlp_high_seq is None and \
                    seg.window << self.snd_wscale == self.snd_wnd:
                self.snd_wl1 = seg.seq     # nothing new acknowledged: tcp_update_wl only
            elif not self._ack(seg, now) or self.state == "CLOSED":
                return
            c[mib.TcpExtTCPHPHits] = c.get(mib.TcpExtTCPHPHits, 0) + 1
            if ts is not None and ts[1] != self.rcv_rtt_last_tsecr:
                self._rcv_rtt_measure_ts(seg)
            n = len(payload)
            rcv_nxt = self.rcv_nxt
            if 0 < n <= self.win.current(rcv_nxt):     # _data's in-order case, inlined
                self.rcvq += payload
                self.rcv_nxt = (rcv_nxt + n) & MASK
                self.bytes_received += n
                self._event_data_recv(seg, n, now)
                self.stack.dirty.add(self)
            else:
                self._data(seg, now)
        else:
            if not self._ack(seg, now) or self.state == "CLOSED":
                return
            c[mib.TcpExtTCPHPAcks] = c.get(mib.TcpExtTCPHPAcks, 0) + 1
            if ts is not None:
                self.rcv_rtt_last_tsecr = ts[1]
        # _after_input
        if self.sndq or self.fin_queued:
            if self.state in CAN_SEND and self._pending():
                self._push(now)
        if self.ack_pending & ACK_SCHED:
            self._ack_snd_check(now)

    def _rcv_synced(self, seg: Segment, now: float) -> None:
        """Synchronized states (RFC 9293 3.10.7.4; ``tcp_validate_incoming`` then ``tcp_ack``,
        ``tcp_data_queue``, ``tcp_fin``)."""
        flags = seg.flags
        st = self.state
        if self._paws_reject(seg, now):
            return
        # 1. sequence acceptability (tcp_sequence): not wholly left of rcv_wup, not right of window
        rwin = self.win.current(self.rcv_nxt) if self.win else 0
        end = (seg.seq + seg.seg_len) & MASK
        if seq_lt(end, self.win.rcv_wup if self.win else self.rcv_nxt) or \
                seq_gt(seg.seq, (self.rcv_nxt + rwin) & MASK):
            if not flags & RST:
                if flags & SYN:
                    self._syn_challenge(now)
                elif not self._oow_limited(seg, now, mib.TcpExtTCPACKSkippedSeq):
                    self._send_dupack(seg, now)
            return
        # 2. RST (RFC 5961 3.2): exact match resets, otherwise challenge ACK
        if flags & RST:
            if seg.seq == self.rcv_nxt or (seg.seq == (self.rcv_nxt - 1) & MASK and
                                           st in ("CLOSE-WAIT", "LAST-ACK", "CLOSING")):
                self._reset(now)
            else:
                self._challenge_ack(now)
            return
        # 3. SYN in a synchronized state (RFC 5961 4): challenge ACK
        if flags & SYN:
            if st == "SYN-RECV" and seg.seq == self.irs and flags & ACK and seg.ack == self.snd_nxt:
                pass    # the peer's SYN-ACK of a simultaneous open (tcp_validate_incoming)
            elif st == "SYN-RECV" and seg.seq == self.irs:
                self._send_syn(now, ack=True)      # our SYN-ACK was lost: resend it
                return
            else:
                self._syn_challenge(now)
                return
        # 4. ACK
        if not flags & ACK:
            return
        if st == "SYN-RECV":
            if not (seq_gt(seg.ack, self.snd_una) and not seq_gt(seg.ack, self.snd_max)):
                self._send_rst_for(seg)
                return
            self._established_from_synrecv(seg, now)
        if not seq_lt(seg.ack, self.snd_una) and not seq_gt(seg.ack, self.snd_max):
            self._replace_ts_recent(seg, now)
        if not self._ack(seg, now):
            return
        if self.state == "CLOSED":
            return
        # 5. data and FIN
        st = self.state
        if seg.payload:
            self._rcv_rtt_measure_ts(seg)
        if seg.payload or flags & FIN:
            if st in RCV_DATA:
                if self.app_closed and seg.payload and seq_gt(
                        (end - (1 if flags & FIN else 0)) & MASK, self.rcv_nxt):
                    # RFC 1122 4.2.2.13: data for a closed socket → RST (tcp_rcv_state_process)
                    self.stack.counters[mib.TcpExtTCPAbortOnData] += 1
                    self._send_rst(now)
                    self._done("CLOSED")
                    return
                self._data(seg, now)
            elif flags & FIN and seg.seq == (self.rcv_nxt - 1) & MASK or seq_lt(seg.seq, self.rcv_nxt):
                self._schedule_ack(ACK_NOW)   # retransmitted FIN or old data: re-ACK
        self._after_input(now)

    def _after_input(self, now: float) -> None:
        """``tcp_data_snd_check`` + ``tcp_ack_snd_check``: send what the ACK allowed, then
        decide between an immediate and a delayed ACK."""
        if self.state in CAN_SEND and self._pending():
            self._push(now)
        if self.ack_pending & ACK_SCHED:
            self._ack_snd_check(now)

    def _established_from_synrecv(self, seg: Segment, now: float) -> None:
        self.snd_una = seg.ack
        self.snd_wnd = seg.window << self.snd_wscale
        self.max_window = max(self.max_window, self.snd_wnd)
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        self.rtx_at = None
        self.retransmits = 0
        self.rto.reset_backoff()
        if self.syn_retrans:
            self.rto.fallback()
        self._set_state("ESTABLISHED")

    # ---------------------------------------------------------------- SYN-SENT

    def _rcv_synsent(self, seg: Segment, now: float) -> None:
        """SYN-SENT (RFC 9293 3.10.7.3, ``tcp_rcv_synsent_state_process``)."""
        flags = seg.flags
        if flags & ACK and (not seq_gt(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max)):
            if not flags & RST:
                self._send_rst_for(seg)
            return
        if flags & RST:
            if flags & ACK:
                self.error = "refused"
                self._done("CLOSED")
            return
        if not flags & SYN:
            return
        o = seg.options
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & MASK
        p = self.profile
        self.sack_ok = bool(o.sack_ok and p.get("net.ipv4.tcp_sack", 1))
        self.ts_ok = bool(o.ts is not None and p.get("net.ipv4.tcp_timestamps", 1))
        if o.wscale is not None and self.wscale_ok:
            self.snd_wscale = min(o.wscale, 14)     # RFC 7323 2.3: cap at 14
        else:
            self.wscale_ok = False
            self.snd_wscale = self.rcv_wscale = 0
            self._init_clamp = min(self._init_clamp or 65535, 65535)
        if self.ts_ok:
            self.ts_recent = o.ts[0]
            self.ts_recent_stamp = now
        tslen = TS_LEN if self.ts_ok else 0
        peer_mss = o.mss if o.mss else MSS_DEFAULT
        self.mss = max(min(peer_mss, self.stack.mtu - 40) - tslen, MIN_MSS)
        self.advmss -= tslen           # tcp_rcv_synsent_state_process: advmss -= TS option
        self.cc = make_cc(p.get("net.ipv4.tcp_congestion_control", "cubic"), self.mss)
        self.win = _window.RecvWindow(
            p, rcvbuf=self.rcvbuf, rcvbuf_locked=self.rcvbuf_locked, rcv_wscale=self.rcv_wscale,
            window_clamp=self._init_clamp, rcv_wnd=self._init_rcv_wnd, advmss=self.advmss,
            rcv_nxt=self.rcv_nxt)
        self._init_rcv_mss()
        self._init_rcvq_space(now)
        if flags & ACK:
            self.snd_una = seg.ack
            self.snd_wnd = seg.window              # never scaled in a SYN (RFC 7323 2.2)
            self.max_window = self.snd_wnd
            self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
            self.rtx_at = None
            if self.syn_retrans:
                self.rto.fallback()
            else:
                self.rto.sample(now - self.rtt_time)
            self.rto.reset_backoff()
            self.retransmits = 0
            self._set_state("ESTABLISHED")
            self._send_ack(now)
        else:
            # simultaneous open: SYN-RECV, answer SYN-ACK with our ISS (RFC 9293 3.5 fig. 8)
            self.snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self._set_state("SYN-RECV")
            self._send_syn(now, ack=True)

    # ---------------------------------------------------------------- TIME-WAIT

    def _rcv_timewait(self, seg: Segment, now: float) -> bool:
        """TIME-WAIT (RFC 9293 3.10.7.4, ``tcp_timewait_state_process``): a retransmitted FIN is
        ACKed and restarts 2MSL; a RST kills the socket (RFC 1337 not applied, Linux default);
        a SYN with a higher sequence number (or newer TSval) may start a new connection."""
        flags = seg.flags
        if flags & RST:
            self._done("CLOSED")
            return True
        if flags & SYN and not flags & ACK:
            newer_ts = self.ts_ok and seg.options.ts is not None and \
                seq_gt(seg.options.ts[0], self.ts_recent)
            if seq_gt(seg.seq, self.rcv_nxt) or newer_ts:
                self._done("CLOSED")
                return False
            self._send_ack(now)
            return True
        if flags & FIN and (seg.seq + seg.seg_len) & MASK == self.rcv_nxt:
            self._send_ack(now)
            self._restart_tw(now)
            return True
        if seg.seg_len and not self._oow_limited(seg, now, mib.TcpExtTCPACKSkippedSeq):
            self._send_ack(now)
        return True

    # ---------------------------------------------------------------- ACK processing

    def _ack(self, seg: Segment, now: float) -> bool:
        """``tcp_ack``: validate (RFC 5961 5.2), update the send window (``tcp_ack_update_window``),
        drop acknowledged data, sample the RTT (Karn), drive congestion control, detect loss by
        duplicate ACKs or SACK (RFC 5681 3.2, RFC 6675) and NewReno partial ACKs (RFC 6582).
        Returns False when the segment must be dropped."""
        ack = seg.ack
        una = self.snd_una
        snd_max = self.snd_max
        # sequence comparisons inlined (seq.py): this runs for every ACK
        if ((snd_max - ack) & MASK) >= HALF:
            self._challenge_ack(now)       # ACK for data never sent: drop and ACK
            return False
        acked = (ack - una) & MASK
        if acked >= HALF:                  # ack before snd_una
            if seq_lt(ack, (una - self.max_window) & MASK):
                self._challenge_ack(now)
                return False
            return True                    # old duplicate: ignore the ACK, keep the data
        self.lastack = now
        nwin = seg.window << self.snd_wscale
        win_changed = False
        # RFC 9293 3.10.7.4: WL1 < SEG.SEQ, or WL1 == SEG.SEQ and WL2 =< SEG.ACK (Linux's
        # tcp_may_update_window also updates on any new ACK)
        sseq = seg.seq
        if acked or ((self.snd_wl1 - sseq) & MASK) >= HALF or (
                sseq == self.snd_wl1 and ((ack - self.snd_wl2) & MASK) < HALF):
            win_changed = nwin != self.snd_wnd
            self.snd_wnd = nwin
            self.snd_wl1 = sseq
            self.snd_wl2 = ack
            if nwin > self.max_window:
                self.max_window = nwin
        blocks = seg.options.sack_blocks
        if blocks and self.sack_ok:
            self.sb.on_sack(blocks, una, snd_max)
        if acked == 0:
            c = self.stack.counters
            # duplicate ACK (RFC 5681 2): no data, no window change, data outstanding
            if una != self.snd_max and not seg.payload and not win_changed and \
                    not seg.flags & (SYN | FIN):
                self.dupacks += 1
                self._on_dupack(now)
            elif not seg.payload:
                c[mib.TcpExtTCPPureAcks] += 1
            if self.snd_wnd and self.rtx_kind == "probe" and self.rtx_at is not None:
                self.rtx_at = None         # window opened: _push restarts transmission
                self.probes_out = 0
            elif self.rtx_kind == "probe" and self.rtx_at is not None and una == self.snd_max:
                # tcp_ack_probe: still closed, the probe timer restarts from this ACK
                self._arm_rtx(now + min(self.rto.rto * (1 << min(self.probes_out, 20)),
                                        self.rto.rto_max), "probe")
            if self.tlp_high_seq is not None:
                self._process_tlp_ack(seg, ack, False, now)
            return True
        # new data acknowledged
        fin_seq = self.fin_seq
        if fin_seq is not None and ack == (fin_seq + 1) & MASK:
            data_acked = acked - 1
            fin_acked = True
        else:
            data_acked = acked
            fin_acked = False
        if data_acked > 0:
            del self.sndq[:data_acked]
            self.bytes_acked += data_acked
        self.snd_una = ack
        if ((self.snd_nxt - ack) & MASK) >= HALF:
            self.snd_nxt = ack
        self.probes_out = 0
        # RTT (Karn: only segments never retransmitted)
        rto = self.rto
        rtt_seq = self.rtt_seq
        if rtt_seq is not None and ((rtt_seq - ack) & MASK) >= HALF:
            rto.sample(now - self.rtt_time)
            self.rtt_seq = None
        ca_rtt = self._ca_rtt(ack, now) if self.tx_times else None
        rto.backoffs = 0                   # RtoEstimator.reset_backoff
        self.retransmits = 0
        self.retrans_stamp = None
        sb = self.sb
        if sb.ranges:
            high = sb.highest_sacked() if self.sack_ok else None
            if high is not None and seq_gt(high, ack):
                self._reordering_seen((high - una) & MASK)
            sb.clear_below(ack)
        mss = self.mss
        acked_segs = (acked + mss - 1) // mss or 1
        if self.in_recovery and self._spurious_recovery(seg):
            self.stack.counters[mib.TcpExtTCPFullUndo] += 1
            self.in_recovery = False
            self.cc.in_recovery = False
            self.cc.cwnd = max(self.cc.cwnd, self.undo_cwnd)
            self.cc.ssthresh = max(self.cc.ssthresh, self.undo_ssthresh)
            self.dupacks = 0
        elif self.in_recovery:
            if not seq_lt(ack, self.recover):
                self.in_recovery = False
                self.cc.on_exit_recovery()
                self.dupacks = 0
            else:
                # NewReno partial ACK (RFC 6582 3.2 step 3)
                if not (self.sack_ok and self._lost_retransmit(now)):
                    self._retransmit_next(now)
        else:
            self.dupacks = 0
            out = ((self.snd_nxt - ack) & MASK) - sb.sacked_bytes      # _inflight_segs
            inflight = (out + mss - 1) // mss if out > 0 else 0
            self._cc_ack(acked_segs, now, ca_rtt, inflight + acked_segs >= self.cc.cwnd)
        if self.retrans_out:
            self.retrans_out = max(self.retrans_out - acked_segs, 0)
        if self.loss_high is not None and not seq_lt(ack, self.loss_high):
            self.loss_high = None
        if self.tlp_high_seq is not None:
            self._process_tlp_ack(seg, ack, True, now)
        # tcp_set_xmit_timer: a loss probe if one may go, else restart the RTO (RFC 6298 5.3)
        if ack == snd_max:
            if self.rtx_kind != "probe":
                self.rtx_at = None
        elif not self._schedule_loss_probe(now, True):
            self._arm_rtx(now + rto.rto, "rtx")
        if not self.sndbuf_locked and self.sndbuf < self._wmem_max:
            self._sndbuf_expand()
        self.stack.dirty.add(self)
        if fin_acked:
            st = self.state
            if st == "FIN-WAIT-1":
                self._set_state("FIN-WAIT-2")
                if self.app_closed:
                    self._arm_tw(now + self.profile.get("net.ipv4.tcp_fin_timeout", 60))
            elif st == "CLOSING":
                if not self._enter_timewait(now):
                    return False
            elif st == "LAST-ACK":
                self._done("CLOSED")
                return False
        return True

    def _schedule_loss_probe(self, now: float, advancing_rto: bool) -> bool:
        """``tcp_schedule_loss_probe`` (RFC 8985 7.2): with SACK, data in flight and no
        recovery or loss episode going on (CA_Open), arm the probe timeout instead of the RTO:
        PTO = 2 * srtt, plus TCP_RTO_MIN when a single segment is out (the peer may be
        delaying its ACK) or TCP_TIMEOUT_MIN (2 jiffies) otherwise; 1 s (TCP_TIMEOUT_INIT)
        without an RTT sample. Never later than the RTO: a full RTO from now after an ACK
        (``advancing_rto``), else the RTO that is already running. net.ipv4.tcp_early_retrans
        3 (the default) or 4 enables it; FreeBSD's default stack
        has no TLP. The 3.10-era PTO (max(2 srtt, 10 ms), 1.5 srtt + 200 ms for one
        segment) is not modelled."""
        if not self._tlp_ok or not self.sack_ok or self.in_recovery or \
                self.loss_high is not None or self.snd_una == self.snd_max:
            return False
        rto = self.rto
        srtt = rto.srtt
        if srtt:
            one = ((self.snd_max - self.snd_una) & MASK) <= self.mss
            pto = 2 * srtt + (self._rto_min if one else 0.002)
        else:
            pto = self.profile["model.rto_initial"]
        if advancing_rto or self.rtx_kind not in ("rtx", "tlp") or self.rtx_at is None:
            rto_at = now + rto.rto
        else:
            rto_at = self.tlp_rto_at if self.rtx_kind == "tlp" else self.rtx_at
        if rto_at > now:
            pto = min(pto, rto_at - now)
        self.tlp_rto_at = rto_at
        self._arm_rtx(now + pto, "tlp")
        return True

    def _send_loss_probe(self, now: float) -> None:
        """``tcp_send_loss_probe`` (RFC 8985 7.3): one probe per episode (none while
        tlp_high_seq is set). New data goes if the peer's window takes a segment (cwnd and
        Nagle ignored); otherwise the last segment sent is retransmitted (at most one MSS from
        its end, with the FIN if that was last) unless it starts beyond the peer's window. Counted TcpExtTCPLossProbes; the RTO then runs
        a full RTO from now. If no probe went, the RTO stays where it was."""
        if self.state not in CAN_SEND or self.snd_una == self.snd_max:
            return
        if self.tlp_high_seq is None:
            self.tlp_retrans = False
            off = (self.snd_nxt - self.snd_una) & MASK
            avail = len(self.sndq) - off
            sent = False
            if self.snd_nxt == self.snd_max and avail > 0 and not seq_gt(
                    (self.snd_nxt + min(avail, self.mss)) & MASK,
                    (self.snd_una + self.snd_wnd) & MASK):
                self._push(now, wakeup=self.mss)
                sent = True
            else:
                fin = self.fin_seq is not None and self.snd_max == (self.fin_seq + 1) & MASK
                data_end = (self.snd_max - fin) & MASK
                start = self.last_new_seq if seq_gt(self.last_new_seq, self.snd_una) \
                    else self.snd_una
                if ((data_end - start) & MASK) > self.mss:
                    start = (data_end - self.mss) & MASK
                n = (data_end - start) & MASK
                beyond = start != self.snd_una and not seq_lt(
                    start, (self.snd_una + self.snd_wnd) & MASK)   # __tcp_retransmit_skb
                if (n or fin) and not beyond:
                    self._xmit(start, (start - self.snd_una) & MASK, n, now, retrans=True, fin=fin)
                    self.tlp_retrans = sent = True
            if sent:
                self.tlp_high_seq = self.snd_max
                self.stack.counters[mib.TcpExtTCPLossProbes] += 1
                self._arm_rtx(now + self.rto.rto, "rtx")
                return
        self._arm_rtx(max(self.tlp_rto_at or now, now), "rtx")

    def _process_tlp_ack(self, seg: Segment, ack: int, advanced: bool, now: float) -> None:
        """``tcp_process_tlp_ack``: once the ACK reaches tlp_high_seq the episode ends. A probe
        of new data, a D-SACK (original and probe both arrived) or a pure duplicate ACK mean
        no loss; an ACK beyond tlp_high_seq after a retransmitted probe means the probe
        repaired a loss: reduce cwnd once (``tcp_init_cwnd_reduction`` to
        ``tcp_end_cwnd_reduction``), TcpExtTCPLossProbeRecovery."""
        high = self.tlp_high_seq
        if seq_lt(ack, high):
            return
        blocks = seg.options.sack_blocks
        dsack = bool(blocks) and not seq_gt(blocks[0][1], ack)
        if not self.tlp_retrans or dsack:
            self.tlp_high_seq = None
        elif seq_gt(ack, high):
            self.tlp_high_seq = None
            self.cc.on_enter_recovery(now, self._inflight_segs())
            self.cc.on_exit_recovery()
            self.stack.counters[mib.TcpExtTCPLossProbeRecovery] += 1
        elif not advanced and not seg.payload:
            self.tlp_high_seq = None

    def _ca_rtt(self, ack: int, now: float) -> float | None:
        """``tcp_clean_rtx_queue``'s ca_rtt: time since the newest segment this ACK covers
        completely was sent; none if any covered segment was retransmitted (Karn)."""
        tt = self.tx_times
        last = None
        retx = False
        while tt and ((ack - tt[0][0]) & MASK) < HALF:     # entry end <= ack
            t = tt.popleft()[1]
            if t is None:
                retx = True
            else:
                last = t
        if tt and len(tt[0]) == 3:
            # a TSO entry [end, sent, start]: ``tcp_tso_acked`` trims the whole MSS the ACK
            # covers off the skb, and a trimmed skb counts as ACKed for ca_rtt
            e = tt[0]
            d = (ack - e[2]) & MASK
            if HALF > d >= self.mss:
                e[2] = (e[2] + d - d % self.mss) & MASK
                if e[1] is None:
                    retx = True
                else:
                    last = e[1]
        if retx or last is None:
            return None
        return now - last

    def _cc_ack(self, acked_segs: int, now: float, rtt, cwnd_limited: bool) -> None:
        """``tcp_cong_control`` outside recovery. The controller gets snd_una and snd_nxt (our
        snd_max) for HyStart's rounds (CUBIC); a HyStart exit is counted like ``hystart_update``
        (TcpExtTCPHystart{Train,Delay}Detect, ...Cwnd += cwnd)."""
        cc = self.cc
        found = getattr(cc, "found", None)
        cc.on_ack(acked_segs, now, rtt, cwnd_limited, self.snd_una, self.snd_max)
        if found is None and getattr(cc, "found", None):
            c = self.stack.counters
            if cc.found == "train":
                c[mib.TcpExtTCPHystartTrainDetect] += 1
                c[mib.TcpExtTCPHystartTrainCwnd] += cc.cwnd
            else:
                c[mib.TcpExtTCPHystartDelayDetect] += 1
                c[mib.TcpExtTCPHystartDelayCwnd] += cc.cwnd

    def _sndbuf_expand(self) -> bool:
        """``tcp_sndbuf_expand`` after an ACK: an unlocked send buffer grows to hold about two
        congestion windows (capped by tcp_wmem[2])."""
        if self.sndbuf_locked or self.cc is None:
            return False
        want = min(4 * self.cc.cwnd * (self.mss + 240), self._wmem_max)
        if want > self.sndbuf:
            self.sndbuf = want
            return True
        return False

    def _on_dupack(self, now: float) -> None:
        """Fast retransmit on the third duplicate ACK, or when SACK shows the head lost
        (RFC 5681 3.2, RFC 6675 IsLost; Linux ``tcp_time_to_recover``); during recovery
        each further dupack may retransmit the next hole (RFC 6675 NextSeg)."""
        if self.in_recovery:
            if self.sack_ok and not self._lost_retransmit(now):
                self._retransmit_next(now)
            return
        k = self.reordering
        lost = self.dupacks >= k or (self.sack_ok and self.sb.is_lost(self.snd_una, self.mss, k))
        if not lost:
            return
        c = self.stack.counters
        c[mib.TcpExtTCPSackRecovery if self.sack_ok else mib.TcpExtTCPRenoRecovery] += 1
        self.in_recovery = True
        self.recover = self.snd_max
        self.retx_list.clear()
        self.undo_cwnd, self.undo_ssthresh = self.cc.cwnd, self.cc.ssthresh
        self.tlp_high_seq = None       # tcp_init_cwnd_reduction
        self.retx_tsval = self.stack.ts_now(self.ts_off) if self.ts_ok else None
        self.cc.on_enter_recovery(now, self._inflight_segs())
        self.retx_nxt = self.snd_una
        self.rtt_seq = None
        self._retransmit_next(now)

    def _reordering_seen(self, dist_bytes: int) -> None:
        """``tcp_check_sack_reordering``: a segment was cumulatively ACKed below data already
        SACKed; unless we retransmitted it, it arrived out of order by that many segments.
        The loss threshold follows (``tp->reordering``, at most tcp_max_reordering 300)."""
        if self.in_recovery or self.retrans_out:
            return
        dist = (dist_bytes + self.mss - 1) // self.mss
        if dist > self.reordering:
            self.reordering = min(dist, 300)
            self.stack.counters[mib.TcpExtTCPSACKReorder] += 1

    def _spurious_recovery(self, seg: Segment) -> bool:
        """Eifel detection with timestamps (RFC 3522, ``tcp_packet_delayed``): the ACK that
        advances snd_una echoes a TSval older than our first retransmission, so the original
        arrived and the "loss" was reordering: undo the window reduction
        (``tcp_try_undo_recovery``, TcpExtTCPFullUndo) and raise the reordering estimate."""
        ts = seg.options.ts
        if self.retx_tsval is None or ts is None or not ts[1] or not seq_lt(ts[1], self.retx_tsval):
            return False
        high = self.sb.highest_sacked()
        if high is not None:
            self.reordering = min(max(self.reordering,
                                      ((high - self.snd_una) & MASK) // self.mss + 1), 300)
        return True

    def _lost_retransmit(self, now: float) -> bool:
        """A retransmission that is itself lost (RACK's rule, RFC 8985 6.2, simplified; Linux
        counts TcpExtTCPLostRetransmit): the oldest retransmitted segment still neither ACKed
        nor SACKed is resent when data sent after it (new data above the snd_max of its
        sending, or a later retransmission) has been SACKed and it has been out for more than
        srtt plus a quarter (RACK's reordering window). Without this only the RTO repairs it.
        Returns True if it retransmitted."""
        una = self.snd_una
        # drop what the cumulative ACK covers; re-sent entries go to the end, so the list is
        # not in sequence order and ACKed entries may sit behind unACKed ones
        lst = self.retx_list = [e for e in self.retx_list if seq_gt(e[1], una)]
        high = self.sb.highest_sacked()
        if not lst or high is None:
            return False
        wait = (self.rto.srtt or 0.0) * 1.25
        for i, (seq, end, above, sent) in enumerate(lst):
            if seq_lt(seq, una):
                seq = una
            if self.sb.is_sacked(seq, end):
                continue
            if now - sent < wait or not (seq_gt(high, above) or
                                         any(self.sb.is_sacked(e[0], e[1]) for e in lst[i + 1:])):
                return False
            off = (seq - una) & MASK
            n = min((end - seq) & MASK, len(self.sndq) - off)
            if n <= 0:
                return False
            self.stack.counters[mib.TcpExtTCPLostRetransmit] += 1
            self._xmit(seq, off, n, now, retrans=True)
            del lst[i]
            lst.append([seq, end, self.snd_max, now])
            return True
        return False

    def _retransmit_next(self, now: float) -> None:
        """Retransmit the first not-yet-retransmitted, un-SACKed segment at or after snd_una
        and below ``recover`` (TcpExtTCPFastRetrans)."""
        seq = self.retx_nxt if seq_gt(self.retx_nxt, self.snd_una) else self.snd_una
        while seq_lt(seq, self.recover) and seq_lt(seq, self.snd_nxt):
            off = (seq - self.snd_una) & MASK
            n = min(self.mss, len(self.sndq) - off)
            if n <= 0:
                break
            end = (seq + n) & MASK
            if self.sack_ok and self.sb.is_sacked(seq, end):
                seq = end
                continue
            if self.sack_ok and self.sb.highest_sacked() is not None and \
                    not seq_lt(seq, self.sb.highest_sacked()) and seq != self.snd_una:
                break                      # nothing presumed lost above the highest SACK
            self.stack.counters[mib.TcpExtTCPFastRetrans] += 1
            self._xmit(seq, off, n, now, retrans=True)
            self.retx_list.append([seq, end, self.snd_max, now])
            self.retx_nxt = end
            if self.rtx_at is None or self.rtx_kind != "rtx":
                self._arm_rtx(now + self.rto.rto, "rtx")
            return

    # ---------------------------------------------------------------- data

    def _data(self, seg: Segment, now: float) -> None:
        """``tcp_data_queue``: in-order data to the receive queue, out-of-order to reassembly
        (TcpExtTCPOFOQueue, immediate ACK with SACK), duplicates re-ACKed at once
        (TcpExtDelayedACKLost), data on a zero window dropped (TcpExtTCPZeroWindowDrop),
        data beyond the window trimmed (RFC 9293 3.10.7.4)."""
        payload = seg.payload
        seq = seg.seq
        n = len(payload)
        fin = bool(seg.flags & FIN)
        if not n:
            if fin:
                self._queue_fin(seq, now)
            return
        c = self.stack.counters
        rcv_nxt = self.rcv_nxt
        rwin = self.win.current(rcv_nxt)
        off = ((seq - rcv_nxt + HALF) & MASK) - HALF
        if off == 0 and not self.reasm.blocks:          # the common case: in order
            if rwin == 0:
                c[mib.TcpExtTCPZeroWindowDrop] += 1
                self._enter_quickack()
                self._schedule_ack(ACK_NOW)
                return
            if n > rwin:
                payload = payload[:rwin]
                n = rwin
                fin = False
            self.rcvq += payload
            self.rcv_nxt = (rcv_nxt + n) & MASK
            self.bytes_received += n
            self._event_data_recv(seg, n, now)
            self.stack.dirty.add(self)
            if fin:
                self._queue_fin(self.rcv_nxt, now)
            return
        if off + n <= 0:
            # wholly old: a retransmission of data we have, so our ACK was probably lost
            c[mib.TcpExtDelayedACKLost] += 1
            self._dsack_set(seq, (seq + n) & MASK)
            self._enter_quickack()
            self._schedule_ack(ACK_NOW)
            return
        if off + n > rwin:
            if off >= rwin:
                c[mib.TcpExtTCPZeroWindowDrop if rwin == 0 else mib.TcpExtTCPOFODrop] += 1
                self._enter_quickack()
                self._schedule_ack(ACK_NOW)
                return
            payload = payload[:rwin - off]
            fin = False
        had_ooo = bool(self.reasm.blocks)
        if off > 0:
            c[mib.TcpExtTCPOFOQueue] += 1
            if fin:
                self.ofo_fin = (seq + len(payload)) & MASK
        got, nxt = self.reasm.insert(seq, payload, rcv_nxt)
        if got:
            self.rcvq += got
            self.bytes_received += len(got)
            self.rcv_nxt = nxt
            self._event_data_recv(seg, len(got), now)
            self.stack.dirty.add(self)
            if had_ooo and not self.reasm.blocks:
                self.ack_pending |= ACK_NOW     # gap filled: ACK at once (RFC 5681 4.2)
        self._schedule_ack(ACK_NOW if self.reasm.blocks else 0)
        if fin and off <= 0:
            self._queue_fin((seq + len(payload)) & MASK, now)
        elif self.ofo_fin is not None and self.ofo_fin == self.rcv_nxt and not self.reasm.blocks:
            self._fin(now)

    def _queue_fin(self, fin_at: int, now: float) -> None:
        """A FIN at ``fin_at``: consume it if everything before it arrived, else remember it."""
        if fin_at == self.rcv_nxt and not self.reasm.blocks:
            self._fin(now)
        elif seq_gt(fin_at, self.rcv_nxt):
            self.ofo_fin = fin_at
            self._schedule_ack(ACK_NOW)
        else:
            self._schedule_ack(ACK_NOW)

    def _fin(self, now: float) -> None:
        """``tcp_fin``: consume the FIN (RFC 9293 3.10.7.4 eighth step)."""
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        self.fin_rcvd = True
        self.ofo_fin = None
        self.stack.dirty.add(self)
        st = self.state
        self._schedule_ack(0)
        if st == "ESTABLISHED":
            self._set_state("CLOSE-WAIT")
            self.pingpong = max(self.pingpong, self._pp_thresh())   # inet_csk_enter_pingpong_mode
        elif st == "FIN-WAIT-1":
            self._send_ack(now)
            self._set_state("CLOSING")
        elif st == "FIN-WAIT-2":
            self._send_ack(now)
            self._enter_timewait(now)

    def _event_data_recv(self, seg: Segment, n: int, now: float) -> None:
        """``tcp_event_data_recv``: schedule an ACK, measure rcv_mss, adapt ato, arm quick-ACK
        mode on the first data and after an idle gap longer than the RTO; grow rcv_ssthresh."""
        self.ack_pending |= ACK_SCHED
        self._measure_rcv_mss(seg)
        dmin = self._delack_min
        if not self.ato:
            self._incr_quickack(MAX_QUICKACKS)
            self.ato = dmin
        else:
            m = now - self.lrcvtime
            if m <= dmin / 2:
                self.ato = self.ato / 2 + dmin / 2
            elif m < self.ato:
                self.ato = min(self.ato / 2 + m, self.rto.rto)
            elif m > self.rto.rto:
                self._incr_quickack(MAX_QUICKACKS)
        self.lrcvtime = now
        self._rcv_rtt_measure(now)
        self.win.on_data(n, self.rcvq.n)

    def _rcv_rtt_update(self, sample: float, win_dep: bool) -> None:
        """``tcp_rcv_rtt_update``: a 1/8 EWMA of timestamp samples; per-window samples
        (``win_dep``) only ever lower the estimate."""
        if not self.rcv_rtt:
            self.rcv_rtt = sample
        elif not win_dep:
            self.rcv_rtt += (sample - self.rcv_rtt) / 8
        elif sample < self.rcv_rtt:
            self.rcv_rtt = sample

    def _rcv_rtt_measure(self, now: float) -> None:
        """``tcp_rcv_rtt_measure`` (no timestamps needed): the time for the peer to fill one
        advertised window beyond the point where the measurement started."""
        if self.rcv_rtt_time is not None:
            if seq_lt(self.rcv_nxt, self.rcv_rtt_seq):
                return
            self._rcv_rtt_update(max(now - self.rcv_rtt_time, 1e-6), True)
        self.rcv_rtt_seq = (self.rcv_nxt + self.win.rcv_wnd) & MASK
        self.rcv_rtt_time = now

    def _rcv_rtt_measure_ts(self, seg: Segment) -> None:
        """``tcp_rcv_rtt_measure_ts``: a segment of at least rcv_mss echoing a new TSecr gives
        a receiver RTT sample of our TS clock minus TSecr (1 ms ticks, 0 counts as 1)."""
        ts = seg.options.ts
        if ts is None or not self.ts_ok or ts[1] == self.rcv_rtt_last_tsecr:
            return
        self.rcv_rtt_last_tsecr = ts[1]
        if len(seg.payload) >= self.rcv_mss:
            delta = (self.stack.ts_now(self.ts_off) - ts[1]) & MASK
            if delta < HALF:
                self._rcv_rtt_update(max(delta, 1) / 1000.0, False)

    def _measure_rcv_mss(self, seg: Segment) -> None:
        """``tcp_measure_rcv_mss``: rcv_mss follows full-sized segments (up to advmss); a small
        segment marks ACK_PUSHED (twice in a row: PUSHED2), which lets recv() ACK at once."""
        n = len(seg.payload)
        lss = self.last_seg_size
        self.last_seg_size = 0
        if n >= self.rcv_mss:
            self.rcv_mss = min(n, self.advmss)
            return
        o = seg.options
        hdr = 20 + (TS_LEN if o.ts is not None else 0) + (4 + 8 * len(o.sack_blocks) if o.sack_blocks else 0)
        ln = n + hdr
        if ln >= MSS_DEFAULT + 20 or (ln >= MIN_MSS + 20 and not seg.flags & (FIN | PSH | SYN)):
            ln -= 20 + (TS_LEN if self.ts_ok else 0)
            self.last_seg_size = ln
            if ln == lss:
                self.rcv_mss = ln
                return
        if self.ack_pending & ACK_PUSHED:
            self.ack_pending |= ACK_PUSHED2
        self.ack_pending |= ACK_PUSHED

    # ---------------------------------------------------------------- delayed ACK

    def _pp_thresh(self) -> int:
        return self._pp_thresh_v

    def in_pingpong(self) -> bool:
        """``inet_csk_in_pingpong_mode``: pingpong count reached tcp_pingpong_thresh."""
        return self.pingpong >= self._pp_thresh_v

    def _incr_quickack(self, max_quickacks: int) -> None:
        """``tcp_incr_quickack``: quick = rcv_wnd / (2 rcv_mss), 0 → 2, at most 16."""
        q = self.win.rcv_wnd // (2 * self.rcv_mss)
        if q == 0:
            q = 2
        q = min(q, max_quickacks)
        if q > self.quick:
            self.quick = q

    def _enter_quickack(self) -> None:
        """``tcp_enter_quickack_mode``: quick ACKs again, leave ping-pong, ato back to min."""
        self._incr_quickack(MAX_QUICKACKS)
        self.pingpong = 0
        self.ato = self._delack_min

    def _schedule_ack(self, extra: int) -> None:
        self.ack_pending |= ACK_SCHED | extra

    def _ack_snd_check(self, now: float) -> None:
        """``__tcp_ack_snd_check``: ACK now if more than one full segment arrived since the last
        window update and (the app has read everything or the window would advance), or in
        quick-ACK mode, or ACK_NOW is set, or out-of-order data is queued; else delay it."""
        rcv_mss = self.rcv_mss
        win = self.win
        unread = self.rcvq.n
        if self.ack_pending & ACK_NOW or (self.quick and self.pingpong < self._pp_thresh_v) \
                or self.reasm.blocks or (
                    ((self.rcv_nxt - win.rcv_wup) & MASK) > rcv_mss and
                    (not unread or win.would_advance(self.rcv_nxt, unread, rcv_mss))):
            self._send_ack(now)
            return
        self._send_delayed_ack(now)

    def _send_delayed_ack(self, now: float) -> None:
        """``tcp_send_delayed_ack``: arm the timer for ato (bounded by 500 ms, by TCP_DELACK_MAX
        in ping-pong or after a pushed small segment, and by max(srtt, delack_min)); an earlier
        pending timer wins, and one about to expire sends the ACK now."""
        dmin = self._delack_min
        ato = self.ato
        if ato > dmin:
            max_ato = 0.5
            if self.in_pingpong() or self.ack_pending & ACK_PUSHED:
                max_ato = self._delack_max
            srtt = self.rto.srtt
            if srtt is not None:
                max_ato = min(max_ato, max(srtt, dmin))
            if max_ato < ato:
                ato = max_ato
        timeout = now + ato
        if self.ack_pending & ACK_TIMER and self.dack_at is not None:
            if self.dack_at <= now + ato / 4:
                self._send_ack(now)
                return
            if self.dack_at < timeout:
                timeout = self.dack_at
        self.ack_pending |= ACK_SCHED | ACK_TIMER
        self.dack_at = timeout
        self._wake(timeout)

    def _delack_timer(self, now: float) -> None:
        """``tcp_delack_timer_handler``: send the pending ACK (TcpExtDelayedACKs); a missed delayed
        ACK inflates ato, or in ping-pong mode leaves it."""
        if not self.ack_pending & ACK_TIMER:
            return
        self.ack_pending &= ~ACK_TIMER
        if self.ack_pending & ACK_SCHED and self.state in SYNCED:
            if not self.in_pingpong():
                self.ato = min(self.ato * 2, self.rto.rto)
            else:
                self.pingpong = 0
                self.ato = self._delack_min
            self.stack.counters[mib.TcpExtDelayedACKs] += 1
            self._send_ack(now)

    def _cleanup_rbuf(self, copied: int, now: float) -> None:
        """``tcp_cleanup_rbuf`` after the app read ``copied`` bytes: ACK a pending ACK if more than
        one rcv_mss is unacknowledged, or the read drained a pushed small segment (PUSHED outside
        ping-pong, PUSHED2 always); or if the window can now at least double."""
        win = self.win
        time_to_ack = False
        if self.ack_pending & ACK_SCHED:
            if ((self.rcv_nxt - win.rcv_wup) & MASK) > self.rcv_mss or (
                    copied > 0 and not self.rcvq and (
                        self.ack_pending & ACK_PUSHED2 or
                        (self.ack_pending & ACK_PUSHED and not self.in_pingpong()))):
                time_to_ack = True
        if copied > 0 and not time_to_ack and not self.fin_rcvd and \
                win.window_update_due(self.rcv_nxt, len(self.rcvq), self.rcv_mss):
            time_to_ack = True
        if time_to_ack and self.state in SYNCED:
            self._send_ack(now)
        self.stack.dirty.add(self)

    # ================================================================== send path

    def _pending(self) -> bool:
        """Unsent data, or an unsent FIN."""
        off = (self.snd_nxt - self.snd_una) & MASK
        if off < len(self.sndq):
            return True
        return self.fin_queued and seq_lt(self.snd_nxt, (self.fin_seq + 1) & MASK)

    def _inflight_segs(self) -> int:
        out = ((self.snd_nxt - self.snd_una) & MASK) - self.sb.sacked_bytes
        return max((out + self.mss - 1) // self.mss, 0)

    def _push(self, now: float, wakeup: int = 0, head: bool = False) -> None:
        """``tcp_write_xmit``: send MSS-sized segments from snd_nxt while cwnd, the peer's window
        (``tcp_snd_wnd_test``: the whole segment must fit) and Nagle (``tcp_nagle_test``,
        Minshall's variant) allow. ``wakeup`` is ``tcp_write_wakeup``'s window-sized send;
        ``head``: on RTO the segment at snd_una goes even if the window shrank below it
        (``tcp_retransmit_skb`` only refuses segments beyond the window after the head).
        When nothing is in flight and nothing could be sent, arm the zero-window probe timer
        (``tcp_check_probe_timer``). With ``stack.offload`` new data goes as TSO segments of
        up to 64 KB (``_tso_len``); retransmissions stay one MSS each."""
        if self.state not in CAN_SEND:
            return
        mss = self.mss
        sndq = self.sndq
        cc = self.cc
        tso = self.stack.offload
        sent = 0
        while True:
            seq = self.snd_nxt
            off = (seq - self.snd_una) & MASK
            avail = len(sndq) - off
            fin_here = self.fin_queued and seq_lt(seq, (self.fin_seq + 1) & MASK) and \
                avail <= mss
            if avail <= 0 and not fin_here:
                break
            n = min(avail, wakeup or mss) if avail > 0 else 0
            if not wakeup:
                if self._inflight_segs() >= cc.cwnd:
                    break
                if seq_gt((seq + n + (1 if fin_here and n == avail else 0)) & MASK,
                          (self.snd_una + self.snd_wnd) & MASK) and not (head and seq == self.snd_una):
                    break                  # tcp_snd_wnd_test: the whole segment must fit
                if 0 < n < mss and not fin_here and not self.nodelay and \
                        seq_gt(self.snd_sml, self.snd_una) and not seq_gt(self.snd_sml, seq) and \
                        not seq_lt(seq, self.snd_max):
                    break                  # Nagle/Minshall: a small segment is unacked
            new = not seq_lt(seq, self.snd_max)
            if tso and new and n == mss < avail and not wakeup:
                n = self._tso_len(seq, avail)
            if n < avail:
                fin_here = False
            if self.sack_ok and not new and n and self.sb.is_sacked(seq, (seq + n) & MASK):
                self.snd_nxt = (seq + n) & MASK    # the peer has it: skip
                continue
            self._xmit(seq, off, n, now, retrans=not new, fin=fin_here)
            sent += new
            if wakeup:
                break
        if self.snd_una == self.snd_max and self._pending():
            if self.rtx_at is None:
                self._arm_rtx(now + self.rto.rto, "probe")
        elif sent and not wakeup and not head and self._schedule_loss_probe(now, False):
            pass                           # tcp_write_xmit: one loss probe per tail episode
        elif self.snd_una != self.snd_max and (self.rtx_at is None or self.rtx_kind == "probe"):
            self._arm_rtx(now + self.rto.rto, "rtx")   # a pending loss probe stays armed

    def _tso_len(self, seq: int, avail: int) -> int:
        """With offload (TSO): how much new data from ``seq`` goes as one segment, given that
        one MSS passed ``_push``'s tests: what the per-MSS loop would send in a row (cwnd,
        ``tcp_snd_wnd_test`` per piece, Nagle on a short tail; a FIN-carrying last piece is
        left to it), capped at ``tcp_xmit_size_goal``: gso_max_size - 1 - MAX_TCP_HEADER
        bounded to half the peer's largest window (``tcp_bound_to_half_wnd``), in whole MSS.
        ``tcp_tso_autosize``'s pacing-rate bound and ``tcp_tso_should_defer`` are not
        modelled: the wire carries the same bytes as without offload."""
        mss = self.mss
        mw = self.max_window
        goal = min(TSO_MAX, mw // 2 if mw > MSS_DEFAULT else mw)
        goal = max(goal - goal % mss, mss)
        wnd_room = (self.snd_una + self.snd_wnd - seq) & MASK
        n = min(avail, (self.cc.cwnd - self._inflight_segs()) * mss, wnd_room, goal)
        tail = n % mss
        if n < avail:
            return n - tail
        if self.fin_queued:
            return n - (tail or mss)       # the FIN rides on the last piece: _push sends it
        if tail and not self.nodelay and seq_gt(self.snd_sml, self.snd_una) and \
                not seq_gt(self.snd_sml, (seq + n - tail) & MASK):
            return n - tail                # Nagle/Minshall holds the short tail back
        return n

    def _xmit(self, seq: int, off: int, n: int, now: float, retrans: bool, fin: bool = False) -> None:
        """Build and emit one data/FIN segment (``tcp_transmit_skb``); counts retransmissions."""
        payload = bytes(self.sndq[off:off + n]) if n else b""
        flags = ACK
        if fin:
            flags |= FIN
        if n and off + n == len(self.sndq):
            flags |= PSH
        end = (seq + n + (1 if fin else 0)) & MASK
        c = self.stack.counters
        if retrans:
            c[mib.TcpRetransSegs] += 1
            self.total_retrans += 1
            self.retrans_out += 1
            if self.retrans_stamp is None:
                self.retrans_stamp = now
            self._mark_retrans(seq, end)
        else:
            self.bytes_sent += n
            mss = self.mss
            if self.rtt_seq is None and n:
                self.rtt_seq = seq
                self.rtt_time = now
            # tcp_event_data_sent: CA_EVENT_TX_START when nothing was in flight
            if self.snd_una == self.snd_max:
                self.cc.on_tx_start(now, now - self.lsndtime)
            self.lsndtime = now
            tt = self.tx_times
            if tt is None:
                tt = self.tx_times = deque()
            if n > mss:
                # a TSO segment: one [end, sent, start] entry (_ca_rtt trims it by whole MSS);
                # its last piece is what a loss probe resends (tcp_send_loss_probe's
                # tcp_fragment)
                tt.append([end, now, seq])
                self.last_new_seq = (seq + (n - 1) // mss * mss) & MASK
            else:
                self.last_new_seq = seq
                tt.append([end, now])
            # tcp_event_data_sent: a reply within ato of the last receive counts toward ping-pong
            if now - self.lrcvtime < self.ato:
                self.pingpong += 1
        if n % self.mss:
            self.snd_sml = end     # tcp_minshall_update: skb->len < pcount * mss
        self._output(flags, seq, payload, now)
        if seq_gt(end, self.snd_nxt):
            self.snd_nxt = end
        if seq_gt(end, self.snd_max):
            self.snd_max = end

    def _mark_retrans(self, seq: int, end: int) -> None:
        """TCPCB_RETRANS on the send-time entries a retransmission of [seq, end) covers: no
        RTT sample from them (Karn). A TSO entry [end, sent, start] is first cut at the MSS
        boundaries around the range (``tcp_fragment`` before ``tcp_retransmit_skb``), so its
        other pieces keep their send time."""
        tt = self.tx_times
        if not tt:
            return
        mss = self.mss
        i = 0
        while i < len(tt):
            e = tt[i]
            if seq_gt(e[0], seq):
                if len(e) == 3 and e[1] is not None:
                    eend, t, lo = e
                    d = (seq - lo) & MASK
                    if d < HALF and d >= mss:           # pieces below the range keep t
                        cut = (lo + d - d % mss) & MASK
                        tt.insert(i, [cut, t, lo])
                        i += 1
                        lo = e[2] = cut
                    d = (end - lo) & MASK
                    hi = (lo + max(-(-d // mss) if d < HALF else 0, 1) * mss) & MASK
                    if seq_lt(hi, eend):                # pieces above the range keep t
                        e[0] = hi
                        tt.insert(i + 1, [eend, t, hi])
                e[1] = None
                if not seq_lt(e[0], end):
                    break
            i += 1

    def _output(self, flags: int, seq: int, payload, now: float) -> None:
        """Every segment of a synchronized connection: options (TS, SACK blocks), the window from
        ``RecvWindow.select`` (which records rcv_wup/rcv_wnd like ``tcp_select_window``), and
        ``tcp_event_ack_sent`` (one quick ACK used, pending ACK and delack timer cleared)."""
        o = TcpOptions()
        if self.ts_ok:
            o.ts = (self.stack.ts_now(self.ts_off), self.ts_recent)
        if self.sack_ok and (self.reasm.blocks or self.dsack):
            limit = 3 if self.ts_ok else 4
            if self.dsack:
                o.sack_blocks = (self.dsack,) + tuple(self.reasm.sack_blocks(limit - 1))
                self.dsack = None
            else:
                o.sack_blocks = tuple(self.reasm.sack_blocks(limit))
        wnd = self.win.select(self.rcv_nxt, len(self.rcvq), self.rcv_mss)
        seg = Segment(self.laddr, self.raddr, self.lport, self.rport, seq=seq, ack=self.rcv_nxt,
                      flags=flags, window=wnd, options=o, payload=payload)
        mss = self.mss
        if len(payload) > mss:
            seg.gso_size = mss        # TSO: tcp_gso_segment cuts it; pcount segments out
            self.segs_out += -(-len(payload) // mss)
        else:
            self.segs_out += 1
        self.lastsnd = now
        self.stack.emit(seg)
        if flags & ACK:
            if self.quick:
                self.quick -= 1
                if not self.quick:
                    self.ato = self._delack_min
            self.ack_pending = 0
            self.dack_at = None

    def _send_ack(self, now: float, seq: int | None = None) -> None:
        """``tcp_send_ack``: a bare ACK at the highest sequence sent (Linux's snd_nxt; ours
        rewinds during go-back-N, and an old sequence number would make the peer drop the
        ACK as out of window), or at ``seq`` for a window probe."""
        if self.state == "SYN-RECV":
            return
        self._output(ACK, self.snd_max if seq is None else seq, b"", now)

    def _send_dupack(self, seg: Segment, now: float) -> None:
        """``tcp_send_dupack``: old data means our ACK was lost: quick-ACK mode, then ACK."""
        if seg.payload and seq_lt(seg.seq, self.rcv_nxt):
            self.stack.counters[mib.TcpExtDelayedACKLost] += 1
            end = (seg.seq + len(seg.payload)) & MASK
            self._dsack_set(seg.seq, end if seq_lt(end, self.rcv_nxt) else self.rcv_nxt)
            self._enter_quickack()
        self._send_ack(now)

    def _dsack_set(self, left: int, right: int) -> None:
        """``tcp_dsack_set`` (RFC 2883, net.ipv4.tcp_dsack=1): report the duplicate range as
        the first SACK block of the next ACK (TcpExtTCPDSACKOldSent)."""
        if self.sack_ok and self.profile.get("net.ipv4.tcp_dsack", 1):
            self.dsack = (left, right)
            self.stack.counters[mib.TcpExtTCPDSACKOldSent] += 1

    def _oow_limited(self, seg: Segment | None, now: float, counter: str) -> bool:
        """``tcp_oow_rate_limited``: at most one out-of-window ACK per tcp_invalid_ratelimit ms
        (data segments without SYN are never limited)."""
        if seg is not None and seg.payload and not seg.flags & SYN:
            return False
        gap = self.profile.get("net.ipv4.tcp_invalid_ratelimit", 500) / 1000.0
        if self.last_oow >= 0 and now - self.last_oow < gap:
            self.stack.counters[counter] += 1
            return True
        self.last_oow = now
        return False

    def _syn_challenge(self, now: float) -> None:
        self.stack.counters[mib.TcpExtTCPSYNChallenge] += 1
        self._challenge_ack(now)

    def _challenge_ack(self, now: float) -> None:
        """``tcp_send_challenge_ack`` (RFC 5961 3.2/4.2/5.2): per socket one per
        tcp_invalid_ratelimit, then the per-namespace tcp_challenge_ack_limit per second."""
        if self._oow_limited(None, now, mib.TcpExtTCPACKSkippedChallenge):
            return
        if not self.stack.challenge_allowed(now):
            return
        self.stack.counters[mib.TcpExtTCPChallengeACK] += 1
        self._send_ack(now)

    def _send_rst(self, now: float) -> None:
        """Active reset (``tcp_send_active_reset``): RST|ACK at snd_nxt, with the TS option
        when the connection uses timestamps (it goes out through tcp_transmit_skb)."""
        o = TcpOptions(ts=(self.stack.ts_now(self.ts_off), self.ts_recent)) if self.ts_ok else TcpOptions()
        seg = Segment(self.laddr, self.raddr, self.lport, self.rport, seq=self.snd_max,
                      ack=self.rcv_nxt, flags=RST | ACK, options=o)
        self.segs_out += 1
        self.stack.emit(seg)

    def _send_rst_for(self, seg: Segment) -> None:
        """Unacceptable ACK in SYN-SENT/SYN-RECV: <SEQ=SEG.ACK><CTL=RST> (RFC 9293 3.10.7.3)."""
        self.stack.emit(Segment(self.laddr, self.raddr, self.lport, self.rport, seq=seg.ack,
                                flags=RST))

    # ================================================================== state changes

    def _set_state(self, new: str) -> None:
        old = self.state
        if old == new:
            return
        c = self.stack.counters
        was = old in ("ESTABLISHED", "CLOSE-WAIT")
        now_est = new in ("ESTABLISHED", "CLOSE-WAIT")
        if was and not now_est:
            c[mib.TcpCurrEstab] = c.get(mib.TcpCurrEstab, 0) - 1
            if new == "CLOSED":
                c[mib.TcpEstabResets] += 1    # tcp_set_state: straight to CLOSE, no FIN handshake
        elif now_est and not was:
            c[mib.TcpCurrEstab] = c.get(mib.TcpCurrEstab, 0) + 1
        self.state = new
        self.stack.dirty.add(self)
        self.stack.log("tcp_state", conn=self.key, old=old, new=new)

    def _enter_timewait(self, now: float) -> bool:
        """``tcp_time_wait``: 2MSL (TCP_TIMEWAIT_LEN, model.timewait_len) then gone. Once the
        namespace holds net.ipv4.tcp_max_tw_buckets TIME-WAIT sockets, ``inet_twsk_alloc``
        refuses another: TcpExtTCPTimeWaitOverflow and the socket closes at once (False)."""
        stack = self.stack
        if stack.tw_count >= self.profile["net.ipv4.tcp_max_tw_buckets"]:
            stack.counters[mib.TcpExtTCPTimeWaitOverflow] += 1
            self._done("CLOSED")
            return False
        stack.tw_count += 1
        self._set_state("TIME-WAIT")
        self.rtx_at = self.dack_at = None
        self.sndq.clear()
        # all sent data is acked and TIME-WAIT never sends data, and a drained receive queue
        # needs no deque: 2 x 760 B less for each of the (many) TIME-WAIT sockets
        self.tx_times = None
        if not self.rcvq:
            self.rcvq.chunks = None
        self._restart_tw(now)
        return True

    def _restart_tw(self, now: float) -> None:
        """(Re)start the 2MSL timer (``inet_twsk_reschedule``). In TIME-WAIT it is the only
        timer, so the deadline moves to it outright: through ``_arm_tw`` an earlier deadline
        left by a cleared timer (RTO, delayed ACK, FIN-WAIT-2) would fire with nothing due."""
        self.tw_at = when = now + self.profile["model.timewait_len"]
        self.stack.schedule(self, when)

    def _reset(self, now: float) -> None:
        """``tcp_reset``: the peer reset us (RFC 9293 3.10.7.4 second step)."""
        st = self.state
        self.error = "refused" if st == "SYN-SENT" else "reset"
        self._done("CLOSED")

    def _done(self, new: str) -> None:
        """``tcp_done``: CLOSED, timers off, out of the demux table (TcpAttemptFails from the
        SYN states; TcpEstabResets is counted by ``_set_state``)."""
        st = self.state
        c = self.stack.counters
        if st in ("SYN-SENT", "SYN-RECV"):
            c[mib.TcpAttemptFails] += 1
        elif st == "TIME-WAIT":
            self.stack.tw_count -= 1
        self._set_state("CLOSED")
        self.rtx_at = self.dack_at = self.tw_at = None
        self.deadline = None
        self.stack.unregister(self)

    # ================================================================== views

    def info(self) -> dict:
        """``tcp_get_info``-like snapshot for ``ss -ti`` views and comparisons with TCP_INFO.
        Times in ms like tcp_info (rto, rtt, rttvar, lastsnd/lastrcv/lastack relative to now)."""
        now = self.stack.now
        win = self.win
        r = self.rto
        return {
            "state": self.state,
            "snd_wscale": self.snd_wscale, "rcv_wscale": self.rcv_wscale,
            "rto": round(r.rto * 1000), "backoff": r.backoffs,
            "rtt": round((r.srtt or 0) * 1000, 3), "rttvar": round((r.rttvar or 0) * 1000, 3),
            "ato": round(self.ato * 1000),
            "mss": self.mss, "advmss": self.advmss, "rcv_mss": self.rcv_mss,
            "cwnd": self.cc.cwnd if self.cc else 10,
            "ssthresh": self.cc.ssthresh if self.cc else 0x7FFFFFFF,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": win.rcv_wnd if win else self._init_rcv_wnd,
            "rcv_space": self.rcvq_space, "rcv_rtt": round(self.rcv_rtt * 1000, 3),
            "rcvbuf": win.rcvbuf if win else self.rcvbuf,
            "rcv_ssthresh": win.rcv_ssthresh if win else 0,
            "window_clamp": win.window_clamp if win else self._init_clamp,
            "unacked": self._inflight_segs() if self.cc else 0,
            "retrans": self.retrans_out, "total_retrans": self.total_retrans,
            "bytes_sent": self.bytes_sent, "bytes_acked": self.bytes_acked,
            "bytes_received": self.bytes_received,
            "segs_out": self.segs_out, "segs_in": self.segs_in,
            "lastsnd": round((now - self.lastsnd) * 1000), "lastrcv": round((now - self.lastrcv) * 1000),
            "lastack": round((now - self.lastack) * 1000),
            "ts": self.ts_ok, "sack": self.sack_ok, "wscale_ok": self.wscale_ok,
            "pingpong": self.in_pingpong(), "quick": self.quick, "reordering": self.reordering,
            "notsent": len(self.sndq) - ((self.snd_nxt - self.snd_una) & MASK)
            if self.state in CAN_SEND else 0,
            "recv_q": len(self.rcvq), "send_q": len(self.sndq),
            "cc": self.cc.name if self.cc else "",
            "path": self.path,
        }

    def __repr__(self) -> str:
        return f"<Connection {self.lport}->{self.rport} {self.state}>"
