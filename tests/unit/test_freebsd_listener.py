"""FreeBSD passive open against the real Stack (encoder=SegmentRecorder()): segments in, segments out."""
import pytest

from tuntcp.host.stack import Stack, StackError
from tuntcp.host.encode import SegmentRecorder
from tuntcp.listen.freebsd_syncache import syncache_stats
from tuntcp.obs.views import netstat_lan
from tuntcp.profiles import get_profile
from tuntcp.wire.segment import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions

S, C = 0xC6120001, 0xC6120002


class Peer:
    """A scripted client: sends SYN / ACK / data, remembers our SYN-ACK per source port."""

    def __init__(self, profile="freebsd-14", sysctls=None, log=None):
        self.logs = []
        self.st = Stack(get_profile(profile, sysctls), addrs={S}, secret=b"0123456789abcdef",
                        encoder=SegmentRecorder(), log=lambda kind, **f: self.logs.append((kind, f)))
        self.synack = {}

    def out(self):
        segs = self.st.take_output()
        for s in segs:
            if s.flags == SYN | ACK:
                self.synack[s.dport] = s
        return segs

    def syn(self, port, t, ts=True, seq=None, mss=1460, ws=7):
        opts = TcpOptions(mss=mss, wscale=ws, sack_ok=True, ts=(1000 + port, 0) if ts else None)
        self.st.receive_segment(Segment(C, S, port, 80, seq=seq if seq is not None else port * 7,
                                        flags=SYN, window=64240, options=opts), t)
        return self.out()

    def ack(self, port, t, ts=True, data=b"", flags=ACK, ack=None, seq_off=0):
        sa = self.synack[port]
        opts = TcpOptions(ts=(2000 + port, sa.options.ts[0] if sa.options.ts else 0) if ts else None)
        self.st.receive_segment(Segment(C, S, port, 80, seq=sa.ack + seq_off,
                                        ack=(sa.seq + 1) if ack is None else ack, flags=flags,
                                        window=502, options=opts, payload=data), t)
        return self.out()

    def data(self, port, t, payload, off, flags=ACK | PSH):
        sa = self.synack[port]
        self.st.receive_segment(Segment(C, S, port, 80, seq=sa.ack + off, ack=sa.seq + 1,
                                        flags=flags, window=502, payload=payload,
                                        options=TcpOptions(ts=(2100 + port, 0))), t)
        return self.out()

    def handshake(self, port, t=0.0, **kw):
        self.syn(port, t)
        return self.ack(port, t + 0.001, **kw)

    def timers(self, t):
        self.st.on_timers(t)
        return self.out()

    @property
    def c(self):
        return self.st.counters


def kernel_lines(p):
    return [f["line"] for k, f in p.logs if k == "kernel_log"]


# ---- listen(2) -------------------------------------------------------------------------

def test_backlog_clamped_to_soacceptqueue():
    p = Peer()
    lst = p.st.listen(80, -1)
    assert lst.backlog == 128
    lst.relisten(100000)
    assert lst.backlog == 128
    lst.relisten(0)
    assert lst.backlog == 0
    p2 = Peer(sysctls=["kern.ipc.soacceptqueue=4096"])
    assert p2.st.listen(80, 3000).backlog == 3000


def test_defer_accept_and_unknown_filter_are_user_errors():
    p = Peer()
    with pytest.raises(StackError, match="accept_filter"):
        p.st.listen(80, 5, defer_accept=5)
    with pytest.raises(StackError, match="unknown accept filter"):
        p.st.listen(81, 5, accept_filter="tlsready")


def test_synack_options_window_and_cookie_iss():
    p = Peer()
    p.st.listen(80, 5)
    (sa,) = p.syn(40000, 0.0)
    assert sa.flags == SYN | ACK and sa.ack == 40000 * 7 + 1
    assert sa.window == 65535                            # min(recvspace 65536, TCP_MAXWIN)
    o = sa.options
    assert (o.mss, o.wscale, o.sack_ok, o.ts[1]) == (1460, 6, True, 41000)   # 65535<<6 >= 2 MiB
    assert p.c["FreeBSDSyncacheCookiesSent"] == 1 and p.c["FreeBSDSyncacheAdded"] == 1


# ---- sonewconn --------------------------------------------------------------------------

@pytest.mark.parametrize("backlog", [0, 1, 4, 5])
def test_queue_overflows_at_one_and_a_half_backlog_plus_one_then_rst(backlog):
    p = Peer()
    lst = p.st.listen(80, backlog)
    fits = 3 * backlog // 2 + 1
    for i in range(fits):
        assert p.handshake(41000 + i, t=i * 0.01) == []
    assert lst.queue_lengths()["qlen"] == fits
    port = 41000 + fits
    out = p.handshake(port, t=1.0)
    assert [(s.flags, s.seq) for s in out] == [(RST, p.synack[port].seq + 1)]
    assert lst.queue_lengths()["qlen"] == fits
    assert p.c["FreeBSDListenDrops"] == 1 and p.c["FreeBSDSyncacheAborted"] == 1
    assert p.c["FreeBSDSyncacheCompleted"] == fits
    (line,) = kernel_lines(p)
    assert line.startswith("sonewconn: pcb 0xfffff8")
    assert line.endswith(f"(0.0.0.0:80 (proto 6)): Listen queue overflow: {fits} already in queue "
                         f"awaiting acceptance (1 occurrences)")
    assert lst.accept() is not None
    assert p.handshake(port + 1, t=1.1) == []           # room again after one accept()


def test_overflow_with_rst_on_sock_fail_0_drops_the_ack_silently():
    p = Peer(sysctls=["net.inet.tcp.syncache.rst_on_sock_fail=0"])
    lst = p.st.listen(80, 2)
    for i in range(4):
        p.handshake(42000 + i)
    assert p.handshake(42010, t=0.5) == []
    assert lst.queue_lengths() == {"accept": 4, "syn": 0, "backlog": 2, "qlen": 4,
                                   "incqlen": 0, "incomplete": 0, "maxqlen": 2}
    assert p.c["FreeBSDListenDrops"] == 1 and p.c["TcpOutRsts"] == 0
    # the entry left the syncache before sonewconn refused: the client's request meets no
    # entry, no recent bucket overflow, so the cookie is not tried and the answer is a RST
    out = p.data(42010, 0.6, b"GET / HTTP/1.0\r\n\r\n", 0)
    assert [s.flags for s in out] == [RST]


def test_overflow_log_line_rate_limited_by_sooverinterval():
    p = Peer()
    p.st.listen(80, 0)
    p.handshake(43000)
    for i, t in enumerate([1.0, 2.0, 3.0, 30.0, 61.0]):
        p.handshake(43001 + i, t=t)
    lines = kernel_lines(p)
    assert len(lines) == 2
    assert "1 already in queue awaiting acceptance (1 occurrences)" in lines[0]
    assert "(4 occurrences)" in lines[1]                # t=2, 3, 30 and 61 since the first line


# ---- syncache timers --------------------------------------------------------------------

@pytest.mark.parametrize("profile,times,gone", [("freebsd-9", [3.0, 9.0, 21.0], 45.0),
                                                ("freebsd-14", [1.0, 3.0, 7.0], 15.0)])
def test_syncache_lifetime(profile, times, gone):
    p = Peer(profile)
    lst = p.st.listen(80, 5)
    first = p.syn(44000, 0.0)[0]
    for t in times:
        assert p.st.next_deadline() == t
        assert p.timers(t - 0.001) == []
        (sa,) = p.timers(t)
        assert (sa.flags, sa.seq) == (SYN | ACK, first.seq)
    assert p.st.next_deadline() == gone
    assert p.timers(gone - 0.001) == []
    assert lst.queue_lengths()["syn"] == 1
    assert p.timers(gone) == []
    assert lst.queue_lengths()["syn"] == 0
    assert p.st.next_deadline() is None
    assert p.c["FreeBSDSyncacheRetransmitted"] == 3 and p.c["FreeBSDSyncacheStale"] == 1


def test_dupsyn_resends_same_iss_and_restarts_the_timer():
    p = Peer("freebsd-14")
    p.st.listen(80, 5)
    a = p.syn(44100, 0.0)[0]
    p.timers(1.0)
    b = p.syn(44100, 2.5)[0]
    assert b.seq == a.seq and p.c["FreeBSDSyncacheDupsyn"] == 1
    assert p.st.next_deadline() == 3.5


def test_rst_with_exact_seq_removes_entry():
    p = Peer()
    lst = p.st.listen(80, 5)
    p.syn(44200, 0.0)
    out = p.ack(44200, 0.1, flags=RST, seq_off=5)       # in window, not exact: challenge ACK
    assert [s.flags for s in out] == [ACK] and lst.queue_lengths()["syn"] == 1
    p.ack(44200, 0.15, flags=RST, seq_off=70000)        # outside the window: ignored
    assert p.out() == [] and lst.queue_lengths()["syn"] == 1
    p.st.receive_segment(Segment(C, S, 44200, 80, seq=44200 * 7 + 1, flags=RST), 0.2)
    assert lst.queue_lengths()["syn"] == 0 and p.c["FreeBSDSyncacheReset"] == 1


def test_challenge_ack_for_in_window_rst():
    p = Peer()
    p.st.listen(80, 5)
    sa = p.syn(44300, 0.0)[0]
    p.st.receive_segment(Segment(C, S, 44300, 80, seq=sa.ack + 10, flags=RST), 0.1)
    (ca,) = p.out()
    assert (ca.flags, ca.seq, ca.ack) == (ACK, sa.seq + 1, sa.ack)


def test_wrong_ack_number_costs_the_entry_and_gets_rst():
    p = Peer()
    lst = p.st.listen(80, 5)
    sa = p.syn(44400, 0.0)[0]
    out = p.ack(44400, 0.1, ack=sa.seq + 7)
    assert [(s.flags, s.seq) for s in out] == [(RST, sa.seq + 7)]
    assert lst.queue_lengths()["syn"] == 0 and p.c["FreeBSDSyncacheBadack"] == 1


def test_data_on_the_completing_ack_reaches_the_child():
    p = Peer()
    lst = p.st.listen(80, 5)
    p.syn(44500, 0.0)
    p.ack(44500, 0.1, data=b"hello", flags=ACK | PSH)
    conn = lst.accept()
    assert conn.recv(100, 0.2) == b"hello"


# ---- buckets, cache limit, cookies ------------------------------------------------------

@pytest.mark.parametrize("profile", ["freebsd-9", "freebsd-14"])
def test_bucket_overflow_evicts_the_oldest_and_its_cookie_ack_still_completes(profile):
    p = Peer(profile, ["net.inet.tcp.syncache.hashsize=1", "net.inet.tcp.syncache.bucketlimit=3"])
    lst = p.st.listen(80, 10)
    for i, port in enumerate([45000, 45001, 45002, 45003]):
        p.syn(port, i * 0.1)
    sc = p.st.personality.syncache
    assert sc.lookup((S, 80, C, 45000)) is None                 # oldest gone
    assert all(sc.lookup((S, 80, C, q)) for q in (45001, 45002, 45003))
    assert p.c["FreeBSDSyncacheBucketOverflow"] == 1
    assert p.ack(45000, 1.0, ts=False) == []                    # cookie path, no timestamps
    conn = lst.accept()
    assert conn.path == "cookie" and conn.ts_ok is False
    assert (conn.snd_wscale, conn.rcv_wscale, conn.sack_ok) == (7, 6, True)
    assert p.c["FreeBSDSyncacheCookiesRecv"] == 1


def test_evicted_entry_with_syncookies_off_gets_rst():
    p = Peer(sysctls=["net.inet.tcp.syncache.hashsize=1", "net.inet.tcp.syncache.bucketlimit=1",
                      "net.inet.tcp.syncookies=0"])
    p.st.listen(80, 10)
    p.syn(45100, 0.0)
    p.syn(45101, 0.1)
    out = p.ack(45100, 0.2)
    assert [s.flags for s in out] == [RST] and p.c["FreeBSDSyncacheCookiesRecv"] == 0


def test_cookie_ack_refused_without_recent_overflow_accepted_within_lifetime():
    p = Peer("freebsd-9", ["net.inet.tcp.syncache.hashsize=1",
                           "net.inet.tcp.syncache.bucketlimit=1"])
    lst = p.st.listen(80, 10)
    p.syn(45200, 0.0)
    p.st.personality.syncache.remove(p.st.personality.syncache.lookup((S, 80, C, 45200)))   # entry lost, no overflow
    assert [s.flags for s in p.ack(45200, 0.1)] == [RST]
    p.syn(45201, 1.0)
    p.syn(45202, 2.0)                                  # overflow at t=2 evicts 45201
    assert p.ack(45201, 16.9) == [] and lst.accept() is not None      # 2 + 15 >= 16.9
    p.syn(45203, 17.0)
    p.syn(45204, 17.5)                                # evicts 45202, overflow at 17.5
    assert [s.flags for s in p.ack(45202, 33.0)] == [RST]             # 17.5 < 33 - 15


def test_cachelimit_evicts_in_own_bucket_or_answers_statelessly():
    p = Peer(sysctls=["net.inet.tcp.syncache.cachelimit=2"])
    lst = p.st.listen(80, 10)
    p.syn(46000, 0.0)
    p.syn(46001, 0.1)
    out = p.syn(46002, 0.2)
    assert [s.flags for s in out] == [SYN | ACK]
    assert p.st.personality.syncache.count == 2 and p.c["FreeBSDSyncacheCacheOverflow"] == 1
    assert p.st.personality.syncache.lookup((S, 80, C, 46002)) is None          # answered with a cookie only
    q = Peer(sysctls=["net.inet.tcp.syncache.cachelimit=2", "net.inet.tcp.syncookies=0"])
    q.st.listen(80, 10)
    q.syn(46000, 0.0)
    q.syn(46001, 0.1)
    assert q.syn(46002, 0.2) == []
    assert lst.queue_lengths()["syn"] == 2


def test_syncookies_only_keeps_no_state():
    p = Peer(sysctls=["net.inet.tcp.syncookies_only=1"])
    lst = p.st.listen(80, 10)
    p.syn(46100, 0.0)
    assert lst.queue_lengths()["syn"] == 0
    assert p.ack(46100, 0.5) == []
    conn = lst.accept()
    assert conn.path == "cookie" and conn.ts_ok is True


def test_freebsd14_drops_completing_ack_without_negotiated_ts_freebsd9_does_not():
    p = Peer("freebsd-14")
    lst = p.st.listen(80, 10)
    p.syn(46200, 0.0)
    assert p.ack(46200, 0.1, ts=False) == [] and lst.accept() is None
    assert lst.queue_lengths()["syn"] == 1
    q = Peer("freebsd-9")
    lst9 = q.st.listen(80, 10)
    q.syn(46200, 0.0)
    q.ack(46200, 0.1, ts=False)
    assert lst9.accept() is not None


# ---- views ------------------------------------------------------------------------------

def test_netstat_lan_and_syncache_stats():
    p = Peer(sysctls=["kern.ipc.soacceptqueue=4096"])
    p.st.listen(80, 3000)
    p.st.listen(8080, 10, addr=S, accept_filter="httpready")
    p.handshake(47000)
    p.handshake(47001)
    p.syn(47002, 0.5)
    p.st.receive_segment(Segment(C, S, 47100, 8080, seq=5, flags=SYN,
                                 options=TcpOptions(mss=1460)), 0.6)
    sa = p.st.take_output()[0]
    p.st.receive_segment(Segment(C, S, 47100, 8080, seq=6, ack=sa.seq + 1, flags=ACK), 0.7)
    assert netstat_lan(p.st) == (
        "Current listen queue sizes (qlen/incqlen/maxqlen)\n"
        f"Proto {'Listen':<32} Local Address\n"
        f"tcp4  {'2/0/3000':<32} *.80\n"
        f"tcp4  {'0/1/10':<32} 198.18.0.1.8080\n")
    old = Peer("freebsd-9")                  # the printf-era layout: 14 wide
    old.st.listen(80, 100000)                # clamped to kern.ipc.soacceptqueue (128)
    assert netstat_lan(old.st).splitlines()[1:] == ["Proto Listen         Local Address",
                                                    "tcp4  0/0/128        *.80"]
    text = syncache_stats(p.st)
    assert "\t4 syncache entries added\n" in text
    assert "\t\t3 completed\n" in text and "\t4 cookies sent\n" in text
    assert "\t0 cookies received\n" in text and "\t0 listen queue overflows\n" in text


# ---- accept filters on the real stack ---------------------------------------------------

def test_httpready_holds_a_split_get_in_incqlen_until_the_blank_line():
    p = Peer()
    lst = p.st.listen(80, 5, accept_filter="httpready")
    p.handshake(48000)
    assert lst.queue_lengths()["incqlen"] == 1 and lst.accept() is None
    req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    off = 0
    for piece in (req[:3], req[3:17], req[17:-1]):
        p.data(48000, 0.1 + off / 1000, piece, off)
        off += len(piece)
        assert lst.queue_lengths()["qlen"] == 0 and lst.queue_lengths()["incqlen"] == 1
    p.data(48000, 0.5, req[-1:], off)
    assert lst.queue_lengths()["qlen"] == 1 and lst.queue_lengths()["incqlen"] == 0
    assert lst in p.st.dirty
    conn = lst.accept()
    assert conn.recv(1000, 0.6) == req
    assert type(conn).__name__ == "Connection"           # hold hook removed


def test_httpready_head_held_post_passes_at_once():
    p = Peer()
    lst = p.st.listen(80, 5, accept_filter="httpready")
    p.handshake(48100)
    p.data(48100, 0.1, b"HEAD / HTTP/1.0\r\n", 0)
    assert lst.accept() is None
    p.data(48100, 0.2, b"\r\n", 17)
    assert lst.accept() is not None
    p.handshake(48101)
    p.data(48101, 0.3, b"POST /f HTTP/1.1\r\nContent-Length: 100\r\n", 0)
    assert lst.accept() is not None


def test_httpready_http09_non_http_and_eof():
    p = Peer()
    lst = p.st.listen(80, 5, accept_filter="httpready")
    p.handshake(48200)
    p.data(48200, 0.1, b"GET /old", 0)
    assert lst.accept() is None
    p.data(48200, 0.2, b"\r\n", 8)
    assert lst.accept() is not None                      # HTTP/0.9: end of request line
    p.handshake(48201)
    p.data(48201, 0.3, b"\x16\x03\x01\x02\x00", 0)      # a TLS ClientHello: not HTTP
    assert lst.accept() is not None
    p.handshake(48202)
    p.data(48202, 0.4, b"GET / HTTP/1.1\r\n", 0)
    assert lst.accept() is None
    p.data(48202, 0.5, b"", 16, flags=ACK | FIN)        # EOF releases it
    conn = lst.accept()
    assert conn is not None and conn.state == "CLOSE-WAIT"


def test_dataready_releases_on_first_byte_or_fin():
    p = Peer()
    lst = p.st.listen(80, 5, accept_filter="dataready")
    p.handshake(48300)
    assert lst.accept() is None
    p.data(48300, 0.1, b"x", 0)
    assert lst.accept() is not None
    p.handshake(48301)
    p.data(48301, 0.2, b"", 0, flags=ACK | FIN)
    assert lst.accept() is not None
    p.handshake(48302, data=b"early", flags=ACK | PSH)   # data on the completing ACK
    assert lst.accept().recv(10, 0.3) == b"early"


def test_held_connections_do_not_count_against_qlen_and_oldest_is_aborted():
    p = Peer()
    lst = p.st.listen(80, 1, accept_filter="dataready")
    for i in range(2):
        assert p.handshake(48400 + i, t=i * 0.1) == []
    assert lst.queue_lengths()["incqlen"] == 2            # incqlen may reach qlimit + 1
    out = p.handshake(48402, t=0.5)
    assert [(s.flags & RST, s.dport) for s in out] == [(RST, 48400)]
    assert lst.queue_lengths()["incqlen"] == 2 and p.c["FreeBSDListenDrops"] == 0


def test_reset_while_held_leaves_the_incomplete_queue():
    p = Peer()
    lst = p.st.listen(80, 5, accept_filter="httpready")
    p.handshake(48500)
    sa = p.synack[48500]
    p.st.receive_segment(Segment(C, S, 48500, 80, seq=sa.ack, flags=RST), 0.2)
    assert lst.queue_lengths()["incqlen"] == 0 and lst.accept() is None


def test_close_resets_queued_children_and_entries_keep_retransmitting():
    p = Peer("freebsd-14")
    lst = p.st.listen(80, 5)
    p.handshake(48600)
    p.syn(48601, 0.0)
    lst.close(0.5)
    out = p.out()
    assert [(s.flags & RST, s.dport) for s in out] == [(RST, 48600)]
    (sa,) = p.timers(1.0)                      # syncache_timer does not check the listener
    assert sa.flags == SYN | ACK and sa.dport == 48601
    assert [s.flags for s in p.ack(48601, 1.1)] == [RST]      # no listener any more


def test_per_listener_synack_retries_limit():
    p = Peer("freebsd-14")
    lst = p.st.listen(80, 5, synack_retries=1)
    p.syn(48700, 0.0)
    assert len(p.timers(1.0)) == 1
    assert p.st.next_deadline() == 3.0
    assert p.timers(3.0) == [] and lst.queue_lengths()["syn"] == 0


def test_freebsd14_syncache_pause_cookie_only_then_backoff():
    p = Peer("freebsd-14", ["net.inet.tcp.syncache.hashsize=1",
                            "net.inet.tcp.syncache.bucketlimit=2"])
    lst = p.st.listen(80, 10)
    for i in range(3):
        p.syn(49000 + i, i * 0.1)
    sc = p.st.personality.syncache
    (line,) = kernel_lines(p)
    assert line == ("TCP syncache overflow detected; using syncookies for the next 15 seconds "
                    "(last SYN: TCP: [198.18.0.2]:49002 to [198.18.0.1]:80)")
    assert [s.flags for s in p.syn(49010, 1.0)] == [SYN | ACK]
    assert sc.count == 2 and sc.lookup((S, 80, C, 49010)) is None      # stateless while paused
    assert p.timers(1.2) == [] and sc.count == 0                      # due entries dropped
    assert p.ack(49010, 2.0) == [] and lst.accept().path == "cookie"
    assert p.ack(49000, 2.1) == [] and lst.accept().path == "cookie"  # evicted entry: cookie ok
    assert p.c["FreeBSDSyncacheBucketOverflow"] == 1
    p.syn(49020, 15.2)                                                # pause over at 0.2 + 15
    assert sc.count == 1
    p.syn(49021, 15.3)
    p.syn(49022, 16.0)                                                # renewed attack: doubled
    assert kernel_lines(p)[-1].startswith(
        "TCP syncache overflow detected; using syncookies for the next 30 seconds")
    assert sc.is_paused(45.99) and not sc.is_paused(46.0)


def test_freebsd9_has_no_pause():
    p = Peer("freebsd-9", ["net.inet.tcp.syncache.hashsize=1",
                           "net.inet.tcp.syncache.bucketlimit=2"])
    p.st.listen(80, 10)
    for i in range(4):
        p.syn(49100 + i, i * 0.1)
    assert p.st.personality.syncache.count == 2 and kernel_lines(p) == []
    assert p.c["FreeBSDSyncacheBucketOverflow"] == 2
