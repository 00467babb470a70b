"""Lab 7: FreeBSD listen queues, syncache and accept filters (scenario: scenarios/freebsd_queue.py)."""
import re

from tuntcp.scenarios.labs import (Check, LabSpec, NotCheckable, measured_number, measured_text, measured_yes_no,
                            norm_text)

OVERFLOW_PORT = 7000


def prof(report: dict, name: str) -> dict:
    h = report["headline"].get(name)
    if not isinstance(h, dict):
        raise NotCheckable(f"your report has no {name!r} run (run both profiles: tuntcp lab run 7)")
    return h


def netstat_row(report: dict) -> str:
    """qlen/incqlen/maxqlen of the overflow listener in freebsd-9's netstat -Lan while full."""
    text = prof(report, "freebsd-9")["netstat_full"]
    m = re.search(r"(\d+/\d+/\d+)\s+\S*\.%d\b" % OVERFLOW_PORT, text)
    if not m:
        raise NotCheckable(f"no *.{OVERFLOW_PORT} line in headline.freebsd-9.netstat_full")
    return m.group(1)


def reset_answer(answer, report) -> bool:
    s = norm_text(answer)
    return bool(re.search(r"\b(rst|reset|refused)", s)) and not re.search(r"\b(drop|silen|ignor|nothing)", s)


def get_and_head(answer, report) -> bool:
    s = norm_text(answer)
    return bool(re.search(r"\bget\b", s) and re.search(r"\bhead\b", s)) and not re.search(r"\bpost\b", s)


LAB = LabSpec(
    number=7,
    slug="freebsd-queue",
    module="tuntcp.scenarios.freebsd_queue",
    report_scenario="freebsd_queue",
    settings=dict(),
    quick=dict(rexmtlimit=1),
    look_at=[
        "report.json: headline.<profile> (queue_limit, queued, reset, netstat_full, lifetime, filters)",
        "report.json: profiles.<profile>.kernel_log, netstat_held (accept filters holding connections)",
        "report.json: counters.<profile> (FreeBSDListenDrops, FreeBSDSyncache*)",
    ],
    checks={
        "Q1": measured_number(lambda r: prof(r, "freebsd-9")["queue_limit"],
                              "headline.freebsd-9.queue_limit; seed 003 on sonewconn's limit (config.backlog "
                              "is the backlog)"),
        "Q2": Check(reset_answer, "profiles.<profile>.overflow.clients[].outcome; seed 003: \"Overflow -> ?\""),
        "Q3": measured_number(lambda r: prof(r, "freebsd-9")["reset"], "headline.freebsd-9.reset"),
        "Q4": measured_text(netstat_row, f"headline.freebsd-9.netstat_full, the *.{OVERFLOW_PORT} line "
                                         "(qlen/incqlen/maxqlen)"),
        "Q5": measured_number(lambda r: prof(r, "freebsd-9")["lifetime"]["synack_times_s"][1],
                              "headline.freebsd-9.lifetime.synack_times_s (seconds from the first SYN-ACK)",
                              abs_tol=0.25),
        "Q6": measured_number(lambda r: prof(r, "freebsd-14")["lifetime"]["lifetime_s"],
                              "headline.freebsd-14.lifetime.lifetime_s (seconds)", abs_tol=0.5),
        "Q7": measured_number(lambda r: prof(r, "freebsd-9")["filters"]["httpready"]["http_split"]["accept_delay_s"],
                              "headline.freebsd-9.filters.httpready.http_split.accept_delay_s (seconds)",
                              abs_tol=0.1),
        "Q8": measured_yes_no(lambda r: prof(r, "freebsd-9")["filters"]["dataready"]["http_split"]["whole_request"],
                              "headline.freebsd-9.filters.dataready.http_split: whole_request and bytes_at_accept"),
        "Q9": Check(get_and_head, "seed 003 (accf_http): which request lines does the filter wait on?"),
    },
)
