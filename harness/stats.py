"""Statistics as pure functions (no I/O), testable without a machine, like asv's _stats.

Everything here takes plain sequences of numbers and returns plain frozen data. Bootstrap
functions take a seed so that a report rebuilt from the same stored trials prints the same
intervals: a confidence interval that changes on every rebuild invites arguments about noise in
the statistics instead of noise in the machine.

Null figures (NaN, as pandas gives them) are dropped by every function added here, never counted
as values: docs/data.md stores absent figures as null, and a null is "not measured", not zero.
The three historical helpers `median`, `ratio` and `spread` keep their exact behaviour because
harness/analyse.py calls them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import numpy as np

# Confidence level of every interval the report prints (the convention of pyperf and criterion).
DEFAULT_LEVEL = 0.95

# 10,000 resamples puts the Monte-Carlo error of a 2.5% percentile well below the width of the
# interval itself (criterion uses 100,000 for nanosecond loops; our samples are a handful of
# repetitions, so the interval's own uncertainty dominates long before that).
DEFAULT_RESAMPLES = 10_000

# A fixed default seed: rebuilding a report from the same data must print the same intervals.
DEFAULT_SEED = 0

# Noise threshold for verdicts. criterion's default is 1% for CPU-bound loops; loopback network
# trials move 1-3% between repetitions of the same configuration (scheduler placement, softirq
# distribution, frequency), so a 2% threshold keeps verdicts about the executors, not the weather.
DEFAULT_NOISE_THRESHOLD = 0.02

# pyperf's rule: a spread of 10% of the centre or more makes a result unreliable.
SPREAD_WARN_FRACTION = 0.10

# pyperf refuses to take fewer than 3 values seriously; with 2 one cannot tell which is the outlier.
MIN_REPETITIONS = 3

# Below 6 values no pair of order statistics covers the median with 95% probability
# (min..max covers it with probability 1 - 2 * 0.5**n = 93.75% at n = 5, 96.9% at n = 6).
_MIN_N_ORDER_STATISTIC_95 = 6

# Mann-Whitney: exact null distribution up to this many values per side when there are no ties;
# the normal approximation (with tie correction) beyond, where it is accurate to ~1e-3.
_MANN_WHITNEY_EXACT_MAX = 30

# Keep one bootstrap block below ~1e6 numbers so that a long sample does not allocate gigabytes.
_BOOTSTRAP_BLOCK_ELEMENTS = 1_000_000


# --------------------------------------------------------------------------------------------
# Historical helpers (harness/analyse.py depends on their exact behaviour)


def median(values: Sequence[float]) -> float | None:
    """Median of the values, None for no values (a configuration with no successful trial)."""
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is absent or the quotient is meaningless."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return numerator / denominator


def spread(values: Sequence[float]) -> float | None:
    """(max - min) / median: how far apart repetitions landed."""
    med = median(values)
    if not values or not med:
        return None
    return (max(values) - min(values)) / med


# --------------------------------------------------------------------------------------------
# Confidence intervals


class CIMethod(StrEnum):
    """How an interval was obtained; a reader needs this to know what the interval promises."""

    ORDER_STATISTIC = "order-statistic"  # distribution-free, coverage >= level (binomial)
    RANGE = "range"  # min..max of too few values; `level` holds its real (lower) coverage
    BOOTSTRAP = "bootstrap"  # percentile bootstrap, seeded; coverage is nominal (approximate)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval.

    `level` is the coverage the interval actually has where that is known exactly (order
    statistics, range), and the nominal level asked for otherwise (bootstrap).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: CIMethod
    n: int

    @property
    def is_nominal(self) -> bool:
        """False when the interval is narrower in probability than the level that was asked."""
        return self.method is not CIMethod.RANGE


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Float array without NaN (null figures are not measurements)."""
    arr = np.asarray(values, dtype=float).ravel()
    return arr[~np.isnan(arr)]


def _binom_half_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), exactly (Python integers do not overflow)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2**n


def order_statistic_ranks(n: int, level: float = DEFAULT_LEVEL) -> tuple[int, int, float] | None:
    """1-based ranks (lo, hi) of the order statistics whose interval covers the median of the
    distribution with probability >= level, and that probability; None when n is too small.

    The number of values below the true median is Binomial(n, 1/2) whatever the distribution, so
    [x_(k), x_(n-k+1)] covers it with probability 1 - 2 P(B <= k - 1). We take the largest k
    (the narrowest interval) that still reaches the level.
    """
    best: tuple[int, int, float] | None = None
    for k in range(1, n // 2 + 1):
        coverage = 1.0 - 2.0 * _binom_half_cdf(k - 1, n)
        if coverage < level:
            break
        best = (k, n - k + 1, coverage)
    return best


def median_ci(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval | None:
    """Median with a distribution-free (order-statistic) confidence interval.

    Throughput samples are few, skewed and sometimes bimodal (a bad SO_REUSEPORT spread in one
    repetition), so no normality is assumed. With too few values for any pair of order
    statistics to reach the level (n < 6 for 95%), the min..max range is returned with method
    RANGE and its real, lower coverage 1 - 2 * 0.5**n in `level`: it is labelled honestly
    rather than stretched (a bootstrap would not fix it, it under-covers even more at such n).
    None for no values.
    """
    arr = np.sort(_clean(values))
    n = len(arr)
    if n == 0:
        return None
    est = float(np.median(arr))
    ranks = order_statistic_ranks(n, level)
    if ranks is None:
        coverage = max(0.0, 1.0 - 2.0 * 0.5**n) if n > 1 else 0.0
        return Interval(est, float(arr[0]), float(arr[-1]), coverage, CIMethod.RANGE, n)
    lo, hi, coverage = ranks
    return Interval(
        est, float(arr[lo - 1]), float(arr[hi - 1]), coverage, CIMethod.ORDER_STATISTIC, n
    )


def _bootstrap_distribution(
    arr: np.ndarray,
    statistic: Callable[..., Any],
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`resamples` values of statistic(resample), computed in blocks to bound memory."""
    n = len(arr)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // max(n, 1))
    out = np.empty(resamples, dtype=float)
    done = 0
    while done < resamples:
        m = min(block, resamples - done)
        idx = rng.integers(0, n, size=(m, n))
        out[done : done + m] = statistic(arr[idx], axis=1)
        done += m
    return out


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[..., Any] = np.median,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.Generator = DEFAULT_SEED,
) -> Interval | None:
    """Percentile bootstrap interval of any statistic, reproducible through its seed.

    `statistic(samples, axis=1)` must reduce each row of a 2-D array (numpy's reductions do:
    np.median, np.mean, lambda x, axis: np.percentile(x, 99, axis=axis)); vectorising the
    resamples is what makes 10,000 of them cost milliseconds. Percentile intervals of a median
    from fewer than ~10 values are narrower than nominal; prefer `median_ci` for medians.
    """
    arr = _clean(values)
    if len(arr) == 0:
        return None
    rng = np.random.default_rng(seed)
    dist = _bootstrap_distribution(arr, statistic, resamples, rng)
    alpha = 1.0 - level
    low, high = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    est = float(statistic(arr[np.newaxis, :], axis=1)[0])
    return Interval(est, float(low), float(high), level, CIMethod.BOOTSTRAP, len(arr))


def ratio_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.Generator = DEFAULT_SEED,
) -> Interval | None:
    """median(a) / median(b) with a bootstrap interval over the two independent samples.

    Used for design A against design B (e.g. thread-per-core / work-stealing throughput): the
    repetitions of the two designs are independent, so each is resampled on its own and the
    ratio taken per resample. None when either sample is empty or a median is not positive
    (a ratio of throughputs or latencies is meaningless there). `n` of the result is
    min(len(a), len(b)).
    """
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        return None
    ma, mb = float(np.median(xa)), float(np.median(xb))
    if ma <= 0 or mb <= 0:
        return None
    rng = np.random.default_rng(seed)
    da = _bootstrap_distribution(xa, np.median, resamples, rng)
    db = _bootstrap_distribution(xb, np.median, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = da / db
    dist = dist[np.isfinite(dist)]
    if len(dist) == 0:
        return None
    alpha = 1.0 - level
    low, high = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    return Interval(
        ma / mb, float(low), float(high), level, CIMethod.BOOTSTRAP, min(len(xa), len(xb))
    )


# --------------------------------------------------------------------------------------------
# Significance and verdicts


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U of sample a against b, with its two-sided p-value."""

    u: float
    p_value: float
    exact: bool


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _u_null_counts(m: int, n: int) -> list[int]:
    """Number of arrangements giving U = 0..m*n under H0 (no ties): the coefficients of the
    Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)."""
    size = m * n + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, m + 1):
        k = n + i
        for j in range(size - 1, k - 1, -1):  # multiply by (1 - q^k)
            poly[j] -= poly[j - k]
        for j in range(i, size):  # divide by (1 - q^i): a running sum with stride i
            poly[j] += poly[j - i]
    return poly


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> MannWhitney | None:
    """Two-sided Mann-Whitney U test (asv's test for "did it change"), without scipy.

    Exact null distribution when both samples have <= 30 values and no ties; otherwise the
    normal approximation with tie correction and continuity correction. U counts pairs with
    a > b (ties count 1/2). None when either sample is empty.
    """
    xa, xb = _clean(a), _clean(b)
    m, n = len(xa), len(xb)
    if m == 0 or n == 0:
        return None
    pooled = np.concatenate([xa, xb])
    # Average ranks (ties get the mean of the ranks they span).
    order = np.argsort(pooled, kind="mergesort")
    sorted_vals = pooled[order]
    ranks = np.empty(m + n, dtype=float)
    i = 0
    tie_term = 0.0
    while i < m + n:
        j = i
        while j + 1 < m + n and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        t = j - i + 1
        tie_term += t**3 - t
        i = j + 1
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    if tie_term == 0 and m <= _MANN_WHITNEY_EXACT_MAX and n <= _MANN_WHITNEY_EXACT_MAX:
        counts = _u_null_counts(m, n)
        total = sum(counts)
        k = round(u)
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return MannWhitney(u, min(1.0, 2.0 * min(lower, upper)), True)
    big_n = m + n
    var = m * n / 12.0 * ((big_n + 1) - tie_term / (big_n * (big_n - 1)))
    if var <= 0:
        return MannWhitney(u, 1.0, False)  # every value equal: no evidence of any difference
    z = max(0.0, abs(u - m * n / 2.0) - 0.5) / math.sqrt(var)
    return MannWhitney(u, min(1.0, 2.0 * _normal_sf(z)), False)


class Verdict(StrEnum):
    """criterion's outcomes. BETTER/WORSE are relative to `higher_is_better`."""

    BETTER = "better"
    WORSE = "worse"
    WITHIN_NOISE = "within noise"  # the CI excludes 0 but reaches inside the noise threshold
    NO_CHANGE = "no change"  # the CI includes 0
    INSUFFICIENT = "insufficient data"  # fewer than MIN_REPETITIONS values on a side


@dataclass(frozen=True)
class Comparison:
    """A against B: relative change median(a)/median(b) - 1 with its CI and criterion's verdict.

    `p_value` (Mann-Whitney) is informational, as in asv; the verdict uses the interval only.
    """

    estimate: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    n_a: int
    n_b: int
    threshold: float
    level: float
    p_value: float | None

    @property
    def ratio(self) -> float:
        """median(a) / median(b)."""
        return 1.0 + self.estimate

    @property
    def is_change(self) -> bool:
        """Whether the verdict claims a real difference."""
        return self.verdict in (Verdict.BETTER, Verdict.WORSE)

    def label(self, better: str = "faster", worse: str = "slower") -> str:
        """The verdict in the caller's words ("faster"/"slower", "improved"/"regressed")."""
        if self.verdict is Verdict.BETTER:
            return better
        if self.verdict is Verdict.WORSE:
            return worse
        return str(self.verdict)

    def describe(self, better: str = "faster", worse: str = "slower") -> str:
        """One line in criterion's style: `faster: +12.3% [+10.1%, +14.2%] (n=5 vs 5)`."""
        return (
            f"{self.label(better, worse)}: {self.estimate:+.1%} "
            f"[{self.ci_low:+.1%}, {self.ci_high:+.1%}] (n={self.n_a} vs {self.n_b})"
        )


def verdict_for(
    ci_low: float, ci_high: float, threshold: float, *, higher_is_better: bool = True
) -> Verdict:
    """criterion's rule on a relative-change interval: a change only when the interval excludes
    0 AND lies wholly beyond the noise threshold on one side."""
    if ci_low > 0 and ci_low > threshold:
        return Verdict.BETTER if higher_is_better else Verdict.WORSE
    if ci_high < 0 and ci_high < -threshold:
        return Verdict.WORSE if higher_is_better else Verdict.BETTER
    if ci_low > 0 or ci_high < 0:
        return Verdict.WITHIN_NOISE
    return Verdict.NO_CHANGE


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    threshold: float = DEFAULT_NOISE_THRESHOLD,
    higher_is_better: bool = True,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | np.random.Generator = DEFAULT_SEED,
) -> Comparison | None:
    """Compare design A with design B (A relative to B) under criterion's rule.

    higher_is_better=True for throughput, False for latency or CPU per request. The verdict is
    INSUFFICIENT with fewer than MIN_REPETITIONS values on either side. With 3-5 values a side
    the bootstrap interval is narrower than its nominal level (there are only a few distinct
    resampled medians), so `stability_warnings` flags such samples; the verdict is still given
    because that is what a 3-repetition run can say. None when `ratio_ci` is None.
    """
    ci = ratio_ci(a, b, level=level, resamples=resamples, seed=seed)
    if ci is None:
        return None
    n_a, n_b = len(_clean(a)), len(_clean(b))
    lo, hi = ci.low - 1.0, ci.high - 1.0
    if min(n_a, n_b) < MIN_REPETITIONS:
        verdict = Verdict.INSUFFICIENT
    else:
        verdict = verdict_for(lo, hi, threshold, higher_is_better=higher_is_better)
    mw = mann_whitney(a, b)
    return Comparison(
        estimate=ci.estimate - 1.0,
        ci_low=lo,
        ci_high=hi,
        verdict=verdict,
        n_a=n_a,
        n_b=n_b,
        threshold=threshold,
        level=level,
        p_value=mw.p_value if mw else None,
    )


def geometric_mean(ratios: Sequence[float]) -> float | None:
    """Geometric mean of ratios (pyperf's summary over benchmarks): the only mean under which
    "2x faster" and "2x slower" cancel. None when empty or when any ratio is not positive."""
    arr = _clean(ratios)
    if len(arr) == 0 or np.any(arr <= 0) or not np.all(np.isfinite(arr)):
        return None
    return float(np.exp(np.mean(np.log(arr))))


# --------------------------------------------------------------------------------------------
# Stability warnings (pyperf-style)


class WarningKind(Enum):
    """What is wrong with a set of repetitions."""

    HIGH_SPREAD = "high spread"
    TOO_FEW_FOR_PRECISION = "too few for precision"
    TOO_FEW_REPETITIONS = "too few repetitions"


@dataclass(frozen=True)
class StabilityWarning:
    """One warning: its kind (for code), a sentence (for people) and the number behind it."""

    kind: WarningKind
    message: str
    value: float


def repetitions_needed(cv: float, precision: float, level: float = DEFAULT_LEVEL) -> int:
    """Repetitions for the median's CI half-width to be `precision` of the median.

    n = (pi/2) * (z * cv / precision)**2, where z is the two-sided normal quantile of `level`
    (1.96 for 95%) and cv the coefficient of variation (stdev / mean). (z * cv / precision)**2
    is the textbook count for a mean; the median's standard error is sqrt(pi/2) times the
    mean's for normal data, hence the factor. An estimate: cv itself is uncertain at small n.
    """
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
    return max(1, math.ceil(math.pi / 2.0 * (z * cv / precision) ** 2))


def stability_warnings(
    values: Sequence[float],
    *,
    precision: float = DEFAULT_NOISE_THRESHOLD,
    level: float = DEFAULT_LEVEL,
    spread_limit: float = SPREAD_WARN_FRACTION,
) -> list[StabilityWarning]:
    """pyperf-style warnings about one configuration's repetitions (empty list: no warning).

    - HIGH_SPREAD: sample stdev >= spread_limit (10%) of the median, pyperf's rule.
    - TOO_FEW_FOR_PRECISION: fewer repetitions than `repetitions_needed` for a CI half-width of
      `precision` (default: the 2% noise threshold, so that a real 2% difference can show).
    - TOO_FEW_REPETITIONS: fewer than MIN_REPETITIONS (3).
    """
    arr = _clean(values)
    n = len(arr)
    out: list[StabilityWarning] = []
    if n < MIN_REPETITIONS:
        out.append(
            StabilityWarning(
                WarningKind.TOO_FEW_REPETITIONS,
                f"only {n} repetition(s); use at least {MIN_REPETITIONS} (--repeat)",
                float(n),
            )
        )
    if n < 2:
        return out
    med = float(np.median(arr))
    mean = float(np.mean(arr))
    stdev = float(np.std(arr, ddof=1))
    if med > 0 and stdev / med >= spread_limit:
        out.append(
            StabilityWarning(
                WarningKind.HIGH_SPREAD,
                f"the standard deviation is {stdev / med:.1%} of the median "
                f"(>= {spread_limit:.0%}): the result may be unstable",
                stdev / med,
            )
        )
    if mean > 0 and stdev > 0:
        cv = stdev / mean
        needed = repetitions_needed(cv, precision, level)
        if needed > n:
            out.append(
                StabilityWarning(
                    WarningKind.TOO_FEW_FOR_PRECISION,
                    f"{n} repetitions give about +/-{_half_width(cv, n, level):.1%} at "
                    f"{level:.0%}; {needed} would be needed for +/-{precision:.1%} "
                    f"(n = (pi/2)(z*cv/p)^2 with cv = {cv:.1%})",
                    float(needed),
                )
            )
    return out


def _half_width(cv: float, n: int, level: float) -> float:
    """Approximate relative CI half-width of the median: the inverse of repetitions_needed."""
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
    return z * cv * math.sqrt(math.pi / 2.0 / n)


# --------------------------------------------------------------------------------------------
# Steady state of a per-interval series

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

    `steady` is None when the series is too short to judge. `drift` is the fitted linear change
    across the window relative to the mean; `step` the relative change of level (after / before
    - 1) at the best-fitting change point, `step_at` being the first interval after it.
    """

    steady: bool | None
    reason: str | None
    drift: float | None = None
    step: float | None = None
    step_at: int | None = None


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
    A drift looks a little like a step and vice versa; when both are flagged, the reason names
    the model with the smaller residual sum of squares. One bad interval (a hiccup) is neither
    and is not flagged: it inflates the residuals instead.
    """
    arr = _clean(series)
    n = len(arr)
    if n < STEADY_MIN_INTERVALS:
        return SteadyState(None, f"only {n} intervals; need {STEADY_MIN_INTERVALS} to judge")
    mean = float(arr.mean())
    if mean <= 0:
        return SteadyState(False, "no throughput in the window")
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
        reason = (
            f"steps {step:+.1%} at interval {k} (mean {arr[:k].mean():.6g} -> "
            f"{arr[k:].mean():.6g}; limit {step_limit:.0%})"
        )
        return SteadyState(False, reason, drift, step, k)
    if drift_flag:
        reason = f"drifts {drift:+.1%} across the window (linear trend; limit {drift_limit:.0%})"
        return SteadyState(False, reason, drift, step, k)
    return SteadyState(True, None, drift, step, k)
