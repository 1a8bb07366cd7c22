"""The answer first: each thread-per-core / work-stealing comparison of the analysis as a table
row and a sentence, why a run could not rank anything, and what to do about it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.analysis import stats
from harness.analysis.analyse import Analysis, ConfigSummary, DesignComparison
from harness.analysis.flagged import dominant_flag, flag_counts, kinds_text
from harness.analysis.tasks import concurrency_pairs
from harness.analysis.trial_figures import failure_counts, hiccup_floor
from harness.plan import cpus
from harness.report.flag_words import failure_words, flag_names
from harness.report.format import cores_text, fmt, fmt_ratio, plural


@dataclass
class PairRow:
    """One thread-per-core / work-stealing comparison, formatted."""

    headline: bool
    cores: int
    workload: str
    mode: str
    tpc: str
    ws: str
    throughput: str
    throughput_verdict: str
    throughput_change: str
    p99: str
    p99_verdict: str
    n: str
    p_value: str
    sentence: str
    note: str = ""
    css: str = ""
    cpu: str = ""  # tpc / ws server CPU-µs per request, with its interval
    cpu_verdict: str = ""
    coverage: str = ""  # what the row's intervals promise (stats.coverage_label)


def _verdict_css(label: str) -> str:
    return {"faster": "better", "lower": "better", "slower": "worse", "higher": "worse"}.get(
        label, "neutral"
    )


def why_not(s: ConfigSummary | None, server: str, kinds: Counter[str] | None = None) -> str:
    """Why a design has no ranked trial in a configuration (kinds: how many of its trials
    carry each flag, when the caller has the trials)."""
    if s is None:
        return f"{server} did not run this configuration"
    total = s.trials_ok + s.trials_failed
    ranked = s.trials_ok - s.trials_flagged
    parts = [f"{server}: {ranked} ranked of {plural(total, 'trial')}"]
    if s.trials_failed:
        parts.append(f"{s.trials_failed} failed")
    if s.trials_flagged:
        what = kinds_text(kinds) if kinds else "; ".join(flag_names(s))
        parts.append(f"{s.trials_flagged} flagged ({what})")
    return ", ".join(parts)


def unresolvable_gap(
    a: ConfigSummary | None, b: ConfigSummary | None, floor_p99_us: float | None
) -> float | None:
    """The two designs' p99 difference (µs) when it is smaller than the machine's own noise
    floor (the client's hiccup p99), else None: such a difference is not resolvable here."""
    if floor_p99_us is None or a is None or b is None or a.p99_us is None or b.p99_us is None:
        return None
    gap = abs(a.p99_us - b.p99_us)
    return gap if gap < floor_p99_us else None


def floor_text(p99_us: float | None, max_us: float | None) -> str:
    if p99_us is None:
        return "not measured (no trial has a client hiccup meter)"
    top = f", max {max_us:,.0f} µs" if max_us is not None else ""
    return (
        f"hiccup p99 {p99_us:,.0f} µs{top} (1 ms sleeps' overshoot on the load generator's "
        "CPUs; the worst client CPU of any trial). A p99 difference smaller than the p99 is "
        "not resolvable on this machine."
    )


def pair_row(
    c: DesignComparison,
    a: ConfigSummary | None,
    b: ConfigSummary | None,
    kinds: dict[tuple[str, int, str], Counter[str]] | None = None,
    floor_p99_us: float | None = None,
) -> PairRow:
    mode = a.mode if a else (b.mode if b else "closed")
    kind = (a.latency_kind if a else None) or "closed-loop"
    verdict = c.verdict.label("faster", "slower") if c.verdict else "insufficient data"
    change = ""
    if c.verdict:
        change = f"{c.verdict.estimate:+.1%} [{c.verdict.ci_low:+.1%}, {c.verdict.ci_high:+.1%}]"
    p99c = c.p99_verdict
    p99_verdict = p99c.label("lower", "higher") if p99c else "insufficient data"
    gap = unresolvable_gap(a, b, floor_p99_us)
    if gap is not None:
        p99_verdict = (
            f"not resolvable on this machine (the p99s differ by {gap:,.0f} µs, less than the "
            f"client's hiccup p99 of {floor_p99_us:,.0f} µs)"
        )
    n_a = len(a.throughput_samples) if a else 0
    n_b = len(b.throughput_samples) if b else 0
    p_value = fmt(c.verdict.p_value, ".2g") if c.verdict and c.verdict.p_value is not None else ""
    kinds = kinds or {}
    at = f"At {cores_text(c.server_cores)} on {c.workload}"
    why = "; ".join(
        w
        for w in (
            why_not(
                a, c.thread_per_core, kinds.get((c.thread_per_core, c.server_cores, c.workload))
            )
            if n_a == 0
            else "",
            why_not(b, c.work_stealing, kinds.get((c.work_stealing, c.server_cores, c.workload)))
            if n_b == 0
            else "",
        )
        if w
    )
    why = why or "a median is not positive, so no ratio exists"
    cpu_verdict = c.cpu_verdict.label("faster", "slower") if c.cpu_verdict else "insufficient data"
    if mode == "open":
        throughput, verdict, change = "offered load", "not compared", ""
        if c.p99_ratio is None and c.cpu_ratio is None:
            sentence = f"{at}, {c.thread_per_core} and {c.work_stealing} cannot be compared: {why}."
        else:
            rates = ""
            if a and b and a.achieved_rate and b.achieved_rate:
                rates = (
                    f" ({c.thread_per_core} at {a.achieved_rate:,.0f} req/s, "
                    f"{c.work_stealing} at {b.achieved_rate:,.0f} req/s)"
                )
            cpu_part = (
                f"thread-per-core ({c.thread_per_core}) used {fmt_ratio(c.cpu_ratio)} the server "
                f"CPU per request of work-stealing ({c.work_stealing}): {cpu_verdict}; "
                if c.cpu_ratio is not None
                else ""
            )
            sentence = (
                f"{at}{rates}, {cpu_part}the p99 latency of thread-per-core, measured "
                f"from the intended send time, was {fmt_ratio(c.p99_ratio)} that of "
                f"work-stealing: {p99_verdict}."
            )
    elif c.throughput_ratio is None:
        throughput = "n/a"
        sentence = f"{at}, {c.thread_per_core} and {c.work_stealing} cannot be compared: {why}."
    else:
        throughput = fmt_ratio(c.throughput_ratio)
        sentence = (
            f"{at}, thread-per-core ({c.thread_per_core}) served {throughput} the requests per "
            f"second of work-stealing ({c.work_stealing}): {verdict}"
        )
        if c.p99_ratio is not None:
            sentence += (
                f"; its {kind} p99 latency was {fmt_ratio(c.p99_ratio)} (no verdict: at a fixed "
                "number of connections the closed-loop p99 restates throughput)"
            )
        sentence += "."
        p99_verdict = "no verdict (closed loop)"
    note = "†" if (c.throughput_ratio or c.p99_ratio) and min(n_a, n_b) < 6 else ""
    if mode == "open":
        p_value = ""
    return PairRow(
        headline=c.headline,
        cores=c.server_cores,
        workload=c.workload,
        mode=mode,
        tpc=c.thread_per_core,
        ws=c.work_stealing,
        throughput=throughput,
        throughput_verdict=verdict,
        throughput_change=change,
        p99=fmt_ratio(c.p99_ratio),
        p99_verdict=p99_verdict,
        n=f"{n_a} vs {n_b}",
        p_value=p_value,
        sentence=sentence,
        note=note,
        css=_verdict_css(verdict if mode == "closed" else cpu_verdict),
        cpu=fmt_ratio(c.cpu_ratio),
        cpu_verdict=cpu_verdict if c.cpu_ratio is not None else "",
        coverage=stats.coverage_label(c.throughput_ratio or c.cpu_ratio or c.p99_ratio),
    )


# What to do about a run whose trials were all flagged, by the flag most of them carry.
ADVICE = {
    "client_bound": (
        "the load generator could not outrun the server: give it more CPUs (a machine with "
        f"more cores: the harness gives {cpus.CLIENT_PER_SERVER_CORE} client CPUs per server "
        "core when it can; --client-cpus), or measure below capacity in open loop (--mode open "
        "--rate-sweep 0.5,0.8), or make the server do more per request (--work fixed:20)."
    ),
    "contended": (
        "other processes used the trial's CPUs: stop them (see harness doctor) and run again."
    ),
    "oversubscribed": "use --cores within the machine.",
    "unsteady": "throughput drifted inside the window: lengthen --duration / --warmup.",
    "rate_missed": "the servers fell behind the schedule: lower the offered rates.",
}


def advice(trials: pd.DataFrame) -> str | None:
    flag = dominant_flag(trials)
    return ADVICE.get(flag) if flag else None


def unrankable(trials: pd.DataFrame, analysis: Analysis, manifest: dict[str, Any]) -> str | None:
    """Why no pair of designs could be ranked in this run, or None when one could."""
    if any(c.throughput_ratio or c.p99_ratio or c.cpu_ratio for c in analysis.comparisons):
        return None
    if any(p.cpu.ratio or p.p99.ratio for p in concurrency_pairs(analysis, manifest)):
        return None  # a tasks / structured run: its pairs are ranked (report/tasks.py)
    if trials.empty:
        outcome = manifest.get("outcome") or {}
        if outcome.get("interrupted"):
            return "the run was interrupted before its first trial finished: it has no trials."
        return "this run has no trials."
    n = len(trials)
    ok = trials["status"] == "ok"
    if not ok.any():
        top = "; ".join(
            f"{failure_words(c.kind, c.reason)} ({c.count})" for c in failure_counts(trials)[:3]
        )
        return f"all {n} trials failed, so nothing was measured ({top}). See the failed trials."
    if not trials["ranked"].any():
        flagged = trials[trials["flagged"]]
        kinds = kinds_text(flag_counts(flagged))
        return (
            f"every successful trial was flagged ({kinds}): their numbers may not be the "
            "server's, so none is ranked. They are drawn below, marked as flagged, and their "
            "medians are in the table of every configuration."
        )
    ranked = trials[trials["ranked"]]
    families = set(ranked["design_family"])
    if "thread-per-core" not in families:
        return "no thread-per-core design has a ranked trial in this run."
    if "work-stealing" not in families:
        return "no work-stealing design has a ranked trial in this run."
    return (
        "no configuration has ranked trials of both a thread-per-core and a work-stealing "
        "design (they ran, or succeeded, in different configurations)."
    )


@dataclass
class Answer:
    headline: list[PairRow] = field(default_factory=list)
    others: list[PairRow] = field(default_factory=list)
    summary: str = ""
    unrankable: str | None = None
    advice: str | None = None  # what to do when flags made the run unrankable
    floor: str = ""  # the client's hiccup floor, stated beside every p99
    any_dagger: bool = False


def answer(analysis: Analysis, manifest: dict[str, Any]) -> Answer:
    trials = analysis.trials
    by_key = analysis.by_key
    floor_p99, floor_max = hiccup_floor(trials)
    out = Answer(
        unrankable=unrankable(trials, analysis, manifest), floor=floor_text(floor_p99, floor_max)
    )
    if out.unrankable and not trials.empty:
        out.advice = advice(trials)
    kinds = analysis.flag_kinds
    for c in analysis.comparisons:
        a = by_key.get((c.thread_per_core, c.server_cores, c.workload))
        b = by_key.get((c.work_stealing, c.server_cores, c.workload))
        row = pair_row(c, a, b, kinds, floor_p99)
        (out.headline if c.headline else out.others).append(row)
        out.any_dagger |= bool(row.note)
    # Closed-loop rows first: they answer "who serves more"; open-loop rows answer "whose tail".
    for rows in (out.headline, out.others):
        rows.sort(key=lambda r: (r.mode != "closed", r.workload, r.cores, r.tpc, r.ws))
    closed = analysis.headline_closed()
    if closed:
        counts = Counter(
            c.verdict.label("faster", "slower") if c.verdict else "insufficient data"
            for c in closed
        )
        words = ", ".join(
            f"\u201c{w}\u201d in {counts[w]}"
            for w in ("faster", "slower", "within noise", "no change", "insufficient data")
            if counts[w]
        )
        gm = analysis.headline_geometric_mean()
        out.summary = (
            f"Headline pair, {closed[0].thread_per_core} against {closed[0].work_stealing} (the "
            "same tokio runtime and I/O code; they differ in two factors, the scheduler and the "
            "accept topology (one shared listener against one SO_REUSEPORT listener per worker), "
            "so the difference is not the scheduler's alone): criterion's verdict on "
            f"thread-per-core's throughput was {words} of "
            f"{plural(len(closed), 'closed-loop configuration')}"
            + (f"; geometric mean of the throughput ratios {gm:.2f}x." if gm else ".")
        )
    elif analysis.comparisons and not out.headline:
        out.summary = (
            "The headline pair (tokio-tpc against tokio-ws: the same runtime, differing in "
            "scheduler and accept topology) was "
            "not run; the pairs below compare designs that also differ in runtime or I/O code, "
            "so a difference is not the scheduler's alone."
        )
    return out
