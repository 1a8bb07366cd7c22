"""Chart text never overlaps, measured with matplotlib's own renderer on a synthetic run where
two designs are flagged at the same core count (their labels used to print on top of each
other)."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from harness.analysis.analyse import analyse
from harness.report.charts import MAKERS, base
from harness.report.charts.base import Data
from harness.report.charts.throughput import throughput_cores
from harness.store import load_run


@pytest.fixture(scope="module")
def run(fake_run):
    """The synthetic run with a second design client-bound beside epoll-tpc's flagged trial:
    tokio-tpc at 2 cores, same repetition, so both are named at the same core count."""
    run = load_run(fake_run.directory)
    t = run.trials
    second = t.trial_id.str.contains("-tokio-tpc-echo-k2-") & t.trial_id.str.endswith("closed-r2")
    assert second.sum() == 1
    t.loc[second, "client_bound"] = True
    busy = {"flag": "client_bound", "kind": "busy", "thread": 0, "value": 0.97, "limit": 0.9}
    (i,) = t.index[second]
    t.at[i, "flag_causes"] = [*t.at[i, "flag_causes"], busy]
    return run


def figures(monkeypatch, make, data: Data) -> list[Figure]:
    """The figures a chart function draws, after the report's own clean-up, before PNG."""
    drawn: list[Figure] = []
    real = base._png

    def keep(fig: Figure) -> tuple[str, int, int]:
        base.declutter(fig)
        drawn.append(fig)
        return "data:image/png;base64,", 0, 0

    monkeypatch.setattr(base, "_png", keep)
    make(data)
    monkeypatch.setattr(base, "_png", real)
    return drawn


def overlaps(fig: Figure) -> list[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_visible() and t.get_text()]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
        out += [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]
    return out


def test_flag_labels_of_two_designs_at_one_core_count_do_not_overlap(monkeypatch, run):
    data = Data(analyse(run))
    [fig] = figures(monkeypatch, throughput_cores, data)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]
    assert "client-bound (epoll-tpc)" in labels and "client-bound (tokio-tpc)" in labels
    assert overlaps(fig) == []


def test_without_the_clean_up_they_would_overlap(monkeypatch, run):
    """The case above is the one that overlapped: the test would catch a regression."""
    monkeypatch.setattr(base, "declutter", lambda fig: None)
    data = Data(analyse(run))
    [fig] = figures(monkeypatch, throughput_cores, data)
    assert overlaps(fig)


def test_no_chart_has_overlapping_labels(monkeypatch, run):
    data = Data(analyse(run))
    for make in MAKERS:
        for fig in figures(monkeypatch, make, data):
            assert overlaps(fig) == [], make.__name__


def test_charts_drawn_by_forked_workers_are_the_charts_drawn_here(run) -> None:
    """A large run's charts are drawn on two CPUs (report/chart_pool.py): the same images, ids
    and captions, in the report's order, as drawn one after another."""
    from harness.report.chart_pool import draw_charts
    from harness.report.charts import all_charts

    analysis = analyse(run)
    serial = all_charts(analysis)
    forked = draw_charts(analysis, parallel=True)
    assert list(forked) == list(serial)
    assert forked == serial
