"""Packets as packetdrill sees them: inbound script packets built into Segments, outbound
Segments checked against the script (packetdrill's run_packet.c rules, written anew).

Sequence numbers: the remote side's as written (its ISN is the script's own numbers), ours
relative to the ISN of our first SYN or SYN-ACK. TS: an outbound TS val is not checked but
remembered (script val -> actual val) so that an inbound ``TS ecr`` naming it echoes the
real one; outbound options are compared in order, nops included, as Linux lays them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..wire.codec import build_options
from ..wire.segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment, TcpOptions
from .model import Option, Packet

MASK = 0xFFFFFFFF
FLAG_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
_KIND = {"eol": 0, "nop": 1, "mss": 2, "wscale": 3, "sackOK": 4, "sack": 5, "TS": 8,
         "md5": 19, "FO": 34, "FOEXP": 254}
_ECN = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}     # packetdrill lexer.l spellings


def flag_bits(flags: str) -> int:
    bits = 0
    for ch in flags.replace("-", ""):
        bits |= FLAG_BITS[ch]
    return bits


def flag_text(bits: int) -> str:
    s = "".join(ch for ch, b in FLAG_BITS.items() if bits & b and ch != ".")
    return s + "." if bits & ACK else (s or "-")


@dataclass
class Flow:
    """One scripted connection as packetdrill tracks it (its socket's live/script numbers)."""
    rport: int
    lport: int
    local_isn: int | None = None
    ts_map: dict = field(default_factory=dict)   # script TS val -> actual TS val
    ts_first: tuple | None = None                 # (script val, actual val) of the first


def build_inbound(pkt: Packet, flow: Flow, laddr: int, raddr: int) -> Segment:
    o = TcpOptions()
    for op in pkt.options or ():
        if op.name == "mss":
            o.mss = op.value
        elif op.name == "wscale":
            o.wscale = op.value
        elif op.name == "sackOK":
            o.sack_ok = True
        elif op.name == "TS":
            val, ecr = op.value
            o.ts = (val, inbound_ecr(flow, ecr))
        elif op.name == "sack":
            base = flow.local_isn or 0
            o.sack_blocks = tuple(((a + base) & MASK, (b + base) & MASK) for a, b in op.value)
    ack = (pkt.ack + (flow.local_isn or 0)) & MASK if pkt.ack is not None else 0
    tos = _ECN.get(pkt.ip_info.lower(), 0)
    return Segment(raddr, laddr, flow.rport, flow.lport, seq=pkt.start & MASK, ack=ack,
                   flags=flag_bits(pkt.flags), window=pkt.win or 0, options=o,
                   payload=bytes(pkt.length), urg=pkt.urg or 0, tos=tos)


def inbound_ecr(flow: Flow, ecr: int) -> int:
    """The real TS val a script ``ecr`` means: an exact earlier outbound val, else
    interpolated from the first one (``--tcp_ts_ecr_scaled``), else as written."""
    if ecr in flow.ts_map:
        return flow.ts_map[ecr]
    if flow.ts_first is not None and ecr:
        sv, av = flow.ts_first
        return (ecr - sv + av) & MASK
    return ecr


def _actual_kinds(o: TcpOptions) -> list[int]:
    raw = build_options(o)
    kinds, i = [], 0
    while i < len(raw):
        k = raw[i]
        kinds.append(k)
        i += 1 if k in (0, 1) else max(2, raw[i + 1])
    while kinds and kinds[-1] == 0:
        kinds.pop()                      # padding, not an option Linux writes
    return kinds


def _opts_text(o: TcpOptions, flow: Flow) -> str:
    raw = build_options(o)
    items, i = [], 0
    while i < len(raw):
        k = raw[i]
        if k == 1:
            items.append("nop")
        elif k == 2:
            items.append(f"mss {o.mss}")
        elif k == 3:
            items.append(f"wscale {o.wscale}")
        elif k == 4:
            items.append("sackOK")
        elif k == 8:
            items.append(f"TS val {o.ts[0]} ecr {o.ts[1]}")
        elif k == 5:
            items.append("sack " + " ".join(f"{a}:{b}" for a, b in o.sack_blocks))
        elif k != 0:
            items.append(f"kind {k}")
        i += 1 if k in (0, 1) else max(2, raw[i + 1])
    return f" <{','.join(items)}>" if items else ""


def seg_text(seg: Segment, flow: Flow | None) -> str:
    """An outbound segment in script notation (numbers relative as the script writes them)."""
    base = flow.local_isn if flow and flow.local_isn is not None else 0
    s = (seg.seq - base) & MASK
    n = len(seg.payload)
    out = f"{flag_text(seg.flags)} {s}:{(s + n) & MASK}({n})"
    if seg.flags & ACK:
        out += f" ack {seg.ack}"
    out += f" win {seg.window}"
    return out + _opts_text(seg.options, flow)


def check_outbound(pkt: Packet, seg: Segment, flow: Flow, length: int) -> str | None:
    """None if ``seg`` (possibly several coalesced: ``length`` their total) is what the script
    says; else packetdrill's wording of the first difference."""
    want = flag_bits(pkt.flags)
    if seg.flags != want:
        return f"live packet field tcp_flags: expected: {flag_text(want)} vs actual: {flag_text(seg.flags)}"
    if pkt.ip_info and pkt.ip_info.lower() in _ECN and (seg.tos & 3) != _ECN[pkt.ip_info.lower()]:
        return f"live packet field ip_ecn: expected: {pkt.ip_info} vs actual: {seg.tos & 3}"
    if flow.local_isn is not None:
        rel = (seg.seq - flow.local_isn) & MASK
        if rel != pkt.start & MASK:
            return f"live packet field tcp_seq: expected: {pkt.start} vs actual: {rel}"
    if length != pkt.length:
        return f"live packet payload: expected {pkt.length} bytes vs actual {length} bytes"
    if want & ACK and pkt.ack is not None and seg.ack != pkt.ack & MASK:
        return f"live packet field tcp_ack_seq: expected: {pkt.ack} vs actual: {seg.ack}"
    if pkt.win is not None and seg.window != pkt.win:
        return f"live packet field tcp_window: expected: {pkt.win} vs actual: {seg.window}"
    if pkt.options_any:
        return None
    return _check_options(pkt.options or [], seg.options, flow)


def _check_options(want: list[Option], o: TcpOptions, flow: Flow) -> str | None:
    if [_KIND[w.name] for w in want] != _actual_kinds(o):
        return "bad outbound TCP options"
    for w in want:
        if w.name == "mss" and o.mss != w.value:
            return f"bad outbound TCP option mss: expected: {w.value} actual: {o.mss}"
        if w.name == "wscale" and o.wscale != w.value:
            return f"bad outbound TCP option wscale: expected: {w.value} actual: {o.wscale}"
        if w.name == "TS":
            sval, secr = w.value
            if o.ts[1] != secr & MASK:
                return f"bad outbound TCP option TS ecr: expected: {secr} actual: {o.ts[1]}"
            flow.ts_map[sval] = o.ts[0]
            if flow.ts_first is None:
                flow.ts_first = (sval, o.ts[0])
        if w.name == "sack":
            rel = tuple((a & MASK, b & MASK) for a, b in o.sack_blocks)
            if rel != tuple(w.value):
                return f"bad outbound TCP option sack: expected: {w.value} actual: {rel}"
    return None
