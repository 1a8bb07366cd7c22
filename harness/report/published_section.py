"""The report's "Published beside measured" section: a published benchmark's figures (source,
method) beside this run's, per core count and message size, and their mean latency beside our
p50/p99/p99.9 of the same trials. Computed by harness/analysis/published.py; only formatted here.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.analyse import Analysis
from harness.analysis.published import RATIO, Measured, published_comparison
from harness.report.format import fmt, fmt_us

MEASURED_METHOD = (
    "this run: closed-loop echo on this machine's loopback (or the hosts' network), our load "
    "generator on the client CPUs the plan shows; each design's best median throughput over "
    "this run's connection counts (their method: best QPS over a connection sweep); medians of "
    "ranked trials only"
)


def _cell(m: Measured) -> dict[str, str]:
    if m.throughput is None:
        flagged = (
            f"; flagged trials' best median {fmt(m.flagged_throughput)} req/s"
            if m.flagged_throughput is not None
            else ""
        )
        return {"value": "", "note": m.status + flagged}
    return {"value": fmt(m.throughput), "note": f"at {m.connections:,} conns ({m.design})"}


def _ratio(x: float | None) -> str:
    return f"{x:.3g}x" if x is not None else ""


def published_section(analysis: Analysis, manifest: dict[str, Any]) -> dict[str, Any] | None:
    comparison = published_comparison(analysis, manifest)
    if comparison is None:
        return None
    src = comparison.source
    runtimes = list(src.designs)
    rows = []
    for r in comparison.rows:
        published = {}
        for runtime in runtimes:
            p = r.published.get(runtime)
            published[runtime] = (
                {
                    "value": fmt(p["qps"]),
                    "note": f"{p['conns_per_client_core']} conns x "
                    f"{src.client_cores_per_server_core * r.cores} client cores",
                }
                if p
                else {"value": "", "note": "not published"}
            )
        rows.append(
            {
                "cores": r.cores,
                "size": r.size,
                "published": published,
                "published_ratio": _ratio(r.published_ratio) or "not published",
                "measured": {runtime: _cell(r.measured[runtime]) for runtime in runtimes},
                "ours": {d: _cell(m) for d, m in r.ours.items()},
                "measured_ratio": _ratio(r.measured_ratio),
                "ratio_status": r.ratio_status,
            }
        )
    latency = [
        {
            "runtime": x.runtime,
            "design": x.design,
            "cores": x.cores,
            "size": x.size,
            "connections": f"{x.connections:,}",
            "per_client": f"{x.conns_per_client_core:g}",
            "published_qps": fmt(x.published_qps),
            "published_mean": fmt_us(x.published_mean_us),
            "measured": fmt(x.measured_throughput),
            "status": x.status,
            "mean": fmt_us(x.measured_mean_us),
            "p50": fmt_us(x.p50_us),
            "p99": fmt_us(x.p99_us),
            "p999": fmt_us(x.p999_us),
            "flagged": x.flagged,
        }
        for x in comparison.latency
    ]
    ours = sorted({d for r in comparison.rows for d in r.ours})
    arrangement = {
        runtime: (one if one == above else f"{one} at 1 core, {above} above")
        for runtime, (one, above) in src.designs.items()
    }
    return {
        "title": src.title,
        "documented": src.documented,
        "data": src.data,
        "client": src.client,
        "platform": src.platform,
        "method": src.method,
        "best_method": src.best_method,
        "tokio_note": src.tokio_note,
        "measured_method": MEASURED_METHOD,
        "runtimes": runtimes,
        "arrangement": arrangement,
        "ratio_label": f"{RATIO[0]} / {RATIO[1]}",
        "ours": ours,
        "rows": rows,
        "latency": latency,
        "dropped": comparison.dropped,
    }
