"""harness/plan/calibrate.py (pure): the client's capacity from a ramp, the ~70% open-loop cap,
common absolute rates for every design, and the measurement mode with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.plan import calibrate

REPO = Path(__file__).resolve().parent.parent


DesignCapacity = calibrate.DesignCapacity
Mode = calibrate.Mode
RampPoint = calibrate.RampPoint

# A ramp on a 2-CPU machine: the client keeps up to 40k, falls behind at 80k and says so.
RAMP = [RampPoint(20_000, 19_990), RampPoint(40_000, 39_950), RampPoint(80_000, 61_234, True)]
CLIENT_BOUND = [
    DesignCapacity("tokio-ws", 52_000, True),
    DesignCapacity("tokio-tpc", 58_000, True),
    DesignCapacity("epoll-tpc", 60_500, True),
]


def test_client_capacity_is_the_most_it_achieved_and_says_where_it_fell_behind():
    c = calibrate.client_capacity(RAMP)
    assert c.rate == 61_234
    assert not c.lower_bound  # the load generator said it was client-bound at 80k
    assert "80,000" in c.reason and "client-bound" in c.reason


def test_a_ramp_stopped_by_the_server_is_a_lower_bound():
    c = calibrate.client_capacity([RampPoint(10_000, 10_000), RampPoint(30_000, 21_000, False)])
    assert c.rate == 21_000 and c.lower_bound
    assert "at least" in c.reason and "server may have been the limit" in c.reason


def test_a_ramp_that_always_kept_up_is_a_lower_bound():
    c = calibrate.client_capacity([RampPoint(30_000, 29_900), RampPoint(10_000, 10_000)])
    assert c.rate == 29_900 and c.lower_bound
    assert [p.offered for p in c.points] == [10_000, 30_000]  # sorted
    assert "kept up" in c.reason


def test_no_ramp_no_capacity_no_cap():
    c = calibrate.client_capacity([])
    assert c.rate is None
    cap = calibrate.open_loop_cap(c)
    assert cap.rate is None and "no cap" in cap.reason
    assert cap.apply(1e9) == 1e9


def test_the_cap_is_70_percent_of_the_client_and_says_so():
    cap = calibrate.open_loop_cap(calibrate.client_capacity(RAMP))
    assert cap.rate is not None
    assert cap.rate <= 0.70 * 61_234
    assert cap.rate >= 0.69 * 61_234  # rounded down to 3 significant figures, not further
    assert "70%" in cap.reason and "61,234" in cap.reason
    assert cap.apply(1e6) == cap.rate and cap.apply(5.0) == 5.0


def test_explicit_rates_above_the_cap_are_lowered_and_said():
    cap = calibrate.open_loop_cap(calibrate.client_capacity(RAMP))
    assert cap.rate is not None
    rates, said = calibrate.rates_within_cap([10_000, 50_000, 60_000], cap)
    assert rates == (10_000, cap.rate)
    assert max(rates) <= 0.70 * 61_234
    assert "50,000" in said and "60,000" in said and "70%" in said
    assert calibrate.rates_within_cap([10_000], cap) == ((10_000,), "")


def test_common_rates_are_the_same_absolute_rates_for_every_design():
    cap = calibrate.open_loop_cap(calibrate.client_capacity(RAMP))
    common = calibrate.common_rates(CLIENT_BOUND, cap, fractions=(0.5, 0.25))
    assert common.basis_design == "tokio-ws" and common.basis_rate == 52_000
    assert common.rates == (13_000, 26_000)  # 25% and 50% of the smallest capacity
    assert common.fractions == (0.25, 0.5)
    assert common.capped == (False, False)
    # Every design can carry every rate, and none is above the client's cap.
    for c in CLIENT_BOUND:
        assert all(r <= c.rate for r in common.rates)
    assert all(r <= cap.rate for r in common.rates)
    assert "13,000" in common.reason and "tokio-ws" in common.reason


def test_common_rates_are_capped_by_the_client():
    cap = calibrate.open_loop_cap(calibrate.client_capacity([RampPoint(20_000, 10_000, True)]))
    assert cap.rate == 7_000
    common = calibrate.common_rates(CLIENT_BOUND, cap, fractions=(0.1, 0.5, 1.0))
    assert common.rates == (5_200, 7_000)  # 0.5 and 1.0 both cap to 7,000: given once
    assert common.capped == (False, True)
    assert "capped" in common.reason


def test_common_rates_leave_out_failed_designs_and_say_so():
    cap = calibrate.open_loop_cap(calibrate.client_capacity(RAMP))
    caps = [*CLIENT_BOUND, DesignCapacity("glommio-tpc", None)]
    common = calibrate.common_rates(caps, cap)
    assert common.left_out == ("glommio-tpc",)
    assert "glommio-tpc" in common.reason
    nothing = calibrate.common_rates([DesignCapacity("x", None)], cap)
    assert nothing.rates == () and nothing.basis_design is None


def test_rates_too_low_to_rank_are_not_planned():
    cap = calibrate.open_loop_cap(calibrate.client_capacity([RampPoint(100, 100)]))
    common = calibrate.common_rates([DesignCapacity("slow", 150, True)], cap)
    assert common.rates == ()
    assert "none is planned" in common.reason


def test_client_bound_calibration_chooses_fixed_rate_efficiency_with_its_reason():
    choice = calibrate.choose_mode(calibrate.client_capacity(RAMP), CLIENT_BOUND, cores=1)
    assert choice.mode is Mode.FIXED_RATE and choice.chosen_by == "calibration"
    assert choice.measure == "server_cpu_us_per_request" and not choice.higher_is_better
    assert choice.rates is not None and choice.rates.rates == (13_000, 26_000)
    assert "3 of 3" in choice.reason and "client-bound" in choice.reason
    assert "70%" in choice.reason and "13,000" in choice.reason


def test_a_client_that_outran_every_design_chooses_closed_loop():
    caps = [DesignCapacity("tokio-ws", 20_000, False), DesignCapacity("tokio-tpc", 21_000, False)]
    choice = calibrate.choose_mode(calibrate.client_capacity(RAMP), caps, cores=1)
    assert choice.mode is Mode.CLOSED_LOOP
    assert choice.measure == "throughput_rps" and choice.higher_is_better
    assert "outran every design" in choice.reason


def test_unknown_client_bound_verdicts_do_not_claim_closed_loop_ranks():
    caps = [DesignCapacity("tokio-ws", 20_000, None), DesignCapacity("tokio-tpc", 21_000, False)]
    choice = calibrate.choose_mode(calibrate.client_capacity(RAMP), caps, cores=1)
    assert choice.mode is Mode.FIXED_RATE
    assert "did not say" in choice.reason


def test_without_a_client_capacity_server_bound_work_is_chosen():
    ramp = calibrate.client_capacity([RampPoint(40_000, 30_000, False)])
    # No common rate: every capacity is tiny next to MIN_USEFUL_RATE.
    caps = [DesignCapacity("a", 150, True), DesignCapacity("b", 160, True)]
    choice = calibrate.choose_mode(ramp, caps, cores=2)
    assert choice.mode is Mode.SERVER_BOUND and choice.work is not None
    us = int(choice.work.removeprefix("fixed:"))
    # 2 cores burning `us` per request serve at most half the client's 30,000 req/s.
    assert 2 * 1e6 / us <= 0.5 * 30_000
    assert "server, not the client" in choice.reason
    with pytest.raises(HarnessError, match="--work"):
        calibrate.choose_mode(ramp, caps, cores=2, work_supported=False)


def test_the_users_mode_is_kept_and_planned_from_the_calibration():
    client = calibrate.client_capacity(RAMP)
    fixed = calibrate.choose_mode(client, CLIENT_BOUND, cores=1, requested="fixed-rate")
    assert fixed.chosen_by == "user" and fixed.rates is not None
    assert fixed.reason.startswith("asked for (fixed-rate)")
    bound = calibrate.choose_mode(client, CLIENT_BOUND, cores=1, requested=Mode.SERVER_BOUND)
    assert bound.work == f"fixed:{-(-1_000_000 // (61_234 // 2))}"
    closed = calibrate.choose_mode(client, CLIENT_BOUND, cores=1, requested="closed-loop")
    assert closed.mode is Mode.CLOSED_LOOP and closed.chosen_by == "user"
    with pytest.raises(HarnessError) as info:
        calibrate.choose_mode(client, CLIENT_BOUND, cores=1, requested="fastest")
    assert "\n" not in str(info.value) and "fixed-rate, server-bound, closed-loop" in str(
        info.value
    )


def test_nothing_measured_is_one_clear_line():
    with pytest.raises(HarnessError) as info:
        calibrate.choose_mode(calibrate.client_capacity(RAMP), [DesignCapacity("x", None)], cores=1)
    assert "\n" not in str(info.value) and "calibration" in str(info.value)


def test_ramp_rates_cross_the_fastest_designs_capacity():
    rates = calibrate.ramp_rates(61_234)
    assert rates == sorted(rates) and rates[0] < 61_234 < rates[-1]
    with pytest.raises(HarnessError):
        calibrate.ramp_rates(0)


def test_round_down():
    assert calibrate.round_down(12_345) == 12_300
    assert calibrate.round_down(12_345, 2) == 12_000
    assert calibrate.round_down(42_863.8) == 42_800
    assert calibrate.round_down(7_000) == 7_000
    assert calibrate.round_down(0) == 0
