"""One packetdrill script against two modelled kernels (lab 9): the broker of the Kafka incident
(SO_RCVBUF 102400, forced SYN cookies) expects the fixed window after data, and ``tuntcp drill``
says where each profile's first mismatch is. Virtual time: no namespace, no TUN.

report.json: ``scenario`` "drill-cookie-wscale", ``config`` (script, profiles, defines) and
``runs.<profile>``: ``verdict`` (MATCH / DIVERGENCE / ...), ``message`` (packetdrill's words),
``window_field`` (the window the model sent on the script's line: the expected one on a MATCH,
the actual one on a window mismatch)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuntcp.drill.headers import defines_for
from tuntcp.drill.result import run_file
from tuntcp.profiles import get_profile

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "drill" / "cookie-rcvbuf-wscale.pkt"
_FIELD = re.compile(r"field tcp_window: expected: (\d+) vs actual: (\d+)")


@dataclass
class Config:
    out: str = "out/lab-09"
    script: str = str(SCRIPT)
    profiles: tuple = ("linux-5.4", "linux-6.18")
    defines: dict = field(default_factory=lambda: {"DATA_WIN": "50600"})   # the fixed window

    def check(self) -> None:
        for p in self.profiles:
            get_profile(p)
        if not os.path.isfile(self.script):
            raise ValueError(f"no script {self.script}")


def run_profile(cfg: Config, profile: str) -> dict:
    r = run_file(cfg.script, profile, defines={**defines_for(cfg.script, profile), **cfg.defines})
    m = _FIELD.search(r.message)
    field_ = int(m.group(2)) if m else int(cfg.defines["DATA_WIN"]) if r.verdict == "MATCH" else None
    return {"verdict": r.verdict, "message": r.message, "window_field": field_}


async def run(cfg: Config) -> dict:
    report = {"scenario": "drill-cookie-wscale", "config": asdict(cfg),
              "runs": {p: run_profile(cfg, p) for p in cfg.profiles}}
    os.makedirs(cfg.out, exist_ok=True)
    with open(os.path.join(cfg.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report
