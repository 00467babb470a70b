"""A device queue that drops every packet (the drill tun's root ``pfifo limit 0``) and TCP's
reaction to the failed local send (tests/drill/qdisc-drop-rto.pkt and the two upstream scripts
check the timing against the kernel; these check the pieces)."""
import os

import pytest

from tuntcp import mib
from tuntcp.core.host import NET_XMIT_DROP, NET_XMIT_SUCCESS
from tuntcp.drill.commands import TUN_TXQUEUELEN, Settings
from tuntcp.drill.model import Mismatch, Unsupported
from tuntcp.drill.parser import parse
from tuntcp.drill.runner import Runner
from tuntcp.host.encode import SegmentRecorder
from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.wire.segment import ACK, Segment

PROF = get_profile("linux-6.18")
DRILL = os.path.join(os.path.dirname(__file__), "..", "drill")


def _settings(*lines):
    s = Settings()
    for i, text in enumerate(lines, 1):
        s.run(PROF, text, i)
    return s


def test_defaults_sh_installs_a_pfifo_that_drops_nothing():
    s = _settings("../../common/defaults.sh")
    assert s.root_pfifo == TUN_TXQUEUELEN and not s.drops_all


def test_limit_zero_drops_all_and_delete_restores_the_default():
    s = _settings("tc qdisc replace dev tun0 root pfifo limit 0")
    assert s.drops_all
    s.run(PROF, "tc qdisc delete dev tun0 root", 2)
    assert s.root_pfifo is None and not s.drops_all
    # the upstream form: a delete whose error is hidden, then an add
    s.run(PROF, "tc qdisc delete dev tun0 root 2>/dev/null ; tc qdisc add dev tun0 root pfifo limit 0", 3)
    assert s.drops_all
    s.run(PROF, "tc qdisc replace dev tun0 root pfifo limit 7", 4)
    assert s.root_pfifo == 7 and not s.drops_all


@pytest.mark.parametrize("text", ["tc qdisc delete dev tun0 root",          # the default root qdisc
                                  "tc qdisc del dev tun0 root 2>/dev/null"])
def test_a_failing_tc_fails_the_line_with_its_status(text):
    with pytest.raises(Mismatch, match="non-zero status 2"):
        _settings(text)


def test_adding_over_a_configured_root_fails():
    s = _settings("tc qdisc add dev tun0 root pfifo limit 0")
    with pytest.raises(Mismatch, match="non-zero status"):
        s.run(PROF, "tc qdisc add dev tun0 root pfifo", 2)
    # not the last command: the shell's status is the add's
    s.run(PROF, "tc qdisc add dev tun0 root pfifo; tc qdisc replace dev tun0 root pfifo", 3)
    assert s.root_pfifo == TUN_TXQUEUELEN


@pytest.mark.parametrize("text", ["tc qdisc replace dev tun0 root fq",
                                  "tc qdisc replace dev eth0 root pfifo limit 0",
                                  "tc qdisc replace dev tun0 parent 1: pfifo limit 0",
                                  "tc qdisc replace dev tun0 root pfifo limit x",
                                  "tc class add dev tun0 root pfifo",
                                  "tc qdisc change dev tun0 root pfifo limit 0"])
def test_other_tc_forms_stay_unsupported(text):
    with pytest.raises(Unsupported):
        _settings(text)


def test_emit_into_a_drop_all_queue_counts_the_segment_and_sends_nothing():
    st = Stack(PROF, encoder=SegmentRecorder())
    seg = Segment(1, 2, 3, 4, seq=0, ack=0, flags=ACK)
    assert st.emit(seg) == NET_XMIT_SUCCESS
    st.txq_drop_all = True
    assert st.emit(seg) == NET_XMIT_DROP
    assert st.counters[mib.TcpOutSegs] == 2     # __tcp_transmit_skb counts before queue_xmit
    assert len(st.take_output()) == 1


def _run(name):
    with open(os.path.join(DRILL, name)) as f:
        r = Runner(parse(f.read()), "linux-6.18")
    r.run()
    return r


def test_failed_retransmissions_count_retransfail_not_loss_probes():
    """__tcp_retransmit_skb: TCPRetransFail per failed retransmission (the loss probe's and the
    RTO's), TcpRetransSegs for every attempt; a failed probe is not a TCPLossProbes."""
    r = _run("qdisc-drop-rto.pkt")
    c = r.stack.counters
    assert c[mib.TcpExtTCPRetransFail] == 2
    assert c[mib.TcpRetransSegs] == 3
    assert c[mib.TcpExtTCPLossProbes] == 0


def _probe_script(tail: str) -> str:
    return """
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 0 <mss 1460>
+0 > S. 0:0(0) ack 1 <mss 1460>
+.1 < . 1:1(0) ack 1 win 65530
+0 accept(3, ..., ...) = 4
+0 `tc qdisc replace dev tun0 root pfifo limit 0`
+0 write(4, ..., 10) = 10
""" + tail


def test_a_dropped_new_segment_is_not_sent_and_the_probe_timer_retries_every_500ms():
    """tcp_write_xmit stops at the failed skb (snd_nxt stays), tcp_check_probe_timer arms the
    probe timer; tcp_send_probe0 after a failed probe: probes_out++, no backoff, 500 ms."""
    r = Runner(parse(_probe_script("+1.35 %{ assert tcpi_probes == 3, tcpi_probes }%\n")), "linux-6.18")
    r.run()
    conn = r.current
    assert conn.snd_nxt == conn.snd_una and conn.rto.backoffs == 0 and conn.probes_out == 3
    # armed at 0.4 (write at 0.1 + RTO 0.3), then 0.9, 1.4: the next at 1.9
    assert conn.rtx_kind == "probe" and conn.rtx_at == pytest.approx(1.9, abs=1e-6)
    assert r.stack.counters[mib.TcpExtTCPWinProbe] == 0     # the window is open: a data probe
