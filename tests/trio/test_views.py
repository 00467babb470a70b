"""ss / netstat views against a fake stack: what the tables must look like."""
from tuntcp.obs import views
from tuntcp.wire.codec import ip_int

EP, CL = ip_int("198.18.1.1"), ip_int("198.18.0.1")


class FakeListener:
    def __init__(self, port, backlog, accept, reqs=(), addr=0):
        self.port, self.addr, self.backlog = port, addr, backlog
        self.q = {"accept": accept, "syn": len(reqs), "backlog": backlog, "requests": list(reqs)}

    def queue_lengths(self):
        return self.q


class FakeConn:
    def __init__(self, rport, state, recv_q, info):
        self.key = (EP, 8080, CL, rport)
        self.state, self._rq, self._info = state, recv_q, info

    def readable(self):
        return self._rq

    def info(self):
        return self._info


class FakeStack:
    def __init__(self, listeners=(), conns=()):
        self.addrs = {EP}
        self.listeners = {(l.addr, l.port): l for l in listeners}
        self.conns = {c.key: c for c in conns}


INFO = dict(ts=True, sack=True, wscale_ok=True, snd_wscale=7, rcv_wscale=9, rto=204,
            rtt=27.1, rttvar=13.5, ato=40, cc="cubic", mss=1448, pmtu=1500, rcv_mss=536, advmss=1460,
            cwnd=10, ssthresh=2147483647, bytes_sent=100, bytes_acked=101, bytes_received=77,
            segs_out=5, segs_in=6, unacked=2, retrans=0, total_retrans=3, rcv_space=14600,
            rcv_ssthresh=64076, snd_wnd=64256, rcv_wnd=64256, send_q=1200)


def test_ss_lnt_shows_accept_queue_and_clamped_backlog():
    # iproute2 6.x without a terminal: widths from the widest token, trailing blanks kept
    st = FakeStack([FakeListener(8080, 128, 3), FakeListener(22, 4096, 0)])
    assert views.ss_lnt(st) == (
        "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
        "LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*          \n"
        "LISTEN 3      128          0.0.0.0:8080      0.0.0.0:*          \n")


def test_ss_ti_prints_row_then_iproute2_info_line():
    st = FakeStack(conns=[FakeConn(40001, "ESTABLISHED", 5, INFO)])
    lines = views.ss_ti(st).splitlines()
    assert lines[1].split() == ["ESTAB", "5", "1200", "198.18.1.1:8080", "198.18.0.1:40001"]
    # plain -i: no "ts sack" (ss prints those only with -o or -e)
    assert lines[2] == (
        "\t cubic wscale:7,9 rto:204 rtt:27.1/13.5 ato:40 mss:1448 pmtu:1500 rcvmss:536"
        " advmss:1460 cwnd:10 bytes_sent:100 bytes_acked:101 bytes_received:77 segs_out:5"
        " segs_in:6 unacked:2 retrans:0/3 rcv_space:14600 rcv_ssthresh:64076 snd_wnd:64256"
        " rcv_wnd:64256")
    assert views.info_line(INFO, options=True).startswith("ts sack cubic wscale:7,9 ")


def test_ss_ti_shows_finite_ssthresh_and_hides_absent_options():
    info = dict(INFO, ts=False, sack=False, wscale_ok=False, ssthresh=7, unacked=0,
                total_retrans=0, cc="reno")
    line = views.info_line(info)
    assert line.startswith("reno rto:204 ")
    assert "ssthresh:7 " in line and "unacked" not in line and "retrans" not in line


def test_syn_recv_rows_with_timer():
    st = FakeStack([FakeListener(8080, 128, 0, reqs=[(CL, 40000, 1, False, 12.5)])])
    text = views.syn_recv(st, now=11.0)
    # a single state: ss drops the State column; 1500 ms prints as ss's "1.500ms"
    assert text.splitlines()[1].split() == [
        "0", "0", "198.18.1.1:8080", "198.18.0.1:40000", "timer:(on,1.500ms,1)"]
    assert text.splitlines()[2] == "# 0.0.0.0:8080 syn:1 accept:0 backlog:128"


def test_netstat_lan_qlen_incqlen_maxqlen():
    lst = FakeListener(8080, 128, 3)
    lst.q["incomplete"] = 1
    assert views.netstat_lan(FakeStack([lst])).splitlines() == [
        "Current listen queue sizes (qlen/incqlen/maxqlen)",
        f"Proto {'Listen':<32} Local Address",
        f"tcp4  {'3/1/128':<32} *.8080",
    ]


def test_nstat_text_nonzero_only_unless_zeros():
    c = {"TcpPassiveOpens": 3, "TuntcpTunTxDrops": 2, "TcpInSegs": 0}
    # nstat.c: "%-32s%-16llu%6.1f"
    assert views.nstat_text(c) == (
        "#kernel\n"
        "TcpPassiveOpens                 3                  0.0\n"
        "TuntcpTunTxDrops                2                  0.0\n")
    z = views.nstat_text(c, zeros=True).splitlines()
    assert z[0] == "#kernel" and any(l.split()[:2] == ["TcpInSegs", "0"] for l in z)
