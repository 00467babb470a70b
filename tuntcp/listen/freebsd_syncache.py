"""The FreeBSD syncache: one per vnet (kept by ``personality.FreeBSDPassiveOpen``), shared by
every FreeBSD listener.

Semantics from freebsd/freebsd-src sys/netinet/tcp_syncache.c (read for this module; not copied):

* ``syncache_hashbucket``: the bucket is a keyed hash of (foreign addr, foreign port, local port)
  masked by hashsize; entries are matched on the full 4-tuple (``syncache_lookup``).
* ``syncache_insert``: a full bucket (bucketlimit) loses its *oldest* entry, stamps the bucket's
  last-overflow time and counts tcps_sc_bucketoverflow. Newest entries sit at the head.
* cachelimit (the UMA zone limit): when it is reached a new SYN first evicts the oldest entry of
  its own bucket (tcps_sc_zonefail; 6.x-9.x netstat also shows it as "cache overflow", we count
  both names) and stamps the overflow; if that bucket was empty the SYN is answered with a
  stateless cookie SYN-ACK (syncookies=1) or dropped.
* ``syncache_timeout`` / ``syncache_timer``: first timeout rexmit_initial, then rexmit_initial *
  tcp_backoff[n] (1, 2, 4, 8, 16, 32, 64...) clamped to [rexmit_min, 64 s]; the timer drops an
  entry (tcps_sc_stale) once it has sent rexmtlimit + 1 SYN-ACKs and the next timeout expires:
  rexmit_initial 3 s -> SYN-ACKs at 0, 3, 9, 21 s, gone at 45 s; 1 s -> 0, 1, 3, 7, gone at 15.
* ``syncache_add`` duplicate SYN: tcps_sc_dupsyn, SYN-ACK resent with the same ISS, the
  retransmit counter reset and the timer restarted (the SYN's sequence number is not checked).
* ``syncache_chkrst``: a RST with SEQ = IRS+1 removes the entry (tcps_sc_reset); other in-window
  RSTs get a challenge ACK; the rest are ignored.

* ``syncache_pause`` (model.syncache_pause, FreeBSD 13+ [mem: version]; the code was read): with
  syncookies on, an overflow switches the whole syncache to cookie-only for PAUSE_TIME (15 s),
  doubling per renewed attack up to MAX_BACKOFF 6 (16 min) [mem: the two constants]; while paused
  SYNs get stateless cookie SYN-ACKs, ACKs skip the lookup, the bucket-overflow stat is counted
  once per pause, and due entries are dropped when their timer fires (FreeBSD empties a whole
  bucket when the bucket's timer fires - approximated per entry). The warning is logged as
  "TCP syncache overflow detected; using syncookies for the next N seconds (last SYN: ...)".

Not modelled: ICMP unreachables (tcps_sc_unreach), ECN, TCP-MD5, TFO.
"""
from __future__ import annotations

from .. import mib

import hashlib
import heapq
import itertools
import struct
from collections import OrderedDict

from ..wire.ipv6 import V4_MAX
from .bsdcookies import SyncookieSecrets

TCP_BACKOFF = (1, 2, 4, 8, 16, 32, 64, 64, 64, 64, 64, 64, 64)
TCPTV_REXMTMAX = 64.0
PAUSE_MAX_BACKOFF = 6

_BUCKET_IN = struct.Struct("!IHH")


class SyncacheEntry:
    """One embryonic connection (``struct syncache``)."""

    __slots__ = ("key", "listener", "bucket", "irs", "iss", "peer_mss", "wscale_ok", "snd_wscale",
                 "rcv_wscale", "sack_ok", "ts_ok", "ts_recent", "ts_off", "wnd", "rxmits",
                 "rxttime", "rexmt_limit", "alive")

    def __init__(self, key, listener, bucket):
        self.key = key
        self.listener = listener
        self.bucket = bucket
        self.rxmits = 0
        self.rxttime = 0.0
        self.alive = True


class Syncache:
    """Buckets, limits, the retransmit heap and the cookie secrets of one Stack."""

    def __init__(self, stack):
        p = stack.profile
        self.stack = stack
        self.hashsize = int(p["net.inet.tcp.syncache.hashsize"])
        if self.hashsize <= 0 or self.hashsize & (self.hashsize - 1):
            self.hashsize = 512          # syncache_init: "hash size is not a power of 2"
        self.bucket_limit = int(p["net.inet.tcp.syncache.bucketlimit"])
        self.cache_limit = int(p["net.inet.tcp.syncache.cachelimit"])
        self.rto_initial = p["net.inet.tcp.rexmit_initial"] / 1000.0
        self.rto_min = p["net.inet.tcp.rexmit_min"] / 1000.0
        self.lifetime = float(p["model.syncookie_lifetime"])
        self.secrets = SyncookieSecrets(hashlib.blake2s(stack.secret, person=b"bsdsc").digest(),
                                        self.lifetime)
        self._hkey = hashlib.blake2s(stack.secret, person=b"bsdhash").digest()
        self.buckets: dict[int, OrderedDict] = {}    # oldest first
        self.last_overflow: dict[int, float] = {}
        self.count = 0
        self._heap: list = []
        self._n = itertools.count()
        self.deadline: float | None = None
        self.syncookies = bool(p["net.inet.tcp.syncookies"])
        self.syncookies_only = bool(p["net.inet.tcp.syncookies_only"])
        self.pause_enabled = bool(p["model.syncache_pause"])
        self.pause_time = self.lifetime
        self.paused = False
        self.pause_until = stack.now - self.pause_time
        self.pause_backoff = 0

    # ---- lookup ------------------------------------------------------------------------

    def bucket_of(self, key) -> int:
        laddr, lport, raddr, rport = key
        # syncache_hashbucket hashes the foreign address of either family (32 bits folded from 128)
        fa = raddr if raddr <= V4_MAX else (raddr ^ raddr >> 32 ^ raddr >> 64 ^ raddr >> 96) & V4_MAX
        h = hashlib.blake2s(_BUCKET_IN.pack(fa, rport, lport), key=self._hkey, digest_size=4)
        return int.from_bytes(h.digest(), "big") & (self.hashsize - 1)

    def lookup(self, key) -> SyncacheEntry | None:
        b = self.buckets.get(self.bucket_of(key))
        return b.get(key) if b else None

    def overflowed_recently(self, bucket: int, now: float) -> bool:
        """``sch_last_overflow >= time_uptime - SYNCOOKIE_LIFETIME`` (syncache_expand)."""
        t = self.last_overflow.get(bucket)
        return t is not None and t >= now - self.lifetime

    def is_paused(self, now: float) -> bool:
        """``syncache_unpause`` runs at pause_until; evaluated lazily here."""
        if self.paused and now >= self.pause_until:
            self.paused = False
        return self.paused

    def cookies_only(self, now: float) -> bool:
        """``syncache_cookiesonly``: syncookies and (paused or syncookies_only)."""
        return self.syncookies and (self.syncookies_only or self.is_paused(now))

    def pause(self, now: float, key) -> None:
        """``syncache_pause``: go cookie-only for a while (counts the bucket overflow)."""
        c = self.stack.counters
        if self.is_paused(now):
            return
        if not self.syncookies:
            c[mib.FreeBSDSyncacheBucketOverflow] += 1
            return
        self.paused = True
        c[mib.FreeBSDSyncacheBucketOverflow] += 1
        delta = self.pause_time * (1 << self.pause_backoff)
        if self.pause_until + delta - now > 0:
            if self.pause_backoff < PAUSE_MAX_BACKOFF:
                delta *= 2
                self.pause_backoff += 1
        else:
            delta = self.pause_time
            self.pause_backoff = 0
        laddr, lport, raddr, rport = key
        self.stack.log("kernel_log", line=(
            f"TCP syncache overflow detected; using syncookies for the next {int(delta)} seconds "
            f"(last SYN: TCP: [{_ip(raddr)}]:{rport} to [{_ip(laddr)}]:{lport})"))
        self.pause_until = now + delta

    # ---- insert / remove ---------------------------------------------------------------

    def make_room(self, bucket: int, now: float) -> bool:
        """cachelimit check before allocating: False if no entry can be stored."""
        if self.count < self.cache_limit:
            return True
        c = self.stack.counters
        c[mib.FreeBSDSyncacheCacheOverflow] += 1
        c[mib.FreeBSDSyncacheZoneFail] += 1
        b = self.buckets.get(bucket)
        if b:
            self.last_overflow[bucket] = now
            oldest = next(iter(b.values()))
            self.remove(oldest)
            if self.pause_enabled:
                self.pause(now, oldest.key)
        return self.count < self.cache_limit

    def insert(self, e: SyncacheEntry, now: float) -> None:
        """``syncache_insert``: evict the bucket's oldest if full, add, start the timer."""
        b = self.buckets.setdefault(e.bucket, OrderedDict())
        if len(b) >= self.bucket_limit and b:
            if self.pause_enabled:
                self.pause(now, e.key)
            else:
                self.stack.counters[mib.FreeBSDSyncacheBucketOverflow] += 1
            self.last_overflow[e.bucket] = now
            self.remove(next(iter(b.values())))
        b[e.key] = e
        self.count += 1
        e.listener.syn_count += 1
        self.stack.counters[mib.FreeBSDSyncacheAdded] += 1
        self.arm(e, now)

    def remove(self, e: SyncacheEntry) -> None:
        """``syncache_drop`` (the caller counts why); its heap entry goes stale."""
        if not e.alive:
            return
        e.alive = False
        b = self.buckets.get(e.bucket)
        if b is not None and b.get(e.key) is e:
            del b[e.key]
            if not b:
                del self.buckets[e.bucket]
        self.count -= 1
        e.listener.syn_count -= 1

    # ---- timers ------------------------------------------------------------------------

    def arm(self, e: SyncacheEntry, now: float) -> None:
        """``syncache_timeout``: next retransmission time; counts the transmission just made."""
        if e.rxmits == 0:
            rexmt = self.rto_initial
        else:
            back = TCP_BACKOFF[min(e.rxmits, len(TCP_BACKOFF) - 1)]
            rexmt = min(max(self.rto_initial * back, self.rto_min), TCPTV_REXMTMAX)
        e.rxttime = now + rexmt
        e.rxmits += 1
        heapq.heappush(self._heap, (e.rxttime, next(self._n), e))
        self._reschedule()

    def on_timer(self, now: float) -> None:
        """``syncache_timer``: retransmit due SYN-ACKs, expire entries past rexmtlimit."""
        heap = self._heap
        c = self.stack.counters
        while heap and heap[0][0] <= now:
            when, _, e = heapq.heappop(heap)
            if not e.alive or e.rxttime != when:
                continue
            if self.is_paused(now):
                self.remove(e)                   # syncache_timer empties buckets while paused
                continue
            if e.rxmits > e.rexmt_limit:
                self.remove(e)
                c[mib.FreeBSDSyncacheStale] += 1
                self.stack.log("syncache_expired", lport=e.key[1], raddr=e.key[2],
                               rport=e.key[3], synacks=e.rxmits)
                continue
            e.listener.send_synack(e)
            c[mib.FreeBSDSyncacheRetransmitted] += 1
            self.stack.log("synack_retransmit", reason="timer", laddr=e.key[0],
                           lport=e.key[1], raddr=e.key[2], rport=e.key[3], retrans=e.rxmits)
            c[mib.TcpRetransSegs] += 1
            self.arm(e, now)
        self._reschedule()

    def _reschedule(self) -> None:
        heap = self._heap
        while heap and (not heap[0][2].alive or heap[0][2].rxttime != heap[0][0]):
            heapq.heappop(heap)
        if heap:
            if self.deadline != heap[0][0]:
                self.stack.schedule(self, heap[0][0])
        else:
            self.deadline = None


def syncache_stats(stack) -> str:
    """The syncache part of ``netstat -s -p tcp`` (usr.bin/netstat/inet.c ``tcp_stats``,
    wording verified: "syncache entries added", "retransmitted", ..., "zone failures",
    "cookies sent", "cookies received"; plus tcps_listendrop's "listen queue overflows")."""
    c = stack.counters
    n = lambda k: c.get("FreeBSDSyncache" + k, 0)   # noqa: E731
    added = n("Added")
    drops = c.get(mib.FreeBSDListenDrops, 0)     # printed before the syncache block, as netstat does
    out = ["tcp:", f"\t{drops} listen queue overflow{'' if drops == 1 else 's'}",
           f"\t{added} syncache entr{'y' if added == 1 else 'ies'} added"]
    for k, label in (("Retransmitted", "retransmitted"), ("Dupsyn", "dupsyn"),
                     ("Dropped", "dropped"), ("Completed", "completed"),
                     ("BucketOverflow", "bucket overflow"), ("CacheOverflow", "cache overflow"),
                     ("Reset", "reset"), ("Stale", "stale"), ("Aborted", "aborted"),
                     ("Badack", "badack"), ("Unreach", "unreach")):
        out.append(f"\t\t{n(k)} {label}")
    zf = n("ZoneFail")
    out.append(f"\t\t{zf} zone failure{'' if zf == 1 else 's'}")
    sent, recv = n("CookiesSent"), n("CookiesRecv")
    out.append(f"\t{sent} cookie{'' if sent == 1 else 's'} sent")
    out.append(f"\t{recv} cookie{'' if recv == 1 else 's'} received")
    return "\n".join(out) + "\n"


def _ip(a: int) -> str:
    return f"{a >> 24 & 255}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"
