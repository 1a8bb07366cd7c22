"""The stored model of a run (`harness model` writes model.parquet, store/model_file.py reads
it) as the report shows it: its predictions, the throughput ratios with the p99 ratio at one
fixed load looked up, the model-against-measured comparison with each trial's workload, and
each design's family. The report's model section and charts only format and draw it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.store.model_file import (  # the names re-exported for the report
    METADATA_KEY,
    MODEL_FILE,
    read_model,
)

__all__ = [
    "FIXED_RHO",
    "METADATA_KEY",
    "MODEL_FILE",
    "ModelResults",
    "model_results",
    "stored_model",
]

FIXED_RHO = 0.7  # the load at which the p99 ratio is shown (a grid point of the model)
# What is taken from the run's trials: each design's family (its colours) and each measured
# trial's workload (which chart its point belongs on).
TRIAL_COLUMNS = ("trial_id", "server", "design_family", "connections", "hot_fraction", "hot_share")
COMPARISON_COLUMNS = [
    "trial_id", "thread_per_core", "work_stealing", "design", "cores", "work", "rho",
    "measured_p99_us", "error", "flagged",
]  # fmt: skip


@dataclass(frozen=True)
class ModelResults:
    """What the report shows of a stored model."""

    predictions: pd.DataFrame  # one row per prediction (model.parquet's rows)
    ratios: list[dict[str, Any]]  # stored ratios, each with its p99 ratio row at FIXED_RHO
    ratio_frame: pd.DataFrame  # the stored ratios as a table (the ratio chart's input)
    comparison: list[dict[str, Any]]  # model against each measured trial
    comparison_frame: pd.DataFrame  # the same with the trial's workload columns
    families: dict[str, str]  # design -> family, from the run's trials
    assumptions: list[Any] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)
    fixed_rho: float = FIXED_RHO


def _workload(trials: pd.DataFrame) -> pd.DataFrame:
    """The run's trials' columns the model's charts need (absent ones empty)."""
    frame = trials[[c for c in TRIAL_COLUMNS if c in trials]].copy()
    for c in TRIAL_COLUMNS:
        if c not in frame:
            frame[c] = None
    return frame


def ratio_at(p: pd.DataFrame, r: dict[str, Any], rho: float = FIXED_RHO) -> pd.Series | None:
    """The prediction row of ratio r's pair and workload at load rho (None when not modelled)."""
    at = p[
        (p["thread_per_core"] == r["thread_per_core"])
        & (p["work"] == r["work"])
        & (p["connections"] == r["connections"])
        & (p["cores"] == r["cores"])
        & ((p["rho"] - rho).abs() < 1e-9)
    ]
    return at.iloc[0] if len(at) else None


def capacity_rps(at: pd.DataFrame) -> float:
    """The offered rate at rho = 1 of some predictions: the median of offered rate / rho."""
    ok = at[(at["rho"] > 0) & at["offered_rps"].notna()]
    return float((ok["offered_rps"] / ok["rho"]).median()) if len(ok) else math.nan


def model_results(
    predictions: pd.DataFrame, extra: dict[str, Any], trials: pd.DataFrame
) -> ModelResults:
    """What the report shows of a stored model (store.model_file.read_model's predictions and
    metadata) with the run's trials."""
    p = predictions
    trials = _workload(trials)
    comparison = pd.DataFrame(extra.get("comparison", []), columns=COMPARISON_COLUMNS)
    workload = trials[["trial_id", "connections", "hot_fraction", "hot_share"]]
    return ModelResults(
        predictions=p,
        ratios=[{**r, "p99_at_fixed_rho": ratio_at(p, r)} for r in extra.get("ratios", [])],
        ratio_frame=pd.DataFrame(extra.get("ratios", [])),
        comparison=list(extra.get("comparison", [])),
        comparison_frame=comparison.merge(workload, on="trial_id", how="left"),
        families={
            str(s): str(f)
            for s, f in zip(trials["server"], trials["design_family"], strict=True)
            if pd.notna(s) and pd.notna(f)
        },
        assumptions=list(extra.get("assumptions", [])),
        notes=list(extra.get("notes", [])),
    )


def stored_model(run_dir: Path, trials: pd.DataFrame) -> ModelResults | None:
    """The model stored beside a run (`harness model`), with its trials; None without one."""
    stored = read_model(run_dir)
    return None if stored is None else model_results(*stored, trials)
