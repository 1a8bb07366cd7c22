"""The report's figures: matplotlib charts rendered to inline PNG data URIs.

Each chart function takes the analysed run (`Data`) and returns a `Chart`: an image with a
stable id, alt text and caption, or, when the run has nothing to draw, no image and one sentence
saying why (never an empty image). Rules (docs/measurement rules 2-5):
- failed trials are never drawn (they measured nothing);
- flagged trials (client-bound, rate missed, unsteady, oversubscribed) are left out of every
  median, band and line; where single trials are drawn, a flagged one is hollow or dotted and
  labelled, and the caption says so;
- latency percentiles come from merged histograms (analyse), never from averaged percentiles.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, NullLocator

from harness import histogram, stats
from harness.analyse import Analysis, ConfigSummary, DesignComparison

MAX_PANELS = 12  # beyond this a figure is unreadable; the caption says what was left out
MAX_RATIO_ROWS = 30
DPI = 100

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": DPI,
    "svg.fonttype": "none",
}

# Work-stealing designs in cool colours, thread-per-core in warm ones, anything else in greys;
# marker and line style repeat the family so that the charts survive greyscale printing.
_FAMILY_COLOURS = {
    "work-stealing": ["#1f5fa8", "#17a0b8", "#2e9e44", "#6b6bd6"],
    "thread-per-core": ["#d1342f", "#f08c1a", "#9b4fb8", "#c9559a", "#8c5a3c"],
}
_OTHER_COLOURS = ["#555555", "#a8a823", "#222222", "#8a8a8a"]
_FAMILY_MARKER = {"work-stealing": "o", "thread-per-core": "s"}
_FAMILY_LINE = {"work-stealing": "-", "thread-per-core": "--"}


@dataclass(frozen=True)
class Chart:
    """One figure of the report: an inline image, or the reason there is none."""

    id: str
    title: str
    alt: str
    caption: str = ""
    image: str | None = None  # data:image/png;base64,...
    missing: str | None = None  # why there is no image (shown instead of it)
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    line: str
    family: str


@dataclass
class Data:
    """What the charts draw: the analysis, and the trials labelled like its summaries."""

    analysis: Analysis
    trials: pd.DataFrame  # analyse.label_trials(run.trials)
    latency: pd.DataFrame
    workers: pd.DataFrame
    timeseries: pd.DataFrame
    styles: dict[str, Style] = field(default_factory=dict)

    def __post_init__(self) -> None:
        families = {s.server: s.design_family for s in self.analysis.summaries}
        if not self.trials.empty:
            for server, family in zip(
                self.trials["server"], self.trials["design_family"], strict=True
            ):
                families.setdefault(str(server), str(family))
        used: dict[str, int] = {}
        for server in sorted(families):
            family = families[server]
            palette = _FAMILY_COLOURS.get(family, _OTHER_COLOURS)
            n = used.get(family, 0)
            used[family] = n + 1
            self.styles[server] = Style(
                palette[n % len(palette)],
                _FAMILY_MARKER.get(family, "^"),
                _FAMILY_LINE.get(family, ":"),
                family,
            )

    def style(self, server: str) -> Style:
        return self.styles.get(server, Style("#555555", "^", ":", "unknown"))

    @cached_property
    def by_key(self) -> dict[tuple[str, int, str], ConfigSummary]:
        return {(s.server, s.server_cores, s.label): s for s in self.analysis.summaries}

    def trials_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The trials of one configuration summary (every status)."""
        t = self.trials
        if t.empty:
            return t
        return t[
            (t["server"] == s.server)
            & (t["server_cores"] == s.server_cores)
            & (t["label"] == s.label)
        ]

    @cached_property
    def histograms(self) -> dict[str, list[histogram.Bucket]]:
        """Primary (corrected) latency histogram of every trial."""
        lat = self.latency
        if lat.empty:
            return {}
        lat = lat[lat["kind"].fillna("primary") == "primary"]
        return {
            str(tid): list(zip(g["lower_ns"], g["upper_ns"], g["count"], strict=True))
            for tid, g in lat.groupby("trial_id")
        }

    def merged(self, s: ConfigSummary) -> list[histogram.Bucket]:
        """The merged histogram of a configuration's ranked trials (what its p99 comes from)."""
        t = self.trials_of(s)
        ids = t.loc[t["ranked"], "trial_id"] if not t.empty else []
        return histogram.merge(self.histograms.get(str(tid), []) for tid in ids)

    def closed(self) -> list[ConfigSummary]:
        return [s for s in self.analysis.summaries if s.mode == "closed"]

    def open(self) -> list[ConfigSummary]:
        return [s for s in self.analysis.summaries if s.mode == "open"]


# ---------------------------------------------------------------------------------------------
# Drawing helpers


def _png(fig: Figure) -> tuple[str, int, int]:
    buf = io.BytesIO()
    # No Software/Source metadata: the file must not carry any URL.
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = buf.getvalue()
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return "data:image/png;base64," + base64.b64encode(data).decode(), width, height


def _panels(n: int, *, ncols: int = 3, w: float = 4.4, h: float = 3.1) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: Figure, axes: Iterable[Axes], extra: list[Line2D] | None = None) -> None:
    """One legend for the whole figure, under it, without duplicates."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    for line in extra or []:
        handles.setdefault(str(line.get_label()), line)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=len(handles) if len(handles) <= 4 else 3,
            frameon=False,
        )


def _design_label(server: str, style: Style) -> str:
    return f"{server} ({style.family})"


def fmt_us(value: float, _pos: object = None) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g} s"
    if value >= 1e3:
        return f"{value / 1e3:g} ms"
    return f"{value:g} µs"


def _log_cores(cores: Iterable[int]) -> bool:
    """Core counts spanning a factor of 4 or more go on a log2 axis (1, 2, 4, 8 evenly)."""
    cores = sorted(set(cores))
    return len(cores) > 2 and cores[-1] / cores[0] >= 4


def _dodge(xs: Iterable[float], i: int, n: int, log: bool) -> list[float]:
    """Shift design i of n sideways so that their error bars and dots do not hide each other."""
    d = (i - (n - 1) / 2) * 0.05
    return [x * 2**d if log else x + d for x in xs]


def _cores_axis(ax: Axes, cores: list[int]) -> None:
    cores = sorted(set(cores))
    if _log_cores(cores):
        ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(cores))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    pad = 0.3 if ax.get_xscale() == "linear" else 0
    if pad:
        ax.set_xlim(cores[0] - pad - 0.2, cores[-1] + pad + 0.2)
    ax.set_xlabel("server cores")


def _short_reason(row: pd.Series) -> str:
    for flag, word in (
        ("client_bound", "client-bound"),
        ("rate_missed", "rate missed"),
        ("unsteady", "unsteady"),
        ("oversubscribed", "oversubscribed"),
    ):
        value = row.get(flag)
        if value is not None and not pd.isna(value) and bool(value):
            return word
    return "flagged"


def _groups(summaries: list[ConfigSummary], key: Callable[[ConfigSummary], tuple]) -> list[tuple]:
    return sorted({key(s) for s in summaries}, key=lambda k: tuple(str(x).zfill(8) for x in k))


def _capped(keys: list, what: str) -> tuple[list, str]:
    if len(keys) <= MAX_PANELS:
        return keys, ""
    return keys[:MAX_PANELS], (
        f" Only the first {MAX_PANELS} of {len(keys)} {what} are drawn; the tables hold them all."
    )


def _chart(id_: str, title: str, alt: str, caption: str, fig: Figure) -> Chart:
    image, width, height = _png(fig)
    return Chart(id_, title, alt, caption, image, None, width, height)


def _missing(id_: str, title: str, why: str) -> Chart:
    return Chart(id_, title, f"{title}: not drawn", "", None, why)


# ---------------------------------------------------------------------------------------------
# The charts


def throughput_cores(data: Data) -> Chart:
    id_, title = "chart-throughput-cores", "Throughput against server cores"
    ranked = [s for s in data.closed() if s.throughput is not None]
    if not ranked:
        why = (
            (
                "no closed-loop configuration has a ranked trial (every trial failed or was "
                "flagged), so there is no throughput to draw"
            )
            if data.closed()
            else (
                "no closed-loop trials in this run: throughput is only measured closed loop "
                "(open-loop throughput is the offered rate)"
            )
        )
        return _missing(id_, title, why)
    workloads, note = _capped(_groups(data.closed(), lambda s: (s.label,)), "workloads")
    fig, axes = _panels(len(workloads))
    t = data.trials
    hollow_drawn = False
    with_bands = False
    for ax, (label,) in zip(axes, workloads, strict=True):
        cores = []
        servers = sorted({s.server for s in data.closed() if s.label == label})
        log = _log_cores(s.server_cores for s in data.closed() if s.label == label)
        for i, server in enumerate(servers):
            st = data.style(server)

            def dodge(
                xs: Iterable[float], i: int = i, n: int = len(servers), log: bool = log
            ) -> list[float]:
                return _dodge(xs, i, n, log)

            pts = sorted(
                (s for s in data.closed() if s.server == server and s.label == label),
                key=lambda s: s.server_cores,
            )
            cores += [s.server_cores for s in pts]
            good = [s for s in pts if s.throughput is not None]
            if good:
                xs = dodge(s.server_cores for s in good)
                ys = [s.throughput.estimate for s in good]  # type: ignore[union-attr]
                lo = [s.throughput.low for s in good]  # type: ignore[union-attr]
                hi = [s.throughput.high for s in good]  # type: ignore[union-attr]
                ax.plot(
                    xs,
                    ys,
                    marker=st.marker,
                    linestyle=st.line,
                    color=st.colour,
                    label=_design_label(server, st),
                    zorder=3,
                )
                if len(xs) > 1:
                    ax.fill_between(xs, lo, hi, color=st.colour, alpha=0.18, linewidth=0)
                    with_bands = True
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[np.subtract(ys, lo), np.subtract(hi, ys)],
                    fmt="none",
                    ecolor=st.colour,
                    capsize=3,
                    linewidth=1,
                )
            rows = t[(t["server"] == server) & (t["label"] == label) & (t["status"] == "ok")]
            r = rows[rows["ranked"]]
            ax.scatter(
                dodge(r["server_cores"]),
                r["throughput_rps"],
                s=10,
                color=st.colour,
                alpha=0.55,
                zorder=2,
                linewidths=0,
            )
            for _, row in rows[rows["flagged"]].iterrows():
                if pd.isna(row["throughput_rps"]):
                    continue
                hollow_drawn = True
                ax.scatter(
                    dodge([row["server_cores"]]),
                    [row["throughput_rps"]],
                    s=46,
                    facecolors="none",
                    edgecolors=st.colour,
                    linewidths=1.4,
                    zorder=4,
                )
                ax.annotate(
                    f"{_short_reason(row)} ({server})",
                    (dodge([row["server_cores"]])[0], row["throughput_rps"]),
                    textcoords="offset points",
                    xytext=(6, -10),
                    fontsize=7.5,
                    color=st.colour,
                )
        _cores_axis(ax, cores)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_ylabel("requests / s")
        ax.set_title(label)
    extra = []
    if hollow_drawn:
        extra.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="#444",
                label="flagged trial (not ranked)",
            )
        )
    _legend(fig, axes, extra)
    caption = (
        "Median throughput of the ranked repetitions of each design (line), the median's "
        "confidence interval (error bars" + (" and band" if with_bands else "") + "), and every "
        "ranked repetition (small dots). Closed loop: the server's speed sets the rate."
    )
    if hollow_drawn:
        caption += (
            " Hollow circles are flagged trials, drawn for honesty but left out of the "
            "medians and intervals; their reasons are in the list of flagged trials."
        )
    alt = "Line chart of median requests per second against server cores, one line per design"
    return _chart(id_, title, alt, caption + note, fig)


def _spectrum(hist: list[histogram.Bucket]) -> tuple[np.ndarray, np.ndarray, int]:
    """HdrHistogram-style percentile spectrum: x = log10(1 / (1 - p)), y = latency in µs."""
    lower = np.array([b[0] for b in hist], dtype=float)
    upper = np.array([b[1] for b in hist], dtype=float)
    counts = np.array([b[2] for b in hist], dtype=np.int64)
    total = int(counts.sum())
    cum = np.cumsum(counts)
    # Not beyond the rank of the last-but-one value: past it the curve is the max.
    xmax = max(0.5, math.log10(total)) if total > 1 else 0.5
    xs = np.linspace(0.0, xmax, 240)
    ranks = np.maximum(1, np.ceil((1.0 - 10.0**-xs) * total)).astype(np.int64)
    idx = np.minimum(np.searchsorted(cum, ranks), len(cum) - 1)
    value = np.where(upper[idx] - lower[idx] > 1, upper[idx] - 1, lower[idx]) / 1000.0
    return xs, value, total


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


def latency_percentiles(data: Data) -> Chart:
    id_, title = "chart-latency-percentiles", "Latency percentile spectrum (closed loop)"
    keys = sorted(
        {(s.label, s.server_cores) for s in data.closed() if data.merged(s)},
        key=lambda k: (k[0], k[1]),
    )
    if not keys:
        why = (
            "no closed-loop trials in this run"
            if not data.closed()
            else "no closed-loop configuration has a ranked trial with a latency histogram"
        )
        return _missing(id_, title, why)
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    xmax_all = 0.0
    for ax, (label, cores) in zip(axes, keys, strict=True):
        xmax = 0.0
        for s in sorted(
            (s for s in data.closed() if (s.label, s.server_cores) == (label, cores)),
            key=lambda s: s.server,
        ):
            merged = data.merged(s)
            if not merged:
                continue
            st = data.style(s.server)
            xs, ys, _total = _spectrum(merged)
            xmax = max(xmax, xs[-1])
            ax.plot(
                xs,
                ys,
                color=st.colour,
                linestyle=st.line,
                linewidth=1.5,
                label=_design_label(s.server, st),
            )
            px = [-math.log10(1 - p / 100) for p in _MARKED]
            py = [histogram.percentile_us(merged, p) for p in _MARKED]
            ax.scatter(px, py, color=st.colour, marker=st.marker, s=18, zorder=3)
            top = max(b[1] for b in merged) / 1000.0
            ax.scatter([xs[-1] + 0.35], [top], color=st.colour, marker="v", s=26, zorder=3)
        xmax_all = max(xmax_all, xmax)
        ticks = [(x, lab) for x, lab in _SPECTRUM_TICKS if x <= xmax + 1e-9]
        ax.xaxis.set_major_locator(FixedLocator([x for x, _ in ticks] + [xmax + 0.35]))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p, t=dict(ticks): t.get(round(v, 6), "max"))
        )
        ax.set_xlim(-0.1, xmax + 0.6)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_us))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
        ax.tick_params(axis="x", labelsize=7.5)
        ax.set_xlabel("percentile (%)")
        ax.set_ylabel("latency")
        ax.set_title(f"{label} · {cores} core{'s' if cores != 1 else ''}")
    marks = Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        color="#444",
        label="p50, p90, p99, p99.9 (dots), max (triangle)",
    )
    _legend(fig, axes, [marks])
    caption = (
        "Latency at every percentile, HdrHistogram style: the horizontal axis stretches the "
        "tail (each step right is ten times rarer). Each curve is the merged histogram of a "
        "design's ranked repetitions (counts added, never percentiles averaged). Closed-loop "
        "latency is what a connection waited for each answer while the load generator kept all "
        "connections busy: it describes the server at full load, not the latency users would see "
        "at a given request rate (that is the open-loop chart)."
    )
    alt = "Percentile spectrum curves of latency on a log scale, one curve per design and panel"
    return _chart(id_, title, alt, caption + note, fig)


def latency_load(data: Data) -> Chart:
    id_, title = "chart-latency-load", "Latency against offered load (open loop)"
    t = data.trials
    open_trials = t[t["mode"] == "open"] if not t.empty else t
    if open_trials.empty:
        return _missing(
            id_,
            title,
            "no open-loop trials in this run (run with --mode open and "
            "--rates or --rate-sweep to measure latency against load)",
        )
    if not (open_trials["status"] == "ok").any():
        return _missing(id_, title, "every open-loop trial failed; see the list of failed trials")
    keys = sorted(
        {
            (str(r.workload), int(r.server_cores))
            for r in open_trials.itertuples()
            if r.status == "ok"
        }
    )
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    hollow = False
    for ax, (workload, cores) in zip(axes, keys, strict=True):
        panel = [
            s
            for s in data.open()
            if s.server_cores == cores and data.trials_of(s)["workload"].eq(workload).any()
        ]
        for server in sorted({s.server for s in panel}):
            st = data.style(server)
            pts = sorted(
                (
                    s
                    for s in panel
                    if s.server == server and s.achieved_rate is not None and s.p99_us is not None
                ),
                key=lambda s: s.achieved_rate or 0.0,
            )
            if pts:
                xs = [s.achieved_rate for s in pts]
                ax.plot(
                    xs,
                    [s.p99_us for s in pts],
                    color=st.colour,
                    marker=st.marker,
                    linestyle="-",
                    label=_design_label(server, st),
                    zorder=3,
                )
                unc = [
                    (s.achieved_rate, s.uncorrected_p99_us)
                    for s in pts
                    if s.uncorrected_p99_us is not None
                ]
                if unc:
                    ax.plot(
                        *zip(*unc, strict=True),
                        color=st.colour,
                        linestyle=(0, (4, 3)),
                        linewidth=1,
                        alpha=0.8,
                    )
        flagged = open_trials[
            (open_trials["workload"] == workload)
            & (open_trials["server_cores"] == cores)
            & open_trials["flagged"]
        ]
        for _, row in flagged.iterrows():
            x, y = row["achieved_rate"], row["p99_us"]
            if pd.isna(x) or pd.isna(y):
                continue
            hollow = True
            st = data.style(str(row["server"]))
            ax.scatter(
                [x], [y], s=50, facecolors="none", edgecolors=st.colour, linewidths=1.4, zorder=4
            )
            ax.annotate(
                f"{_short_reason(row)} ({row['server']})",
                (x, y),
                textcoords="offset points",
                xytext=(-4, 8),
                ha="right",
                fontsize=7.5,
                color=st.colour,
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_us))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
        ax.xaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_xlabel("achieved rate (requests / s)")
        ax.set_ylabel("p99 latency")
        ax.set_title(f"{workload} · {cores} core{'s' if cores != 1 else ''}")
    extra = [
        Line2D([], [], color="#444", label="p99 from the intended send time (corrected)"),
        Line2D(
            [],
            [],
            color="#444",
            linestyle=(0, (4, 3)),
            linewidth=1,
            label="p99 from the actual send time (uncorrected)",
        ),
    ]
    if hollow:
        extra.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="#444",
                label="flagged trial (not the server's)",
            )
        )
    _legend(fig, axes, extra)
    caption = (
        "Open loop (wrk2's model): requests are sent on a fixed schedule whatever the server "
        "does, and latency is measured from the intended send time, so a stalled server is "
        "charged for the requests queued behind the stall (no coordinated omission). Solid: that "
        "corrected p99, from the merged histograms of the ranked repetitions at each offered "
        "load; dashed: the uncorrected p99 from the moment each request was actually sent. "
        "x is the achieved rate (median of the ranked repetitions)."
    )
    if hollow:
        caption += (
            " Hollow circles are flagged trials (e.g. the achieved rate fell below 99% "
            "of the target): they are not points of the server's curve and are left out "
            "of the lines."
        )
    alt = "Line chart of p99 latency (log scale) against achieved request rate, one per design"
    return _chart(id_, title, alt, caption + note, fig)


def worker_balance(data: Data) -> Chart:
    id_, title = "chart-worker-balance", "Requests per worker (load balance across cores)"
    w = data.workers
    multi = [s for s in data.closed() if s.server_cores > 1]
    if w.empty:
        return _missing(
            id_,
            title,
            "no per-worker counters in this run (the servers printed none, or no trial succeeded)",
        )
    if not multi:
        return _missing(
            id_,
            title,
            "every closed-loop configuration ran one worker: there is nothing to balance",
        )
    shares: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
    for s in multi:
        t = data.trials_of(s)
        ids = set(t.loc[t["ranked"], "trial_id"])
        req_rows, conn_rows = [], []
        for _, g in w[w["trial_id"].isin(ids)].groupby("trial_id"):
            g = g.sort_values("requests", ascending=False)
            reqs = g["requests"].to_numpy(dtype=float)
            conns = g["connections"].to_numpy(dtype=float)
            if len(reqs) != s.server_cores or reqs.sum() <= 0:
                continue
            req_rows.append(reqs / reqs.mean())
            conn_rows.append(conns / conns.mean() if conns.sum() > 0 else conns * np.nan)
        if req_rows:
            shares[(s.label, s.server_cores, s.server)] = (
                np.median(np.vstack(req_rows), axis=0),
                np.median(np.vstack(conn_rows), axis=0),
            )
    if not shares:
        return _missing(id_, title, "no ranked multi-core trial has per-worker counters")
    keys = sorted({(label, k) for label, k, _ in shares})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    for ax, (label, k) in zip(axes, keys, strict=True):
        servers = sorted(srv for lab, kk, srv in shares if (lab, kk) == (label, k))
        width = 0.8 / len(servers)
        for i, server in enumerate(servers):
            st = data.style(server)
            req, conn = shares[(label, k, server)]
            xs = np.arange(1, k + 1) + (i - (len(servers) - 1) / 2) * width
            ax.bar(
                xs,
                req,
                width=width * 0.95,
                color=st.colour,
                alpha=0.85,
                label=_design_label(server, st),
                hatch=None if st.line == "-" else "//",
                edgecolor="white",
            )
            ax.scatter(xs, conn, marker="_", s=120, color="black", linewidths=1.6, zorder=3)
        ax.axhline(1.0, color="#333", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(1, k + 1))
        ax.set_xlabel("worker, busiest first")
        ax.set_ylabel("share / even share")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{label} · {k} cores")
    extra = [
        Line2D(
            [],
            [],
            marker="_",
            markersize=10,
            linestyle="none",
            color="black",
            label="connections held (same scale)",
        ),
        Line2D([], [], color="#333", linestyle=":", label="even share (1.0)"),
    ]
    _legend(fig, axes, extra)
    caption = (
        "How evenly each design spread the work over its workers: requests served by each "
        "worker divided by the mean per worker (1.0 = perfectly even), workers sorted from "
        "busiest to idlest within each ranked repetition, then the median over repetitions. "
        "Black dashes: the connections each worker held, on the same scale. Thread-per-core "
        "designs keep a connection on the worker the kernel's SO_REUSEPORT hash gave it; "
        "work-stealing moves work to idle workers. The median max/mean ratio of each "
        "configuration is in the table of every configuration."
    )
    alt = "Grouped bar chart of requests per worker relative to an even share, per design"
    return _chart(id_, title, alt, caption + note, fig)


def _plain(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def _bars_by_cores(
    data: Data,
    id_: str,
    title: str,
    attr: str,
    column: str,
    ylabel: str,
    caption: str,
    alt: str,
    why_none: str,
) -> Chart:
    closed = [s for s in data.closed() if getattr(s, attr) is not None]
    if not closed:
        return _missing(
            id_, title, why_none if data.closed() else "no closed-loop trials in this run"
        )
    workloads, note = _capped(sorted({s.label for s in closed}), "workloads")
    big_numbers = max(getattr(s, attr) for s in closed) >= 1000
    fig, axes = _panels(len(workloads))
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in closed if s.label == label]
        cores = sorted({s.server_cores for s in mine})
        servers = sorted({s.server for s in mine})
        width = 0.8 / len(servers)
        for i, server in enumerate(servers):
            st = data.style(server)
            for j, k in enumerate(cores):
                s = data.by_key.get((server, k, label))
                if s is None or getattr(s, attr) is None:
                    continue
                x = j + (i - (len(servers) - 1) / 2) * width
                ax.bar(
                    [x],
                    [getattr(s, attr)],
                    width=width * 0.95,
                    color=st.colour,
                    alpha=0.85,
                    hatch=None if st.line == "-" else "//",
                    edgecolor="white",
                    label=_design_label(server, st),
                )
                t = data.trials_of(s)
                vals = t.loc[t["ranked"], column].dropna()
                ax.scatter([x] * len(vals), vals, s=9, color="black", zorder=3, linewidths=0)
        ax.set_xticks(range(len(cores)), [str(k) for k in cores])
        ax.set_xlabel("server cores")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(
            EngFormatter(sep=" ") if big_numbers else FuncFormatter(_plain)
        )
        ax.set_ylim(bottom=0)
        ax.set_title(label)
    _legend(fig, axes)
    return _chart(id_, title, alt, caption + note, fig)


def efficiency(data: Data) -> Chart:
    return _bars_by_cores(
        data,
        "chart-efficiency",
        "Requests per server CPU-second (efficiency)",
        "requests_per_server_cpu_s",
        "requests_per_server_cpu_s",
        "requests / server CPU-s",
        "Requests served per second of server CPU time (user + system, all server threads, "
        "read from /proc over the measured window): how much work each design spends per "
        "request, whatever it reached. Bars: median of the ranked repetitions; dots: each "
        "ranked repetition. A design that spins or polls spends CPU without serving more.",
        "Bar chart of requests per server CPU-second per design and core count",
        "no ranked closed-loop trial has a server CPU time (the harness could not read /proc)",
    )


def context_switches(data: Data) -> Chart:
    return _bars_by_cores(
        data,
        "chart-ctxt",
        "Context switches per request",
        "ctxt_per_request",
        "ctxt_per_request",
        "context switches / request",
        "Voluntary plus involuntary context switches of all server threads over the measured "
        "window (from /proc), per request served. Work-stealing runtimes park and wake worker "
        "threads as work appears and disappears; a thread-per-core loop that is always busy "
        "should hardly switch. Bars: median of the ranked repetitions; dots: each repetition.",
        "Bar chart of context switches per request per design and core count",
        "no ranked closed-loop trial has context-switch counts (no /proc thread data)",
    )


def series(data: Data) -> Chart:
    id_, title = "chart-series", "Throughput per interval (steady state)"
    ts, t = data.timeseries, data.trials
    if ts.empty or t.empty:
        return _missing(id_, title, "no per-interval series in this run")
    closed_ok = t[(t["status"] == "ok") & (t["mode"].fillna("closed") == "closed")]
    closed_ok = closed_ok[closed_ok["trial_id"].isin(set(ts["trial_id"]))]
    if closed_ok.empty:
        return _missing(id_, title, "no successful closed-loop trial has a per-interval series")
    keys = sorted({(str(r.label), int(r.server_cores)) for r in closed_ok.itertuples()})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    by_trial = {tid: g.sort_values("second") for tid, g in ts.groupby("trial_id")}
    any_flagged = short = False
    for ax, (label, k) in zip(axes, keys, strict=True):
        rows = closed_ok[(closed_ok["label"] == label) & (closed_ok["server_cores"] == k)]
        right = 1.0
        for _, row in rows.sort_values(["server", "repetition"]).iterrows():
            g = by_trial[row["trial_id"]]
            starts = g["second"].to_numpy(dtype=float)
            window = row["window_s"] if not pd.isna(row["window_s"]) else starts[-1] + 1.0
            ends = np.append(starts[1:], max(window, starts[-1] + 1e-9))
            widths = np.where(ends > starts, ends - starts, np.nan)
            rate = g["requests"].to_numpy(dtype=float) / widths
            right = max(right, float(ends[-1]))
            st = data.style(str(row["server"]))
            few = len(starts) < stats.STEADY_MIN_INTERVALS
            short |= few
            marker = {"marker": "o", "markersize": 3} if few else {}
            if row["flagged"]:
                any_flagged = True
                ax.plot(starts, rate, color=st.colour, linestyle=":", linewidth=1.6, **marker)
                ax.annotate(
                    f"{_short_reason(row)} r{row['repetition']}",
                    (starts[-1], rate[-1]),
                    textcoords="offset points",
                    xytext=(3, 0),
                    fontsize=7,
                    color=st.colour,
                    va="center",
                )
            else:
                ax.plot(
                    starts,
                    rate,
                    color=st.colour,
                    linestyle=st.line,
                    linewidth=1,
                    alpha=0.85,
                    label=_design_label(str(row["server"]), st),
                    **marker,
                )
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_xlim(-0.03 * right, right)
        ax.set_xlabel("seconds into the measured window")
        ax.set_ylabel("requests / s")
        ax.set_title(f"{label} · {k} core{'s' if k != 1 else ''}")
    extra = []
    if any_flagged:
        extra.append(
            Line2D(
                [],
                [],
                color="#444",
                linestyle=":",
                linewidth=1.6,
                label="flagged trial (not ranked)",
            )
        )
    _legend(fig, axes, extra)
    caption = (
        "Requests per second in each interval of every successful closed-loop repetition "
        "(warm-up already discarded). Flat lines mean the measured window was a steady state; "
        "a drift or step of more than 5% flags the trial as unsteady. The vertical axis does "
        "not start at zero, so small wobbles look large."
    )
    if any_flagged:
        caption += " Dotted lines are flagged trials, labelled with the reason and repetition."
    if short:
        caption += (
            f" Some trials have fewer than {stats.STEADY_MIN_INTERVALS} intervals (dots), too "
            "few to tell a steady state from a trend: measure longer (--duration)."
        )
    alt = "Line chart of requests per second over the measured window, one line per trial"
    return _chart(id_, title, alt, caption + note, fig)


_RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def pair_key(c: DesignComparison) -> tuple[str, str, int, str]:
    return (c.thread_per_core, c.work_stealing, c.server_cores, c.workload)


def ratios(data: Data, p99_verdicts: dict[tuple, str] | None = None) -> Chart:
    """The answer as a picture: thread-per-core / work-stealing ratios with their intervals."""
    id_, title = "chart-ratios", "Thread-per-core / work-stealing, closed loop"
    closed_labels = {s.label for s in data.closed()}
    rows: list[DesignComparison] = [
        c
        for c in data.analysis.comparisons
        if c.workload in closed_labels and (c.throughput_ratio or c.p99_ratio)
    ]
    if not rows:
        return _missing(
            id_,
            title,
            "no closed-loop configuration has ranked trials of both a "
            "thread-per-core and a work-stealing design",
        )
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
                else (p99_verdicts or {}).get(pair_key(c), "") in ("lower", "higher")
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
        "headline pair (tokio-tpc against tokio-ws: same runtime and I/O code, only the "
        "scheduler differs). Filled dots: a real difference under criterion's rule (the whole "
        "interval lies beyond the grey ±2% noise band); hollow: within noise, no change, or too "
        "few repetitions to say."
    )
    alt = "Forest plot of throughput and p99 ratios with confidence intervals per design pair"
    image, w, h = _png(fig)
    return Chart(id_, title, alt, caption + note, image, None, w, h)


def all_charts(data: Data, p99_verdicts: dict[tuple, str] | None = None) -> dict[str, Chart]:
    """Every chart of the report by id (drawn in the report's order)."""
    out = {}
    makers: list[Callable[[Data], Chart]] = [
        lambda d: ratios(d, p99_verdicts),
        throughput_cores,
        latency_percentiles,
        latency_load,
        worker_balance,
        efficiency,
        context_switches,
        series,
    ]
    for make in makers:
        with plt.rc_context(STYLE):
            chart = make(data)
        out[chart.id] = chart
    return out


CHART_IDS = (
    "chart-ratios",
    "chart-throughput-cores",
    "chart-latency-percentiles",
    "chart-latency-load",
    "chart-worker-balance",
    "chart-efficiency",
    "chart-ctxt",
    "chart-series",
)
