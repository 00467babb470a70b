"""Lab 5: SYN cookies without TCP timestamps (scenario: scenarios/ts_off.py)."""
from tuntcp.scenarios.labs import (LabSpec, NotCheckable, fixed_number, fixed_text, fixed_yes_no, measured_number,
                            measured_yes_no)


def path(report: dict, name: str) -> dict:
    h = report["headline"].get(name)
    if not isinstance(h, dict):
        raise NotCheckable(f"your report has no {name!r} path (run both: tuntcp lab run 5)")
    return h


LAB = LabSpec(
    number=5,
    slug="ts-off",
    module="tuntcp.scenarios.ts_off",
    report_scenario="ts_off",
    settings=dict(),
    quick=dict(clients=2, nbytes=1_000_000),
    look_at=[
        "report.json: headline (bound_mb_s, rtt_ms; cookie|queue: wscale, sack, mb_s_median, "
        "max_window_bytes)",
        "report.json: paths.<path>.connections[] (client and endpoint TCP_INFO: ts, sack, wscale_ok, snd_wnd)",
        "the pcap: tshark -r FILE -Y 'tcp.flags.syn == 1' -T fields -e tcp.options.wscale.shift "
        "-e tcp.options.sack_perm -e tcp.options.timestamp.tsval",
    ],
    checks={
        "Q1": fixed_yes_no(False, "Story: where does a Linux cookie keep the client's options? "
                                  "(reference: cookie_init_timestamp)"),
        "Q2": fixed_number(65535, "the TCP header's window field has 16 bits; what is left without a "
                                  "scale?", abs_tol=1),
        "Q3": measured_number(lambda r: r["headline"]["bound_mb_s"],
                              "one window per round trip: bytes / config.rtt_ms, in MB/s (10^6 bytes); "
                              "headline.bound_mb_s", rel=0.05),
        "Q4": measured_number(lambda r: path(r, "cookie")["mb_s_median"],
                              "headline.cookie.mb_s_median", rel=0.05),
        "Q5": measured_number(lambda r: path(r, "queue")["mb_s_median"],
                              "headline.queue.mb_s_median", rel=0.05),
        "Q6": measured_yes_no(lambda r: path(r, "queue")["wscale"],
                              "headline.queue.wscale; paths.queue.connections[].client.wscale_ok"),
        "Q7": measured_yes_no(lambda r: path(r, "cookie")["sack"],
                              "headline.cookie.sack; paths.cookie.connections[].client.sack"),
        "Q8": measured_number(lambda r: path(r, "cookie")["max_window_bytes"],
                              "headline.cookie.max_window_bytes (paths.cookie.connections[].max_window_bytes)"),
        "Q9": fixed_text([r"\b(net\.ipv4\.)?tcp_timestamps\b"],
                         "Story: the setting Cloudflare keeps at 0 (a sysctl under net.ipv4)"),
    },
)
