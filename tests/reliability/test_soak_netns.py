"""A short soak (CI: ~20 s; by hand `tuntcp soak --minutes 10`): reconnecting echo clients,
bulk transfers checked by sha256 and SYN flood bursts at once; resident memory and the
connection table must stay flat (last third vs middle third) and nothing may fail."""
import os

import pytest

from tuntcp.scenarios.soak_load import SoakConfig, flat, run_soak, summary, thirds

pytestmark = [pytest.mark.netns, pytest.mark.reliability]

SECONDS = float(os.environ.get("TUNTCP_SOAK_SECONDS", "20"))


def test_flat_compares_last_third_with_middle_third():
    assert thirds(list(range(9))) == ([0, 1, 2], [3, 4, 5], [6, 7, 8])
    assert flat([50, 100, 100, 100, 104, 104], 0.05)[0]
    assert not flat([50, 100, 100, 100, 110, 110], 0.05)[0]
    assert flat([1, 2, 10, 10, 14, 14], 0.05, slack=4)[0]
    assert not flat([5], 0.05)[0]          # too few samples is never "flat"


async def test_short_soak_is_flat(netns_available, tally):
    cfg = SoakConfig(seconds=SECONDS, flood_every=SECONDS / 3.5, flood_seconds=1.0)
    report = await run_soak(cfg)
    text = summary(report)
    v, st = report["verdict"], report["stats"]
    assert not report["failures"], text
    assert st["exchanges"] > 100 and st["bulk_transfers"] >= 2 and st["flood_bursts"] >= 2, text
    assert v["syn_queue_max"] <= cfg.backlog, text
    assert v["rss_flat"] and v["conns_flat"], text
    assert v["ok"], text
    tally.verified(st["echo_bytes"] + st["bulk_bytes"])
    tally.tried("soak echo exchanges", st["exchanges"])
    tally.fault(f"soak {SECONDS:g} s with {st['flood_bursts']} SYN flood bursts", survived=True)
    tally.mem(f"soak {report['wall_seconds']} s",
              f"RSS ({v['rss_measure']}) middle-third median {v['rss_kb_middle_median']:.0f} kB, "
              f"last-third median {v['rss_kb_last_median']:.0f} kB; raw RSS first {v['rss_kb_first']} kB, "
              f"middle {v['raw_rss_kb_middle_median']:.0f} kB, last {v['raw_rss_kb_last_median']:.0f} kB; conns {v['conns_middle_median']:.0f} -> "
              f"{v['conns_last_median']:.0f}; {st['connects']} connects, {st['bulk_bytes'] / 1e6:.0f} MB bulk")
