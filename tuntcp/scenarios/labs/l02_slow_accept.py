"""Lab 2: accept() stalls and the accept queue (scenario: scenarios/slow_accept.py)."""
from tuntcp.scenarios.labs import LabSpec, NotCheckable, fixed_text, fixed_yes_no, measured_number

OFF, ON = "abort_on_overflow=0", "abort_on_overflow=1"


def head(report: dict, setting: str) -> dict:
    h = report["headline"].get(setting)
    if h is None:
        raise NotCheckable(f"your report has no {setting!r} run (run both settings: tuntcp lab run 2)")
    return h


LAB = LabSpec(
    number=2,
    slug="slow-accept",
    module="tuntcp.scenarios.slow_accept",
    report_scenario="slow-accept",
    settings=dict(clients=40, backlog=16, stall_s=2.0, settings=(0, 1)),
    quick=dict(clients=30, backlog=8, stall_s=1.5),
    look_at=[
        "report.json: headline.<setting> (send_q, recv_q_during, recv_q_after, listen_overflows, ok, reset)",
        "report.json: runs.<setting>.ss_lnt_during and ss_lnt_after (the `ss -lnt` view mid-stall and after)",
        "report.json: counters.<setting> (nstat names) and runs.<setting>.clients[] (outcome, error)",
    ],
    checks={
        "Q1": measured_number(lambda r: head(r, OFF)["send_q"],
                              "the Send-Q column of runs.<setting>.ss_lnt_during; config.backlog and "
                              "net.core.somaxconn (ss -lnt shows min of the two)"),
        "Q2": measured_number(lambda r: {head(r, s)["recv_q_during"] for s in (OFF, ON) if s in r["headline"]},
                              "the Recv-Q column of runs.<setting>.ss_lnt_during (headline.<setting>.recv_q_during); "
                              "the accept queue is full only when it is *over* the backlog"),
        "Q3": measured_number(lambda r: head(r, OFF)["recv_q_after"],
                              "runs.<setting>.ss_lnt_after (headline.<setting>.recv_q_after)"),
        "Q4": measured_number(lambda r: head(r, OFF)["listen_overflows"],
                              f"headline[\"{OFF}\"].listen_overflows, i.e. TcpExtListenOverflows in counters"),
        "Q5": measured_number(lambda r: head(r, OFF)["ok"],
                              f"headline[\"{OFF}\"]: ok vs reset/timeout; runs.<setting>.clients[].outcome"),
        "Q6": measured_number(lambda r: head(r, ON)["reset"],
                              f"headline[\"{ON}\"].reset; runs[\"{ON}\"].clients[] with outcome \"reset\""),
        "Q7": fixed_yes_no(False, f"runs[\"{ON}\"].clients[] with outcome \"reset\": is connect_s set? "
                                  "Which side thinks the handshake finished?"),
        "Q8": fixed_text([r"\b(tcpext)?embryonicrsts\b"],
                         f"compare counters[\"{OFF}\"] with counters[\"{ON}\"]: which counter appears only "
                         "with abort_on_overflow=1 and matches the reset clients?"),
    },
)
