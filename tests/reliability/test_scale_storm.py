"""The storm's reliability invariant at a small size (``tuntcp bench --only storm_reliability``
runs it at 10,000 producers): with 2 % loss each way and offload on, every produce request of
every producer is answered, the broker sent at least that many responses, and nothing of the
run is left on the host."""
import os

import pytest
import trio

from tuntcp.scenarios.storm import run_mode
from tuntcp.scenarios.storm_reliability import account, config, descendants, leftovers

pytestmark = [pytest.mark.netns, pytest.mark.reliability]


@pytest.mark.parametrize("mode", ["buggy", "fixed"])
def test_300_producers_with_2pct_loss_lose_no_request(netns_available, tmp_path, mode):
    cfg = config(300, tmp_path, control_name=f"rel-{os.getpid()}", duration_s=240.0)
    before = set(descendants(os.getpid()))
    res = trio.run(run_mode, cfg, mode, tmp_path)
    acc = account(cfg, res)
    assert acc["ok"], acc["problems"]
    assert acc["requests_answered"] == 600 and acc["broker_replies"] >= 600
    assert res["offload"]["on"]
    # the loss really happened: the broker retransmitted, and the buggy run has its mismatches
    assert res["summary"]["counters"]["TcpRetransSegs"] > 0
    if mode == "buggy" and res["summary"]["cookie_connections"]:
        assert res["summary"]["wscale_mismatches"] == res["summary"]["cookie_connections"]
    assert not any(leftovers(os.getpid(), before).values())


def test_accounting_names_what_is_missing(tmp_path):
    cfg = config(10, tmp_path)
    run = {"summary": {"producers_recorded": 9, "requests_answered": 17, "broker_replies": 16,
                       "producer_resets": 1, "producer_errors": {"ConnectionResetError": 1},
                       "connections_made": 9}}
    acc = account(cfg, run)
    assert not acc["ok"] and acc["problems"] == [
        "1 producers did not report", "3 of 20 requests unanswered",
        "producers counted 17 answers but the broker sent 16"]
