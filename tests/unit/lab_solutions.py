"""Instructor keys for scenarios/labs (kept out of the lab folder on purpose).

For each lab: ``right(report)`` derives the correct answers from a run's report (measured
questions) plus the fixed concept answers, and ``wrong(report)`` gives, per question, a
plausible mistake (the classic confusion where there is one) that must fail.
"""


def _cookie(report, mode="buggy"):
    return [c for c in report["runs"][mode]["connections"] if c["handshake"] == "cookie"]


def storm_right(report):
    c = _cookie(report)[0]
    comp = report["comparison"]
    return {
        "Q1": c["client_snd_wscale"],
        "Q2": c["server_rcv_wscale"],
        "Q3": c["window_field"],
        "Q4": f'{c["client_snd_wnd"]} bytes',
        "Q5": "yes" if comp["cookie_latency_p50_ratio"] >= 10 else "no",
        "Q6": "TcpExtSyncookiesSent",
        "Q7": report["runs"]["buggy"]["summary"]["cookie_connections"],
        "Q8": "socket.listen.backlog.size",
        "Q9": "909172a14974",
    }


def storm_wrong(report):
    c = _cookie(report)[0]
    comp = report["comparison"]
    return {
        "Q1": c["server_rcv_wscale"],          # the broker's scale, not the producer's
        "Q2": c["client_snd_wscale"],
        "Q3": c["window_field"] << c["server_rcv_wscale"],   # the real window, not the field
        "Q4": c["window_field"],               # forgot to shift
        "Q5": "no" if comp["cookie_latency_p50_ratio"] >= 10 else "yes",
        "Q6": "TcpExtListenOverflows",
        "Q7": report["runs"]["buggy"]["summary"]["cookie_connections"] + 1,
        "Q8": "net.ipv4.tcp_max_syn_backlog",  # ignored while cookies are on
        "Q9": "e88c64f0a425",                  # the commit it Fixes:, not the fix
    }


SOLUTIONS = {1: (storm_right, storm_wrong)}
