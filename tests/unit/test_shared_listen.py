"""The listener state shared between shards (listen/shared.py): same rules as one process.

Two Stacks on one shared buffer stand for two shards (as shard processes do, each with its own
connection table); the race tests fork real processes on the memfd + fcntl lock the shards use.
"""
import mmap
import multiprocessing
import os
import time

import pytest

from tuntcp import mib
from tuntcp.host.encode import SegmentRecorder
from tuntcp.host.stack import Stack
from tuntcp.listen.shared import LocalShare, MemShare, MemShares, mem_size
from tuntcp.profiles import get_profile
from tuntcp.shell.shards import RecordLock, attach_shares, shared_memfd
from tuntcp.wire.segment import ACK, SYN

from test_listen_linux import PORT, ack_of, syn


def _mem(shard=0, nshards=3):
    fd = shared_memfd()
    return fd, _view(fd, shard, nshards)


def _view(fd, shard, nshards=3):
    return MemShares(memoryview(mmap.mmap(fd, mem_size())), RecordLock(fd), shard, nshards)


@pytest.mark.parametrize("backlog", [0, 1, 5])
def test_local_and_shared_admit_backlog_plus_one(backlog):
    fd, shares = _mem()
    try:
        for sh in (LocalShare(), shares.attach(0, PORT)):
            got = [sh.admit_child(backlog) for _ in range(backlog + 3)]
            assert got == [True] * (backlog + 1) + [False] * 2      # sk_acceptq_is_full: '>'
            sh.child_removed()
            assert sh.admit_child(backlog) and not sh.admit_child(backlog)
    finally:
        os.close(fd)


def test_warn_once_and_overflow_stamp_are_the_listeners():
    fd, shares = _mem()
    try:
        a, b = shares.attach(0, PORT), _view(fd, 1).attach(0, PORT)   # two shards, one listener
        assert a.warn_once() and not b.warn_once() and not a.warn_once()
        assert b.last_overflow is None
        a.stamp_overflow(100.0)
        b.stamp_overflow(100.5)                 # within a second: the stamp stays (tcp_synq_overflow)
        assert a.last_overflow == b.last_overflow == 100.0
        b.stamp_overflow(101.5)
        assert a.last_overflow == 101.5
        a.req_added(); b.req_added(); b.req_aged()
        assert a.counts() == b.counts() == (2, 1, 0)
        other = shares.attach(0, PORT + 1)      # another listener: its own slot
        assert other.counts() == (0, 0, 0) and other.warn_once()
        # every shard closes, then listens again: a new socket, nothing carried over
        shares.detach(a); _view(fd, 1).detach(b)
        c = shares.attach(0, PORT)
        assert c.counts() == (0, 0, 0) and c.last_overflow is None and c.warn_once()
    finally:
        os.close(fd)


def _slow_reads():
    """Widen the window between reading the count and adding to it (1 ms), so that two racers
    overlap there: only the lock keeps the second one out."""
    read = MemShare.counts

    def slow_counts(self):
        v = read(self)
        time.sleep(0.001)
        return v
    MemShare.counts = slow_counts


def _racer(fd, shard, backlog, rounds, go, done, out):
    _slow_reads()
    sh = _view(fd, shard).attach(0, PORT)
    won = 0
    for r in range(1, rounds + 1):
        while go.value != r:                 # spin: both racers leave within microseconds
            pass
        won += sh.admit_child(backlog)
        with done.get_lock():
            done.value += 1
    out.put(won)


@pytest.mark.parametrize("backlog", [0, 3])
def test_two_processes_race_for_the_last_slot(backlog):
    fd, shares = _mem()
    ctx = multiprocessing.get_context("fork")
    rounds = 100
    try:
        sh = shares.attach(0, PORT)
        go, done, out = ctx.Value("i", 0, lock=False), ctx.Value("i", 0), ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(fd, k, backlog, rounds, go, done, out))
                 for k in (1, 2)]
        for p in procs:
            p.start()
        over = 0
        for r in range(1, rounds + 1):
            # empty the queue (every shard's column) and fill all but the last slot
            for k in range(3):
                v = _view(fd, k).attach(0, PORT)
                v.child_removed(mmap_col(v))
            for _ in range(backlog):
                assert sh.admit_child(backlog)
            go.value = r                      # the racers go for the last slot
            while done.value != 2 * r:
                time.sleep(0.0005)
            over += sh.acceptq != backlog + 1
        wins = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert over == 0 and sum(wins) == rounds   # exactly one took it: backlog N holds N+1
    finally:
        os.close(fd)


def mmap_col(share):
    """What one shard's column holds in the accept queue."""
    import struct
    return struct.unpack_from("<qqq", share.buf, share.col)[2]


def _racer_many(fd, shard, backlog, n, out):
    _slow_reads()
    sh = _view(fd, shard).attach(0, PORT)
    out.put(sum(sh.admit_child(backlog) for _ in range(n)))


def test_many_tries_from_two_processes_admit_exactly_backlog_plus_one():
    fd, _ = _mem()
    ctx = multiprocessing.get_context("fork")
    try:
        out = ctx.Queue()
        procs = [ctx.Process(target=_racer_many, args=(fd, k, 50, 100, out)) for k in (1, 2)]
        for p in procs:
            p.start()
        total = sum(out.get(timeout=30) for _ in procs)
        for p in procs:
            p.join(timeout=30)
        assert total == 51
    finally:
        os.close(fd)


# ---- two Linux listeners (two shards) on one shared listener state ----------------------------

def _shards(profile="linux-5.10", sysctls=(), backlog=2, n=2):
    fd = shared_memfd()
    stacks = []
    for k in range(n):
        st = Stack(get_profile(profile, list(sysctls)), addrs=set(), secret=b"0123456789abcdef",
                   log=None, encoder=SegmentRecorder())
        attach_shares(st, fd, k, n)
        st.events = []
        st._log = lambda kind, _e=st.events, **f: _e.append((kind, f))
        st.lst = st.listen(PORT, backlog)
        stacks.append(st)
    return fd, stacks


def _handshake(st, sport, now):
    st.receive_segment(syn(sport), now)
    (sa,) = st.take_output()
    st.receive_segment(ack_of(sa), now)
    return st.take_output()


def test_two_shards_admit_backlog_plus_one_and_count_the_overflow_once():
    fd, (a, b) = _shards(backlog=2)
    try:
        _handshake(a, 40000, 0.0)
        _handshake(b, 40001, 0.0)
        a.receive_segment(syn(40002), 0.0)
        b.receive_segment(syn(40003), 0.0)
        (sa_a,), (sa_b,) = a.take_output(), b.take_output()
        assert sa_a.flags == sa_b.flags == SYN | ACK
        a.receive_segment(ack_of(sa_a), 0.0)      # the 3rd child = backlog + 1
        assert a.lst.queue_lengths()["accept"] == b.lst.queue_lengths()["accept"] == 3
        assert len(a.lst.accept_q) == 2 and len(b.lst.accept_q) == 1
        # the 4th completing ACK, on shard b, meets the listener's full queue
        before = b.counters.snapshot()
        b.receive_segment(ack_of(sa_b), 0.0)
        assert b.counters.delta(before).get(mib.TcpExtListenOverflows) == 1
        assert a.counters[mib.TcpExtListenOverflows] == 0 and len(b.lst.accept_q) == 1
        # accept() on one shard frees a slot for the other
        assert a.lst.accept() is not None
        assert a.lst.queue_lengths()["accept"] == 2
    finally:
        os.close(fd)


def test_syn_flood_warned_once_across_shards_and_cookies_checked_on_either():
    # linux-5.10: SYN queue full at qlen >= backlog; both shards' requests count
    fd, (a, b) = _shards(backlog=2)
    try:
        a.receive_segment(syn(41000), 1.0)
        b.receive_segment(syn(41001), 1.0)
        assert a.lst.queue_lengths()["syn"] == 2 and a.take_output() and b.take_output()
        a.receive_segment(syn(41002), 1.0)       # full: a cookie from shard a, flood warned
        (cookie_sa,) = a.take_output()
        b.receive_segment(syn(41003), 1.5)       # full for shard b too: a cookie, no 2nd warning
        (b_sa,) = b.take_output()
        lines = [f for s in (a, b) for k, f in s.events if k == "kernel_log"]
        assert len(lines) == 1 and "Possible SYN flooding" in lines[0]["line"]
        assert a.counters[mib.TcpExtSyncookiesSent] == b.counters[mib.TcpExtSyncookiesSent] == 1
        assert a.lst.last_overflow == b.lst.last_overflow == 1.0
        # shard b never overflowed itself within 120 s of now, but the listener did: its cookie ACK
        # is validated (tcp_synq_no_recent_overflow reads the listener's stamp)
        b.receive_segment(ack_of(b_sa), 100.0)
        assert b.counters[mib.TcpExtSyncookiesRecv] == 1
    finally:
        os.close(fd)


def test_closing_every_shard_resets_the_listener():
    fd, (a, b) = _shards(backlog=2)
    try:
        a.receive_segment(syn(42000), 0.0)
        _handshake(b, 42001, 0.0)
        assert a.lst.queue_lengths()["syn"] == 1 and a.lst.queue_lengths()["accept"] == 1
        a.lst.close(1.0)
        assert b.lst.queue_lengths()["syn"] == 0      # a's request went with a's socket
        b.lst.close(1.0)
        a2 = a.listen(PORT, 2)
        assert a2.queue_lengths()["accept"] == 0 and not a2.synflood_warned
    finally:
        os.close(fd)
