"""Numbers in words and digits, shared by every presentation (HTML, exports, compare)."""

from __future__ import annotations

import math

from harness.analysis import stats


def fmt(value: float | None, spec: str = ",.0f", none: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec)


def fmt_us(value: float | None) -> str:
    """Latency in µs with three significant figures (the histogram's own precision)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def fmt_ratio(i: stats.Interval | None) -> str:
    if i is None:
        return "n/a"
    return f"{i.estimate:.2f}x ({i.low:.2f}-{i.high:.2f})"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def coverage(i: stats.Interval | None) -> str:
    """What an interval promises, in words (a 3-repetition range is not a 95% interval)."""
    if i is None:
        return ""
    if i.method is stats.CIMethod.RANGE:
        if i.n < 2:
            return "one repetition: no interval"
        return f"min-max of {i.n}: covers the median with {i.level * 100:.3g}% probability, not 95%"
    if i.method is stats.CIMethod.ORDER_STATISTIC:
        return f"{i.level * 100:.3g}% order-statistic interval of the median (n={i.n})"
    text = f"{i.level:.0%} bootstrap interval (n={i.n} a side)"
    if i.n < 6:
        text += "; with fewer than 6 repetitions a side it covers less than its nominal level"
    return text


def cores_text(k: int) -> str:
    return plural(k, "core")


def interval_text(i: stats.Interval | None) -> str:
    if i is None:
        return ""
    return f"{i.low:,.0f}-{i.high:,.0f}"


def coverage_short(i: stats.Interval | None) -> str:
    if i is None:
        return ""
    if i.method is stats.CIMethod.RANGE:
        return "1 trial" if i.n < 2 else f"{i.level * 100:.3g}% (min-max of {i.n})"
    if i.method is stats.CIMethod.ORDER_STATISTIC:
        return f"{i.level * 100:.3g}% (order statistics, n={i.n})"
    return f"{i.level:.0%} bootstrap (n={i.n})"
