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
from collections import Counter
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

from harness import flags, histogram, stats
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

    def flagged_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The flagged (successful, not ranked) trials of one configuration summary."""
        t = self.trials_of(s)
        return t[t["flagged"]] if not t.empty else t

    def merged_flagged(self, s: ConfigSummary) -> list[histogram.Bucket]:
        """The merged histogram of a configuration's flagged trials (drawn, never ranked)."""
        ids = self.flagged_of(s)["trial_id"] if not self.trials.empty else []
        return histogram.merge(self.histograms.get(str(tid), []) for tid in ids)

    def closed_trials(self) -> pd.DataFrame:
        """Every closed-loop trial, whatever its status."""
        t = self.trials
        return t[t["mode"].fillna("closed") == "closed"] if not t.empty else t

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


# ---------------------------------------------------------------------------------------------
# Flagged trials: never ranked, but drawn (hollow or dotted) so that no measured number is hidden

# Each flag's column and its short name, in the order that best explains a trial's numbers (a
# trial that shared its CPUs is first of all oversubscribed, whatever else went wrong).
FLAG_KINDS: tuple[tuple[str, str], ...] = (
    ("oversubscribed", "oversubscribed"),
    ("contended", "contended"),
    ("client_bound", "client-bound"),
    ("rate_missed", "rate missed"),
    ("unsteady", "unsteady"),
)
FLAG_GREY = "#6b6b6b"


def _is_set(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(value)  # type: ignore[arg-type]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def flag_kinds(row: pd.Series) -> list[str]:
    """The short names of a trial's flags (most explanatory first)."""
    return [word for column, word in FLAG_KINDS if _is_set(row.get(column))]


def _short_reason(row: pd.Series) -> str:
    return " + ".join(flag_kinds(row)) or "flagged"


def flag_counts(rows: pd.DataFrame) -> Counter[str]:
    """How many of these trials carry each flag (a trial may carry several)."""
    counts: Counter[str] = Counter()
    for column, word in FLAG_KINDS:
        if not rows.empty and column in rows:
            n = int(rows[column].map(_is_set).sum())
            if n:
                counts[word] = n
    return counts


def _percent_range(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return ""
    lo, hi = round(float(v.min()) * 100), round(float(v.max()) * 100)
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def flag_explanation(kind: str, rows: pd.DataFrame) -> str:
    """Why trials with this flag do not measure the server alone, from their own numbers."""
    if kind == "client-bound":
        single = "client_threads" in rows and bool(
            (rows["client_threads"].dropna() == 1).all() and rows["client_threads"].notna().any()
        )
        client = _percent_range(rows["client_cpu_util"]) if "client_cpu_util" in rows else ""
        server = _percent_range(rows["server_cpu_util"]) if "server_cpu_util" in rows else ""
        if single and client:
            who = f"the single load-generator core was {client} busy"
        else:
            who = (
                f"a load-generator thread was busy {flags.CLIENT_BUSY_LIMIT:.0%} of the window "
                "or more"
            )
        if server:
            who += f" while the server's CPUs were {server} busy"
        return (
            f"{who}, so the pace was set by server and load generator together, not by the "
            "server alone"
        )
    return {
        "oversubscribed": "server and load generator shared CPUs, so these numbers measure the "
        "sharing, not the executor",
        "contended": "other processes (or the hypervisor) used the trial's CPUs, so part of the "
        "time measured was theirs",
        "rate missed": f"the achieved rate fell below {flags.RATE_MISSED_LIMIT:.0%} of the "
        "target, so these are not points of the server's latency curve",
        "unsteady": f"throughput drifted or stepped by more than {stats.STEADY_DRIFT_LIMIT:.0%} "
        "inside the measured window, so no single number describes it",
    }.get(kind, "something other than the server may have set their numbers")


def flagged_note(rows: pd.DataFrame, subject: str) -> str:
    """The caption's sentence about the flagged trials a chart draws: that they are not ranked,
    and why each kind is not the server's own number."""
    if rows.empty:
        return ""
    rows = rows.drop_duplicates("trial_id")
    counts = flag_counts(rows)
    why = "; ".join(
        f"{kind} ({_count(n, 'trial')}): " + flag_explanation(kind, rows[rows[column].map(_is_set)])
        for column, kind in FLAG_KINDS
        if (n := counts.get(kind, 0))
    )
    return (
        f" {subject} ({_count(len(rows), 'trial')}): drawn so that no measured number is "
        "hidden, but never ranked (left out of every median, interval, ratio and verdict). "
        f"{why[:1].upper()}{why[1:]}."
    )


def _flag_handle(rows: pd.DataFrame, *, line: bool = False) -> Line2D:
    """The legend entry of the flagged trials drawn: "flagged: <kinds> (not ranked)"."""
    kinds = [kind for _c, kind in FLAG_KINDS if kind in flag_counts(rows)] or ["flagged"]
    label = f"flagged: {', '.join(kinds)} (not ranked)"
    if line:
        return Line2D([], [], color=FLAG_GREY, linestyle=":", linewidth=1.6, label=label)
    return Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        markerfacecolor="none",
        markeredgecolor=FLAG_GREY,
        markeredgewidth=1.4,
        label=label,
    )


def _why_none(rows: pd.DataFrame, scope: str, what: str, absent: str) -> str:
    """A true reason for drawing nothing: no trial at all, every trial failed, or the data is
    absent from the successful ones (flagged trials are drawn, so they are never the reason)."""
    if rows.empty:
        return f"no {scope} trials in this run"
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        every = "the only" if len(rows) == 1 else f"all {len(rows)}"
        return (
            f"{every} {scope} trial{'s' if len(rows) != 1 else ''} failed, so nothing was "
            f"measured; see the list of failed trials"
        )
    return f"no successful {scope} trial has {what} ({absent})"


def _from_zero(ax: Axes) -> None:
    """A vertical axis from zero with headroom above the highest point drawn (margins are a
    share of the data's range, which leaves none when the axis is stretched down to zero)."""
    top = float(ax.dataLim.y1) if np.isfinite(ax.dataLim.y1) else 0.0
    ax.set_ylim(0, top * 1.07 if top > 0 else 1.0)


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


def _hollow(
    ax: Axes, xs: list[float], ys: Iterable[float], st: Style, label: str = "_", size: float = 46
) -> None:
    """Single flagged trials: hollow markers in the design's colour and shape."""
    ax.scatter(
        xs,
        list(ys),
        s=size,
        marker=st.marker,
        facecolors="none",
        edgecolors=st.colour,
        linewidths=1.4,
        zorder=4,
        label=label,
    )


def throughput_cores(data: Data) -> Chart:
    id_, title = "chart-throughput-cores", "Throughput against server cores"
    closed_t = data.closed_trials()
    ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
    ranked_any = any(s.throughput is not None for s in data.closed())
    drawable = ok[ok["ranked"] | ok["flagged"]] if not ok.empty else ok
    drawable = drawable[drawable["throughput_rps"].notna()] if not drawable.empty else drawable
    if not ranked_any and drawable.empty:
        if closed_t.empty and data.open():
            why = (
                "no closed-loop trials in this run: throughput is only measured closed loop "
                "(open-loop throughput is the offered rate)"
            )
        else:
            why = _why_none(
                closed_t, "closed-loop", "a throughput", "the throughput column is empty"
            )
        return _missing(id_, title, why)
    labels = {str(x) for x in drawable["label"]} | {
        s.label for s in data.closed() if s.throughput is not None
    }
    workloads, note = _capped(sorted(labels), "workloads")
    fig, axes = _panels(len(workloads))
    t = data.trials
    flagged_drawn: list[pd.DataFrame] = []
    with_bands = False
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in data.closed() if s.label == label]
        cores = [s.server_cores for s in mine]
        servers = sorted({s.server for s in mine})
        log = _log_cores(cores)
        panel_ranked = any(s.throughput is not None for s in mine)
        for i, server in enumerate(servers):
            st = data.style(server)

            def dodge(
                xs: Iterable[float], i: int = i, n: int = len(servers), log: bool = log
            ) -> list[float]:
                return _dodge(xs, i, n, log)

            pts = sorted((s for s in mine if s.server == server), key=lambda s: s.server_cores)
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
            f = rows[rows["flagged"] & rows["throughput_rps"].notna()]
            if f.empty:
                continue
            flagged_drawn.append(f)
            _hollow(
                ax,
                dodge(f["server_cores"]),
                f["throughput_rps"],
                st,
                "_" if good else _design_label(server, st),
            )
            # Among ranked points a few flagged ones are exceptions worth naming; when every
            # point is flagged the legend and caption say it once.
            if panel_ranked and len(f) <= 3:
                for _, row in f.iterrows():
                    ax.annotate(
                        f"{_short_reason(row)} ({server})",
                        (dodge([row["server_cores"]])[0], row["throughput_rps"]),
                        textcoords="offset points",
                        xytext=(6, -10),
                        fontsize=7.5,
                        color=st.colour,
                    )
        _cores_axis(ax, cores)
        _from_zero(ax)
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
        ax.set_ylabel("requests / s")
        ax.set_title(label + ("" if panel_ranked else " (flagged only)"))
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else t.iloc[:0]
    _legend(fig, axes, [_flag_handle(flagged_rows)] if flagged_drawn else None)
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
    caption += flagged_note(flagged_rows, "Hollow markers are flagged trials")
    alt = (
        "Line chart of median requests per second against server cores, one line per design"
        if ranked_any
        else "Scatter of the requests per second of each flagged trial against server cores"
    )
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


def _key(s: ConfigSummary) -> tuple[str, int, str]:
    return (s.server, s.server_cores, s.label)


def _spectrum_curve(s: ConfigSummary, data: Data) -> tuple[list[histogram.Bucket], bool]:
    """The histogram a configuration's spectrum is drawn from, and whether it is flagged: its
    ranked trials merged, or, when it has no ranked trial, its flagged ones (drawn dotted)."""
    merged = data.merged(s)
    if merged or s.trials_ok > s.trials_flagged:
        return merged, False
    return data.merged_flagged(s), True


def latency_percentiles(data: Data) -> Chart:
    id_, title = "chart-latency-percentiles", "Latency percentile spectrum (closed loop)"
    curves = {_key(s): _spectrum_curve(s, data) for s in data.closed()}
    keys = sorted(
        {(s.label, s.server_cores) for s in data.closed() if curves[_key(s)][0]},
        key=lambda k: (k[0], k[1]),
    )
    if not keys:
        return _missing(
            id_,
            title,
            _why_none(
                data.closed_trials(),
                "closed-loop",
                "a latency histogram",
                "the latency table holds none for them",
            ),
        )
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    flagged_drawn: list[pd.DataFrame] = []
    any_ranked = False
    for ax, (label, cores) in zip(axes, keys, strict=True):
        xmax = 0.0
        panel_flagged_only = True
        for s in sorted(
            (s for s in data.closed() if (s.label, s.server_cores) == (label, cores)),
            key=lambda s: s.server,
        ):
            merged, flagged = curves[_key(s)]
            if not merged:
                continue
            st = data.style(s.server)
            xs, ys, _total = _spectrum(merged)
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
            py = [histogram.percentile_us(merged, p) for p in _MARKED]
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
            top = max(b[1] for b in merged) / 1000.0
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
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_us))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
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
    _legend(fig, axes, [marks] + ([_flag_handle(flagged_rows, line=True)] if flagged_drawn else []))
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
    measured = open_trials[
        (open_trials["status"] == "ok")
        & open_trials["achieved_rate"].notna()
        & open_trials["p99_us"].notna()
    ]
    if measured.empty:
        return _missing(
            id_,
            title,
            "no successful open-loop trial has an achieved rate and a p99 latency (those "
            "columns are empty)",
        )
    keys = sorted(
        {
            (str(r.workload), int(r.server_cores))
            for r in open_trials.itertuples()
            if r.status == "ok"
        }
    )
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    flagged_drawn: list[pd.DataFrame] = []
    for ax, (workload, cores) in zip(axes, keys, strict=True):
        panel = [
            s
            for s in data.open()
            if s.server_cores == cores and data.trials_of(s)["workload"].eq(workload).any()
        ]
        with_line: set[str] = set()
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
                with_line.add(server)
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
            & open_trials["achieved_rate"].notna()
            & open_trials["p99_us"].notna()
        ]
        if not flagged.empty:
            flagged_drawn.append(flagged)
        for server, rows in flagged.groupby("server"):
            st = data.style(str(server))
            _hollow(
                ax,
                list(rows["achieved_rate"]),
                rows["p99_us"],
                st,
                "_" if str(server) in with_line else _design_label(str(server), st),
                size=50,
            )
            if len(flagged) > 3 and not with_line:
                continue  # every point flagged: the legend and caption name the flag once
            for _, row in rows.iterrows():
                ax.annotate(
                    f"{_short_reason(row)} ({server})",
                    (row["achieved_rate"], row["p99_us"]),
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
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else t.iloc[:0]
    if flagged_drawn:
        extra.append(_flag_handle(flagged_rows))
    _legend(fig, axes, extra)
    caption = (
        "Open loop (wrk2's model): requests are sent on a fixed schedule whatever the server "
        "does, and latency is measured from the intended send time, so a stalled server is "
        "charged for the requests queued behind the stall (no coordinated omission). Solid: that "
        "corrected p99, from the merged histograms of the ranked repetitions at each offered "
        "load; dashed: the uncorrected p99 from the moment each request was actually sent. "
        "x is the achieved rate (median of the ranked repetitions)."
    )
    caption += flagged_note(flagged_rows, "Hollow markers are flagged trials")
    alt = "Line chart of p99 latency (log scale) against achieved request rate, one per design"
    return _chart(id_, title, alt, caption + note, fig)


def _worker_shares(
    w: pd.DataFrame, ids: Iterable[str], k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per trial: requests and connections of each worker over the mean per worker, busiest
    first (trials whose counters do not cover every worker are skipped)."""
    out = []
    for _, g in w[w["trial_id"].isin(set(ids))].groupby("trial_id"):
        g = g.sort_values("requests", ascending=False)
        reqs = g["requests"].to_numpy(dtype=float)
        conns = g["connections"].to_numpy(dtype=float)
        if len(reqs) != k or reqs.sum() <= 0:
            continue
        out.append(
            (reqs / reqs.mean(), conns / conns.mean() if conns.sum() > 0 else conns * np.nan)
        )
    return out


def worker_balance(data: Data) -> Chart:
    id_, title = "chart-worker-balance", "Requests per worker (load balance across cores)"
    w = data.workers
    closed_t = data.closed_trials()
    multi = [s for s in data.closed() if s.server_cores > 1]
    if closed_t.empty or not (closed_t["status"] == "ok").any():
        return _missing(id_, title, _why_none(closed_t, "closed-loop", "per-worker counters", ""))
    if not multi:
        return _missing(
            id_,
            title,
            "every closed-loop configuration ran one worker (1 server core): there is nothing "
            "to balance",
        )
    # (label, cores, server) -> median shares of the ranked trials, or, for a configuration
    # with no ranked trial, each flagged trial's shares (drawn as hollow markers).
    shares: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
    flagged_shares: dict[tuple[str, int, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    flagged_drawn: list[pd.DataFrame] = []
    for s in multi:
        t = data.trials_of(s)
        ranked = _worker_shares(w, t.loc[t["ranked"], "trial_id"], s.server_cores) if len(t) else []
        if ranked:
            shares[(s.label, s.server_cores, s.server)] = (
                np.median(np.vstack([r for r, _c in ranked]), axis=0),
                np.median(np.vstack([c for _r, c in ranked]), axis=0),
            )
        elif s.trials_ok == s.trials_flagged and s.trials_flagged:
            f = data.flagged_of(s)
            per_trial = _worker_shares(w, f["trial_id"], s.server_cores)
            if per_trial:
                flagged_shares[(s.label, s.server_cores, s.server)] = per_trial
                flagged_drawn.append(f[f["trial_id"].isin(set(w["trial_id"]))])
    if not shares and not flagged_shares:
        multi_t = closed_t[closed_t["server_cores"] > 1]
        return _missing(
            id_,
            title,
            _why_none(
                multi_t,
                "multi-core closed-loop",
                "per-worker counters for every worker",
                "the servers printed none",
            ),
        )
    keys = sorted({(label, k) for label, k, _ in [*shares, *flagged_shares]})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    for ax, (label, k) in zip(axes, keys, strict=True):
        servers = sorted(
            {srv for lab, kk, srv in [*shares, *flagged_shares] if (lab, kk) == (label, k)}
        )
        width = 0.8 / len(servers)
        panel_ranked = False
        for i, server in enumerate(servers):
            st = data.style(server)
            xs = np.arange(1, k + 1) + (i - (len(servers) - 1) / 2) * width
            if (label, k, server) in shares:
                panel_ranked = True
                req, conn = shares[(label, k, server)]
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
                continue
            for j, (req, conn) in enumerate(flagged_shares[(label, k, server)]):
                ax.plot(xs, req, color=st.colour, linestyle=":", linewidth=1.2)
                _hollow(ax, list(xs), req, st, _design_label(server, st) if j == 0 else "_", 40)
                ax.scatter(xs, conn, marker="_", s=120, color="black", linewidths=1.6, zorder=3)
        ax.axhline(1.0, color="#333", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(1, k + 1))
        ax.set_xlabel("worker, busiest first")
        ax.set_ylabel("share / even share")
        _from_zero(ax)
        ax.set_title(f"{label} · {k} cores" + ("" if panel_ranked else " (flagged only)"))
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
    flagged_rows = pd.concat(flagged_drawn) if flagged_drawn else data.trials.iloc[:0]
    if flagged_drawn:
        extra.append(_flag_handle(flagged_rows))
    _legend(fig, axes, extra)
    caption = (
        "How evenly each design spread the work over its workers: requests served by each "
        "worker divided by the mean per worker (1.0 = perfectly even), workers sorted from "
        "busiest to idlest within each ranked repetition, then the median over repetitions "
        "(bars). Black dashes: the connections each worker held, on the same scale. "
        "Thread-per-core designs keep a connection on the worker the kernel's SO_REUSEPORT "
        "hash gave it; work-stealing moves work to idle workers. The median max/mean ratio of "
        "each configuration is in the table of every configuration."
    )
    caption += flagged_note(
        flagged_rows,
        "Hollow markers joined by dotted lines are the single flagged trials of "
        "configurations with no ranked trial",
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
    ranked_caption: str,
    alt: str,
    what: str,
    absent: str,
) -> Chart:
    """Bars of a configuration's ranked median with each ranked trial as a dot; for a
    configuration with no ranked trial, each flagged trial's value as a hollow marker."""
    closed = [s for s in data.closed() if getattr(s, attr) is not None]
    flagged_only: dict[tuple[str, int, str], pd.DataFrame] = {}
    for s in data.closed():
        if s.trials_ok > s.trials_flagged or not s.trials_flagged:
            continue
        f = data.flagged_of(s)
        f = f[f[column].notna()]
        if not f.empty:
            flagged_only[_key(s)] = f
    if not closed and not flagged_only:
        return _missing(id_, title, _why_none(data.closed_trials(), "closed-loop", what, absent))
    labels = {s.label for s in closed} | {label for _s, _k, label in flagged_only}
    workloads, note = _capped(sorted(labels), "workloads")
    values = [getattr(s, attr) for s in closed] + [
        float(v) for f in flagged_only.values() for v in f[column]
    ]
    big_numbers = max(values) >= 1000
    fig, axes = _panels(len(workloads))
    for ax, label in zip(axes, workloads, strict=True):
        mine = [s for s in data.closed() if s.label == label]
        drawn = [s for s in mine if getattr(s, attr) is not None or _key(s) in flagged_only]
        cores = sorted({s.server_cores for s in drawn})
        servers = sorted({s.server for s in drawn})
        width = 0.8 / len(servers)
        panel_ranked = False
        for i, server in enumerate(servers):
            st = data.style(server)
            for j, k in enumerate(cores):
                s = data.by_key.get((server, k, label))
                if s is None:
                    continue
                x = j + (i - (len(servers) - 1) / 2) * width
                if getattr(s, attr) is not None:
                    panel_ranked = True
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
                elif _key(s) in flagged_only:
                    vals = flagged_only[_key(s)][column]
                    _hollow(ax, [x] * len(vals), vals, st, _design_label(server, st), 40)
        ax.set_xticks(range(len(cores)), [str(k) for k in cores])
        ax.set_xlim(-0.6, len(cores) - 0.4)
        ax.set_xlabel("server cores")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(
            EngFormatter(sep=" ") if big_numbers else FuncFormatter(_plain)
        )
        _from_zero(ax)
        ax.set_title(label + ("" if panel_ranked else " (flagged only)"))
    flagged_rows = pd.concat(flagged_only.values()) if flagged_only else data.trials.iloc[:0]
    _legend(fig, axes, [_flag_handle(flagged_rows)] if flagged_only else None)
    if closed:
        caption += " " + ranked_caption
    caption += flagged_note(
        flagged_rows,
        "Hollow markers, without a bar, are the single flagged trials of configurations that "
        "have no ranked trial",
    )
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
        "request, whatever it reached. A design that spins or polls spends CPU without "
        "serving more.",
        "Bars: median of the ranked repetitions; dots: each ranked repetition.",
        "Bar chart of requests per server CPU-second per design and core count",
        "a server CPU time",
        "the server CPU column is empty: no CPU time of the server's threads was recorded "
        "from /proc",
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
        "should hardly switch.",
        "Bars: median of the ranked repetitions; dots: each ranked repetition.",
        "Bar chart of context switches per request per design and core count",
        "context-switch counts",
        "the context-switch column is empty: no switch counts of the server's threads were "
        "recorded from /proc",
    )


def series(data: Data) -> Chart:
    id_, title = "chart-series", "Throughput per interval (steady state)"
    ts, t = data.timeseries, data.trials
    closed_t = data.closed_trials()
    closed_ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
    if not ts.empty and not closed_ok.empty:
        closed_ok = closed_ok[closed_ok["trial_id"].isin(set(ts["trial_id"]))]
    if ts.empty or closed_ok.empty:
        return _missing(
            id_,
            title,
            _why_none(
                closed_t, "closed-loop", "a per-interval series", "the load generator recorded none"
            ),
        )
    keys = sorted({(str(r.label), int(r.server_cores)) for r in closed_ok.itertuples()})
    keys, note = _capped(keys, "workload and core-count panels")
    fig, axes = _panels(len(keys))
    by_trial = {tid: g.sort_values("second") for tid, g in ts.groupby("trial_id")}
    flagged_drawn: list[pd.DataFrame] = []
    short = False
    for ax, (label, k) in zip(axes, keys, strict=True):
        rows = closed_ok[(closed_ok["label"] == label) & (closed_ok["server_cores"] == k)]
        right = 1.0
        flagged_rows = rows[rows["flagged"]]
        if not flagged_rows.empty:
            flagged_drawn.append(flagged_rows)
        # Name a flagged line on the chart when there are few, or when its flags differ from
        # the panel's usual ones (with every line flagged alike, the legend says it once).
        kinds = {tid: _short_reason(r) for tid, r in flagged_rows.iterrows()}
        usual = Counter(kinds.values()).most_common(1)[0][0] if kinds else ""
        named = {tid for tid, kind in kinds.items() if len(kinds) <= 3 or kind != usual}
        for idx, row in rows.sort_values(["flagged", "server", "repetition"]).iterrows():
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
                ax.plot(
                    starts,
                    rate,
                    color=st.colour,
                    linestyle=":",
                    linewidth=1.6,
                    label=_design_label(str(row["server"]), st),
                    **marker,
                )
                if idx not in named:
                    continue
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
    all_flagged = pd.concat(flagged_drawn) if flagged_drawn else t.iloc[:0]
    _legend(fig, axes, [_flag_handle(all_flagged, line=True)] if flagged_drawn else None)
    caption = (
        "Requests per second in each interval of every successful closed-loop repetition "
        "(warm-up already discarded). Flat lines mean the measured window was a steady state; "
        "a drift or step of more than 5% flags the trial as unsteady. The vertical axis does "
        "not start at zero, so small wobbles look large."
    )
    caption += flagged_note(
        all_flagged,
        "Dotted lines are flagged trials, labelled with their flags and repetition where "
        "they differ from the others",
    )
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
        closed_t = data.closed_trials()
        ok = closed_t[closed_t["status"] == "ok"] if not closed_t.empty else closed_t
        if ok.empty:
            why = _why_none(closed_t, "closed-loop", "", "")
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
