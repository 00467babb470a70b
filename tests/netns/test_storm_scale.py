"""`tuntcp bench --only storm_scale` at its quick size: every mode runs, with the kernel column,
and the curve lands in results.json/md and the PNG without touching the other rows."""
import json
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.netns


async def test_storm_scale_quick_point(tmp_path, netns_available):
    from tuntcp.scenarios import storm_scale
    cfg = SimpleNamespace(quick=True, rounds=1, out=str(tmp_path / "results.json"))
    res = await storm_scale.run(cfg, lambda msg: None)
    assert res["sizes"] == [100]
    (pt,) = res["points"][100]
    assert pt["failed"] == {}, pt["failed"]
    for m in storm_scale.MODES:
        assert pt[f"{m}_connections"] == 100
        assert pt[f"{m}_verdict"] in ("model-bound", "cpu-bound")
        assert 0 < pt[f"{m}_cpu_share"] < 2
    # 100 producers may or may not overflow the SYN queue (the reconnect backoff spreads them)
    assert pt["buggy_wscale_mismatches"] == pt["buggy_cookie_connections"]
    assert pt["fixed_wscale_mismatches"] == pt["kernel_wscale_mismatches"] == 0
    assert pt["kernel_all_p50_ms"] > 0 and pt["fixed_all_p50_ms"] > 0
    md = storm_scale.markdown(res)
    assert "| 100 |" in md and "did not finish" not in md


def test_storm_scale_merges_into_existing_results(tmp_path):
    """A storm_scale-only run keeps the rows of the full run already in results.json."""
    from tuntcp.bench.cli import _merge_extra, make_config
    from tuntcp.scenarios import storm_scale  # noqa: F401  (registers itself with the bench)
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"meta": {"when": "earlier"}, "rows": {"handshakes_per_s": {}}}))
    cfg = make_config(only="storm_scale", out=str(out))
    pt = {"buggy_cookie_p50_ms": 300.0, "fixed_cookie_p50_ms": 10.0, "kernel_all_p50_ms": 8.0,
          "contrast_p50": 30.0, "buggy_cpu_share": 0.5, "fixed_cpu_share": 0.4,
          "kernel_cpu_share": 0.2, "buggy_verdict": "cpu-bound", "fixed_verdict": "model-bound",
          "kernel_verdict": "model-bound", "failed": {}}
    res = {"meta": {"when": "now", "kernel": "6.18", "cpus": 2, "wall_seconds": 1.0,
                    "loadavg_start_end": [1, 1]},
           "rows": {}, "storm_scale": {"sizes": [500], "rounds": 1, "points": {500: [pt]},
                                       "config": "x"}}
    merged = _merge_extra("storm_scale", res, cfg)
    assert merged["rows"] == {"handshakes_per_s": {}} and merged["meta"]["when"] == "earlier"
    assert merged["storm_scale"]["meta"]["when"] == "now"
    assert (tmp_path / "storm_scale.png").stat().st_size > 10_000
