"""Two designs compared repetition by repetition (pure functions, no I/O).

The harness interleaves designs inside every repetition (plan.py), so repetition i of design A
and repetition i of design B ran side by side, minutes apart at most: their ratio A_i / B_i
cancels the machine's drift between repetitions (a neighbour's load, heat, frequency). The
comparison's estimate is the median of those ratios and its interval `stats.median_ci` of them:
distribution-free, its coverage exact from the binomial, and with fewer than 6 pairs the
min..max range labelled with its real, lower coverage (75% for 3, 93.75% for 5). The verdict is
criterion's rule on that interval (stats.verdict_for), never on a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from harness.analysis import stats
from harness.analysis.stats import Comparison, Interval, Verdict

# The measure a fixed-rate run ranks on: server CPU time per request (lower is better).
CPU_MEASURE = "server_cpu_us_per_request"


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def paired_ratios(a: Mapping[int, float | None], b: Mapping[int, float | None]) -> list[float]:
    """a_i / b_i for every repetition i where both are positive numbers, in repetition order."""
    return [
        float(a[i]) / float(b[i])  # type: ignore[arg-type]
        for i in sorted(set(a) & set(b))
        if _positive(a[i]) and _positive(b[i])
    ]


def paired_compare(
    a: Mapping[int, float | None],
    b: Mapping[int, float | None],
    *,
    higher_is_better: bool,
    threshold: float = stats.DEFAULT_NOISE_THRESHOLD,
    level: float = stats.DEFAULT_LEVEL,
) -> tuple[Interval | None, Comparison | None]:
    """A against B per repetition: the interval of the median ratio and criterion's verdict.

    The Comparison's `level` is the interval's real coverage (lower than `level` for a
    min..max range of few pairs); n_a = n_b = the number of pairs; no p-value (the verdict
    never used one)."""
    ratios = paired_ratios(a, b)
    interval = stats.median_ci(ratios, level) if ratios else None
    if interval is None:
        return None, None
    lo, hi = interval.low - 1.0, interval.high - 1.0
    if len(ratios) < stats.MIN_REPETITIONS:
        verdict = Verdict.INSUFFICIENT
    else:
        verdict = stats.verdict_for(lo, hi, threshold, higher_is_better=higher_is_better)
    comparison = Comparison(
        estimate=interval.estimate - 1.0,
        ci_low=lo,
        ci_high=hi,
        verdict=verdict,
        n_a=len(ratios),
        n_b=len(ratios),
        threshold=threshold,
        level=interval.level,
        p_value=None,
    )
    return interval, comparison


def cpu_us_per_request(requests_per_cpu_s: float | None) -> float | None:
    """Server CPU-µs per request from requests per server CPU-second (the trials table)."""
    if requests_per_cpu_s is None or not math.isfinite(requests_per_cpu_s):
        return None
    return 1e6 / requests_per_cpu_s if requests_per_cpu_s > 0 else None
