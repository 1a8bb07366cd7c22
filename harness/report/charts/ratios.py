"""The answer as a picture: thread-per-core / work-stealing ratios with their intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.analysis.analyse import DesignComparison
from harness.analysis.flagged import flag_counts
from harness.report.charts.base import (
    MAX_RATIO_ROWS,
    STYLE,
    Chart,
    Data,
    _chart,
    _missing,
)
from harness.report.charts.flagged import why_none

_RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def ratios(data: Data) -> Chart:
    """The answer as a picture: thread-per-core / work-stealing ratios with their intervals."""
    id_, title = "chart-ratios", "Thread-per-core / work-stealing, closed loop"
    closed_labels = {s.label for s in data.closed()}
    rows: list[DesignComparison] = [
        c
        for c in data.analysis.comparisons
        if c.workload in closed_labels and (c.throughput_ratio or c.p99_ratio)
    ]
    if not rows:
        closed_t = data.closed_trials()
        ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
        if ok.empty:
            why = why_none(closed_t, "closed-loop", "", "")
        elif not ok["ranked"].any():
            kinds = ", ".join(flag_counts(ok[ok["flagged"]])) or "flagged"
            why = (
                f"every successful closed-loop trial was flagged ({kinds}), and flagged trials "
                "are never ranked, so there is no ratio; the charts below draw them, marked "
                "as flagged"
            )
        else:
            why = (
                "no closed-loop configuration has ranked trials of both a "
                "thread-per-core and a work-stealing design"
            )
        return _missing(id_, title, why)
    rows.sort(
        key=lambda c: (
            not c.headline,
            c.workload,
            c.server_cores,
            c.thread_per_core,
            c.work_stealing,
        )
    )
    note = ""
    if len(rows) > MAX_RATIO_ROWS:
        note = f" Only the first {MAX_RATIO_ROWS} of {len(rows)} pairs are drawn."
        rows = rows[:MAX_RATIO_ROWS]
    with plt.rc_context(STYLE):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 0.42 * len(rows) + 1.3), sharey=True)
    ys = np.arange(len(rows))[::-1]
    names = [
        f"{c.thread_per_core} / {c.work_stealing} · {c.server_cores}c · {c.workload}" for c in rows
    ]
    for ax, attr, what in ((a1, "throughput_ratio", "throughput"), (a2, "p99_ratio", "p99")):
        ax.axvspan(0.98, 1.02, color="#999", alpha=0.18, linewidth=0)
        ax.axvline(1.0, color="#333", linewidth=0.8)
        for y, c in zip(ys, rows, strict=True):
            r = getattr(c, attr)
            if r is None:
                ax.text(1.0, y, "n/a", ha="center", va="center", fontsize=7.5, color="#777")
                continue
            colour = "#d1342f" if c.headline else "#555"
            change = (
                (c.verdict is not None and c.verdict.is_change)
                if attr == "throughput_ratio"
                else (c.p99_verdict is not None and c.p99_verdict.is_change)
            )
            ax.errorbar(
                [r.estimate],
                [y],
                xerr=[[r.estimate - r.low], [r.high - r.estimate]],
                fmt="o",
                color=colour,
                mfc=colour if change else "white",
                capsize=3,
                markersize=5,
            )
        values = [1.0] + [v for c in rows if (r := getattr(c, attr)) for v in (r.low, r.high)]
        lo, hi = min(values) / 1.06, max(values) * 1.06
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator([t for t in _RATIO_TICKS if lo <= t <= hi]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}x"))
        ax.set_xlabel(f"{what} ratio, thread-per-core / work-stealing")
        ax.grid(axis="y", alpha=0)
    a1.set_yticks(ys, names)
    for tick, c in zip(a1.get_yticklabels(), rows, strict=True):
        if c.headline:
            tick.set_fontweight("bold")
            tick.set_color("#d1342f")
    a1.set_title("throughput (higher: thread-per-core served more)")
    a2.set_title("p99 latency (lower: thread-per-core's tail was shorter)")
    caption = (
        "Each row compares a thread-per-core design with a work-stealing one in one closed-loop "
        "configuration: the ratio of their medians with its bootstrap interval. Red rows are the "
        "headline pair (tokio-tpc against tokio-ws: same runtime and I/O code, differing in "
        "scheduler and accept topology). Filled dots: a real difference under criterion's rule "
        "(the whole interval lies beyond the grey ±2% noise band); hollow: within noise, no "
        "change, or too few repetitions to say."
    )
    alt = "Forest plot of throughput and p99 ratios with confidence intervals per design pair"
    return _chart(id_, title, alt, caption + note, fig)
