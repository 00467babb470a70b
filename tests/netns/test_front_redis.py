"""redis-server (not ours) behind the modelled kernel, driven by redis-benchmark (not ours).

The server runs on the lab namespace's loopback; the front relays each connection the modelled
linux-5.4 listener accepts. With tcp_syncookies=2 every connection is a cookie connection, and
with SO_RCVBUF 102400 on the listener the pre-909172a14974 derivation tells the client wscale 1
while the endpoint scales by 7: redis-benchmark's clients see 1/64 of the window and big SETs
crawl; with the fixed derivation they do not.
"""
import pytest
import trio

from tuntcp import mib
from front_common import front_lab, need, ns_tool, probe_connection, redis_csv

pytestmark = pytest.mark.netns

BACKEND = ("127.0.0.1", 16379)
REDIS = ["redis-server", "--port", str(BACKEND[1]), "--bind", BACKEND[0], "--save", "",
         "--appendonly", "no", "--logfile", "", "--loglevel", "warning"]


def bench(lab, *args):
    return ["redis-benchmark", "-h", lab.endpoint_addr, "-p", "6379", "--csv", *args]


async def test_redis_many_clients_and_reconnect_storm(netns_available):
    need("redis-server", "redis-benchmark")
    async with front_lab(REDIS, BACKEND, backlog=128) as (lab, ep, front):
        many = redis_csv(await ns_tool(lab, bench(lab, "-c", "200", "-n", "20000", "-t", "set,get")))
        storm = redis_csv(await ns_tool(lab, bench(lab, "-c", "50", "-n", "3000", "-k", "0",
                                                    "-t", "ping_inline")))
        await trio.sleep(0.5)   # the last connections' FINs
        st, c = front.stats, ep.stack.counters
    print("many clients:", many, "reconnect storm:", storm, st)
    assert many["SET"]["rps"] > 0 and many["GET"]["rps"] > 0
    assert storm["PING_INLINE"]["rps"] > 0
    # -k 0: one connection per request, every one through the modelled accept path
    assert st.accepted >= 200 + 3000 and st.connected == st.accepted
    assert st.refused == st.client_resets == st.backend_resets == 0
    assert c[mib.TcpPassiveOpens] == st.accepted
    assert st.closed == st.accepted
    assert st.bytes_up > 0 and st.bytes_down > 0


async def cookie_run(fixed: bool):
    overrides = ["net.ipv4.tcp_syncookies=2", f"model.cookie_wscale_clamp={str(fixed).lower()}"]
    async with front_lab(REDIS, BACKEND, overrides=overrides, rcvbuf=102400) as (lab, ep, front):
        sock, client, server = await probe_connection(lab, ep, b"PING\r\n")
        ss = await ns_tool(lab, ["ss", "-tni", "dst", f"{lab.endpoint_addr}:6379"])
        with sock:
            # 64 KiB values: each SET needs ~64 of the buggy client's 1 KiB windows, and 1-2
            # round trips with the fixed derivation
            result = redis_csv(await ns_tool(lab, bench(lab, "-c", "10", "-n", "200", "-d", "65536",
                                                        "-t", "set")))
        cookies = ep.stack.counters[mib.TcpExtSyncookiesRecv]
    return client, server, ss, result["SET"], cookies, front.stats


async def test_redis_cookie_wscale_split_buggy_vs_fixed(netns_available):
    need("redis-server", "redis-benchmark", "ss")
    b_client, b_server, b_ss, b_set, b_cookies, b_st = await cookie_run(fixed=False)
    f_client, f_server, f_ss, f_set, f_cookies, f_st = await cookie_run(fixed=True)
    print(f"buggy: {b_set} cookies {b_cookies}\n{b_ss}\nfixed: {f_set} cookies {f_cookies}\n{f_ss}")
    # every connection (the probe and the benchmark's 10) went through a cookie
    assert b_cookies >= 11 and f_cookies >= 11
    # the split, seen from the kernel client (TCP_INFO and ss) and from the endpoint
    assert b_client["snd_wscale"] == 1 and b_server["rcv_wscale"] == 7
    assert f_client["snd_wscale"] == 1 and f_server["rcv_wscale"] == 1
    # ss in the namespace: the client applies the peer's 1 (the first number) in both runs,
    # and sees a window of 1/64 of what the fixed endpoint offers
    assert "wscale:1," in b_ss and "wscale:1," in f_ss
    assert f"snd_wnd:{b_client['snd_wnd']}" in b_ss and f"snd_wnd:{f_client['snd_wnd']}" in f_ss
    assert b_client["snd_wnd"] <= 1578 and f_client["snd_wnd"] >= 32 * b_client["snd_wnd"]
    for st in (b_st, f_st):
        assert st.refused == st.client_resets == st.backend_resets == 0
    assert b_set["p50"] >= 3 * f_set["p50"], f"buggy SET p50 {b_set} vs fixed {f_set}"
    assert b_set["rps"] * 2 <= f_set["rps"]
