"""The answer decomposed, as a picture: each step of a chain of controlled pairs with its ratio
and interval against the 1.0 line (drawn the way the ratio chart draws pairs)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.analysis.chain import StepResult
from harness.analysis.decompose import ChainView, chains
from harness.report.charts.base import STYLE, Chart, Data, _chart, _missing

MAX_CHAINS = 6  # panels; the caption says how many more there were
_TICKS = (0.25, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)


def _row_name(r: StepResult) -> str:
    s = r.step
    if not s.before_value:
        return f"whole chain: {s.before} → {s.after}"
    return f"{s.before} → {s.after}\n({s.factor}: {s.before_value} → {s.after_value})"


def _panel(ax: plt.Axes, view: ChainView) -> None:
    rows = [*view.result.steps]
    if view.result.end_to_end is not None and len(rows) > 1:
        rows.append(view.result.end_to_end)
    ys = np.arange(len(rows))[::-1]
    ax.axvspan(0.98, 1.02, color="#999", alpha=0.18, linewidth=0)
    ax.axvline(1.0, color="#333", linewidth=0.8)
    values = [1.0]
    for y, r in zip(ys, rows, strict=True):
        whole = not r.step.before_value
        colour = "#333" if whole else "#d1342f"
        if r.ratio is None or r.interval is None:
            ax.text(1.0, y, "n/a", ha="center", va="center", fontsize=7.5, color="#777")
            continue
        iv = r.interval
        change = r.verdict in ("faster", "slower")
        ax.errorbar(
            [r.ratio],
            [y],
            xerr=[[r.ratio - iv.low], [iv.high - r.ratio]],
            fmt="D" if whole else "o",
            color=colour,
            mfc=colour if change else "white",
            capsize=3,
            markersize=5,
        )
        values += [iv.low, iv.high]
    lo, hi = min(values) / 1.08, max(values) * 1.08
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator([t for t in _TICKS if lo <= t <= hi] or [1.0]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}x"))
    ax.set_yticks(ys, [_row_name(r) for r in rows], fontsize=7.5)
    # The verdict of each row at the right edge, outside the data, so it never covers a dot.
    for y, r in zip(ys, rows, strict=True):
        ax.annotate(
            f"{r.verdict} (n={r.n})", xy=(1.0, y), xycoords=("axes fraction", "data"),
            xytext=(6, 0), textcoords="offset points", va="center", fontsize=7.5, color="#444",
        )  # fmt: skip
    better = "higher" if view.higher_is_better else "lower"
    ax.set_xlabel(f"{view.measure_words}, after / before ({better} is better)")
    ax.set_title(f"{view.cores} core(s), {view.workload}", loc="left")
    ax.grid(axis="y", alpha=0)


def chain(data: Data) -> Chart:
    id_, title = "chart-chain", "The answer decomposed: one factor per step"
    manifest = data.analysis.manifest
    views = chains(data.analysis, manifest)
    if not views:
        return _missing(
            id_,
            title,
            "no chain of controlled pairs was measured: the designs ranked in a configuration "
            "must include tokio-ws and designs that each differ from the previous in one "
            "factor (e.g. --servers tokio-ws,tokio-ws-reuseport,tokio-tpc,monoio-epoll-tpc,"
            "monoio-tpc)",
        )
    note = ""
    if len(views) > MAX_CHAINS:
        note = f" Only the first {MAX_CHAINS} of {len(views)} chains are drawn."
        views = views[:MAX_CHAINS]
    heights = [0.45 * (len(v.result.steps) + (len(v.result.steps) > 1)) for v in views]
    gap = 0.95  # inches between panels: the x label above, the next title below
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(views), 1, figsize=(9.5, sum(heights) + gap * len(views) + 0.2),
            gridspec_kw={"height_ratios": heights, "hspace": gap * len(views) / sum(heights)},
            squeeze=False,
        )  # fmt: skip
    for ax, view in zip(axes[:, 0], views, strict=True):
        _panel(ax, view)
    v = views[0]
    lone = (
        ""
        if v.from_start
        else (
            "No chain from tokio-ws was measured (its designs were not all run, or not ranked), so "
            "these are the controlled pairs among the designs that were: each one factor apart. "
        )
    )
    caption = lone + (
        f"Each red row is one step of a chain of controlled pairs, from {v.result.start}: two "
        "designs that differ in exactly one factor (named under the step), so the step's ratio is "
        f"that factor's share of the difference on this machine, judged on {v.measure_words}. "
        "The ratio is the median over repetitions of after / before, each repetition's designs "
        "having run side by side; the bar is its interval over repetitions, whose real coverage "
        "the table below names (min..max of fewer than 6 pairs covers less than 95%). The dark "
        "diamond is the whole chain compared end to end. Filled: the interval lies wholly beyond "
        "the grey ±2% noise band (a difference under criterion's rule); hollow: within noise, no "
        "change, or too few repetitions."
    )
    alt = "Forest plot of each chain step's ratio with its interval against 1.0"
    return _chart(id_, title, alt, caption + note, fig)
