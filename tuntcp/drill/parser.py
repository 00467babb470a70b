"""Script text -> ``Script`` (events), following the grammar in packetdrill's syntax.md.

``-D SYM=VAL`` definitions replace the word SYM wherever it stands for a value (syscall
arguments and results, ``%{ }%`` code sees them as Python names).
"""
from __future__ import annotations

from .lexer import Tok, tokens
from .model import ELLIPSIS, Event, Option, Packet, Script, ScriptSyntaxError, Syscall, Time

_OPEN, _CLOSE = "([{", ")]}"


def parse(text: str, path: str = "<script>", defines: dict | None = None) -> Script:
    toks = tokens(text)
    script = Script(path)
    for chunk in _split_events(toks, script):
        script.events.append(_Parser(chunk, defines or {}).event())
    return script


def _split_events(toks: list[Tok], script: Script) -> list[list[Tok]]:
    """Group tokens into events: a new event starts at depth 0 with a line's first token."""
    chunks: list[list[Tok]] = []
    depth = 0
    for t in toks:
        if t.kind == "option" and not chunks:
            name, _, val = t.text[2:].partition("=")
            script.options[name] = val
            continue
        starts = depth == 0 and (t.first or not chunks) and (
            t.kind in ("num", "command", "code") or t.text in ("+", "*"))
        if t.kind == "command" and not chunks:
            starts = True
        if starts:
            chunks.append([t])
        elif not chunks:
            raise ScriptSyntaxError(f"syntax error: expected a time, got {t.text!r}", t.line)
        else:
            chunks[-1].append(t)
        if t.kind == "punct":
            if t.text in _OPEN:
                depth += 1
            elif t.text in _CLOSE:
                depth = max(0, depth - 1)
    return chunks


class _Parser:
    def __init__(self, toks: list[Tok], defines: dict):
        self.toks = toks
        self.i = 0
        self.defines = defines
        self.line = toks[0].line

    # ---- token helpers
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Tok:
        t = self.peek()
        if t is None:
            raise ScriptSyntaxError("syntax error: unexpected end of event", self.line)
        self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.peek()
        return t is not None and t.text == text

    def expect(self, text: str) -> Tok:
        t = self.next()
        if t.text != text:
            raise ScriptSyntaxError(f"syntax error: expected {text!r}, got {t.text!r}", t.line)
        return t

    def integer(self) -> int:
        t = self.next()
        if t.kind == "word" and t.text in self.defines:
            return int(str(self.defines[t.text]), 0)
        if t.kind not in ("num", "hex") or not isinstance(t.value, int):
            raise ScriptSyntaxError(f"syntax error: expected an integer, got {t.text!r}", t.line)
        return t.value

    def _usecs(self) -> int:
        t = self.next()
        if t.kind != "num":
            raise ScriptSyntaxError(f"syntax error: bad time {t.text!r}", t.line)
        return round(float(t.text) * 1_000_000)

    # ---- events
    def event(self) -> Event:
        first = self.peek()
        if first.kind == "command":          # an init or cleanup command without a time
            self.i += 1
            return Event(first.line, Time("any"), "command", text=first.text[1:-1])
        time = self.time()
        t = self.peek()
        if t is None:
            raise ScriptSyntaxError("syntax error: a time with no event after it", self.line)
        if t.kind == "command":
            self.i += 1
            ev = Event(self.line, time, "command", text=t.text[1:-1])
        elif t.kind == "code":
            self.i += 1
            ev = Event(self.line, time, "code", text=t.text[2:-2])
        elif t.text in ("<", ">"):
            ev = Event(self.line, time, "packet", packet=self.packet())
        else:
            ev = Event(self.line, time, "syscall", syscall=self.syscall())
        if self.peek() is not None:
            raise ScriptSyntaxError(f"syntax error: unexpected {self.peek().text!r} after the event",
                                    self.peek().line)
        return ev

    def time(self) -> Time:
        if self.at("*"):
            self.i += 1
            return Time("any")
        rel = self.at("+")
        if rel:
            self.i += 1
        start = self._usecs()
        if self.at("~"):
            self.i += 1
            if self.at("+"):
                self.i += 1
            end = self._usecs()
            return Time("rel_range" if rel else "abs_range", start, end)
        return Time("rel" if rel else "abs", start)

    # ---- packets
    def packet(self) -> Packet:
        direction = self.next().text
        ip_info = ""
        if self.at("[") or (self.at("(") and self.peek(1) and self.peek(1).kind == "word"):
            close = "]" if self.next().text == "[" else ")"
            parts = []
            while not self.at(close):
                parts.append(self.next().text)
            self.i += 1
            ip_info = " ".join(parts)
        proto = "tcp"
        if self.peek() and self.peek().text.lower() in ("udp", "icmp", "gre", "mpls", "ipv4", "ipv6"):
            proto = self.peek().text.lower()
            self.i = len(self.toks)          # parsed no further: not a TCP packet
            return Packet(direction, "", 0, 0, 0, ip_info=ip_info, proto=proto)
        flags = ""
        while self.peek() and (self.peek().kind == "word" or self.peek().text in (".", "-")) \
                and not self.peek().text[0].isdigit():
            flags += self.next().text
        start = self.integer()
        self.expect(":")
        end = self.integer()
        self.expect("(")
        length = self.integer()
        self.expect(")")
        pkt = Packet(direction, flags, start, end, length, ip_info=ip_info, proto=proto)
        while self.peek() is not None:
            w = self.next()
            if w.text == "ack":
                pkt.ack = self.integer()
            elif w.text == "win":
                pkt.win = self.integer()
            elif w.text == "urg":
                pkt.urg = self.integer()
            elif w.text == "<":
                self.options(pkt)
            else:
                raise ScriptSyntaxError(f"syntax error: unexpected {w.text!r} in a packet", w.line)
        return pkt

    def options(self, pkt: Packet) -> None:
        if self.at("...") :
            self.i += 1
            self.expect(">")
            pkt.options_any = True
            return
        opts: list[Option] = []
        while True:
            name = self.next()
            n = name.text
            if n in ("nop", "eol", "sackOK"):
                opts.append(Option(n))
            elif n in ("mss", "wscale"):
                opts.append(Option(n, self.integer()))
            elif n == "TS":
                self.expect("val")
                val = self.integer()
                self.expect("ecr")
                opts.append(Option("TS", (val, self.integer())))
            elif n == "sack":
                blocks = []
                while self.peek() and self.peek().kind in ("num", "hex"):
                    left = self.integer()
                    self.expect(":")
                    blocks.append((left, self.integer()))
                opts.append(Option("sack", tuple(blocks)))
            elif n in ("FO", "FOEXP", "md5"):
                blob = ""
                while self.peek() and self.peek().text not in (",", ">"):
                    blob += self.next().text
                opts.append(Option(n, blob))
            else:
                raise ScriptSyntaxError(f"syntax error: unknown TCP option {n!r}", name.line)
            sep = self.next()
            if sep.text == ">":
                break
            if sep.text != ",":
                raise ScriptSyntaxError(f"syntax error: expected ',' or '>' in options, got {sep.text!r}",
                                        sep.line)
        pkt.options = opts

    # ---- syscalls
    def syscall(self) -> Syscall:
        end = None
        if self.at("..."):
            self.i += 1
            end = Time("abs", self._usecs())
        name = self.next()
        if name.kind != "word":
            raise ScriptSyntaxError(f"syntax error: expected a packet, a system call or a command, "
                                    f"got {name.text!r}", name.line)
        self.expect("(")
        args = self.expr_list(")")
        self.expect("=")
        ret = self.expr()
        errno = None
        if self.peek() is not None and self.peek().kind == "word":
            errno = self.next().text
        if self.at("("):                     # the note: (Operation now in progress)
            depth = 0
            while self.peek() is not None:
                t = self.next()
                depth += t.text == "("
                depth -= t.text == ")"
                if depth == 0:
                    break
        return Syscall(name.text, args, ret, errno, end)

    def expr_list(self, close: str) -> list:
        out = []
        if self.at(close):
            self.i += 1
            return out
        while True:
            out.append(self.expr())
            t = self.next()
            if t.text == close:
                return out
            if t.text != ",":
                raise ScriptSyntaxError(f"syntax error: expected ',' or {close!r}, got {t.text!r}", t.line)

    def expr(self):
        left = self.atom()
        while self.at("|"):
            self.i += 1
            left = ("|", left, self.atom())
        named = isinstance(left, str) or (isinstance(left, tuple) and left[0] == "call")
        if self.at("=") and named and self.peek(1) is not None \
                and self.peek(1).text not in (",", ")", "}"):
            self.i += 1
            return ("=", left, self.expr())
        return left

    def atom(self):
        t = self.next()
        if t.kind == "ellipsis":
            return ELLIPSIS
        if t.text == "-" and self.peek() and self.peek().kind in ("num", "hex"):
            return -self.next().value
        if t.kind in ("num", "hex"):
            return t.value
        if t.kind == "string":
            s = t.text[1:-1]
            if self.at("..."):
                self.i += 1
            return ("str", s)
        if t.text == "[":
            return ("[]", self.expr_list("]"))
        if t.text == "{":
            return ("{}", self.expr_list("}"))
        if t.kind == "word":
            if t.text in self.defines:
                v = str(self.defines[t.text])
                try:
                    return int(v, 0)
                except ValueError:
                    return v
            if self.at("("):                 # htons(8080), inet_addr("..."), msg_iov(1)
                self.i += 1
                return ("call", t.text, self.expr_list(")"))
            return t.text
        raise ScriptSyntaxError(f"syntax error: unexpected {t.text!r} in an expression", t.line)
