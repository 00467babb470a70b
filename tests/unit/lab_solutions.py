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
            "Q9": "the accept queue",
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
            "Q9": "the SYN queue",
            "Q10": "net.ipv4.tcp_syncookies=0"}


SOLUTIONS.update({2: (slow_accept_right, slow_accept_wrong), 3: (fluentd_right, fluentd_wrong)})


# ---- lab 5: ts_off ----------------------------------------------------------------------------------

def ts_off_right(report):
    h = report["headline"]
    return {"Q1": "no", "Q2": 65535, "Q3": f'{h["bound_mb_s"]} MB/s', "Q4": h["cookie"]["mb_s_median"],
            "Q5": h["queue"]["mb_s_median"], "Q6": "yes" if h["queue"]["wscale"] else "no",
            "Q7": "yes" if h["cookie"]["sack"] else "no", "Q8": h["cookie"]["max_window_bytes"],
            "Q9": "net.ipv4.tcp_timestamps"}


def ts_off_wrong(report):
    h = report["headline"]
    return {"Q1": "yes", "Q2": 65535 << 7,
            "Q3": round(h["bound_mb_s"] * 8, 3),          # megabits, not megabytes
            "Q4": h["queue"]["mb_s_median"], "Q5": h["cookie"]["mb_s_median"],
            "Q6": "no" if h["queue"]["wscale"] else "yes", "Q7": "no" if h["cookie"]["sack"] else "yes",
            "Q8": h["queue"]["max_window_bytes"], "Q9": "net.ipv4.tcp_window_scaling"}


# ---- lab 6: defer_accept ----------------------------------------------------------------------------

def defer_accept_right(report):
    q, c = report["headline"]["queue"], report["headline"]["cookies"]
    first = min(("bare", "data", "late"), key=lambda k: q[f"{k}_s"])
    return {"Q1": report["headline"]["defer_rounds"], "Q2": first, "Q3": f'{q["bare_s"]} s',
            "Q4": q["late_s"], "Q5": q["defer_drops"], "Q6": c["bare_s"],
            "Q7": "yes" if c["bare_s"] >= 0.5 * report["config"]["defer_s"] else "no",
            "Q8": "TcpExtTCPDeferAcceptDrop", "Q9": "accept filters (accf_data)"}


def defer_accept_wrong(report):
    q, c = report["headline"]["queue"], report["headline"]["cookies"]
    return {"Q1": report["config"]["defer_s"],      # seconds, not rounds
            "Q2": "bare", "Q3": q["bare_s"] + 2, "Q4": q["data_s"],
            "Q5": q["defer_drops"] + 2, "Q6": q["bare_s"],   # as if cookies deferred too
            "Q7": "no" if c["bare_s"] >= 0.5 * report["config"]["defer_s"] else "yes",
            "Q8": "TcpExtSyncookiesRecv", "Q9": "SO_REUSEPORT"}


# ---- lab 8: reverse_check ---------------------------------------------------------------------------

def reverse_check_right(report):
    h = report["headline"]
    return {"Q1": "yes", "Q2": "net.ipv4.tcp_syncookies=2", "Q3": h["synack_wscale"],
            "Q4": h["kernel_rcv_wscale_ss"], "Q5": h["max_window_field"], "Q6": h["window_as_client_reads"],
            "Q7": "yes" if h["verdict"] == "fixed" else "no", "Q8": h["kernel"], "Q9": "SO_RCVBUF"}


def reverse_check_wrong(report):
    h = report["headline"]
    return {"Q1": "no", "Q2": "1", "Q3": h["synack_wscale"] + 6,
            "Q4": 7 if h["kernel_rcv_wscale_ss"] != 7 else 1,    # the client's (snd) scale from ss
            "Q5": h["max_window_field"] + 1,
            "Q6": h["max_window_field"],                           # forgot to shift
            "Q7": "no" if h["verdict"] == "fixed" else "yes", "Q8": "5.4.0", "Q9": "SO_SNDBUF"}


SOLUTIONS.update({5: (ts_off_right, ts_off_wrong), 6: (defer_accept_right, defer_accept_wrong),
                  8: (reverse_check_right, reverse_check_wrong)})


# ---- lab 4: synflood --------------------------------------------------------------------------------

def _busiest(hist):
    h = {k: v for k, v in hist.items() if k not in ("other", "failed")}
    return max(h, key=h.get)


def synflood_right(report):
    h, runs = report["headline"], report["runs"]
    return {"Q1": "it drops it", "Q2": f'{runs["nocookies"]["schedule_s"][2]} s',
            "Q3": runs["cookies"]["histogram"]["0"], "Q4": h["nocookies"]["connect_s"]["p50"],
            "Q5": _busiest(runs["nocookies"]["histogram"]), "Q6": h["nocookies"]["TCPReqQFullDrop"],
            "Q7": h["cookies"]["SyncookiesSent"], "Q8": h["nocookies"]["legit_syn_retransmits"],
            "Q9": "tcp_metrics (proven peers)"}


def synflood_wrong(report):
    h, runs = report["headline"], report["runs"]
    return {"Q1": "it sends a SYN cookie anyway",
            "Q2": 2,                                    # the count, not the time
            "Q3": runs["cookies"]["histogram"]["0"] + 1,
            "Q4": h["cookies"]["connect_s"]["p50"],     # the cookies run
            "Q5": 0 if _busiest(runs["nocookies"]["histogram"]) != "0" else 7,
            "Q6": h["nocookies"]["TCPReqQFullDrop"] + 1,
            "Q7": h["cookies"]["SyncookiesSent"] - 1,
            "Q8": h["nocookies"]["legit_syn_retransmits"] + 1,
            "Q9": "the accept queue"}


# ---- lab 7: freebsd_queue ---------------------------------------------------------------------------

def _netstat_7000(text):
    import re
    return re.search(r"(\d+/\d+/\d+)\s+\S*\.7000\b", text).group(1)


def freebsd_queue_right(report):
    b9, b14 = report["headline"]["freebsd-9"], report["headline"]["freebsd-14"]
    return {"Q1": b9["queue_limit"], "Q2": "a reset (RST)", "Q3": b9["reset"],
            "Q4": _netstat_7000(b9["netstat_full"]), "Q5": b9["lifetime"]["synack_times_s"][1],
            "Q6": f'{b14["lifetime"]["lifetime_s"]} s',
            "Q7": b9["filters"]["httpready"]["http_split"]["accept_delay_s"],
            "Q8": "yes" if b9["filters"]["dataready"]["http_split"]["whole_request"] else "no",
            "Q9": "GET and HEAD"}


def freebsd_queue_wrong(report):
    b9, b14 = report["headline"]["freebsd-9"], report["headline"]["freebsd-14"]
    q = b9["queue_limit"]
    return {"Q1": b9["backlog"] + 1,                  # the Linux answer
            "Q2": "silently dropped",
            "Q3": b9["reset"] + 1,
            "Q4": f'{b9["backlog"]}/0/{b9["backlog"]}',
            "Q5": b14["lifetime"]["synack_times_s"][1],   # freebsd-14's 1 s base
            "Q6": b9["lifetime"]["lifetime_s"],
            "Q7": b9["filters"]["httpready"]["http_split"]["accept_delay_s"] + 0.5,
            "Q8": "no" if b9["filters"]["dataready"]["http_split"]["whole_request"] else "yes",
            "Q9": f"POST ({q})"}


SOLUTIONS.update({4: (synflood_right, synflood_wrong), 7: (freebsd_queue_right, freebsd_queue_wrong)})


# ---- lab 9: drill (one script, two kernels) -----------------------------------------------------------

def drill_right(report):
    r = report["runs"]
    return {"Q1": "linux-5.4", "Q2": 7, "Q3": r["linux-6.18"]["verdict"],
            "Q4": r["linux-5.4"]["window_field"], "Q5": r["linux-5.4"]["window_field"] << 1, "Q6": "no"}


def drill_wrong(report):
    r = report["runs"]
    return {"Q1": "linux-6.18", "Q2": 1, "Q3": "DIVERGENCE" if r["linux-6.18"]["verdict"] == "MATCH" else "MATCH",
            "Q4": 50600, "Q5": r["linux-5.4"]["window_field"] << 7, "Q6": "yes"}


SOLUTIONS.update({9: (drill_right, drill_wrong)})
