"""`tuntcp lab run 1 --quick` against real kernel producers: the report it leaves is one the
key (derived from that report) passes and each wrong answer fails, through `tuntcp lab check`."""
import importlib.util
import json
from pathlib import Path

import pytest

from tuntcp.cli import main as tuntcp

pytestmark = pytest.mark.netns

_spec = importlib.util.spec_from_file_location(
    "lab_solutions", Path(__file__).resolve().parents[1] / "unit" / "lab_solutions.py")
solutions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(solutions)


def test_lab1_quick_run_then_check(tmp_path, capsys, netns_available):
    out = tmp_path / "lab-01"
    assert tuntcp(["lab", "run", "1", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.json'}" in printed and "tuntcp lab check 1" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["requests_per_client"] == 2     # the --quick settings were used
    # the run shows the bug the questions are about
    cookies = [c for c in report["runs"]["buggy"]["connections"] if c["handshake"] == "cookie"]
    assert cookies and all(c["client_snd_wscale"] != c["server_rcv_wscale"] for c in cookies)

    right, wrong = solutions.storm_right(report), solutions.storm_wrong(report)
    good = tmp_path / "answers.toml"
    good.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in right.items()))
    assert tuntcp(["lab", "check", "1", "--answers", str(good), "--report", str(out)]) == 0
    assert "9/9 passed" in capsys.readouterr().out
    for qid, bad_answer in wrong.items():
        f = tmp_path / f"wrong-{qid}.json"
        f.write_text(json.dumps({**right, qid: bad_answer}))
        assert tuntcp(["lab", "check", "1", "--answers", str(f), "--report", str(out)]) == 1, qid
        lines = capsys.readouterr().out.splitlines()
        assert [ln.split()[0] for ln in lines if "FAIL" in ln] == [qid]


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8])
def test_every_other_lab_quick_run_then_check(n, tmp_path, capsys, netns_available):
    """The same round trip for labs 2-8 (about 60 s in all): the lab's --quick settings run, and
    the key derived from that run's report passes while each wrong answer fails on its own."""
    out = tmp_path / f"lab-{n:02d}"
    assert tuntcp(["lab", "run", str(n), "--quick", "--out", str(out)]) == 0
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    right, wrong = solutions.SOLUTIONS[n]
    good = tmp_path / "answers.json"
    good.write_text(json.dumps(right(report)))
    assert tuntcp(["lab", "check", str(n), "--answers", str(good), "--report", str(out)]) == 0, \
        capsys.readouterr().out
    capsys.readouterr()
    for qid, bad_answer in wrong(report).items():
        f = tmp_path / f"wrong-{qid}.json"
        f.write_text(json.dumps({**right(report), qid: bad_answer}))
        assert tuntcp(["lab", "check", str(n), "--answers", str(f), "--report", str(out)]) == 1, qid
        lines = capsys.readouterr().out.splitlines()
        assert [ln.split()[0] for ln in lines if "FAIL" in ln] == [qid]
