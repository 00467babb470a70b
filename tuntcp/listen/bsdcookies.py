"""FreeBSD 10+ SYN cookies (``syncookie_generate`` / ``syncookie_lookup`` / ``syncookie_reseed``
in freebsd/freebsd-src sys/netinet/tcp_syncache.c).

Verified against the source (the schematic comment above ``tcp_sc_msstab``):

    ISS = | 24-bit MAC (truncated) | W W W M M M S P |     low byte XORed with MAC >> 24

* W (bits 7..5): index into WSTAB = (0, 0, 1, 2, 4, 6, 7, 8), the *peer's* window shift rounded
  down to a table entry; index 0 means "no wscale option in the SYN". A SYN with wscale 0 gets
  index 1 (the search stops at the highest entry <= the shift), so absence and 0 differ.
* M (bits 4..2): index into MSSTAB = (216, 536, 1200, 1360, 1400, 1440, 1452, 1460), the peer's
  MSS rounded down (index 0 for anything below 536, including a missing option).
* S (bit 1): SACK permitted. P (bit 0): which of the two secrets (odd/even) made the MAC.
* MAC: FreeBSD uses SipHash-2-4 over faddr, laddr, fport, lport, irs, the flags byte and a
  per-bucket modifier (the bucket's address). We use keyed BLAKE2s over the same fields with
  the bucket index as the modifier: a different PRF, the same inputs and the same 24 bits.
* Secrets: two slots; every SYNCOOKIE_LIFETIME (15 s) the slot not in use is re-randomised and
  becomes current, so a cookie is accepted for 15-30 s. Here time is injected: epoch
  k = floor(now / lifetime), the current slot is k & 1 holding secret(k), the other slot holds
  secret(k - 1).
* Timestamps are not encoded: on a cookie ACK they are turned on if the ACK carries them.

FreeBSD 9 used an older MD5 cookie with per-bucket secrets (16 s); both profiles use this 10+
format (an approximation for freebsd-9).
"""
from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

from ..wire.ipv6 import V4_MAX

MSSTAB = (216, 536, 1200, 1360, 1400, 1440, 1452, 1460)
WSTAB = (0, 0, 1, 2, 4, 6, 7, 8)
LIFETIME = 15.0

_MAC_IN = struct.Struct("!IIHHIBI")
_MAC_IN6 = struct.Struct("!16s16sHHIBI")


@dataclass(frozen=True, slots=True)
class CookieInfo:
    """What a valid cookie ACK restores (``syncookie_lookup`` fills a fake syncache entry)."""
    iss: int
    irs: int
    peer_mss: int
    wscale_ok: bool
    snd_wscale: int      # peer's shift (rounded down to WSTAB)
    sack_ok: bool


def mss_index(peer_mss: int | None) -> int:
    """Highest index whose MSSTAB entry is <= the peer's MSS, 0 if none (``syncookie_generate``)."""
    m = peer_mss or 0
    i = len(MSSTAB) - 1
    while i > 0 and MSSTAB[i] > m:
        i -= 1
    return i


def wscale_index(peer_wscale: int | None) -> int:
    """0 if the SYN had no wscale option, else the highest index with WSTAB[i] <= shift."""
    if peer_wscale is None:
        return 0
    i = len(WSTAB) - 1
    while i > 0 and WSTAB[i] > peer_wscale:
        i -= 1
    return i


class SyncookieSecrets:
    """The two rotating secrets (``syncookie_reseed``), derived from a master key and the epoch."""

    __slots__ = ("master", "lifetime")

    def __init__(self, master: bytes, lifetime: float = LIFETIME):
        if lifetime <= 0:
            raise ValueError("syncookie lifetime must be positive")
        self.master = bytes(master)[:32] or b"\0"
        self.lifetime = float(lifetime)

    def epoch(self, now: float) -> int:
        return math.floor(now / self.lifetime)

    def current_parity(self, now: float) -> int:
        return self.epoch(now) & 1

    def key(self, parity: int, now: float) -> bytes:
        """The secret in slot ``parity`` at time ``now``."""
        k = self.epoch(now)
        e = k if (k & 1) == parity else k - 1
        return hashlib.blake2s(e.to_bytes(8, "big", signed=True), key=self.master,
                               person=b"bsdcook").digest()


def _mac(key: bytes, laddr: int, lport: int, raddr: int, rport: int, irs: int, flags: int,
         secmod: int) -> int:
    if raddr > V4_MAX:    # INET6: syncookie_mac hashes inc6_faddr / inc6_laddr
        data = _MAC_IN6.pack(raddr.to_bytes(16, "big"), laddr.to_bytes(16, "big"), rport, lport,
                             irs & 0xFFFFFFFF, flags, secmod & 0xFFFFFFFF)
    else:
        data = _MAC_IN.pack(raddr, laddr, rport, lport, irs & 0xFFFFFFFF, flags, secmod & 0xFFFFFFFF)
    return int.from_bytes(hashlib.blake2s(data, key=key, digest_size=4).digest(), "big")


def syncookie_generate(secrets: SyncookieSecrets, now: float, laddr: int, lport: int,
                       raddr: int, rport: int, irs: int, peer_mss: int | None,
                       peer_wscale: int | None, sack_ok: bool, secmod: int = 0) -> int:
    """Our ISS for a SYN-ACK: 24 MAC bits and the flags byte XORed with MAC >> 24."""
    parity = secrets.current_parity(now)
    flags = (wscale_index(peer_wscale) << 5) | (mss_index(peer_mss) << 2) \
        | (2 if sack_ok else 0) | parity
    h = _mac(secrets.key(parity, now), laddr, lport, raddr, rport, irs, flags, secmod)
    return (h & 0xFFFFFF00) | (flags ^ (h >> 24))


def syncookie_lookup(secrets: SyncookieSecrets, now: float, laddr: int, lport: int,
                     raddr: int, rport: int, seg_seq: int, seg_ack: int,
                     secmod: int = 0) -> CookieInfo | None:
    """Validate the ACK completing a cookie handshake; None if the MAC does not match."""
    iss = (seg_ack - 1) & 0xFFFFFFFF
    irs = (seg_seq - 1) & 0xFFFFFFFF
    flags = (iss & 0xFF) ^ (iss >> 24)
    h = _mac(secrets.key(flags & 1, now), laddr, lport, raddr, rport, irs, flags, secmod)
    if (h & 0xFFFFFF00) != (iss & 0xFFFFFF00):
        return None
    w = flags >> 5
    return CookieInfo(iss=iss, irs=irs, peer_mss=MSSTAB[(flags >> 2) & 7], wscale_ok=w > 0,
                      snd_wscale=WSTAB[w], sack_ok=bool(flags & 2))
