"""Single trials drawn over a chart's medians, across its panels: flagged trials as hollow
markers (named when few), ranked trials with a server flag as crosses; the legend entries and
caption sentences that say so (charts/flagged.py's words)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.analysis.flagged import short_reason
from harness.report.charts.base import Style, _hollow, _legend
from harness.report.charts.flagged import (
    flag_handle,
    flagged_note,
    mark_server_flagged,
    server_flag_handle,
    server_flagged_note,
)


@dataclass
class SingleTrials:
    """The single trials a figure has drawn so far (`empty`: the trials' columns, no row)."""

    empty: pd.DataFrame
    flagged: list[pd.DataFrame] = field(default_factory=list)
    crossed: list[pd.DataFrame] = field(default_factory=list)

    def cross(
        self, ax: Axes, rows: pd.DataFrame, x: str, y: str, colour: str, xs: list | None = None
    ) -> None:
        """Ranked trials among rows with a server flag: a cross over their point."""
        self.crossed.append(mark_server_flagged(ax, rows, x, y, colour, xs=xs))

    def hollow(
        self,
        ax: Axes,
        rows: pd.DataFrame,
        xs: Sequence[float],
        y: str,
        st: Style,
        label: str,
        size: float = 46,
    ) -> None:
        """Flagged trials (rows) as hollow markers at xs and their column y."""
        self.flagged.append(rows)
        _hollow(ax, list(xs), rows[y], st, label, size)

    @staticmethod
    def name(
        ax: Axes, rows: pd.DataFrame, xs: Iterable[float], y: str, colour: str, **where: Any
    ) -> None:
        """Each flagged trial of rows named by its flags and design beside its point."""
        for x, row in zip(xs, rows.to_dict("records"), strict=True):
            ax.annotate(
                f"{short_reason(row)} ({row['server']})",
                (x, row[y]),
                textcoords="offset points",
                fontsize=7.5,
                color=colour,
                **where,
            )

    @property
    def flagged_rows(self) -> pd.DataFrame:
        return pd.concat(self.flagged) if self.flagged else self.empty

    @property
    def crossed_rows(self) -> pd.DataFrame:
        return pd.concat(self.crossed) if self.crossed else self.empty

    def legend(self, fig: Figure, axes: Iterable[Axes], extra: list[Line2D] | None = None) -> None:
        """The figure's legend, with an entry for the flagged and the crossed trials drawn."""
        extra = list(extra or [])
        if self.flagged:
            extra.append(flag_handle(self.flagged_rows))
        if not self.crossed_rows.empty:
            extra.append(server_flag_handle(self.crossed_rows))
        _legend(fig, axes, extra or None)

    def caption(self, hollow_subject: str) -> str:
        """The caption's sentences about the flagged and the crossed trials drawn."""
        return flagged_note(self.flagged_rows, hollow_subject) + server_flagged_note(
            self.crossed_rows
        )
