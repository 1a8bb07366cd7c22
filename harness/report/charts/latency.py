"""Latency: the closed-loop percentile spectrum of each configuration's merged histogram, and
the open-loop p99 against the achieved rate."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter

from harness.analysis import histogram
from harness.analysis.analyse import ConfigSummary
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
    fmt_us,
    key,
)
from harness.report.charts.flagged import (
    flag_handle,
    flagged_note,
    why_none,
)
from harness.report.charts.floor import draw_floor, floor_caption, idle_floor_us
from harness.report.charts.single import SingleTrials

_SPECTRUM_TICKS = [
    (0, "0"),
    (1, "90"),
    (2, "99"),
    (3, "99.9"),
    (4, "99.99"),
    (5, "99.999"),
    (6, "99.9999"),
]
_MARKED = (50.0, 90.0, 99.0, 99.9)


def _spectrum_curve(s: ConfigSummary, data: Data) -> tuple[histogram.Merged, bool]:
    """The histogram a configuration's spectrum is drawn from, and whether it is flagged: its
    ranked trials merged, or, when it has no ranked trial, its flagged ones (drawn dotted)."""
    merged = data.merged(s)
    if merged or s.trials_ok > s.trials_flagged:
        return merged, False
    return data.merged_flagged(s), True


def latency_percentiles(data: Data) -> Chart:
    id_, title = "chart-latency-percentiles", "Latency percentile spectrum (closed loop)"
    curves = {key(s): _spectrum_curve(s, data) for s in data.closed()}
    keys = sorted(
        {(s.label, s.server_cores) for s in data.closed() if curves[key(s)][0]},
        key=lambda k: (k[0], k[1]),
    )
    if not keys:
        return _missing(
            id_,
            title,
            why_none(
                data.closed_trials(),
                "closed-loop",
                "a latency histogram",
                "the latency table holds none for them",
            ),
        )
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    floor = idle_floor_us(data)
    flagged_drawn: list[pd.DataFrame] = []
    any_ranked = False
    for ax, (label, cores) in zip(axes, keys, strict=True):
        xmax = 0.0
        panel_flagged_only = True
        for s in sorted(
            (s for s in data.closed() if (s.label, s.server_cores) == (label, cores)),
            key=lambda s: s.server,
        ):
            merged, flagged = curves[key(s)]
            if not merged:
                continue
            st = data.style(s.server)
            xs, ys = histogram.spectrum(merged)
            xmax = max(xmax, xs[-1])
            if flagged:
                flagged_drawn.append(data.flagged_of(s))
            else:
                any_ranked = True
                panel_flagged_only = False
            ax.plot(
                xs,
                ys,
                color=st.colour,
                linestyle=":" if flagged else st.line,
                linewidth=1.7 if flagged else 1.5,
                label=_design_label(s.server, st),
            )
            px = [-math.log10(1 - p / 100) for p in _MARKED]
            py = [merged.percentile_us(p) for p in _MARKED]
            face = {"facecolors": "none", "edgecolors": st.colour} if flagged else {}
            ax.scatter(
                px,
                py,
                color=None if flagged else st.colour,
                marker=st.marker,
                s=18,
                zorder=3,
                **face,
            )
            top = merged.percentile_us(100)
            ax.scatter(
                [xs[-1] + 0.35],
                [top],
                color=None if flagged else st.colour,
                marker="v",
                s=26,
                zorder=3,
                **face,
            )
        ticks = [(x, lab) for x, lab in _SPECTRUM_TICKS if x <= xmax + 1e-9]
        ax.xaxis.set_major_locator(FixedLocator([x for x, _ in ticks] + [xmax + 0.35]))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p, t=dict(ticks): t.get(round(v, 6), "max"))
        )
        ax.set_xlim(-0.1, xmax + 0.6)
        draw_floor(ax, floor)
        _latency_axis(ax)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.set_xlabel("percentile (%)")
        ax.set_ylabel("latency")
        flagged_title = " (flagged only)" if panel_flagged_only else ""
        ax.set_title(f"{label} · {cores} core{'s' if cores != 1 else ''}{flagged_title}")
    marks = Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        color="#444",
        label="p50, p90, p99, p99.9 (dots), max (triangle)",
    )
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else data.trials.iloc[:0]
    _legend(fig, axes, [marks] + ([flag_handle(flagged_rows, line=True)] if flagged_drawn else []))
    caption = (
        "Latency at every percentile, HdrHistogram style: the horizontal axis stretches the "
        "tail (each step right is ten times rarer). "
        + (
            "Each solid or dashed curve is the merged histogram of a design's ranked "
            "repetitions (counts added, never percentiles averaged). "
            if any_ranked
            else "No closed-loop trial could be ranked, so no ranked curve is drawn. "
        )
        + "Closed-loop latency is what a connection waited for each answer while the load "
        "generator kept all connections busy: it describes the server at full load, not the "
        "latency users would see at a given request rate (that is the open-loop chart)."
    )
    caption += flagged_note(
        flagged_rows,
        "Dotted curves (hollow marks) merge the histograms of the flagged trials of "
        "configurations that have no ranked trial",
    )
    alt = "Percentile spectrum curves of latency on a log scale, one curve per design and panel"
    return _chart(id_, title, alt, caption + floor_caption(floor) + note, fig)


def _open_missing(open_trials: pd.DataFrame) -> str | None:
    """Why there is no open-loop chart, or None when there is one."""
    if open_trials.empty:
        return (
            "no open-loop trials in this run (run with --mode open and "
            "--rates or --rate-sweep to measure latency against load)"
        )
    ok = open_trials[open_trials["status"] == "ok"]
    if ok.empty:
        return "every open-loop trial failed; see the list of failed trials"
    if not (ok["achieved_rate"].notna() & ok["p99_us"].notna()).any():
        return (
            "no successful open-loop trial has an achieved rate and a p99 latency (those "
            "columns are empty)"
        )
    return None


def _open_design(ax: Axes, pts: list[ConfigSummary], st: Style, label: str) -> None:
    """A design's p99 against its achieved rate, corrected (solid) and uncorrected (dashed)."""
    xs = [s.achieved_rate for s in pts]
    ax.plot(xs, [s.p99_us for s in pts], color=st.colour, marker=st.marker, label=label, zorder=3)
    unc = [(s.achieved_rate, s.uncorrected_p99_us) for s in pts if s.uncorrected_p99_us is not None]
    if unc:
        ax.plot(*zip(*unc, strict=True), color=st.colour, linestyle=(0, (4, 3)), lw=1, alpha=0.8)


def _open_panel(
    ax: Axes, data: Data, here: pd.DataFrame, workload: str, cores: int, drawn: SingleTrials
) -> None:
    """One workload and core count: each design's line, its flagged trials hollow (named when
    few) and its ranked trials with a server flag crossed."""
    panel = [
        s
        for s in data.open()
        if s.server_cores == cores and data.trials_of(s)["workload"].eq(workload).any()
    ]
    with_line: set[str] = set()
    for server in sorted({s.server for s in panel}):
        st = data.style(server)
        pts = [
            s
            for s in panel
            if s.server == server and s.achieved_rate is not None and s.p99_us is not None
        ]
        if pts:
            with_line.add(server)
            _open_design(
                ax, sorted(pts, key=lambda s: s.achieved_rate or 0.0), st, _design_label(server, st)
            )
    flagged = here[here["flagged"] & here["achieved_rate"].notna() & here["p99_us"].notna()]
    for server, rows in here.groupby("server"):
        drawn.cross(ax, rows, "achieved_rate", "p99_us", data.style(str(server)).colour)
    for server, rows in flagged.groupby("server"):
        st = data.style(str(server))
        label = "_" if str(server) in with_line else _design_label(str(server), st)
        drawn.hollow(ax, rows, list(rows["achieved_rate"]), "p99_us", st, label, size=50)
        if len(flagged) <= MAX_NAMED:  # many: the legend and caption name the flags once
            drawn.name(
                ax, rows, rows["achieved_rate"], "p99_us", st.colour, xytext=(-4, 8), ha="right"
            )


def latency_load(data: Data) -> Chart:
    id_, title = "chart-latency-load", "Latency against offered load (open loop)"
    t = data.trials
    open_trials = t[t["mode"] == "open"] if not t.empty else t
    why = _open_missing(open_trials)
    if why is not None:
        return _missing(id_, title, why)
    ok = open_trials.loc[open_trials["status"] == "ok", ["workload", "server_cores"]]
    keys = sorted(
        {(str(w), int(k)) for w, k in ok.drop_duplicates().itertuples(index=False, name=None)}
    )
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    floor = idle_floor_us(data)
    drawn = SingleTrials(t.iloc[:0])
    for ax, (workload, cores) in zip(axes, keys, strict=True):
        here = open_trials[
            (open_trials["workload"] == workload) & (open_trials["server_cores"] == cores)
        ]
        _open_panel(ax, data, here, workload, cores, drawn)
        draw_floor(ax, floor)
        _latency_axis(ax)
        ax.xaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_xlabel("achieved rate (requests / s)")
        ax.set_ylabel("p99 latency")
        ax.set_title(f"{workload} · {cores} core{'s' if cores != 1 else ''}")
    drawn.legend(
        fig,
        axes,
        [
            Line2D([], [], color="#444", label="p99 from the intended send time (corrected)"),
            Line2D(
                [],
                [],
                color="#444",
                linestyle=(0, (4, 3)),
                linewidth=1,
                label="p99 from the actual send time (uncorrected)",
            ),
        ],
    )
    caption = (
        "Open loop (wrk2's model): requests are sent on a fixed schedule whatever the server "
        "does, and latency is measured from the intended send time, so a stalled server is "
        "charged for the requests queued behind the stall (no coordinated omission). Solid: that "
        "corrected p99, from the merged histograms of the ranked repetitions at each offered "
        "load; dashed: the uncorrected p99 from the moment each request was actually sent. "
        "x is the achieved rate (median of the ranked repetitions)."
    )
    caption += drawn.caption("Hollow markers are flagged trials")
    alt = "Line chart of p99 latency (log scale) against achieved request rate, one per design"
    return _chart(id_, title, alt, caption + floor_caption(floor) + note, fig)


def _latency_axis(ax: Axes) -> None:
    """A log latency axis in µs, ms or s, without minor labels."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_us))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
