"""resamples_for: the resamples asked for while the sample is small, fewer (never below 2,000)
beyond; and an interval from the fewer is the interval from 10,000 up to Monte Carlo noise."""

from __future__ import annotations

import numpy as np

from harness.analysis import stats
from harness.analysis.resample import MIN_RESAMPLES, resamples_for


def test_small_samples_keep_what_was_asked() -> None:
    for n in (1, 3, 10, 50, 100):
        assert resamples_for(n, 10_000) == 10_000
    assert resamples_for(417, 500) == 500  # never more than asked


def test_large_samples_draw_fewer_never_below_the_floor() -> None:
    assert resamples_for(417, 10_000) == 1_000_000 // 417
    assert resamples_for(100_000, 10_000) == MIN_RESAMPLES


def test_fewer_resamples_give_the_same_interval_up_to_noise() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0e5, 3e3, 417), rng.normal(1.02e5, 3e3, 417)
    full = stats.ratio_ci(a, b, resamples=10_000)
    fewer = stats.ratio_ci(a, b, resamples=resamples_for(417, 10_000))
    assert full is not None and fewer is not None
    assert fewer.estimate == full.estimate and fewer.level == full.level
    width = full.high - full.low
    assert abs(fewer.low - full.low) < 0.1 * width
    assert abs(fewer.high - full.high) < 0.1 * width
