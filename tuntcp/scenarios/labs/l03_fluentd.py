"""Lab 3: "Possible SYN flooding" without an attack (scenario: scenarios/fluentd.py)."""
import re

from tuntcp.scenarios.labs import (Check, LabSpec, NotCheckable, as_number, fixed_number, fixed_text,
                            measured_number, measured_yes_no, norm_text)


def head(report: dict, fixed: bool, cookies: int) -> dict:
    cfg = report.get("config", {})
    backlog = cfg.get("fixed", 65535) if fixed else cfg.get("small_backlog", 128)
    name = f"backlog={backlog} cookies={cookies}"
    h = report["headline"].get(name)
    if h is None:
        raise NotCheckable(f"your report has no {name!r} run (run all four settings: tuntcp lab run 3)")
    return h


def the_fix(answer, report) -> bool:
    """Seed 001 raised in_forward's backlog and net.core.somaxconn (and tcp_max_syn_backlog)."""
    s = norm_text(answer)
    return "somaxconn" in s and bool(re.search(r"(?<!syn_)\bbacklog\b|in_forward", s))


def slow_connect(answer, report) -> bool:
    """p99 connect time with cookies off, in ms (or in s: "3 s"), within 10 %."""
    want = head(report, False, 0)["connect_ms"]["p99"]
    if want is None:
        raise NotCheckable("your report has no connect times for that run")
    got = as_number(answer)
    secs = isinstance(answer, str) and re.search(r"\d\s*(s|sec|secs|seconds)\s*$", answer.strip().lower())
    return any(abs(g - want) <= 0.1 * want for g in ((got * 1000,) if secs else (got,)))


LAB = LabSpec(
    number=3,
    slug="fluentd",
    module="tuntcp.scenarios.fluentd",
    report_scenario="fluentd-heartbeats",
    settings=dict(),
    quick=dict(forwarders=200, rounds=2),
    look_at=[
        "report.json: headline.<setting> (flood_line, max_syn_recv, syn_queue_max, SyncookiesSent, "
        "TCPReqQFullDrop, connect_ms)",
        "report.json: runs.<setting>.kernel_log and proc_net_tcp_at_peak (the /proc/net/tcp the "
        "operator counted)",
        'settings are named "backlog=<n> cookies=<0|1>"',
    ],
    checks={
        "Q1": measured_number(lambda r: head(r, False, 1)["syn_queue_max"],
                              "headline.<backlog=small cookies=1>.syn_queue_max; the listen backlog, "
                              "capped by somaxconn, sizes the SYN queue too"),
        "Q2": Check(lambda a, r: bool(re.fullmatch(r"(0x)?0*5ea0", norm_text(a).replace(" ", ""))),
                    "convert 24224 to hexadecimal (printf '%X' 24224); the local_address column of "
                    "runs.<setting>.proc_net_tcp_at_peak"),
        "Q3": fixed_number(3, "the st column of runs.<setting>.proc_net_tcp_at_peak (0A is LISTEN); "
                              "Story: the operator's state table"),
        "Q4": measured_number(lambda r: head(r, False, 1)["max_syn_recv"],
                              "headline.<backlog=small cookies=1>.max_syn_recv (the most SYN_RECV lines "
                              "in one /proc/net/tcp sample)"),
        "Q5": measured_number(lambda r: head(r, False, 1)["SyncookiesSent"],
                              "headline.<backlog=small cookies=1>.SyncookiesSent"),
        "Q6": measured_number(lambda r: head(r, False, 0)["TCPReqQFullDrop"],
                              "headline.<backlog=small cookies=0>.TCPReqQFullDrop"),
        "Q7": measured_yes_no(lambda r: head(r, True, 1)["flood_line_printed"],
                              "headline.<backlog=large cookies=1>.flood_line_printed and "
                              "runs.<setting>.kernel_log"),
        "Q8": Check(slow_connect, "headline.<backlog=small cookies=0>.connect_ms.p99 (milliseconds); "
                                  "compare it with the cookies=1 run", measured=True),
        "Q9": fixed_text([r"\baccept\b"], "ListenOverflows counts a completed handshake that found no room; "
                                           "cookies only replace one of the two queues", reject=[r"\bsyn\b"]),
        "Q10": Check(the_fix, "Story: what the operator raised to 65535 on every log server (two of "
                              "the three settings are enough)"),
    },
)
