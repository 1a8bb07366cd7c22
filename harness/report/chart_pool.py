"""The report's charts drawn on two CPUs when the run is large.

Drawing is matplotlib's work (ticks, text, the Agg raster): a few hundred milliseconds a chart
whatever the run's size, one CPU at a time. For a large run (PARALLEL_FROM trials or more, where
the rest of the report also takes seconds) the charts are shared out to forked workers, which
inherit the analysis instead of receiving a copy, and come back as finished `Chart`s (text):
the same images as drawn one after another, in the report's order. Anywhere fork is missing,
with one CPU, or when a worker fails, they are drawn here, one after another.
"""

from __future__ import annotations

import multiprocessing
import os

import matplotlib.pyplot as plt

from harness.analysis.analyse import Analysis
from harness.report.charts import MAKERS, STYLE, Chart, Data, all_charts

PARALLEL_FROM = 2_000  # trials
WORKERS = 2

_inherited: Analysis | None = None  # set before the fork, read by the workers


def _draw(index: int) -> tuple[int, Chart]:
    assert _inherited is not None
    with plt.rc_context(STYLE):
        return index, MAKERS[index](Data(_inherited))


def draw_charts(analysis: Analysis, *, parallel: bool | None = None) -> dict[str, Chart]:
    """Every chart of the report by id, in the report's order (charts.all_charts); drawn by
    forked workers when `parallel` (default: a run of PARALLEL_FROM trials or more on a
    machine with more than one CPU)."""
    global _inherited
    if parallel is None:
        parallel = len(analysis.trials) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        return all_charts(analysis)
    _inherited = analysis
    try:
        with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
            drawn = dict(pool.imap_unordered(_draw, range(len(MAKERS)), chunksize=1))
    except Exception:  # any failure of the pool (a chart's own error recurs here): draw here
        return all_charts(analysis)
    finally:
        _inherited = None
    charts = [drawn[i] for i in range(len(MAKERS))]
    return {chart.id: chart for chart in charts}
