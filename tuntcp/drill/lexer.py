"""Tokens of a packetdrill script (grammar: packetdrill's syntax.md, written anew here).

Comments (``//`` to end of line, ``/* */``) are dropped; a backtick command and a ``%{ }%``
block are one token each. Every token carries its line and whether it is the first on it
(an event starts with a time at the start of a line).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .model import ScriptSyntaxError

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\\]+)
  | (?P<nl>\n)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<command>`[^`]*`)
  | (?P<code>%\{.*?\}%)
  | (?P<option>--[A-Za-z_][A-Za-z0-9_]*(?:=[^\s/]*)?)
  | (?P<ellipsis>\.\.\.)
  | (?P<hex>0x[0-9A-Fa-f]+)
  | (?P<num>\d+(?:\.\d+)?|\.\d+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[-+*~<>.:()\[\]{},=|!&])
""", re.X | re.S)


@dataclass
class Tok:
    kind: str        # command code option ellipsis hex num string word punct
    text: str
    line: int
    first: bool      # first token on its line

    @property
    def value(self):
        if self.kind == "hex":
            return int(self.text, 16)
        if self.kind == "num":
            return float(self.text) if "." in self.text else int(self.text)
        return self.text


def tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    line, pos, first = 1, 0, True
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ScriptSyntaxError(f"syntax error: unexpected character {text[pos]!r}", line)
        kind, s = m.lastgroup, m.group()
        if kind == "nl":
            line, first = line + 1, True
        elif kind in ("space", "lcomment"):
            pass
        elif kind == "bcomment":
            line += s.count("\n")
        else:
            out.append(Tok(kind, s, line, first))
            line += s.count("\n")
            first = False
        pos = m.end()
    return out
