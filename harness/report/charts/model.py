"""The model's charts (issue 11), drawn from the stored model.parquet, never from a new
simulation, and labelled "model" everywhere (titles, legend, alt text, captions):

- per (pair, workload): the predicted p50 and p99 response time against the offered load, one
  panel per N, each with the simulation's own interval shaded; the run's measured open-loop
  p99 at each modelled (design, N) overlaid as diamonds labelled "measured", each labelled with
  the model's error there (model / measured - 1; the report's table lists every trial);
- the predicted thread-per-core / work-stealing ratios against N: throughput at a p99 target,
  and p99 at a fixed load with its interval (model_ratios.py).

A load at which a design's queue is unstable in the model (its median p99 is unbounded) has no
point on a curve: it is marked at the top edge instead, never left out silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from harness.analysis.model_inputs import HEADLINE
from harness.analysis.model_results import capacity_rps
from harness.report.charts.base import (
    STYLE,
    Chart,
    Style,
    _chart,
    _legend,
    _panels,
    design_styles,
    fmt_us,
)
from harness.report.charts.model_ratios import (
    WORKLOAD,
    edge_markers,
    keys_of,
    legend_proxy,
    ratio_chart,
    rows_of,
    workload_label,
)

MAX_LOAD_CHARTS = 4  # pairs x workloads drawn against load; the tables hold every one
MEASURED_MARKER = "D"  # no model curve uses it
_METHODS = {"range": "min-max range", "order-statistic": "order-statistic interval"}


def _slug(*parts: object) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(str(p) for p in parts).lower()).strip("-")


def _interval_label(rows: pd.DataFrame) -> str:
    """The interval's real coverage and how it was obtained, as stored per row."""
    found = rows[["ci_level", "ci_method", "replications"]].drop_duplicates()
    parts = [
        f"{float(r.ci_level):.0%} coverage, {_METHODS.get(str(r.ci_method), str(r.ci_method))} "
        f"of {int(r.replications)} replications"
        for r in found.itertuples()
        if pd.notna(r.ci_level)
    ]
    return "; ".join(parts) or "no interval"


def _clusters(measured: pd.DataFrame, gap: float = 0.025) -> list[pd.DataFrame]:
    """Measured points of one design a rho gap or less apart (repetitions of one offered
    load): one error label each, so that labels stay readable."""
    ordered = measured.sort_values("rho")
    rho = ordered["rho"].to_numpy(float)
    starts = np.flatnonzero(np.diff(rho) > gap) + 1
    return [
        ordered.iloc[a:b]
        for a, b in zip([0, *starts], [*starts, len(ordered)], strict=True)
        if b > a
    ]


def _error_label(errors: list[float]) -> str:
    """The model's error over a cluster of measured points, in percent (model / measured - 1);
    a point where the model's queue is unstable has no finite error and says so."""
    unstable = sum(1 for e in errors if pd.notna(e) and math.isinf(e))
    pct = sorted(e * 100 for e in errors if pd.notna(e) and math.isfinite(e))
    if not pct:
        return "model unstable" if unstable else "error n/a"
    if unstable:
        return f"{_error_label([e for e in errors if not math.isinf(e)])}, {unstable} unstable"
    if len(pct) == 1 or round(pct[0]) == round(pct[-1]):
        return f"{pct[0]:+.0f}%"
    return f"{pct[0]:+.0f}..{pct[-1]:+.0f}%"


def _latency_axis(ax: Axes, low: float, ceiling: float) -> None:
    ax.set_yscale("log")
    ax.set_ylim(low, ceiling)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_us))


# ------------------------------------------------------------------------------------------
# Latency against offered load, per N


def _limits(rows: pd.DataFrame, measured: pd.DataFrame) -> tuple[float, float]:
    values = [rows[c].to_numpy(float) for c in ("p50_low", "p50_us", "p99_us", "p99_high")]
    if not measured.empty:
        values.append(measured["measured_p99_us"].to_numpy(float))
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat) & (flat > 0)]
    if not len(flat):
        return 1.0, 10.0
    # Headroom above the highest point for its label and the row of unstable markers.
    return float(flat.min()) / 1.4, float(flat.max()) * 3.5


def load_figure(
    rows: pd.DataFrame, measured: pd.DataFrame, styles: Mapping[str, Style]
) -> tuple[Figure, dict[str, int]]:
    """One pair and workload: a panel per N, p50 and p99 of both designs against rho, with
    the measured points. Returns the figure and what it drew (measured, unstable, flagged)."""
    first = rows.iloc[0]
    designs = [str(first["thread_per_core"]), str(first["work_stealing"])]
    cores = sorted(int(n) for n in rows["cores"].unique())
    fig, axes = _panels(len(cores), ncols=3, w=4.3, h=3.1)
    low, ceiling = _limits(rows, measured)
    drawn = {"measured": 0, "unstable": 0, "flagged": 0}
    for ax, n in zip(axes, cores, strict=True):
        at = rows[rows["cores"] == n]
        for design in designs:
            st = styles.get(design, Style("#555555", "^", ":", "unknown"))
            d = at[at["design"] == design].sort_values("rho")
            x = d["rho"].to_numpy(float)
            for pct, width, alpha, line, size in (
                ("p99", 1.7, 0.16, st.line, 4.0),
                ("p50", 1.0, 0.09, ":", 2.8),
            ):
                y = d[f"{pct}_us"].to_numpy(float)
                lo = d[f"{pct}_low"].to_numpy(float)
                hi = d[f"{pct}_high"].to_numpy(float)
                ax.plot(
                    x,
                    np.where(np.isfinite(y), y, np.nan),
                    linestyle=line,
                    marker=st.marker,
                    markersize=size,
                    linewidth=width,
                    color=st.colour,
                    label=f"{design} {pct} (model)",
                    zorder=3,
                )
                # An unbounded upper end (unstable replications) reaches the top edge.
                ax.fill_between(
                    x,
                    np.where(np.isfinite(lo), lo, ceiling),
                    np.where(np.isfinite(hi), hi, ceiling),
                    where=np.isfinite(lo),
                    color=st.colour,
                    alpha=alpha,
                    linewidth=0,
                )
                # A point whose neighbours have no band (unstable) gets its interval as a bar.
                has = np.isfinite(lo)
                alone = has & ~np.r_[False, has[:-1]] & ~np.r_[has[1:], False]
                ax.vlines(
                    x[alone],
                    lo[alone],
                    np.where(np.isfinite(hi), hi, ceiling)[alone],
                    color=st.colour,
                    alpha=min(1.0, alpha * 3),
                    linewidth=3,
                )
            unstable = x[~np.isfinite(d["p99_us"].to_numpy(float))]
            drawn["unstable"] += len(unstable)
            edge_markers(ax, list(unstable), 0.965, "^", st.colour)
            mine = measured[(measured["cores"] == n) & (measured["design"] == design)]
            drawn["measured"] += len(mine)
            for flagged, group in mine.groupby("flagged"):
                drawn["flagged"] += len(group) if flagged else 0
                ax.scatter(
                    group["rho"],
                    group["measured_p99_us"],
                    marker=MEASURED_MARKER,
                    s=36,
                    facecolors="none" if flagged else st.colour,
                    edgecolors=st.colour if flagged else "#111111",
                    linewidths=1.2 if flagged else 0.8,
                    zorder=5,
                )
            for group in _clusters(mine):
                rho = float(group["rho"].mean())
                # Above the cluster (beside it, other points sit at the next load).
                right = rho > float(at["rho"].max()) - 0.06
                left = rho < float(at["rho"].min()) + 0.06
                ax.annotate(
                    _error_label(list(group["error"])),
                    xy=(rho, float(group["measured_p99_us"].max())),
                    xytext=(0, 8),
                    textcoords="offset points",
                    ha="right" if right else "left" if left else "center",
                    va="bottom",
                    fontsize=7.5,
                    color=st.colour,
                    zorder=6,
                )
        capacity = capacity_rps(at)
        ax.set_title(
            f"N = {n} · model"
            + (f" · rho 1 = {capacity / 1e3:,.0f}k req/s" if math.isfinite(capacity) else "")
        )
        _latency_axis(ax, low, ceiling)
        span = float(at["rho"].max() - at["rho"].min()) or 0.1
        ax.set_xlim(float(at["rho"].min()) - 0.04 * span, float(at["rho"].max()) + 0.04 * span)
        ax.set_xlabel("offered load, rho (tpc utilisation)")
        ax.set_ylabel("response time (log)")
    extra = [
        legend_proxy("s", f"model interval ({_interval_label(rows)})", markersize=9, alpha=0.4)
    ]
    if drawn["measured"] > drawn["flagged"]:
        extra.append(
            legend_proxy(
                MEASURED_MARKER,
                "measured p99 (open-loop trial), model error %",
                color="#888888",
                markeredgecolor="#111111",
            )
        )
    if drawn["flagged"]:
        extra.append(
            legend_proxy(MEASURED_MARKER, "measured, flagged trial", markerfacecolor="none")
        )
    if drawn["unstable"]:
        extra.append(
            legend_proxy("^", "unstable in the model (p99 unbounded)", markerfacecolor="none")
        )
    _legend(fig, axes, extra)
    fig.tight_layout()
    return fig, drawn


def load_charts(
    predictions: pd.DataFrame, comparison: pd.DataFrame, styles: Mapping[str, Style]
) -> list[Chart]:
    """One chart per (pair, workload), the headline pair first, at most MAX_LOAD_CHARTS."""
    # The headline pair first, then the pairs and workloads with measured points to compare.
    keys = sorted(
        keys_of(predictions),
        key=lambda k: ((k[0], k[1]) != HEADLINE, rows_of(comparison, k, WORKLOAD).empty),
    )
    shown, left = keys[:MAX_LOAD_CHARTS], len(keys) - MAX_LOAD_CHARTS
    out = []
    for i, key in enumerate(shown):
        rows = rows_of(predictions, key, WORKLOAD)
        measured = rows_of(comparison, key, WORKLOAD)
        measured = measured[measured["cores"].isin(rows["cores"].unique())]
        fig, drawn = load_figure(rows, measured, styles)
        pair = f"{key[0]} / {key[1]}"
        title = f"Model: p50 and p99 against offered load, {pair}, {workload_label(key)}"
        if drawn["measured"]:
            seen = (
                f"Diamonds: the {drawn['measured']} measured open-loop trials at these N (their "
                "p99 at the load they were offered; hollow: flagged), each labelled with the "
                "model's error there (model / measured - 1); the table below lists every trial."
            )
        else:
            seen = "No measured open-loop trial at these N: nothing to compare the curves with."
        caption = (
            "Model, not a measurement: the queueing simulation's predicted p99 (thick) and p50 "
            "(dotted) response time of each design against the offered load, one panel per "
            "number of cores N; rho is the offered rate times the thread-per-core design's mean "
            "service time over N, so both designs of a panel see the same rate. Shaded: the "
            f"simulation's own interval ({_interval_label(rows)}). {seen}"
        )
        if drawn["unstable"]:
            caption += (
                f" Hollow triangles at the top edge: {drawn['unstable']} loads at which a "
                "design's queue is unstable in the model (utilisation >= 1 in at least half "
                "the replications: no steady-state percentile, so no point on the curve)."
            )
        if i == len(shown) - 1 and left > 0:
            caption += (
                f" {left} more pairs or workloads are modelled but not drawn; the tables and "
                "model.parquet hold them all."
            )
        alt = (
            f"Model chart: predicted p50 and p99 of {pair} against offered load for N = "
            f"{', '.join(str(int(n)) for n in sorted(rows['cores'].unique()))}"
            + (f", with {drawn['measured']} measured points overlaid" if drawn["measured"] else "")
        )
        out.append(_chart(f"chart-model-load-{_slug(*key)}", title, alt, caption, fig))
    return out


# ------------------------------------------------------------------------------------------
# Entry point


def model_charts(
    predictions: pd.DataFrame,
    ratios: pd.DataFrame,
    comparison: pd.DataFrame,
    *,
    fixed_rho: float,
    families: Mapping[str, str],
) -> list[Chart]:
    """The ratio chart, then one load chart per (pair, workload); none without predictions."""
    if predictions.empty:
        return []
    styles = design_styles(
        {**dict(zip(predictions["design"], predictions["family"], strict=True)), **families}
    )
    with plt.rc_context(STYLE):
        return [
            ratio_chart(ratios, predictions, fixed_rho),
            *load_charts(predictions, comparison, styles),
        ]
