"""The answer, decomposed: the chains of controlled pairs a run measured, judged on its ranked
measure (pure: an Analysis and its manifest in, ChainView values out).

A chain (plan/designs.py `factor_chain`) goes from tokio-ws to a thread-per-core design one
factor at a time (tokio-ws -> tokio-ws-reuseport -> tokio-tpc -> monoio-epoll-tpc -> monoio-tpc:
accept topology, then stealing, then runtime, then io_uring); analysis/chain.py judges each step
per repetition. Only designs with ranked trials in a configuration can be steps of its chain, so
a run of tokio-ws and tokio-tpc alone has no chain: they differ in two factors, and no pair that
differs in more than one is ever presented as explaining one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.chain import ChainResult, chain_result
from harness.analysis.pairs import CPU_MEASURE
from harness.plan.designs import Design, Pair, Step, controlled_pairs, factor_chain

START = "tokio-ws"
# Chain ends in the order the report shows them: monoio's claim first, then the other
# thread-per-core runtimes, then the controls.
ENDS = (
    "monoio-tpc",
    # Tasks against structured concurrency: tokio-tpc's chain, then monoio's, one step longer.
    "tokio-tpc-structured",
    "monoio-tpc-structured",
    "glommio-tpc",
    "compio-tpc",
    "tokio-uring-tpc",
    "uring-tpc",
    "epoll-tpc",
    "monoio-epoll-tpc",
    "tokio-tpc",
)
MEASURE_WORDS = {
    "throughput_rps": "throughput",
    CPU_MEASURE: "server CPU per request",
    "p99_us": "p99 latency",
}


@dataclass(frozen=True)
class ChainView:
    """One chain in one configuration, judged on the run's ranked measure."""

    cores: int
    workload: str
    measure: str
    higher_is_better: bool
    result: ChainResult
    from_start: bool = True  # False: a lone controlled pair (no chain from tokio-ws measured)

    @property
    def measure_words(self) -> str:
        return MEASURE_WORDS.get(self.measure, self.measure)


def ranked_measure(
    manifest: Mapping[str, Any], mode: str, load: float | None = None
) -> tuple[str, bool]:
    """What the run ranks on: the calibration's decision, else by loop (closed: throughput;
    open at an absolute rate: server CPU per request; a sweep's fraction of each design's own
    capacity offers the designs different rates, so there the tail latency at that fraction)."""
    m = manifest.get("measurement") or {}
    if m.get("ranked_measure") in MEASURE_WORDS:
        return str(m["ranked_measure"]), bool(m.get("higher_is_better"))
    if mode != "open":
        return "throughput_rps", True
    return ("p99_us", False) if load is not None and load <= 2 else (CPU_MEASURE, False)


def designs_of(manifest: Mapping[str, Any]) -> list[Design]:
    """The manifest's designs as Design values (only what factor_chain reads matters)."""
    names = {f.name for f in dataclasses.fields(Design)}
    out = []
    for name, d in (manifest.get("designs") or {}).items():
        if not isinstance(d, dict):
            continue
        fields = {k: v for k, v in d.items() if k in names}
        fields.setdefault("name", name)
        try:
            out.append(Design(**fields))
        except TypeError:
            continue  # an older manifest without some required field: no chain through it
    return out


def _values(group: list[ConfigSummary], measure: str) -> dict[str, list[float | None]]:
    values = {}
    for s in group:
        reps = s.by_rep.get(measure, {})
        if reps:
            values[s.server] = [reps.get(i) for i in range(max(reps) + 1)]
    return values


def chains(analysis: Analysis, manifest: Mapping[str, Any]) -> list[ChainView]:
    """Every maximal chain from tokio-ws through designs ranked in a configuration."""
    designs = designs_of(manifest)
    groups: dict[tuple[int, str], list[ConfigSummary]] = {}
    for s in analysis.summaries:
        groups.setdefault((s.server_cores, s.label), []).append(s)
    out = []
    for (cores, label), group in sorted(groups.items()):
        measure, higher = ranked_measure(manifest, group[0].mode, group[0].load)
        values = _values(group, measure)
        present = [d for d in designs if d.name in values]
        kept: list[list[str]] = []
        for end in ENDS:
            steps = factor_chain(present, START, end) if end in values else None
            if not steps:
                continue
            path = [START, *(s.after for s in steps)]
            if any(path == k[: len(path)] for k in kept):
                continue  # a prefix of a chain already shown
            result = chain_result(steps, values, measure=measure, higher_is_better=higher)
            if result is not None:
                kept.append(path)
                out.append(ChainView(cores, label, measure, higher, result))
        if not kept:  # no chain from tokio-ws: the controlled pairs that were measured
            for pair in controlled_pairs(present):
                before, after = sorted((pair.a, pair.b), key=_distance_from_start, reverse=True)
                if pair.factor == "concurrency":  # from a task per connection to structured
                    tasks_first = pair.a_value == "task-per-connection"
                    before, after = (pair.a, pair.b) if tasks_first else (pair.b, pair.a)
                step = Step(before, after, pair.factor, *_values_of(pair, before))
                result = chain_result([step], values, measure=measure, higher_is_better=higher)
                if result is not None:
                    out.append(ChainView(cores, label, measure, higher, result, from_start=False))
    return out


def _distance_from_start(design: str) -> int:
    """Order inside a pair: work-stealing designs first, then ENDS from the start's side."""
    return len(ENDS) if design not in ENDS else ENDS.index(design)


def _values_of(pair: Pair, before: str) -> tuple[str, str]:
    return (pair.a_value, pair.b_value) if before == pair.a else (pair.b_value, pair.a_value)
