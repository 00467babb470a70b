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


# ---- lab 2: slow_accept -----------------------------------------------------------------------------

def slow_accept_right(report):
    off, on = report["headline"]["abort_on_overflow=0"], report["headline"]["abort_on_overflow=1"]
    return {"Q1": off["send_q"], "Q2": off["recv_q_during"], "Q3": off["recv_q_after"],
            "Q4": off["listen_overflows"], "Q5": off["ok"], "Q6": on["reset"], "Q7": "no",
            "Q8": "TcpExtEmbryonicRsts"}


def slow_accept_wrong(report):
    off, on = report["headline"]["abort_on_overflow=0"], report["headline"]["abort_on_overflow=1"]
    return {"Q1": 4096,                           # somaxconn, not min(backlog, somaxconn)
            "Q2": off["send_q"] + 2,
            "Q3": off["recv_q_during"],           # the queue drains; only counters remember
            "Q4": off["listen_overflows"] + 1,
            "Q5": off["ok"] - 1,
            "Q6": on["reset"] + 1,
            "Q7": "yes",                          # connect() returned: the client sent its ACK
            "Q8": "TcpExtListenDrops"}


# ---- lab 3: fluentd ---------------------------------------------------------------------------------

def _fluentd(report):
    h, cfg = report["headline"], report["config"]
    b, big = cfg["small_backlog"], cfg["fixed"]
    return h[f"backlog={b} cookies=1"], h[f"backlog={b} cookies=0"], h[f"backlog={big} cookies=1"]


def fluentd_right(report):
    small, off, big = _fluentd(report)
    return {"Q1": small["syn_queue_max"], "Q2": "5EA0", "Q3": "03", "Q4": small["max_syn_recv"],
            "Q5": small["SyncookiesSent"], "Q6": off["TCPReqQFullDrop"],
            "Q7": "yes" if big["flood_line_printed"] else "no", "Q8": f'{off["connect_ms"]["p99"]} ms',
            "Q9": "TcpExtTCPReqQFullDrop",
            "Q10": "in_forward backlog, net.core.somaxconn and net.ipv4.tcp_max_syn_backlog to 65535"}


def fluentd_wrong(report):
    small, off, big = _fluentd(report)
    return {"Q1": 1024,                           # tcp_max_syn_backlog does not size it
            "Q2": "24224",
            "Q3": "0A",                           # LISTEN
            "Q4": small["max_syn_recv"] + 1,
            "Q5": small["SyncookiesSent"] + 1,
            "Q6": off["TCPReqQFullDrop"] + 1,
            "Q7": "no" if big["flood_line_printed"] else "yes",
            "Q8": f'{small["connect_ms"]["p99"]} ms',   # the cookies=1 run
            "Q9": "TcpExtListenDrops",
            "Q10": "net.ipv4.tcp_syncookies=0"}


SOLUTIONS.update({2: (slow_accept_right, slow_accept_wrong), 3: (fluentd_right, fluentd_wrong)})
