"""RTO estimator: RFC 6298 arithmetic in Linux's form (tcp_rtt_estimator, __tcp_set_rto)."""
import pytest

from tuntcp.core.rto import RtoEstimator


def test_initial_rto_is_one_second_and_backs_off_to_the_cap():
    r = RtoEstimator()
    assert r.srtt is None and r.rto == 1.0
    seen = []
    for _ in range(9):
        r.backoff()
        seen.append(r.rto)
    assert seen == [2, 4, 8, 16, 32, 64, 120, 120, 120]
    assert r.backoffs == 9
    r.reset_backoff()
    assert r.rto == 1.0 and r.backoffs == 0


def test_first_sample():
    r = RtoEstimator()
    r.sample(0.1)                 # srtt = R, rttvar = R/2, rto = R + 4 * R/2
    assert r.srtt == pytest.approx(0.1)
    assert r.rttvar == pytest.approx(0.05)
    assert r.rto == pytest.approx(0.3)


def test_floor_applies_to_variance_term_like_linux():
    r = RtoEstimator()
    r.sample(0.001)               # loopback: ss -ti shows rto:201
    assert r.rto == pytest.approx(0.201)
    for _ in range(50):
        r.sample(0.001)
    assert r.rto == pytest.approx(0.201, abs=1e-6)


def test_rising_rtt_uses_quarter_gain():
    r = RtoEstimator()
    r.sample(0.1)
    r.sample(0.5)                 # err = +0.4: srtt += 0.05, mdev += (0.4 - 0.05) / 4
    assert r.srtt == pytest.approx(0.15)
    assert r.rttvar == pytest.approx(0.05 + 0.35 / 4)
    assert r.rto == pytest.approx(0.15 + 4 * (0.05 + 0.35 / 4))


def test_falling_rtt_uses_reduced_gain():
    r = RtoEstimator()
    r.sample(1.0)                 # mdev 0.5
    r.sample(0.2)                 # err = -0.8: |err| - mdev = 0.3 > 0 -> gain 1/32
    assert r.srtt == pytest.approx(0.9)
    assert r.rttvar == pytest.approx(0.5 + 0.3 / 32)
    r2 = RtoEstimator()
    r2.sample(1.0)
    r2.sample(0.8)                # |err| = 0.2 < mdev: plain 1/4 decay
    assert r2.rttvar == pytest.approx(0.5 + (0.2 - 0.5) / 4)


def test_capped_at_rto_max():
    r = RtoEstimator(rto_max=5.0)
    r.sample(10.0)
    assert r.rto == 5.0


def test_fallback_only_without_sample():
    r = RtoEstimator()
    r.fallback()
    assert r.rto == 3.0
    r.sample(0.05)
    assert r.rto == pytest.approx(0.25)
    r.fallback()                  # a sample exists: no effect
    assert r.rto == pytest.approx(0.25)


def test_backoff_applies_to_measured_rto():
    r = RtoEstimator()
    r.sample(0.1)
    r.backoff()
    r.backoff()
    assert r.rto == pytest.approx(1.2)
    r.sample(0.1)                 # a sample alone does not clear backoff
    assert r.backoffs == 2


def test_bad_bounds_are_a_clear_error():
    with pytest.raises(ValueError, match="bad RTO bounds"):
        RtoEstimator(rto_min=1.0, rto_max=0.5)


def test_variance_term_holds_the_round_maximum_and_decays_per_round():
    """tcp_rtt_estimator: rttvar_us jumps to a new maximum at once, then moves a quarter of the
    way down to the round's largest 4 * mdev when the round ends."""
    r = RtoEstimator()
    r.sample(0.1)
    r.sample(0.5)                 # 4 * mdev = 0.55 > 0.2: var 0.55 at once
    assert r.var == pytest.approx(0.55)
    r.sample(0.1)                 # mdev 0.115625, 4 * mdev = 0.4625: var 0.55 - 0.0875 / 4
    assert r.rttvar == pytest.approx(0.115625)
    assert r.var == pytest.approx(0.528125)
    assert r.rto == pytest.approx(0.14375 + 0.528125)
    held = RtoEstimator()
    for m in (0.1, 0.5):
        held.sample(m)
    held.sample(0.1, round_end=False)   # same round: no decay yet
    assert held.var == pytest.approx(0.55)
    for _ in range(200):          # a steady path converges to srtt + the 200 ms floor
        r.sample(0.1)
    assert r.rto == pytest.approx(0.3, abs=1e-3)
