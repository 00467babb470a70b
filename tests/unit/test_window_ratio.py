"""The per-connection scaling ratio (tcp_measure_rcv_mss since dfa2f0483360) and the window clamp
following it (a2cbb1603943 / f5da7c45188e: tcp_set_window_clamp), with truesize from the tun
driver path (skb_truesize)."""
import pytest

from tuntcp.core.window import RecvWindow, skb_truesize
from tuntcp.profiles import get_profile


def prof(name, **over):
    return get_profile(name, {k.replace("__", "."): v for k, v in over.items()})


def broker_window(p):
    """The SO_RCVBUF 102400 broker after tcp_init_buffer_space: clamp 100952, rcv_wnd 99912."""
    return RecvWindow(p, rcvbuf=204800, rcvbuf_locked=True, rcv_wscale=1, window_clamp=102400,
                      rcv_wnd=99912, advmss=1448, rcv_nxt=0)


def bulk(w, seg, n=60):
    """n in-order segments of `seg` bytes, each read at once; the last header field."""
    nxt = 0
    for _ in range(n):
        if seg >= w.rcv_mss and seg != w.rcv_mss:
            w.measure_ratio(seg)
        w.rcv_mss = min(seg, 1448)
        w.on_data(seg, seg)
        nxt += seg
        field = w.select(nxt, 0, w.rcv_mss)
    return field


def test_tun_truesize_linear_below_a_page_pages_above():
    assert skb_truesize(1448) == 2304          # kmalloc-2048 head + struct sk_buff
    assert skb_truesize(3900) == 8448          # still linear: kmalloc-8192
    assert skb_truesize(4000) == 768 + 4096    # headers in the head, payload in one page
    assert skb_truesize(65483) == 768 + 2 * 32768   # two order-3 pages
    assert skb_truesize(1428, hdr=72) == 2304  # IPv6 headers


def test_profiles_that_adapt():
    assert prof("linux-6.18")["model.scaling_ratio_adapt"] == "clamp"
    assert prof("linux-6.12")["model.scaling_ratio_adapt"] == "clamp"
    for name in ("linux-3.10", "linux-4.9", "linux-5.4", "linux-5.10", "linux-6.1", "freebsd-14"):
        assert prof(name).get("model.scaling_ratio_adapt", "off") == "off"


def test_6_18_plain_tun_ratio_160_clamp_128000_and_the_kernel_field():
    w = broker_window(prof("linux-6.18"))
    assert (w.window_clamp, w.rcv_ssthresh) == (100952, 99912)
    field = bulk(w, 1448)
    assert w.scaling_ratio == 1448 * 256 // 2304 == 160
    assert w.window_clamp == 204800 * 160 >> 8 == 128000
    # rcv_ssthresh stops where the queued segment leaves (204800 - 2304) * 160 / 256
    assert w.rcv_ssthresh == 126560 and field == 63280      # what the host kernel sends


def test_6_18_gso_packets_saturate_the_field():
    w = broker_window(prof("linux-6.18"))
    assert bulk(w, 65483) == 65535                 # 131070 bytes: the 6.18 host kernel's window
    assert w.scaling_ratio == 252 and w.window_clamp == 201600


def test_ratio_mode_moves_the_ratio_but_not_the_clamp():
    """6.6 .. 6.10: tcp_win_from_space follows, window_clamp stays at tcp_init_buffer_space's."""
    w = broker_window(prof("linux-6.18", model__scaling_ratio_adapt="ratio"))
    field = bulk(w, 1448)
    assert w.scaling_ratio == 160 and w.window_clamp == 100952
    assert field << 1 == 100952


def test_off_keeps_the_fixed_ratio():
    w = broker_window(prof("linux-6.18", model__scaling_ratio_adapt="off"))
    assert bulk(w, 1448) << 1 == 100952 and w.scaling_ratio == 128


@pytest.mark.parametrize("name", ["linux-5.4", "linux-5.10", "linux-6.1"])
def test_adv_win_scale_profiles_unchanged(name):
    w = broker_window(prof(name))
    assert bulk(w, 1448) << 1 == 100952 and w.window_clamp == 100952


def test_set_window_clamp_grow_and_shrink():
    w = broker_window(prof("linux-6.18"))
    w.set_window_clamp(150000)                 # grows: rcv_ssthresh to min(rcv_wnd, clamp) if more
    assert (w.window_clamp, w.rcv_ssthresh) == (150000, 99912)
    w.set_window_clamp(50000)                  # shrinks: rcv_ssthresh follows down
    assert (w.window_clamp, w.rcv_ssthresh) == (50000, 50000)
    w.set_window_clamp(10)                     # floor SOCK_MIN_RCVBUF / 2
    assert w.window_clamp == 1152


def test_same_ratio_changes_nothing():
    w = broker_window(prof("linux-6.18"))
    assert w.measure_ratio(1448) is True
    assert w.measure_ratio(1448) is False


RCVBUF_15000 = """`sysctl -q net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [15000], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 10) = 0
   +0 < S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
 +.01 < . 1:1(0) ack 1 win 502
   +0 accept(3, ..., ...) = 4
 +.01 < P. 1:1001(1000) ack 1 win 502
"""


@pytest.mark.parametrize("profile,after", [("linux-6.18", 13007), ("linux-6.12", 13007), ("linux-6.1", 13540)])
def test_a_lower_ratio_shrinks_clamp_ssthresh_and_rcv_space(profile, after):
    """1000 bytes: ratio 111, clamp 30000 * 111 >> 8 = 13007 below tcp_init_buffer_space's 13540:
    __tcp_adjust_rcv_ssthresh lowers rcv_ssthresh and f5da7c45188e lowers rcvq_space. Real
    packetdrill on the 6.18 host printed tcpi_rcv_space, tcpi_rcv_ssthresh = 13540, 13540 after
    accept and 13007, 13007 after this segment."""
    from tuntcp.drill.parser import parse
    from tuntcp.drill.runner import Runner
    r = Runner(parse(RCVBUF_15000, "t.pkt", {}), profile)
    r.run()
    i = r.current.info()
    assert (i["window_clamp"], i["rcv_ssthresh"], i["rcv_space"]) == (after, after, after)
