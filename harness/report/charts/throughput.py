"""Throughput against server cores: medians with intervals per design, every ranked repetition as
a dot, flagged trials hollow and, when few, named."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

from harness.analysis.analyse import ConfigSummary
from harness.report.charts.base import (
    MAX_NAMED,
    Chart,
    Data,
    Style,
    _capped,
    _chart,
    _cores_axis,
    _design_label,
    _dodge,
    _from_zero,
    _log_cores,
    _missing,
    _panels,
)
from harness.report.charts.flagged import why_none
from harness.report.charts.single import SingleTrials

# Where a design's points go on the cores axis: dodged sideways from the other designs'.
Place = Callable[[Iterable[float]], list[float]]


def _missing_why(data: Data, closed_t: pd.DataFrame) -> str:
    if closed_t.empty and data.open():
        return (
            "no closed-loop trials in this run: throughput is only measured closed loop "
            "(open-loop throughput is the offered rate)"
        )
    return why_none(closed_t, "closed-loop", "a throughput", "the throughput column is empty")


def _medians(ax: Axes, good: list[ConfigSummary], xs: list[float], st: Style, label: str) -> bool:
    """A design's ranked medians against cores with their intervals (bars, and a band when
    there are several core counts); whether a band was drawn."""
    ys = [s.throughput.estimate for s in good]  # type: ignore[union-attr]
    lo = [s.throughput.low for s in good]  # type: ignore[union-attr]
    hi = [s.throughput.high for s in good]  # type: ignore[union-attr]
    ax.plot(xs, ys, marker=st.marker, linestyle=st.line, color=st.colour, label=label, zorder=3)
    band = len(xs) > 1
    if band:
        ax.fill_between(xs, lo, hi, color=st.colour, alpha=0.18, linewidth=0)
    ax.errorbar(
        xs,
        ys,
        yerr=[np.subtract(ys, lo), np.subtract(hi, ys)],
        fmt="none",
        ecolor=st.colour,
        capsize=3,
        linewidth=1,
    )
    return band


def _design(
    ax: Axes, data: Data, mine: list[ConfigSummary], server: str, place: Place, drawn: SingleTrials
) -> bool:
    """One design in a workload's panel: medians, ranked repetitions (dots, crossed when a
    server flag), flagged trials (hollow, named when few among ranked points); whether a band
    was drawn."""
    st, label = data.style(server), _design_label(server, data.style(server))
    good = [
        s
        for s in sorted(mine, key=lambda s: s.server_cores)
        if s.server == server and s.throughput is not None
    ]
    band = bool(good) and _medians(ax, good, place(s.server_cores for s in good), st, label)
    t = data.trials
    rows = t[(t["server"] == server) & (t["label"] == mine[0].label) & (t["status"] == "ok")]
    r = rows[rows["ranked"]]
    at = place(r["server_cores"])
    ax.scatter(at, r["throughput_rps"], s=10, color=st.colour, alpha=0.55, zorder=2, linewidths=0)
    drawn.cross(ax, r, "server_cores", "throughput_rps", st.colour, xs=at)
    f = rows[rows["flagged"] & rows["throughput_rps"].notna()]
    if f.empty:
        return band
    drawn.hollow(ax, f, place(f["server_cores"]), "throughput_rps", st, "_" if good else label)
    # Among ranked points a few flagged ones are exceptions worth naming; when every point is
    # flagged the legend and caption say it once.
    if any(s.throughput is not None for s in mine) and len(f) <= MAX_NAMED:
        drawn.name(ax, f, place(f["server_cores"]), "throughput_rps", st.colour, xytext=(6, -10))
    return band


def throughput_cores(data: Data) -> Chart:
    id_, title = "chart-throughput-cores", "Throughput against server cores"
    closed_t = data.closed_trials()
    ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
    ranked_any = any(s.throughput is not None for s in data.closed())
    drawable = ok[ok["ranked"] | ok["flagged"]] if not ok.empty else ok
    drawable = drawable[drawable["throughput_rps"].notna()] if not drawable.empty else drawable
    if not ranked_any and drawable.empty:
        return _missing(id_, title, _missing_why(data, closed_t))
    labels = {str(x) for x in drawable["label"]} | {
        s.label for s in data.closed() if s.throughput is not None
    }
    workloads, note = _capped(sorted(labels), "workloads")
    fig, axes = _panels(len(workloads))
    drawn = SingleTrials(data.trials.iloc[:0])
    with_bands = False
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in data.closed() if s.label == label]
        cores = [s.server_cores for s in mine]
        servers = sorted({s.server for s in mine})
        for i, server in enumerate(servers):
            place = partial(_dodge, i=i, n=len(servers), log=_log_cores(cores))
            with_bands |= _design(ax, data, mine, server, place, drawn)
        _cores_axis(ax, cores)
        _from_zero(ax)
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_ylabel("requests / s")
        ranked_here = any(s.throughput is not None for s in mine)
        ax.set_title(label + ("" if ranked_here else " (flagged only)"))
    drawn.legend(fig, axes)
    if ranked_any:
        caption = (
            "Median throughput of the ranked repetitions of each design (line), the median's "
            "confidence interval (error bars" + (" and band" if with_bands else "") + "), and "
            "every ranked repetition (small dots). Closed loop: the server's speed sets the rate."
        )
    else:
        caption = (
            "No closed-loop trial could be ranked, so no median, interval or line is drawn: "
            "each point is the throughput of one flagged trial, in its design's colour and "
            "shape."
        )
    caption += drawn.caption("Hollow markers are flagged trials")
    alt = (
        "Line chart of median requests per second against server cores, one line per design"
        if ranked_any
        else "Scatter of the requests per second of each flagged trial against server cores"
    )
    return _chart(id_, title, alt, caption + note, fig)
