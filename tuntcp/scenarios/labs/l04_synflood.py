"""Lab 4: a SYN flood, cookies on vs off (scenario: scenarios/synflood.py)."""
import re

from tuntcp.scenarios.labs import Check, LabSpec, NotCheckable, fixed_text, measured_number, norm_text


def mode(report: dict, name: str) -> dict:
    h = report["headline"].get(name)
    if not isinstance(h, dict):
        raise NotCheckable(f"your report has no {name!r} mode (run both: tuntcp lab run 4)")
    return h


def run_(report: dict, name: str) -> dict:
    mode(report, name)
    return report["runs"][name]


def busiest_retry(report: dict) -> float:
    """The SYN (re)transmit time at which most nocookies clients got in."""
    hist = {k: v for k, v in run_(report, "nocookies")["histogram"].items() if k not in ("other", "failed")}
    if not any(hist.values()):
        raise NotCheckable("no nocookies client connected near a retransmit time")
    return float(max(hist, key=hist.get))


def dropped(answer, report) -> bool:
    s = norm_text(answer)
    return bool(re.search(r"\bdrop", s)) and not re.search(r"\b(rst|reset|cookie|refuse)", s)


LAB = LabSpec(
    number=4,
    slug="synflood",
    module="tuntcp.scenarios.synflood",
    report_scenario="synflood",
    settings=dict(),
    quick=dict(legit=30, flood_s=2.0, legit_window_s=3.0),
    look_at=[
        "report.json: headline.<mode> (success_rate, connect_s, SyncookiesSent, TCPReqQFullDrop, "
        "legit_syn_retransmits)",
        "report.json: runs.<mode>.schedule_s and histogram (connect times bucketed by SYN retransmit)",
        "report.json: runs.<mode>.timeline ([t, syn_queue, accept_queue]) and counters.<mode>",
    ],
    checks={
        "Q1": Check(dropped, "Story: cookies off and a full SYN queue; what do TCPReqQFullDrop and the "
                             "kernel line ('... request.') say?"),
        "Q2": measured_number(lambda r: run_(r, "nocookies")["schedule_s"][2],
                              "runs.nocookies.schedule_s: the client's SYN send times, first one at 0"),
        "Q3": measured_number(lambda r: run_(r, "cookies")["histogram"]["0"],
                              'runs.cookies.histogram["0"]: clients in at their first SYN'),
        "Q4": measured_number(lambda r: mode(r, "nocookies")["connect_s"]["p50"],
                              "headline.nocookies.connect_s.p50 (seconds)", abs_tol=0.25),
        "Q5": measured_number(busiest_retry, "runs.nocookies.histogram: the bucket with the most clients"),
        "Q6": measured_number(lambda r: mode(r, "nocookies")["TCPReqQFullDrop"],
                              "headline.nocookies.TCPReqQFullDrop (counters.nocookies)"),
        "Q7": measured_number(lambda r: mode(r, "cookies")["SyncookiesSent"],
                              "headline.cookies.SyncookiesSent"),
        "Q8": measured_number(lambda r: mode(r, "nocookies")["legit_syn_retransmits"],
                              "headline.nocookies.legit_syn_retransmits (the client namespace's "
                              "TcpExtTCPSynRetrans)"),
        "Q9": fixed_text([r"tcp_metrics", r"\bmetrics\b", r"\bproven\b"],
                         "What can go wrong: the SEED lab pitfall, and the `ip` command that flushes it"),
    },
)
