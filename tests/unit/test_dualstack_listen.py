"""The dual-stack listener: an AF_INET6 listener on :: takes IPv4 peers (on the IPv4 wire,
IPv4 cookies and MSS) unless IPV6_V6ONLY, as Linux's lookup, bind and conn_request do; an
AF_INET listener takes IPv4 only; the family's default comes from the stack's addresses."""
import pytest

from tuntcp import mib
from tuntcp.errors import StackError
from tuntcp.host.stack import Stack
from tuntcp.listen.cookies import LinuxCookies
from tuntcp.profiles import get_profile
from tuntcp.wire import codec
from tuntcp.wire.ipv6 import Segment6, addr_int, addr_str, build6, parse6
from tuntcp.wire.segment import ACK, RST, SYN, Segment, TcpOptions

SRV6, CLI6 = addr_int("2001:2:0:1::1"), addr_int("2001:2::1")
SRV4, CLI4 = addr_int("198.18.1.1"), addr_int("198.18.0.1")
OPTS4 = TcpOptions(mss=1460, wscale=7, sack_ok=True, ts=(100, 0))


def stack(profile="linux-6.18", knobs=(), addrs=(SRV6, SRV4)):
    return Stack(get_profile(profile, list(knobs)), addrs=set(addrs), secret=b"k" * 16)


def syn4(st, sport=40000, now=1.0):
    st.receive(codec.build(Segment(CLI4, SRV4, sport, 80, 1000, 0, SYN, 64240, OPTS4)), now)
    return [codec.parse(p) for p in st.take_output()]


def syn6(st, sport=40000, now=1.0):
    st.receive(build6(Segment6(CLI6, SRV6, sport, 80, 1000, 0, SYN, 64800,
                               TcpOptions(mss=1440, wscale=7, sack_ok=True, ts=(100, 0)))), now)
    return [parse6(p) for p in st.take_output()]


def ack4(st, sa, sport=40000, now=1.01):
    st.receive(codec.build(Segment(CLI4, SRV4, sport, 80, 1001, (sa.seq + 1) & 0xFFFFFFFF, ACK, 502,
                                   TcpOptions(ts=(101, sa.options.ts[0])))), now)
    return st.take_output()


def test_dual_listener_takes_an_ipv4_peer_on_the_ipv4_wire():
    st = stack()
    lst = st.listen(80, 16, family=6)
    assert (lst.family, lst.v6only) == (6, False)         # net.ipv6.bindv6only 0
    (sa,) = syn4(st)
    assert sa.flags == SYN | ACK and (sa.saddr, sa.daddr) == (SRV4, CLI4)
    assert sa.options.mss == 1460                          # tcp_v4_conn_request: mtu - 40
    assert ack4(st, sa) == []
    (child,) = lst.accept_q
    assert child.key == (SRV4, 80, CLI4, 40000) and child.mss == 1448
    assert addr_str(child.key[2], mapped=True) == "::ffff:198.18.0.1"


def test_dual_listener_cookies_take_the_ipv4_path():
    """tcp_v6_conn_request hands an ETH_P_IP SYN to tcp_v4_conn_request: cookie_v4_init_sequence
    (IPv4 MSS table), and the ACK is checked by cookie_v4_check."""
    st = stack(knobs=["net.ipv4.tcp_syncookies=2"])
    lst = st.listen(80, 16, family=6)
    (sa,) = syn4(st)
    isn, table_mss = LinuxCookies(b"k" * 16).init_sequence(CLI4, 40000, SRV4, 80, 1000, 1460, 1.0)
    assert sa.seq == isn and table_mss == 1460
    ack4(st, sa)
    assert st.counters[mib.TcpExtSyncookiesSent] == 1 and st.counters[mib.TcpExtSyncookiesRecv] == 1
    (child,) = lst.accept_q
    assert child.key == (SRV4, 80, CLI4, 40000)


def test_v6only_listener_refuses_ipv4_with_the_ipv4_rst():
    """IPV6_V6ONLY: compute_score skips the socket for an IPv4 lookup, so no socket is found and
    tcp_v4_send_reset answers <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>."""
    st = stack()
    lst = st.listen(80, 16, family=6, v6only=True)
    (rst,) = syn4(st)
    assert rst.flags == RST | ACK and rst.seq == 0 and rst.ack == 1001 and rst.daddr == CLI4
    assert st.counters[mib.TcpOutRsts] == 1 and not lst.reqs
    (sa,) = syn6(st)                                       # IPv6 peers still come in
    assert sa.flags == SYN | ACK and sa.options.mss == 1440


def test_bindv6only_knob_sets_the_default_and_the_option_overrides_it():
    st = stack(knobs=["net.ipv6.bindv6only=1"])
    assert st.listen(80, 16, family=6).v6only is True
    assert syn4(st)[0].flags == RST | ACK
    st2 = stack(knobs=["net.ipv6.bindv6only=1"])
    assert st2.listen(80, 16, family=6, v6only=False).v6only is False
    assert syn4(st2)[0].flags == SYN | ACK


def test_freebsd_inet6_socket_is_v6only_by_default():
    st = stack("freebsd-14")
    assert st.listen(80, 16, family=6).v6only is True     # net.inet6.ip6.v6only 1
    assert syn4(st)[0].flags == RST | ACK
    st2 = stack("freebsd-14")
    st2.listen(80, 16, family=6, v6only=False)
    assert syn4(st2)[0].flags == SYN | ACK


def test_ipv4_listener_takes_no_ipv6_peer():
    st = stack()
    assert st.listen(80, 16, family=4).family == 4
    (rst,) = syn6(st)
    assert rst.flags == RST | ACK and rst.daddr == CLI6


def test_ipv4_listener_and_v6only_listener_share_a_port():
    st = stack()
    l4 = st.listen(80, 16, family=4)
    l6 = st.listen(80, 16, family=6, v6only=True)
    ack4(st, syn4(st)[0])
    syn6(st)
    assert [c.key[0] for c in l4.accept_q] == [SRV4] and list(l6.reqs) and not l4.reqs
    st.unlisten(l6)
    assert syn6(st, sport=40001)[0].flags == RST | ACK      # l4 still takes no IPv6 peer
    assert st.listener_for(SRV4, 80) is l4


@pytest.mark.parametrize("first,second", [
    (dict(family=4), dict(family=6)),
    (dict(family=6), dict(family=4)),
    (dict(family=6), dict(family=4, addr=SRV4)),
    (dict(family=4, addr=SRV4), dict(family=6)),
])
def test_dual_listener_and_an_ipv4_listener_conflict(first, second):
    """inet_csk_bind_conflict: a :: socket without IPV6_V6ONLY matches every IPv4 address."""
    st = stack()
    st.listen(80, 16, **first)
    with pytest.raises(StackError, match="address in use"):
        st.listen(80, 16, **second)


def test_family_default_follows_the_stack_addresses_and_bad_binds_are_refused():
    assert stack(addrs=(SRV6,)).listen(80, 1).family == 6
    assert stack(addrs=(SRV4,)).listen(80, 1).family == 4
    assert stack(addrs=(SRV6, SRV4)).listen(80, 1).family == 4
    assert stack().listen(80, 1, addr=SRV6).family == 6
    st = stack()
    for kw in (dict(family=4, addr=SRV6), dict(family=6, addr=SRV4), dict(family=5),
               dict(family=6, addr=addr_int("::ffff:198.18.1.1"))):
        with pytest.raises(StackError):
            st.listen(81, 1, **kw)


def test_specific_ipv6_listener_takes_no_ipv4_peer():
    """inet6_bind gives a socket bound to a non-mapped IPv6 address no IPv4 receive address."""
    st = stack()
    st.listen(80, 16, addr=SRV6, v6only=False)
    assert syn4(st)[0].flags == RST | ACK
    assert syn6(st)[0].flags == SYN | ACK


def test_ephemeral_port_skips_ports_with_a_listener_of_either_family():
    st = stack()
    port = st._next_port
    st.listen(port, 1, family=6)
    conn = st.connect(SRV4, CLI4, 9, 1.0)
    assert conn.key[1] == port + 1


def _ss(st):
    import argparse

    from tuntcp.obs import commands
    from tuntcp.obs.ss import ss_text
    p = argparse.ArgumentParser()
    commands.add_ss_arguments(p)
    text = ss_text(st, commands.ss_query(p.parse_args(["-tan"])), proc=("", 0))
    return [ln.split()[3:5] for ln in text.splitlines()[1:]]


def test_ss_prints_a_dual_listener_as_star_and_its_ipv4_child_mapped():
    """What iproute2 ss prints for an AF_INET6 socket (seen in a 6.18 namespace): the :: listener
    "*:8080" ("[::]:8081" under IPV6_V6ONLY), an IPv4 peer "[::ffff:a.b.c.d]"."""
    st = stack()
    st.listen(80, 16, family=6)
    st.listen(81, 16, family=6, v6only=True)
    ack4(st, syn4(st)[0])
    rows = _ss(st)
    assert ["*:80", "*:*"] in rows and ["[::]:81", "[::]:*"] in rows
    assert ["[::ffff:198.18.1.1]:80", "[::ffff:198.18.0.1]:40000"] in rows


def test_freebsd_netstat_names_the_listener_family():
    """usr.bin/netstat inet.c: tcp4, tcp6 (INP_IPV6 alone), tcp46 (an INET6 socket with IPv4)."""
    from tuntcp.obs.views import netstat_lan
    st = stack("freebsd-14")
    st.listen(80, 4, family=4)
    st.listen(81, 4, family=6)                    # v6only by default on FreeBSD
    st.listen(82, 4, family=6, v6only=False)
    protos = [ln.split()[0] for ln in netstat_lan(st).splitlines()[2:]]
    assert protos == ["tcp4", "tcp6", "tcp46"]


def test_ss_shows_a_dual_listeners_request_sock_with_the_local_address_of_its_family():
    st = stack()
    st.listen(80, 16, family=6)
    syn4(st)
    syn6(st)
    rows = _ss(st)
    assert ["[::ffff:198.18.1.1]:80", "[::ffff:198.18.0.1]:40000"] in rows
    assert ["[2001:2:0:1::1]:80", "[2001:2::1]:40000"] in rows
