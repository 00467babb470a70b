"""The storm's report (helper scale's scenario) through the shared report writer: it carries the
stamp every report gets and matches its schema (schemas/kafka-broker-restart.json)."""
import pytest

from tuntcp.harness.netns import probe
from tuntcp.scenarios.schema import assert_matches_schema

pytestmark = pytest.mark.netns


async def test_storm_report_matches_its_schema(tmp_path):
    if probe():
        pytest.skip(probe())
    from tuntcp.scenarios.storm import StormConfig, run_storm
    cfg = StormConfig(clients=60, hosts=6, requests_per_client=1, request_interval_s=0.5, rtt_ms=10,
                      out=str(tmp_path), duration_s=60, pcap=False, modes=("buggy", "kernel"),
                      control_name="schema-test")
    report = await run_storm(cfg)
    assert_matches_schema(report, tmp_path)
    assert report["clients_congestion_control"] and report["profile"] == cfg.profile
