"""``tuntcp ss``, ``tuntcp nstat`` and ``tuntcp netstat``: options as the real tools take them,
parsed here, answered by the running endpoint over its control socket (``answer``).

    tuntcp ss -ltnp                       tuntcp ss -tni state established '( sport = :9092 )'
    tuntcp ss -s                          tuntcp ss -tan state syn-recv sport = :9092
    tuntcp nstat -az 'TcpExtListen*'      tuntcp nstat --json TcpExtSyncookiesSent
    tuntcp netstat -Lan                   (FreeBSD profiles: qlen/incqlen/maxqlen)
"""
from __future__ import annotations

import sys

from ..errors import UserError

from . import ssfilter as F

DEFAULT_NAME = "tuntcp"

SS_EPILOG = """\
FILTER is what ss(8) takes: [ state STATE | exclude STATE ]... [ EXPRESSION ]
  STATE: established syn-sent syn-recv fin-wait-1 fin-wait-2 time-wait closed close-wait
         last-ack listening closing, or all connected synchronized bucket big
  EXPRESSION: sport|dport [= == != > < >= <=] :PORT, src|dst ADDR[/LEN][:PORT],
         joined with and/or/not (also & | !) and ( ); e.g. state syn-recv sport = :9092
Without -a, -l or a state, ss shows neither LISTEN nor TIME-WAIT nor SYN-RECV sockets."""

NSTAT_EPILOG = """\
PATTERN: shell globs on counter names, e.g. 'TcpExtListen*' TcpExtSyncookiesSent.
Without -a: increments since the previous nstat call on this endpoint (its history)."""


def add_ss_arguments(s) -> None:
    s.formatter_class = _raw_formatter()
    s.epilog = SS_EPILOG
    s.add_argument("-t", "--tcp", action="store_true", help="TCP sockets only (hides the Netid column)")
    s.add_argument("-n", "--numeric", action="store_true", help="numeric ports (always; accepted)")
    s.add_argument("-r", "--resolve", action="store_true", help="accepted; addresses stay numeric")
    s.add_argument("-a", "--all", action="store_true",
                   help="every state, LISTEN, TIME-WAIT and SYN-RECV included")
    s.add_argument("-l", "--listening", action="store_true", help="listening sockets only")
    s.add_argument("-p", "--processes", action="store_true",
                   help='the owning process: users:(("comm",pid=N,fd=TUN fd))')
    s.add_argument("-i", "--info", action="store_true",
                   help="tcp_info line: wscale, rto, rtt, mss, cwnd, windows, bytes ...")
    s.add_argument("-e", "--extended", action="store_true",
                   help="socket details (ino:0 sk:ID and shutdown arrows) and timers")
    s.add_argument("-m", "--memory", action="store_true",
                   help="skmem:(r,rb,t,tb,f,w,o,bl,d): queued bytes and buffer sizes")
    s.add_argument("-o", "--options", action="store_true",
                   help="timers (retransmit, persist, FIN-WAIT-2, TIME-WAIT, SYN-RECV) and ts/sack in -i")
    s.add_argument("-s", "--summary", action="store_true", help="socket counts (ss -s)")
    s.add_argument("-H", "--no-header", action="store_true", help="no header line")
    s.add_argument("-4", "--ipv4", action="store_true", help="IPv4 sockets only")
    s.add_argument("-6", "--ipv6", action="store_true", help="IPv6 sockets only")
    s.add_argument("--name", default=DEFAULT_NAME, help="endpoint name (serve --name)")
    s.add_argument("filter", nargs="*", metavar="FILTER", help="state words and an expression")


def add_nstat_arguments(s) -> None:
    s.formatter_class = _raw_formatter()
    s.epilog = NSTAT_EPILOG
    s.add_argument("-a", "--ignore", "--absolute", dest="absolute", action="store_true",
                   help="absolute values, ignoring the history")
    s.add_argument("-z", "--zeros", action="store_true", help="show counters that are zero too")
    s.add_argument("-j", "--json", action="store_true", help='JSON: {"kernel": {NAME: value}}')
    s.add_argument("-p", "--pretty", action="store_true", help="indented JSON (with -j)")
    s.add_argument("-s", "--noupdate", action="store_true", help="do not update the history")
    s.add_argument("-n", "--nooutput", action="store_true", help="update the history only")
    s.add_argument("-r", "--reset", action="store_true", help="forget the history first")
    s.add_argument("--name", default=DEFAULT_NAME, help="endpoint name (serve --name)")
    s.add_argument("patterns", nargs="*", metavar="PATTERN", help="counter name globs")


def add_netstat_arguments(s) -> None:
    s.add_argument("-L", "--listen-queues", action="store_true",
                   help="listen queues qlen/incqlen/maxqlen (the only view; accepted)")
    s.add_argument("-a", "--all", action="store_true", help="accepted for compatibility")
    s.add_argument("-n", "--numeric", action="store_true", help="accepted; output is numeric")
    s.add_argument("--name", default=DEFAULT_NAME, help="endpoint name (serve --name)")


def _raw_formatter():
    import argparse
    return argparse.RawDescriptionHelpFormatter


class ObsUsageError(UserError, ValueError):
    """A bad ss/nstat argument: the CLI prints it as one line (exit 2)."""


def ss_query(args) -> dict:
    """ss's option and filter parsing -> the JSON query the endpoint answers."""
    try:
        mask, rest = F.parse_states(list(args.filter))
        tree = F.parse_filter(rest)
    except F.FilterError as e:
        raise ObsUsageError(f"ss: {e}") from None
    if not mask:
        mask = F.SS_ALL if args.all else F.SS_LISTENING if args.listening else F.SS_CONN
    if args.ipv6 and not args.ipv4:
        tree = ["and", tree or ["true"], ["src", "::/0", -1]]
    elif args.ipv4 and not args.ipv6:
        tree = ["and", tree or ["true"], ["src", "0.0.0.0/0", -1]]
    return {"states": mask, "filter": tree, "tcp_only": args.tcp, "info": args.info,
            "processes": args.processes, "extended": args.extended, "memory": args.memory,
            "options": args.options or args.extended, "summary": args.summary,
            "no_header": args.no_header}


def nstat_query(args) -> dict:
    return {"absolute": args.absolute, "zeros": args.zeros, "json": args.json,
            "pretty": args.pretty, "noupdate": args.noupdate, "nooutput": args.nooutput,
            "reset": args.reset, "patterns": list(args.patterns)}


def cmd_ss(args, request) -> int:
    """``request(name, req)`` is the control-socket client (shell.control.request, passed
    in by the CLI: obs sits below the shell)."""
    sys.stdout.write(request(args.name, {"cmd": "ss", "query": ss_query(args)})["text"])
    return 0


def cmd_nstat(args, request) -> int:
    sys.stdout.write(request(args.name, {"cmd": "nstat", "query": nstat_query(args)})["text"])
    return 0


def cmd_netstat(args, request) -> int:
    sys.stdout.write(request(args.name, {"cmd": "netstat"})["text"])
    return 0


# ---- the endpoint's side --------------------------------------------------------------------

def _legacy_ss(req: dict) -> dict:
    """Requests from before the query form: {"listening", "all", "info"}."""
    mask = F.SS_ALL if req.get("all") else F.SS_LISTENING if req.get("listening") else F.SS_CONN
    return {"states": mask, "tcp_only": True, "info": bool(req.get("info"))}


def answer(endpoint, req: dict, history) -> str | None:
    """The text for an ss/nstat/netstat request (None: not one of ours). Runs on the
    endpoint's trio thread between batches, so the views see a consistent stack."""
    from . import views
    from .ss import process_of, ss_text
    stack = endpoint.stack
    cmd = req.get("cmd")
    if cmd == "ss":
        q = req.get("query") or _legacy_ss(req)
        return ss_text(stack, q, proc=process_of(getattr(endpoint.io, "fd", -1)))
    if cmd == "nstat":
        q = req.get("query") or {"absolute": bool(req.get("absolute")), "zeros": bool(req.get("zeros"))}
        return history.answer(stack.counters, q)
    if cmd == "netstat":
        return views.netstat_lan(stack)
    return None
