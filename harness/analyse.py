"""Stage 4: from stored tables to per-configuration summaries and design-family ratios.

Failed trials never enter a median; they are counted and listed. Latency percentiles of a
configuration come from the merged histograms of its successful repetitions (never from
averaging per-trial percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness import histogram, stats
from harness.store import RunData

CONFIG_KEYS = ["protocol", "server_cores", "connections", "size_bytes"]


@dataclass(frozen=True)
class ConfigSummary:
    server: str
    design_family: str
    io_model: str
    protocol: str
    server_cores: int
    connections: int
    size_bytes: int
    trials_ok: int
    trials_failed: int
    oversubscribed: bool
    throughput_median: float | None
    throughput_min: float | None
    throughput_max: float | None
    p50_us: float | None
    p99_us: float | None
    p999_us: float | None
    latency_kind: str | None
    server_cpu_s_median: float | None
    client_cpu_s_median: float | None
    requests_per_server_cpu_s: float | None


@dataclass(frozen=True)
class FamilyRatio:
    protocol: str
    server_cores: int
    connections: int
    size_bytes: int
    thread_per_core: str
    work_stealing: str
    throughput_ratio: float | None  # thread-per-core / work-stealing, medians
    p99_ratio: float | None


def _none_if_nan(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)  # type: ignore[arg-type]


def summarise(run: RunData) -> list[ConfigSummary]:
    trials = run.trials
    if trials.empty:
        return []
    buckets = run.latency.groupby("trial_id") if not run.latency.empty else None
    out = []
    for (server, *config), group in trials.groupby(["server", *CONFIG_KEYS], sort=True):
        ok = group[group["status"] == "ok"]
        tput = [float(x) for x in ok["throughput_rps"].dropna()]
        hists = []
        if buckets is not None:
            for tid in ok["trial_id"]:
                if tid in buckets.groups:
                    b = buckets.get_group(tid)
                    hists.append(list(zip(b["lower_ns"], b["upper_ns"], b["count"], strict=True)))
        merged = histogram.merge(hists)
        server_cpu = [float(x) for x in ok["server_cpu_s"].dropna()]
        requests = [float(x) for x in ok["requests"].dropna()]
        per_cpu = [r / c for r, c in zip(requests, server_cpu, strict=False) if c > 0]
        protocol, cores, conns, size = config
        out.append(
            ConfigSummary(
                server=server,
                design_family=str(group["design_family"].iloc[0]),
                io_model=str(group["io_model"].iloc[0]),
                protocol=protocol,
                server_cores=int(cores),
                connections=int(conns),
                size_bytes=int(size),
                trials_ok=len(ok),
                trials_failed=len(group) - len(ok),
                oversubscribed=bool(group["oversubscribed"].any()),
                throughput_median=stats.median(tput),
                throughput_min=min(tput) if tput else None,
                throughput_max=max(tput) if tput else None,
                p50_us=histogram.percentile_us(merged, 50),
                p99_us=histogram.percentile_us(merged, 99),
                p999_us=histogram.percentile_us(merged, 99.9),
                latency_kind=next(iter(ok["latency_kind"].dropna()), None),
                server_cpu_s_median=stats.median(server_cpu),
                client_cpu_s_median=stats.median([float(x) for x in ok["client_cpu_s"].dropna()]),
                requests_per_server_cpu_s=stats.median(per_cpu),
            )
        )
    return out


def family_ratios(summaries: list[ConfigSummary]) -> list[FamilyRatio]:
    """Every thread-per-core design against every work-stealing design, per configuration."""
    by_config: dict[tuple, list[ConfigSummary]] = {}
    for s in summaries:
        key = (s.protocol, s.server_cores, s.connections, s.size_bytes)
        by_config.setdefault(key, []).append(s)
    out = []
    for (protocol, cores, conns, size), group in sorted(by_config.items()):
        tpc = [s for s in group if s.design_family == "thread-per-core"]
        ws = [s for s in group if s.design_family == "work-stealing"]
        for a in tpc:
            for b in ws:
                out.append(
                    FamilyRatio(
                        protocol=protocol,
                        server_cores=cores,
                        connections=conns,
                        size_bytes=size,
                        thread_per_core=a.server,
                        work_stealing=b.server,
                        throughput_ratio=stats.ratio(a.throughput_median, b.throughput_median),
                        p99_ratio=stats.ratio(a.p99_us, b.p99_us),
                    )
                )
    return out
