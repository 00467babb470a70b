"""One TCP connection, sans-IO: the RFC 9293 state machine with Linux's choices.

Every method takes ``now``; output goes through ``stack.emit`` and timers through
``stack.schedule``. This module holds the state machine (``state.TRANSITIONS``, checked by
``_set_state``), creation (active and passive open) and the application API. The rest of the
class comes from mixins split along Linux's own files (methods only; every field is a slot of
``Connection``, so the per-segment path reads attributes of one object):

    tcp_input.py   on_segment's work: PAWS, header prediction, RFC 9293 3.10.7.4, tcp_ack,
                   tcp_data_queue, tcp_fin, tcp_event_data_recv
    tcp_output.py  tcp_write_xmit (Nagle, peer window, TSO sizing), tcp_transmit_skb, ACKs, RSTs
    recovery.py    fast retransmit, SACK/NewReno, lost retransmissions (RACK), undo, TLP
    rack.py        RACK loss detection, the reordering timer and PRR (SACK, tcp_recovery=1)
    ecn.py         classic ECN: negotiation, ECT(0), the CE echo and the CWR state
    timers.py      retransmission/probe/loss-probe timer, delayed-ACK and TIME-WAIT dispatch
    delack.py      DelayedAck (icsk_ack) and the ACK-now-or-later decisions
    txlog.py       the send-time log (ca_rtt, Karn marks)
    rcvtune.py     receiver RTT and tcp_rcv_space_adjust
Receive-window arithmetic (and the one rcv_mss / rcvbuf once established) lives in
``window.RecvWindow``; RTO, congestion control, reassembly and the SACK scoreboard in their own
modules.

Fast path: ``on_segment`` sends an in-order ESTABLISHED segment with only ACK/PSH and nothing
out of order to ``_fast_path`` (header prediction): ts_recent, ``_ack`` (skipped for data that
acknowledges nothing new, as Linux does), then the same ``_data`` and ``_after_input`` as the
slow path. Everything else takes ``_rcv_synced`` (RFC 9293 3.10.7.4 step by step).

Also modelled: tail loss probes (``_schedule_loss_probe``), HyStart input (per-ACK ca_rtt from
segment send times), idle restart, receive-buffer autotuning (``_rcv_space_adjust``).

Approximations (deliberate): the send queue is a byte stream cut at MSS (Linux keeps skbs),
or with ``Stack(offload=True)`` new data is cut into TSO segments of up to 64 KB covering what
the per-MSS cut would send (``_tso_len``) and retransmitted one MSS at a time;
after an RTO transmission goes back to snd_una (``tcp_enter_loss`` marks everything lost and
Linux resends from its queue without rewinding snd_nxt: here ``snd_max`` plays snd_nxt's part
for ACKs); with SACK and net.ipv4.tcp_recovery (Linux 4.4+ profiles) loss detection is RACK's
and cwnd in recovery PRR's (rack.py); without them SACK/NewReno with one retransmission per
ACK and RACK's rule for lost retransmissions only; no F-RTO; D-SACKs sent only for duplicates
below rcv_nxt, and received ones undo an episode (recovery.py) but do not widen RACK's
reordering window; classic ECN (ecn.py) with the CWR reduction applied at once; no keepalive; the send
buffer is charged per skb of ``skbs`` (data + TX_SKB_TRUESIZE), the pieces ``tso_fragment``
splits off partly sent skbs not counted apart, and grows by ``_sndbuf_expand`` on every ACK
(Linux: in ``tcp_new_space``, when a writer ran out); receive-buffer autotuning (``_rcv_space_adjust``) uses Linux's
rule for every profile, FreeBSD's included (FreeBSD's own recvbuf_auto differs).

Timers: one heap entry per connection at a time. ``rtx_at`` (SYN/data retransmission,
zero-window probe or tail loss probe, ``rtx_kind`` "syn"/"rtx"/"probe"/"tlp" says which),
``dack_at`` (delayed ACK) and ``tw_at`` (TIME-WAIT / orphaned FIN-WAIT-2). Moving a timer later costs nothing: the early heap entry
fires, finds nothing due and re-arms at the real deadline.
"""
from __future__ import annotations

from .. import mib

from collections import deque

from .cc import make_cc
from .consts import MIN_MSS, MSS_DEFAULT, TS_LEN, TX_SKB_TRUESIZE
from .delack import DelackMixin, DelayedAck
from .ecn import EcnMixin
from .rack import RackMixin
from .rcvtune import RcvTuneMixin
from .reasm import Reassembly
from .recovery import RecoveryMixin
from .rto import RtoEstimator
from .seq import HALF, MASK
from . import state as _state
from .state import (CAN_SEND, CLOSED, CLOSE_WAIT, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK,
                    SYN_RECV, SYN_SENT, SYNCED, TIME_WAIT, State)
from .tcp_input import InputMixin
from .tcp_output import CHRONO_BUSY, NAGLE_CORK, NAGLE_PUSH, OutputMixin
from ..profiles.knobs import HZ

UNLIMITED = 2**32 - 1            # tcp_notsent_lowat's default: UINT_MAX
from .timers import TimerMixin
from .txlog import TxLogMixin
from . import window as _window
from ..wire.segment import ACK, FIN, RST, SYN, URG, Segment, TcpOptions


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


class Connection(InputMixin, OutputMixin, RecoveryMixin, RackMixin, EcnMixin, TxLogMixin,
                 TimerMixin, DelackMixin, RcvTuneMixin):
    __slots__ = (
        "stack", "profile", "laddr", "lport", "raddr", "rport", "key", "state", "error",
        "deadline", "rtx_at", "rtx_kind", "dack_at", "tw_at", "listener", "path",
        # send side
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_window",
        "snd_wscale", "mss", "sndq", "sndbuf", "sndbuf_locked", "fin_queued", "fin_seq",
        "snd_sml", "nodelay", "cork", "nagle_push", "notsent_lowat", "chrono", "tos", "urg_seq",
        "dupacks", "recover", "in_recovery", "retx_nxt", "cc", "rto",
        "sb", "rtt_seq", "rtt_time", "mdev_seq", "retrans_stamp", "retransmits", "probes_out",
        "retrans_out", "total_retrans", "syn_retrans", "reordering", "undo_cwnd", "undo_hold", "user_timeout",
        "probes_tstamp",
        "undo_ssthresh", "retx_tsval", "undo_marker", "undo_retrans", "dsack_dups", "dsack", "retx_list", "skbs", "pushed_seq", "nospace",
        "cwnd_lim", "max_pkts_out", "cwnd_usage_seq",
        # receive side
        "irs", "rcv_nxt", "rcvq", "reasm", "win", "_rcvbuf", "_rcvbuf_locked", "rcv_wscale",
        "advmss", "fin_rcvd", "ofo_fin",
        # options
        "wscale_ok", "sack_ok", "ts_ok", "ts_recent", "ts_recent_stamp", "ts_off", "last_oow",
        # delayed ACK (icsk_ack)
        "dack",
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
        # ECN (ecn.py)
        "ecn_ok", "ecn_demand", "ecn_queue_cwr", "cwr_high",
        # RACK and PRR (rack.py)
        "rq", "lost_out", "rack_retx", "sacked_out", "rack_t", "rack_end", "rack_rtt", "rack_adv",
        "reord_seen", "prior_cwnd", "prr_delivered", "prr_out", "_rack_ok",
        # profile values read per segment (the profile is immutable)
        "_wmem_max", "_tlp_ok", "_rto_min",
    )

    def __init__(self, stack, laddr: int, lport: int, raddr: int, rport: int, now: float):
        p = stack.profile
        self.stack = stack
        self.profile = p
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.key = (laddr, lport, raddr, rport)
        self.state = CLOSED
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
        self.skbs = None            # [end_seq, psh, eor] per skb of sndq, made on first send
        self.pushed_seq = 0
        self.nospace = False         # SOCK_NOSPACE: a write ran out of send buffer
        self.cwnd_lim = False       # tcp_cwnd_validate's is_cwnd_limited, max_packets_out
        self.max_pkts_out = 0
        self.cwnd_usage_seq = 0
        self.sndbuf = p["net.ipv4.tcp_wmem"][1]
        self.sndbuf_locked = False
        self.fin_queued = False
        self.fin_seq = None
        self.snd_sml = 0
        self.nodelay = False
        self.cork = False            # TCP_CORK
        self.nagle_push = False      # TCP_NAGLE_PUSH (see _nonagle)
        self.notsent_lowat = 0       # TCP_NOTSENT_LOWAT; 0: net.ipv4.tcp_notsent_lowat
        self.chrono = None           # [type, start jiffies, busy, rwnd-limited] (tcp_chrono_*)
        self.tos = 0                 # IP_TOS without the ECN bits (inet->tos)
        self.urg_seq = None          # tp->urg_seq while urgent data is pending (tp->urg_data)
        self.cc = None
        self.rto = RtoEstimator(p["model.rto_initial"], p["model.rto_min"], p["model.rto_max"])
        self.rtt_seq = None          # the segment being timed (FreeBSD's t_rtseq)
        self.rtt_time = 0.0
        self.mdev_seq = 0            # Linux's tp->rtt_seq: where tcp_rtt_estimator's round ends
        self.retrans_stamp = None
        self.retransmits = 0
        self.probes_out = 0
        self.user_timeout = 0.0      # TCP_USER_TIMEOUT (icsk_user_timeout), seconds; 0: off
        self.probes_tstamp = None    # icsk_probes_tstamp: the first zero-window probe's time
        self.retrans_out = 0
        self.total_retrans = 0
        self.syn_retrans = False
        self.undo_marker = None      # tcp_init_undo: snd_una when the episode began, None: no undo
        self.undo_retrans = 0        # retransmissions of the episode not yet D-SACKed (-1: none)
        self.dsack_dups = 0          # tcpi_dsack_dups: segments D-SACKed by the peer
        self.dsack = None
        self.irs = self.rcv_nxt = 0
        self.rcvq = RecvQueue()
        self.reasm = Reassembly()
        self.win = None
        self._rcvbuf = p["net.ipv4.tcp_rmem"][1]     # until the window exists (see rcvbuf)
        self._rcvbuf_locked = False
        self.advmss = stack.advmss(laddr)
        self.fin_rcvd = False
        self.ofo_fin = None
        self.wscale_ok = self.sack_ok = self.ts_ok = False
        self.ts_recent = 0
        self.ts_recent_stamp = now
        self.ts_off = 0
        self.last_oow = None
        self.dack = DelayedAck(p, now)
        self.app_closed = False
        self.bytes_sent = self.bytes_acked = self.bytes_received = 0
        self.segs_out = self.segs_in = 0
        self.lastsnd = self.lastrcv = self.lastack = now
        self.tx_times = None         # deque of [end_seq, sent at or None once retransmitted]
                                     # (+ start seq for a TSO segment), made on first send
        self.lsndtime = now
        self.last_new_seq = 0        # start of the last new-data segment (the "last skb")
        self._wmem_max = p["net.ipv4.tcp_wmem"][2]
        self._init_rcv_wnd = 0
        self._init_clamp = 0
        self._init_recovery(p)
        self._init_ecn()
        self._init_rack(p)
        self._init_rcvtune(now)

    # ================================================================== creation

    @classmethod
    def active(cls, stack, laddr, lport, raddr, rport, now, *, rcvbuf=None, sndbuf=None,
               user_mss=0):
        """connect(2): ``tcp_v4_connect`` → ``tcp_connect_init`` → ``tcp_connect``.
        ``user_mss`` (TCP_MAXSEG before connect) clamps advmss (``tcp_mss_clamp``) and, on the
        SYN-ACK, the peer's MSS (``tcp_parse_options``: user_mss < in_mss).

        The SYN carries mss, sackOK, TS, wscale as the profile allows (tcp_sack,
        tcp_timestamps, tcp_window_scaling). Our window in the SYN is never scaled (RFC 7323
        2.2). ``tcp_connect_init`` clamps window_clamp to the full space when SO_RCVBUF is set.
        """
        c = cls(stack, laddr, lport, raddr, rport, now)
        p = c.profile
        if user_mss:
            c.advmss = min(c.advmss, user_mss)
        if rcvbuf is not None:
            c.set_rcvbuf(rcvbuf)
        if sndbuf is not None:
            c.set_sndbuf(sndbuf)
        c.ts_off = stack.ts_offset(laddr, raddr)
        c.iss = stack.isn(laddr, lport, raddr, rport)
        c.snd_una = c.iss
        c.snd_nxt = c.snd_max = (c.iss + 1) & MASK
        c.snd_sml = c.iss
        c.wscale_ok = bool(p["net.ipv4.tcp_window_scaling"])
        c._init_rcv_wnd, c._init_clamp, c.rcv_wscale = _window.connect_init_rwin(
            p, rcvbuf=c.rcvbuf, rcvbuf_locked=c.rcvbuf_locked, advmss=c.advmss)
        _state.check(c.state, SYN_SENT)     # not _set_state: no event for the first state
        c.state = SYN_SENT
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
        if self.state is SYN_SENT:
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
                      ack=self.rcv_nxt if ack else 0,
                      flags=SYN | ACK if ack else SYN | self._ecn_syn_flags(),
                      window=min(self._init_rcv_wnd, 65535), options=self._syn_options(now),
                      tos=self.tos)
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
        c.ecn_ok = params.ecn_ok
        c.ts_recent, c.ts_off = params.ts_recent, params.ts_off
        c.sndbuf, c.sndbuf_locked = params.sndbuf, params.sndbuf_locked
        tslen = TS_LEN if c.ts_ok else 0
        c.mss = max(min(params.mss, stack.advmss(c.laddr)) - tslen, MIN_MSS)
        c.advmss = params.advmss - tslen
        c.snd_wnd = c.max_window = params.snd_wnd
        c.snd_wl1, c.snd_wl2 = c.rcv_nxt, c.snd_una
        c.win = _window.RecvWindow(
            c.profile, rcvbuf=params.rcvbuf, rcvbuf_locked=params.rcvbuf_locked,
            rcv_wscale=c.rcv_wscale,
            window_clamp=params.window_clamp, rcv_wnd=params.rcv_wnd, advmss=c.advmss,
            rcv_nxt=c.rcv_nxt, mss=c.mss, counters=stack.counters)
        c._init_rcvq_space(now)
        c.cc = make_cc(c.profile.get("net.ipv4.tcp_congestion_control", "cubic"), c.mss)
        if params.rtt_sample is not None and not params.synack_retransmitted:
            c.rto.sample(params.rtt_sample)
            c.mdev_seq = c.snd_nxt
        else:
            c.rto.fallback()
        _state.check(c.state, ESTABLISHED)
        c.state = ESTABLISHED
        stack.counters[mib.TcpPassiveOpens] += 1   # tcp_create_openreq_child
        stack.counters[mib.TcpCurrEstab] += 1
        stack.register(c)
        return c

    # ================================================================== application API

    def send_space(self) -> int:
        """What a write takes now without waiting (it may take more: an skb partly sent during
        the copy refills): the tail skb's room, then whole size_goal skbs while
        ``sk_stream_memory_free`` (each charges its data and TX_SKB_TRUESIZE; the last may
        overshoot sk_sndbuf). 0 while a writer waits for ``sk_stream_write_space`` (SOCK_NOSPACE)."""
        if self.state not in CAN_SEND or self.fin_queued or self.nospace:
            return 0
        room = self._tail_room()
        free = self.sndbuf - self._wmem_queued() - room
        if free > 0 and (self._notsent() + room) < self._lowat():
            goal = self._size_goal()
            room += -(-free // (goal + TX_SKB_TRUESIZE)) * goal
        return room

    def _wmem_queued(self) -> int:
        """sk_wmem_queued: each queued skb's truesize, its data plus TX_SKB_TRUESIZE
        (``tcp_skb_entail``, less what ``tcp_trim_head`` frees of a partly acked skb). The
        parts ``tso_fragment`` splits off a partly sent skb are not counted apart."""
        return len(self.sndq) + TX_SKB_TRUESIZE * len(self.skbs or ())

    def _memory_free(self, wake: int = 0) -> bool:
        """``__sk_stream_memory_free``: sk_wmem_queued below sk_sndbuf, and unsent bytes
        (doubled when ``wake``) below the low-water mark (``tcp_stream_memory_free``)."""
        return self._wmem_queued() < self.sndbuf and (self._notsent() << wake) < self._lowat()

    def send(self, data, now: float, eor: bool = False, more: bool = False) -> int:
        """write(2) (``tcp_sendmsg_locked``): fill the tail skb up to size_goal, then a new skb
        while ``sk_stream_memory_free`` (``_skb_queue``; ``eor``: MSG_EOR, applied when all of
        ``data`` fits). Each skb that fills up before the copy ends is pushed at once:
        ``__tcp_push_pending_frames`` with PSH when ``forced_push`` marked it, else
        ``tcp_push_one`` when it is the send head; the unsent rest of a partly sent skb keeps
        filling. At the end ``tcp_push``: the tail skb gets PSH and Nagle/TCP_CORK apply, but
        with ``more`` (MSG_MORE) no PSH and the push is corked (TCP_NAGLE_CORK). When not all
        of ``data`` fits, ``wait_for_space`` sets SOCK_NOSPACE and pushes with PSH and
        TCP_NAGLE_PUSH, MSG_MORE or not."""
        self.stack.now = now
        if self.error:
            raise ConnectionStateError(f"send on a connection that failed: {self.error}")
        if self.fin_queued or self.state in (CLOSED, TIME_WAIT):
            raise ConnectionStateError(f"send after shutdown/close (state {self.state})")
        if self.state not in CAN_SEND or not len(data):
            return 0
        if not self._tail_room() and not self._memory_free():
            self.nospace = True
            return 0
        if not self._notsent():
            self._chrono_start(CHRONO_BUSY, now)    # tcp_add_write_queue_tail: a new queue head
        if self.skbs is None:
            self.pushed_seq = (self.snd_una + len(self.sndq)) & MASK
        total = len(data)
        n = 0
        while n < total:
            room = self._tail_room()
            if not room:
                if not self._memory_free():
                    break                  # new_segment -> wait_for_space
                room = self._size_goal()
            take = min(total - n, room)
            self.sndq += data[n:n + take]
            self._skb_queue(take, eor and n + take == total, mark=False, copied=n)
            n += take
            if n < total and not self._tail_room():   # the skb reached size_goal
                if self.pushed_seq == (self.snd_una + len(self.sndq)) & MASK:
                    self._push(now, nonagle=NAGLE_PUSH)           # forced_push
                elif self._tail_is_send_head():
                    self._push(now, nonagle=NAGLE_PUSH, one=True)  # tcp_push_one
        full = n == total
        if not full:
            self.nospace = True            # wait_for_space: set_bit(SOCK_NOSPACE)
        self._skb_queue(0, eor and full, mark=not (more and full))
        self._push(now, nonagle=None if full and not more else NAGLE_PUSH if not full else NAGLE_CORK)
        return n

    def _check_space(self) -> None:
        """``tcp_check_space`` after an ACK: a writer out of space (SOCK_NOSPACE) is woken by
        ``sk_stream_write_space`` once the socket is writeable again."""
        if self.nospace and self.writeable():
            self.nospace = False

    def _chrono_start(self, kind: int, now: float) -> None:
        """``tcp_chrono_start``: a more interesting state (busy < rwnd-limited) takes over; time
        is kept in jiffies (``tcp_jiffies32``), as ``tcp_get_info_chrono_stats`` reports it."""
        ch = self.chrono
        if ch is None:
            ch = self.chrono = [0, 0, 0, 0]
        if kind > ch[0]:
            self._chrono_set(kind, now)

    def _chrono_stop(self, kind: int, now: float) -> None:
        """``tcp_chrono_stop``: nothing queued or in flight ends the chronograph; else the
        state that stops falls back to busy."""
        if self.chrono is None:
            return
        if not self.sndq and self.snd_una == self.snd_max:
            self._chrono_set(0, now)
        elif kind == self.chrono[0]:
            self._chrono_set(CHRONO_BUSY, now)

    def _chrono_set(self, kind: int, now: float) -> None:
        """``tcp_chrono_set``: charge the time since chrono_start to the state that ends."""
        ch = self.chrono
        t = int(now * HZ)
        if ch[0]:
            ch[1 + ch[0]] += t - ch[1]
        ch[0], ch[1] = kind, t

    def chrono_us(self) -> tuple[int, int]:
        """(tcpi_busy_time, tcpi_rwnd_limited) in µs (``tcp_get_info_chrono_stats``: busy time
        is the total of all states; the running state counts up to now)."""
        ch = self.chrono
        if ch is None:
            return 0, 0
        stats = [ch[2], ch[3]]
        if ch[0]:
            stats[ch[0] - 1] += int(self.stack.now * HZ) - ch[1]
        us = 1_000_000 // HZ
        return sum(stats) * us, stats[1] * us

    def _lowat(self) -> int:
        """``tcp_notsent_lowat``: the socket's TCP_NOTSENT_LOWAT, else the sysctl (UINT_MAX
        where the profile predates it)."""
        return self.notsent_lowat or self.profile.get("net.ipv4.tcp_notsent_lowat", UNLIMITED)

    def _notsent(self) -> int:
        """write_seq - snd_nxt."""
        return len(self.sndq) - ((self.snd_nxt - self.snd_una) & MASK)

    def writeable(self) -> bool:
        """POLLOUT (``__sk_stream_is_writeable(sk, 1)`` from ``tcp_poll``, and what
        ``sk_stream_write_space`` wakes a blocked writer on): free space (sk_sndbuf -
        sk_wmem_queued: ``sk_stream_wspace``) at least half of what is queued
        (``sk_stream_min_wspace``), and ``tcp_stream_memory_free`` with wake=1."""
        if self.state not in CAN_SEND or self.fin_queued:
            return False
        queued = self._wmem_queued()
        return self.sndbuf - queued >= queued >> 1 and self._memory_free(1)

    def set_nodelay(self, on: bool, now: float) -> None:
        """TCP_NODELAY (``__tcp_sock_set_nodelay``): on sets TCP_NAGLE_OFF|TCP_NAGLE_PUSH and
        pushes what is pending (a cork set too is overridden by that push)."""
        self.stack.now = now
        self.nodelay = bool(on)
        if on:
            self.nagle_push = True
            self._push(now)

    def set_cork(self, on: bool, now: float) -> None:
        """TCP_CORK (``__tcp_sock_set_cork``): hold sub-MSS segments; off pushes what is pending
        (with TCP_NAGLE_PUSH when TCP_NODELAY is on). A cork nobody lifts ends when the probe
        timer (RTO, at least 200 ms) sends the held data (``tcp_write_wakeup``)."""
        self.stack.now = now
        self.cork = bool(on)
        if not on:
            if self.nodelay:
                self.nagle_push = True
            self._push(now)

    def _idle_restart(self, now: float) -> None:
        """``tcp_slow_start_after_idle_check`` (when new data goes with nothing in flight, from
        ``_push``: after a write or when a window update ends zero-window probing,
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

    def inq_hint(self) -> int:
        """TCP_CM_INQ's value (``tcp_inq_hint``): rcv_nxt - copied_seq, where an in-order FIN
        counts one until a read passes it; 0 becomes 1 once the socket is done (SOCK_DONE:
        FIN received or ``tcp_done``) so the reader goes on to see EOF."""
        inq = len(self.rcvq) + (1 if self.fin_rcvd and self.rcvq else 0)
        if inq == 0 and (self.fin_rcvd or self.state is CLOSED):
            inq = 1
        return inq

    def at_eof(self) -> bool:
        return self.fin_rcvd and not self.rcvq

    def _copied_seq(self) -> int:
        return (self.rcv_nxt - len(self.rcvq) - (1 if self.fin_rcvd else 0)) & MASK

    def _urg_offset(self) -> int | None:
        """Bytes before the urgent byte in the receive queue (None: no urgent data queued)."""
        if self.urg_seq is None:
            return None
        off = (self.urg_seq - self._copied_seq()) & MASK
        return off if off < len(self.rcvq) else None

    def read_sock(self, max_bytes: int, now: float) -> bytes:
        """splice(2) from the socket (``tcp_read_sock``): like read, but it stops at the urgent
        mark, and at the mark it takes nothing (``tcp_splice_read`` then returns 0)."""
        off = self._urg_offset()
        return self.recv(min(max_bytes, off), now) if off is not None else self.recv(max_bytes, now)

    def recv(self, max_bytes: int, now: float) -> bytes:
        """read(2): copy out, then ``tcp_cleanup_rbuf`` decides whether an ACK goes now. Urgent
        data (not SO_OOBINLINE): a read stops before the urgent byte; a read starting at it
        skips it (``tcp_recvmsg_locked``: urg_hole), which ends the urgent state."""
        self.stack.now = now
        q = self.rcvq
        if not q or max_bytes <= 0:
            return b""
        off = self._urg_offset()
        if off == 0:
            q.take(1)                      # the out-of-band byte leaves the stream
            self.copied += 1
            self.urg_seq = None
            return self.recv(max_bytes, now)
        n = min(max_bytes, len(q), off if off is not None else max_bytes)
        data = q.take(n)
        self.copied += n
        if self.win is not None:
            self._rcv_space_adjust(now)
        self._cleanup_rbuf(n, now)
        return data

    def shutdown_write(self, now: float) -> None:
        """shutdown(SHUT_WR): FIN after queued data (``tcp_shutdown`` → ``tcp_send_fin``)."""
        self.stack.now = now
        st = self.state
        if st in (SYN_SENT,):
            self._done(CLOSED)
            return
        if self.fin_queued or st not in (ESTABLISHED, CLOSE_WAIT, SYN_RECV):
            return
        self.fin_queued = True
        self.fin_seq = (self.snd_una + len(self.sndq)) & MASK
        self._set_state(FIN_WAIT_1 if st in (ESTABLISHED, SYN_RECV) else LAST_ACK)
        self._push(now)

    def close(self, now: float) -> None:
        """close(2) (``tcp_close``): unread data → RST (RFC 9293 3.10.4, TcpExtTCPAbortOnClose);
        otherwise FIN, and the socket becomes an orphan that drops later data with a RST."""
        self.stack.now = now
        if self.state is CLOSED:
            return
        self.app_closed = True
        if self.rcvq:
            self.stack.counters[mib.TcpExtTCPAbortOnClose] += 1
            self._send_rst(now)
            self._done(CLOSED)
            return
        if self.state is SYN_SENT:
            self._done(CLOSED)
            return
        self.shutdown_write(now)
        if self.state is FIN_WAIT_2:
            self._arm_tw(now + self.profile.get("net.ipv4.tcp_fin_timeout", 60))

    def abort(self, now: float) -> None:
        """SO_LINGER 0 close (``tcp_disconnect``): RST in synchronized states
        (``tcp_need_reset``), counted TcpExtTCPAbortOnData as Linux does."""
        self.stack.now = now
        if self.state is CLOSED:
            return
        self.app_closed = True
        if self.state in SYNCED:
            self.stack.counters[mib.TcpExtTCPAbortOnData] += 1
            self._send_rst(now)
        self._done(CLOSED)

    def set_rcvbuf(self, n: int) -> None:
        """SO_RCVBUF: ``sock_set_rcvbuf`` (limit rmem_max, double, lock)."""
        buf = _window.sock_set_rcvbuf(self.profile, n)
        if self.win is not None:
            self.win.set_rcvbuf(buf)
        else:
            self._rcvbuf, self._rcvbuf_locked = buf, True

    @property
    def rcvbuf(self) -> int:
        """sk_rcvbuf. One owner at a time: the connection until the receive window exists
        (SYN-SENT, or a child being built), then ``RecvWindow.rcvbuf`` (autotuning grows it)."""
        return self.win.rcvbuf if self.win is not None else self._rcvbuf

    @property
    def rcvbuf_locked(self) -> bool:
        """SOCK_RCVBUF_LOCK (SO_RCVBUF was set), owned like ``rcvbuf``."""
        return self.win.rcvbuf_locked if self.win is not None else self._rcvbuf_locked

    def set_sndbuf(self, n: int) -> None:
        """SO_SNDBUF (``sock_setsockopt``): limited by wmem_max, doubled, floored, locked."""
        self.sndbuf = _window.sock_set_sndbuf(self.profile, n)
        self.sndbuf_locked = True

    def on_segment(self, seg: Segment, now: float) -> bool:
        """Entry point from the stack's demux. False = not ours after all (a SYN that may
        reopen a TIME-WAIT pair goes on to the listener)."""
        self.segs_in += 1
        self.lastrcv = now
        st = self.state
        # header prediction (tcp_rcv_established): in order, and !after(ack_seq, snd_nxt)
        if st is ESTABLISHED and seg.flags & (SYN | RST | FIN | URG) == 0 and seg.seq == self.rcv_nxt \
                and ((self.snd_max - seg.ack) & MASK) < HALF \
                and not seg.options.sack_blocks and not self.reasm.blocks:
            self._fast_path(seg, now)
        elif st is SYN_SENT:
            self._rcv_synsent(seg, now)
        elif st is TIME_WAIT:
            return self._rcv_timewait(seg, now)
        elif st is CLOSED:
            return False
        else:
            self._rcv_synced(seg, now)
        return True

    # ================================================================== state changes

    def _set_state(self, new: State) -> None:
        """``tcp_set_state``: checks the move against ``state.TRANSITIONS`` and keeps
        TcpCurrEstab (ESTABLISHED and CLOSE-WAIT count) and TcpEstabResets."""
        old = self.state
        new = State(new)                   # the core compares states by identity
        if old is new:
            return
        _state.check(old, new)
        c = self.stack.counters
        was = old in (ESTABLISHED, CLOSE_WAIT)
        now_est = new in (ESTABLISHED, CLOSE_WAIT)
        if was and not now_est:
            c[mib.TcpCurrEstab] = c.get(mib.TcpCurrEstab, 0) - 1
            if new is CLOSED:
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
            self._done(CLOSED)
            return False
        stack.tw_count += 1
        self._set_state(TIME_WAIT)
        self.rtx_at = self.dack_at = None
        self.sndq.clear()
        self.skbs = None
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
        self.error = "refused" if st is SYN_SENT else "reset"
        self._done(CLOSED)

    def _done(self, new: str) -> None:
        """``tcp_done``: CLOSED, timers off, out of the demux table (TcpAttemptFails from the
        SYN states; TcpEstabResets is counted by ``_set_state``)."""
        st = self.state
        c = self.stack.counters
        if st in (SYN_SENT, SYN_RECV):
            c[mib.TcpAttemptFails] += 1
        elif st is TIME_WAIT:
            self.stack.tw_count -= 1
        self._set_state(CLOSED)
        self.rtx_at = self.dack_at = self.tw_at = None
        self.deadline = None
        self.stack.unregister(self)

    # ================================================================== views

    @property
    def rcv_mss(self) -> int:
        """The peer's MSS as we estimate it; the receive window owns it (``RecvWindow.rcv_mss``),
        TCP_MSS_DEFAULT until the window exists."""
        return self.win.rcv_mss if self.win is not None else MSS_DEFAULT

    def info(self) -> dict:
        """``tcp_get_info``-like snapshot for ``ss -ti`` views and comparisons with TCP_INFO.
        Times in ms like tcp_info (rto, rtt, rttvar, lastsnd/lastrcv/lastack relative to now)."""
        now = self.stack.now
        win = self.win
        r = self.rto
        busy, rwnd_limited = self.chrono_us()
        return {
            "state": self.state,
            "snd_wscale": self.snd_wscale, "rcv_wscale": self.rcv_wscale,
            "rto": round(r.rto * 1000), "backoff": r.backoffs,
            "rtt": round((r.srtt or 0) * 1000, 3), "rttvar": round((r.rttvar or 0) * 1000, 3),
            "ato": round(self.dack.ato * 1000),
            "mss": self.mss, "advmss": self.advmss, "rcv_mss": self.rcv_mss,
            "pmtu": self.stack.mtu,     # icsk_pmtu_cookie: the device MTU (no PMTU discovery modelled)
            "cwnd": self.cc.cwnd if self.cc else 10,
            "ssthresh": self.cc.ssthresh if self.cc else 0x7FFFFFFF,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": win.rcv_wnd if win else self._init_rcv_wnd,
            "rcv_space": self.rcvq_space, "rcv_rtt": round(self.rcv_rtt * 1000, 3),
            "rcvbuf": self.rcvbuf,
            "rcv_ssthresh": win.rcv_ssthresh if win else 0,
            "window_clamp": win.window_clamp if win else self._init_clamp,
            "unacked": self._packets_out() if self.cc else 0,
            "retrans": self.retrans_out, "total_retrans": self.total_retrans,
            "bytes_sent": self.bytes_sent, "bytes_acked": self.bytes_acked,
            "bytes_received": self.bytes_received,
            "segs_out": self.segs_out, "segs_in": self.segs_in,
            "lastsnd": round((now - self.lastsnd) * 1000), "lastrcv": round((now - self.lastrcv) * 1000),
            "lastack": round((now - self.lastack) * 1000),
            "ts": self.ts_ok, "sack": self.sack_ok, "wscale_ok": self.wscale_ok, "ecn": self.ecn_ok,
            "pingpong": self.dack.in_pingpong(), "quick": self.dack.quick, "reordering": self.reordering,
            "notsent": len(self.sndq) - ((self.snd_nxt - self.snd_una) & MASK)
            if self.state in CAN_SEND else 0,
            "recv_q": len(self.rcvq), "send_q": len(self.sndq),
            "cc": self.cc.name if self.cc else "",
            "path": self.path,
            "ca_state": self._ca_state(), "sacked": -(-self.sb.sacked_bytes // self.mss),
            "lost": self.lost_out, "reord_seen": self.reord_seen, "dsack_dups": self.dsack_dups,
            "busy_us": busy, "rwnd_limited_us": rwnd_limited, "probes": self.probes_out,
        }

    def _packets_out(self) -> int:
        """tcpi_unacked: ``tp->packets_out``, the segments sent and not cumulatively ACKed
        (SACKed, lost and never-sent-again ones included). Counted from RACK's per-skb record
        once it marks losses; otherwise the in-flight count as before (equal to packets_out
        with nothing SACKed; the SACKed-only case is not corrected here)."""
        if self.lost_out or self.rack_retx:
            return sum(self._pcount(e) for e in self.rq)
        return self._inflight_segs()

    def _ca_state(self) -> int:
        """icsk_ca_state as tcp_get_info reports it: Loss (4) from an RTO until snd_max of
        then is ACKed, Recovery (3) in fast recovery, Disorder (1) with SACKed or duplicate-
        ACKed data out (``tcp_try_to_open``, on an ACK: a loss probe alone leaves Open), else
        CWR (2) after an ECN echo until high_seq is ACKed, else Open (0)."""
        if self.loss_high is not None:
            return 4
        if self.in_recovery:
            return 3
        if self.cwr_high is not None:
            return 2
        if self.sb.sacked_bytes or (self.dupacks and not self.sack_ok):
            return 1        # tcp_left_out: SACKed data, or (Reno) duplicate ACKs as sacked_out
        return 0

    def __repr__(self) -> str:
        return f"<Connection {self.lport}->{self.rport} {self.state}>"
