"""The parsed form of a packetdrill script: events with times, packets, syscalls, commands, code.

Times are integer microseconds. ``kind`` of a time: "abs", "rel", "any" (``*``), "abs_range",
"rel_range". A range's end is in ``end``; a blocking syscall's ``...T`` end time in ``Syscall.end``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class DrillError(Exception):
    """Base of everything a script run can report; ``line`` is the script line (0: none)."""

    def __init__(self, msg: str, line: int = 0):
        super().__init__(msg)
        self.msg = msg
        self.line = line


class ScriptSyntaxError(DrillError):
    """The script does not parse (a user mistake, exit 2 from the CLI)."""


class Unsupported(DrillError):
    """The script uses something the runner or the model does not have; ``feature`` names it."""

    def __init__(self, feature: str, line: int = 0, detail: str = ""):
        super().__init__(f"unsupported: {feature}{': ' + detail if detail else ''}", line)
        self.feature = feature


class Mismatch(DrillError):
    """The stack did not do what the script says; ``what`` is packetdrill's phrase
    ("error handling packet", "runtime error in write call", "error in Python code"...)."""

    def __init__(self, what: str, msg: str, line: int):
        super().__init__(msg, line)
        self.what = what


ELLIPSIS = type("Ellipsis_", (), {"__repr__": lambda self: "..."})()


@dataclass
class Time:
    kind: str                 # abs | rel | any | abs_range | rel_range
    usecs: int = 0
    end: int = 0


@dataclass
class Option:
    """One TCP option as written: kind name and values (``TS``: (val, ecr); ``sack``: blocks)."""
    name: str                 # nop eol mss wscale sackOK TS sack md5 FO FOEXP
    value: object = None


@dataclass
class Packet:
    direction: str            # "<" inbound (to the stack), ">" outbound (from the stack)
    flags: str                # as written, e.g. "S.", "P.", "F.", "."
    start: int
    end: int
    length: int
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: list[Option] | None = None    # None: none written; [] never (see options_any)
    options_any: bool = False               # <...>
    ip_info: str = ""                       # [ect0], (ce) ... parsed, compared when modelled
    proto: str = "tcp"                      # tcp | udp | icmp (only tcp runs)


@dataclass
class Syscall:
    name: str
    args: list
    ret: object               # int, word or ELLIPSIS
    errno: str | None = None
    end: Time | None = None   # "...T" end time of a blocking call


@dataclass
class Event:
    line: int
    time: Time
    kind: str                 # packet | syscall | command | code
    packet: Packet | None = None
    syscall: Syscall | None = None
    text: str = ""            # command line or Python code


@dataclass
class Script:
    path: str
    events: list[Event] = field(default_factory=list)
    options: dict = field(default_factory=dict)    # --flags written at the top of the script
