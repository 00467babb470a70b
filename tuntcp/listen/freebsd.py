"""The FreeBSD passive-open personality: syncache, syncookies, ``sonewconn`` and accept filters.

Rules (freebsd/freebsd-src, read for this module and paraphrased, never copied):

* ``solisten_proto``: a backlog < 0 or > kern.ipc.soacceptqueue becomes soacceptqueue (qlimit).
* ``solisten_clone`` (``sonewconn``): a new socket is refused while qlen > 3 * qlimit / 2 (integer
  division), so the completed queue reaches floor(1.5 * qlimit) + 1. A refusal counts
  tcps_listendrop and tcps_sc_aborted, logs "sonewconn: pcb ... Listen queue overflow: N already
  in queue awaiting acceptance (M occurrences)" at most once per kern.ipc.sooverinterval (60 s,
  per listener; M counts refusals since the last line), and ``tcp_input`` then sends a RST when
  net.inet.tcp.syncache.rst_on_sock_fail=1 or silently drops the ACK.
* ``solisten_enqueue``: with an accept filter the new socket goes on the incomplete queue
  (incqlen, not counted by the overflow test); while incqlen > qlimit the oldest held socket is
  aborted (RST). A filter's verdict moves the socket to the completed queue (``soisconnected``).
* ``syncache_expand``: an ACK without a syncache entry is tried as a cookie only if syncookies=1
  and (the bucket overflowed within the cookie lifetime or syncookies_only=1); the ACK must be
  ISS+1 and SEQ in (IRS, IRS+wnd]; a failure answers with a RST (``tcp_input`` dropwithreset).
  An entry hit by a wrong ACK has already left its bucket and is lost (counted Badack here).
  PAWS: a TSval older than the SYN's, or a missing TS when TS was negotiated, drops silently.
* ``syncache_respond``: SYN-ACK window = min(listener's receive buffer, 65535); our wscale is the
  smallest s with 65535 << s >= kern.ipc.maxsockbuf; MSS = interface MTU - 40 (60 on IPv6); TS and SACK are
  echoed when the SYN offered them (and rfc1323 / sack.enable allow).

Checked with the source search (freebsd/freebsd-src): the 3*qlimit/2 test, the log line text
(uipc_socket.c, also seen in a captured log), ``overinterval`` = 60 s and its ``ratecheck``, the
incomplete-queue abort in ``solisten_enqueue``, the syncache_expand cookie gate and the
rst_on_sock_fail default. From memory: ``tcp_input``'s "sending RST"/"try again" branch.
Consequence worth knowing: with rst_on_sock_fail=0 the refused entry is already gone, so the
client's next segment meets no entry and (unless a bucket overflowed recently) a RST anyway.
"""
from __future__ import annotations

from .. import mib

from collections import deque

from ..core.conn import Connection
from ..core.params import HandshakeParams
from ..core.seq import seq_le
from ..errors import StackError
from ..wire.codec import ip_str
from ..wire.ipv6 import V4_MAX
from ..wire.segment import ACK, FIN, RST, SYN, Segment, TcpOptions
from . import freebsd_accf as accf
from .bsdcookies import syncookie_generate, syncookie_lookup
from .freebsd_hold import hold
from .freebsd_syncache import Syncache, SyncacheEntry

TCP_MAXWIN = 65535
TCP_MAX_WINSHIFT = 14
TCP_MINMSS = 216


class FreeBSDListener:
    """A listening socket with the FreeBSD personality (see docs/design.md for the interface)."""

    def __init__(self, stack, syncache: Syncache, port: int, backlog: int, addr: int = 0,
                 rcvbuf=None, sndbuf=None, defer_accept: int = 0, synack_retries=None,
                 accept_filter=None):
        p = stack.profile
        if defer_accept:
            raise StackError("TCP_DEFER_ACCEPT is Linux-only; FreeBSD uses accept_filter="
                         "'dataready' or 'httpready'")
        if isinstance(accept_filter, tuple):
            accept_filter = accept_filter[0]
        if accept_filter is not None and accept_filter not in accf.FILTERS:
            raise StackError(f"unknown accept filter {accept_filter!r} (ENOENT); "
                         f"known: {', '.join(accf.FILTERS)}")
        if synack_retries is not None and not 0 <= synack_retries <= 12:
            raise StackError("synack_retries must be 0..12 (TCP_MAXRXTSHIFT)")
        self.stack = stack
        self.port = port
        self.addr = addr
        self.rcvbuf = int(rcvbuf) if rcvbuf else int(p["net.inet.tcp.recvspace"])
        self.sndbuf = int(sndbuf) if sndbuf else int(p["net.inet.tcp.sendspace"])
        self.rcvbuf_locked = bool(rcvbuf)
        self.sndbuf_locked = bool(sndbuf)
        self.accept_filter = accept_filter
        self.rexmt_limit = int(p["net.inet.tcp.syncache.rexmtlimit"]) if synack_retries is None \
            else int(synack_retries)
        self.syncache = syncache             # the vnet's (FreeBSDPassiveOpen's)
        self.syn_count = 0
        self.comp: deque = deque()           # so_comp: completed, waiting for accept()
        self.incomp: list = []               # so_incomp: held by an accept filter
        self.overcount = 0                   # sol_overcount
        self.lastover: float | None = None   # sol_lastover (ratecheck)
        self.deadline = None                 # timers live on the shared syncache
        self.closed = False
        self.backlog = 0
        self.relisten(backlog)

    # ---- listen(2) ---------------------------------------------------------------------

    def relisten(self, backlog: int) -> None:
        """``solisten_proto``: clamp to kern.ipc.soacceptqueue; negative means the maximum."""
        somax = int(self.stack.profile["kern.ipc.soacceptqueue"])
        self.backlog = somax if backlog < 0 or backlog > somax else int(backlog)

    def queue_lengths(self) -> dict:
        self._reap_held()
        return {"accept": len(self.comp), "syn": self.syn_count, "backlog": self.backlog,
                "qlen": len(self.comp), "incqlen": len(self.incomp), "incomplete": len(self.incomp),
                "maxqlen": self.backlog}

    def accept(self):
        self._reap_held()
        return self.comp.popleft() if self.comp else None

    def close(self, now: float) -> None:
        """``soclose`` on a listener: abort every queued child (RST); syncache entries stay and
        keep retransmitting (``syncache_timer`` does not check the listener)."""
        self.closed = True
        for conn in list(self.comp) + [h.conn for h in self.incomp]:
            conn.abort(now)
        self.comp.clear()
        self.incomp.clear()
        self.stack.unlisten(self)

    def on_timer(self, now: float) -> None:
        self.syncache.on_timer(now)

    # ---- input -------------------------------------------------------------------------

    def on_segment(self, seg: Segment, now: float) -> None:
        f = seg.flags
        if self.closed:
            self.stack.reset_for(seg)
            return
        if f & RST:
            self._chkrst(seg)
        elif f & SYN:
            if f & ACK:
                self.stack.reset_for(seg)    # SYN|ACK to a listener: dropwithreset
            else:
                self._syn(seg, now)
        elif f & ACK:
            self._ack(seg, now)
        # anything else (no SYN/ACK/RST) is dropped, as tcp_input does for a listener

    def _knob(self, name):
        return self.stack.profile[name]

    def _cookies_only(self) -> bool:
        return self.syncache.cookies_only(self.stack.now)

    def _syn(self, seg: Segment, now: float) -> None:
        """``syncache_add``."""
        sc = self.syncache
        c = self.stack.counters
        key = (seg.daddr, seg.dport, seg.saddr, seg.sport)
        bucket = sc.bucket_of(key)
        cookies = bool(self._knob("net.inet.tcp.syncookies"))
        e = None if self._cookies_only() else sc.lookup(key)
        if e is not None:
            c[mib.FreeBSDSyncacheDupsyn] += 1
            if e.ts_ok and seg.options.ts is not None:
                e.ts_recent = seg.options.ts[0]
            else:
                e.ts_ok = False
            self.send_synack(e)
            e.rxmits = 0
            sc.arm(e, now)
            self.stack.log("synack_retransmit", reason="dup_syn", laddr=seg.daddr,
                           lport=seg.dport, raddr=seg.saddr, rport=seg.sport, retrans=0)
            return
        e = self._new_entry(seg, key, bucket)
        stateless = self._cookies_only()
        if not stateless and not sc.make_room(bucket, now):
            if not cookies:
                self.stack.log("syncache_full_drop", lport=self.port, raddr=seg.saddr)
                return
            stateless = True
        if cookies:
            e.iss = syncookie_generate(sc.secrets, now, seg.daddr, seg.dport, seg.saddr,
                                       seg.sport, seg.seq, seg.options.mss,
                                       seg.options.wscale if e.wscale_ok else None, e.sack_ok,
                                       secmod=bucket)
            c[mib.FreeBSDSyncacheCookiesSent] += 1
            self.stack.log("cookie_sent", laddr=seg.daddr, lport=seg.dport, raddr=seg.saddr,
                           rport=seg.sport, mss=seg.options.mss,
                           wscale=e.rcv_wscale if e.wscale_ok else None,
                           peer_wscale=e.snd_wscale if e.wscale_ok else None, sack=e.sack_ok,
                           ts=e.ts_ok, stateless=stateless)
        else:
            e.iss = self.stack.isn(seg.daddr, seg.dport, seg.saddr, seg.sport)
        self.send_synack(e)
        if not stateless:
            sc.insert(e, now)
            self.stack.log("syn_queued", laddr=seg.daddr, lport=seg.dport, raddr=seg.saddr,
                           rport=seg.sport, mss=seg.options.mss,
                           wscale=e.rcv_wscale if e.wscale_ok else None,
                           peer_wscale=e.snd_wscale if e.wscale_ok else None, sack=e.sack_ok,
                           ts=e.ts_ok, ecn=False, window=e.wnd, synq=self.syn_count,
                           backlog=self.backlog)

    def _new_entry(self, seg: Segment, key, bucket) -> SyncacheEntry:
        e = SyncacheEntry(key, self, bucket)
        o = seg.options
        rfc1323 = bool(self._knob("net.inet.tcp.rfc1323"))
        e.irs = seg.seq
        e.peer_mss = o.mss
        e.wnd = min(max(self.rcvbuf, 0), TCP_MAXWIN)
        e.ts_ok = rfc1323 and o.ts is not None
        e.ts_recent = o.ts[0] if e.ts_ok else 0
        e.ts_off = self.stack.ts_offset(seg.daddr, seg.saddr) if e.ts_ok else 0
        e.wscale_ok = rfc1323 and o.wscale is not None
        e.snd_wscale = min(o.wscale, TCP_MAX_WINSHIFT) if e.wscale_ok else 0
        e.rcv_wscale = self._our_wscale() if e.wscale_ok else 0
        e.sack_ok = bool(o.sack_ok) and bool(self._knob("net.inet.tcp.sack.enable"))
        e.rexmt_limit = self.rexmt_limit
        return e

    def _our_wscale(self) -> int:
        sb_max = int(self._knob("kern.ipc.maxsockbuf"))
        s = 0
        while s < TCP_MAX_WINSHIFT and (TCP_MAXWIN << s) < sb_max:
            s += 1
        return s

    def _advmss(self, laddr: int) -> int:
        """``tcp_mssopt``: the interface MTU minus the IPv4 or IPv6 + TCP headers."""
        return max(self.stack.advmss(laddr), TCP_MINMSS)

    def send_synack(self, e: SyncacheEntry) -> None:
        """``syncache_respond`` with SYN|ACK."""
        laddr, lport, raddr, rport = e.key
        opts = TcpOptions(mss=self._advmss(laddr), wscale=e.rcv_wscale if e.wscale_ok else None,
                          sack_ok=e.sack_ok,
                          ts=(self.stack.ts_now(e.ts_off), e.ts_recent) if e.ts_ok else None)
        self.stack.emit(Segment(laddr, raddr, lport, rport, seq=e.iss,
                                ack=(e.irs + 1) & 0xFFFFFFFF, flags=SYN | ACK, window=e.wnd,
                                options=opts))

    def _chkrst(self, seg: Segment) -> None:
        """``syncache_chkrst``."""
        if self._cookies_only():
            return
        e = self.syncache.lookup((seg.daddr, seg.dport, seg.saddr, seg.sport))
        if e is None:
            return
        nxt = (e.irs + 1) & 0xFFFFFFFF
        if seg.seq == nxt:
            self.syncache.remove(e)
            self.stack.counters[mib.FreeBSDSyncacheReset] += 1
        elif ((seg.seq - nxt) & 0xFFFFFFFF) < e.wnd:
            laddr, lport, raddr, rport = e.key      # RFC 5961 challenge ACK
            ts = (self.stack.ts_now(e.ts_off), e.ts_recent) if e.ts_ok else None
            self.stack.emit(Segment(laddr, raddr, lport, rport, seq=(e.iss + 1) & 0xFFFFFFFF,
                                    ack=nxt, flags=ACK, window=e.wnd, options=TcpOptions(ts=ts)))

    def _ack(self, seg: Segment, now: float) -> None:
        """``syncache_expand`` then ``syncache_socket``."""
        sc = self.syncache
        c = self.stack.counters
        key = (seg.daddr, seg.dport, seg.saddr, seg.sport)
        cookies = bool(self._knob("net.inet.tcp.syncookies"))
        only = self._cookies_only()
        e = None if only else sc.lookup(key)
        path = "syncache"
        if e is None:
            bucket = sc.bucket_of(key)
            if not cookies or (not only and not sc.overflowed_recently(bucket, now)):
                self.stack.reset_for(seg)
                return
            info = syncookie_lookup(sc.secrets, now, seg.daddr, seg.dport, seg.saddr,
                                    seg.sport, seg.seq, seg.ack, secmod=bucket)
            if info is None:
                c[mib.FreeBSDSyncacheCookiesFailed] += 1
                self.stack.log("cookie_rejected", reason="bad_cookie", laddr=seg.daddr,
                               lport=seg.dport, raddr=seg.saddr, rport=seg.sport)
                self.stack.reset_for(seg)
                return
            c[mib.FreeBSDSyncacheCookiesRecv] += 1
            e = self._entry_from_cookie(key, bucket, info, seg)
            self.stack.log("cookie_accepted", laddr=seg.daddr, lport=seg.dport,
                           raddr=seg.saddr, rport=seg.sport, mss=e.peer_mss,
                           wscale_ok=e.wscale_ok,
                           peer_wscale=e.snd_wscale if e.wscale_ok else None, sack=e.sack_ok,
                           ecn=False, ts=e.ts_ok,
                           announced_wscale=e.rcv_wscale if e.wscale_ok else None,
                           child_wscale=e.rcv_wscale if e.wscale_ok else None)
            path = "cookie"
        else:
            ts = seg.options.ts
            if e.ts_ok and ts is not None and not seq_le(e.ts_recent, ts[0]):
                return                            # PAWS: silent drop, entry kept
            if e.ts_ok and ts is None and not self._knob("net.inet.tcp.tolerate_missing_ts"):
                return                            # RFC 7323 3.2: silent drop, entry kept
            sc.remove(e)
        if seg.ack != (e.iss + 1) & 0xFFFFFFFF or seq_le(seg.seq, e.irs) or \
                not seq_le(seg.seq, (e.irs + e.wnd) & 0xFFFFFFFF):
            if path == "syncache":
                c[mib.FreeBSDSyncacheBadack] += 1
            self.stack.reset_for(seg)
            return
        if not self._sonewconn_ok():
            c[mib.FreeBSDListenDrops] += 1
            c[mib.FreeBSDSyncacheAborted] += 1
            self.stack.log("accept_overflow", path=path, laddr=seg.daddr, lport=seg.dport,
                           raddr=seg.saddr, rport=seg.sport, accept=len(self.comp),
                           backlog=self.backlog,
                           action="reset" if self._knob("net.inet.tcp.syncache.rst_on_sock_fail")
                           else "drop_ack")
            if self._knob("net.inet.tcp.syncache.rst_on_sock_fail"):
                self.stack.reset_for(seg)
            return
        c[mib.FreeBSDSyncacheCompleted] += 1
        self._make_child(e, seg, path, now)

    def _entry_from_cookie(self, key, bucket, info, seg: Segment) -> SyncacheEntry:
        """``syncookie_lookup`` fills a temporary entry; TS only if this ACK carries it."""
        e = SyncacheEntry(key, self, bucket)
        e.alive = False
        e.irs, e.iss, e.peer_mss = info.irs, info.iss, info.peer_mss
        e.wscale_ok = info.wscale_ok
        e.snd_wscale = info.snd_wscale
        e.rcv_wscale = self._our_wscale() if info.wscale_ok else 0
        e.sack_ok = info.sack_ok
        e.wnd = min(max(self.rcvbuf, 0), TCP_MAXWIN)
        ts = seg.options.ts
        e.ts_ok = ts is not None and bool(self._knob("net.inet.tcp.rfc1323"))
        e.ts_recent = ts[0] if e.ts_ok else 0
        e.ts_off = self.stack.ts_offset(key[0], key[2]) if e.ts_ok else 0
        e.rxmits = 0
        return e

    def _sonewconn_ok(self) -> bool:
        """``solisten_clone``: refuse while qlen > 3 * qlimit / 2; log at most every interval."""
        qlen = len(self.comp)
        if not qlen > 3 * self.backlog // 2:
            return True
        self.overcount += 1
        now = self.stack.now
        interval = float(self._knob("kern.ipc.sooverinterval"))
        if self.lastover is None or now - self.lastover >= interval:
            self.lastover = now
            line = (f"sonewconn: pcb 0x{0xfffff80000000000 | (id(self) & 0xffffffffff):x} "
                    f"({ip_str(self.addr)}:{self.port} (proto 6)): Listen queue overflow: {qlen} "
                    f"already in queue awaiting acceptance ({self.overcount} occurrences)")
            self.overcount = 0
            self.stack.log("kernel_log", line=line)
        return False

    # ---- children ----------------------------------------------------------------------

    def _make_child(self, e: SyncacheEntry, seg: Segment, path: str, now: float) -> None:
        """``syncache_socket``: a connection from the entry, queued by ``solisten_enqueue``."""
        laddr, lport, raddr, rport = e.key
        advmss = self._advmss(laddr)
        # no MSS option: V_tcp_mssdflt, or V_tcp_v6mssdflt (1220) on IPv6 (tcp_mss_update)
        dflt = int(self._knob("net.inet.tcp.mssdflt")) if laddr <= V4_MAX else 1220
        mss = max(min(e.peer_mss or dflt, advmss), TCP_MINMSS)
        params = HandshakeParams(
            laddr=laddr, lport=lport, raddr=raddr, rport=rport, iss=e.iss, irs=e.irs,
            mss=mss, advmss=advmss, wscale_ok=e.wscale_ok,
            snd_wscale=e.snd_wscale if e.wscale_ok else 0,
            rcv_wscale=e.rcv_wscale if e.wscale_ok else 0,
            sack_ok=e.sack_ok, tstamp_ok=e.ts_ok, ts_recent=e.ts_recent, ts_off=e.ts_off,
            rcv_wnd=e.wnd, window_clamp=min(self.rcvbuf, TCP_MAXWIN << e.rcv_wscale),
            snd_wnd=seg.window << (e.snd_wscale if e.wscale_ok else 0),
            rcvbuf=self.rcvbuf, rcvbuf_locked=self.rcvbuf_locked, sndbuf=self.sndbuf,
            sndbuf_locked=self.sndbuf_locked, path=path,
            synack_retransmitted=e.rxmits > 1, rtt_sample=None)
        conn = Connection.from_handshake(self.stack, params, now, listener=self)
        self.stack.log("accept_queued" if self.accept_filter is None else "accf_held",
                       lport=lport, raddr=raddr, rport=rport, path=path)
        if self.accept_filter is None:
            self.comp.append(conn)
            self.stack.dirty.add(self)
            if seg.payload or seg.flags & FIN:
                conn.on_segment(seg, now)
            return
        while len(self.incomp) > self.backlog:      # solisten_enqueue: abort the oldest held
            old = self.incomp.pop(0)
            old.release_hook()
            old.conn.abort(now)
            self.stack.log("accf_aborted", lport=lport, raddr=old.conn_key[2])
        h = hold(self, conn, params)
        self.incomp.append(h)
        if seg.payload or seg.flags & FIN:
            conn.on_segment(seg, now)               # goes through the hold hook
        else:
            self.filter_check(h, now)

    def filter_check(self, h, now: float) -> None:
        """Run the accept filter on a held connection; release it to the completed queue."""
        if h not in self.incomp:
            return
        conn = h.conn
        if conn.state == "CLOSED":                  # reset or timed out while held: gone
            self.incomp.remove(h)
            h.release_hook()
            return
        buf = h.buffered()
        eof = conn.state in ("CLOSE-WAIT", "LAST-ACK", "CLOSING", "TIME-WAIT")
        full = len(buf) >= self.rcvbuf
        if accf.decide(self.accept_filter, buf, eof, full,
                       bool(self._knob("net.inet.accf.http.parsehttpversion"))):
            self.incomp.remove(h)
            h.release_hook()
            self.comp.append(conn)                  # soisconnected: no limit check here
            self.stack.dirty.add(self)
            self.stack.log("accf_released", lport=self.port, raddr=h.conn_key[2],
                           filter=self.accept_filter, buffered=len(buf))

    def _reap_held(self) -> None:
        for h in [h for h in self.incomp if h.conn.state == "CLOSED"]:
            self.incomp.remove(h)
            h.release_hook()
