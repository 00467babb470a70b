"""The Linux listener: request socks, ``tcp_conn_request``, ``tcp_check_req``, SYN cookies.

Semantics from shared/reference/linux-freebsd-passive-open.md §1-§3, §6.2; the pure rules live in
``linux_rules.py``, which lists the reference's [mem] facts that were checked against kernel text
(defer-accept rounding, timer/retransmit counters, flood line per version, tcp_peer_is_proven,
out-of-window rate limit). One listener = one LISTEN socket
with its SYN queue (request socks keyed by 4-tuple) and accept queue (established children).

All request-sock timers share ONE stack deadline: one FIFO of request socks per timer delay
(1, 2, 4 ... s: equal delays expire in arming order) with lazy deletion, so a SYN flood costs an
append per SYN and nothing walks the queue.

Approximations (documented, deliberate):
  * "proven" peers (``tcp_peer_is_proven``): an address we completed a handshake with on this
    listener; Linux asks the route's TCP metrics cache for an RTT, kept across sockets.
  * pre-4.4 kernels ran the SYN-ACK timer from a 200 ms sweep; here every profile retransmits at
    exactly 1, 3, 7, 15, 31 s.
  * advmss is the stack's ``mtu`` (1500) - 40 on IPv4, - 60 on IPv6 (``stack.advmss``).
  * the RTT handed to the child is the SYN-ACK -> ACK time only when no SYN-ACK was resent
    (Karn); Linux may still take one from the TS echo.
  * a SYN that reopens a TIME-WAIT pair is treated as a fresh SYN (no ``tw_isn`` exemption).
"""
from __future__ import annotations

from .. import mib

from collections import deque

from ..core.conn import Connection
from ..core.oow import oow_rate_limited
from ..core.params import HandshakeParams
from ..core.seq import seq_gt
from ..core.window import (cookie_init_rwin, openreq_init_rwin, sock_set_rcvbuf,
                           sock_set_sndbuf, synack_window_field)
from ..wire.segment import ACK, CWR, ECE, FIN, RST, SYN, Segment
from . import linux_rules as R
from ..wire.ipv6 import IPV6_MIN_MTU, V4_MAX
from .cookies import LinuxCookies, LinuxCookies6, decode_ts, encode_ts
from .linux_reqsk import (RequestSock, make_reqsk_ack, make_synack, parse_syn_options,
                          req_key)


class _TimerQueue(deque):
    """Request socks armed with one delay, in arming order (so in expiry order)."""

    __slots__ = ("delay", "tail")

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.tail = 0.0                  # expiry of the last entry appended

    def head(self) -> RequestSock | None:
        """The first live entry; stale ones in front of it are dropped."""
        while self:
            r = self[0]
            if r.tq is self:
                if r.queued == 1:
                    if r.alive:
                        return r
                    r.tq, r.queued = None, 0
                else:
                    r.queued -= 1
            self.popleft()
        return None

    def insert_sorted(self, req: RequestSock) -> None:
        """Rebuild in expiry order with ``req`` last among equals (only when time ran
        backwards: with a monotonic clock, appending keeps the order)."""
        live = {}
        for r in self:
            if r.tq is self and r.alive:
                live.pop(id(r), None)
                live[id(r)] = r              # a request's last entry is its live one
        live.pop(id(req), None)
        live[id(req)] = req
        order = sorted(live.values(), key=lambda r: r.expires)
        self.clear()
        for r in order:
            r.queued = 1
            self.append(r)
        self.tail = order[-1].expires


class LinuxListener:
    """A LISTEN socket with Linux semantics (interface: docs/design.md, "A listener object")."""

    def __init__(self, stack, *, port: int, backlog: int, addr: int = 0, rcvbuf=None, sndbuf=None,
                 defer_accept: int = 0, synack_retries=None):
        p = stack.profile
        self.stack = stack
        self.profile = p
        self.port = port
        self.addr = addr
        self.deadline = None
        self.closed = False
        # SO_RCVBUF / SO_SNDBUF set before listen(): doubled, clamped, and locked
        self.rcvbuf_locked = rcvbuf is not None
        self.rcvbuf = sock_set_rcvbuf(p, rcvbuf) if rcvbuf is not None else p["net.ipv4.tcp_rmem"][1]
        self.sndbuf_locked = sndbuf is not None
        self.sndbuf = sock_set_sndbuf(p, sndbuf) if sndbuf is not None else p["net.ipv4.tcp_wmem"][1]
        self.window_clamp = 0                     # TCP_WINDOW_CLAMP not set
        self.advmss = stack.advmss(0)              # IPv4: mtu - 40
        self.advmss6 = stack.advmss(V4_MAX + 1)    # IPv6: mtu - 60 (a dual-stack listener has both)
        self.rto_init = p["model.rto_initial"]
        self.rto_max = p["model.rto_max"]
        # TCP_DEFER_ACCEPT (seconds -> SYN-ACK rounds) and TCP_SYNCNT on the listener
        if defer_accept < 0 or (synack_retries is not None and not 1 <= synack_retries <= 255):
            raise ValueError("defer_accept must be >= 0 and synack_retries in 1..255")
        self.defer_rounds = R.secs_to_retrans(defer_accept, self.rto_init, self.rto_max)
        self.synack_retries = synack_retries
        self.backlog = R.listen_backlog(backlog, p["net.core.somaxconn"])
        # pre-4.4: the SYN table is sized once, at the first listen()
        self.pow2_size = R.pow2_synq_size(self.backlog, p["net.ipv4.tcp_max_syn_backlog"])
        self.accept_q: deque = deque()
        self.reqs: dict[bytes, RequestSock] = {}   # req_key(4-tuple) -> request (this shard's)
        # queue lengths, synflood_warned, last_overflow: shared by every shard (listen/shared.py)
        self.share = stack.listen_shares.attach(addr, port)
        self._tq: dict[float, _TimerQueue] = {}   # request timers: delay -> FIFO (see _arm)
        self.proven: set[int] = set()
        self.cookies = LinuxCookies(stack.secret)
        self.cookies6 = LinuxCookies6(stack.secret)
        self._rwin_cache: dict = {}
        self._synack_wnd: dict = {}               # cookie SYN-ACK window fields (_cookie_synack)

    # ---- listen(2) / close(2) / accept(2) -----------------------------------------------

    def relisten(self, backlog: int) -> None:
        """``inet_listen`` on a LISTEN socket: only the accept backlog changes."""
        self.backlog = R.listen_backlog(backlog, self.profile["net.core.somaxconn"])

    def accept(self):
        """``inet_csk_accept``: the oldest child (``sk_acceptq_removed``), or None."""
        if not self.accept_q:
            return None
        self.share.child_removed()
        return self.accept_q.popleft()

    @property
    def young(self) -> int:
        return self.share.young

    @property
    def synflood_warned(self) -> bool:
        return bool(self.share.warned)

    @property
    def last_overflow(self) -> float | None:
        return self.share.last_overflow

    @last_overflow.setter
    def last_overflow(self, t: float | None) -> None:
        self.share.last_overflow = t

    def close(self, now: float) -> None:
        """``inet_csk_listen_stop``: requests vanish silently, unaccepted children are reset."""
        self.closed = True
        young = sum(1 for r in self.reqs.values() if r.num_timeout == 0)
        self.share.add(-len(self.reqs), -young, -len(self.accept_q))   # this shard's part
        self.stack.listen_shares.detach(self.share)
        self.reqs.clear()
        self._tq.clear()
        self.deadline = None
        while self.accept_q:
            self.accept_q.popleft().abort(now)
        self.stack.unlisten(self)

    def queue_lengths(self) -> dict:
        reqs = [(r.raddr, r.rport, r.num_timeout, r.acked, r.expires) for r in self.reqs.values()]
        qlen, young, acceptq = self.share.counts()     # the listener's, over every shard
        return {"accept": acceptq, "syn": qlen, "young": young,
                "backlog": self.backlog, "requests": reqs}

    # ---- queue tests --------------------------------------------------------------------

    def synq_full(self, qlen: int) -> bool:
        """``inet_csk_reqsk_queue_is_full`` for the listener's ``qlen`` (over every shard)."""
        return R.synq_is_full(self.profile["model.synq_full_cmp"], qlen, self.backlog,
                              self.pow2_size)

    def admit_child(self) -> bool:
        """``sk_acceptq_is_full`` (False: full) and, when there is room, the slot taken
        (``sk_acceptq_added``) in the same step, so shards never overfill it."""
        return self.share.admit_child(self.backlog)

    def _listendrop(self) -> None:
        """``tcp_listendrop``."""
        self.stack.counters[mib.TcpExtListenDrops] += 1

    def _overflow_drop(self) -> None:
        """``tcp_v4_syn_recv_sock``/``tcp_conn_request`` on a full accept queue."""
        self.stack.counters[mib.TcpExtListenOverflows] += 1
        self._listendrop()

    # ---- input --------------------------------------------------------------------------

    def on_segment(self, seg: Segment, now: float) -> None:
        """Everything for this port that matched no connection (``tcp_v4_rcv`` for a listener)."""
        if self.closed:
            self.stack.reset_for(seg)
            return
        reqs = self.reqs
        req = reqs.get(req_key(seg.daddr, seg.saddr, seg.dport, seg.sport)) if reqs else None
        if req is not None and not self.check_req(req, seg, now):
            return
        self._listen_input(seg, now)

    def _listen_input(self, seg: Segment, now: float) -> None:
        """``tcp_v4_do_rcv`` on LISTEN: cookie check for non-SYNs, then ``tcp_rcv_state_process``."""
        fl = seg.flags
        if not fl & SYN and self._cookie_check(seg, now):
            return
        if fl & ACK:
            self.stack.reset_for(seg)          # LISTEN + ACK: "return 1", caller resets
        elif fl & RST:
            return
        elif fl & SYN:
            if not fl & FIN:
                self.conn_request(seg, now)

    # ---- tcp_conn_request ---------------------------------------------------------------

    def syn_flood_action(self, v6: bool = False) -> bool:
        """``tcp_syn_flood_action``: count, warn once per listener, say whether to send a cookie.

        The "new" line prints the listener's bound address (0.0.0.0 for a wildcard listener).
        ``line`` is the text as dmesg shows it (with the "TCP: " pr_fmt), ``body`` the printk body.
        """
        p, c = self.profile, self.stack.counters
        syncookies = p["net.ipv4.tcp_syncookies"]
        want = syncookies != 0
        c[mib.TcpExtTCPReqQFullDoCookies if want else mib.TcpExtTCPReqQFullDrop] += 1
        if syncookies != 2 and self.share.warn_once():
            body = R.synflood_line(p["model.synflood_msg"], p["model.synflood_proto"],
                                   self.addr, self.port, want, v6)
            self.stack.log("kernel_log", line=R.TCP_PR_FMT + body, body=body)
        return want

    def conn_request(self, syn: Segment, now: float) -> None:
        """``tcp_v4_conn_request`` / ``tcp_v6_conn_request`` + ``tcp_conn_request`` in the
        kernel's order (reference §2.2). An IPv6 SYN from an IPv4-mapped source (::ffff:0:0/96)
        is dropped as Ip6InHdrErrors, with no listen drop (``tcp_v6_conn_request``)."""
        p, c, st = self.profile, self.stack.counters, self.stack
        laddr, raddr = syn.daddr, syn.saddr
        v6 = laddr > V4_MAX
        if v6 and raddr >> 32 == 0xFFFF:
            c[mib.Ip6InHdrErrors] += 1
            return
        if R.is_bcast_or_mcast(syn.daddr):
            self._listendrop()
            st.log("syn_drop", reason="bcast_mcast", laddr=syn.daddr, lport=syn.dport,
                   raddr=syn.saddr, rport=syn.sport)
            return
        syncookies = p["net.ipv4.tcp_syncookies"]
        want_cookie = False
        sh = self.share
        qlen, young, acceptq = sh.counts()          # one read of the listener's queues
        if syncookies == 2 or self.synq_full(qlen):
            want_cookie = self.syn_flood_action(v6)
            if not want_cookie:
                self._listendrop()
                st.log("syn_drop", reason="syn_queue_full", laddr=syn.daddr, lport=syn.dport,
                       raddr=syn.saddr, rport=syn.sport, synq=qlen, backlog=self.backlog)
                return
        if R.acceptq_drops_syn(p["model.acceptq_syn_drop"], acceptq, self.backlog, young):
            self._overflow_drop()
            st.log("syn_drop", reason="accept_queue_full", laddr=syn.daddr, lport=syn.dport,
                   raddr=syn.saddr, rport=syn.sport, accept=acceptq,
                   backlog=self.backlog, young=young)
            return
        mss, tstamp_ok, tsval, wscale_ok, snd_wscale, sack_ok = parse_syn_options(
            p, syn.options, want_cookie, IPV6_MIN_MTU - 60) if v6 else parse_syn_options(
            p, syn.options, want_cookie)
        ts_off = st.ts_offset(laddr, raddr) if tstamp_ok else 0
        if not want_cookie:
            if R.three_quarter_drop(syncookies, p["net.ipv4.tcp_max_syn_backlog"], qlen,
                                    raddr in self.proven):
                self._listendrop()
                st.log("syn_drop", reason="syn_backlog_quarter_left", laddr=laddr,
                       lport=syn.dport, raddr=raddr, rport=syn.sport, synq=qlen,
                       max_syn_backlog=p["net.ipv4.tcp_max_syn_backlog"])
                return
            isn = st.isn(laddr, syn.dport, raddr, syn.sport)
        # tcp_ecn_create_request: the client asked (ECE+CWR on the SYN) and tcp_ecn allows it
        ecn_ok = bool(syn.flags & ECE and syn.flags & CWR) and p["net.ipv4.tcp_ecn"] != 0
        if want_cookie:
            # cookie_v6_init_sequence for IPv6 (its own MSS table), else cookie_v4_init_sequence
            isn, mss = (self.cookies6 if v6 else self.cookies).init_sequence(
                raddr, syn.sport, laddr, syn.dport, syn.seq, mss, now)
            sh.stamp_overflow(now)
            c[mib.TcpExtSyncookiesSent] = c.get(mib.TcpExtSyncookiesSent, 0) + 1
            if not tstamp_ok:
                ecn_ok = False
            if st.logging:
                st.log("cookie_sent", laddr=laddr, lport=syn.dport, raddr=raddr, rport=syn.sport,
                       mss=mss, wscale=self._openreq_rwin(tstamp_ok, wscale_ok, v6)[2]
                       if wscale_ok and p["model.cookie_wscale_mode"] != "gvisor" else None,
                       peer_wscale=snd_wscale if wscale_ok else None, sack=sack_ok, ts=tstamp_ok,
                       ecn=ecn_ok, opts_in_ts=tstamp_ok)
            # stateless: nothing is kept, the SYN-ACK goes out by its fields
            self._cookie_synack(syn, isn, tstamp_ok, tsval, ts_off, wscale_ok, snd_wscale,
                                sack_ok, ecn_ok, v6)
            return
        req = RequestSock(laddr, syn.dport, raddr, syn.sport, syn.seq, isn, mss, wscale_ok,
                          snd_wscale, sack_ok, tstamp_ok, tsval, ts_off, ecn_ok,
                          self._openreq_rwin(tstamp_ok, wscale_ok, v6))
        req.snt_synack = now
        self.reqs[req.key] = req                      # inet_csk_reqsk_queue_hash_add
        sh.req_added()
        self._arm(req, now, self.rto_init)
        st.emit(self._synack(req))
        if st.logging:
            st.log("syn_queued", laddr=laddr, lport=syn.dport, raddr=raddr, rport=syn.sport,
                   mss=mss, wscale=req.rcv_wscale if wscale_ok else None,
                   peer_wscale=snd_wscale if wscale_ok else None, sack=sack_ok, ts=tstamp_ok,
                   ecn=ecn_ok, window=req.rcv_wnd, synq=qlen + 1, backlog=self.backlog)

    def _openreq_rwin(self, tstamp_ok: bool, wscale_ok: bool, v6: bool = False) -> tuple[int, int, int]:
        """``tcp_openreq_init_rwin`` for this listener; it depends only on the listener's
        buffer, clamp and MSS (per family) and on two SYN options, so the answers are cached."""
        key = (tstamp_ok, wscale_ok, v6)
        r = self._rwin_cache.get(key)
        if r is None:
            r = self._rwin_cache[key] = openreq_init_rwin(
                self.profile, listener_rcvbuf=self.rcvbuf, rcvbuf_locked=self.rcvbuf_locked,
                listener_window_clamp=self.window_clamp, mss_clamp=self.advmss6 if v6 else self.advmss,
                tstamp_ok=tstamp_ok, wscale_ok=wscale_ok)
        return r

    def _synack(self, req: RequestSock) -> Segment:
        return make_synack(self.stack, req, self.advmss if req.laddr <= V4_MAX else self.advmss6)

    def _cookie_synack(self, syn: Segment, isn: int, tstamp_ok: bool, tsval: int, ts_off: int,
                       wscale_ok: bool, snd_wscale: int, sack_ok: bool, ecn_ok: bool, v6: bool) -> None:
        """``tcp_make_synack`` for a cookie: no request sock and no Segment, the fields go to
        ``emit_synack`` (the encoder may build them from a template). The client's options
        ride in the low 6 bits of the TSval (``cookie_init_timestamp``) before our per-pair
        offset is added; "gvisor" mode (model.cookie_wscale_mode) offers no window scaling."""
        w = self._synack_wnd.get((tstamp_ok, wscale_ok, v6))
        if w is None:
            rcv_wnd, _, rcv_wscale = self._openreq_rwin(tstamp_ok, wscale_ok, v6)
            gvisor = self.profile["model.cookie_wscale_mode"] == "gvisor"
            w = self._synack_wnd[tstamp_ok, wscale_ok, v6] = (
                synack_window_field(rcv_wnd), rcv_wscale if wscale_ok and not gvisor else None)
        ts = None
        st = self.stack
        if tstamp_ok:
            raw = encode_ts(st.ts_now(0), wscale_ok, snd_wscale, sack_ok, ecn_ok)
            ts = ((raw + ts_off) & 0xFFFFFFFF, tsval)
        st.emit_synack(syn.daddr, syn.saddr, syn.dport, syn.sport, isn, (syn.seq + 1) & 0xFFFFFFFF,
                       SYN | ACK | ECE if ecn_ok else SYN | ACK, w[0],
                       self.advmss6 if v6 else self.advmss, w[1], sack_ok,
                       ts)

    def _rtx_synack(self, req: RequestSock) -> None:
        """``tcp_rtx_synack``: resend, counting TcpRetransSegs and TCPSynRetrans."""
        c = self.stack.counters
        c[mib.TcpRetransSegs] += 1
        c[mib.TcpExtTCPSynRetrans] += 1
        req.num_retrans += 1
        self.stack.emit(self._synack(req))

    def _send_ack(self, req: RequestSock) -> None:
        self.stack.emit(make_reqsk_ack(self.stack, req))

    # ---- tcp_check_req ------------------------------------------------------------------

    def check_req(self, req: RequestSock, seg: Segment, now: float) -> bool:
        """``tcp_check_req`` for a segment matching a request sock (reference §3.1).

        Returns True when the listener must process the segment (wrong ACK -> RST).
        """
        p, c = self.profile, self.stack.counters
        fl = seg.flags & (RST | SYN | ACK)
        rcv_isn, snt_isn, ts_recent, ts_off, mss = req.seqs()     # packed: decode once
        rcv_nxt = (rcv_isn + 1) & 0xFFFFFFFF
        ts = seg.options.ts if req.tstamp_ok else None
        paws_reject = ts is not None and R.req_paws_reject(
            ts_recent, ts[0], bool(fl & RST), self.rto_init * (1 << req.num_timeout))
        ratelimit = p["net.ipv4.tcp_invalid_ratelimit"]
        # (a) a retransmitted SYN: answer it again, without counting a timeout
        if seg.seq == rcv_isn and fl == SYN and not paws_reject:
            if not self._oow_limited(req, seg, now, ratelimit):
                self._rtx_synack(req)
                self.stack.log("synack_retransmit", reason="dup_syn", laddr=req.laddr,
                               lport=req.lport, raddr=req.raddr, rport=req.rport,
                               retrans=req.num_retrans)
                self._arm(req, now, min(self.rto_init * (1 << req.num_timeout), self.rto_max))
            return False
        # (b) an ACK that does not acknowledge our SYN: the listener answers with a RST
        if fl & ACK and seg.ack != (snt_isn + 1) & 0xFFFFFFFF:
            return True
        # (c) PAWS and the receive window announced in the SYN-ACK
        end_seq = (seg.seq + seg.seg_len) & 0xFFFFFFFF
        if paws_reject or not R.tcp_in_window(seg.seq, end_seq, rcv_nxt,
                                              (rcv_nxt + req.rcv_wnd) & 0xFFFFFFFF):
            if not fl & RST and not self._oow_limited(req, seg, now, ratelimit):
                self._send_ack(req)
            if paws_reject:
                c[mib.TcpExtPAWSEstab] += 1
            return False
        if ts is not None and not seq_gt(seg.seq, rcv_nxt):
            req.ts_recent = ts_recent = ts[0]
        if seg.seq == rcv_isn:
            fl &= ~SYN            # the SYN bit is outside the window: ignore it
        # (d) RST or an in-window SYN kills the embryo
        if fl & (RST | SYN):
            c[mib.TcpAttemptFails] += 1
            self.stack.log("syn_recv_reset", reason="rst" if fl & RST else "syn",
                           laddr=req.laddr, lport=req.lport, raddr=req.raddr, rport=req.rport)
            self._embryonic_reset(req, seg)
            return False
        if not fl & ACK:
            return False
        # (e) TCP_DEFER_ACCEPT: swallow a bare ACK while the defer rounds last
        if req.num_timeout < self.defer_rounds and end_seq == rcv_nxt:
            req.acked = True
            c[mib.TcpExtTCPDeferAcceptDrop] += 1
            self.stack.log("defer_accept_drop", laddr=req.laddr, lport=req.lport,
                           raddr=req.raddr, rport=req.rport, round=req.num_timeout,
                           rounds=self.defer_rounds)
            return False
        # (f) the child, if the accept queue has room (tcp_v4_syn_recv_sock)
        if not self.admit_child():
            self._overflow_drop()
            if not p["net.ipv4.tcp_abort_on_overflow"]:
                self.stack.log("accept_overflow", path="synq", action="drop_ack",
                               laddr=req.laddr, lport=req.lport, raddr=req.raddr,
                               rport=req.rport, accept=self.share.acceptq, backlog=self.backlog)
                req.acked = True  # ACK dropped; the timer keeps resending the SYN-ACK
                return False
            self.stack.log("accept_overflow", path="synq", action="reset", laddr=req.laddr,
                           lport=req.lport, raddr=req.raddr, rport=req.rport,
                           accept=self.share.acceptq, backlog=self.backlog)
            self._embryonic_reset(req, seg)
            return False
        self._unlink(req)
        rtt = now - req.snt_synack if req.num_retrans == 0 else None
        self._make_child(seg, now, mss, rcv_isn, snt_isn, req.wscale_ok,
                         req.snd_wscale, req.rcv_wscale, req.sack_ok, req.tstamp_ok,
                         ts_recent, ts_off, req.rcv_wnd, req.window_clamp, req.ecn_ok,
                         "synq", req.num_retrans > 0, rtt)
        return False

    def _oow_limited(self, req: RequestSock, seg: Segment, now: float, ratelimit: int) -> bool:
        has_data = len(seg.payload) > 0 or bool(seg.flags & FIN)
        syn = bool(seg.flags & SYN)
        if oow_rate_limited(req.last_oow, now, ratelimit, has_data, syn):
            self.stack.counters[mib.TcpExtTCPACKSkippedSynRecv] += 1
            return True
        if syn or not has_data:
            req.last_oow = now
        return False

    def _embryonic_reset(self, req: RequestSock, seg: Segment) -> None:
        """``tcp_check_req`` embryonic_reset: RST unless the segment was one; EmbryonicRsts."""
        if not seg.flags & RST:
            self.stack.reset_for(seg)
        if req.alive:
            self._unlink(req)
            self.stack.counters[mib.TcpExtEmbryonicRsts] += 1

    # ---- the cookie ACK -----------------------------------------------------------------

    def _cookie_check(self, seg: Segment, now: float) -> bool:
        """``cookie_v4_check`` (reference §3.4). True when the segment was consumed."""
        p, c, st = self.profile, self.stack.counters, self.stack
        fl = seg.flags
        if p["net.ipv4.tcp_syncookies"] == 0 or not fl & ACK or fl & RST:
            return False
        if R.synq_no_recent_overflow(self.share.last_overflow, now):
            return False
        laddr, raddr = seg.daddr, seg.saddr
        v6 = laddr > V4_MAX       # cookie_v6_check: the IPv6 MSS table
        mss = (self.cookies6 if v6 else self.cookies).check(raddr, seg.sport, laddr, seg.dport,
                                                            seg.ack, seg.seq, now)
        if not mss:
            c[mib.TcpExtSyncookiesFailed] += 1
            st.log("cookie_rejected", reason="bad_cookie", laddr=laddr, lport=seg.dport,
                   raddr=raddr, rport=seg.sport)
            return False
        c[mib.TcpExtSyncookiesRecv] += 1
        saw_ts = seg.options.ts is not None and p["net.ipv4.tcp_timestamps"] != 0
        ts_off = st.ts_offset(laddr, raddr) if saw_ts else 0
        tsecr = seg.options.ts[1] if saw_ts else 0
        if tsecr:                 # a zero echo is decoded as it is (no offset removed)
            tsecr = (tsecr - ts_off) & 0xFFFFFFFF
        opts = decode_ts(p, tsecr, saw_ts)
        if opts is None:
            st.log("cookie_rejected", reason="bad_ts_options", laddr=laddr, lport=seg.dport,
                   raddr=raddr, rport=seg.sport)
            return False
        wscale_ok, snd_wscale, ecn_ok = opts.wscale_ok, opts.snd_wscale, opts.ecn_ok
        rcv_wnd, clamp, rcv_wscale = cookie_init_rwin(
            p, listener_rcvbuf=self.rcvbuf, rcvbuf_locked=self.rcvbuf_locked,
            listener_window_clamp=self.window_clamp, cookie_mss=mss, wscale_ok=wscale_ok)
        if st.logging:
            st.log("cookie_accepted", laddr=laddr, lport=seg.dport, raddr=raddr, rport=seg.sport,
                   mss=mss, wscale_ok=wscale_ok, peer_wscale=snd_wscale if wscale_ok else None,
                   sack=opts.sack_ok, ecn=ecn_ok, ts=saw_ts,
                   announced_wscale=self._openreq_rwin(saw_ts, wscale_ok, v6)[2]
                   if wscale_ok and p["model.cookie_wscale_mode"] != "gvisor" else None,
                   child_wscale=rcv_wscale if wscale_ok else None)
        if not self.admit_child():
            self._overflow_drop()
            st.log("accept_overflow", path="cookie", action="drop_ack", laddr=laddr,
                   lport=seg.dport, raddr=raddr, rport=seg.sport, accept=self.share.acceptq,
                   backlog=self.backlog)
            return True           # dropped silently: no RST, no state
        self._make_child(seg, now, mss, (seg.seq - 1) & 0xFFFFFFFF, (seg.ack - 1) & 0xFFFFFFFF,
                         wscale_ok, snd_wscale, rcv_wscale, opts.sack_ok, saw_ts,
                         seg.options.ts[0] if saw_ts else 0, ts_off, rcv_wnd, clamp, ecn_ok,
                         "cookie", False, None)
        return True

    # ---- the child ----------------------------------------------------------------------

    def _make_child(self, seg, now, mss, irs, iss, wscale_ok, snd_wscale, rcv_wscale, sack_ok,
                    tstamp_ok, ts_recent, ts_off, rcv_wnd, window_clamp, ecn_ok, path,
                    retransmitted, rtt) -> None:
        """``tcp_create_openreq_child`` + ``inet_csk_complete_hashdance`` + ``tcp_child_process``."""
        st = self.stack
        ws = snd_wscale if wscale_ok else 0
        advmss = self.advmss if seg.daddr <= V4_MAX else self.advmss6
        # positional (field order of HandshakeParams): keywords cost 5x as much per child
        params = HandshakeParams(
            seg.daddr, seg.dport, seg.saddr, seg.sport, iss, irs, min(mss, advmss),
            advmss, wscale_ok, ws, rcv_wscale if wscale_ok else 0, sack_ok, tstamp_ok,
            ts_recent, ts_off, rcv_wnd, window_clamp, seg.window << ws, self.rcvbuf,
            self.rcvbuf_locked, self.sndbuf, self.sndbuf_locked, ecn_ok, path, retransmitted, rtt)
        child = Connection.from_handshake(st, params, now, listener=self)   # TcpPassiveOpens
        self.proven.add(seg.saddr)
        self.accept_q.append(child)
        if st.logging:
            st.log("accept_queued", path=path, laddr=seg.daddr, lport=seg.dport, raddr=seg.saddr,
                   rport=seg.sport, mss=params.mss, wscale_ok=wscale_ok,
                   peer_wscale=ws if wscale_ok else None,
                   child_wscale=rcv_wscale if wscale_ok else None,
                   announced_wscale=(rcv_wscale if path == "synq" else self._openreq_rwin(
                       tstamp_ok, wscale_ok, seg.daddr > V4_MAX)[2]) if wscale_ok and not (
                       path == "cookie" and self.profile["model.cookie_wscale_mode"] == "gvisor")
                   else None, sack=sack_ok, ts=tstamp_ok, ecn=ecn_ok, retransmitted=retransmitted,
                   accept=self.share.acceptq, backlog=self.backlog)
        st.dirty.add(self)
        if len(seg.payload) or seg.flags & FIN:
            child.on_segment(seg, now)       # data on the completing ACK belongs to the child

    # ---- request-sock timers ------------------------------------------------------------

    def _arm(self, req: RequestSock, now: float, delay: float) -> None:
        """Expire ``req`` at now + delay. Timers with the same delay expire in the order they
        were armed, so each delay has a FIFO of request socks (8 bytes an entry, where a heap
        entry cost about 100). A re-armed request's older entry goes stale: ``req.queued``
        counts its entries in ``req.tq``, the only queue holding live ones (delays never
        shrink back: rto_init, then min(rto_init << n, rto_max))."""
        when = now + delay
        q = self._tq.get(delay)
        if q is None:
            q = self._tq[delay] = _TimerQueue(delay)
        unarmed = req.tq is None
        if req.tq is q and req.queued:
            if req.expires == when:
                return                       # armed again for the same instant: no change
            req.queued += 1
        else:
            req.tq, req.queued = q, 1
        req.expires = when
        if q and when < q.tail:
            q.insert_sorted(req)             # the caller's clock went backwards
        else:
            q.append(req)
            q.tail = when
            if unarmed and self.deadline is not None and when >= self.deadline:
                return                       # a new timer behind the earliest: nothing moves
        self._resched()

    def _next_timer(self) -> tuple[RequestSock | None, _TimerQueue | None]:
        """The earliest live request timer and its queue. Of two due at the same instant the
        one with the longer delay was armed first, and fires first, as it would in one heap
        ordered by (expiry, arming order) -- given a clock that never runs backwards (trio's,
        MockClock); if it does, such a tie may fire in the other order."""
        best, bq = None, None
        for q in self._tq.values():
            r = q.head()
            if r is not None and (best is None or r.expires < best.expires or (
                    r.expires == best.expires and q.delay > bq.delay)):
                best, bq = r, q
        return best, bq

    def _resched(self) -> None:
        """Keep the stack deadline equal to the earliest live request timer."""
        r, _ = self._next_timer()
        if r is not None:
            if r.expires != self.deadline:
                self.stack.schedule(self, r.expires)
        else:
            self.deadline = None

    def _unlink(self, req: RequestSock) -> None:
        """``reqsk_queue_removed``: leave the SYN queue (its heap entry goes stale)."""
        if req.alive:
            req.alive = False
            del self.reqs[req.key]
            self.share.req_removed(req.num_timeout == 0)
            if req.expires == self.deadline:
                self._resched()              # else the earliest timer is another request's

    def on_timer(self, now: float) -> None:
        """Fire every due request timer, then re-arm the listener's one deadline."""
        while True:
            req, q = self._next_timer()
            if req is None or req.expires > now:
                break
            q.popleft()
            req.tq, req.queued = None, 0
            self.reqsk_timer(req, now)
        self.deadline = None
        self._resched()

    def reqsk_timer(self, req: RequestSock, now: float) -> None:
        """``reqsk_timer_handler``: TCPTimeouts, resend or expire silently (reference §6.2)."""
        p = self.profile
        max_retries = self.synack_retries or p["net.ipv4.tcp_synack_retries"]
        pow2 = self.pow2_size if p["model.synq_full_cmp"] == "pow2" else None
        qlen, young, _ = self.share.counts()
        thresh = R.synack_thresh(max_retries, qlen, young, self.backlog, pow2)
        expire, resend = R.syn_ack_recalc(req.num_timeout, thresh, self.defer_rounds, req.acked)
        self.stack.counters[mib.TcpExtTCPTimeouts] += 1     # tcp_syn_ack_timeout
        if expire:
            self._unlink(req)
            self.stack.log("syn_expired", laddr=req.laddr, lport=req.lport, raddr=req.raddr,
                           rport=req.rport, retrans=req.num_retrans, acked=req.acked)
            return
        if resend:
            self._rtx_synack(req)
            self.stack.log("synack_retransmit", reason="timer", laddr=req.laddr,
                           lport=req.lport, raddr=req.raddr, rport=req.rport,
                           retrans=req.num_retrans)
        if req.num_timeout == 0:
            self.share.req_aged()
        req.num_timeout += 1
        self._arm(req, now, min(self.rto_init * (1 << req.num_timeout), self.rto_max))
