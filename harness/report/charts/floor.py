"""The idle network round trip between client and server hosts, drawn as the floor of every
latency chart of a run across hosts (docs/multi-host.md): no latency can go below it."""

from __future__ import annotations

from typing import Any

from harness.analysis import trial_figures
from harness.report.charts.base import Data
from harness.report.format import fmt_us


def idle_floor_us(data: Data) -> float | None:
    """The run's idle round trip between hosts (analysis); None on one machine."""
    return trial_figures.idle_floor_us(data.analysis.manifest)


def draw_floor(ax: Any, floor_us: float | None) -> None:
    if floor_us is not None:
        ax.axhline(floor_us, color="#888888", linestyle="--", linewidth=0.9, zorder=1)


def floor_caption(floor_us: float | None) -> str:
    if floor_us is None:
        return ""
    return (
        f" The grey dashed line is the idle network round trip between the client hosts and the "
        f"server host (ping, minimum: {fmt_us(floor_us)} µs): the floor under every latency."
    )
