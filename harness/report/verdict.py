"""The report's first sentence (the ranked thread-per-core / work-stealing verdict with its
interval), what the run measured and why (from the calibration), and the chain table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.analysis.analyse import Analysis, DesignComparison
from harness.analysis.chain import coverage_text
from harness.analysis.decompose import MEASURE_WORDS, ChainView, ranked_measure
from harness.analysis.pairs import CPU_MEASURE
from harness.analysis.stats import Comparison, Interval
from harness.report.format import cores_text, fmt

MODE_WORDS = {
    "fixed-rate": "fixed-rate efficiency (open loop at the same absolute rates for every "
    "design, ranked on server CPU-µs per request, with latency at that rate beside it)",
    "server-bound": "server-bound throughput (closed loop with per-request CPU work, so the "
    "server, not the load generator, is the bottleneck)",
    "closed-loop": "peak closed-loop throughput",
    "as-given": "the plan as given on the command line",
}


def _pick(c: DesignComparison, measure: str) -> tuple[Interval | None, Comparison | None]:
    if measure == CPU_MEASURE:
        return c.cpu_ratio, c.cpu_verdict
    if measure == "p99_us":
        return c.p99_ratio, c.p99_verdict
    return c.throughput_ratio, c.verdict


def first_sentence(analysis: Analysis, manifest: dict[str, Any]) -> str | None:
    """Thread-per-core against work-stealing on the ranked measure, with verdict and interval,
    for the headline pair (else the first pair by name) in every configuration it ran."""
    comparisons = analysis.comparisons
    if not comparisons:
        return None
    pairs = sorted({(c.thread_per_core, c.work_stealing, not c.headline) for c in comparisons})
    chosen = min(pairs, key=lambda p: (p[2], p[0], p[1]))
    rows = [
        c for c in comparisons if (c.thread_per_core, c.work_stealing) == (chosen[0], chosen[1])
    ]
    parts = []
    measure = ""
    for c in sorted(rows, key=lambda c: (c.server_cores, c.workload)):
        s = analysis.by_key.get((c.thread_per_core, c.server_cores, c.workload))
        measure, _ = ranked_measure(manifest, s.mode if s else "closed", s.load if s else None)
        interval, verdict = _pick(c, measure)
        if interval is None or verdict is None:
            continue
        what = (
            "used {r} the server CPU per request"
            if measure == CPU_MEASURE
            else "served {r} the requests per second"
            if measure == "throughput_rps"
            else "had {r} the p99 latency"
        ).format(r=f"{interval.estimate:.2f}x [{interval.low:.2f}, {interval.high:.2f}]")
        parts.append(
            f"{verdict.label('faster', 'slower')} at {cores_text(c.server_cores)}, "
            f"{c.workload} (it {what}, {coverage_text(interval)})"
        )
    if not parts:
        return None
    tpc, ws = chosen[0], chosen[1]
    return (
        f"Thread-per-core ({tpc}) against work-stealing ({ws}), ranked on "
        f"{MEASURE_WORDS.get(measure, measure)}: " + "; ".join(parts) + "."
    )


@dataclass
class Measurement:
    """What the run measured, who chose it and why; the calibration's figures."""

    mode: str
    words: str
    chosen_by: str
    reason: str
    groups: list[dict[str, Any]] = field(default_factory=list)
    floor: str = ""
    calibrated: bool = False
    directory: str = ""


def measurement(manifest: dict[str, Any]) -> Measurement | None:
    m = manifest.get("measurement")
    if not m:
        return None
    cal = manifest.get("calibration") or {}
    groups = []
    for g in m.get("groups") or []:
        client = g.get("client") or {}
        choice = g.get("choice") or {}
        cap = choice.get("cap") or {}
        caps = ", ".join(
            f"{c['design']} {fmt(c.get('rate'))} req/s"
            + (" (client-bound)" if c.get("client_bound") else "")
            for c in choice.get("capacities") or []
        )
        rates = (choice.get("rates") or {}).get("rates") or []
        groups.append(
            {
                "label": g.get("label", ""),
                "client": (
                    f"{'at least ' if client.get('lower_bound') else ''}"
                    f"{fmt(client.get('rate'))} req/s"
                )
                if client.get("rate")
                else "not measured",
                "client_reason": client.get("reason", ""),
                "cap": f"{fmt(cap.get('rate'))} req/s" if cap.get("rate") else "none",
                "capacities": caps or "not measured",
                "planned": ", ".join(f"{fmt(r)} req/s" for r in rates)
                or (f"--work {choice['work']}" if choice.get("work") else "")
                or g.get("left_out", ""),
            }
        )
    floor = cal.get("server_floor") or {}
    floor_text = (
        f"hiccup p99 {floor['p99_us']:,.0f} µs, max {floor['max_us']:,.0f} µs on server CPU(s) "
        f"{', '.join(str(c) for c in floor.get('cpus', []))} over {floor.get('seconds')} s with "
        "no server running"
        if floor
        else ""
    )
    return Measurement(
        mode=str(m.get("mode")),
        words=MODE_WORDS.get(str(m.get("mode")), str(m.get("mode"))),
        chosen_by=str(m.get("chosen_by")),
        reason=str(m.get("reason", "")),
        groups=groups,
        floor=floor_text,
        calibrated=bool(cal.get("calibrated")),
        directory=str(cal.get("directory") or ""),
    )


def chain_rows(views: list[ChainView]) -> list[dict[str, Any]]:
    """Every chain step as a table row: ratio, interval, its coverage, verdict."""
    rows = []
    for v in views:
        steps = [*v.result.steps]
        if v.result.end_to_end is not None and len(steps) > 1:
            steps.append(v.result.end_to_end)
        for r in steps:
            s = r.step
            rows.append(
                {
                    "where": f"{v.cores} core(s), {v.workload}",
                    "measure": v.measure_words,
                    "step": f"{s.before} → {s.after}",
                    "factor": f"{s.factor}: {s.before_value} → {s.after_value}"
                    if s.before_value
                    else f"whole chain ({s.factor})",
                    "ratio": f"{r.ratio:.3f}x" if r.ratio is not None else "n/a",
                    "interval": f"[{r.interval.low:.3f}, {r.interval.high:.3f}]"
                    if r.interval
                    else "",
                    "coverage": r.coverage,
                    "verdict": r.verdict,
                    "n": r.n,
                    "whole": not s.before_value,
                }
            )
    return rows
