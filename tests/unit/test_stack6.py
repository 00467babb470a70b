"""IPv6 through the host and the listen paths: packets in by their version nibble, out through
build6 with the profile's hop limit and a per-flow label, the MSS of the IPv6 header, the
Linux cookie_v6_* path with its window-scale switch, FreeBSD's syncache for INET6, and keys
that keep the two families apart."""
import pytest

from tuntcp import mib
from tuntcp.host.stack import Stack
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.ipv6 import Segment6, addr_int, addr_port, addr_str, build6, parse6, parse_ip
from tuntcp.wire.segment import ACK, RST, SYN, Segment, TcpOptions

SRV6, CLI6 = addr_int("2001:2:0:1::1"), addr_int("2001:2::1")
SRV4, CLI4 = addr_int("198.18.1.1"), addr_int("198.18.0.1")
LINUX_OPTS = TcpOptions(mss=1440, wscale=7, sack_ok=True, ts=(100, 0))


def syn6(sport=40000, opts=LINUX_OPTS, src=CLI6, dst=SRV6, seq=1000):
    return build6(Segment6(src, dst, sport, 80, seq, 0, SYN, 64800, opts))


def stack(profile="linux-6.18", knobs=(), addrs=(SRV6,)):
    return Stack(get_profile(profile, list(knobs)), addrs=set(addrs), secret=b"k" * 16)


def handshake(st, sport=40000, now=1.0, payload=b""):
    st.receive(syn6(sport), now)
    (sa,) = [parse6(p) for p in st.take_output()]
    ack = Segment6(CLI6, SRV6, sport, 80, 1001, (sa.seq + 1) & 0xFFFFFFFF, ACK, 507,
                   TcpOptions(ts=(101, sa.options.ts[0])), payload)
    st.receive(build6(ack), now + 0.01)
    return sa, [parse6(p) for p in st.take_output()]


def test_synack_over_ipv6_has_ipv6_mss_hop_limit_and_one_flow_label():
    st = stack(knobs=["net.ipv6.conf.default.hop_limit=17"])
    lst = st.listen(80, 16)
    sa, out = handshake(st, payload=b"hi")
    assert sa.flags == SYN | ACK and sa.options.mss == 1440          # 1500 - 60
    assert sa.ttl == 17 and sa.flowlabel != 0
    (child,) = lst.accept_q
    assert child.mss == 1440 - 12 and child.advmss == 1428
    assert [s.flowlabel for s in out] == [sa.flowlabel]              # the child keeps the req's label
    assert st.counters[mib.Ip6InReceives] == 2 and st.counters[mib.IpInReceives] == 0


def test_auto_flowlabels_off_sends_label_zero():
    st = stack(knobs=["net.ipv6.auto_flowlabels=0"])
    st.listen(80, 16)
    sa, _ = handshake(st)
    assert sa.flowlabel == 0


def test_flows_get_different_labels():
    st = stack()
    st.listen(80, 16)
    a, _ = handshake(st, sport=40000)
    b, _ = handshake(st, sport=40001)
    assert a.flowlabel != b.flowlabel


@pytest.mark.parametrize("profile,child_wscale", [("linux-5.4", 7), ("linux-6.18", 1)])
def test_cookie_v6_window_scale_switch(profile, child_wscale):
    """cookie_v6_check derives the child's shift like cookie_v4_check: without the SO_RCVBUF
    clamp before 909172a14974 (7), with it after (1, what the SYN-ACK announced)."""
    st = stack(profile, ["net.ipv4.tcp_syncookies=2"])
    lst = st.listen(80, 16, rcvbuf=102400)
    sa, _ = handshake(st)
    assert sa.options.wscale == 1
    assert st.counters[mib.TcpExtSyncookiesSent] == st.counters[mib.TcpExtSyncookiesRecv] == 1
    (child,) = lst.accept_q
    assert child.path == "cookie" and child.rcv_wscale == child_wscale
    assert child.mss == 1440 - 12     # MSSTAB6 has 1500 - 60


def test_cookie_v6_msstab():
    st = stack(knobs=["net.ipv4.tcp_syncookies=2"])
    lst = st.listen(80, 16)
    st.receive(syn6(opts=TcpOptions(mss=1300, wscale=7, sack_ok=True, ts=(5, 0))), 1.0)
    sa = parse6(st.take_output()[0])
    st.receive(build6(Segment6(CLI6, SRV6, 40000, 80, 1001, sa.seq + 1, ACK, 507,
                               TcpOptions(ts=(6, sa.options.ts[0])))), 1.01)
    (child,) = lst.accept_q
    assert child.mss == 1220 - 12    # the largest MSSTAB6 entry not above 1300 is 1280 - 60


def test_syn_without_mss_option_gets_the_ipv6_default():
    st = stack()
    lst = st.listen(80, 16)
    st.receive(syn6(opts=TcpOptions()), 1.0)
    sa = parse6(st.take_output()[0])
    st.receive(build6(Segment6(CLI6, SRV6, 40000, 80, 1001, sa.seq + 1, ACK, 64800)), 1.01)
    (child,) = lst.accept_q
    assert child.mss == 1220         # tcp_request_sock_ipv6_ops.mss_clamp, not 536


def test_v4_mapped_source_syn_is_a_header_error():
    st = stack()
    st.listen(80, 16)
    st.receive(syn6(src=addr_int("::ffff:198.18.0.1")), 1.0)
    assert st.take_output() == []
    assert st.counters[mib.Ip6InHdrErrors] == 1 and st.counters[mib.TcpExtListenDrops] == 0


def test_v4_compatible_address_is_dropped_so_keys_cannot_collide():
    st = stack(addrs=(SRV6, SRV4))
    st.listen(80, 16)
    st.receive(syn6(src=CLI4), 1.0)          # ::198.18.0.1
    assert st.take_output() == [] and st.counters[mib.TuntcpIp6CompatAddr] == 1
    with pytest.raises(ValueError, match="IPv4-compatible"):
        addr_int("::198.18.0.1")


def test_dual_stack_wildcard_listener_takes_both_families_on_one_port():
    st = stack(addrs=(SRV6, SRV4))
    lst = st.listen(80, 16, family=6)      # ::, net.ipv6.bindv6only 0: dual-stack
    handshake(st, sport=40000)
    st.receive(codec.build(Segment(CLI4, SRV4, 40000, 80, 1000, 0, SYN, 64240,
                                   TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(1, 0)))), 2.0)
    sa4 = codec.parse(st.take_output()[0])
    assert sa4.options.mss == 1460
    st.receive(codec.build(Segment(CLI4, SRV4, 40000, 80, 1001, sa4.seq + 1, ACK, 502,
                                   TcpOptions(ts=(2, sa4.options.ts[0])))), 2.01)
    assert [c.key for c in lst.accept_q] == [(SRV6, 80, CLI6, 40000), (SRV4, 80, CLI4, 40000)]
    assert [c.mss for c in lst.accept_q] == [1428, 1448]


def test_no_listener_answers_ipv6_with_an_ipv6_rst():
    st = stack()
    st.receive(syn6(), 1.0)
    (rst,) = [parse6(p) for p in st.take_output()]
    assert rst.flags == RST | ACK and rst.ack == 1001 and (rst.saddr, rst.daddr) == (SRV6, CLI6)


def test_malformed_ipv6_is_counted_and_dropped():
    st = stack()
    st.listen(80, 16)
    pkt = bytearray(syn6())
    pkt[5] += 8                                # payload length beyond the packet
    st.receive(bytes(pkt), 1.0)
    good = bytearray(syn6())
    good[-1] ^= 1                              # checksum broken
    st.receive(bytes(good), 1.0)
    st.receive(syn6(dst=addr_int("2001:2:0:1::9")), 1.0)
    assert st.take_output() == []
    c = st.counters
    assert (c[mib.Ip6InTruncatedPkts], c[mib.TcpInCsumErrors], c[mib.TcpInErrs], c[mib.Ip6InAddrErrors]) == (1, 1, 1, 1)


def test_active_open_over_ipv6():
    st = stack()
    conn = st.connect(SRV6, CLI6, 7000, 1.0)
    (syn,) = [parse6(p) for p in st.take_output()]
    assert syn.flags == SYN and syn.options.mss == 1440
    st.receive(build6(Segment6(CLI6, SRV6, 7000, conn.lport, 5000, syn.seq + 1, SYN | ACK, 65535,
                               TcpOptions(mss=1440, wscale=7, sack_ok=True, ts=(9, syn.options.ts[0])))), 1.01)
    assert conn.state == "ESTABLISHED" and conn.mss == 1428
    (ack,) = [parse6(p) for p in st.take_output()]
    assert ack.flags == ACK and ack.flowlabel == syn.flowlabel


def test_freebsd_syncache_over_ipv6():
    st = stack("freebsd-14")
    lst = st.listen(80, 16)
    sa, _ = handshake(st)
    assert sa.options.mss == 1440
    child = lst.accept()
    assert child.key == (SRV6, 80, CLI6, 40000)


def test_freebsd_syncookie_over_ipv6():
    st = stack("freebsd-14", ["net.inet.tcp.syncookies_only=1"])
    st.listen(80, 16)
    sa, _ = handshake(st)
    assert st.counters[mib.FreeBSDSyncacheCookiesRecv] == 1


def test_address_text_of_both_families():
    assert addr_str(SRV4) == "198.18.1.1" and addr_str(SRV6) == "2001:2:0:1::1"
    assert addr_port(SRV4, 80) == "198.18.1.1:80" and addr_port(SRV6, 80) == "[2001:2:0:1::1]:80"
    assert parse_ip(syn6()).saddr == CLI6
    with pytest.raises(ValueError):
        addr_int("2001:2::zz")


def test_offload_endpoint_answers_ipv6_with_a_vnet_frame_of_the_plain_packet():
    """A vnet (offload) stack takes IPv6 and answers with a TCPV6-capable frame: completing
    its partial checksum gives exactly the packet the plain encoder builds."""
    from tuntcp.host.encode import VnetEncoder
    from tuntcp.wire.vnet import HDR_LEN, VnetHdr, complete_csum
    outs = []
    for enc in (VnetEncoder(), None):
        st = Stack(get_profile("linux-6.18"), addrs={SRV6}, secret=b"k" * 16, encoder=enc)
        st.listen(80, 16)
        st.receive(syn6(), 1.0)
        outs.append(st.take_output())
    (frame,), (plain,) = outs
    hdr = VnetHdr.unpack(frame)
    assert (hdr.flags, hdr.csum_start, hdr.csum_offset, hdr.hdr_len) == (1, 40, 16, 40 + 40)
    assert complete_csum(frame)[HDR_LEN:] == plain
    assert parse6(plain).flags == SYN | ACK


@pytest.mark.parametrize("profile,line", [
    ("linux-5.4", "TCP: request_sock_TCPv6: Possible SYN flooding on port 80. Sending cookies.  Check SNMP counters."),
    ("linux-6.18", "TCP: request_sock_TCPv6: Possible SYN flooding on port [::]:80. Sending cookies."),
])
def test_syn_flood_line_of_an_ipv6_syn(profile, line):
    logged = []
    st = Stack(get_profile(profile), addrs={SRV6}, secret=b"k" * 16,
               log=lambda kind, **f: logged.append(f["line"]) if kind == "kernel_log" else None)
    st.listen(80, 1)
    for port in range(40000, 40004):
        st.receive(syn6(sport=port), 1.0)
    assert logged == [line]
