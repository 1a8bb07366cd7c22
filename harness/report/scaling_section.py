"""The report's "Scaling across cores" section and its 1-core caveat: computed by
harness/analysis/scaling.py, formatted here."""

from __future__ import annotations

from typing import Any

from harness.analysis.analyse import Analysis
from harness.analysis.scaling import scaling
from harness.report.format import fmt

METHOD = (
    "Per design and workload measured at several core counts: the median throughput of ranked "
    "trials (closed loop) or server CPU-µs per request (open loop at fixed rates). Efficiency "
    "is T(N) / (N x T(1)) for throughput (1.0 = linear; against the smallest measured core "
    "count, named, when 1 core has no ranked figure) and cost(1) / cost(N) for CPU per request. "
    "A loss shows in the per-core balance: max / mean requests per worker (1.0 = even) and the "
    "server's CPU use (share of its cores); a core left idle or one doing twice its share "
    "explains a low efficiency."
)


def scaling_section(analysis: Analysis, manifest: dict[str, Any]) -> dict[str, Any] | None:
    series = scaling(analysis, manifest)
    if not series:
        return None
    rows = []
    for s in series:
        cpu = s.measure == "cpu_us_per_request"
        rows.append(
            {
                "design": s.design,
                "workload": s.workload
                + (f" (efficiency against {s.base_cores} cores)" if s.base_cores != 1 else ""),
                "points": [
                    {
                        "cores": p.cores,
                        "connections": f"{p.connections:,}",
                        "value": (fmt(p.value, ".3g") + " CPU-µs" if cpu else fmt(p.value))
                        if p.value is not None
                        else p.status
                        + (
                            f" (median {fmt(p.flagged_value)} req/s)"
                            if p.flagged_value is not None
                            else ""
                        ),
                        "efficiency": fmt(p.efficiency * 100 if p.efficiency else None, ".0f")
                        + ("%" if p.efficiency else ""),
                        "imbalance": fmt(p.imbalance, ".2f"),
                        "cpu_util": fmt(p.cpu_util * 100 if p.cpu_util is not None else None, ".0f")
                        + ("%" if p.cpu_util is not None else ""),
                    }
                    for p in s.points
                ],
            }
        )
    return {"method": METHOD, "series": rows}
