"""Lab 1: the LINE Kafka window-scale bug (scenario: scenarios/storm.py, keys in docs/storm-report.md)."""
import re

from tuntcp.scenarios.labs import (Check, LabSpec, NotCheckable, commit_prefix, fixed_text, measured_number,
                            measured_yes_no, norm_text)


def cookie_conns(report: dict, mode: str = "buggy") -> list[dict]:
    run = report["runs"].get(mode)
    if run is None:
        raise NotCheckable(f"your report has no {mode!r} run (run both modes: tuntcp lab run 1)")
    conns = [c for c in run["connections"] if c["handshake"] == "cookie"]
    if not conns:
        raise NotCheckable(f"no connection of your {mode} run came through a SYN cookie, so the burst "
                           "did not overflow the backlog; re-run with the lab's settings")
    return conns


def cookie_p50_ratio(report: dict) -> float | None:
    ratio = report.get("comparison", {}).get("cookie_latency_p50_ratio")
    if ratio is not None:
        return ratio
    try:
        b, f = (report["runs"][m]["summary"]["latency_ms_by_handshake"]["cookie"]["p50"] for m in ("buggy", "fixed"))
    except KeyError:
        return None
    return b / f if b and f else None


def slower_10x(report: dict) -> bool | None:
    r = cookie_p50_ratio(report)
    return None if r is None else r >= 10


def kip764(answer, report) -> bool:
    """The broker config (socket.listen.backlog.size) or just "the listen backlog"; not the
    SYN-backlog sysctl (ignored with cookies on) and not switching cookies off."""
    s = norm_text(answer)
    if "socket.listen.backlog.size" in s:
        return True
    return bool(re.search(r"\bbacklog\b", s)) and not re.search(r"tcp_max_syn_backlog|syncookies", s)


def producer_window(report: dict) -> set:
    out = set()
    for c in cookie_conns(report):
        out.add(c["client_snd_wnd"])
        out.add(c["window_field"] << c["client_snd_wscale"])
    return out


CONNS = 'runs.buggy.connections[] with handshake "cookie" in report.json'

LAB = LabSpec(
    number=1,
    slug="storm",
    module="tuntcp.scenarios.storm",
    config_name="StormConfig",
    run_name="run_storm",
    report_scenario="kafka-broker-restart",
    # a 10 ms RTT makes each round of a tiny window cost the link, not the CPU
    settings=dict(clients=200, hosts=10, requests_per_client=4, request_interval_s=0.5, rtt_ms=10,
                  duration_s=120),
    quick=dict(clients=200, hosts=10, requests_per_client=2, request_interval_s=0.5, rtt_ms=10,
               duration_s=60),
    look_at=[
        "report.md: the side-by-side table (cookie_connections, wscale_mismatches, latency_ms cookie p50)",
        'report.json: runs.buggy.connections[] where handshake == "cookie" (client_snd_wscale, '
        "server_rcv_wscale, window_field, client_snd_wnd)",
        "report.json: runs.<mode>.summary.counters and kernel_log",
        "storm-buggy.pcap in the output directory: tshark -r storm-buggy.pcap -Y 'tcp.srcport == 9092' -T fields "
        "-e tcp.options.wscale.shift -e tcp.window_size_value",
    ],
    checks={
        "Q1": measured_number(lambda r: {c["client_snd_wscale"] for c in cookie_conns(r)},
                              f"{CONNS}: client_snd_wscale (what `ss -tin` prints first in wscale:<snd>,<rcv>); "
                              "or the wscale option of the SYN-ACK in storm-buggy.pcap"),
        "Q2": measured_number(lambda r: {c["server_rcv_wscale"] for c in cookie_conns(r)},
                              f"{CONNS}: server_rcv_wscale; the cookie path recomputes it when the ACK returns"),
        "Q3": measured_number(lambda r: {c["window_field"] for c in cookie_conns(r)},
                              f"{CONNS}: window_field (report.md's sample table shows it too)"),
        "Q4": measured_number(producer_window,
                              f"{CONNS}: client_snd_wnd, the window field shifted by the scale the producer applies"),
        "Q5": measured_yes_no(slower_10x,
                              "report.md: latency_ms cookie p50, buggy column vs fixed column "
                              "(comparison.cookie_latency_p50_ratio in report.json)"),
        "Q6": fixed_text([r"\b(tcpext)?syncookiessent\b"],
                         "the nstat names in runs.buggy.summary.counters; the Story section names it"),
        "Q7": measured_number(lambda r: r["runs"]["buggy"]["summary"]["cookie_connections"],
                              "runs.buggy.summary.cookie_connections (report.md: cookie_connections)"),
        "Q8": Check(kip764, "Story: KIP-764 (Kafka 3.2) made one hard-coded number configurable; which "
                            "queue overflowed in the storm?"),
        "Q9": commit_prefix("909172a149749242990a6e64cb55d55460d4e417",
                            "Story: the netdev patch \"net: Update window_clamp if SOCK_RCVBUF is set\" "
                            "(git log --grep on a kernel tree, or the lore.kernel.org link)"),
    },
)
