"""The stored model of a run (`harness model` writes model.parquet) read back for the report:
its predictions, the throughput ratios with the p99 ratio at one fixed load looked up, the
model-against-measured comparison with each trial's workload, and each design's family. The
report's model section and charts only format and draw it (no simulation, no file read)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

MODEL_FILE = "model.parquet"
# The parquet schema metadata key holding what is not one row per prediction (docs/data.md).
METADATA_KEY = b"harness.model"
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


def _trials(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "trials.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=list(TRIAL_COLUMNS))
    names = set(pq.read_schema(path).names)
    frame = pq.read_table(path, columns=[c for c in TRIAL_COLUMNS if c in names]).to_pandas()
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


def load_model(run_dir: Path) -> ModelResults | None:
    """The run's stored model; None when it has none."""
    path = run_dir / MODEL_FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    extra = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    p = table.to_pandas()
    trials = _trials(run_dir)
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
