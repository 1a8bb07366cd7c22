"""Throughput per interval inside the measured window (steady state): per design, the median
over its ranked repetitions with their interquartile range; flagged trials dotted, one line each
when a panel has few of them, else their median (all computed in analysis/series.py)."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

from harness.analysis.flagged import short_reason
from harness.analysis.series import ConfigSeries, Curve
from harness.report.charts.base import (
    MAX_NAMED,
    Chart,
    Data,
    Style,
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


def _flagged_rows(data: Data, key: tuple[str, int, str], c: ConfigSeries) -> pd.DataFrame:
    """The flagged trials of a configuration that have a series."""
    s = data.by_key.get(key)
    f = data.flagged_of(s) if s is not None else data.trials.iloc[:0]
    return f[f["trial_id"].astype(str).isin(set(c.trials))] if not f.empty else f


def _draw_curve(
    ax: Axes, curve: Curve, st: Style, server: str, band: bool, *, dotted: bool = False
) -> bool:
    """A median curve (dotted: of flagged trials), with its interquartile band when `band`;
    whether a band was drawn."""
    few = len(curve.start) < STEADY_MIN_INTERVALS and not dotted
    ax.plot(
        curve.start,
        curve.median,
        color=st.colour,
        linestyle=":" if dotted else st.line,
        linewidth=1.6 if dotted else 1.3,
        label=_design_label(server, st),
        **({"marker": "o", "markersize": 3} if few else {}),
    )
    if band:
        ax.fill_between(curve.start, curve.low, curve.high, color=st.colour, alpha=0.18, lw=0)
    return band


def series(data: Data) -> Chart:
    id_, title = "chart-series", "Throughput per interval (steady state)"
    by_key = data.analysis.series
    if not by_key:
        return _missing(
            id_,
            title,
            why_none(
                data.closed_trials(),
                "closed-loop",
                "a per-interval series",
                "the load generator recorded none",
            ),
        )
    keys = sorted({(label, k) for _server, k, label in by_key})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    flagged_drawn: list[pd.DataFrame] = []
    short = any(
        len(t.start) < STEADY_MIN_INTERVALS for c in by_key.values() for t in c.trials.values()
    )
    with_bands = False
    for ax, (label, k) in zip(axes, keys, strict=True):
        here = {srv: c for (srv, kk, lab), c in sorted(by_key.items()) if (lab, kk) == (label, k)}
        flagged_rows = [_flagged_rows(data, (srv, k, label), c) for srv, c in here.items()]
        flagged_drawn += [f for f in flagged_rows if not f.empty]
        one_by_one = sum(len(f) for f in flagged_rows) <= MAX_FLAGGED_LINES
        named = 0
        for (server, c), flagged in zip(here.items(), flagged_rows, strict=True):
            st = data.style(server)
            if c.ranked is not None:
                with_bands |= _draw_curve(ax, c.ranked, st, server, c.ranked_trials > 1)
            if flagged.empty:
                continue
            if not one_by_one:  # many flagged trials: their median, dotted
                if c.flagged is not None:
                    _draw_curve(ax, c.flagged, st, server, False, dotted=True)
                continue
            for row in flagged.sort_values("repetition").to_dict("records"):
                g = c.trials[str(row["trial_id"])]
                few = len(g.start) < STEADY_MIN_INTERVALS
                ax.plot(
                    g.start,
                    g.rate,
                    color=st.colour,
                    linestyle=":",
                    linewidth=1.6,
                    label=_design_label(server, st),
                    **({"marker": "o", "markersize": 3} if few else {}),
                )
                if named >= MAX_NAMED:
                    continue
                named += 1
                ax.annotate(
                    f"{short_reason(row)} r{row['repetition']}",
                    (float(g.start[-1]), float(g.rate[-1])),
                    textcoords="offset points",
                    xytext=(3, 0),
                    fontsize=7,
                    color=st.colour,
                    va="center",
                )
        right = max(c.end for c in here.values())
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
