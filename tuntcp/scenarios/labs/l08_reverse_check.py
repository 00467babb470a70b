"""Lab 8: is THIS kernel fixed? (scenario: scenarios/reverse_check.py)."""
import re

from tuntcp.scenarios.labs import (Check, LabSpec, fixed_text, fixed_yes_no, measured_number, measured_text,
                            measured_yes_no, norm_text)


def forced_cookies(answer, report) -> bool:
    """net.ipv4.tcp_syncookies=2, or just the value 2."""
    s = norm_text(answer).replace(" ", "")
    return bool(re.fullmatch(r"((net\.ipv4\.)?tcp_syncookies=)?2", s))


LAB = LabSpec(
    number=8,
    slug="reverse-check",
    module="tuntcp.scenarios.reverse_check",
    report_scenario="reverse_check",
    settings=dict(),
    quick=dict(nbytes=100_000),
    look_at=[
        "report.json: headline (verdict, kernel, synack_wscale, kernel_rcv_wscale_ss, max_window_field, "
        "window_as_client_reads, window_as_kernel_means)",
        "report.json: evidence.synack (the SYN-ACK's options from the pcap) and evidence.ss_lines "
        "(the child's `ss -tin`: wscale:<snd>,<rcv>)",
        "report.json: counters.kernel (SyncookiesSent/Recv in the namespace)",
    ],
    checks={
        "Q1": fixed_yes_no(True, "Story: what did the fix change in cookie_v4_check, and what must the "
                                 "SYN-ACK and the child agree on?"),
        "Q2": Check(forced_cookies, "Story: the value LINE and Eric Dumazet's packetdrill script used to "
                                    "make every handshake a cookie (the kernel's ip-sysctl documentation)"),
        "Q3": measured_number(lambda r: r["headline"]["synack_wscale"],
                              "headline.synack_wscale (evidence.synack.wscale, read from the pcap)"),
        "Q4": measured_number(lambda r: r["headline"]["kernel_rcv_wscale_ss"],
                              "headline.kernel_rcv_wscale_ss; in evidence.ss_lines, wscale:<snd>,<rcv> - "
                              "which of the two numbers is the child's receive shift?"),
        "Q5": measured_number(lambda r: r["headline"]["max_window_field"], "headline.max_window_field"),
        "Q6": measured_number(lambda r: r["headline"]["window_as_client_reads"],
                              "headline.window_as_client_reads: the field shifted by the SYN-ACK's scale"),
        "Q7": measured_yes_no(lambda r: {"fixed": True, "buggy": False}.get(r["headline"]["verdict"]),
                              "headline.verdict, and whether Q3 and Q4 agree"),
        "Q8": measured_text(lambda r: r["headline"]["kernel"], "headline.kernel (uname -r)"),
        "Q9": fixed_text([r"\bso_rcvbuf\b"], "Story: the socket option Kafka's Acceptor sets on the "
                                              "listening socket (socket.receive.buffer.bytes)"),
    },
)
