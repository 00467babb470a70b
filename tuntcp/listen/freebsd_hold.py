"""Watching a connection held by an accept filter (FreeBSD's so_upcall on the receive buffer).

FreeBSD re-runs the filter from the socket's receive upcall each time data or a FIN is
appended. The shared Connection has no such callback, so while a connection is held its class is
swapped for a slot-less subclass whose ``on_segment``/``on_timer`` call the real ones and then
ask the listener to re-run the filter. The object (identity, table entry, state) is unchanged;
the class is swapped back on release.

The filters read the buffered bytes without consuming them: ``bytes(conn.rcvq)``, the
connection's in-order receive queue.
"""
from __future__ import annotations

_HELD: dict[int, "Held"] = {}
_CLASSES: dict[type, type] = {}


def _held_class(base: type) -> type:
    cls = _CLASSES.get(base)
    if cls is None:
        def on_segment(self, seg, now):
            r = base.on_segment(self, seg, now)
            h = _HELD.get(id(self))
            if h is not None:
                h.listener.filter_check(h, now)
            return r

        def on_timer(self, now):
            base.on_timer(self, now)
            h = _HELD.get(id(self))
            if h is not None:
                h.listener.filter_check(h, now)

        cls = type(f"Held{base.__name__}", (base,),
                   {"__slots__": (), "on_segment": on_segment, "on_timer": on_timer})
        _CLASSES[base] = cls
    return cls


class Held:
    """One connection on a listener's incomplete queue."""

    __slots__ = ("listener", "conn", "conn_key", "base")

    def __init__(self, listener, conn, params):
        self.listener = listener
        self.conn = conn
        self.conn_key = (params.laddr, params.lport, params.raddr, params.rport)
        self.base = type(conn)

    def buffered(self) -> bytes:
        """The in-order bytes the connection holds (its receive queue), not consumed."""
        return bytes(self.conn.rcvq)

    def release_hook(self) -> None:
        if _HELD.get(id(self.conn)) is self:
            del _HELD[id(self.conn)]
            self.conn.__class__ = self.base      # same layout: the subclass has no slots


def hold(listener, conn, params) -> Held:
    h = Held(listener, conn, params)
    conn.__class__ = _held_class(type(conn))
    _HELD[id(conn)] = h
    return h
