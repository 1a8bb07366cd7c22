"""Throughput per interval inside each trial's measured window, and per configuration the
median over its ranked (or flagged) trials with the interquartile range. Pure: tables in,
arrays out; the report's series chart only draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SeriesKey = tuple[str, int, str]  # (server, server_cores, label), as analyse.SummaryKey


@dataclass(frozen=True)
class Curve:
    """Per interval index (0, 1, ...): the median start (s) and the 25th, 50th and 75th
    percentile of the rate (requests / s) over the trials that have that interval."""

    start: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class TrialSeries:
    """One trial's intervals: start and end (s into its measured window) and rate."""

    start: np.ndarray
    end: np.ndarray
    rate: np.ndarray


@dataclass(frozen=True)
class ConfigSeries:
    """A configuration's per-interval throughput: its ranked trials' curve (None without one),
    its flagged trials' curve, and every successful trial's own series by trial id."""

    ranked: Curve | None
    ranked_trials: int
    flagged: Curve | None
    trials: dict[str, TrialSeries]

    @property
    def end(self) -> float:
        """The last interval end over its trials (at least 1 s)."""
        return max([1.0, *(float(t.end.max()) for t in self.trials.values() if len(t.end))])


def interval_rates(ts: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per interval of the given trials: trial_id, interval (0, 1, ...), start (s),
    end (s) and rate (requests / s), the last interval ending at the trial's window."""
    ts = ts[ts["trial_id"].isin(set(trials["trial_id"]))]
    if "client_host" in ts and ts["client_host"].nunique() > 1:  # several hosts: their sum
        ts = ts.groupby(["trial_id", "second"], as_index=False, observed=True)["requests"].sum()
    ts = ts.assign(trial_id=ts["trial_id"].astype(str)).sort_values(["trial_id", "second"])
    start = ts["second"].astype(float)
    following = start.groupby(ts["trial_id"], sort=False).shift(-1)
    window = ts["trial_id"].map(dict(zip(trials["trial_id"], trials["window_s"], strict=True)))
    last_end = np.maximum(window.fillna(start + 1.0).astype(float), start + 1e-9)
    end = following.where(following.notna(), last_end)
    width = (end - start).where(end > start)
    return pd.DataFrame(
        {
            "trial_id": ts["trial_id"].to_numpy(),
            "interval": ts.groupby("trial_id", sort=False).cumcount().to_numpy(),
            "start": start.to_numpy(),
            "end": end.to_numpy(),
            "rate": (ts["requests"].astype(float) / width).to_numpy(),
        }
    )


def median_curve(rates: pd.DataFrame) -> Curve:
    """Per interval index: median start, and the median, 25th and 75th percentile of the rate
    over the trials that have that interval (pandas' linear interpolation between them)."""
    by = rates.groupby("interval", sort=True)
    q = by["rate"].quantile([0.25, 0.5, 0.75]).unstack()
    return Curve(
        by["start"].median().to_numpy(), q[0.5].to_numpy(), q[0.25].to_numpy(), q[0.75].to_numpy()
    )


def config_series(timeseries: pd.DataFrame, trials: pd.DataFrame) -> dict[SeriesKey, ConfigSeries]:
    """Per configuration of the successful closed-loop trials that have a series (trials:
    labelled, as analyse's), its ConfigSeries."""
    if timeseries.empty or trials.empty:
        return {}
    closed = trials[(trials["mode"].fillna("closed") == "closed") & (trials["status"] == "ok")]
    closed = closed[closed["trial_id"].isin(set(timeseries["trial_id"]))]
    if closed.empty:
        return {}
    rates = interval_rates(timeseries, closed)
    by_trial = {str(t): g for t, g in rates.groupby("trial_id", sort=False)}
    out: dict[SeriesKey, ConfigSeries] = {}
    for (server, cores, label), rows in closed.groupby(["server", "server_cores", "label"]):
        ids = rows["trial_id"].astype(str)
        mine = {t: by_trial[t] for t in ids if t in by_trial}
        ranked = [t for t in ids[rows["ranked"].to_numpy(bool)] if t in mine]
        flagged = [t for t in ids[rows["flagged"].to_numpy(bool)] if t in mine]
        out[(str(server), int(cores), str(label))] = ConfigSeries(
            ranked=median_curve(pd.concat([mine[t] for t in ranked])) if ranked else None,
            ranked_trials=int(rows["ranked"].sum()),
            flagged=median_curve(pd.concat([mine[t] for t in flagged])) if flagged else None,
            trials={
                t: TrialSeries(g["start"].to_numpy(), g["end"].to_numpy(), g["rate"].to_numpy())
                for t, g in mine.items()
            },
        )
    return out
