"""harness.stats on synthetic data: do the intervals cover what they claim, do the verdicts and
warnings fire exactly when they should. Every random draw is seeded, so the tolerances below are
about the statistics being right, not about the test being lucky."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis import stats
from harness.analysis.stats import CIMethod, Verdict, WarningKind
from harness.run import steady

# Coverage experiments: 300 seeded samples each. The binomial standard error of a 95% coverage
# over 300 experiments is ~1.3%, so +-4% is three standard errors of slack for a correct method.
EXPERIMENTS = 300
COVERAGE_SLACK = 0.04
# 2,000 resamples instead of 10,000 keeps the suite fast; it changes the interval endpoints by
# Monte-Carlo noise far smaller than the slack above.
FAST_RESAMPLES = 2_000


def _sample(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """A sample and its distribution's true median."""
    if kind == "normal":
        return rng.normal(100_000.0, 5_000.0, n), 100_000.0
    # Right-skewed like throughput with occasional slow repetitions; median = exp(mu).
    return rng.lognormal(math.log(100_000.0), 0.3, n), 100_000.0


# ---------------------------------------------------------------------------------------------
# The historical helpers harness/analyse.py relies on


def test_historical_helpers_unchanged() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([]) is None
    assert stats.ratio(6.0, 3.0) == 2.0
    assert stats.ratio(1.0, 0.0) is None
    assert stats.ratio(None, 1.0) is None
    assert stats.ratio(float("nan"), 1.0) is None
    assert stats.spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert stats.spread([]) is None


# ---------------------------------------------------------------------------------------------
# Median intervals


def test_order_statistic_ranks_match_binomial_tables() -> None:
    # Classical table values for a 95% distribution-free median interval.
    assert stats.order_statistic_ranks(5) is None
    assert stats.order_statistic_ranks(6)[:2] == (1, 6)
    assert stats.order_statistic_ranks(10)[:2] == (2, 9)
    assert stats.order_statistic_ranks(20)[:2] == (6, 15)
    for n in range(6, 60):
        lo, hi, coverage = stats.order_statistic_ranks(n)
        assert coverage >= 0.95
        assert hi == n - lo + 1


def test_median_ci_small_n_is_a_labelled_range() -> None:
    ci = stats.median_ci([3.0, 1.0, 2.0])
    assert ci is not None
    assert (ci.estimate, ci.low, ci.high) == (2.0, 1.0, 3.0)
    assert ci.method is CIMethod.RANGE
    assert ci.level == pytest.approx(0.75)  # 1 - 2 * 0.5**3: honestly not 95%
    assert not ci.is_nominal
    assert stats.median_ci([]) is None
    assert stats.median_ci([float("nan"), 5.0]).estimate == 5.0  # a null is not a value


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
@pytest.mark.parametrize("n", [10, 25])
def test_median_ci_covers_true_median_at_its_level(kind: str, n: int) -> None:
    hits = 0
    level = 0.0
    for seed in range(EXPERIMENTS):
        x, true = _sample(kind, np.random.default_rng(seed), n)
        ci = stats.median_ci(x)
        assert ci is not None and ci.method is CIMethod.ORDER_STATISTIC
        level = ci.level
        hits += ci.low <= true <= ci.high
    # The order-statistic interval is conservative: its exact coverage (e.g. 97.9% at n=10).
    assert level >= 0.95
    assert abs(hits / EXPERIMENTS - level) <= COVERAGE_SLACK


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
def test_bootstrap_ci_covers_true_median(kind: str) -> None:
    hits = 0
    for seed in range(EXPERIMENTS):
        x, true = _sample(kind, np.random.default_rng(10_000 + seed), 25)
        ci = stats.bootstrap_ci(x, resamples=FAST_RESAMPLES, seed=seed)
        hits += ci.low <= true <= ci.high
    assert abs(hits / EXPERIMENTS - 0.95) <= COVERAGE_SLACK


def test_bootstrap_ci_is_reproducible_and_takes_any_statistic() -> None:
    x = np.random.default_rng(1).normal(10.0, 1.0, 30)
    assert stats.bootstrap_ci(x, seed=7) == stats.bootstrap_ci(x, seed=7)
    assert stats.bootstrap_ci(x, seed=7) != stats.bootstrap_ci(x, seed=8)
    mean_ci = stats.bootstrap_ci(x, np.mean)
    assert mean_ci.estimate == pytest.approx(float(np.mean(x)))
    assert mean_ci.low < mean_ci.estimate < mean_ci.high
    p90 = stats.bootstrap_ci(x, lambda a, axis: np.percentile(a, 90, axis=axis))
    assert p90.low <= p90.estimate <= p90.high
    assert stats.bootstrap_ci([]) is None


# ---------------------------------------------------------------------------------------------
# Ratio of medians


@pytest.mark.parametrize("n", [5, 10])
def test_ratio_ci_covers_true_ratio(n: int) -> None:
    true_ratio = 1.2  # e.g. thread-per-core 20% above work-stealing
    hits = 0
    for seed in range(EXPERIMENTS):
        rng = np.random.default_rng(20_000 + seed)
        a = rng.lognormal(math.log(120_000.0), 0.05, n)
        b = rng.lognormal(math.log(100_000.0), 0.05, n)
        ci = stats.ratio_ci(a, b, resamples=FAST_RESAMPLES, seed=seed)
        assert ci is not None
        hits += ci.low <= true_ratio <= ci.high
    assert abs(hits / EXPERIMENTS - 0.95) <= COVERAGE_SLACK


def test_ratio_ci_edge_cases() -> None:
    ci = stats.ratio_ci([200.0, 202.0, 198.0], [100.0, 101.0, 99.0])
    assert ci.estimate == pytest.approx(2.0)
    assert ci.low <= 2.0 <= ci.high
    assert stats.ratio_ci([], [1.0]) is None
    assert stats.ratio_ci([1.0], [0.0, 0.0]) is None


# ---------------------------------------------------------------------------------------------
# Verdicts


def _noisy(rng: np.random.Generator, centre: float, cv: float, n: int = 10) -> np.ndarray:
    return rng.normal(centre, centre * cv, n)


def test_verdict_clear_win() -> None:
    rng = np.random.default_rng(1)
    c = stats.compare(_noisy(rng, 130_000, 0.01), _noisy(rng, 100_000, 0.01))
    assert c is not None
    assert c.verdict is Verdict.BETTER
    assert c.is_change
    assert c.label() == "faster"
    assert c.estimate == pytest.approx(0.30, abs=0.02)
    assert c.threshold < c.ci_low <= c.estimate <= c.ci_high
    assert c.p_value is not None and c.p_value < 0.001
    assert (c.n_a, c.n_b) == (10, 10)
    assert c.describe().startswith("faster: +")


def test_verdict_clear_loss_and_latency_direction() -> None:
    rng = np.random.default_rng(2)
    a, b = _noisy(rng, 80_000, 0.01), _noisy(rng, 100_000, 0.01)
    assert stats.compare(a, b).verdict is Verdict.WORSE
    assert stats.compare(a, b).label("improved", "regressed") == "regressed"
    # Lower is better for latency: the same numbers are an improvement.
    assert stats.compare(a, b, higher_is_better=False).verdict is Verdict.BETTER


def test_verdict_no_change_when_interval_includes_zero() -> None:
    rng = np.random.default_rng(3)
    c = stats.compare(_noisy(rng, 100_000, 0.03), _noisy(rng, 100_000, 0.03))
    assert c.verdict is Verdict.NO_CHANGE
    assert c.ci_low < 0 < c.ci_high
    assert not c.is_change
    assert c.label() == "no change"


def _one_percent_apart() -> tuple[np.ndarray, np.ndarray]:
    """Designs 1% apart, each measured 20 times with 0.1% noise."""
    rng = np.random.default_rng(4)
    return _noisy(rng, 101_000, 0.001, 20), _noisy(rng, 100_000, 0.001, 20)


def test_verdict_significant_but_below_threshold_is_within_noise() -> None:
    # A real 1% difference measured very precisely: significant, but under the 2% threshold.
    c = stats.compare(*_one_percent_apart())
    assert c.ci_low > 0
    assert c.ci_high < stats.DEFAULT_NOISE_THRESHOLD
    assert c.verdict is Verdict.WITHIN_NOISE
    # The same difference counts once the threshold is below the whole interval.
    assert stats.compare(*_one_percent_apart(), threshold=0.005).verdict is Verdict.BETTER


def test_verdict_for_rule_table() -> None:
    t = 0.02
    assert stats.verdict_for(0.03, 0.05, t) is Verdict.BETTER
    assert stats.verdict_for(0.01, 0.05, t) is Verdict.WITHIN_NOISE  # straddles the threshold
    assert stats.verdict_for(-0.05, -0.03, t) is Verdict.WORSE
    assert stats.verdict_for(-0.01, 0.01, t) is Verdict.NO_CHANGE
    assert stats.verdict_for(-0.05, -0.03, t, higher_is_better=False) is Verdict.BETTER
    assert stats.verdict_for(0.001, 0.002, 0.0) is Verdict.BETTER  # threshold 0: significance


def test_verdict_insufficient_with_two_repetitions() -> None:
    c = stats.compare([200.0, 201.0], [100.0, 101.0, 102.0])
    assert c.verdict is Verdict.INSUFFICIENT
    assert (c.n_a, c.n_b) == (2, 3)


# ---------------------------------------------------------------------------------------------
# Mann-Whitney and geometric mean


def test_mann_whitney_exact_small_samples() -> None:
    # Values from the exact null distribution of U for 3 vs 3 and 4 vs 4 (as scipy gives them).
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(0.1)
    assert stats.mann_whitney([1, 3, 5], [2, 4, 6]).p_value == pytest.approx(0.7)
    r = stats.mann_whitney([5, 6, 7, 8], [1, 2, 3, 4])
    assert r.exact and r.u == 16.0
    assert r.p_value == pytest.approx(2 / 70)


def test_mann_whitney_normal_approximation_with_ties() -> None:
    # 20..39 appear in both samples: 20 ties of two values each.
    r = stats.mann_whitney(list(range(40)), list(range(20, 60)))
    assert not r.exact
    assert r.u == 200.0  # 190 pairs with a > b, plus 20 ties counted 1/2
    # mu = 800; tie-corrected variance mn/12 * ((N+1) - sum(t^3 - t) / (N(N-1))); continuity 0.5
    var = 40 * 40 / 12 * (81 - 20 * (2**3 - 2) / (80 * 79))
    z = 599.5 / math.sqrt(var)
    assert r.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    tied = stats.mann_whitney([1, 1, 2, 2], [1, 2, 2, 3])
    assert not tied.exact and 0.0 < tied.p_value <= 1.0
    assert stats.mann_whitney([5, 5], [5, 5]).p_value == 1.0
    assert stats.mann_whitney([], [1]) is None


def test_geometric_mean() -> None:
    assert stats.geometric_mean([2.0, 0.5]) == pytest.approx(1.0)  # 2x and 1/2x cancel
    assert stats.geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert stats.geometric_mean([]) is None
    assert stats.geometric_mean([1.0, 0.0]) is None


# ---------------------------------------------------------------------------------------------
# Stability warnings


def _kinds(values: list[float], **kw: float) -> set[WarningKind]:
    return {w.kind for w in stats.stability_warnings(values, **kw)}


def test_no_warnings_on_tight_repetitions() -> None:
    assert _kinds([100_000, 100_300, 99_800, 100_100, 99_900]) == set()


def test_high_spread_warning() -> None:
    warnings = stats.stability_warnings([100_000, 130_000, 80_000, 100_000, 115_000])
    spread = [w for w in warnings if w.kind is WarningKind.HIGH_SPREAD]
    assert len(spread) == 1
    assert spread[0].value >= 0.10
    assert "10%" in spread[0].message


def test_too_few_repetitions_warning() -> None:
    assert WarningKind.TOO_FEW_REPETITIONS in _kinds([100_000, 100_100])
    assert WarningKind.TOO_FEW_REPETITIONS in _kinds([100_000])
    assert WarningKind.TOO_FEW_REPETITIONS not in _kinds([100_000, 100_100, 100_050])


def test_too_few_for_precision_gives_the_needed_count() -> None:
    values = [100_000, 104_000, 96_000]  # cv 4%
    warnings = stats.stability_warnings(values, precision=0.02)
    need = [w for w in warnings if w.kind is WarningKind.TOO_FEW_FOR_PRECISION]
    assert len(need) == 1
    # n = (pi/2) (1.96 * 0.04 / 0.02)^2 = 24.1 -> 25
    assert need[0].value == 25
    assert stats.repetitions_needed(0.04, 0.02) == 25
    assert "25" in need[0].message
    # Asking only for 10% precision, 3 repetitions are enough.
    assert WarningKind.TOO_FEW_FOR_PRECISION not in _kinds(values, precision=0.10)


# ---------------------------------------------------------------------------------------------
# Steady state


def _window() -> np.ndarray:
    """Interval indices of the default window: 10 one-second intervals."""
    return np.arange(10, dtype=float)


def test_flat_series_is_steady() -> None:
    s = steady.steady_state([100_000.0] * 10)
    assert s.steady is True and s.kind is None


def test_noisy_but_flat_series_is_steady() -> None:
    # 5% interval-to-interval noise: more than a healthy server shows, and still no false alarm.
    flagged = 0
    for seed in range(200):
        series = 100_000 * (1 + np.random.default_rng(seed).normal(0, 0.05, 10))
        flagged += steady.steady_state(series).steady is False
    assert flagged <= 200 * 0.03


def test_single_hiccup_is_not_a_step() -> None:
    series = [100_000.0] * 10
    series[4] = 70_000.0
    assert steady.steady_state(series).steady is True


@pytest.mark.parametrize("seed", range(5))
def test_drifting_series_is_unsteady(seed: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 0.005, 10)
    s = steady.steady_state(100_000 * (1 - 0.12 * _window() / 9 + noise))
    assert s.steady is False
    assert s.kind == "drift" and s.limit == steady.STEADY_DRIFT_LIMIT
    assert s.drift == pytest.approx(-0.128, abs=0.02)  # -12% of a mean of 0.94


@pytest.mark.parametrize(("seed", "at"), [(0, 5), (1, 2), (2, 7)])
def test_stepping_series_is_unsteady(seed: int, at: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 0.005, 10)
    s = steady.steady_state(100_000 * (1 - 0.10 * (_window() >= at) + noise))
    assert s.steady is False
    assert s.kind == "step" and s.limit == steady.STEADY_STEP_LIMIT
    assert s.step_at == at
    assert s.step == pytest.approx(-0.10, abs=0.02)


def test_small_trend_below_limit_is_steady() -> None:
    s = steady.steady_state(100_000 * (1 - 0.02 * _window() / 9))
    assert s.steady is True
    assert s.drift == pytest.approx(-0.02, abs=0.001)


def test_too_short_or_empty_series() -> None:
    assert steady.steady_state([1.0, 2.0, 3.0]).kind == "too_short"
    assert steady.steady_state([1.0, 2.0, 3.0]).steady is None
    assert steady.steady_state([0.0] * 10).steady is False
    assert steady.steady_state([0.0] * 10).kind == "no_throughput"


# ---------------------------------------------------------------------------------------------
# Paired ratios (issue 14): designs interleaved per repetition, so A_i / B_i cancels drift

# (n, real coverage of the paired interval at 95%, its words): min..max below 6 pairs.
PAIRED_COVERAGE = [
    (3, 0.75, "75% (min-max of 3, order statistics)"),
    (5, 0.9375, "93.75% (min-max of 5, order statistics)"),
    (10, 1 - 2 * 11 / 1024, "97.85% (2nd-9th of 10, order statistics)"),
]


def _drifting_pair(rng: np.random.Generator, n: int, ratio: float) -> tuple[list, list]:
    """Two designs measured side by side on a machine whose speed drifts +-30% between
    repetitions (the same factor for both designs of one repetition), 1% noise each."""
    drift = rng.uniform(0.7, 1.3, n)
    b = 100_000.0 * drift * rng.lognormal(0.0, 0.01, n)
    a = ratio * 100_000.0 * drift * rng.lognormal(0.0, 0.01, n)
    return list(a), list(b)


@pytest.mark.parametrize(("n", "coverage", "words"), PAIRED_COVERAGE)
def test_paired_interval_states_its_real_coverage(n: int, coverage: float, words: str) -> None:
    a, b = _drifting_pair(np.random.default_rng(n), n, 1.10)
    ci = stats.paired_ratio_ci(a, b)
    assert ci is not None and ci.n == n
    assert ci.level == pytest.approx(coverage)
    assert ci.method is (CIMethod.RANGE if n < 6 else CIMethod.ORDER_STATISTIC)
    assert stats.coverage_label(ci) == words
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    lo = 1 if n < 6 else 2  # the 2nd..9th of 10
    assert ci.low == pytest.approx(ratios[lo - 1]) and ci.high == pytest.approx(ratios[n - lo])
    c = stats.compare_paired(a, b)
    assert c is not None and c.level == pytest.approx(coverage) and c.coverage == words
    assert (c.n_a, c.n_b) == (n, n) and c.verdict is Verdict.BETTER
    # The sign test's smallest p is 2 * 0.5**n: 0.25 at 3 pairs, 0.0625 at 5.
    assert c.p_value == pytest.approx(2 * 0.5**n)
    # Asked to hold the level, fewer than 6 pairs cannot give a verdict at 95%.
    strict = stats.compare_paired(a, b, require_level=True)
    assert strict.verdict is (Verdict.INSUFFICIENT if n < 6 else Verdict.BETTER)


@pytest.mark.parametrize(("n", "coverage", "_words"), PAIRED_COVERAGE)
def test_paired_interval_covers_the_true_ratio_as_often_as_it_says(
    n: int, coverage: float, _words: str
) -> None:
    hits = 0
    for seed in range(EXPERIMENTS):
        a, b = _drifting_pair(np.random.default_rng(30_000 + seed), n, 1.05)
        ci = stats.paired_ratio_ci(a, b)
        hits += ci.low <= 1.05 <= ci.high
    se = math.sqrt(coverage * (1 - coverage) / EXPERIMENTS)
    assert abs(hits / EXPERIMENTS - coverage) <= max(3 * se, 0.01)


def test_paired_ratios_cancel_drift_that_swamps_an_unpaired_comparison() -> None:
    a, b = _drifting_pair(np.random.default_rng(7), 10, 1.05)
    paired = stats.compare_paired(a, b)
    assert paired.verdict is Verdict.BETTER and 0.03 < paired.ci_low < paired.ci_high < 0.07
    unpaired = stats.compare(a, b, resamples=FAST_RESAMPLES)
    assert not unpaired.is_change  # +-30% drift hides a 5% difference between independent sets
    assert unpaired.coverage == "95% bootstrap, nominal (n=10 a side)"
    assert stats.compare(a[:3], b[:3], resamples=FAST_RESAMPLES).coverage == (
        "95% bootstrap, nominal (n=3 a side, covers less below 10)"
    )


def test_paired_ratios_drop_incomplete_pairs_and_accept_repetition_keys() -> None:
    a = {0: 110.0, 1: None, 2: 220.0, 3: float("nan"), 5: 330.0}
    b = {0: 100.0, 1: 100.0, 2: 200.0, 3: 100.0, 4: 100.0, 5: 300.0}
    assert np.exp(stats.paired_log_ratios(a, b)) == pytest.approx([1.1, 1.1, 1.1])
    assert stats.paired_ratio_ci([0.0, -1.0], [1.0, 1.0]) is None
    two = stats.compare_paired([110.0, 120.0], [100.0, 100.0])
    assert (
        two.verdict is Verdict.INSUFFICIENT
        and two.coverage == "50% (min-max of 2, order statistics)"
    )
    one = stats.paired_ratio_ci([110.0], [100.0])
    assert stats.coverage_label(one) == "no interval (1 repetition)"
    assert stats.coverage_label(None) == "no interval (no repetition)"


def test_paired_latency_direction_and_noise_threshold() -> None:
    slower = stats.compare_paired([130.0, 131.0, 129.0], [100.0] * 3, higher_is_better=False)
    assert slower.verdict is Verdict.WORSE  # latency 30% higher on every repetition
    close = stats.compare_paired([101.0, 101.5, 100.5], [100.0] * 3)
    assert close.verdict is Verdict.WITHIN_NOISE  # every pair above 1, all inside the 2% band
    mixed = stats.compare_paired([103.0, 97.0, 110.0], [100.0] * 3)
    assert mixed.verdict is Verdict.NO_CHANGE


@pytest.mark.parametrize(("level", "needed"), [(0.75, 3), (0.9, 5), (0.95, 6), (0.99, 8)])
def test_repetitions_a_verdict_needs_at_a_level(level: float, needed: int) -> None:
    assert stats.repetitions_for_level(level) == needed
    best = stats.median_ci(list(range(needed)), level)
    assert best.level >= level  # n pairs reach it ...
    assert stats.median_ci(list(range(needed - 1)), level).level < level  # ... n - 1 do not


def test_paired_repetitions_needed_grows_with_the_spread() -> None:
    b = [100.0] * 5
    tight = stats.paired_repetitions_needed([110.0, 110.2, 109.8, 110.1, 109.9], b)
    loose = stats.paired_repetitions_needed([110.0, 118.0, 102.0, 114.0, 106.0], b)
    assert tight == 6  # the level's own floor: min..max of 6 covers 96.9%
    assert loose > 6
    assert stats.paired_repetitions_needed([110.0], [100.0]) is None


def test_coverage_is_truncated_never_rounded_up() -> None:
    from harness.analysis.intervals import percent

    assert percent(0.75) == "75%" and percent(0.9375) == "93.75%"
    assert percent(0.999999) == "99.99%" and percent(0.978515625) == "97.85%"


def test_what_p_a_sample_size_can_reach() -> None:
    from harness.analysis.ranks import mann_whitney_min_p

    assert mann_whitney_min_p(3, 3) == pytest.approx(0.1)  # the 3 vs 3: never p < 0.1
    separated = stats.mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert separated.p_value == pytest.approx(mann_whitney_min_p(3, 3))
    assert mann_whitney_min_p(4, 4) < 0.05 < mann_whitney_min_p(3, 4)
