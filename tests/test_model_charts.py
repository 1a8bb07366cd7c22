"""The model's charts in the report's "Model (not a measurement)" section: drawn from a stored
run's model.parquet, labelled model, with the run's measured open-loop points overlaid when it
has them, and their labels never overlapping."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MODEL_SMALL
from fake_run import RUN_ID, build_run
from helpers import run_harness
from matplotlib.text import Annotation
from test_report import section, text

from harness.analysis.analyse import analyse
from harness.report.charts.base import STYLE, declutter
from harness.report.charts.model import _error_label, design_styles, load_figure
from harness.report.charts.model_ratios import _ratio_ticks
from harness.report.html import render
from harness.report.model_section import METADATA_KEY
from harness.store import load_run


def _modelled(directory: Path, **kwargs: object) -> Path:
    run_dir = build_run(directory / RUN_ID, **kwargs).directory  # type: ignore[arg-type]
    done = run_harness("model", str(run_dir), *MODEL_SMALL, timeout=300)
    assert done.returncode == 0, done.stderr
    return run_dir


@pytest.fixture(scope="module")
def swept(modelled_run) -> tuple[Path, str]:
    """A rate-sweep run (open-loop trials at 1 and 2 cores) and its report."""
    run_dir, done = modelled_run
    assert done.returncode == 0, done.stderr
    return run_dir, render(analyse(load_run(run_dir)))


@pytest.fixture(scope="module")
def closed(tmp_path_factory) -> tuple[Path, str]:
    """A closed-loop-only run: the model has costs to work from but nothing to compare with."""
    run_dir = _modelled(tmp_path_factory.mktemp("closed"), fractions=())
    return run_dir, render(analyse(load_run(run_dir)))


def _figures(page: str) -> dict[str, str]:
    model = section(page, "model")
    return dict(re.findall(r'<figure class="chart" id="([^"]+)">(.*?)</figure>', model, re.S))


def _extra(run_dir: Path) -> dict:
    return json.loads(pq.read_schema(run_dir / "model.parquet").metadata[METADATA_KEY])


def test_model_section_has_the_charts(swept) -> None:
    run_dir, page = swept
    figures = _figures(page)
    pairs = _extra(run_dir)["ratios"]
    load = [f for f in figures if f.startswith("chart-model-load-")]
    # One load chart per modelled pair (one workload each here), and the ratio chart.
    assert "chart-model-ratios" in figures
    assert len(load) == len({(r["thread_per_core"], r["work_stealing"]) for r in pairs}) == 2
    for html in figures.values():
        assert '<img class="chart-img" src="data:image/png;base64,' in html
        assert "<figcaption>Model, not a measurement" in html
        assert re.search(r"<h3>Model: ", html)
        assert re.search(r'alt="Model chart: ', html)
    # Before the table of errors they are drawn with, inside the model section.
    model = section(page, "model")
    assert model.index('id="chart-model-ratios"') < model.index('id="model-errors"')


def test_measured_points_are_overlaid_with_the_model_error(swept) -> None:
    run_dir, page = swept
    figures = _figures(page)
    comparison = pd.DataFrame(_extra(run_dir)["comparison"])
    assert len(comparison)
    for (tpc, ws), points in comparison.groupby(["thread_per_core", "work_stealing"]):
        html = figures[f"chart-model-load-{tpc}-{ws}-none-64-none-none"]
        shown = text(html)
        assert f"Diamonds: the {len(points)} measured open-loop trials" in shown
        assert "model's error there (model / measured - 1)" in shown
        assert f"with {len(points)} measured points overlaid" in html


def test_charts_without_measured_points_say_so(closed) -> None:
    run_dir, page = closed
    assert _extra(run_dir)["comparison"] == []
    figures = _figures(page)
    load = [html for f, html in figures.items() if f.startswith("chart-model-load-")]
    assert load and "chart-model-ratios" in figures
    for html in load:
        assert "No measured open-loop trial at these N" in text(html)
        assert "measured points overlaid" not in html


def _load_rows(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    predictions = pd.read_parquet(run_dir / "model.parquet")
    rows = predictions[predictions["thread_per_core"] == "tokio-tpc"]
    comparison = pd.DataFrame(_extra(run_dir)["comparison"])
    measured = comparison[comparison["thread_per_core"] == "tokio-tpc"]
    return rows, measured


@contextlib.contextmanager
def _tokio_tpc_load_figure(run_dir: Path) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, Any]]:
    """tokio-tpc's load figure of the modelled run: (model rows, measured points, (figure,
    what was drawn)); the figure is closed afterwards."""
    rows, measured = _load_rows(run_dir)
    styles = design_styles(dict(zip(rows["design"], rows["family"], strict=True)))
    with plt.rc_context(STYLE):
        drawing = load_figure(rows, measured, styles)
    try:
        yield rows, measured, drawing
    finally:
        plt.close(drawing[0])


def test_load_figure_is_labelled_model_and_draws_every_measured_point(swept) -> None:
    run_dir, _ = swept
    with _tokio_tpc_load_figure(run_dir) as (rows, measured, (fig, drawn)):
        assert drawn["measured"] == len(measured) > 0
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        assert titles and all("model" in t for t in titles)
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        curves = [label for label in labels if label.split(" ")[0] in set(rows["design"])]
        assert len(curves) == 4 and all(label.endswith("(model)") for label in curves)
        assert any(label.startswith("model interval (") for label in labels)
        assert any(label.startswith("measured p99") for label in labels)
        # Every measured point's error is written on the chart (one label per cluster).
        notes = [t.get_text() for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]
        error = re.compile(r"[+-]\d+(\.\.[+-]\d+)?%(, \d+ unstable)?|model unstable")
        assert notes and all(error.fullmatch(n) for n in notes)


def test_load_figure_labels_never_overlap(swept) -> None:
    run_dir, _ = swept
    with _tokio_tpc_load_figure(run_dir) as (_, _, (fig, _)):
        fig.canvas.draw()
        declutter(fig)  # what the report's rendering does before saving
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in fig.axes:
            boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible()]
            boxes.append(ax.title.get_window_extent(renderer))
            for i, a in enumerate(boxes):
                assert not any(a.overlaps(b) for b in boxes[i + 1 :])


def test_error_labels_and_ratio_ticks() -> None:
    assert _error_label([-0.92]) == "-92%"
    assert _error_label([-0.95, -0.9]) == "-95..-90%"
    assert _error_label([float("inf")]) == "model unstable"
    assert _error_label([-0.5, float("inf")]) == "-50%, 1 unstable"
    ticks = _ratio_ticks(0.05, 12.0)
    assert 1.0 in ticks and 0.1 in ticks and 10.0 in ticks
    gap = (12.0 / 0.05) ** (1 / 9) - 1e-9
    assert all(b / a >= gap for a, b in itertools.pairwise(ticks))
