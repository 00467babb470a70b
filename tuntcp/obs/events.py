"""JSON-lines event log: one object per line with ``t`` (the stack's now), ``kind`` and fields,
and ``tuntcp events FILE``, which summarises such a log. Kinds and fields: docs/events.md;
JSON Schema: tuntcp/obs/events.schema.json.

The Stack takes ``log=EventLog(...)`` and calls ``log(kind, t=now, **fields)``. Emitters pass
addresses as they hold them (ints, bytes or ipaddress objects); the log writes every field
named ``laddr``/``raddr``/``saddr``/``daddr``/``addr`` as text, dotted for IPv4 and bracketed
for IPv6 (``[2001:db8::1]``), and a ``conn`` 4-tuple as ``laddr``/``lport``/``raddr``/``rport``.
Values that JSON cannot hold otherwise are written with ``str()`` rather than failing: an event
log must never take the endpoint down.
"""
from __future__ import annotations

import ipaddress
import json
import os
from collections import Counter
from typing import IO, Any

ADDR_FIELDS = frozenset({"laddr", "raddr", "saddr", "daddr", "addr"})
SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "events.schema.json")


def addr_text(a) -> str:
    """An address as the log writes it: ``198.18.0.1`` or ``[2001:db8::1]``."""
    if isinstance(a, str):
        return a
    ip = ipaddress.ip_address(a)
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _fields(fields: dict) -> dict:
    out = {}
    for k, v in fields.items():
        if k == "conn" and isinstance(v, tuple) and len(v) == 4:
            out.update(laddr=addr_text(v[0]), lport=v[1], raddr=addr_text(v[2]), rport=v[3])
        elif k in ADDR_FIELDS and v is not None and not isinstance(v, (bool, float)):
            out[k] = addr_text(v)
        else:
            out[k] = v
    return out


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
        rec.update(_fields(fields))
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


# ---- tuntcp events FILE ---------------------------------------------------------------------

# FreeBSD's older kinds, counted under the shared name and reason
ALIASES = {"syncache_full_drop": ("syn_drop", "syncache_full"), "syncache_expired": ("syn_expired", None)}


def summarise(lines) -> dict:
    """Counts per kind, per (kind, reason/action), the window-scale split of the children
    (announced in the SYN-ACK vs used by the child, per path), and the kernel log lines."""
    kinds: Counter = Counter()
    reasons: Counter = Counter()
    wscale: Counter = Counter()
    klog: Counter = Counter()
    first = last = None
    n = 0
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError:
            raise EventsError(f"line {no} is not JSON: {line[:60].strip()!r}") from None
        if not isinstance(e, dict) or "kind" not in e:
            raise EventsError(f"line {no} is not an event (no \"kind\")")
        n += 1
        t = e.get("t")
        if isinstance(t, (int, float)):
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
        kind = e["kind"]
        kind, reason = ALIASES.get(kind, (kind, None))
        kinds[kind] += 1
        why = reason or e.get("reason") or e.get("action")
        if why is not None:
            reasons[f"{kind} {why}"] += 1
        if kind == "accept_queued" and e.get("wscale_ok"):
            wscale[(e.get("path"), e.get("announced_wscale"), e.get("child_wscale"))] += 1
        if kind == "kernel_log":
            klog[e.get("line", "")] += 1
    split = [{"path": p, "announced": a, "child": c, "connections": k,
              "mismatch": a is not None and a != c} for (p, a, c), k in sorted(
                  wscale.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]), str(kv[0][2])))]
    return {"events": n, "t_first": first, "t_last": last, "kinds": dict(kinds.most_common()),
            "reasons": dict(sorted(reasons.items())), "wscale": split,
            "kernel_log": dict(klog.most_common())}


def summary_text(path: str, s: dict) -> str:
    span = "" if s["t_first"] is None else f", t {s['t_first']:.3f} .. {s['t_last']:.3f} s"
    out = [f"{path}: {s['events']} events{span}", "", f"{'kind':<28}{'count':>8}"]
    out += [f"{k:<28}{v:>8}" for k, v in s["kinds"].items()]
    if s["reasons"]:
        out += ["", f"{'kind and reason / action':<40}{'count':>8}"]
        out += [f"{k:<40}{v:>8}" for k, v in s["reasons"].items()]
    if s["wscale"]:
        out += ["", "window scale of the accepted children: announced in the SYN-ACK -> used by"
                " the child", f"{'path':<8}{'announced':>10}{'child':>7}{'connections':>13}"]
        for w in s["wscale"]:
            note = "  MISMATCH: the peer scales our window by the announced shift" \
                if w["mismatch"] else ""
            out.append(f"{w['path']!s:<8}{w['announced']!s:>10}{w['child']!s:>7}"
                       f"{w['connections']:>13}{note}")
    if s["kernel_log"]:
        out += ["", "kernel log"]
        out += [f"  {line}" + (f"  (x{k})" if k > 1 else "") for line, k in s["kernel_log"].items()]
    return "\n".join(out) + "\n"


class EventsError(ValueError):
    """A log that cannot be read: one line, exit status 2."""


def add_arguments(p) -> None:
    p.add_argument("file", metavar="FILE", help="a JSON-lines event log (serve --events FILE)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def main(args) -> int:
    import sys
    from .commands import ObsUsageError
    try:
        with open(args.file) as f:
            s = summarise(f)
    except OSError as e:
        raise ObsUsageError(f"events: cannot read {args.file}: {e.strerror}") from None
    except (EventsError, UnicodeDecodeError) as e:
        raise ObsUsageError(f"events: {args.file}: {e}") from None
    if args.json:
        sys.stdout.write(json.dumps(s) + "\n")
    else:
        sys.stdout.write(summary_text(args.file, s))
    return 0
