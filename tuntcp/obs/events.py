"""JSON-lines event log: one object per line with ``t`` (the stack's now), ``kind`` and fields.

The Stack takes ``log=EventLog(...)`` and calls ``log(kind, t=now, **fields)``. Values that JSON
cannot hold (bytes, sets, addresses as objects) are written with ``str()`` rather than failing:
an event log must never take the endpoint down.
"""
from __future__ import annotations

import json
from typing import IO, Any


class EventLog:
    """``EventLog("events.jsonl")`` or ``EventLog(open_file)``; call it as ``log(kind, **fields)``."""

    def __init__(self, dest: str | IO[str], *, clock=None):
        if isinstance(dest, str):
            self._f: IO[str] = open(dest, "a", buffering=1 << 16)
            self._own = True
        else:
            self._f = dest
            self._own = False
        self._clock = clock  # used only when the caller gives no ``t``
        self.count = 0

    def __call__(self, kind: str, t: float | None = None, **fields: Any) -> None:
        if t is None and self._clock is not None:
            t = self._clock()
        rec = {"t": None if t is None else round(t, 6), "kind": kind}
        rec.update(fields)
        self._f.write(json.dumps(rec, default=str, separators=(",", ":")) + "\n")
        self.count += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._own and not self._f.closed:
            self._f.close()
        elif not self._f.closed:
            self._f.flush()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_events(path: str) -> list[dict]:
    """Load a JSON-lines event file (for tests and scenario reports)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
