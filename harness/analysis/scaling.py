"""Scaling across core counts, for a run with several: per design and workload, throughput
(closed loop) or server CPU-µs per request (open loop at fixed rates) against cores, the scaling
efficiency T(N) / (N x T(1)), and the per-core balance that explains a loss (max / mean
requests per worker, and the server's CPU use).

And the 1-core caveat: at one server core a work-stealing runtime has nobody to steal from, so a
1-core comparison measures the price of being able to steal, not its benefit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.analysis.analyse import Analysis, ConfigSummary

STEALING_CAVEAT = (
    "At one server core a work-stealing runtime has nobody to steal from: a 1-core result "
    "measures the price of being able to steal (Send bounds, atomic reference counts, shared "
    "run queues, the inject queue), not its benefit."
)


@dataclass(frozen=True)
class ScalingPoint:
    cores: int
    connections: int
    value: float | None  # median throughput (req/s), or server CPU-µs per request
    efficiency: float | None  # T(N) / (N x T(base)) for throughput; base cost / cost for CPU
    imbalance: float | None  # max / mean requests per worker (1.0 = even)
    cpu_util: float | None  # server CPU use, share of its cores
    status: str  # "measured" or why there is no value
    flagged_value: float | None = None  # no ranked value: the flagged trials' median throughput


@dataclass(frozen=True)
class ScalingSeries:
    design: str
    workload: str
    measure: str  # "throughput" | "cpu_us_per_request"
    base_cores: int  # the efficiency's reference core count (1 when measured)
    points: tuple[ScalingPoint, ...]


def _workload(s: ConfigSummary, per_core: bool) -> str:
    what = f"echo {s.size_bytes} B" if s.protocol == "echo" else "HTTP GET"
    conns = (
        f"{s.connections // s.server_cores} conns per core"
        if per_core
        else f"{s.connections} conns"
    )
    parts = [what, conns]
    if s.pipeline != 1:
        parts.append(f"pipeline {s.pipeline}")
    if s.work != "none":
        parts.append(f"work {s.work}")
    if s.mode == "open" and s.load is not None:
        parts.append(f"open loop {s.load:,.0f}/s" if s.load > 2 else f"open loop {s.load:g}x")
    return ", ".join(parts)


def scaling(analysis: Analysis, manifest: dict[str, Any]) -> list[ScalingSeries]:
    """One series per design and workload measured at two or more core counts."""
    config = (manifest.get("plan") or {}).get("config") or {}
    per_core = bool(config.get("connections_per_core"))
    groups: dict[tuple[str, str], list[ConfigSummary]] = {}
    for s in analysis.summaries:
        groups.setdefault((s.server, _workload(s, per_core)), []).append(s)
    out = []
    for (design, workload), summaries in sorted(groups.items()):
        cores = sorted({s.server_cores for s in summaries})
        if len(cores) < 2:
            continue
        by_cores = {s.server_cores: s for s in summaries}
        closed = summaries[0].mode == "closed"
        values = {
            k: (
                (s.throughput.estimate if s.throughput else None)
                if closed
                else (s.cpu_us_per_request.estimate if s.cpu_us_per_request else None)
            )
            for k, s in by_cores.items()
        }
        measured = [k for k in cores if values[k] is not None]
        base = 1 if 1 in measured else (measured[0] if measured else cores[0])
        points = []
        for k in cores:
            s, v, ref = by_cores[k], values[k], values.get(base)
            eff = None
            if v is not None and ref:
                # Throughput: per-core throughput against the base's; CPU per request: the
                # base's cost against this one's (1.0 = no cost of scaling).
                eff = (v / k) / (ref / base) if closed else ref / v
            points.append(
                ScalingPoint(
                    cores=k,
                    connections=s.connections,
                    value=v,
                    efficiency=eff,
                    imbalance=s.worker_imbalance,
                    cpu_util=s.server_cpu_util,
                    status="measured"
                    if v is not None
                    else ("flagged, not ranked" if s.trials_flagged else "no ranked trial"),
                    flagged_value=s.flagged_throughput_median if v is None and closed else None,
                )
            )
        out.append(
            ScalingSeries(
                design=design,
                workload=workload,
                measure="throughput" if closed else "cpu_us_per_request",
                base_cores=base,
                points=tuple(points),
            )
        )
    return out


def stealing_note(analysis: Analysis) -> str | None:
    """The 1-core caveat, when a work-stealing design's verdict at 1 core is the headline (the
    run's only core count, or the headline pair's only comparisons), naming the core counts
    where stealing can act (2 or more workers)."""
    ws = {s.server for s in analysis.summaries if s.design_family == "work-stealing"}
    if not ws:
        return None
    cores = sorted({s.server_cores for s in analysis.summaries})
    headline = {c.server_cores for c in analysis.comparisons if c.headline}
    if not (cores == [1] or headline == {1}):
        return None
    can = [k for k in cores if k >= 2]
    where = (
        f"This run also measured {', '.join(map(str, can))} cores, where it can."
        if can
        else "This run has no such core count: its verdict says nothing of stealing's benefit."
    )
    return f"{STEALING_CAVEAT} Stealing can act from 2 worker threads up. {where}"
