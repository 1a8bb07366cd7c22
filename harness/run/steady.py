"""Whether a trial's per-interval throughput was a steady state: judged on each trial as it is
stored (run.flags.unsteady), so the rule is stated once, beside the other flags.

Pure functions over plain numbers; null figures (NaN) are dropped, never counted as values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Float array without NaN (null figures are not measurements)."""
    arr = np.asarray(values, dtype=float).ravel()
    return arr[~np.isnan(arr)]


# A series that moves 5% inside its window has a window mean ~2.5% away from either end, more
# than the 2% noise threshold: a comparison could flip on when the window happened to be taken.
STEADY_DRIFT_LIMIT = 0.05
# A level shift of 5% (e.g. warm-up not finished, a connection rebalanced, frequency dropped) is
# flagged for the same reason.
STEADY_STEP_LIMIT = 0.05
# An effect must also stand out from the series' own noise: its t statistic (effect / standard
# error from the fitted model's residuals, n - 2 degrees of freedom) must exceed these. Higher
# than the textbook ~2 because the t distribution with ~8 degrees of freedom has heavy tails,
# and higher still for steps, which are the best of every split point. Measured on 10-interval
# series with Gaussian noise of any size (t does not depend on scale): false alarms ~0.5% for
# drift and ~1% for steps; an 8% step in 1%-noise intervals is still found every time.
STEADY_DRIFT_T = 4.0
STEADY_STEP_T = 5.0
# Fewer intervals cannot separate a trend from noise (the default window is 10 x 1 s).
STEADY_MIN_INTERVALS = 4
# Shortest segment on either side of a step: 2 catches a warm-up that was 2 intervals too short.
_STEP_MIN_SEGMENT = 2


@dataclass(frozen=True)
class SteadyState:
    """Whether a trial's per-interval throughput was flat over its measured window.

    `steady` is None when the series is too short to judge. `kind` says what was found when it
    is not steady ("drift", "step", "no_throughput"; "too_short" when not judged), `limit` the
    relative change that was crossed. `drift` is the fitted linear change across the window
    relative to the mean; `step` the relative change of level (after / before - 1) at the
    best-fitting change point, `step_at` being the first interval after it. Data, not words:
    the report says them (report/flag_words.py).
    """

    steady: bool | None
    kind: str | None
    drift: float | None = None
    step: float | None = None
    step_at: int | None = None
    limit: float | None = None


def _best_split(rel: np.ndarray) -> tuple[int, float, float, float]:
    """Change point of a two-level least-squares fit: (split k, level before, after, SSE)."""
    n = len(rel)
    best = (0, 0.0, 0.0, math.inf)
    for k in range(_STEP_MIN_SEGMENT, n - _STEP_MIN_SEGMENT + 1):
        left, right = rel[:k], rel[k:]
        sse = float(np.sum((left - left.mean()) ** 2) + np.sum((right - right.mean()) ** 2))
        if sse < best[3]:
            best = (k, float(left.mean()), float(right.mean()), sse)
    return best


def steady_state(
    series: Sequence[float],
    *,
    drift_limit: float = STEADY_DRIFT_LIMIT,
    step_limit: float = STEADY_STEP_LIMIT,
    drift_t: float = STEADY_DRIFT_T,
    step_t: float = STEADY_STEP_T,
) -> SteadyState:
    """Judge a per-interval throughput series (requests per interval, or per second).

    Two departures from a flat series are fitted, each by least squares on the series divided
    by its mean:
    - drift: a line; its slope times the window length;
    - step: two levels with the change point that fits best (binary segmentation's first step).
    Each is flagged only when it is larger than its limit AND its t statistic (from that model's
    residuals, n - 2 degrees of freedom) exceeds `drift_t` / `step_t`, so that a noisy but flat
    series passes.
    A drift looks a little like a step and vice versa; when both are flagged, `kind` names
    the model with the smaller residual sum of squares. One bad interval (a hiccup) is neither
    and is not flagged: it inflates the residuals instead.
    """
    arr = _clean(series)
    n = len(arr)
    if n < STEADY_MIN_INTERVALS:
        return SteadyState(None, "too_short")  # fewer than STEADY_MIN_INTERVALS
    mean = float(arr.mean())
    if mean <= 0:
        return SteadyState(False, "no_throughput")
    rel = arr / mean
    dof = n - 2

    x = np.arange(n, dtype=float) - (n - 1) / 2.0
    sxx = float(np.sum(x**2))
    slope = float(np.sum(x * rel) / sxx)
    drift = slope * (n - 1)
    line_sse = float(np.sum((rel - 1.0 - slope * x) ** 2))
    drift_se = math.sqrt(line_sse / dof / sxx) * (n - 1)
    drift_flag = abs(drift) > drift_limit and abs(drift) > drift_t * drift_se

    k, before, after, step_sse = _best_split(rel)
    step = after / before - 1.0 if before > 0 else math.inf
    step_se = math.sqrt(step_sse / dof * (1.0 / k + 1.0 / (n - k)))
    step_flag = abs(step) > step_limit and abs(after - before) > step_t * step_se

    if step_flag and (not drift_flag or step_sse <= line_sse):
        return SteadyState(False, "step", drift, step, k, step_limit)
    if drift_flag:
        return SteadyState(False, "drift", drift, step, k, drift_limit)
    return SteadyState(True, None, drift, step, k)
