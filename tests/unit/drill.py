"""A packetdrill-like mini DSL for scripting the sans-IO core.

    0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
    +0    > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 100,nop,wscale *>
    +.1   < . 1:1(0) ack 1 win 513 <nop,nop,TS val 200 ecr *>
    +0    %accept
    +0    < P. 1:1001(1000) ack 1 win 513
    +.04  > . 1:1(0) ack 1001 win *

Each line is ``TIME EVENT``. TIME is absolute (``0.100``, from ``start``) or relative to the
previous line (``+.04``). EVENT is

* ``< SEGMENT``: build a segment from the remote end and ``stack.receive_segment(seg, now)``;
* ``> SEGMENT``: the next segment the stack emits must match, and must be emitted at TIME;
* ``%name args...``: call ``actions[name](drill, *args)`` (accept, send, close, ...).

SEGMENT is ``FLAGS START:END(LEN) [ack N] [win N] [port P] [<OPTIONS>]``. FLAGS are tcpdump's
letters (``S F R P U E W``, ``.`` for ACK; ``none`` for no flag at all). As in packetdrill, sequence numbers are relative:
the remote side's to ``remote_isn`` (0 by default, so the script's own numbers), ours to the
ISN learned from the first SYN/SYN-ACK the stack emits. Any value in an expected segment may
be ``*``. OPTIONS are ``mss N``, ``sackOK``, ``TS val N ecr N``, ``wscale N``, ``sack L:R ...``
(``nop``/``eol`` are accepted and ignored: the parsed ``TcpOptions`` keeps no order). An
expected segment without ``<...>`` must carry no options, like packetdrill; ``<...>`` skips
the option check. In an injected segment, ``ecr *`` echoes the last TSval the stack sent.
``port P`` selects another remote port (each port is its own flow with its own ISNs).

Timing: before each line the runner fires every timer due up to that line's time, one
deadline at a time (``stack.next_deadline()`` when the stack has it), and stamps what is
emitted with the time it was emitted. An expected segment emitted at another time than its
line's (beyond ``tolerance``) fails, and so does any segment still unmatched when an
inject or action line runs: emitted segments are matched strictly in order.

Payload bytes of injected segments are ``payload(offset, n)``: byte i of the stream is
``i % 251``, so a test can check what the application read.

Usage (the stack built with ``encoder=SegmentRecorder()``)::

    d = Drill(stack, local=("192.0.2.1", 8080), remote=("192.0.2.2", 40000))
    d.run(script, actions={"accept": lambda d: box.append(listener.accept())}, settle=5.0)

``d.transcript`` keeps (time, "<" or ">", Segment) of everything injected and matched.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from tuntcp.wire.segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment, TcpOptions, flag_str

ANY = "*"
MASK = 0xFFFFFFFF
_FLAG_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, "U": URG, "E": ECE, "W": CWR, ".": ACK}
_TIME_RE = re.compile(r"^(\+)?(\d*\.?\d*)$")
_SEQ_RE = re.compile(r"^(\d+):(\d+)\((\d+)\)$")


class DrillSyntaxError(ValueError):
    """The script itself is wrong (bad line, bad number): a user mistake, reported by line."""


class DrillFailure(AssertionError):
    """The stack did not do what the script says."""


def payload(offset: int, n: int) -> bytes:
    """Deterministic stream content: byte at stream offset i is i % 251."""
    return bytes((offset + i) % 251 for i in range(n))


@dataclass
class SegSpec:
    """One scripted segment. Numbers are script-relative; ANY is a wildcard."""

    flags: int
    start: int
    end: int
    ack: int | str | None = None     # None: not given
    win: int | str | None = None
    port: int | None = None
    options: dict | str | None = None   # None: no options; ANY: unchecked; dict: per option

    @property
    def length(self) -> int:
        return (self.end - self.start) & MASK


@dataclass
class Line:
    no: int
    text: str
    time: float
    kind: str                        # "<", ">", "%"
    seg: SegSpec | None = None
    action: str = ""
    args: tuple = ()


# ---------------------------------------------------------------- parsing

def _num(tok: str, what: str, wild: bool, no: int, text: str) -> int | str:
    if tok == ANY:
        if not wild:
            raise DrillSyntaxError(f"line {no}: '*' is only allowed in expected (>) segments: {text}")
        return ANY
    try:
        v = int(tok, 0)
    except ValueError:
        raise DrillSyntaxError(f"line {no}: bad {what} {tok!r}: {text}") from None
    if v < 0:
        raise DrillSyntaxError(f"line {no}: negative {what} {tok!r}: {text}")
    return v


def _parse_options(body: str, wild: bool, no: int, text: str) -> dict | str:
    body = body.strip()
    if body in ("...", ANY):
        if not wild:
            raise DrillSyntaxError(f"line {no}: <{body}> only makes sense in an expected segment: {text}")
        return ANY
    opts: dict = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        toks = item.split()
        name = toks[0]
        n = lambda tok, what: _num(tok, what, wild, no, text)  # noqa: E731
        if name in ("nop", "eol") and len(toks) == 1:
            continue
        if name == "mss" and len(toks) == 2:
            opts["mss"] = n(toks[1], "mss")
        elif name == "wscale" and len(toks) == 2:
            opts["wscale"] = n(toks[1], "wscale")
        elif name == "sackOK" and len(toks) == 1:
            opts["sack_ok"] = True
        elif name == "TS" and len(toks) == 5 and toks[1] == "val" and toks[3] == "ecr":
            opts["ts"] = (n(toks[2], "TS val"), toks[4] if toks[4] == ANY else n(toks[4], "TS ecr"))
        elif name == "sack" and len(toks) >= 2:
            if toks[1:] == [ANY] and wild:
                opts["sack"] = ANY
            else:
                blocks = []
                for b in toks[1:]:
                    l, sep, r = b.partition(":")
                    if not sep:
                        raise DrillSyntaxError(f"line {no}: sack block must be L:R, got {b!r}: {text}")
                    blocks.append((n(l, "sack edge"), n(r, "sack edge")))
                opts["sack"] = tuple(blocks)
        else:
            raise DrillSyntaxError(f"line {no}: unknown or malformed option {item!r}: {text}")
    return opts


def _parse_segment(rest: str, inbound: bool, no: int, text: str) -> SegSpec:
    options: dict | str | None = None
    if "<" in rest:
        head, _, tail = rest.partition("<")
        if not tail.rstrip().endswith(">"):
            raise DrillSyntaxError(f"line {no}: options must end with '>': {text}")
        options = _parse_options(tail.rstrip()[:-1], not inbound, no, text)
        rest = head
    toks = rest.split()
    if len(toks) < 2:
        raise DrillSyntaxError(f"line {no}: expected FLAGS START:END(LEN): {text}")
    flags = 0
    for ch in ("" if toks[0] == "none" else toks[0]):     # "none": no flags at all
        if ch not in _FLAG_LETTERS:
            raise DrillSyntaxError(f"line {no}: unknown flag {ch!r} in {toks[0]!r}: {text}")
        flags |= _FLAG_LETTERS[ch]
    m = _SEQ_RE.match(toks[1])
    if not m:
        raise DrillSyntaxError(f"line {no}: sequence must be START:END(LEN), got {toks[1]!r}: {text}")
    start, end, length = (int(g) for g in m.groups())
    if (end - start) & MASK != length:
        raise DrillSyntaxError(f"line {no}: {toks[1]} is inconsistent: END - START != LEN: {text}")
    spec = SegSpec(flags, start, end, options=options)
    it = iter(toks[2:])
    for key in it:
        val = next(it, None)
        if key not in ("ack", "win", "port") or val is None:
            raise DrillSyntaxError(f"line {no}: expected 'ack N', 'win N' or 'port N', got {key!r}: {text}")
        setattr(spec, key, _num(val, key, not inbound and key != "port", no, text))
    if inbound:
        if flags & ACK and spec.ack is None:
            raise DrillSyntaxError(f"line {no}: an injected ACK needs 'ack N': {text}")
        if spec.win is None:
            spec.win = 65535
    return spec


def parse(script: str) -> list[Line]:
    """Script text to lines; DrillSyntaxError names the line."""
    out: list[Line] = []
    t = None
    for no, raw in enumerate(script.splitlines(), 1):
        text = raw.split("//", 1)[0].strip()
        if not text:
            continue
        when, _, rest = text.partition(" ")
        rest = rest.strip()
        m = _TIME_RE.match(when)
        if not m or m.group(2) in ("", "."):
            raise DrillSyntaxError(f"line {no}: bad time {when!r} (use 0.1 or +.1): {text}")
        v = float(m.group(2))
        if m.group(1):
            if t is None:
                raise DrillSyntaxError(f"line {no}: the first line needs an absolute time: {text}")
            v += t
        elif t is not None and v < t:
            raise DrillSyntaxError(f"line {no}: time goes backwards ({v} < {t}): {text}")
        t = v
        if rest.startswith("%"):
            name, *args = rest[1:].split()
            out.append(Line(no, text, v, "%", action=name, args=tuple(args)))
        elif rest[:1] in ("<", ">"):
            seg = _parse_segment(rest[1:], rest[0] == "<", no, text)
            out.append(Line(no, text, v, rest[0], seg=seg))
        else:
            raise DrillSyntaxError(f"line {no}: expected '<', '>' or '%action' after the time: {text}")
    return out


# ---------------------------------------------------------------- running

@dataclass
class _Flow:
    rport: int
    remote_isn: int
    local_isn: int | None = None
    last_tsval: int = 0


@dataclass
class Emitted:
    time: float                      # script time (the clock minus ``start``)
    seg: Segment


class Drill:
    """Runs scripts against ``stack`` (anything with receive_segment/on_timers/take_output;
    ``next_deadline`` is used when present to fire timers at their own times)."""

    def __init__(self, stack, local=("192.0.2.1", 8080), remote=("192.0.2.2", 40000), *,
                 start: float = 0.0, tolerance: float = 1e-6, remote_isn: int = 0):
        self.stack = stack
        self.laddr = int(ipaddress.IPv4Address(local[0]))
        self.lport = local[1]
        self.raddr = int(ipaddress.IPv4Address(remote[0]))
        self.rport = remote[1]
        self.start = start
        self.now = start
        self.tolerance = tolerance
        self.remote_isn = remote_isn
        self.flows: dict[int, _Flow] = {}
        self.pending: list[Emitted] = []
        self.transcript: list[tuple[float, str, Segment]] = []   # ("<" | ">", seg) as run
        self.line: Line | None = None

    # -- helpers for actions and tests
    def flow(self, port: int | None = None) -> _Flow:
        port = self.rport if port is None else port
        f = self.flows.get(port)
        if f is None:
            f = self.flows[port] = _Flow(port, self.remote_isn)
        return f

    @property
    def local_isn(self) -> int | None:
        return self.flow().local_isn

    # -- the clock
    def _collect(self, t: float) -> None:
        for seg in self.stack.take_output():
            if seg.options.ts is not None and seg.sport == self.lport:
                self.flow(seg.dport).last_tsval = seg.options.ts[0]
            self.pending.append(Emitted(t - self.start, seg))

    def advance(self, t: float) -> None:
        """Fire every timer due up to t, each at its own deadline, then move the clock to t."""
        nd = getattr(self.stack, "next_deadline", None)
        for _ in range(100000):
            d = nd() if nd else None
            if d is None or d > t + self.tolerance / 2:
                break
            when = max(d, self.now)
            self.now = when
            self.stack.on_timers(when)
            self._collect(when)
        else:
            raise DrillFailure(f"timers keep firing at t={self.now:.6f}: does on_timers clear its deadline?")
        if t > self.now or nd is None:
            self.now = max(t, self.now)
            self.stack.on_timers(self.now)
            self._collect(self.now)

    # -- building and rendering
    def build(self, spec: SegSpec) -> Segment:
        """The Segment an inject line describes, in absolute numbers."""
        f = self.flow(spec.port)
        o = TcpOptions()
        opts = spec.options or {}
        o.mss = opts.get("mss")
        o.wscale = opts.get("wscale")
        o.sack_ok = bool(opts.get("sack_ok"))
        if "ts" in opts:
            val, ecr = opts["ts"]
            o.ts = (val, f.last_tsval if ecr == ANY else ecr)
        if "sack" in opts:
            base = f.local_isn or 0
            o.sack_blocks = tuple(((l + base) & MASK, (r + base) & MASK) for l, r in opts["sack"])
        ack = 0
        if spec.ack is not None:
            ack = (spec.ack + (f.local_isn or 0)) & MASK
        off = (spec.start - 1) if not spec.flags & SYN else 0
        data = payload(max(off, 0), spec.length)
        return Segment(self.raddr, self.laddr, f.rport, self.lport, seq=(spec.start + f.remote_isn) & MASK,
                       ack=ack, flags=spec.flags, window=spec.win, options=o, payload=data)

    def relative(self, seg: Segment) -> str:
        """An emitted segment in script notation (relative numbers), for failure messages."""
        f = self.flows.get(seg.dport) or self.flow()
        lb = f.local_isn if f.local_isn is not None else 0
        s = (seg.seq - lb) & MASK
        e = (s + len(seg.payload)) & MASK
        out = f"{flag_str(seg.flags)} {s}:{e}({len(seg.payload)})"
        if seg.flags & ACK:
            out += f" ack {(seg.ack - f.remote_isn) & MASK}"
        out += f" win {seg.window}"
        if seg.dport != self.rport:
            out += f" port {seg.dport}"
        o = seg.options
        items = []
        if o.mss is not None:
            items.append(f"mss {o.mss}")
        if o.sack_ok:
            items.append("sackOK")
        if o.ts is not None:
            items.append(f"TS val {o.ts[0]} ecr {o.ts[1]}")
        if o.wscale is not None:
            items.append(f"wscale {o.wscale}")
        if o.sack_blocks:
            items.append("sack " + " ".join(f"{(l - f.remote_isn) & MASK}:{(r - f.remote_isn) & MASK}"
                                            for l, r in o.sack_blocks))
        return out + (f" <{','.join(items)}>" if items else "")

    def _expected_abs(self, spec: SegSpec, f: _Flow) -> str:
        """The expectation in ``str(Segment)`` notation with absolute numbers and wildcards."""
        lb = f.local_isn if f.local_isn is not None else 0
        ack = ANY if spec.ack in (None, ANY) else (spec.ack + f.remote_isn) & MASK
        win = ANY if spec.win in (None, ANY) else spec.win
        body = f"{flag_str(spec.flags)} seq {(spec.start + lb) & MASK} ack {ack} win {win} len {spec.length}"
        if spec.options == ANY:
            return body + " <...>"
        opts = spec.options or {}
        items = []
        if "mss" in opts:
            items.append(f"mss {opts['mss']}")
        if opts.get("sack_ok"):
            items.append("sackOK")
        if "ts" in opts:
            items.append(f"TS val {opts['ts'][0]} ecr {opts['ts'][1]}")
        if "wscale" in opts:
            items.append(f"wscale {opts['wscale']}")
        if "sack" in opts:
            sk = opts["sack"]
            items.append("sack *" if sk == ANY else " ".join(
                f"sack {(l + f.remote_isn) & MASK}:{(r + f.remote_isn) & MASK}" for l, r in sk))
        return body + (f" <{','.join(items)}>" if items else "")

    def _fail(self, line: Line, why: str, got: Emitted | None = None, expected: str | None = None) -> None:
        msg = [f"script line {line.no}: {line.text}", f"  {why}"]
        if expected is not None:
            msg.append(f"  expected (t={line.time:.6f}): {expected}")
        if got is not None:
            msg.append(f"  got      (t={got.time:.6f}): {got.seg}")
            msg.append(f"  got as script: {self.relative(got.seg)}")
        raise DrillFailure("\n".join(msg))

    # -- matching
    def _mismatches(self, spec: SegSpec, seg: Segment, f: _Flow) -> list[str]:
        bad = []
        if (seg.saddr, seg.sport, seg.daddr, seg.dport) != (self.laddr, self.lport, self.raddr, f.rport):
            bad.append(f"addresses {seg.saddr:#x}:{seg.sport} > {seg.daddr:#x}:{seg.dport}")
        if seg.flags != spec.flags:
            bad.append(f"flags {flag_str(seg.flags)} != {flag_str(spec.flags)}")
        if f.local_isn is not None and seg.seq != (spec.start + f.local_isn) & MASK:
            bad.append(f"seq {(seg.seq - f.local_isn) & MASK} != {spec.start}")
        if len(seg.payload) != spec.length:
            bad.append(f"len {len(seg.payload)} != {spec.length}")
        if spec.flags & ACK and spec.ack not in (None, ANY) and seg.ack != (spec.ack + f.remote_isn) & MASK:
            bad.append(f"ack {(seg.ack - f.remote_isn) & MASK} != {spec.ack}")
        if spec.win not in (None, ANY) and seg.window != spec.win:
            bad.append(f"win {seg.window} != {spec.win}")
        if spec.options != ANY:
            bad += self._option_mismatches(spec.options or {}, seg.options, f)
        return bad

    @staticmethod
    def _option_mismatches(want: dict, o: TcpOptions, f: _Flow) -> list[str]:
        bad = []

        def cmp(name, have, exp):
            if exp is None:
                if have not in (None, False, ()):
                    bad.append(f"unexpected option {name} {have}")
            elif have in (None, ()):
                bad.append(f"missing option {name}")
            elif exp != ANY and have != exp:
                bad.append(f"{name} {have} != {exp}")

        cmp("mss", o.mss, want.get("mss"))
        cmp("wscale", o.wscale, want.get("wscale"))
        if o.sack_ok != bool(want.get("sack_ok")):
            bad.append("sackOK " + ("unexpected" if o.sack_ok else "missing"))
        ts = want.get("ts")
        if ts is None:
            cmp("TS", o.ts, None)
        elif o.ts is None:
            bad.append("missing option TS")
        else:
            for nm, have, exp in (("TS val", o.ts[0], ts[0]), ("TS ecr", o.ts[1], ts[1])):
                if exp != ANY and have != exp:
                    bad.append(f"{nm} {have} != {exp}")
        sk = want.get("sack")
        rel = tuple(((l - f.remote_isn) & MASK, (r - f.remote_isn) & MASK) for l, r in o.sack_blocks)
        if sk is None:
            if rel:
                bad.append(f"unexpected sack {rel}")
        elif sk != ANY and rel != tuple(sk):
            bad.append(f"sack {rel} != {tuple(sk)}")
        elif sk == ANY and not rel:
            bad.append("missing sack blocks")
        return bad

    def _expect(self, line: Line) -> None:
        spec = line.seg
        f = self.flow(spec.port)
        if not self.pending:
            self._fail_missing(line, f)
        got = self.pending.pop(0)
        if spec.flags & SYN and f.local_isn is None and got.seg.flags & SYN and got.seg.dport == f.rport:
            f.local_isn = (got.seg.seq - spec.start) & MASK      # the SYN/SYN-ACK fixes our ISN
        bad = self._mismatches(spec, got.seg, f)
        if abs(got.time - line.time) > self.tolerance:
            when = "early" if got.time < line.time else "late"
            bad.insert(0, f"time: emitted {when} at t={got.time:.6f}, scripted t={line.time:.6f}")
        if bad:
            self._fail(line, "segment differs: " + "; ".join(bad), got, self._expected_abs(spec, f))
        self.transcript.append((got.time, ">", got.seg))

    def _fail_missing(self, line: Line, f: _Flow) -> None:
        expected = self._expected_abs(line.seg, f)
        # Look ahead (the script has failed anyway) to say when something does come out.
        nd = getattr(self.stack, "next_deadline", None)
        d = nd() if nd else None
        if d is not None and d <= self.start + line.time + 600:
            self.advance(d)
            if self.pending:
                self._fail(line, f"no segment at t={line.time:.6f}; the next one came later",
                           self.pending[0], expected)
        self._fail(line, f"no segment emitted by t={line.time:.6f}", None, expected)

    def _no_leftovers(self, line: Line, what: str) -> None:
        if self.pending:
            self._fail(line, f"unexpected segment emitted before this {what}", self.pending[0])

    def run(self, script: str, actions: dict | None = None, *, strict: bool = True,
            settle: float = 0.0) -> "Drill":
        """Run the script. ``strict``: nothing may remain unmatched at the end; ``settle``:
        also fire timers that long after the last line and require silence."""
        actions = actions or {}
        lines = parse(script)
        for ln in lines:
            if ln.kind == "%" and ln.action not in actions:
                raise DrillSyntaxError(f"line {ln.no}: unknown action %{ln.action}; "
                                       f"known: {', '.join(sorted(actions)) or 'none'}")
        for ln in lines:
            self.line = ln
            t = self.start + ln.time
            self.advance(t)
            if ln.kind == ">":
                self._expect(ln)
                continue
            self._no_leftovers(ln, "inject" if ln.kind == "<" else "action")
            if ln.kind == "<":
                seg = self.build(ln.seg)
                self.transcript.append((self.now - self.start, "<", seg))
                self.stack.receive_segment(seg, self.now)
            else:
                actions[ln.action](self, *ln.args)
            self._collect(self.now)
        if lines and (strict or settle):
            last = lines[-1]
            if settle:
                self.advance(self.now + settle)
            if self.pending:
                self._fail(last, f"unexpected segment after the end of the script"
                                 f"{f' (settle {settle}s)' if settle else ''}", self.pending[0])
        return self
