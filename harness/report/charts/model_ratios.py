"""The model's ratio chart (issue 11): the predicted thread-per-core / work-stealing ratio of
throughput at a p99 target and of p99 at a fixed load against N, one line per (pair, workload),
labelled "model"; and what both of the model's chart modules use (the (pair, workload) keys,
legend entries, markers at an axis edge). model.py draws the rest and is the entry point.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.analysis.model_inputs import HEADLINE, THREAD_PER_CORE
from harness.report.charts.base import Chart, _chart, _cores_axis, _dodge, _missing
from harness.report.charts.ratios import _RATIO_TICKS
from harness.report.format import fmt_us as fmt_us3

MAX_RATIO_LINES = 8
_LINE_COLOURS = ["#d1342f", "#1f5fa8", "#2e9e44", "#f08c1a", "#9b4fb8", "#17a0b8", "#555555"]
_LINE_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
WORKLOAD = ["thread_per_core", "work_stealing", "work", "connections", "hot_fraction", "hot_share"]
_TICKS = (0.01, 0.02, 0.05, *_RATIO_TICKS, 20.0, 50.0, 100.0)


def keys_of(frame: pd.DataFrame) -> list[tuple]:
    """The distinct (pair, workload) keys of a frame, NaN as None (NaN != NaN would repeat
    them), the headline pair first."""
    found = {
        tuple(None if pd.isna(v) else v for v in row)
        for row in frame[WORKLOAD].itertuples(index=False)
    }
    # Even load (no hot connections) before skewed, for the same pair and work.
    return sorted(
        found, key=lambda k: ((k[0], k[1]) != HEADLINE, tuple((v is not None, str(v)) for v in k))
    )


def workload_label(key: tuple, *, short: bool = False) -> str:
    """The workload of a (pair, workload) key in words; short: for a legend."""
    _, _, work, connections, hot_fraction, hot_share = key
    skewed = hot_fraction is not None and hot_share is not None
    if short:
        hot = f", {hot_fraction:.0%} hot carry {hot_share:.0%}" if skewed else ""
        return f"{work}, {int(connections)} conns{hot}"
    text = f"work {work}, {int(connections)} connections"
    if skewed:
        text += f", {hot_fraction:.0%} of them carrying {hot_share:.0%} of the requests"
    return text


def _same(a: Any, b: Any) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    return bool(a == b)


def rows_of(frame: pd.DataFrame, key: tuple, cols: list[str]) -> pd.DataFrame:
    if frame.empty or not set(cols) <= set(frame.columns):
        return frame.iloc[0:0]
    mask = np.ones(len(frame), dtype=bool)
    for col, value in zip(cols, key, strict=True):
        mask &= np.array([_same(v, value) for v in frame[col]], dtype=bool)
    return frame[mask]


def legend_proxy(marker: str, label: str, **style: Any) -> Line2D:
    """A legend entry for what the axes draw without a label of their own."""
    kw = {"color": "#555555", "markersize": 6, **style}
    return Line2D([], [], linestyle="none", marker=marker, label=label, **kw)


def edge_markers(ax: Axes, xs: list[float], y_axes: float, marker: str, colour: str) -> None:
    """Hollow markers at an edge of the axes (y in axes coordinates): a value beyond it."""
    ax.scatter(
        xs,
        [y_axes] * len(xs),
        transform=ax.get_xaxis_transform(),
        marker=marker,
        s=36,
        facecolors="white",
        edgecolors=colour,
        linewidths=1.3,
        clip_on=False,
        zorder=5,
    )


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Ratio ticks in range, 1x always, each other one at least a ninth of the axis from
    those chosen (the dense ticks near 1x would overlap on a wide axis)."""
    gap = math.log10(hi / lo) / 9
    chosen = [1.0]
    for t in sorted((t for t in _TICKS if lo <= t <= hi), key=lambda t: abs(math.log10(t))):
        if all(abs(math.log10(t / c)) >= gap for c in chosen):
            chosen.append(t)
    return sorted(chosen)


def _ratio_axis(ax: Axes, values: list[float]) -> tuple[float, float]:
    finite = [v for v in [1.0, *values] if math.isfinite(v) and v > 0]
    lo, hi = min(finite) / 1.25, max(finite) * 1.25
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(FixedLocator(_ratio_ticks(lo, hi)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}x"))
    ax.axhline(1.0, color="#333333", linewidth=0.8, zorder=1)
    return lo, hi


def ratio_figure(
    ratios: pd.DataFrame, predictions: pd.DataFrame, fixed_rho: float
) -> tuple[Figure, list[str]]:
    """Two panels against N: the throughput ratio at the p99 target and the p99 ratio at
    rho = fixed_rho (with its interval). Returns the figure and what could not be drawn."""
    keys = keys_of(ratios)[:MAX_RATIO_LINES]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.6))
    cores = sorted(int(n) for n in ratios["cores"].unique())
    log = len(cores) > 2 and cores[-1] / cores[0] >= 4
    lines: list[tuple[tuple, list[tuple[int, float, bool]], list[tuple[int, float, float, float]]]]
    lines, missing, edges = [], [], 0
    for key in keys:
        rows = rows_of(ratios, key, WORKLOAD).sort_values("cores")
        thr = []
        for r in rows.itertuples():
            bound = bool(r.tpc_censored) or bool(r.ws_censored)
            if pd.isna(r.throughput_ratio):
                who = "thread-per-core" if pd.isna(r.tpc_rps_at_target) else "work stealing"
                missing.append(
                    f"{key[0]} / {key[1]} ({key[2]}) at N = {int(r.cores)}: {who} misses the "
                    "p99 target even at the lowest modelled load, so there is no throughput ratio"
                )
                continue
            thr.append((int(r.cores), float(r.throughput_ratio), bound))
        at = rows_of(predictions, key, WORKLOAD)
        at = at[((at["rho"] - fixed_rho).abs() < 1e-9) & (at["family"] == THREAD_PER_CORE)]
        p99 = [
            (int(r.cores), float(r.p99_ratio), float(r.p99_ratio_low), float(r.p99_ratio_high))
            for r in at.sort_values("cores").itertuples()
            if pd.notna(r.p99_ratio)
        ]
        if len(at) > len(p99):
            missing.append(
                f"{key[0]} / {key[1]} ({key[2]}): p99 ratio at rho {fixed_rho:g} undefined at "
                f"{len(at) - len(p99)} N (both designs unstable)"
            )
        lines.append((key, thr, p99))
    _ratio_axis(a1, [v for _, thr, _ in lines for _, v, _ in thr])
    lim2 = _ratio_axis(a2, [v for _, _, p99 in lines for p in p99 for v in p[1:]])
    for i, (key, thr, p99) in enumerate(lines):
        colour, marker = _LINE_COLOURS[i % len(_LINE_COLOURS)], _LINE_MARKERS[i % 8]
        target = rows_of(ratios, key, WORKLOAD)["p99_target_us"].iloc[0]
        target = f"p99 target {fmt_us3(target)} µs"
        label = f"{key[0]} / {key[1]}, {workload_label(key, short=True)} ({target})"
        xs = _dodge([c for c, _, _ in thr], i, len(lines), log)
        ys = [v for _, v, _ in thr]
        a1.plot(xs, ys, color=colour, marker=marker, markersize=5, linewidth=1.3, label=label)
        bounds = [(x, y) for x, y, (_, _, bound) in zip(xs, ys, thr, strict=True) if bound]
        a1.scatter(
            [x for x, _ in bounds],
            [y for _, y in bounds],
            marker=marker,
            s=30,
            facecolors="white",
            edgecolors=colour,
            linewidths=1.2,
            zorder=4,
        )
        xs = _dodge([c for c, _, _, _ in p99], i, len(lines), log)
        est = [e for _, e, _, _ in p99]
        shown = [min(max(e, lim2[0]), lim2[1]) for e in est]
        low = [e - min(max(lo, lim2[0]), e) for e, (_, _, lo, _) in zip(shown, p99, strict=True)]
        high = [min(max(hi, e), lim2[1]) - e for e, (_, _, _, hi) in zip(shown, p99, strict=True)]
        inside = [lim2[0] <= e <= lim2[1] for e in est]
        a2.errorbar(
            xs,
            shown,
            yerr=[low, high],
            fmt="none",
            ecolor=colour,
            capsize=3,
            linewidth=1.1,
            zorder=3,
        )
        a2.plot(
            xs,
            [e if ok else np.nan for e, ok in zip(est, inside, strict=True)],
            color=colour,
            marker=marker,
            markersize=5,
            linewidth=1.3,
            zorder=3,
        )
        for x, e, ok in zip(xs, est, inside, strict=True):
            if not ok:
                edges += 1
                top = e > lim2[1]
                edge_markers(a2, [x], 0.975 if top else 0.025, "^" if top else "v", colour)
    for ax in (a1, a2):
        _cores_axis(ax, cores)
        ax.set_ylabel("tpc / ws (model)")
    a1.set_title("throughput at the p99 target · model")
    extra = []
    if any(bound for _, thr, _ in lines for _, _, bound in thr):
        extra.append(
            legend_proxy(
                "o", "a bound: a design meets the target at every load", markerfacecolor="white"
            )
        )
    if edges:
        extra.append(
            legend_proxy(
                "^",
                "beyond the axis: a design unstable (ratio 0 or unbounded)",
                markerfacecolor="white",
            )
        )
    a2.set_title(f"p99 at rho {fixed_rho:g} · model")
    handles, labels = a1.get_legend_handles_labels()
    fig.tight_layout()
    # Two columns: the pairs' labels are long (base's legend puts four in one row).
    fig.legend(
        [*handles, *extra],
        [*labels, *(str(e.get_label()) for e in extra)],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=2,
        frameon=False,
    )
    return fig, missing


def ratio_chart(ratios: pd.DataFrame, predictions: pd.DataFrame, fixed_rho: float) -> Chart:
    id_, title = "chart-model-ratios", "Model: thread-per-core / work-stealing ratios against N"
    if ratios.empty or predictions.empty:
        return _missing(id_, title, "the model has no pair of designs to compare")
    fig, missing = ratio_figure(ratios, predictions, fixed_rho)
    n = len(keys_of(ratios))
    caption = (
        "Model, not a measurement: the predicted ratio of a thread-per-core design to a "
        "work-stealing one against the number of cores N. Left: the highest offered rate each "
        "sustains with its median p99 at or under the target (above 1x: thread-per-core "
        "sustains more); hollow: a bound, not a figure, because a design meets the target even "
        "at the highest modelled load. Right: the ratio of their p99 at rho "
        f"{fixed_rho:g} (below 1x: thread-per-core's tail is shorter), with the simulation's "
        "own interval; a ratio or an interval end beyond the axis (0 or unbounded, when one "
        "design is unstable) is drawn at the edge."
    )
    if missing:
        caption += " Not drawn: " + "; ".join(missing) + "."
    if n > MAX_RATIO_LINES:
        caption += f" Only the first {MAX_RATIO_LINES} of {n} pairs or workloads are drawn."
    alt = "Model chart: predicted thread-per-core / work-stealing ratios against core count"
    return _chart(id_, title, alt, caption, fig)
