"""``tcp_oow_rate_limited`` (net/ipv4/tcp_input.c): one copy for connections and listeners."""
from __future__ import annotations


def oow_rate_limited(last: float | None, now: float, ratelimit_ms: int, has_data: bool,
                     syn: bool) -> bool:
    """At most one out-of-window reply per net.ipv4.tcp_invalid_ratelimit ms.

    Segments that occupy sequence space without SYN (data or FIN: seq != end_seq) are never
    limited (not part of an ACK loop). ``last`` is the time of the last reply sent, None if
    none; the caller stores ``now`` as the new ``last`` when this returns False and the
    segment was not exempt (``__tcp_oow_rate_limited``).
    """
    if has_data and not syn:
        return False
    return last is not None and 0 <= (now - last) * 1000.0 < ratelimit_ms
