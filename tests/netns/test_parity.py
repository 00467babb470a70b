"""Differential parity: the same scripted clients against the host kernel's own listener and
against tuntcp (profile closest to the running kernel) must give the same counters and the same
per-client fates. Each test also pins what the kernel did, so a script that stopped exercising
its case (both sides quietly doing nothing) fails too. See tuntcp/harness/parity.py."""
import dataclasses

import pytest
import trio

from tuntcp.harness.netns import probe
from tuntcp.scenarios.parity import Scenario, closest_profile, compare, run_parity

pytestmark = pytest.mark.netns

SYNCOOKIES = "net.ipv4.tcp_syncookies"
ABORT = "net.ipv4.tcp_abort_on_overflow"


def need_netns():
    reason = probe()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def family(request):
    """Every parity script runs once per address family: the kernel's IPv6 listener and
    tuntcp's cookie_v6/tcp_v6 paths must agree as the IPv4 ones do."""
    return request.param


async def parity_in(family, sc):
    sc = dataclasses.replace(sc, family=family)
    need_netns()
    with trio.fail_after(30):
        kernel, ours = await run_parity(sc)
    diffs = compare(kernel, ours)
    assert diffs == [], f"{sc.name}: tuntcp ({closest_profile()}) differs from the kernel:\n" \
                        + "\n".join(diffs) + "\n" + kernel.table() + "\n" + ours.table()
    return kernel


def fates(outcome, attr):
    return [getattr(c, attr) for c in outcome.clients]


def test_closest_profile_picks_the_newest_not_above_the_release():
    assert closest_profile("6.18.44-fc") == "linux-6.18"
    assert closest_profile("6.17.1") == "linux-6.12"
    assert closest_profile("6.12.0") == "linux-6.12"
    assert closest_profile("6.6.30") == "linux-6.1"
    assert closest_profile("5.15.0-91-generic") == "linux-5.10"
    assert closest_profile("3.10.0-1160.el7.x86_64") == "linux-3.10"
    with pytest.raises(ValueError):
        closest_profile("2.6.32")


@pytest.mark.parametrize("backlog", [2, 0])
async def test_backlog_n_admits_n_plus_one(backlog, family):
    """No cookies, app asleep: N+1 handshakes complete, the next SYN is dropped (overflow)."""
    n = backlog + 1
    k = await parity_in(family, Scenario(f"backlog {backlog}", backlog, [("connect", n + 1), ("accept", None)],
                              {SYNCOOKIES: 0}))
    assert fates(k, "connected") == [True] * n + [False]
    assert fates(k, "accepted") == [True] * n + [False]
    assert k.counters["TcpExtListenOverflows"] == 1 and k.counters["TcpExtListenDrops"] == 1
    assert k.counters["TcpPassiveOpens"] == n


async def test_cookies_on_syn_queue_overflow(family):
    """Three unanswered SYNs fill a backlog-2 SYN queue; real clients then get cookies, and the
    accept queue still caps them at 3 (the 4th SYN is dropped before any cookie is made)."""
    k = await parity_in(family, Scenario("cookies on overflow", 2,
                              [("syn_flood", 3), ("connect", 4), ("accept", None)],
                              {SYNCOOKIES: 1}))
    assert fates(k, "cookie") == [True, True, True, False]
    assert fates(k, "accepted") == [True, True, True, False]
    assert k.counters["TcpExtSyncookiesSent"] == 3 and k.counters["TcpExtSyncookiesRecv"] == 3
    assert k.counters["TcpExtTCPReqQFullDoCookies"] == 4
    assert k.counters["TcpExtListenOverflows"] == 1


@pytest.mark.parametrize("timestamps", [1, 0])
async def test_cookies_forced(timestamps, family):
    """tcp_syncookies=2: every SYN gets a cookie; options survive only with timestamps; an
    accept() makes room for one more."""
    k = await parity_in(family, Scenario(f"forced cookies ts={timestamps}", 1,
                              [("connect", 3), ("accept", 1), ("connect", 1), ("accept", None)],
                              {SYNCOOKIES: 2, "net.ipv4.tcp_timestamps": timestamps}))
    assert fates(k, "connected") == [True, True, False, True]
    assert fates(k, "cookie") == [True, True, False, True]
    assert fates(k, "wscale_ok") == [bool(timestamps), bool(timestamps), False, bool(timestamps)]
    assert fates(k, "sack") == fates(k, "wscale_ok")
    assert k.counters["TcpExtSyncookiesRecv"] == 3 and k.counters["TcpExtListenOverflows"] == 1


async def test_failed_cookies_after_an_overflow(family):
    """Bare ACKs that match nothing count as failed cookies only while an overflow is recent."""
    k = await parity_in(family, Scenario("failed cookies", 2,
                              [("bogus_ack", 1), ("syn_flood", 4), ("bogus_ack", 2),
                               ("connect", 1), ("accept", None)], {SYNCOOKIES: 1}))
    assert k.counters["TcpExtSyncookiesFailed"] == 2
    assert k.counters["TcpExtSyncookiesSent"] == 2 and k.counters["TcpExtSyncookiesRecv"] == 1
    assert fates(k, "accepted") == [True]


async def test_abort_on_overflow_resets_the_third_ack(family):
    """Backlog 1 holding one child; two clients whose SYNs both fit, ACKs held back: the second
    completing ACK overflows the accept queue and tcp_abort_on_overflow=1 answers with a RST."""
    k = await parity_in(family, Scenario("abort_on_overflow=1", 1,
                              [("connect", 1), ("connect_held", 2), ("release",),
                               ("accept", None)], {SYNCOOKIES: 1, ABORT: 1}))
    assert fates(k, "cookie") == [False, False, False]
    assert fates(k, "accepted") == [True, True, False]
    assert fates(k, "reset") == [False, False, True]
    assert k.counters["TcpExtEmbryonicRsts"] == 1 and k.counters["TcpExtListenOverflows"] == 1


async def test_without_abort_the_overflowed_client_stalls_then_gets_in(family):
    """Same script with tcp_abort_on_overflow=0: no RST, the request sock stays (acked); once
    accept() made room, the client's retransmitted data completes the handshake."""
    k = await parity_in(family, Scenario("abort_on_overflow=0", 1,
                              [("connect", 1), ("connect_held", 2), ("release",),
                               ("accept", None), ("wait", 0.8), ("accept", None)],
                              {SYNCOOKIES: 1, ABORT: 0}))
    assert fates(k, "reset") == [False, False, False]
    assert fates(k, "accepted") == [True, True, True]
    assert k.counters["TcpExtEmbryonicRsts"] == 0 and k.counters["TcpExtListenOverflows"] >= 1
    assert k.counters["TcpPassiveOpens"] == 3


async def test_backlog_0_cookie_ack_overflow_is_silent_even_with_abort(family):
    """Backlog 0, two clients whose SYNs both arrive before any ACK: the second SYN finds the
    SYN queue full (qlen 1 > 0) and gets a cookie; its ACK then overflows the accept queue and
    is dropped with no state and no RST, tcp_abort_on_overflow=1 notwithstanding."""
    k = await parity_in(family, Scenario("backlog 0 abort", 0,
                              [("connect_held", 2), ("release",), ("accept", None)],
                              {SYNCOOKIES: 1, ABORT: 1}))
    assert fates(k, "cookie") == [False, True]
    assert fates(k, "accepted") == [True, False]
    assert fates(k, "reset") == [False, False]
    assert k.counters["TcpExtSyncookiesRecv"] == 1 and k.counters["TcpExtEmbryonicRsts"] == 0
    assert k.counters["TcpExtListenOverflows"] == 1


async def test_syn_queue_full_without_cookies_drops_the_syn(family):
    k = await parity_in(family, Scenario("synq full, no cookies", 2,
                              [("syn_flood", 3), ("connect", 1), ("accept", None)],
                              {SYNCOOKIES: 0}))
    assert fates(k, "connected") == [False]
    assert k.counters["TcpExtTCPReqQFullDrop"] == 1 and k.counters["TcpExtListenDrops"] == 1
    assert k.counters["TcpExtListenOverflows"] == 0


async def test_three_quarter_rule_drops_unproven_peers(family):
    """tcp_syncookies=0: once fewer than max_syn_backlog/4 request slots are left, a SYN from
    a peer with no history is dropped although the listener's own SYN queue has room."""
    k = await parity_in(family, Scenario("3/4 of tcp_max_syn_backlog", 64,
                              [("syn_flood", 7), ("connect", 1), ("accept", None)],
                              {SYNCOOKIES: 0, "net.ipv4.tcp_max_syn_backlog": 8}))
    assert fates(k, "connected") == [False]
    assert k.counters["TcpExtListenDrops"] == 1
    assert k.counters["TcpExtTCPReqQFullDrop"] == 0 and k.counters["TcpExtListenOverflows"] == 0


async def test_defer_accept_holds_a_bare_ack_until_data(family):
    k = await parity_in(family, Scenario("TCP_DEFER_ACCEPT", 4,
                              [("connect", 1), ("accept", None), ("send", 0), ("accept", None)],
                              {SYNCOOKIES: 1}, defer_accept=1))
    assert fates(k, "accepted") == [True]
    assert k.counters["TcpExtTCPDeferAcceptDrop"] == 1 and k.counters["TcpPassiveOpens"] == 1


async def test_synack_schedule_matches_the_kernel():
    """tcp_synack_retries=2 and a peer that never answers: SYN-ACKs at 0, 1, 3 s and the
    request sock gone at 7 s, on the kernel and on tuntcp (run side by side, ±150 ms)."""
    from tuntcp.scenarios.parity import synack_schedules
    need_netns()
    with trio.fail_after(20):
        res = await synack_schedules(retries=2, expiry=7.0)
    for side, r in res.items():
        assert len(r.times) == 3, (side, r.times)
        assert all(abs(got - want) <= 0.15 for got, want in zip(r.times, [0, 1, 3])), (side, r)
        assert (r.held_before, r.held_after) == (1, 0), (side, r)
    assert res["kernel"].counters == res["tuntcp"].counters, res
    assert res["kernel"].counters["TcpExtTCPSynRetrans"] == 2


async def test_listen_again_only_changes_the_backlog(family):
    k = await parity_in(family, Scenario("relisten", 0,
                              [("connect", 2), ("listen", 2), ("connect", 3), ("accept", None)],
                              {SYNCOOKIES: 0}))
    assert fates(k, "connected") == [True, False, True, True, False]
    assert fates(k, "accepted") == [True, False, True, True, False]
    assert k.counters["TcpExtListenOverflows"] == 2


async def test_closing_the_listener_resets_unaccepted_children(family):
    k = await parity_in(family, Scenario("close", 4,
                              [("connect", 3), ("accept", 1), ("close",)], {SYNCOOKIES: 1}))
    assert fates(k, "accepted") == [True, False, False]
    assert fates(k, "reset") == [False, True, True]


async def test_dropped_cookie_ack_is_revalidated_by_the_clients_retransmission(family):
    """Forced cookies, backlog 0: the second client's cookie ACK (with its byte) overflows and
    leaves no state; after accept() its retransmitted byte carries the same cookie, which is
    validated again and now gets in."""
    k = await parity_in(family, Scenario("cookie ack retransmitted", 0,
                              [("connect_held", 2), ("release",), ("accept", None),
                               ("wait", 0.8), ("accept", None)], {SYNCOOKIES: 2}))
    assert fates(k, "cookie") == [True, True]
    assert fates(k, "accepted") == [True, True]
    assert k.counters["TcpExtSyncookiesRecv"] == 3 and k.counters["TcpExtListenOverflows"] == 1
