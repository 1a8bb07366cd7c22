"""harness/analysis/chain.py (pure): each step of a chain of controlled pairs, its paired ratio,
interval with honest coverage, verdict, and the product across the chain."""

from __future__ import annotations

import math

import pytest

from harness.analysis import stats
from harness.analysis.chain import (
    Span,
    chain_result,
    coverage_text,
    paired_ratios,
    step_result,
)
from harness.analysis.stats import CIMethod
from harness.plan.designs import factor_chain, load_registry

REGISTRY = load_registry()
CHAIN = factor_chain(REGISTRY.values(), "tokio-ws", "monoio-tpc")


def scaled(base: list[float], factor: float) -> list[float]:
    return [x * factor for x in base]


# Server CPU-µs per request, 5 repetitions, with drift shared by every design in a round.
BASE = [10.0, 10.4, 9.8, 10.9, 10.1]
VALUES = {
    "tokio-ws": BASE,
    "tokio-ws-reuseport": scaled(BASE, 1.0),  # accept: no change at all
    "tokio-tpc": scaled(BASE, 0.80),  # scheduler: 20% cheaper
    "monoio-epoll-tpc": [
        x * f for x, f in zip(scaled(BASE, 0.80), [1.01, 0.99, 1.0, 1.005, 0.995], strict=True)
    ],
    "monoio-tpc": scaled(scaled(BASE, 0.80), 1.25),  # io: 25% dearer
}


def test_the_chain_has_one_result_per_step_in_order():
    assert CHAIN is not None
    result = chain_result(
        CHAIN, VALUES, measure="server_cpu_us_per_request", higher_is_better=False
    )
    assert result is not None
    assert [(r.step.before, r.step.after, r.step.factor) for r in result.steps] == [
        ("tokio-ws", "tokio-ws-reuseport", "accept"),
        ("tokio-ws-reuseport", "tokio-tpc", "scheduler"),
        ("tokio-tpc", "monoio-epoll-tpc", "runtime"),
        ("monoio-epoll-tpc", "monoio-tpc", "io"),
    ]
    assert result.start == "tokio-ws" and result.end == "monoio-tpc"
    assert result.measure == "server_cpu_us_per_request" and not result.higher_is_better


def test_paired_ratios_cancel_drift_shared_by_a_round():
    result = chain_result(CHAIN, VALUES, measure="cpu", higher_is_better=False)
    assert result is not None
    accept, scheduler, runtime, io = result.steps
    # Paired, the drift cancels: exactly 1.0 and 0.8 in every repetition.
    assert accept.ratio == pytest.approx(1.0) and accept.verdict == "no change"
    assert scheduler.ratio == pytest.approx(0.8)
    assert scheduler.interval.low == pytest.approx(
        0.8
    ) and scheduler.interval.high == pytest.approx(0.8)
    # Lower CPU per request is better: 20% less is "faster".
    assert scheduler.verdict == "faster"
    assert runtime.verdict == "no change"  # [0.99, 1.01] contains 1
    assert io.ratio == pytest.approx(1.25) and io.verdict == "slower"


def test_unpaired_intervals_are_wider_and_labelled_nominal():
    paired = step_result(CHAIN[1], VALUES, higher_is_better=False)
    unpaired = step_result(CHAIN[1], VALUES, higher_is_better=False, paired=False)
    assert unpaired.interval.method is CIMethod.BOOTSTRAP
    assert "nominal" in unpaired.coverage
    width = unpaired.interval.high - unpaired.interval.low
    assert width > paired.interval.high - paired.interval.low


def test_within_noise_needs_the_interval_beyond_one_but_inside_the_threshold():
    before = [100.0] * 6
    after = [101.0, 101.5, 100.5, 101.2, 100.8, 101.1]  # +0.5% .. +1.5%, threshold 2%
    step = Span("a", "b", "runtime", "x", "y")
    r = step_result(step, {"a": before, "b": after})
    assert r.interval.low > 1.0 and r.interval.high < 1.02
    assert r.verdict == "within noise"
    faster = step_result(step, {"a": before, "b": scaled(after, 1.1)})
    assert faster.verdict == "faster"  # throughput: higher is better
    assert step_result(step, {"a": before, "b": scaled(after, 0.9)}).verdict == "slower"


def test_the_caller_names_the_verdicts():
    step = Span("a", "b", "io", "epoll", "uring-oneshot")
    r = step_result(
        step,
        {"a": [10.0] * 3, "b": [5.0] * 3},
        higher_is_better=False,
        better="cheaper",
        worse="dearer",
    )
    assert r.verdict == "cheaper"


def test_coverage_is_labelled_honestly():
    step = Span("a", "b", "io", "epoll", "uring-oneshot")
    three = step_result(step, {"a": [1.0, 1.0, 1.0], "b": [1.1, 1.2, 1.3]})
    assert three.interval.method is CIMethod.RANGE
    assert three.interval.level == pytest.approx(0.75)
    assert three.coverage == "min..max of 3, 75% coverage"
    five = step_result(step, {"a": [1.0] * 5, "b": [1.1, 1.2, 1.3, 1.2, 1.1]})
    assert five.coverage == "min..max of 5, 93.7% coverage"  # 93.75%, rounded down, not up
    nine = step_result(step, {"a": [1.0] * 9, "b": [1.0 + i / 100 for i in range(9)]})
    assert nine.interval.method is CIMethod.ORDER_STATISTIC
    assert nine.interval.level >= stats.DEFAULT_LEVEL
    assert "order-statistic" in nine.coverage
    assert coverage_text(nine.interval) == nine.coverage


def test_missing_and_flagged_repetitions_are_left_out_of_the_pairs():
    assert paired_ratios([1.0, None, 2.0, math.nan, 4.0], [2.0, 3.0, None, 1.0, 8.0]) == [2.0, 2.0]
    step = Span("a", "b", "io", "epoll", "uring-oneshot")
    two = step_result(step, {"a": [1.0, None, 2.0], "b": [2.0, 3.0, 4.0]})
    assert two.n == 2 and two.verdict == "insufficient data"
    none = step_result(step, {"a": [1.0], "b": []})
    assert none.ratio is None and none.interval is None and none.verdict == "insufficient data"
    assert "insufficient data" in none.describe()


def test_the_product_composes_the_steps_and_the_ends_are_compared_directly():
    result = chain_result(CHAIN, VALUES, measure="cpu", higher_is_better=False)
    assert result is not None
    assert result.product == pytest.approx(math.prod(r.ratio for r in result.steps))
    e2e = result.end_to_end
    assert e2e is not None
    assert (e2e.step.before, e2e.step.after) == ("tokio-ws", "monoio-tpc")
    assert e2e.step.factor == "accept, scheduler, runtime, io"
    assert e2e.ratio == pytest.approx(0.8 * 1.25)
    assert e2e.verdict == "no change"  # the scheduler's gain and io's loss cancel here
    assert "tokio-ws -> monoio-tpc (accept, scheduler, runtime, io): " in e2e.describe()


def test_a_step_without_values_leaves_no_product():
    values = {k: v for k, v in VALUES.items() if k != "monoio-epoll-tpc"}
    result = chain_result(CHAIN, values, measure="cpu")
    assert result is not None
    assert result.steps[2].ratio is None and result.steps[3].ratio is None
    assert result.product is None
    assert result.end_to_end is not None and result.end_to_end.ratio is not None
    assert chain_result([], VALUES, measure="cpu") is None


def test_describe_names_the_factor_and_its_values():
    result = chain_result(CHAIN, VALUES, measure="cpu", higher_is_better=False)
    assert result is not None
    line = result.steps[1].describe()
    assert line.startswith(
        "tokio-ws-reuseport -> tokio-tpc (scheduler: work-stealing -> per-core): 0.800x"
    )
    assert "min..max of 5, 93.7% coverage" in line and line.endswith(": faster")
