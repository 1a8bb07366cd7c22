"""How evenly each configuration spread its work over its workers: per trial, each worker's
requests and connections over the mean per worker, busiest first; per configuration, the
median over its ranked trials (or, with none ranked, each flagged trial's own). Pure: tables
in, arrays out; the report's worker-balance chart only draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SharesKey = tuple[str, int, str]  # (server, server_cores, label), as analyse.SummaryKey
Shares = tuple[np.ndarray, np.ndarray]  # (requests, connections) over the mean per worker


@dataclass(frozen=True)
class WorkerShares:
    """ranked: the per-worker median of the ranked trials' shares (None without a ranked trial
    with counters for every worker); flagged: with no such ranked trial and every successful
    trial flagged, each flagged trial's shares (by trial id), and the flagged trials that
    have any worker counters."""

    ranked: Shares | None
    flagged: tuple[Shares, ...] = ()
    flagged_ids: tuple[str, ...] = ()


def trial_shares(workers: pd.DataFrame, cores_of: dict[str, int]) -> dict[str, Shares]:
    """Per trial of cores_of: requests and connections of each worker over the mean per
    worker, busiest first (trials whose counters do not cover every worker are left out)."""
    mine = workers[workers["trial_id"].astype(str).isin(set(cores_of))] if len(workers) else workers
    if mine.empty:
        return {}
    # One sort for all trials (by trial, then busiest first) instead of a group-by per trial.
    mine = mine.assign(_trial=mine["trial_id"].astype(str))
    mine = mine.sort_values(["_trial", "requests"], ascending=[True, False], kind="stable")
    trial = mine["_trial"].to_numpy()
    reqs = mine["requests"].to_numpy(dtype=float)
    conns = mine["connections"].to_numpy(dtype=float)
    starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
    ends = np.r_[starts[1:], len(trial)]
    out = {}
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        r, c = reqs[a:b], conns[a:b]
        if b - a != cores_of[trial[a]] or r.sum() <= 0:
            continue
        out[str(trial[a])] = (r / r.mean(), c / c.mean() if c.sum() > 0 else c * np.nan)
    return out


def config_shares(workers: pd.DataFrame, trials: pd.DataFrame) -> dict[SharesKey, WorkerShares]:
    """Per multi-core closed-loop configuration with any shares (trials: labelled, as
    analyse's), its WorkerShares."""
    if workers.empty or trials.empty:
        return {}
    multi = trials[
        (trials["mode"].fillna("closed") == "closed")
        & (trials["status"] == "ok")
        & (trials["server_cores"] > 1)
    ]
    ids = multi["trial_id"].astype(str)
    shares = trial_shares(workers, dict(zip(ids, multi["server_cores"].astype(int), strict=True)))
    with_counters = set(workers["trial_id"].astype(str))
    out: dict[SharesKey, WorkerShares] = {}
    for (server, cores, label), rows in multi.groupby(["server", "server_cores", "label"]):
        rid = sorted(str(t) for t in rows.loc[rows["ranked"], "trial_id"])
        ranked = [shares[t] for t in rid if t in shares]
        key = (str(server), int(cores), str(label))
        if ranked:
            out[key] = WorkerShares(
                (
                    np.median(np.vstack([r for r, _c in ranked]), axis=0),
                    np.median(np.vstack([c for _r, c in ranked]), axis=0),
                )
            )
            continue
        if not rows["ranked"].any() and rows["flagged"].all():
            fid = sorted(str(t) for t in rows["trial_id"])
            flagged = tuple(shares[t] for t in fid if t in shares)
            if flagged:
                ids_ = tuple(t for t in rows["trial_id"].astype(str) if t in with_counters)
                out[key] = WorkerShares(None, flagged, ids_)
    return out
