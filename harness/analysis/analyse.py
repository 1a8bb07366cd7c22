"""From a stored run to one `Analysis`: per-configuration summaries, design comparisons, the
flagged and failed trials, and the merged histograms behind every latency figure. Computed once
and handed to the HTML report, the exports and `compare`, which only format and draw it.

Rules (docs/measurement rules 2-7):
- failed trials never enter a figure; trials with an instrument flag (client-bound,
  oversubscribed, contended) are shown but never ranked: they are left out of medians,
  intervals and ratios; server flags (rate missed, unsteady, errors, censored) are the design's
  own result: listed with their reason and still ranked;
- latency percentiles of a configuration come from the merged histograms of its ranked trials
  (never from averaging per-trial percentiles), merged for all configurations in one pass;
- designs are compared per repetition (they ran side by side: analysis/pairs.py), and a design
  beats another only under criterion's rule on that paired interval (stats.compare_paired).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import histogram, stats
from harness.analysis.flagged import FLAGS, TrialFlag, flag_counts, trial_flags
from harness.analysis.labels import (  # re-exported: tests and readers use analyse.*
    CONFIG_KEYS,
    label_trials,
    nan_to_none,
    prepare,
    workload_label,
)
from harness.analysis.model_results import ModelResults, stored_model
from harness.analysis.pairs import CPU_MEASURE, cpu_us_per_request, paired_compare
from harness.analysis.series import ConfigSeries, config_series
from harness.analysis.trial_figures import trial_imbalance
from harness.analysis.workers import WorkerShares, config_shares
from harness.plan.settings import SETTING_NAMES, Workload, workload_of
from harness.store import RunData
from harness.store.latency_read import frame_chunks

# The headline pair: same runtime and I/O code; it differs in scheduler and accept topology
# (tokio-ws-reuseport against tokio-tpc differs in the scheduler alone; see factor_chain).
HEADLINE_PAIR = ("tokio-tpc", "tokio-ws")

# (server, server_cores, label): names one ConfigSummary; labelled trials carry the same three.
SummaryKey = tuple[str, int, str]

__all__ = [
    "CONFIG_KEYS",
    "FLAGS",
    "Analysis",
    "ConfigSummary",
    "DesignComparison",
    "analyse",
    "label_trials",
    "prepare",
    "summarise",
    "workload_label",
]


@dataclass(frozen=True, kw_only=True)
class ConfigSummary(Workload):
    """One configuration of one design (its workload: plan/settings.py) over its trials."""

    server: str
    design_family: str
    io_model: str
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
    # Every flag its flagged trials carry, as stored (causes, or a schema-1 run's text); one
    # entry for equal flags of several trials. Data: the report words them (report/flag_words.py).
    flags: tuple[TrialFlag, ...] = ()
    warnings: tuple[str, ...] = ()
    # What the flagged trials measured: never ranked, never hidden.
    flagged_throughput_median: float | None = None
    flagged_p99_us: float | None = None
    # Server CPU-µs per request of the ranked trials (fixed-rate mode ranks on it), median + CI.
    cpu_us_per_request: stats.Interval | None = None
    cpu_us_samples: tuple[float, ...] = ()
    # Ranked trials by repetition, for paired comparisons: {measure: {repetition: value}}.
    by_rep: dict[str, dict[int, float | None]] = field(default_factory=dict)

    @property
    def throughput_median(self) -> float | None:  # of the ranked trials (compare's "req/s")
        return stats.median(list(self.throughput_samples))

    @property
    def p99_trial_median(self) -> float | None:  # median per-trial p99 (what compare ranks)
        return stats.median(list(self.p99_samples))

    @property
    def cpu_us_median(self) -> float | None:
        return stats.median(list(self.cpu_us_samples))

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
            self.requests_per_connection,
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
    # criterion's rule on per-trial p99 (lower is better); its interval equals p99_ratio's.
    # None in closed loop: at fixed concurrency p99 restates throughput (Little's law).
    p99_verdict: stats.Comparison | None = None
    cpu_ratio: stats.Interval | None = None  # tpc / ws server CPU-µs per request
    cpu_verdict: stats.Comparison | None = None  # criterion's rule on it (lower is better)


@dataclass(frozen=True)
class FlaggedFigures:
    """What a configuration's flagged trials measured: never ranked, never hidden (medians over
    the flagged trials, latency percentiles from their merged histograms)."""

    trials: int
    kinds: Counter[str]
    throughput: tuple[float, ...]
    throughput_median: float | None
    p50_us: float | None
    p99_us: float | None
    p999_us: float | None
    uncorrected_p99_us: float | None
    server_cpu_util: float | None
    requests_per_server_cpu_s: float | None
    ctxt_per_request: float | None
    worker_imbalance: float | None


@dataclass(frozen=True)
class Analysis:
    """Everything the presentations need from one run, computed once."""

    summaries: list[ConfigSummary]
    flagged: pd.DataFrame  # successful trials with any flag, with their flag columns and causes
    failed: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    run: RunData | None = None
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)  # label_trials(run.trials)
    merged: dict[SummaryKey, histogram.Merged] = field(default_factory=dict)  # ranked trials
    merged_flagged: dict[SummaryKey, histogram.Merged] = field(default_factory=dict)
    flag_kinds: dict[SummaryKey, Counter[str]] = field(default_factory=dict)  # flagged trials
    trial_imbalance: dict[str, float] = field(default_factory=dict)  # per trial max/mean
    manifest: dict[str, Any] = field(default_factory=dict)  # the run's, as stored
    directory: Path | None = None  # where the run is stored (named, never read, by the report)
    series: dict[SummaryKey, ConfigSeries] = field(default_factory=dict)  # closed loop
    worker_shares: dict[SummaryKey, WorkerShares] = field(default_factory=dict)
    model: ModelResults | None = None  # the run's stored model (`harness model`), if any

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.directory.name if self.directory else ""))

    @property
    def comparisons(self) -> list[DesignComparison]:
        """compare_designs(summaries), bootstrapped on first use (`compare` never needs it)."""
        cached = self.__dict__.get("_comparisons")
        if cached is None:
            cached = compare_designs(self.summaries)
            object.__setattr__(self, "_comparisons", cached)
        return cached

    @property
    def by_key(self) -> dict[SummaryKey, ConfigSummary]:
        return {key_of(s): s for s in self.summaries}

    def trials_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The labelled trials of one configuration summary (every status)."""
        return self._trial_groups.get(key_of(s), self.trials.iloc[:0])

    @property
    def _trial_groups(self) -> dict[SummaryKey, pd.DataFrame]:
        cached = self.__dict__.get("_groups")
        if cached is None:
            t = self.trials
            cached = (
                {}
                if t.empty
                else {
                    (str(srv), int(k), str(label)): g
                    for (srv, k, label), g in t.groupby(
                        ["server", "server_cores", "label"], sort=False
                    )
                }
            )
            object.__setattr__(self, "_groups", cached)
        return cached

    def flagged_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The flagged (successful, not ranked) trials of one configuration summary."""
        t = self.trials_of(s)
        return t[t["flagged"]] if not t.empty else t

    def flagged_figures(self, s: ConfigSummary) -> FlaggedFigures | None:
        if not s.trials_flagged:
            return None
        f = self.flagged_of(s)
        if f.empty:
            return None
        merged = self.merged_flagged.get(key_of(s), histogram.EMPTY)
        tput = tuple(float(x) for x in f["throughput_rps"].dropna())
        return FlaggedFigures(
            trials=len(f),
            kinds=flag_counts(f),
            throughput=tput,
            throughput_median=stats.median(list(tput)),
            p50_us=merged.percentile_us(50),
            p99_us=merged.percentile_us(99),
            p999_us=merged.percentile_us(99.9),
            uncorrected_p99_us=_median(f["uncorrected_p99_us"]),
            server_cpu_util=_median(f["server_cpu_util"]),
            requests_per_server_cpu_s=_median(f["requests_per_server_cpu_s"]),
            ctxt_per_request=_median(f["ctxt_per_request"]),
            worker_imbalance=stats.median(
                [self.trial_imbalance[t] for t in f["trial_id"] if t in self.trial_imbalance]
            ),
        )

    def headline_closed(self) -> list[DesignComparison]:
        """The headline pair's closed-loop comparisons that have a throughput ratio."""
        by_key = self.by_key
        return [
            c
            for c in self.comparisons
            if c.headline
            and c.throughput_ratio is not None
            and (s := by_key.get((c.thread_per_core, c.server_cores, c.workload)))
            and s.mode == "closed"
        ]

    def headline_geometric_mean(self) -> float | None:
        """Geometric mean of the headline pair's closed-loop throughput ratios."""
        return stats.geometric_mean(
            [c.throughput_ratio.estimate for c in self.headline_closed() if c.throughput_ratio]
        )


def key_of(s: ConfigSummary) -> SummaryKey:
    return (s.server, s.server_cores, s.label)


def _merge_by_config(
    t: pd.DataFrame, latency: pd.DataFrame | RunData, config: np.ndarray, n_configs: int
) -> tuple[dict[int, histogram.Merged], dict[int, histogram.Merged]]:
    """Each configuration's primary histograms merged once: its ranked trials (group c) and
    its flagged trials (group n_configs + c), in vectorised passes over chunks of rows
    (streamed from a stored run's file, never the whole table in memory)."""
    if t.empty:
        return {}, {}
    group = np.full(len(t), -1, dtype=np.int64)
    ranked, flagged = t["ranked"].to_numpy(bool), t["flagged"].to_numpy(bool)
    group[ranked] = config[ranked]
    group[flagged] = config[flagged] + n_configs
    group_of = dict(zip(t["trial_id"].astype(str), group.tolist(), strict=True))
    chunks = (
        frame_chunks(latency) if isinstance(latency, pd.DataFrame) else latency.latency_chunks()
    )
    merged = histogram.merge_trial_groups(group_of, chunks)
    return (
        {g: m for g, m in merged.items() if g < n_configs},
        {g - n_configs: m for g, m in merged.items() if g >= n_configs},
    )


def _median(values: pd.Series) -> float | None:
    return stats.median([float(x) for x in values.dropna()])


def _summaries(
    t: pd.DataFrame, latency: pd.DataFrame | RunData, workers: pd.DataFrame
) -> tuple[
    list[ConfigSummary],
    dict[SummaryKey, histogram.Merged],
    dict[SummaryKey, histogram.Merged],
    dict[SummaryKey, Counter[str]],
    dict[str, float],
]:
    if t.empty:
        return [], {}, {}, {}, {}
    grouped = t.groupby(["server", *CONFIG_KEYS], sort=True, dropna=False)
    config = grouped.ngroup().to_numpy(np.int64)
    merged, merged_flagged = _merge_by_config(t, latency, config, grouped.ngroups)
    imbalance = trial_imbalance(workers)
    flags_of = {r["trial_id"]: trial_flags(r) for r in t[t["flagged"]].to_dict("records")}
    out, by_key, by_key_flagged, kinds = [], {}, {}, {}
    for number, (key, group) in enumerate(grouped):
        server, *settings, load = key
        ranked = group[group["ranked"]]
        flagged = group[group["flagged"]]
        tput = [float(x) for x in ranked["throughput_rps"].dropna()]
        cpu = [
            v
            for x in ranked["requests_per_server_cpu_s"]
            if (v := cpu_us_per_request(nan_to_none(x))) is not None
        ]
        m = merged.get(number, histogram.EMPTY)
        mf = merged_flagged.get(number, histogram.EMPTY)
        warnings = [w.message for w in stats.stability_warnings(tput)] if tput else []
        config_flags: list[TrialFlag] = []
        for f in (f for tid in flagged["trial_id"] for f in flags_of[tid]):
            if f not in config_flags:
                config_flags.append(f)
        summary = ConfigSummary(
            server=server,
            design_family=str(group["design_family"].iloc[0]),
            io_model=str(group["io_model"].iloc[0]),
            **workload_of(dict(zip(SETTING_NAMES, settings, strict=True))),
            load=nan_to_none(load),
            trials_ok=int((group["status"] == "ok").sum()),
            trials_failed=int((group["status"] != "ok").sum()),
            trials_flagged=int(group["flagged"].sum()),
            throughput=stats.median_ci(tput),
            throughput_samples=tuple(tput),
            p50_us=m.percentile_us(50),
            p99_us=m.percentile_us(99),
            p999_us=m.percentile_us(99.9),
            p99_samples=tuple(float(x) for x in ranked["p99_us"].dropna()),
            uncorrected_p99_us=_median(ranked["uncorrected_p99_us"]),
            latency_kind=next(iter(group["latency_kind"].dropna()), None),
            achieved_rate=_median(ranked["achieved_rate"]),
            server_cpu_util=_median(ranked["server_cpu_util"]),
            requests_per_server_cpu_s=_median(ranked["requests_per_server_cpu_s"]),
            ctxt_per_request=_median(ranked["ctxt_per_request"]),
            worker_imbalance=stats.median(
                [imbalance[tid] for tid in ranked["trial_id"] if tid in imbalance]
            ),
            flags=tuple(config_flags),
            warnings=tuple(warnings),
            flagged_throughput_median=_median(flagged["throughput_rps"]),
            flagged_p99_us=mf.percentile_us(99),
            cpu_us_per_request=stats.median_ci(cpu),
            cpu_us_samples=tuple(cpu),
            by_rep=_by_repetition(ranked),
        )
        out.append(summary)
        k = key_of(summary)
        by_key[k], by_key_flagged[k] = m, mf
        if not flagged.empty:
            kinds[k] = flag_counts(flagged)
    return out, by_key, by_key_flagged, kinds, imbalance


def _by_repetition(ranked: pd.DataFrame) -> dict[str, dict[int, float | None]]:
    """{measure: {repetition: value}} of a configuration's ranked trials (one per repetition;
    a resumed repetition stored twice keeps its last row)."""
    out: dict[str, dict[int, float | None]] = {"throughput_rps": {}, "p99_us": {}, CPU_MEASURE: {}}
    for r in ranked[
        ["repetition", "throughput_rps", "p99_us", "requests_per_server_cpu_s"]
    ].itertuples(index=False):
        rep = int(r.repetition)
        out["throughput_rps"][rep] = nan_to_none(r.throughput_rps)
        out["p99_us"][rep] = nan_to_none(r.p99_us)
        out[CPU_MEASURE][rep] = cpu_us_per_request(nan_to_none(r.requests_per_server_cpu_s))
    return out


def summarise(
    trials: pd.DataFrame, latency: pd.DataFrame, workers: pd.DataFrame
) -> list[ConfigSummary]:
    return _summaries(label_trials(trials), latency, workers)[0]


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
                # Paired by repetition (analysis/pairs.py): the two designs ran side by side.
                tput, tput_verdict = paired_compare(
                    a.by_rep.get("throughput_rps", {}),
                    b.by_rep.get("throughput_rps", {}),
                    higher_is_better=True,
                )
                p99, p99_verdict = paired_compare(
                    a.by_rep.get("p99_us", {}), b.by_rep.get("p99_us", {}), higher_is_better=False
                )
                cpu, cpu_verdict = paired_compare(
                    a.by_rep.get(CPU_MEASURE, {}),
                    b.by_rep.get(CPU_MEASURE, {}),
                    higher_is_better=False,
                )
                closed = a.mode != "open"
                out.append(
                    DesignComparison(
                        protocol=protocol,
                        server_cores=cores,
                        workload=label,
                        thread_per_core=a.server,
                        work_stealing=b.server,
                        throughput_ratio=tput,
                        p99_ratio=p99,
                        # Open loop offers both designs the same rate: throughput is the input
                        # there, not a result; the verdicts belong to CPU per request and latency.
                        verdict=tput_verdict if closed else None,
                        headline=(a.server, b.server) == HEADLINE_PAIR,
                        p99_verdict=None if closed else p99_verdict,
                        cpu_ratio=cpu,
                        cpu_verdict=cpu_verdict,
                    )
                )
    return out


def analyse(run: RunData) -> Analysis:
    """The one analysis of a stored run."""
    t = label_trials(run.trials)
    summaries, merged, merged_flagged, kinds, imbalance = _summaries(t, run, run.workers)
    # Every successful trial with any flag is listed (the report words its flags); those with
    # server flags only are still ranked.
    any_flag = (
        t[[f for f in FLAGS if f in t]].fillna(False).astype(bool).any(axis=1)
        if not t.empty
        else None
    )
    flagged = t[(t["status"] == "ok") & any_flag] if not t.empty else t
    failed = t[t["status"] != "ok"] if not t.empty else t
    return Analysis(
        summaries,
        flagged,
        failed,
        run=run,
        manifest=run.manifest,
        directory=run.directory,
        trials=t,
        merged=merged,
        merged_flagged=merged_flagged,
        flag_kinds=kinds,
        series=config_series(run.timeseries, t),
        worker_shares=config_shares(run.workers, t),
        trial_imbalance=imbalance,
        model=stored_model(run.directory, run.trials),
    )
