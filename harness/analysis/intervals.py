"""Intervals whose coverage is known, and the words that say it (pure functions, no I/O).

An order-statistic interval of a median is distribution-free: the number of values below the
true median is Binomial(n, 1/2) whatever the distribution, so the coverage of [x_(k), x_(n-k+1)]
is exact, 1 - 2 P(B <= k - 1). With too few values for any pair to reach the level asked, the
min..max range is returned with its real, lower coverage (75% for 3, 93.75% for 5), never
stretched to the level asked. A percentile bootstrap's coverage is nominal (approximate, and
lower than nominal for a handful of values). `coverage_label` gives the words every interval of
the report carries.

Paired ratios: designs are interleaved inside each repetition (plan.py), so repetition i of A
and of B ran side by side and A_i / B_i cancels the machine's drift between repetitions. The
interval over repetitions is the order-statistic interval of the per-repetition log-ratios
(ranks are invariant under log/exp, so it is the interval of the ratios themselves), its
coverage exact from the binomial. `stats.compare_paired` puts criterion's rule on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

DEFAULT_LEVEL = 0.95  # the convention of pyperf and criterion (stats.DEFAULT_LEVEL)

# Below 6 values no pair of order statistics covers the median with 95% probability
# (min..max covers it with probability 1 - 2 * 0.5**n = 93.75% at n = 5, 96.9% at n = 6).
_MIN_N_ORDER_STATISTIC_95 = 6

# --------------------------------------------------------------------------------------------
# Confidence intervals of a median


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


def clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
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
    below = 0  # sum of comb(n, i) for i < k: _binom_half_cdf(k - 1, n) * 2**n, kept running
    for k in range(1, n // 2 + 1):
        below += math.comb(n, k - 1)
        coverage = 1.0 - 2.0 * (below / 2**n)
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
    arr = np.sort(clean(values))
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


# --------------------------------------------------------------------------------------------
# Coverage in words


def percent(p: float) -> str:
    """A coverage as a percentage to at most two decimals, truncated (never rounded up: an
    interval must not claim more coverage than it has): 0.75 -> 75%, 0.978515625 -> 97.85%."""
    hundredths = math.floor(p * 10_000 + 1e-9)
    return f"{hundredths / 100:.2f}".rstrip("0").rstrip(".") + "%"


def ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def coverage_label(interval: Interval | None) -> str:
    """The words an interval must carry wherever it is printed: its real coverage and how it
    was obtained.

    "75% (min-max of 3, order statistics)", "93.75% (min-max of 5, order statistics)",
    "97.85% (2nd-9th of 10, order statistics)", "95% bootstrap, nominal (n=5 a side, covers
    less below 10)", "no interval (1 repetition)", "no interval (no repetition)".
    """
    if interval is None or interval.n == 0:
        return "no interval (no repetition)"
    if interval.n < 2:
        return "no interval (1 repetition)"
    n = interval.n
    if interval.method is CIMethod.RANGE:
        return f"{percent(interval.level)} (min-max of {n}, order statistics)"
    if interval.method is CIMethod.ORDER_STATISTIC:
        ranks = order_statistic_ranks(n, interval.level - 1e-12)
        if ranks is None:  # an Interval built by hand: say what is known
            return f"{percent(interval.level)} (order statistics, n={n})"
        lo, hi, _coverage = ranks
        which = "min-max" if lo == 1 else f"{ordinal(lo)}-{ordinal(hi)}"
        return f"{percent(interval.level)} ({which} of {n}, order statistics)"
    small = ", covers less below 10" if n < 10 else ""
    return f"{percent(interval.level)} bootstrap, nominal (n={n} a side{small})"


# --------------------------------------------------------------------------------------------
# Paired ratios


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _by_repetition(
    values: Mapping[int, float | None] | Sequence[float | None],
) -> Mapping[int, float | None]:
    return values if isinstance(values, Mapping) else dict(enumerate(values))


def paired_log_ratios(
    a: Mapping[int, float | None] | Sequence[float | None],
    b: Mapping[int, float | None] | Sequence[float | None],
) -> np.ndarray:
    """ln(a_i / b_i) for every repetition i where both are positive numbers, in repetition
    order. Mappings are keyed by repetition; sequences are aligned by position. A repetition
    missing (None, NaN, not positive) on either side drops the pair, never one value of it."""
    ma, mb = _by_repetition(a), _by_repetition(b)
    pairs = [
        (float(ma[i]), float(mb[i]))  # type: ignore[arg-type]
        for i in sorted(set(ma) & set(mb))
        if _positive(ma[i]) and _positive(mb[i])
    ]
    return np.array([math.log(x / y) for x, y in pairs], dtype=float)


def paired_ratio_ci(
    a: Mapping[int, float | None] | Sequence[float | None],
    b: Mapping[int, float | None] | Sequence[float | None],
    level: float = DEFAULT_LEVEL,
) -> Interval | None:
    """The median per-repetition ratio A_i / B_i with the order-statistic interval of the
    log-ratios, exponentiated: coverage exact from the binomial (`level` of the result is the
    real coverage: 75% for 3 pairs, 93.75% for 5, 97.85% for the 2nd..9th of 10 at 95%).
    The estimate is exp(median of the log-ratios) (for an even count, the geometric mean of
    the two middle ratios). None without a single pair."""
    logs = paired_log_ratios(a, b)
    interval = median_ci(logs, level)
    if interval is None:
        return None
    return Interval(
        math.exp(interval.estimate),
        math.exp(interval.low),
        math.exp(interval.high),
        interval.level,
        interval.method,
        interval.n,
    )


def repetitions_for_level(level: float = DEFAULT_LEVEL) -> int:
    """The fewest paired repetitions whose interval can have coverage >= level at all: the
    min..max of n covers the median with 1 - 2 * 0.5**n (3 -> 75%, 5 -> 93.75%, 6 -> 96.88%),
    so a verdict at 95% needs 6 and one at 99% needs 8. A verdict also needs the interval to
    lie beyond the noise threshold, which at this n means every pair on the same side of it."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    n = 1
    while 1.0 - 2.0 * 0.5**n < level:
        n += 1
    return n


def sign_test_p(logs: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided exact sign test of "A_i / B_i is as often above 1 as below" (the paired test
    that matches the order-statistic interval; ties dropped). Its smallest reachable p is
    2 * 0.5**n: 0.25 at 3 pairs, 0.0625 at 5, 0.03125 at 6. None without untied pairs."""
    arr = clean(logs)
    above, below = int((arr > 0).sum()), int((arr < 0).sum())
    n = above + below
    if n == 0:
        return None
    return min(1.0, 2.0 * _binom_half_cdf(min(above, below), n))
