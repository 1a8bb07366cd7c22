"""The report's figures, one module per chart family, rendered to inline PNG data URIs
(base.py says what every chart shares and the rules they follow)."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt

from harness.analysis.analyse import Analysis
from harness.report.charts.base import STYLE, Chart, Data
from harness.report.charts.chain import chain
from harness.report.charts.latency import latency_load, latency_percentiles
from harness.report.charts.ratios import ratios
from harness.report.charts.series import series
from harness.report.charts.throughput import throughput_cores
from harness.report.charts.workers import context_switches, efficiency, worker_balance

# In the report's order.
MAKERS: tuple[Callable[[Data], Chart], ...] = (
    chain,
    ratios,
    throughput_cores,
    latency_percentiles,
    latency_load,
    worker_balance,
    efficiency,
    context_switches,
    series,
)
CHART_IDS = (
    "chart-chain",
    "chart-ratios",
    "chart-throughput-cores",
    "chart-latency-percentiles",
    "chart-latency-load",
    "chart-worker-balance",
    "chart-efficiency",
    "chart-ctxt",
    "chart-series",
)

__all__ = ["CHART_IDS", "MAKERS", "Chart", "Data", "all_charts"]


def all_charts(analysis: Analysis) -> dict[str, Chart]:
    """Every chart of the report by id (drawn in the report's order)."""
    data = Data(analysis)
    out = {}
    for make in MAKERS:
        with plt.rc_context(STYLE):
            chart = make(data)
        out[chart.id] = chart
    return out
