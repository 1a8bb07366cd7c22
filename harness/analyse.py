"""Stage 4: from stored tables to per-configuration summaries, design comparisons and the answer.

Rules (docs/measurement rules 2-7):
- failed trials never enter a figure; flagged trials (client-bound, oversubscribed, unsteady,
  rate missed) are shown but never ranked: they are left out of medians, intervals and ratios;
- latency percentiles of a configuration come from the merged histograms of its ranked trials
  (never from averaging per-trial percentiles);
- a design beats another only under criterion's rule (stats.compare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness import histogram, stats

FLAGS = ("oversubscribed", "client_bound", "unsteady", "rate_missed", "contended")
# What makes trials repetitions of one configuration, besides the server.
CONFIG_KEYS = [
    "protocol",
    "server_cores",
    "connections",
    "size_bytes",
    "pipeline",
    "work",
    "mode",
    "load",
]
# The pair that isolates the executor: same runtime, same I/O code, only scheduling differs.
HEADLINE_PAIR = ("tokio-tpc", "tokio-ws")


@dataclass(frozen=True)
class ConfigSummary:
    server: str
    design_family: str
    io_model: str
    protocol: str
    server_cores: int
    connections: int
    size_bytes: int
    pipeline: int
    work: str
    mode: str
    load: float | None  # open loop: offered rate (or fraction of capacity for sweeps)
    trials_ok: int
    trials_failed: int
    trials_flagged: int  # ok but flagged: shown, never ranked
    throughput: stats.Interval | None  # median req/s of ranked trials with its 95% CI
    throughput_samples: tuple[float, ...]
    p50_us: float | None
    p99_us: float | None
    p999_us: float | None
    p99_samples: tuple[float, ...]  # per-trial p99 (for ratio intervals)
    uncorrected_p99_us: float | None
    latency_kind: str | None
    achieved_rate: float | None
    server_cpu_util: float | None
    requests_per_server_cpu_s: float | None
    ctxt_per_request: float | None
    worker_imbalance: float | None  # max / mean requests per worker (1.0 = even), median
    flag_reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # What the flagged trials measured: never ranked, never hidden.
    flagged_throughput_median: float | None = None
    flagged_p99_us: float | None = None

    @property
    def label(self) -> str:
        return workload_label(
            self.protocol,
            self.size_bytes,
            self.connections,
            self.pipeline,
            self.work,
            self.mode,
            self.load,
        )


@dataclass(frozen=True)
class DesignComparison:
    """A thread-per-core design against a work-stealing one in one configuration."""

    protocol: str
    server_cores: int
    workload: str
    thread_per_core: str
    work_stealing: str
    throughput_ratio: stats.Interval | None  # tpc / ws median throughput, 95% CI
    p99_ratio: stats.Interval | None  # tpc / ws median per-trial p99, 95% CI
    verdict: stats.Comparison | None  # criterion's rule on throughput
    headline: bool = False


@dataclass(frozen=True)
class Analysis:
    summaries: list[ConfigSummary]
    comparisons: list[DesignComparison]
    flagged: pd.DataFrame  # trials shown but not ranked, with reasons
    failed: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def workload_label(
    protocol: str, size: int, conns: int, pipeline: int, work: str, mode: str, load: float | None
) -> str:
    what = f"echo {size} B" if protocol == "echo" else "HTTP GET"
    parts = [what, f"{conns} conns"]
    if pipeline != 1:
        parts.append(f"pipeline {pipeline}")
    if work != "none":
        parts.append(f"work {work}")
    if mode == "open" and load is not None:
        parts.append(f"open loop {load:g}x capacity" if load <= 2 else f"open loop {load:,.0f}/s")
    return ", ".join(parts)


def _nan_to_none(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)  # type: ignore[arg-type]


def prepare(trials: pd.DataFrame) -> pd.DataFrame:
    """Add `load` and `ranked` columns (trials that may enter medians and rankings)."""
    t = trials.copy()
    if t.empty:
        return t.assign(load=pd.Series(dtype=float), ranked=pd.Series(dtype=bool))
    t["load"] = t["rate_fraction"].where(t["rate_fraction"].notna(), t["target_rate"])
    flagged = pd.Series(False, index=t.index)
    for flag in FLAGS:
        flagged |= t[flag].fillna(False).astype(bool)
    t["flagged"] = (t["status"] == "ok") & flagged
    t["ranked"] = (t["status"] == "ok") & ~flagged
    return t


def label_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """prepare() plus `label` (the ConfigSummary.label of the trial's configuration) and
    `workload` (the same without the open-loop load), for figures that draw single trials
    beside the summaries: (server, server_cores, label) names one ConfigSummary."""
    t = prepare(trials)
    if t.empty:
        return t.assign(
            flagged=pd.Series(dtype=bool), label=pd.Series(dtype=str), workload=pd.Series(dtype=str)
        )
    labels, workloads = [], []
    for row in t.itertuples(index=False):
        pipeline = int(row.pipeline) if not pd.isna(row.pipeline) else 1
        work = str(row.work) if not pd.isna(row.work) else "none"
        mode = str(row.mode) if not pd.isna(row.mode) else "closed"
        args = (row.protocol, int(row.size_bytes), int(row.connections), pipeline, work)
        labels.append(workload_label(*args, mode, _nan_to_none(row.load)))
        workloads.append(workload_label(*args, "closed", None))
    return t.assign(label=labels, workload=workloads)


def flag_reasons(row: pd.Series) -> list[str]:
    reasons = []
    if row.get("oversubscribed"):
        reasons.append("oversubscribed CPUs")
    for flag in ("client_bound", "unsteady", "rate_missed", "contended"):
        if row.get(flag) is True or (not pd.isna(row.get(flag)) and bool(row.get(flag))):
            why = row.get(f"{flag}_reason") or ""
            reasons.append(f"{flag.replace('_', ' ')}: {why}".rstrip(": "))
    return reasons


def imbalance_of(workers: pd.DataFrame, trial_ids: list[str]) -> float | None:
    """Median over trials of max/mean requests per worker: how unevenly work landed."""
    values = []
    for _, group in workers[workers["trial_id"].isin(trial_ids)].groupby("trial_id"):
        reqs = group["requests"].dropna()
        if len(reqs) > 1 and reqs.mean() > 0:
            values.append(float(reqs.max() / reqs.mean()))
    return stats.median(values)


def summarise(
    trials: pd.DataFrame, latency: pd.DataFrame, workers: pd.DataFrame
) -> list[ConfigSummary]:
    t = prepare(trials)
    if t.empty:
        return []
    primary = latency[latency["kind"].fillna("primary") == "primary"]
    by_trial = {tid: g for tid, g in primary.groupby("trial_id")}
    out = []
    for key, group in t.groupby(["server", *CONFIG_KEYS], sort=True, dropna=False):
        server, protocol, cores, conns, size, pipeline, work, mode, load = key
        ranked = group[group["ranked"]]
        tput = [float(x) for x in ranked["throughput_rps"].dropna()]
        hists = [
            list(zip(b["lower_ns"], b["upper_ns"], b["count"], strict=True))
            for tid in ranked["trial_id"]
            if (b := by_trial.get(tid)) is not None
        ]
        merged = histogram.merge(hists)
        flagged = group[group["flagged"]]
        flagged_merged = histogram.merge(
            list(zip(b["lower_ns"], b["upper_ns"], b["count"], strict=True))
            for tid in flagged["trial_id"]
            if (b := by_trial.get(tid)) is not None
        )
        warnings = [w.message for w in stats.stability_warnings(tput)] if tput else []
        reasons = sorted(
            {r for _, row in group[group["flagged"]].iterrows() for r in flag_reasons(row)}
        )
        out.append(
            ConfigSummary(
                server=server,
                design_family=str(group["design_family"].iloc[0]),
                io_model=str(group["io_model"].iloc[0]),
                protocol=protocol,
                server_cores=int(cores),
                connections=int(conns),
                size_bytes=int(size),
                pipeline=int(pipeline) if not pd.isna(pipeline) else 1,
                work=str(work) if not pd.isna(work) else "none",
                mode=str(mode) if not pd.isna(mode) else "closed",
                load=_nan_to_none(load),
                trials_ok=int((group["status"] == "ok").sum()),
                trials_failed=int((group["status"] != "ok").sum()),
                trials_flagged=int(group["flagged"].sum()),
                throughput=stats.median_ci(tput),
                throughput_samples=tuple(tput),
                p50_us=histogram.percentile_us(merged, 50),
                p99_us=histogram.percentile_us(merged, 99),
                p999_us=histogram.percentile_us(merged, 99.9),
                p99_samples=tuple(float(x) for x in ranked["p99_us"].dropna()),
                uncorrected_p99_us=stats.median(
                    [float(x) for x in ranked["uncorrected_p99_us"].dropna()]
                ),
                latency_kind=next(iter(group["latency_kind"].dropna()), None),
                achieved_rate=stats.median([float(x) for x in ranked["achieved_rate"].dropna()]),
                server_cpu_util=stats.median(
                    [float(x) for x in ranked["server_cpu_util"].dropna()]
                ),
                requests_per_server_cpu_s=stats.median(
                    [float(x) for x in ranked["requests_per_server_cpu_s"].dropna()]
                ),
                ctxt_per_request=stats.median(
                    [float(x) for x in ranked["ctxt_per_request"].dropna()]
                ),
                worker_imbalance=imbalance_of(workers, list(ranked["trial_id"])),
                flag_reasons=tuple(reasons),
                warnings=tuple(warnings),
                flagged_throughput_median=stats.median(
                    [float(x) for x in flagged["throughput_rps"].dropna()]
                ),
                flagged_p99_us=histogram.percentile_us(flagged_merged, 99),
            )
        )
    return out


def compare_designs(summaries: list[ConfigSummary]) -> list[DesignComparison]:
    """Every thread-per-core design against every work-stealing design, per configuration."""
    groups: dict[tuple, list[ConfigSummary]] = {}
    for s in summaries:
        key = (s.protocol, s.server_cores, s.label)
        groups.setdefault(key, []).append(s)
    out = []
    for (protocol, cores, label), group in sorted(groups.items()):
        tpc = [s for s in group if s.design_family == "thread-per-core"]
        ws = [s for s in group if s.design_family == "work-stealing"]
        for a in tpc:
            for b in ws:
                out.append(
                    DesignComparison(
                        protocol=protocol,
                        server_cores=cores,
                        workload=label,
                        thread_per_core=a.server,
                        work_stealing=b.server,
                        throughput_ratio=stats.ratio_ci(a.throughput_samples, b.throughput_samples),
                        p99_ratio=stats.ratio_ci(a.p99_samples, b.p99_samples),
                        # Open loop offers both designs the same rate: throughput is the input
                        # there, not a result, and the verdict belongs to latency.
                        verdict=None
                        if a.mode == "open"
                        else stats.compare(a.throughput_samples, b.throughput_samples),
                        headline=(a.server, b.server) == HEADLINE_PAIR,
                    )
                )
    return out


def analyse(trials: pd.DataFrame, latency: pd.DataFrame, workers: pd.DataFrame) -> Analysis:
    summaries = summarise(trials, latency, workers)
    t = prepare(trials)
    flagged = t[t["flagged"]].copy() if not t.empty else t
    if not flagged.empty:
        flagged["reasons"] = ["; ".join(flag_reasons(row)) for _, row in flagged.iterrows()]
    failed = t[t["status"] != "ok"] if not t.empty else t
    return Analysis(summaries, compare_designs(summaries), flagged, failed)
