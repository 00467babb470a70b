"""Lab 6: TCP_DEFER_ACCEPT, and what SYN cookies do to it (scenario: scenarios/defer_accept.py)."""
from tuntcp.scenarios.labs import LabSpec, NotCheckable, fixed_text, measured_number, measured_text, measured_yes_no

KINDS = ("bare", "data", "late")


def mode(report: dict, name: str) -> dict:
    h = report["headline"].get(name)
    if not isinstance(h, dict):
        raise NotCheckable(f"your report has no {name!r} mode (run both: tuntcp lab run 6)")
    return h


def first_accepted(report: dict) -> str:
    q = mode(report, "queue")
    delays = {k: q[f"{k}_s"] for k in KINDS if q.get(f"{k}_s") is not None}
    if not delays:
        raise NotCheckable("your queue run accepted no client")
    return min(delays, key=delays.get)


def cookie_still_defers(report: dict) -> bool:
    """The bare client of the cookie run waited at least half the defer time."""
    return mode(report, "cookies")["bare_s"] >= 0.5 * report["config"]["defer_s"]


LAB = LabSpec(
    number=6,
    slug="defer-accept",
    module="tuntcp.scenarios.defer_accept",
    report_scenario="defer_accept",
    settings=dict(),
    quick=dict(),
    look_at=[
        "report.json: headline.queue and headline.cookies (bare_s, data_s, late_s, defer_drops, "
        "synacks_to_bare), headline.defer_rounds",
        "report.json: modes.<mode>.clients[] (synack_times_s, bytes_at_accept, client_state)",
        "the pcaps: tshark -r FILE -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 1' -T fields "
        "-e frame.time_relative -e tcp.dstport",
    ],
    checks={
        "Q1": measured_number(lambda r: r["headline"]["defer_rounds"],
                              "headline.defer_rounds; the kernel turns seconds into SYN-ACK retransmission "
                              "rounds (secs_to_retrans: 1 s, then doubling)"),
        "Q2": measured_text(first_accepted, "headline.queue: the smallest of bare_s, data_s, late_s"),
        "Q3": measured_number(lambda r: mode(r, "queue")["bare_s"], "headline.queue.bare_s (seconds)",
                              abs_tol=0.25),
        "Q4": measured_number(lambda r: mode(r, "queue")["late_s"], "headline.queue.late_s (seconds); "
                              "compare with config.late_s", abs_tol=0.25),
        "Q5": measured_number(lambda r: mode(r, "queue")["defer_drops"],
                              "headline.queue.defer_drops (and the matching counter in counters.queue)"),
        "Q6": measured_number(lambda r: mode(r, "cookies")["bare_s"], "headline.cookies.bare_s (seconds)",
                              abs_tol=0.25),
        "Q7": measured_yes_no(cookie_still_defers, "headline.cookies.bare_s against config.defer_s; "
                              "cookie_v4_check has no defer logic of its own"),
        "Q8": fixed_text([r"\b(tcpext)?tcpdeferacceptdrop\b"],
                         "counters.queue: which counter is non-zero in queue mode and zero with cookies?"),
        "Q9": fixed_text([r"accept[ _-]?filter", r"\baccf_(data|http|dns)\b", r"\b(data|http)ready\b",
                          r"so_acceptfilter"],
                         "Story: what nginx's accept_filter= parameter uses on FreeBSD (seed 003)"),
    },
)
