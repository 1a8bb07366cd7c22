"""The report's "Model (not a measurement)" section: the run's stored model as
analysis/model_results.py read it (`harness model` writes it), never computed here, so a report
costs no simulation; its charts are harness/report/charts/model.py's."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.analysis.model_results import (  # re-exported: `harness model` and tests use them
    FIXED_RHO,
    METADATA_KEY,
    MODEL_FILE,
    ModelResults,
)
from harness.report.charts.model import model_charts
from harness.report.format import fmt, fmt_us

__all__ = ["FIXED_RHO", "METADATA_KEY", "MODEL_FILE", "model_section"]


def _num(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "unstable" if x > 0 else "0"
    return format(float(x), spec)


def model_section(model: ModelResults | None) -> dict[str, Any] | None:
    """Assumptions, ratio rows, error rows and charts of the stored model; None when there is
    none."""
    if model is None:
        return None
    p = model.predictions
    ratios = []
    for r in model.ratios:
        ratio = r["p99_at_fixed_rho"]
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
        for c in model.comparison
    ]
    first = p.iloc[0] if len(p) else pd.Series(dtype=object)
    return {
        "assumptions": model.assumptions,
        "notes": model.notes,
        "ratios": ratios,
        "errors": errors,
        "fixed_rho": model.fixed_rho,
        "charts": model_charts(
            p,
            model.ratio_frame,
            model.comparison_frame,
            fixed_rho=model.fixed_rho,
            families=model.families,
        ),
        "size": f"{int(first['replications'])} replications of {int(first['customers']):,} "
        f"requests, seed {int(first['seed'])}"
        if len(p)
        else "",
        "ci_level": _num(float(first["ci_level"]) * 100, ".0f") if len(p) else "",
    }
