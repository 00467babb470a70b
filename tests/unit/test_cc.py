"""Congestion control in segments: Reno/NewReno (RFC 5681/6582) and CUBIC (RFC 9438, Linux)."""
import pytest

from tuntcp.core.cc import BETA, BETA_SCALE, CUBE_C, INFINITE_SSTHRESH, make_cc


def one_rtt(cc, now, rtt):
    """Every segment of the current window is ACKed, one ACK each, spread over one RTT."""
    w = cc.cwnd
    for i in range(w):
        cc.on_ack(1, now + rtt * (i + 1) / w, rtt)
    return now + rtt


@pytest.mark.parametrize("name", ["reno", "newreno", "cubic"])
def test_initial_window_and_slow_start_doubles_per_rtt(name):
    cc = make_cc(name, 1460)
    assert cc.name == name
    assert (cc.cwnd, cc.ssthresh) == (10, INFINITE_SSTHRESH)
    assert cc.in_slow_start()
    now, seen = 0.0, []
    for _ in range(4):
        now = one_rtt(cc, now, 0.1)
        seen.append(cc.cwnd)
    assert seen == [20, 40, 80, 160]


def test_slow_start_stops_at_ssthresh_and_carries_leftover():
    cc = make_cc("reno", 1460)
    cc.ssthresh = 12
    cc.on_ack(5, 0.0)             # 10 -> 12, 3 ACKed segments left for congestion avoidance
    assert cc.cwnd == 12 and not cc.in_slow_start()
    assert cc.cwnd_cnt == 3


def test_reno_congestion_avoidance_one_segment_per_rtt():
    cc = make_cc("reno", 1460)
    cc.ssthresh = 10
    now, seen = 0.0, []
    for _ in range(5):
        now = one_rtt(cc, now, 0.1)
        seen.append(cc.cwnd)
    assert seen == [11, 12, 13, 14, 15]


def test_app_limited_acks_do_not_grow_cwnd():
    cc = make_cc("reno", 1460)
    cc.on_ack(10, 0.0, cwnd_limited=False)
    assert cc.cwnd == 10


def test_reno_recovery_and_exit():
    cc = make_cc("newreno", 1460)
    cc.cwnd = 40
    cc.on_enter_recovery(1.0, inflight_segs=30)     # tcp_reno_ssthresh halves cwnd, not
    assert (cc.ssthresh, cc.cwnd) == (20, 20)       # FlightSize (RFC 5681 eq. 4)
    cc.on_ack(5, 1.1)                               # no growth during recovery
    assert cc.cwnd == 20
    cc.on_exit_recovery()
    assert cc.cwnd == 20 and not cc.in_slow_start()
    cc.cwnd = 3
    cc.on_enter_recovery(2.0, inflight_segs=3)
    assert cc.ssthresh == 2                         # floor of 2 segments


def test_reno_timeout_and_repeated_timeout_holds_ssthresh():
    cc = make_cc("reno", 1460)
    cc.cwnd = 50
    cc.on_timeout(inflight_segs=10)                 # app-limited: still cwnd / 2
    assert (cc.cwnd, cc.ssthresh) == (1, 25)
    cc.on_timeout(inflight_segs=1, repeat=True)
    assert (cc.cwnd, cc.ssthresh) == (1, 25)
    now = 0.0
    for _ in range(5):                              # 1, 2, 4, 8, 16, then capped at 25
        now = one_rtt(cc, now, 0.1)
    assert cc.cwnd == 25


def test_cubic_loss_uses_beta_and_fast_convergence():
    cc = make_cc("cubic", 1460)
    cc.cwnd = 100
    cc.on_enter_recovery(0.0, inflight_segs=100)
    assert cc.ssthresh == 100 * BETA // BETA_SCALE == 70
    assert cc.cwnd == 70 and cc.last_max_cwnd == 100
    cc.on_exit_recovery()
    cc.on_enter_recovery(1.0, inflight_segs=70)     # lost again below W_max: release faster
    assert cc.last_max_cwnd == 70 * (BETA_SCALE + BETA) // (2 * BETA_SCALE) == 59
    assert cc.ssthresh == 49


def test_cubic_timeout_forgets_wmax():
    cc = make_cc("cubic", 1460)
    cc.cwnd = 100
    cc.on_timeout(inflight_segs=100)
    assert (cc.cwnd, cc.ssthresh, cc.last_max_cwnd, cc.epoch_start) == (1, 70, 0, None)


def test_cubic_growth_follows_the_cubic_curve():
    """After a loss at W_max = 1000, cwnd follows W(t) = C (t - K)^3 + W_max (RFC 9438 eq. 1),
    K = cbrt(W_max (1 - beta) / C), concave up to K, plateau at W_max, convex after."""
    rtt = 0.1
    cc = make_cc("cubic", 1460)
    cc.cwnd = 1000
    cc.on_ack(0, 0.0, rtt)        # an RTT sample only: seeds delay_min
    cc.on_enter_recovery(0.0, 1000)
    cc.on_exit_recovery()
    assert cc.cwnd == 700
    beta = BETA / BETA_SCALE
    K = (1000 * (1 - beta) / CUBE_C) ** (1 / 3)      # ~9.1 s
    now, t0, trace = 0.0, None, []
    while now < 2 * K:
        if t0 is None:
            t0 = now
        now = one_rtt(cc, now, rtt)
        trace.append((now - t0, cc.cwnd))
    # Linux aims one delay_min ahead: compare with W(t + rtt) within a few segments.
    for t, w in trace:
        expect = CUBE_C * (t + rtt - K) ** 3 + 1000
        assert abs(w - expect) <= 0.02 * expect + 3, (t, w, expect)
    assert cc.k == pytest.approx(((1000 - 700) / CUBE_C) ** (1 / 3))   # integer ssthresh
    assert cc.k == pytest.approx(K, rel=0.01)
    incs = [b[1] - a[1] for a, b in zip(trace, trace[1:])]
    n = len(incs)
    early, mid, late = sum(incs[: n // 5]), sum(incs[2 * n // 5: 3 * n // 5]), sum(incs[-n // 5:])
    assert early > mid and late > mid                # concave then convex
    plateau = [w for t, w in trace if abs(t - K) < 0.5]
    assert all(abs(w - 1000) <= 5 for w in plateau)


def test_cubic_reno_friendly_region_on_short_rtt():
    """With a tiny RTT and small W_max the cubic curve is flat; the Reno estimate (W_est,
    Linux tcp_friendliness) keeps growth at least Reno-like."""
    cc = make_cc("cubic", 1460)
    cc.cwnd = 20
    cc.on_enter_recovery(0.0, 20)
    cc.on_exit_recovery()
    start = cc.cwnd
    now = 0.0
    for _ in range(40):
        now = one_rtt(cc, now, 0.01)                 # 400 ms total: cubic term ~ 0
    # RFC 9438 4.3: W_est grows alpha = 3 (1 - beta) / (1 + beta) ~ 0.53 segments per RTT.
    alpha = 3 * (1 - BETA / BETA_SCALE) / (1 + BETA / BETA_SCALE)
    assert 40 * alpha - 2 <= cc.cwnd - start <= 40 * alpha + 2
    assert now < 0.5


def test_cubic_cnt_cached_for_a_32nd_of_a_second():
    """bictcp_update: with cwnd unchanged, cnt is recomputed at most every 1/32 s; the ACKs
    in between still count toward the Reno estimate (ack_cnt). Hence at a 1 ms RTT
    growth falls below Reno's alpha (what 6.18 does; RFC 9438 would give ~21 here)."""
    cc = make_cc("cubic", 1000)
    cc.cwnd, cc.ssthresh = 7, 7
    cc.on_ack(1, 1.0)                   # first CA ACK: a new epoch, cnt computed
    assert (cc.ack_cnt, cc.last_time, cc.last_cwnd) == (1, 1.0, 7)
    cnt = cc.cnt
    for i in range(1, 14):
        cc.on_ack(1, 1.0 + 0.002 * i)   # within 31.25 ms: counted, cnt kept
    assert cc.ack_cnt == 14 and cc.cnt == cnt and cc.cwnd == 7
    cc.on_ack(1, 1.0 + 0.0315)          # past 1/32 s: the friendliness bound applies
    assert cc.cnt == 7 // (cc.tcp_cwnd - 7) < cnt
    short = make_cc("cubic", 1460)
    short.cwnd = 20
    short.on_enter_recovery(0.0, 20)
    short.on_exit_recovery()
    now = 0.0
    for _ in range(40):
        now = one_rtt(short, now, 0.001)
    assert short.cwnd - 14 == 17


def test_unknown_algorithm_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown congestion control 'bbr'"):
        make_cc("bbr", 1460)


def hystart_acks(cc, n, t, una, nxt, gap, rtt):
    """n ACKs of one segment each, `gap` seconds apart; the sender sends 2 per ACK."""
    for _ in range(n):
        t += gap
        una += 1
        nxt += 2
        cc.on_ack(1, t, rtt, True, snd_una=una, snd_nxt=nxt)
    return t, una, nxt


def test_hystart_ack_train_ends_slow_start():
    """hystart_update: ACKs no more than 2 ms apart for longer than (delay_min + 1 ms) / 2
    since the round started: ssthresh = cwnd."""
    cc = make_cc("cubic", 1460)
    cc.cwnd = 20
    # The round starts at the first ACK; 11 ACKs span 10 ms of train: not yet.
    t, una, nxt = hystart_acks(cc, 11, 0.0, 0, 20, 0.001, 0.020)
    assert cc.found is None and cc.in_slow_start()
    hystart_acks(cc, 1, t, una, nxt, 0.001, 0.020)                  # 11 ms > 10.5 ms
    assert cc.found == "train"
    assert cc.ssthresh == cc.cwnd == 31 and not cc.in_slow_start()


def test_hystart_delay_ends_slow_start():
    """A round whose minimum RTT (after 8 samples) exceeds delay_min + clamp(delay_min/8,
    4 ms, 16 ms) ends slow start; ACKs 3 ms apart never form a train."""
    cc = make_cc("cubic", 1460)
    cc.cwnd = 16
    t, una, nxt = hystart_acks(cc, 40, 0.0, 0, 16, 0.003, 0.020)
    assert cc.found is None and cc.in_slow_start()
    t, una, nxt = hystart_acks(cc, 60, t, una, nxt, 0.003, 0.0235)   # +3.5 ms < 4 ms: keep going
    assert cc.found is None and cc.in_slow_start()
    hystart_acks(cc, 200, t, una, nxt, 0.003, 0.0245)                 # +4.5 ms: out
    assert cc.found == "delay" and not cc.in_slow_start()


def test_hystart_needs_round_information_and_a_window_of_16():
    cc = make_cc("cubic", 1460)
    cc.cwnd = 20
    for i in range(30):                                 # no snd_una/snd_nxt: no HyStart
        cc.on_ack(1, i * 0.001, 0.020)
    assert cc.found is None and cc.in_slow_start()
    small = make_cc("cubic", 1460)                      # 10 -> 15: below hystart_low_window
    hystart_acks(small, 5, 0.0, 0, 10, 0.001, 0.5)
    assert small.found is None and small.cwnd == 15


def test_hystart_leaves_slow_start_near_the_bdp_on_a_bottleneck():
    """Toy link: 1 ms per segment bottleneck, 100 ms base RTT (BDP 100 segments). Without
    HyStart slow start runs on past 1000 segments; with it, it stops within 1.5 x BDP."""
    import heapq

    def run(hystart):
        cc = make_cc("cubic", 1448)
        una = nxt = 0
        last, sent, ev = 0.0, {}, []

        def send(now):
            nonlocal nxt, last
            while nxt - una < cc.cwnd:
                last = max(now + 0.101, last + 0.001)
                sent[nxt] = now
                heapq.heappush(ev, (last, nxt))
                nxt += 1
        send(0.0)
        while ev:
            t, seq = heapq.heappop(ev)
            if t > 1.5:
                break
            una = seq + 1
            kw = dict(snd_una=una, snd_nxt=nxt) if hystart else {}
            cc.on_ack(1, t, t - sent[seq], True, **kw)
            send(t)
        return cc

    assert run(False).cwnd > 1000 and run(False).in_slow_start()
    cc = run(True)
    assert cc.found == "delay" and 100 <= cc.ssthresh <= 150


@pytest.mark.parametrize("name", ["reno", "cubic"])
def test_cwnd_restart_after_idle(name):
    """tcp_cwnd_restart: one halving per RTO of idle beyond the first, floor at the initial
    window; ssthresh keeps 3/4 of the old cwnd (tcp_current_ssthresh)."""
    cc = make_cc(name, 1460)
    cc.cwnd, cc.ssthresh = 100, 50
    cc.cwnd_restart(idle=0.35, rto=0.2)     # 0.15 s beyond one RTO: one halving
    assert (cc.cwnd, cc.ssthresh) == (50, 75)
    cc.cwnd_restart(idle=5.0, rto=0.2)      # long idle: back to the initial window
    assert cc.cwnd == 10
    small = make_cc(name, 1460)
    small.cwnd = 4
    small.cwnd_restart(idle=5.0, rto=0.2)   # never raised by a restart
    assert small.cwnd == 4


def test_cubic_tx_start_shifts_the_epoch():
    cc = make_cc("cubic", 1460)
    cc.cwnd = 100
    cc.on_enter_recovery(0.0, 100)
    cc.on_exit_recovery()
    cc.on_ack(1, 1.0, 0.05)                 # epoch starts at t = 1.0
    assert cc.epoch_start == 1.0
    cc.on_tx_start(now=3.0, idle=1.5)       # idle 1.5 s: the curve resumes where it stopped
    assert cc.epoch_start == 2.5
    cc.on_tx_start(now=3.0, idle=10.0)      # never into the future
    assert cc.epoch_start == 3.0
    reno = make_cc("reno", 1460)
    reno.on_tx_start(3.0, 1.0)              # Reno has no epoch: nothing to do
    assert reno.cwnd == 10
