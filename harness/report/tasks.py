"""The report's words for tasks against structured concurrency (harness/analysis/tasks.py): per
workload, the published claim beside the measured ratios of server CPU per request and p99,
with interval and coverage, and where this machine cannot resolve them."""

from __future__ import annotations

from dataclasses import dataclass

from harness.analysis import stats
from harness.analysis.analyse import Analysis
from harness.analysis.tasks import (
    CLAIM_SOURCE,
    CLAIM_TEXT,
    ConcurrencyPair,
    MeasureRatio,
)
from harness.report.answer import why_not
from harness.report.format import cores_text, fmt_ratio

CLAIM = (
    f"{CLAIM_SOURCE} (a published figure, by the post's own method, not reproduced here): a task "
    f"per unit of concurrent work performs {CLAIM_TEXT} than structured concurrency, i.e. "
    "structured / task-per-connection of 0.33-0.50x at the most; here the units are connections "
    "of a network server and the measures server CPU per request and p99"
)
MEASURE_WORDS = {"server_cpu_us_per_request": "server CPU per request", "p99_us": "p99 latency"}
AGAINST_CLAIM = {
    "reaches": "reaches the claim's 2x",
    "below": "below the claim's 2x (the whole interval)",
    "straddles": "the interval includes the claim's 2x",
    None: "no interval",
}
UNRESOLVED = {
    "unranked": "a design has no ranked repetition (failed or flagged trials)",
    "noise": "criterion's rule does not separate them from no difference at this noise",
    "coverage": "too few paired repetitions for a 95% interval",
    "floor": "the p99s differ by less than the client's own hiccup p99",
}


@dataclass(frozen=True)
class TasksRow:
    where: str
    pair: str
    cpu: str
    cpu_coverage: str
    cpu_verdict: str
    cpu_claim: str
    p99: str
    p99_coverage: str
    p99_verdict: str
    p99_claim: str
    unresolved: str
    sentence: str
    css: str


def _verdict(m: MeasureRatio) -> str:
    return m.verdict.label("lower", "higher") if m.verdict else "insufficient data"


def _unresolved(m: MeasureRatio, floor_p99_us: float | None) -> str:
    parts = []
    for why in m.unresolved:
        text = UNRESOLVED[why]
        if why == "floor" and m.gap_us is not None and floor_p99_us is not None:
            text += f" ({m.gap_us:,.0f} µs against {floor_p99_us:,.0f} µs)"
        parts.append(text)
    return "; ".join(parts)


def _gain(m: MeasureRatio) -> str:
    """task-per-connection / structured, the claim's direction, with its interval."""
    r = m.ratio
    if r is None or r.low <= 0 or r.estimate <= 0:
        return "n/a"
    return f"{1 / r.estimate:.2f}x ({1 / r.high:.2f}-{1 / r.low:.2f})"


def row(p: ConcurrencyPair, floor_p99_us: float | None, analysis: Analysis) -> TasksRow:
    where = f"{cores_text(p.cores)}, {p.workload}"
    cpu_why = _unresolved(p.cpu, floor_p99_us)
    p99_why = _unresolved(p.p99, floor_p99_us)
    unresolved = "; ".join(
        f"{MEASURE_WORDS[m.measure]}: {why}"
        for m, why in ((p.cpu, cpu_why), (p.p99, p99_why))
        if why
    )
    if p.cpu.ratio is None and p.p99.ratio is None:
        by_key, kinds = analysis.by_key, analysis.flag_kinds
        why = "; ".join(
            why_not(by_key.get(k), k[0], kinds.get(k))
            for k in ((p.structured, p.cores, p.workload), (p.tasks, p.cores, p.workload))
        )
        sentence = f"At {where}, {p.structured} and {p.tasks} cannot be ranked: {why}."
    else:
        sentence = (
            f"At {where}, {p.structured} (structured) used {fmt_ratio(p.cpu.ratio)} the server "
            f"CPU per request of {p.tasks} (a task per connection): {_verdict(p.cpu)}; a task "
            f"per connection cost {_gain(p.cpu)} structured's, "
            f"{AGAINST_CLAIM[p.cpu.against_claim]}. Its p99 was {fmt_ratio(p.p99.ratio)}: "
            f"{_verdict(p.p99)}."
        )
        if unresolved:
            sentence += f" Not resolved here: {unresolved}."
    if p.flagged_cpu is not None or p.flagged_p99 is not None:
        sentence += (
            " Their trials with the flagged ones, paired by repetition (never ranked, no "
            "verdict: the flags say why their numbers may not be the servers'): structured / "
            f"task-per-connection server CPU per request {fmt_ratio(p.flagged_cpu)} "
            f"[{stats.coverage_label(p.flagged_cpu)}], p99 {fmt_ratio(p.flagged_p99)}."
        )
    css = {"lower": "better", "higher": "worse"}.get(_verdict(p.cpu), "neutral")
    return TasksRow(
        where=where,
        pair=f"{p.tasks} -> {p.structured}",
        cpu=fmt_ratio(p.cpu.ratio),
        cpu_coverage=stats.coverage_label(p.cpu.ratio),
        cpu_verdict=_verdict(p.cpu),
        cpu_claim=AGAINST_CLAIM[p.cpu.against_claim],
        p99=fmt_ratio(p.p99.ratio),
        p99_coverage=stats.coverage_label(p.p99.ratio),
        p99_verdict=_verdict(p.p99),
        p99_claim=AGAINST_CLAIM[p.p99.against_claim],
        unresolved=unresolved or "-",
        sentence=sentence,
        css=css,
    )


def rows(
    pairs: list[ConcurrencyPair], floor_p99_us: float | None, analysis: Analysis
) -> list[TasksRow]:
    return [row(p, floor_p99_us, analysis) for p in pairs]
