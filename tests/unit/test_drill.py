"""The model under tuntcp's packetdrill runner (tuntcp.drill) for what a tests/drill script
cannot show: outbound TS values (packetdrill does not compare them) and that the runner
catches a stack that sends early or late. The packet rules are tests/drill/*.pkt."""
import pytest

from drillrun import LISTEN, SYSCTL, Drive

SYN = "+0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>\n"
SYNACK = "> S. 0:0(0) ack 1 <mss 1460,sackOK,TS val {} ecr 100,nop,wscale 7>\n"


def test_synack_ts_values_follow_a_millisecond_clock():
    """tcp_synack_timer resends at 1 s and 3 s; TSval is a 1 kHz clock (tcp_time_stamp_ms)."""
    d = Drive().run(SYSCTL.format(ts=1, sack=1) + LISTEN + SYN + "+0 " + SYNACK.format(200)
                    + "+1 " + SYNACK.format(1200) + "+2 " + SYNACK.format(3200))
    ts = d.r.flows[-1].ts_map                  # script TS val -> the TS val the model sent
    assert (ts[1200] - ts[200], ts[3200] - ts[200]) == (1000, 3000)


@pytest.mark.parametrize("when, sent", [("2.000", "at 1.000000"), ("0.500", "at 1.000000")])
def test_a_segment_at_another_time_is_a_timing_error(when, sent):
    script = SYSCTL.format(ts=1, sack=1) + LISTEN + SYN + "+0 " + SYNACK.format(200) + when + " " + SYNACK.format(1200)
    with pytest.raises(AssertionError, match=f"timing error: expected outbound packet at {when}000 sec but "
                                             f"happened {sent} sec"):
        Drive().run(script)
