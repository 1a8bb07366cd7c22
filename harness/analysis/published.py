"""A published benchmark beside this run: the figures its authors published (one data file per
benchmark, harness/analysis/published/NAME.toml, with its source and method) and what this run
measured under the same conditions, per core count and message size.

Computed here, formatted by harness/report/published_section.py. A measured figure is a median
of ranked trials; where a design's trials at that core count were all flagged (client-bound,
oversubscribed...) or the core count did not fit the machine, the row carries that reason
instead of a number. Figures are never compared across machines as absolutes: the published
ratio (monoio / tokio) stands beside the measured ratio, each labelled with its method.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.analyse import Analysis, ConfigSummary
from harness.analysis.flagged import flag_counts, kinds_text

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
# The runtimes whose ratio the published claim is about: numerator / denominator.
RATIO = ("monoio", "tokio")


@dataclass(frozen=True)
class PublishedSet:
    """One published benchmark, as its data file says it."""

    name: str
    title: str
    documented: str
    data: str
    client: str
    platform: str
    method: str
    best_method: str
    tokio_note: str
    client_cores_per_server_core: int
    claim_cores: tuple[int, ...]
    designs: dict[str, tuple[str, str]]  # runtime -> (design at 1 core, design above)
    best: tuple[dict[str, Any], ...]
    sweep: tuple[dict[str, Any], ...]

    def design_for(self, runtime: str, cores: int) -> str:
        one, above = self.designs[runtime]
        return one if cores == 1 else above

    def published_figure(self, runtime: str, cores: int, size: int) -> dict[str, Any] | None:
        """Their headline figure: the best-QPS table, else the best row of their sweep."""
        for row in self.best:
            if (row["runtime"], row["cores"], row["size"]) == (runtime, cores, size):
                return {**row, "method": self.best_method}
        rows = [
            r for r in self.sweep if (r["runtime"], r["cores"], r["size"]) == (runtime, cores, size)
        ]
        if not rows:
            return None
        top = max(rows, key=lambda r: r["qps"])
        return {
            **top,
            "method": "best QPS of their connection sweep at this size "
            f"({min(r['conns_per_client_core'] for r in rows)}.."
            f"{max(r['conns_per_client_core'] for r in rows)} connections per client core)",
        }

    def sweep_row(
        self, runtime: str, cores: int, size: int, conns_per_client_core: float
    ) -> dict[str, Any] | None:
        for r in self.sweep:
            if (r["runtime"], r["cores"], r["size"], r["conns_per_client_core"]) == (
                runtime,
                cores,
                size,
                conns_per_client_core,
            ):
                return r
        return None


def load_published(name: str, directory: Path = PUBLISHED_DIR) -> PublishedSet | None:
    """The data set `name`, or None when there is none of that name."""
    path = directory / f"{name}.toml"
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text())
    return PublishedSet(
        name=data["name"],
        title=data["title"],
        documented=data["documented"],
        data=data["data"],
        client=data["client"],
        platform=data["platform"],
        method=data["method"],
        best_method=data["best_method"],
        tokio_note=data["tokio_note"],
        client_cores_per_server_core=int(data["client_cores_per_server_core"]),
        claim_cores=tuple(int(k) for k in data["claim_cores"]),
        designs={r: (d["one_core"], d["above"]) for r, d in data["designs"].items()},
        best=tuple(data["best"]),
        sweep=tuple(data["sweep"]),
    )


@dataclass(frozen=True)
class Measured:
    """One design at one core count and size: its best median over this run's connection
    counts (as their best QPS), or why there is none."""

    design: str
    throughput: float | None
    connections: int | None  # where the best median was measured
    status: str  # "measured", or the reason there is no number
    # No ranked figure but flagged trials: their best median, shown labelled, never ranked.
    flagged_throughput: float | None = None


@dataclass(frozen=True)
class LatencyRow:
    runtime: str
    design: str
    cores: int
    size: int
    connections: int
    conns_per_client_core: float
    published_qps: float | None
    published_mean_us: float | None  # their mean at the same connections per client core
    measured_throughput: float | None
    measured_mean_us: float | None  # request-weighted mean of the same trials
    p50_us: float | None
    p99_us: float | None
    p999_us: float | None
    status: str  # "measured", or why not ranked (the figures are then the flagged trials')
    flagged: bool = False  # the figures come from flagged trials: shown, labelled, not ranked


@dataclass(frozen=True)
class PublishedRow:
    cores: int
    size: int
    published: dict[str, dict[str, Any] | None]  # runtime -> their figure with its method
    published_ratio: float | None
    measured: dict[str, Measured]  # runtime (their arrangement) -> ours
    ours: dict[str, Measured]  # our own tokio designs at this core count
    measured_ratio: float | None
    ratio_status: str  # why there is no measured ratio ("" when there is one)


@dataclass(frozen=True)
class PublishedComparison:
    source: PublishedSet
    rows: tuple[PublishedRow, ...]
    latency: tuple[LatencyRow, ...]
    dropped: dict[int, str]  # core counts the machine could not run, with the plan's reason


def _summaries_at(analysis: Analysis, design: str, cores: int, size: int) -> list[ConfigSummary]:
    return [
        s
        for s in analysis.summaries
        if s.server == design
        and s.server_cores == cores
        and s.size_bytes == size
        and s.protocol == "echo"
        and s.mode == "closed"
        and s.pipeline == 1
        and s.work == "none"
    ]


def _why_none(analysis: Analysis, summaries: list[ConfigSummary]) -> str:
    """Why a design has no ranked figure: its flags (client-bound first), or failures."""
    kinds: Counter[str] = Counter()
    for s in summaries:
        kinds.update(flag_counts(analysis.flagged_of(s)))
    if kinds:
        return f"not ranked: {kinds_text(kinds)} trial(s)"
    if any(s.trials_failed for s in summaries):
        return "failed (see the failed trials)"
    return "no ranked trial"


def _measured(
    analysis: Analysis, design: str, cores: int, size: int, dropped: dict[int, str]
) -> Measured:
    found = _summaries_at(analysis, design, cores, size)
    if not found:
        if cores in dropped:
            return Measured(design, None, None, "machine too small: not run (see above)")
        return Measured(design, None, None, "not in this run")
    ranked = [s for s in found if s.throughput is not None]
    if not ranked:
        flagged = [s.flagged_throughput_median for s in found if s.flagged_throughput_median]
        return Measured(
            design, None, None, _why_none(analysis, found), max(flagged) if flagged else None
        )
    best = max(ranked, key=lambda s: s.throughput.estimate)  # type: ignore[union-attr]
    return Measured(design, best.throughput.estimate, best.connections, "measured")  # type: ignore[union-attr]


def _mean_us(analysis: Analysis, s: ConfigSummary, ranked: bool = True) -> float | None:
    """Request-weighted mean latency of the configuration's ranked (or flagged) trials."""
    t = analysis.trials_of(s)
    if t.empty or "mean_us" not in t:
        return None
    t = t[t["ranked" if ranked else "flagged"] & t["mean_us"].notna() & (t["requests"] > 0)]
    if t.empty:
        return None
    return float((t["mean_us"] * t["requests"]).sum() / t["requests"].sum())


def published_comparison(
    analysis: Analysis, manifest: dict[str, Any], directory: Path = PUBLISHED_DIR
) -> PublishedComparison | None:
    """The run against the published set its plan names (config.published), or None."""
    config = (manifest.get("plan") or {}).get("config") or {}
    name = config.get("published")
    if not name:
        return None
    source = load_published(str(name), directory)
    if source is None:
        return None
    dropped = {
        int(k): str(why) for k, why in (manifest.get("plan") or {}).get("dropped_cores") or []
    }
    run_cores = {int(c) for c in config.get("cores") or []}
    sizes = sorted({int(s) for s in config.get("sizes") or []}, reverse=True)
    ours = [d for d in ("tokio-ws", "tokio-tpc") if d in (config.get("servers") or [])]
    rows, latency = [], []
    per_client = source.client_cores_per_server_core
    for size in sizes:
        for cores in sorted(run_cores | set(source.claim_cores)):
            published = {r: source.published_figure(r, cores, size) for r in source.designs}
            if cores not in run_cores and not any(published.values()):
                continue
            measured = {
                r: _measured(analysis, source.design_for(r, cores), cores, size, dropped)
                for r in source.designs
            }
            top, bottom = (published.get(r) for r in RATIO)
            m_top, m_bottom = (measured[r] for r in RATIO)
            ratio, why = None, ""
            if m_top.throughput is not None and m_bottom.throughput is not None:
                ratio = m_top.throughput / m_bottom.throughput
            else:
                why = next(m.status for m in (m_top, m_bottom) if m.throughput is None)
            if cores not in run_cores:
                why = "core count not in this run's plan"
            rows.append(
                PublishedRow(
                    cores=cores,
                    size=size,
                    published=published,
                    published_ratio=top["qps"] / bottom["qps"] if top and bottom else None,
                    measured=measured,
                    ours={d: _measured(analysis, d, cores, size, dropped) for d in ours},
                    measured_ratio=ratio,
                    ratio_status=why,
                )
            )
            for runtime in source.designs:
                design = source.design_for(runtime, cores)
                for s in sorted(
                    _summaries_at(analysis, design, cores, size), key=lambda s: s.connections
                ):
                    per = s.connections / (per_client * cores)
                    row = source.sweep_row(runtime, cores, size, per)
                    status = "measured" if s.throughput is not None else _why_none(analysis, [s])
                    f = analysis.flagged_figures(s) if s.throughput is None else None
                    latency.append(
                        LatencyRow(
                            runtime=runtime,
                            design=design,
                            cores=cores,
                            size=size,
                            connections=s.connections,
                            conns_per_client_core=per,
                            published_qps=row["qps"] if row else None,
                            published_mean_us=row["mean_latency_us"] if row else None,
                            measured_throughput=s.throughput.estimate
                            if s.throughput
                            else (f.throughput_median if f else None),
                            measured_mean_us=_mean_us(analysis, s, ranked=f is None),
                            p50_us=f.p50_us if f else s.p50_us,
                            p99_us=f.p99_us if f else s.p99_us,
                            p999_us=f.p999_us if f else s.p999_us,
                            status=status,
                            flagged=f is not None,
                        )
                    )
    return PublishedComparison(
        source=source, rows=tuple(rows), latency=tuple(latency), dropped=dropped
    )
