"""Tasks against structured concurrency (the registry's `concurrency` factor): per workload, each
controlled pair task-per-connection -> structured, their ratio of server CPU per request and of
p99 paired by repetition, set against the published claim, and why this machine cannot resolve
a ratio where it cannot. Pure: the words are the report's (harness/report/tasks.py).

The claim: the post "Tasks are the wrong abstraction" says that spawning a task per unit of
concurrent work (a `'static` future, an allocation and a trip through the scheduler each)
performs "up to 2-3x worse" than structured concurrency, where the futures are polled together
inside one task. As a ratio structured / task-per-connection that is 1/3 .. 1/2 at its largest;
"up to" makes it a ceiling, so a smaller gain does not contradict it, it only does not reach it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.analysis import stats
from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.decompose import designs_of
from harness.analysis.labels import nan_to_none
from harness.analysis.pairs import CPU_MEASURE, cpu_us_per_request, paired_compare
from harness.analysis.trial_figures import hiccup_floor
from harness.plan.designs import controlled_pairs

TASKS = "task-per-connection"
STRUCTURED = "structured"
# The published figure beside the measured ones: its source and what it compares.
CLAIM_SOURCE = 'the post "Tasks are the wrong abstraction"'
CLAIM_TEXT = "up to 2-3x worse"
CLAIM_GAIN = (2.0, 3.0)  # task-per-connection / structured at the claim's largest
MEASURES = (CPU_MEASURE, "p99_us")


@dataclass(frozen=True)
class MeasureRatio:
    """structured / task-per-connection on one measure (lower is better for both measures)."""

    measure: str
    ratio: stats.Interval | None  # median of per-repetition ratios, its interval and coverage
    verdict: stats.Comparison | None  # criterion's rule on that interval
    # Against the claim, from the interval of the gain (task-per-connection / structured =
    # 1 / ratio): "reaches" (the whole interval at or beyond 2x), "below" (wholly under 2x),
    # "straddles" (it includes 2x), None (no interval).
    against_claim: str | None
    # Why this machine cannot resolve the ratio, or () when it can: "noise" (criterion's verdict
    # is no change / within noise), "floor" (p99s closer than the client's hiccup p99),
    # "coverage" (too few pairs: the interval covers less than 95%), "unranked" (a
    # side has no ranked repetition).
    unresolved: tuple[str, ...] = ()
    gap_us: float | None = None  # p99 only: |structured - tasks| medians, against the floor


@dataclass(frozen=True)
class ConcurrencyPair:
    """One controlled concurrency pair in one workload."""

    cores: int
    workload: str
    mode: str
    tasks: str
    structured: str
    runtime: str
    ranked_tasks: int
    ranked_structured: int
    cpu: MeasureRatio
    p99: MeasureRatio
    # When a side has too few ranked repetitions for a verdict: the same ratios over every
    # successful trial, flagged ones included (never ranked, never a verdict; shown so that a
    # flagged run is not mute).
    flagged_cpu: stats.Interval | None = None
    flagged_p99: stats.Interval | None = None


def gain_against_claim(ratio: stats.Interval | None) -> str | None:
    """The gain interval (1 / ratio) against the claim's 2x lower bound."""
    if ratio is None or ratio.n < 2 or ratio.low <= 0 or ratio.high <= 0:
        return None  # one pair is no interval
    gain_low, gain_high = 1 / ratio.high, 1 / ratio.low
    if gain_low >= CLAIM_GAIN[0]:
        return "reaches"
    if gain_high < CLAIM_GAIN[0]:
        return "below"
    return "straddles"


def _measure(
    measure: str,
    tasks: ConfigSummary,
    structured: ConfigSummary,
    floor_p99_us: float | None,
) -> MeasureRatio:
    a = structured.by_rep.get(measure, {})
    b = tasks.by_rep.get(measure, {})
    ratio, verdict = paired_compare(a, b, higher_is_better=False)
    unresolved: list[str] = []
    if ratio is None:
        unresolved.append("unranked")
    else:
        if verdict is None or verdict.verdict in (
            stats.Verdict.NO_CHANGE,
            stats.Verdict.WITHIN_NOISE,
            stats.Verdict.INSUFFICIENT,
        ):
            unresolved.append("noise")
        if ratio.level < stats.DEFAULT_LEVEL:
            unresolved.append("coverage")
    gap = None
    if measure == "p99_us" and tasks.p99_us is not None and structured.p99_us is not None:
        gap = abs(structured.p99_us - tasks.p99_us)
        if floor_p99_us is not None and gap < floor_p99_us:
            unresolved.append("floor")
    return MeasureRatio(
        measure=measure,
        ratio=ratio,
        verdict=verdict,
        against_claim=gain_against_claim(ratio),
        unresolved=tuple(unresolved),
        gap_us=gap,
    )


def _unranked_ratio(
    trials: Any, structured: str, tasks: str, cores: int, label: str, column: str
) -> stats.Interval | None:
    """structured / tasks per repetition over every successful trial (flagged included)."""
    if trials is None or trials.empty or "label" not in trials:
        return None
    ok = trials[
        (trials["status"] == "ok") & (trials["server_cores"] == cores) & (trials["label"] == label)
    ]

    def by_rep(server: str) -> dict[int, float | None]:
        rows = ok[ok["server"] == server]
        out: dict[int, float | None] = {}
        for rep, value in zip(rows["repetition"], rows[column], strict=True):
            v = nan_to_none(value)
            out[int(rep)] = cpu_us_per_request(v) if column == "requests_per_server_cpu_s" else v
        return out

    return stats.paired_ratio_ci(by_rep(structured), by_rep(tasks), stats.DEFAULT_LEVEL)


def concurrency_pairs(analysis: Analysis, manifest: Mapping[str, Any]) -> list[ConcurrencyPair]:
    """Every concurrency pair measured in a workload, ordered by workload then runtime."""
    designs = {d.name: d for d in designs_of(manifest)}
    pairs = [
        p
        for p in controlled_pairs(designs.values())
        if p.factor == "concurrency" and {p.a_value, p.b_value} == {TASKS, STRUCTURED}
    ]
    if not pairs:
        return []
    floor_p99, _ = hiccup_floor(analysis.trials)
    by_key = analysis.by_key
    workloads = sorted({(s.server_cores, s.label, s.mode) for s in analysis.summaries})
    out = []
    for cores, label, mode in workloads:
        for p in pairs:
            tasks, structured = (p.a, p.b) if p.a_value == TASKS else (p.b, p.a)
            t = by_key.get((tasks, cores, label))
            s = by_key.get((structured, cores, label))
            if t is None or s is None:
                continue
            unranked = {}
            ranked = min(t.trials_ok - t.trials_flagged, s.trials_ok - s.trials_flagged)
            if ranked < stats.MIN_REPETITIONS:  # too few ranked for a verdict: show the flagged
                for column in ("requests_per_server_cpu_s", "p99_us"):
                    unranked[column] = _unranked_ratio(
                        analysis.trials, structured, tasks, cores, label, column
                    )
            out.append(
                ConcurrencyPair(
                    cores=cores,
                    workload=label,
                    mode=mode,
                    tasks=tasks,
                    structured=structured,
                    runtime=str(designs[tasks].runtime),
                    ranked_tasks=t.trials_ok - t.trials_flagged,
                    ranked_structured=s.trials_ok - s.trials_flagged,
                    cpu=_measure(CPU_MEASURE, t, s, floor_p99),
                    p99=_measure("p99_us", t, s, floor_p99),
                    flagged_cpu=unranked.get("requests_per_server_cpu_s"),
                    flagged_p99=unranked.get("p99_us"),
                )
            )
    out.sort(key=lambda r: (r.cores, r.runtime, r.workload))
    return out
