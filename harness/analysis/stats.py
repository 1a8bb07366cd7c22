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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import numpy as np

from harness.analysis.intervals import (  # noqa: F401
    DEFAULT_LEVEL,
    CIMethod,
    Interval,
    coverage_label,
    median_ci,
    order_statistic_ranks,
    paired_log_ratios,
    paired_ratio_ci,
    repetitions_for_level,
    sign_test_p,
)
from harness.analysis.intervals import clean as _clean
from harness.analysis.ranks import mann_whitney

# Re-exported (noqa F401): callers use stats.X for every interval, whichever module defines it.
from harness.analysis.resample import resamples_for

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

# Keep one bootstrap block below ~1e6 numbers so that a long sample does not allocate gigabytes.
_BOOTSTRAP_BLOCK_ELEMENTS = 1_000_000


# --------------------------------------------------------------------------------------------
# Historical helpers (harness/analysis/analyse.py depends on their exact behaviour)


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
# Confidence intervals (order statistics, their coverage and its words: intervals.py)


def _bootstrap_distribution(
    arr: np.ndarray,
    statistic: Callable[..., Any],
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`resamples` values of statistic(resample), computed in blocks to bound memory."""
    n = len(arr)
    out = np.empty(resamples, dtype=float)
    for done, m in _blocks(n, resamples):
        out[done : done + m] = statistic(arr[rng.integers(0, n, size=(m, n))], axis=1)
    return out


def _blocks(n: int, resamples: int) -> Iterator[tuple[int, int]]:
    """(first, count) of each block of resamples of n values, bounded in memory."""
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // max(n, 1))
    for done in range(0, resamples, block):
        yield done, min(block, resamples - done)


def _bootstrap_medians(arr: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """_bootstrap_distribution(arr, np.median, ...), the same draws and the same medians, by
    counting: each resample's ranks (positions in the sorted sample) are tallied with one
    bincount per block, and the middle order statistics read off the cumulative tallies, so
    that thousands of repetitions cost a few array passes instead of a partition per row."""
    n = len(arr)
    order = np.argsort(arr, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    ordered = arr[order]
    lo_k, hi_k = (n - 1) // 2, n // 2  # 0-based middle order statistics
    out = np.empty(resamples, dtype=float)
    for done, m in _blocks(n, resamples):
        idx = rng.integers(0, n, size=(m, n))
        flat = (ranks[idx] + np.arange(m)[:, None] * n).ravel()
        cum = np.bincount(flat, minlength=m * n).reshape(m, n).cumsum(axis=1)
        lo = ordered[np.argmax(cum > lo_k, axis=1)]
        hi = ordered[np.argmax(cum > hi_k, axis=1)]
        out[done : done + m] = lo if lo_k == hi_k else (lo + hi) / 2.0
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
    # Beyond 100 repetitions a side fewer resamples hold the same stated coverage (resample.py).
    resamples = resamples_for(max(len(xa), len(xb)), resamples)
    da = _bootstrap_medians(xa, resamples, rng)
    db = _bootstrap_medians(xb, resamples, rng)
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
    # The interval's real coverage in words (intervals.coverage_label), for every place that
    # prints it: "75% (min-max of 3, order statistics)", "95% bootstrap, nominal (...)".
    coverage: str = ""

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
    interval: Interval | None = None,
) -> Comparison | None:
    """Compare design A with design B (A relative to B) under criterion's rule.

    `interval`: ratio_ci(a, b) with the same level, resamples and seed when the caller has
    already computed it (it is then not bootstrapped twice).

    higher_is_better=True for throughput, False for latency or CPU per request. The verdict is
    INSUFFICIENT with fewer than MIN_REPETITIONS values on either side. With 3-5 values a side
    the bootstrap interval is narrower than its nominal level (there are only a few distinct
    resampled medians), so `stability_warnings` flags such samples; the verdict is still given
    because that is what a 3-repetition run can say. None when `ratio_ci` is None.
    """
    ci = interval or ratio_ci(a, b, level=level, resamples=resamples, seed=seed)
    if ci is None:
        return None
    n_a, n_b = len(_clean(a)), len(_clean(b))
    return _comparison(
        ci,
        short=min(n_a, n_b) < MIN_REPETITIONS,
        threshold=threshold,
        higher_is_better=higher_is_better,
        n=(n_a, n_b),
        level=level,
        p_value=getattr(mann_whitney(a, b), "p_value", None),
    )


def _comparison(
    ci: Interval,
    *,
    short: bool,
    threshold: float,
    higher_is_better: bool,
    n: tuple[int, int],
    level: float,
    p_value: float | None,
) -> Comparison:
    """A ratio interval as a change (ratio - 1) with criterion's verdict (none when short)."""
    lo, hi = ci.low - 1.0, ci.high - 1.0
    verdict = verdict_for(lo, hi, threshold, higher_is_better=higher_is_better)
    return Comparison(
        estimate=ci.estimate - 1.0,
        ci_low=lo,
        ci_high=hi,
        verdict=Verdict.INSUFFICIENT if short else verdict,
        n_a=n[0],
        n_b=n[1],
        threshold=threshold,
        level=level,
        p_value=p_value,
        coverage=coverage_label(ci),
    )


def compare_paired(
    a: Mapping[int, float | None] | Sequence[float | None],
    b: Mapping[int, float | None] | Sequence[float | None],
    *,
    threshold: float = DEFAULT_NOISE_THRESHOLD,
    higher_is_better: bool = True,
    level: float = DEFAULT_LEVEL,
    require_level: bool = False,
) -> Comparison | None:
    """A against B repetition by repetition (the designs ran interleaved, side by side):
    criterion's rule on the order-statistic interval of the per-repetition ratios A_i / B_i.

    Mappings are keyed by repetition, sequences aligned by position; a repetition missing on
    either side drops the pair. The Comparison's `level` is the interval's real coverage
    (75% for 3 pairs, 93.75% for 5, 97.85% for 10 at level 0.95) and `coverage` says it in
    words; n_a = n_b = the number of pairs; `p_value` is the exact two-sided sign test (the
    paired test matching the interval; it never decides the verdict). INSUFFICIENT below
    MIN_REPETITIONS pairs, and, with require_level, whenever the real coverage is below
    `level` (fewer than `repetitions_for_level(level)` pairs: 6 for 95%). None without a pair.
    """
    ci = paired_ratio_ci(a, b, level)
    if ci is None:
        return None
    return _comparison(
        ci,
        short=ci.n < MIN_REPETITIONS or (require_level and ci.level < level),
        threshold=threshold,
        higher_is_better=higher_is_better,
        n=(ci.n, ci.n),
        level=ci.level,
        p_value=sign_test_p(paired_log_ratios(a, b)),
    )


def paired_repetitions_needed(
    a: Mapping[int, float | None] | Sequence[float | None],
    b: Mapping[int, float | None] | Sequence[float | None],
    *,
    precision: float = DEFAULT_NOISE_THRESHOLD,
    level: float = DEFAULT_LEVEL,
) -> int | None:
    """Paired repetitions for a verdict at `level` with an interval half-width of about
    `precision` (relative): the larger of `repetitions_for_level(level)` (an interval that
    reaches the level at all: 6 for 95%) and `repetitions_needed` with the spread of these
    pairs' log-ratios as cv (a log-ratio's stdev is the ratio's relative spread). To resolve a
    true difference d beyond criterion's threshold t, ask for precision d - t. None with fewer
    than 2 pairs (no spread to go on)."""
    logs = paired_log_ratios(a, b)
    if len(logs) < 2:
        return None
    sd = float(np.std(logs, ddof=1))
    floor = repetitions_for_level(level)
    return floor if sd == 0 else max(floor, repetitions_needed(sd, precision, level))


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
