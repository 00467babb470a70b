"""Report schemas: each shipped schema loads and uses only what the validator checks; the
validator finds what it should; every report gets the stamp (schema and tool version, host
kernel, the clients' congestion control, profile). Real reports are validated in the netns
tests of each scenario (tests/netns/test_scen_*.py)."""
import copy
import os
import re
from pathlib import Path

import pytest

from tuntcp.scenarios import report as rep
from tuntcp.scenarios.schema import SchemaError, _check, kinds, load, validate

ROOT = Path(__file__).resolve().parents[2]


def slow_accept_report() -> dict:
    h = {"recv_q_during": 9, "recv_q_after": 0, "send_q": 8, "listen_overflows": 3, "ok": 2,
         "reset": 0, "timeout": 0, "other": 0}
    pct = {"p50": 0.1, "p99": 0.2, "max": 0.2, "n": 2}
    run = {"ss_lnt_during": "State ...", "ss_lnt_after": "State ...", "max_accept_queue": 9,
           "clients": [{"client": "10.0.0.2:4000", "start_s": 0.1, "connect_s": 0.1, "outcome": "ok",
                        "error": None, "done_s": 0.3}],
           "connect_s": pct, "done_s": pct, "kernel_client_counters": {"TcpActiveOpens": 2}}
    r = {"scenario": "slow-accept", "config": {"profile": "linux-6.1"},
         "headline": {"abort_on_overflow=0": h}, "counters": {"abort_on_overflow=0": {"TcpExtListenOverflows": 3}},
         "runs": {"abort_on_overflow=0": run}, "artifacts": {"markdown": "out/report.md"}}
    return rep.stamp(r)


def test_every_report_kind_has_a_schema_the_validator_fully_understands():
    want = {"slow-accept", "fluentd-heartbeats", "synflood", "ts_off", "freebsd_queue",
            "defer_accept", "reverse_check", "kafka-broker-restart"}
    assert set(kinds()) == want
    for k in kinds():
        assert load(k)["properties"]["scenario"]["enum"] == [k]
        _check({}, load(k), f"{k}.json", "$", [])          # raises SchemaError on any unknown keyword


def test_a_scenario_module_names_each_kind():
    src = "".join(p.read_text() for p in (ROOT / "tuntcp" / "scenarios").glob("*.py"))
    for k in kinds():
        assert re.search(rf'"scenario": "{re.escape(k)}"', src), k


def test_validator_passes_a_good_report_and_names_each_fault():
    good = slow_accept_report()
    assert validate(good) == []
    bad = copy.deepcopy(good)
    del bad["host_kernel"]
    bad["headline"]["abort_on_overflow=0"]["send_q"] = "8"
    bad["runs"]["abort_on_overflow=0"]["clients"][0]["outcome"] = "maybe"
    bad["counters"]["abort_on_overflow=0"]["TcpExtListenOverflows"] = 1.5
    bad["schema_version"] = 2
    errors = validate(bad)
    assert "$: missing 'host_kernel'" in errors
    assert any(e.startswith("$.headline.abort_on_overflow=0.send_q: str") for e in errors)
    assert any(e.startswith("$.runs.abort_on_overflow=0.clients[0].outcome: 'maybe' not one of") for e in errors)
    assert any(e.startswith("$.counters.abort_on_overflow=0.TcpExtListenOverflows: float") for e in errors)
    assert any(e.startswith("$.schema_version: 2 not one of") for e in errors)
    assert len(errors) == 5
    assert validate({"scenario": "nope"})[0].startswith("no schema for report kind 'nope'")
    empty = copy.deepcopy(good)
    empty["headline"] = {}
    assert validate(empty) == ["$.headline: fewer than 1 keys"]


def test_unknown_schema_keyword_is_refused():
    with pytest.raises(SchemaError):
        _check(1, {"maximum": 3}, "x.json", "$", [])


def test_stamp_records_versions_kernel_client_cc_and_profile(monkeypatch):
    monkeypatch.setattr(rep, "_client_cc", ["bbr"])
    r = rep.stamp({"scenario": "x", "config": {"profile": "linux-5.4"}})
    assert r["schema_version"] == rep.SCHEMA_VERSION == 1
    assert r["tool_version"] == rep.tool_version() and r["tool_version"] != ""
    assert r["host_kernel"] == os.uname().release
    assert r["clients_congestion_control"] == "bbr"
    assert "inherit" in r["clients_congestion_control_note"]
    assert r["profile"] == "linux-5.4"
    assert rep.stamp({"config": {"profiles": ["freebsd-9", "freebsd-14"]}})["profile"] == ["freebsd-9", "freebsd-14"]


def test_write_report_stamps_every_report(tmp_path, monkeypatch):
    import json
    monkeypatch.setattr(rep, "_client_cc", ["cubic"])
    r = slow_accept_report()
    for k in ("schema_version", "tool_version", "host_kernel"):
        del r[k]
    rep.write_report(r, tmp_path, lambda r: "# x\n")
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["clients_congestion_control"] == "cubic" and validate(on_disk) == []


def test_schemas_ship_with_the_package_and_scapy_is_not_a_runtime_dependency():
    import tomllib
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "schemas/*.json" in py["tool"]["setuptools"]["package-data"]["tuntcp.scenarios"]
    deps = py["project"]["dependencies"]
    assert not any(d.startswith("scapy") for d in deps)
    extras = py["project"]["optional-dependencies"]
    assert any(d.startswith("scapy") for d in extras["test"]) and any(d.startswith("scapy") for d in extras["tools"])
    runtime = [p for p in (ROOT / "tuntcp").rglob("*.py")
               if re.search(r"^\s*(import scapy|from scapy)", p.read_text(), re.M)]
    assert runtime == []


class _Counters:
    def snapshot(self):
        return {"TcpInSegs": 1}

    def delta(self, before):
        return {"TcpInSegs": 4}


class _Fake:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("has_saturation", [True, False])
def test_rig_reports_the_endpoints_saturation_when_it_has_one(has_saturation, monkeypatch):
    """Contract with helper scale: ``endpoint.saturation.report() -> dict`` lands in the report
    as ``saturation``; an endpoint without the attribute leaves the key out."""
    from tuntcp.scenarios.rig import Rig, collect, file_saturation
    monkeypatch.setattr(rep, "_client_cc", [])
    ep = _Fake(saturation=_Fake(report=lambda: {"busy_fraction": 0.5})) if has_saturation else _Fake()
    lab = _Fake(sysctl=lambda name: "bbr\n")
    rig = Rig(lab, _Fake(counters=_Counters()), ep, kernel=False)
    rig.finish()
    assert rig.counters == {"TcpInSegs": 4} and rig.client_cc == "bbr" and rep.client_cc() == "bbr"
    report: dict = {}
    collect(report, "m", {"headline": {}, "counters": rig.counters, "run": {},
                          "saturation": rig.saturation})
    other: dict = {}
    file_saturation(other, {"a": {"saturation": rig.saturation}})
    if has_saturation:
        assert report["saturation"] == {"m": {"busy_fraction": 0.5}}
        assert other["saturation"] == {"a": {"busy_fraction": 0.5}}
    else:
        assert "saturation" not in report and "saturation" not in other
