"""Lab 9: one packetdrill script, two kernels (scenario: scenarios/drill_lab.py)."""
from tuntcp.scenarios.labs import LabSpec, fixed_number, fixed_text, fixed_yes_no, measured_number, measured_text

LAB = LabSpec(
    number=9,
    slug="drill",
    module="tuntcp.scenarios.drill_lab",
    report_scenario="drill-cookie-wscale",
    needs_privileges=False,
    look_at=["report.json: runs.<profile>.verdict, runs.<profile>.message (packetdrill's words), "
             "runs.<profile>.window_field"],
    checks={
        "Q1": fixed_text([r"\b5\.4\b"], "Story: which release lacks 909172a14974?", reject=[r"6\.18"]),
        "Q2": fixed_number(7, "lab 1, or the broker's tcp_rmem[2] / rmem_max: the shift a clamp-free "
                              "tcp_select_initial_window picks"),
        "Q3": measured_text(lambda r: r["runs"]["linux-6.18"]["verdict"], "runs.linux-6.18.verdict"),
        "Q4": measured_number(lambda r: r["runs"]["linux-5.4"]["window_field"],
                              "runs.linux-5.4.window_field (the 'actual' in its message)"),
        "Q5": measured_number(lambda r: r["runs"]["linux-5.4"]["window_field"] << 1,
                              "the field shifted by the SYN-ACK's scale"),
        "Q6": fixed_yes_no(False, "Story / Expected: packetdrill's exit status on a mismatch"),
    },
)
