"""What connections and listeners may ask of the host they live in (``tuntcp.host.Stack``).

The layers point one way: ``core`` and ``listen`` never import the host; they are handed an
object with these members. Nothing here is called per byte, only per segment or per socket.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from ..mib import Counters
from ..wire.segment import Segment

# dev_queue_xmit's verdicts as tcp_transmit_skb sees them (include/linux/netdevice.h)
NET_XMIT_SUCCESS, NET_XMIT_DROP = 0, 1


class TimerOwner(Protocol):
    deadline: float | None

    def on_timer(self, now: float) -> None: ...


class Host(Protocol):
    profile: Any
    """The kernel profile (sysctl name -> value, plus ``name`` and ``family``)."""
    secret: bytes
    """The namespace's secret (cookie and hash keys are derived from it)."""
    counters: Counters
    """MIB counters of the namespace: ``counters[mib.X] += n``."""
    now: float
    """The time of the packet or timer being handled (the host never reads a clock)."""
    dirty: set
    """Sockets whose readiness changed; the shell wakes their waiters."""
    tw_count: int
    """TIME-WAIT sockets in the namespace (net.ipv4.tcp_max_tw_buckets)."""
    mtu: int
    """The interface MTU (see ``advmss``)."""
    offload: bool
    """The output path takes TSO segments (a ``VnetEncoder``): ``Connection._push`` sizes them."""
    log: Callable[..., None]
    """``log(kind, **fields)``: an event for the event log (``t`` is added)."""

    def emit(self, seg: Segment) -> int:
        """Queue one segment for output (counts TcpOutSegs, TcpOutRsts); NET_XMIT_DROP when the
        device queue refused it (a local transmit failure, nothing left the host)."""

    def emit_synack(self, laddr: int, raddr: int, lport: int, rport: int, seq: int, ack: int,
                    flags: int, window: int, mss: int, wscale: int | None, sack_ok: bool,
                    ts: tuple[int, int] | None) -> None:
        """Queue a SYN-ACK given by its fields (the encoder may use a template)."""

    def reset_for(self, seg: Segment) -> None:
        """Answer a segment no socket wants with a RST (``tcp_v4_send_reset``)."""

    def schedule(self, owner: TimerOwner, when: float) -> None:
        """Call ``owner.on_timer(now)`` at/after ``when``; replaces its previous deadline."""

    def isn(self, laddr: int, lport: int, raddr: int, rport: int) -> int:
        """``secure_tcp_seq`` for this 4-tuple at ``now``."""

    def ts_now(self, ts_off: int) -> int:
        """Our TSval clock (ms) plus a flow's offset."""

    def ts_offset(self, laddr: int, raddr: int) -> int:
        """``secure_tcp_ts_off`` for an address pair (0 unless tcp_timestamps=1)."""

    def advmss(self, laddr: int) -> int:
        """The MSS for a local address's family: mtu - 40 (IPv4) or mtu - 60 (IPv6)."""

    def challenge_allowed(self, now: float) -> bool:
        """Take one from the namespace's challenge-ACK budget (``tcp_send_challenge_ack``)."""

    def register(self, conn) -> None:
        """Enter a connection in the 4-tuple table (it then receives its segments)."""

    def unregister(self, conn) -> None:
        """Remove a connection from the table (no-op if another holds its 4-tuple)."""

    def unlisten(self, listener) -> None:
        """Remove a closed listener from the listener table."""
