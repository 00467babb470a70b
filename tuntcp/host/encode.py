"""Output encoders: what the host's output queue becomes when the shell takes it.

The shell picks one and hands it to ``Stack(encoder=...)``; nobody below the host asks which:

* ``PacketEncoder`` (the default): plain IP packets for a TUN without a vnet header. A
  connection's payload-less segments (ACKs, window updates, FINs) come from its
  ``codec.AckTemplate`` once it has sent one, and SYN-ACKs from a per-port
  ``codec.SynAckTemplate``; both are byte-for-byte ``codec.build`` (tests/unit/test_fastpath.py).
* ``VnetEncoder``: virtio-net frames for an ``IFF_VNET_HDR`` TUN with checksum and TSO offload
  (``wire.vnet.gso_frames``); ``tso`` tells connections they may send TSO segments.
* ``SegmentRecorder``: the ``Segment`` objects themselves (tests that read fields).

An encoder's ``encode(queue)`` gets the host's queue in order: Segments, plus whatever its own
``synack`` returned for a SYN-ACK built without a Segment.

IPv6: a segment whose destination is above 2**32 is an IPv6 one; the host hands each encoder
an ``ip6`` (``wire.ipv6.Ip6Out``: hop limit and flow label) that builds it. IPv6 flows get no
templates (IPv4's per-packet cost stays as it was); ``VnetEncoder`` builds both families.
"""
from __future__ import annotations

from ..wire import codec
from ..wire.ipv6 import V4_MAX, Ip6Out
from ..wire.segment import SYN, Segment, TcpOptions
from ..wire.vnet import gso_frames


def synack_segment(laddr, raddr, lport, rport, seq, ack, flags, window, mss, wscale, sack_ok,
                   ts, ttl) -> Segment:
    """The Segment for ``synack``'s fields (what encoders without a template queue)."""
    seg = Segment(laddr, raddr, lport, rport, seq, ack, flags, window,
                  TcpOptions(mss=mss, wscale=wscale, sack_ok=sack_ok, ts=ts))
    seg.ttl = ttl
    return seg


class SegmentRecorder:
    """Keeps the Segments: ``take_output()`` returns them as queued."""

    tso = False
    ip6: Ip6Out | None = None      # set by the host
    gso_exact = False   # True: TSO packets sized and flagged as tcp_write_xmit does (core/tcp_output)

    def open(self, key) -> None:
        """A connection with this 4-tuple (laddr, lport, raddr, rport) now exists."""

    def close(self, key) -> None:
        """The connection with this 4-tuple is gone."""

    synack = staticmethod(synack_segment)

    def encode(self, out: list) -> list:
        return out


class VnetEncoder(SegmentRecorder):
    """virtio_net_hdr frames; runs of one flow's data merge into GSO super-packets."""

    tso = True

    def encode(self, out: list) -> list[bytes]:
        return gso_frames(out, self.ip6) if out else out


class PacketEncoder(SegmentRecorder):
    """Plain IP packets (IPv4 from templates where a flow has one, IPv6 through ``ip6``)."""

    def __init__(self) -> None:
        self._open: set = set()          # 4-tuples of live connections
        self.templates: dict = {}        # 4-tuple -> AckTemplate (after its first bare segment)
        self._synack: dict = {}          # local port -> SynAckTemplate

    def open(self, key) -> None:
        self._open.add(key)

    def close(self, key) -> None:
        self._open.discard(key)
        self.templates.pop(key, None)

    def synack(self, laddr, raddr, lport, rport, seq, ack, flags, window, mss, wscale, sack_ok,
               ts, ttl) -> bytes:
        if laddr > V4_MAX:
            return self.ip6.build(synack_segment(laddr, raddr, lport, rport, seq, ack, flags, window, mss,
                                                 wscale, sack_ok, ts, ttl))
        t = self._synack.get(lport)
        if t is None or t.mss != mss or t.ttl != ttl:
            t = self._synack[lport] = codec.SynAckTemplate(lport, mss, ttl)
        return t.build(laddr, raddr, rport, seq, ack, flags, window, wscale, sack_ok, ts)

    def encode(self, out: list) -> list[bytes]:
        build = codec.build
        tpls = self.templates
        pkts = []
        for s in out:
            if s.__class__ is bytes:
                pkts.append(s)
            elif s.payload or s.flags & SYN:
                pkts.append(build(s) if s.daddr <= V4_MAX else self.ip6.build(s))
            else:
                # payload-less segments (ACKs, window updates, FINs) of a connection: from its
                # AckTemplate (byte-identical to build, half the time) once it has sent one
                key = (s.saddr, s.sport, s.daddr, s.dport)
                t = tpls.get(key)
                if t is not None:
                    pkts.append(t.segment(s))
                elif s.daddr > V4_MAX:
                    pkts.append(self.ip6.build(s))
                else:
                    pkts.append(build(s))
                    if key in self._open:
                        tpls[key] = codec.AckTemplate(s.saddr, s.daddr, s.sport, s.dport, s.ttl,
                                                      s.tos)
        return pkts
