"""Trials labelled by configuration: which may be ranked (instrument flags keep a trial out),
and the workload label that names a configuration's summary in every table and chart."""

from __future__ import annotations

import pandas as pd

from harness.analysis.flagged import EXCLUDING_FLAGS
from harness.plan import settings

# What makes trials repetitions of one configuration, besides the server (plan/settings.py).
CONFIG_KEYS = list(settings.CONFIG_KEYS)


def workload_label(
    protocol: str,
    size: int,
    conns: int,
    pipeline: int,
    work: str,
    mode: str,
    load: float | None,
    requests_per_connection: int | None = None,
) -> str:
    what = f"echo {size} B" if protocol == "echo" else "HTTP GET"
    parts = [what, f"{conns} conns"]
    if pipeline != 1:
        parts.append(f"pipeline {pipeline}")
    if work != "none":
        parts.append(f"work {work}")
    if requests_per_connection == 1:
        parts.append("a new connection per request")
    elif requests_per_connection is not None:
        parts.append(f"a new connection every {requests_per_connection} requests")
    if mode == "open" and load is not None:
        parts.append(f"open loop {load:g}x capacity" if load <= 2 else f"open loop {load:,.0f}/s")
    return ", ".join(parts)


def nan_to_none(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)  # type: ignore[arg-type]


def prepare(trials: pd.DataFrame) -> pd.DataFrame:
    """Add `load` and `ranked` columns (trials that may enter medians and rankings)."""
    t = trials.copy()
    if t.empty:
        return t.assign(load=pd.Series(dtype=float), ranked=pd.Series(dtype=bool))
    t["load"] = t["rate_fraction"].where(t["rate_fraction"].notna(), t["target_rate"])
    if "requests_per_connection" not in t:  # a table from before churn was a workload
        t["requests_per_connection"] = float("nan")
    # Only excluding flags keep a trial out; a column missing from an older run counts as unset.
    flagged = pd.Series(False, index=t.index)
    for flag in EXCLUDING_FLAGS:
        if flag in t:
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
    columns = [*settings.SETTING_NAMES, "load"]
    # One label per distinct configuration, not per trial: thousands of trials share a few.
    labels: dict[tuple, tuple[str, str]] = {}
    for row in t[columns].drop_duplicates().itertuples(index=False):
        w = settings.workload_of(row._asdict())
        args = (w["protocol"], w["size_bytes"], w["connections"], w["pipeline"], w["work"])
        churn = w["requests_per_connection"]
        labels[_row_key(row)] = (
            workload_label(*args, w["mode"], nan_to_none(row.load), churn),
            workload_label(*args, "closed", None, churn),
        )
    pairs = [labels[_row_key(r)] for r in t[columns].itertuples(index=False)]
    return t.assign(label=[p[0] for p in pairs], workload=[p[1] for p in pairs])


def _row_key(row: tuple) -> tuple:
    """A hashable key of a row with NaN made equal to itself."""
    return tuple(None if pd.isna(v) else v for v in row)
