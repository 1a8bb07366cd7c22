"""The report's "Model (not a measurement)" section: read from the run's stored model.parquet
(`harness model` writes it), never computed here, so a report costs no simulation; its charts
are harness/report/charts/model.py's."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from harness.report.charts.model import model_charts
from harness.report.format import fmt, fmt_us

MODEL_FILE = "model.parquet"
# The parquet schema metadata key holding what is not one row per prediction (docs/data.md).
METADATA_KEY = b"harness.model"
FIXED_RHO = 0.7  # the load at which the p99 ratio is shown (a grid point of the model)
# What the charts take from the run's trials: each design's family (its colours) and each
# measured trial's workload (which chart its point belongs on).
TRIAL_COLUMNS = ("trial_id", "server", "design_family", "connections", "hot_fraction", "hot_share")


def _num(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "unstable" if x > 0 else "0"
    return format(float(x), spec)


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


def _charts(run_dir: Path, p: pd.DataFrame, extra: dict[str, Any]) -> list[Any]:
    trials = _trials(run_dir)
    comparison = pd.DataFrame(
        extra.get("comparison", []),
        columns=["trial_id", "thread_per_core", "work_stealing", "design", "cores", "work",
                 "rho", "measured_p99_us", "error", "flagged"],
    )  # fmt: skip
    workload = trials[["trial_id", "connections", "hot_fraction", "hot_share"]]
    comparison = comparison.merge(workload, on="trial_id", how="left")
    families = {
        str(s): str(f)
        for s, f in zip(trials["server"], trials["design_family"], strict=True)
        if pd.notna(s) and pd.notna(f)
    }
    return model_charts(
        p,
        pd.DataFrame(extra.get("ratios", [])),
        comparison,
        fixed_rho=FIXED_RHO,
        families=families,
    )


def model_section(run_dir: Path) -> dict[str, Any] | None:
    """Assumptions, ratio rows, error rows and charts of the stored model; None when there is
    none."""
    path = run_dir / MODEL_FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    extra = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    p = table.to_pandas()
    ratios = []
    for r in extra.get("ratios", []):
        at = p[
            (p["thread_per_core"] == r["thread_per_core"])
            & (p["work"] == r["work"])
            & (p["connections"] == r["connections"])
            & (p["cores"] == r["cores"])
            & ((p["rho"] - FIXED_RHO).abs() < 1e-9)
        ]
        ratio = at.iloc[0] if len(at) else None
        ratios.append(
            {
                "pair": f"{r['thread_per_core']} / {r['work_stealing']}",
                "work": r["work"],
                "connections": r["connections"],
                "cores": r["cores"],
                "target": fmt_us(r["p99_target_us"]),
                "tpc": fmt(r["tpc_rps_at_target"]) + ("+" if r["tpc_censored"] else ""),
                "ws": fmt(r["ws_rps_at_target"]) + ("+" if r["ws_censored"] else ""),
                "throughput_ratio": _num(r["throughput_ratio"], ".2f"),
                "p99_ratio": "-"
                if ratio is None
                else f"{_num(ratio['p99_ratio'], '.2f')} ({_num(ratio['p99_ratio_low'], '.2f')}"
                f"-{_num(ratio['p99_ratio_high'], '.2f')})",
            }
        )
    errors = [
        {
            "trial_id": c["trial_id"],
            "pair": f"{c['thread_per_core']} / {c['work_stealing']}",
            "design": c["design"],
            "cores": c["cores"],
            "work": c["work"],
            "rho": _num(c["rho"], ".2f"),
            "measured": fmt_us(c["measured_p99_us"]),
            "model": f"{_num(c['model_p99_us'], ',.1f')} ({_num(c['model_p99_low'], ',.1f')}-"
            f"{_num(c['model_p99_high'], ',.1f')})",
            "error": _num(None if c["error"] is None else float(c["error"]) * 100, "+.0f"),
            "flagged": bool(c["flagged"]),
        }
        for c in extra.get("comparison", [])
    ]
    first = p.iloc[0] if len(p) else pd.Series(dtype=object)
    return {
        "assumptions": extra.get("assumptions", []),
        "notes": extra.get("notes", []),
        "ratios": ratios,
        "errors": errors,
        "fixed_rho": FIXED_RHO,
        "charts": _charts(run_dir, p, extra),
        "size": f"{int(first['replications'])} replications of {int(first['customers']):,} "
        f"requests, seed {int(first['seed'])}"
        if len(p)
        else "",
        "ci_level": _num(float(first["ci_level"]) * 100, ".0f") if len(p) else "",
    }
