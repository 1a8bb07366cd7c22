"""The answer, decomposed: each step of a chain of controlled pairs with its ratio and interval.

Monoio's "2x/3x over tokio" changes several things at once. A chain of controlled pairs
(harness/plan/designs.py `factor_chain`, e.g. tokio-ws -> tokio-ws-reuseport -> tokio-tpc ->
monoio-epoll-tpc -> monoio-tpc: accept topology, stealing, runtime, io_uring) changes one factor
per step, so each step's ratio on the ranked measure is that factor's share of the difference on
this machine. Pure functions: per-repetition values of the ranked measure per design in, one
`StepResult` per step out, with its verdict in criterion's terms and its interval's real coverage.

Pairing: repetition i of every design ran in the same round of the run (the harness interleaves
designs within a repetition), so the step's ratio is taken per repetition, after_i / before_i,
which cancels drift common to both (a neighbour's load, frequency); the estimate is the median of
those ratios and the interval is `stats.median_ci` of them: distribution-free, its coverage
exact (binomial), and with fewer than 6 pairs the min..max range labelled with its real, lower
coverage (75% for 3). Unpaired values (`paired=False`) use `stats.ratio_ci`'s bootstrap instead,
labelled nominal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis import stats
from harness.analysis.stats import CIMethod, Interval, Verdict
from harness.plan.designs import Step

# A chain's two ends as one step, whatever changes between them (`factor` lists every factor
# the chain changes, the values are empty): the plan's Step, so a span is drawn like a step.
Span = Step


@dataclass(frozen=True)
class StepResult:
    """One step: `after` relative to `before` on the ranked measure.

    ratio = median over repetitions of after_i / before_i (None without a usable pair).
    verdict: "faster" / "slower" (or the caller's words) when the interval lies wholly beyond
    the noise threshold, "within noise" when it excludes 1 but reaches inside the threshold,
    "no change" when it contains 1, "insufficient data" below stats.MIN_REPETITIONS pairs.
    """

    step: Step
    ratio: float | None
    interval: Interval | None
    verdict: str
    n: int
    coverage: str

    @property
    def change(self) -> float | None:
        """Relative change, ratio - 1."""
        return None if self.ratio is None else self.ratio - 1.0

    def describe(self) -> str:
        """`tokio-ws -> tokio-ws-reuseport (accept: shared-listener -> reuseport): 0.970x
        [0.951, 0.990] (min..max of 3, 75% coverage): slower`."""
        s = self.step
        what = f"{s.before} -> {s.after} ({s.factor}"
        what += f": {s.before_value} -> {s.after_value})" if s.before_value else ")"
        if self.ratio is None or self.interval is None:
            return f"{what}: {self.verdict}"
        iv = self.interval
        return (
            f"{what}: {self.ratio:.3f}x [{iv.low:.3f}, {iv.high:.3f}] ({self.coverage}): "
            f"{self.verdict}"
        )


@dataclass(frozen=True)
class ChainResult:
    """Every step of a chain, the product of their ratios, and the chain's two ends compared.

    `product` multiplies the steps' median ratios: how the steps compose, as the chart draws
    them. `end_to_end` is `end` against `start` directly (the median of end_i / start_i): the
    figure with an interval. They differ when repetitions are missing or skewed (a median of
    products is not a product of medians), so both are given and neither stands in for the other.
    """

    start: str
    end: str
    measure: str
    higher_is_better: bool
    steps: tuple[StepResult, ...]
    product: float | None
    end_to_end: StepResult | None


def _coverage_pct(level: float) -> str:
    """A coverage as a percentage rounded DOWN to 0.1% (93.75% -> 93.7%): never overstated."""
    return f"{math.floor(level * 1000 + 1e-9) / 10:g}%"


def coverage_text(interval: Interval) -> str:
    """What an interval promises, in words: its method and its real (or nominal) coverage."""
    if interval.method is CIMethod.RANGE:
        return f"min..max of {interval.n}, {_coverage_pct(interval.level)} coverage"
    if interval.method is CIMethod.ORDER_STATISTIC:
        return f"{_coverage_pct(interval.level)} order-statistic interval of {interval.n}"
    return f"{_coverage_pct(interval.level)} bootstrap interval of {interval.n}, nominal"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def paired_ratios(before: Sequence[float | None], after: Sequence[float | None]) -> list[float]:
    """after_i / before_i for every repetition i where both are positive numbers."""
    return [
        float(a) / float(b)
        for b, a in zip(before, after, strict=False)
        if _finite(b) and _finite(a)  # type: ignore[arg-type]
    ]


def _label(verdict: Verdict, better: str, worse: str) -> str:
    if verdict is Verdict.BETTER:
        return better
    if verdict is Verdict.WORSE:
        return worse
    return str(verdict)


def step_result(
    step: Step,
    values: Mapping[str, Sequence[float | None]],
    *,
    higher_is_better: bool = True,
    paired: bool = True,
    threshold: float = stats.DEFAULT_NOISE_THRESHOLD,
    level: float = stats.DEFAULT_LEVEL,
    better: str = "faster",
    worse: str = "slower",
) -> StepResult:
    """One step's ratio, interval and verdict from per-repetition values per design."""
    before = list(values.get(step.before, ()))
    after = list(values.get(step.after, ()))
    interval: Interval | None
    if paired:
        ratios = paired_ratios(before, after)
        n = len(ratios)
        interval = stats.median_ci(ratios, level) if ratios else None
    else:
        clean_b = [float(x) for x in before if _finite(x)]
        clean_a = [float(x) for x in after if _finite(x)]
        n = min(len(clean_a), len(clean_b))
        interval = stats.ratio_ci(clean_a, clean_b, level=level)
    if interval is None:
        return StepResult(step, None, None, str(Verdict.INSUFFICIENT), 0, "")
    if n < stats.MIN_REPETITIONS:
        verdict = Verdict.INSUFFICIENT
    else:
        verdict = stats.verdict_for(
            interval.low - 1.0, interval.high - 1.0, threshold, higher_is_better=higher_is_better
        )
    return StepResult(
        step,
        interval.estimate,
        interval,
        _label(verdict, better, worse),
        n,
        coverage_text(interval),
    )


def chain_result(
    steps: Sequence[Step],
    values: Mapping[str, Sequence[float | None]],
    *,
    measure: str,
    **judging: Any,
) -> ChainResult | None:
    """Every step of `steps` (a chain from factor_chain) judged on `measure`, whose values per
    design (`values[design][i]`: repetition i; None or NaN where it failed or was flagged) are
    paired by repetition; `judging`: step_result's keyword arguments (higher_is_better, paired,
    threshold, level, better, worse), the same for every step. None for an empty chain."""
    if not steps:
        return None
    results = tuple(step_result(s, values, **judging) for s in steps)
    ratios = [r.ratio for r in results]
    product = math.prod(ratios) if all(r is not None for r in ratios) else None  # type: ignore[arg-type]
    first, last = steps[0], steps[-1]
    changed = ", ".join(dict.fromkeys(s.factor for s in steps))
    span = Span(first.before, last.after, changed, "", "")
    end_to_end = step_result(span, values, **judging)
    higher_is_better = bool(judging.get("higher_is_better", True))
    return ChainResult(
        first.before, last.after, measure, higher_is_better, results, product, end_to_end
    )
