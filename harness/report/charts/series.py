"""Throughput per interval inside the measured window (steady state): per design, the median
over its ranked repetitions with their interquartile range; flagged trials dotted, one line each
when a panel has few of them, else their median."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter

from harness.analysis.flagged import short_reason
from harness.report.charts.base import (
    MAX_NAMED,
    Chart,
    Data,
    _capped,
    _chart,
    _design_label,
    _legend,
    _missing,
    _panels,
)
from harness.report.charts.flagged import flag_handle, flagged_note, why_none
from harness.run.steady import STEADY_MIN_INTERVALS

# A panel draws its flagged trials one line each up to this many; beyond, their median.
MAX_FLAGGED_LINES = 6


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


def _median_curve(rates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per interval index: median start, and the median, 25th and 75th percentile of the rate
    over the trials that have that interval."""
    by = rates.groupby("interval", sort=True)
    q = by["rate"].quantile([0.25, 0.5, 0.75]).unstack()
    starts = by["start"].median()
    return starts.to_numpy(), q[0.5].to_numpy(), q[0.25].to_numpy(), q[0.75].to_numpy()


def series(data: Data) -> Chart:
    id_, title = "chart-series", "Throughput per interval (steady state)"
    ts = data.timeseries
    closed_t = data.closed_trials()
    closed_ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
    if not ts.empty and not closed_ok.empty:
        closed_ok = closed_ok[closed_ok["trial_id"].isin(set(ts["trial_id"]))]
    if ts.empty or closed_ok.empty:
        return _missing(
            id_,
            title,
            why_none(
                closed_t, "closed-loop", "a per-interval series", "the load generator recorded none"
            ),
        )
    rates = interval_rates(ts, closed_ok)
    pairs = closed_ok[["label", "server_cores"]].drop_duplicates()
    keys = sorted({(str(w), int(k)) for w, k in pairs.itertuples(index=False, name=None)})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    flagged_drawn: list[pd.DataFrame] = []
    short = bool((rates.groupby("trial_id").size() < STEADY_MIN_INTERVALS).any())
    with_bands = False
    for ax, (label, k) in zip(axes, keys, strict=True):
        rows = closed_ok[(closed_ok["label"] == label) & (closed_ok["server_cores"] == k)]
        ends = rates.loc[rates["trial_id"].isin(set(rows["trial_id"])), "end"]
        right = max(1.0, float(ends.max()))
        flagged_rows = rows[rows["flagged"]]
        if not flagged_rows.empty:
            flagged_drawn.append(flagged_rows)
        one_by_one = len(flagged_rows) <= MAX_FLAGGED_LINES
        named = 0
        for server, mine in rows.groupby("server", sort=True):
            st = data.style(str(server))
            ranked = mine[mine["ranked"]]
            if not ranked.empty:
                r = rates[rates["trial_id"].isin(set(ranked["trial_id"]))]
                xs, med, lo, hi = _median_curve(r)
                few = len(xs) < STEADY_MIN_INTERVALS
                ax.plot(
                    xs,
                    med,
                    color=st.colour,
                    linestyle=st.line,
                    linewidth=1.3,
                    label=_design_label(str(server), st),
                    **({"marker": "o", "markersize": 3} if few else {}),
                )
                if len(ranked) > 1:
                    ax.fill_between(xs, lo, hi, color=st.colour, alpha=0.18, linewidth=0)
                    with_bands = True
            flagged = mine[mine["flagged"]]
            if flagged.empty:
                continue
            if not one_by_one:  # many flagged trials: their median, dotted
                r = rates[rates["trial_id"].isin(set(flagged["trial_id"]))]
                xs, med, _lo, _hi = _median_curve(r)
                ax.plot(
                    xs,
                    med,
                    color=st.colour,
                    linestyle=":",
                    linewidth=1.6,
                    label=_design_label(str(server), st),
                )
                continue
            drawn = flagged.sort_values("repetition")
            mine_rates = rates[rates["trial_id"].isin(set(drawn["trial_id"].astype(str)))]
            by_trial = dict(list(mine_rates.groupby("trial_id", sort=False)))
            for row in drawn.to_dict("records"):
                g = by_trial[str(row["trial_id"])]
                few = len(g) < STEADY_MIN_INTERVALS
                ax.plot(
                    g["start"],
                    g["rate"],
                    color=st.colour,
                    linestyle=":",
                    linewidth=1.6,
                    label=_design_label(str(server), st),
                    **({"marker": "o", "markersize": 3} if few else {}),
                )
                if named >= MAX_NAMED:
                    continue
                named += 1
                ax.annotate(
                    f"{short_reason(row)} r{row['repetition']}",
                    (float(g["start"].iloc[-1]), float(g["rate"].iloc[-1])),
                    textcoords="offset points",
                    xytext=(3, 0),
                    fontsize=7,
                    color=st.colour,
                    va="center",
                )
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_xlim(-0.03 * right, right)
        ax.set_xlabel("seconds into the measured window")
        ax.set_ylabel("requests / s")
        ax.set_title(f"{label} · {k} core{'s' if k != 1 else ''}")
    all_flagged = pd.concat(flagged_drawn) if flagged_drawn else data.trials.iloc[:0]
    _legend(fig, axes, [flag_handle(all_flagged, line=True)] if flagged_drawn else None)
    caption = (
        "Requests per second in each interval of the measured window (warm-up already "
        "discarded): per design, the median over its ranked closed-loop repetitions"
        + (" with their interquartile range (band)" if with_bands else "")
        + ". Flat lines mean the measured window was a steady state; a drift or step of more "
        "than 5% flags the trial as unsteady. The vertical axis does not start at zero, so "
        "small wobbles look large."
    )
    caption += flagged_note(
        all_flagged,
        "Dotted lines are flagged trials (one line each where a panel has at most "
        f"{MAX_FLAGGED_LINES}, else their median), labelled with their flags and repetition",
    )
    if short:
        caption += (
            f" Some trials have fewer than {STEADY_MIN_INTERVALS} intervals (dots), too "
            "few to tell a steady state from a trend: measure longer (--duration)."
        )
    alt = "Line chart of requests per second over the measured window, one line per design"
    return _chart(id_, title, alt, caption + note, fig)
