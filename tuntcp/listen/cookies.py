"""Linux SYN cookies: the ISN layout, its validation, and the options hidden in our TSval.

Observable behaviour follows net/ipv4/syncookies.c (checked against ≈5.x-6.8 copies found with
the code search: ``secure_tcp_syn_cookie``, ``check_tcp_syn_cookie``, ``__cookie_v4_init_sequence``,
``__cookie_v4_check``, ``cookie_init_timestamp``, ``cookie_timestamp_decode``, ``cookie_ecn_ok``):

    isn = H0(4-tuple) + client_isn + (minute << 24) + ((H1(4-tuple, minute) + mss_index) mod 2^24)

Only this endpoint validates its own cookies, so the keyed hash need not be Linux's SipHash:
BLAKE2s keyed with the endpoint secret (two personalisations for the two Linux keys),
truncated to 32 bits. Time is the injected clock ``now`` (seconds); the minute counter is
``tcp_cookie_time`` (minutes of that clock, 32-bit).
"""
from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

MSSTAB = (536, 1300, 1440, 1460)   # IPv4 table since ~3.12
COOKIEBITS = 24
COOKIEMASK = (1 << COOKIEBITS) - 1
MAX_SYNCOOKIE_AGE = 2              # minutes: this one and the previous one
TCP_SYNCOOKIE_PERIOD = 60.0        # seconds per minute counter tick
TSBITS = 6
TSMASK = (1 << TSBITS) - 1
TS_OPT_WSCALE_MASK = 0xF
TS_OPT_SACK = 0x10
TS_OPT_ECN = 0x20
TCP_MAX_WSCALE = 14
M32 = 0xFFFFFFFF

_TUPLE = struct.Struct("!IIHH")
_COUNT = struct.Struct("!I")
_TUPLE_COUNT = struct.Struct("!IIHHI")
_ZERO = bytes(4)
_from_bytes = int.from_bytes


class CookieError(ValueError):
    """A user mistake configuring cookies (reported without a traceback)."""


class LinuxCookies:
    """Linux-format SYN cookies for one endpoint (``syncookie_secret`` is per endpoint)."""

    __slots__ = ("_h0", "_h1")

    def __init__(self, secret: bytes):
        if not isinstance(secret, (bytes, bytearray)) or not 1 <= len(secret) <= 32:
            raise CookieError("the cookie secret must be 1 to 32 bytes")
        # the two keyed states, copied per use (cheaper than re-keying)
        self._h0 = hashlib.blake2s(digest_size=4, key=bytes(secret), person=b"tuntcpc0")
        self._h1 = hashlib.blake2s(digest_size=4, key=bytes(secret), person=b"tuntcpc1")

    @staticmethod
    def _hash(base, tuple_bytes: bytes, count: int) -> int:
        # cookie_hash(): keyed PRF of (saddr, daddr, sport, dport, count)
        h = base.copy()
        h.update(tuple_bytes + _COUNT.pack(count & M32))
        return _from_bytes(h.digest(), "big")

    @staticmethod
    def minute(now: float) -> int:
        """``tcp_cookie_time``: whole minutes of the injected clock, as a 32-bit counter."""
        if now < 0:
            raise CookieError(f"time must not be negative, got {now!r}")
        return int(now // TCP_SYNCOOKIE_PERIOD) & M32

    @staticmethod
    def mss_index(mss: int) -> tuple[int, int]:
        """The largest table entry not above ``mss`` (index 0 = 536 also for smaller MSS),
        as ``__cookie_v4_init_sequence`` picks it: ``(index, table_mss)``."""
        i = bisect_right(MSSTAB, mss) - 1
        return (i, MSSTAB[i]) if i > 0 else (0, MSSTAB[0])

    def init_sequence(self, saddr: int, sport: int, daddr: int, dport: int, client_isn: int,
                      mss: int, now: float) -> tuple[int, int]:
        """Our ISN for a cookie SYN-ACK (``__cookie_v4_init_sequence`` ->
        ``secure_tcp_syn_cookie``) -> ``(isn, table_mss)``.

        ``saddr/sport`` are the SYN's source (the client), ``daddr/dport`` ours; ``mss`` is the
        client's MSS after our clamp. The ISN's top byte carries the minute counter, the low 24
        bits a keyed hash of the 4-tuple and minute with the MSS index added in.
        """
        idx, table_mss = self.mss_index(mss)
        count = self.minute(now)
        # both hashes over one packed (4-tuple, count) whose count word is zeroed for H0
        h0, h1 = self._h0.copy(), self._h1.copy()
        t = _TUPLE_COUNT.pack(saddr, daddr, sport, dport, count)
        h0.update(t[:12] + _ZERO)
        h1.update(t)
        isn = (_from_bytes(h0.digest(), "big") + client_isn + (count << COOKIEBITS)
               + ((_from_bytes(h1.digest(), "big") + idx) & COOKIEMASK)) & M32
        return isn, table_mss

    def check(self, saddr: int, sport: int, daddr: int, dport: int, ack_seq: int, seq: int,
              now: float) -> int:
        """Validate the ACK of a cookie SYN-ACK (``__cookie_v4_check`` -> ``check_tcp_syn_cookie``).

        ``ack_seq`` is the ACK's acknowledgment number (cookie + 1), ``seq`` its sequence number
        (client ISN + 1). Returns the table MSS, or 0 when the cookie is invalid: minute field
        not this minute or the previous one (a cookie lives 60-120 s), or the recovered MSS
        index not in the table (a forged ACK passes with probability about 2^-29).
        """
        t = _TUPLE.pack(saddr, daddr, sport, dport)
        cookie = (ack_seq - 1) & M32
        sseq = (seq - 1) & M32
        count = self.minute(now)
        c = (cookie - (self._hash(self._h0, t, 0) + sseq)) & M32
        diff = (count - (c >> COOKIEBITS)) & (M32 >> COOKIEBITS)
        if diff >= MAX_SYNCOOKIE_AGE:
            return 0
        idx = (c - self._hash(self._h1, t, count - diff)) & COOKIEMASK
        return MSSTAB[idx] if idx < len(MSSTAB) else 0


def encode_ts(now_ms: int, wscale_ok: bool, peer_wscale: int, sack_ok: bool,
              ecn_ok: bool) -> int:
    """Our TSval for a cookie SYN-ACK, before the per-flow offset (``cookie_init_timestamp``).

    The low 6 bits of the millisecond clock are replaced by the client's SYN options: bits 0-3
    its window shift (0xF = no window scaling; a shift above 14 is taken as 14, as
    ``tcp_parse_options`` does), bit 4 SACK permitted, bit 5 ECN. If that puts the value
    ahead of the clock, 64 ms are taken off: the TSval is never in the future (<= 63 ms old).
    """
    options = min(peer_wscale, TCP_MAX_WSCALE) if wscale_ok else TS_OPT_WSCALE_MASK
    if sack_ok:
        options |= TS_OPT_SACK
    if ecn_ok:
        options |= TS_OPT_ECN
    ts = (now_ms & ~TSMASK) | options
    if ts > now_ms:
        ts -= 1 << TSBITS
    return ts & M32


@dataclass(frozen=True, slots=True)
class CookieOpts:
    """Options recovered from a cookie ACK's echoed timestamp."""

    sack_ok: bool
    wscale_ok: bool
    snd_wscale: int      # the client's shift, applied to windows it sends us
    ecn_ok: bool


NO_OPTS = CookieOpts(sack_ok=False, wscale_ok=False, snd_wscale=0, ecn_ok=False)


def decode_ts(profile: Mapping, tsecr_minus_offset: int, saw_tstamp: bool) -> CookieOpts | None:
    """Options of a cookie connection from the ACK's TSecr less our TS offset
    (``cookie_timestamp_decode`` + ``cookie_ecn_ok``). ``None`` means reject (-> RST).

    * No timestamp option on the ACK: the connection goes on with SACK, window scaling and
      ECN all off (``tcp_clear_options``).
    * ``net.ipv4.tcp_timestamps == 0``: reject (we could not have sent such a TSval).
    * SACK bit set while ``net.ipv4.tcp_sack == 0``: reject.
    * Shift nibble 0xF: no window scaling. Otherwise window scaling with that shift, rejected
      if ``net.ipv4.tcp_window_scaling == 0``.
    * ECN: the bit AND ``net.ipv4.tcp_ecn != 0`` (no per-route ECN feature here).
    * ``model.cookie_wscale_mode == "gvisor"`` (teaching contrast, not Linux): the shift is
      dropped, cookie connections run unscaled in both directions.
    """
    if not saw_tstamp:
        return NO_OPTS
    if not profile["net.ipv4.tcp_timestamps"]:
        return None
    options = tsecr_minus_offset & M32
    sack_ok = bool(options & TS_OPT_SACK)
    if sack_ok and not profile["net.ipv4.tcp_sack"]:
        return None
    ecn_ok = bool(options & TS_OPT_ECN) and profile["net.ipv4.tcp_ecn"] != 0
    ws = options & TS_OPT_WSCALE_MASK
    if ws == TS_OPT_WSCALE_MASK or profile["model.cookie_wscale_mode"] == "gvisor":
        return CookieOpts(sack_ok=sack_ok, wscale_ok=False, snd_wscale=0, ecn_ok=ecn_ok)
    if not profile["net.ipv4.tcp_window_scaling"]:
        return None
    return CookieOpts(sack_ok=sack_ok, wscale_ok=True, snd_wscale=ws, ecn_ok=ecn_ok)


# ---------------------------------------------------------------- IPv6 (net/ipv6/syncookies.c)

MSSTAB6 = (1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60)   # IPV6_MIN_MTU, IPv6-in-IPv4, Ethernet, jumbo
_TUPLE6 = struct.Struct("!16s16sHH")


class LinuxCookies6(LinuxCookies):
    """``cookie_v6_init_sequence`` / ``cookie_v6_check``: the IPv4 layout over the 128-bit
    4-tuple, with the IPv6 MSS table. The options in the TSval (``encode_ts``/``decode_ts``) and
    the window-scale derivation on the ACK (core/window.py ``cookie_init_rwin``, with
    ``model.cookie_wscale_clamp``: 909172a14974 fixed IPv4 and IPv6 alike) are shared."""

    __slots__ = ()

    @staticmethod
    def mss_index(mss: int) -> tuple[int, int]:
        """``__cookie_v6_init_sequence``: the largest MSSTAB6 entry not above ``mss`` (index 0
        for anything smaller)."""
        i = bisect_right(MSSTAB6, mss) - 1
        return (i, MSSTAB6[i]) if i > 0 else (0, MSSTAB6[0])

    def init_sequence(self, saddr: int, sport: int, daddr: int, dport: int, client_isn: int,
                      mss: int, now: float) -> tuple[int, int]:
        """``__cookie_v6_init_sequence`` -> ``(isn, table_mss)``; addresses are 128-bit ints."""
        idx, table_mss = self.mss_index(mss)
        count = self.minute(now)
        t = _TUPLE6.pack(saddr.to_bytes(16, "big"), daddr.to_bytes(16, "big"), sport, dport)
        isn = (self._hash(self._h0, t, 0) + client_isn + (count << COOKIEBITS)
               + ((self._hash(self._h1, t, count) + idx) & COOKIEMASK)) & M32
        return isn, table_mss

    def check(self, saddr: int, sport: int, daddr: int, dport: int, ack_seq: int, seq: int,
              now: float) -> int:
        """``__cookie_v6_check``: the MSS from MSSTAB6, or 0 for an invalid or stale cookie."""
        t = _TUPLE6.pack(saddr.to_bytes(16, "big"), daddr.to_bytes(16, "big"), sport, dport)
        cookie = (ack_seq - 1) & M32
        count = self.minute(now)
        c = (cookie - (self._hash(self._h0, t, 0) + ((seq - 1) & M32))) & M32
        diff = (count - (c >> COOKIEBITS)) & (M32 >> COOKIEBITS)
        if diff >= MAX_SYNCOOKIE_AGE:
            return 0
        idx = (c - self._hash(self._h1, t, count - diff)) & COOKIEMASK
        return MSSTAB6[idx] if idx < len(MSSTAB6) else 0
