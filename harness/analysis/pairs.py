"""Two designs compared repetition by repetition (pure functions, no I/O).

The harness interleaves designs inside every repetition (plan.py), so repetition i of design A
and repetition i of design B ran side by side, minutes apart at most: their ratio A_i / B_i
cancels the machine's drift between repetitions (a neighbour's load, heat, frequency). The
comparison's estimate is the median of those ratios and its interval an order-statistic interval
of them (stats.paired_ratio_ci): distribution-free, its coverage exact from the binomial, and
with fewer than 6 pairs the min..max range labelled with its real, lower coverage (75% for 3,
93.75% for 5). The verdict is criterion's rule on that interval (stats.compare_paired), never on
a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from harness.analysis import stats
from harness.analysis.stats import Comparison, Interval

# The measure a fixed-rate run ranks on: server CPU time per request (lower is better).
CPU_MEASURE = "server_cpu_us_per_request"


def paired_compare(
    a: Mapping[int, float | None],
    b: Mapping[int, float | None],
    *,
    higher_is_better: bool,
    threshold: float = stats.DEFAULT_NOISE_THRESHOLD,
    level: float = stats.DEFAULT_LEVEL,
) -> tuple[Interval | None, Comparison | None]:
    """A against B per repetition: the interval of the median ratio (stats.paired_ratio_ci, its
    `level` the real coverage) and criterion's verdict on it (stats.compare_paired: n_a = n_b =
    the pairs; the sign test's p-value for information only)."""
    interval = stats.paired_ratio_ci(a, b, level)
    if interval is None:
        return None, None
    comparison = stats.compare_paired(
        a, b, threshold=threshold, higher_is_better=higher_is_better, level=level
    )
    return interval, comparison


def cpu_us_per_request(requests_per_cpu_s: float | None) -> float | None:
    """Server CPU-µs per request from requests per server CPU-second (the trials table)."""
    if requests_per_cpu_s is None or not math.isfinite(requests_per_cpu_s):
        return None
    return 1e6 / requests_per_cpu_s if requests_per_cpu_s > 0 else None
