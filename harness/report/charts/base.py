"""What every chart shares: the analysed run as the charts see it (`Data`), colours and
markers per design, the figure and axis helpers, and the rule that no two labels overlap.

Each chart function (one module per chart family) takes `Data` and returns a `Chart`: an image
with a stable id, alt text and caption, or, when the run has nothing to draw, no image and one
sentence saying why (never an empty image). Rules (docs/measurement rules 2-5):
- failed trials are never drawn (they measured nothing);
- flagged trials (an instrument flag: client-bound, contended, oversubscribed) are left out of
  every median, band and line; where single trials are drawn, a flagged one is hollow or dotted
  and labelled, and the caption says so; ranked trials with a server flag (rate missed,
  unsteady, errors, censored) stay in them and are marked with a cross (charts/flagged.py);
  single trials are drawn only up to a bounded number;
- latency percentiles come from merged histograms (analysis), never from averaged percentiles.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Mapping
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
from matplotlib.text import Annotation
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.analysis import histogram
from harness.analysis.analyse import Analysis, ConfigSummary

MAX_PANELS = 12  # beyond this a figure is unreadable; the caption says what was left out
MAX_RATIO_ROWS = 30
MAX_NAMED = 3  # flagged points named on a chart, at most, per panel (and per design where said)
MAX_TRIALS_DRAWN = 12  # single trials drawn one by one, at most, per configuration
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
    """What the charts draw: the analysis (its labelled trials, merged histograms, summaries,
    per-interval series and worker shares) and each design's style."""

    analysis: Analysis
    styles: dict[str, Style] = field(default_factory=dict)

    def __post_init__(self) -> None:
        families = {s.server: s.design_family for s in self.analysis.summaries}
        if not self.trials.empty:
            pairs = self.trials[["server", "design_family"]].drop_duplicates()
            for server, family in zip(pairs["server"], pairs["design_family"], strict=True):
                families.setdefault(str(server), str(family))
        self.styles.update(design_styles(families))

    @property
    def trials(self) -> pd.DataFrame:
        return self.analysis.trials

    def style(self, server: str) -> Style:
        return self.styles.get(server, Style("#555555", "^", ":", "unknown"))

    @cached_property
    def by_key(self) -> dict[tuple[str, int, str], ConfigSummary]:
        return self.analysis.by_key

    def trials_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The trials of one configuration summary (every status)."""
        return self.analysis.trials_of(s)

    def merged(self, s: ConfigSummary) -> histogram.Merged:
        """The merged histogram of a configuration's ranked trials (what its p99 comes from)."""
        return self.analysis.merged.get(key(s), histogram.EMPTY)

    def flagged_of(self, s: ConfigSummary) -> pd.DataFrame:
        """The flagged (successful, not ranked) trials of one configuration summary."""
        return self.analysis.flagged_of(s)

    def merged_flagged(self, s: ConfigSummary) -> histogram.Merged:
        """The merged histogram of a configuration's flagged trials (drawn, never ranked)."""
        return self.analysis.merged_flagged.get(key(s), histogram.EMPTY)

    def closed_trials(self) -> pd.DataFrame:
        """Every closed-loop trial, whatever its status."""
        t = self.trials
        return t[t["mode"].fillna("closed") == "closed"] if not t.empty else t

    def closed(self) -> list[ConfigSummary]:
        return [s for s in self.analysis.summaries if s.mode == "closed"]

    def open(self) -> list[ConfigSummary]:
        return [s for s in self.analysis.summaries if s.mode == "open"]


def design_styles(families: Mapping[str, str]) -> dict[str, Style]:
    """Colour, marker and line per design (server -> family), designs of a family in name
    order: the same styles wherever the same designs are drawn."""
    used: dict[str, int] = {}
    out: dict[str, Style] = {}
    for server in sorted(families):
        family = families[server]
        palette = _FAMILY_COLOURS.get(family, _OTHER_COLOURS)
        n = used.get(family, 0)
        used[family] = n + 1
        out[server] = Style(
            palette[n % len(palette)],
            _FAMILY_MARKER.get(family, "^"),
            _FAMILY_LINE.get(family, ":"),
            family,
        )
    return out


def key(s: ConfigSummary) -> tuple[str, int, str]:
    return (s.server, s.server_cores, s.label)


# ---------------------------------------------------------------------------------------------
# Drawing helpers


def _png(fig: Figure) -> tuple[str, int, int]:
    declutter(fig)
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
    """A drawn figure as a Chart (the figure is closed)."""
    image, width, height = _png(fig)
    return Chart(id_, title, alt, caption, image, None, width, height)


def _missing(id_: str, title: str, why: str) -> Chart:
    return Chart(id_, title, f"{title}: not drawn", "", None, why)


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


# ---------------------------------------------------------------------------------------------
# Text that never overlaps


def declutter(fig: Figure, *, step_pt: float = 2.0, max_shift_pt: float = 200.0) -> None:
    """Move annotations (labels at points) apart until no two overlap: each one, in order of
    its anchor from the top of its axes down, is pushed below any label it would cover. Axis
    texts are laid out by matplotlib and are left alone."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for ax in fig.axes:
        labels = [t for t in ax.texts if isinstance(t, Annotation) and t.get_visible()]
        if len(labels) < 2:
            continue
        labels.sort(key=lambda t: -t.get_window_extent(renderer).y1)
        placed: list = []
        for label in labels:
            dx, dy = label.xyann
            moved = 0.0
            box = label.get_window_extent(renderer)
            while any(box.overlaps(other) for other in placed) and moved < max_shift_pt:
                moved += step_pt
                label.xyann = (dx, dy - moved)
                box = label.get_window_extent(renderer)
            placed.append(box)
