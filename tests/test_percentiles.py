"""One percentile throughout (issue 14): the report, the exports and compare show the same p99
for the same trials, and it is histogram.percentile_of of their merged histograms (nearest
rank, the bucket's highest equivalent value; docs/loadgen.md, "Percentiles")."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from harness.analysis import histogram
from harness.analysis.analyse import Analysis, ConfigSummary, analyse
from harness.cli import compare
from harness.report import exports, html
from harness.report.format import fmt_us
from harness.store import RunData, load_run


@pytest.fixture(scope="module")
def stored(fake_run) -> tuple[RunData, Analysis]:
    run = load_run(fake_run.directory)
    return run, analyse(run)


def _expected_p99(run: RunData, analysis: Analysis, s: ConfigSummary) -> float | None:
    """The p99 of the configuration's ranked trials, merged here the slow way (a dict of
    buckets per trial, histogram.merge) from the stored latency table."""
    trials = analysis.trials_of(s)
    ids = {str(t) for t in trials.loc[trials["ranked"], "trial_id"]}
    lat = run.latency
    lat = lat[(lat["kind"] == "primary") & lat["trial_id"].astype(str).isin(ids)]
    per_trial = [
        list(zip(g["lower_ns"], g["upper_ns"], g["count"], strict=True))
        for _, g in lat.groupby("trial_id", observed=True)
    ]
    return histogram.percentile_us(histogram.merge(per_trial), 99)


def test_report_exports_and_compare_show_one_p99(
    stored: tuple[RunData, Analysis], tmp_path: Path
) -> None:
    run, analysis = stored
    expected = {
        (s.server, s.server_cores, s.label): _expected_p99(run, analysis, s)
        for s in analysis.summaries
    }
    assert any(v is not None for v in expected.values())

    # the analysis every output formats
    for s in analysis.summaries:
        assert s.p99_us == expected[(s.server, s.server_cores, s.label)]

    # the exports: summary.csv carries the value, summary.md prints it as the report does
    exports.write_exports(analysis, tmp_path / "exports")
    with (tmp_path / "exports" / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(expected)
    markdown = (tmp_path / "exports" / "summary.md").read_text()
    for row in rows:
        want = expected[(row["server"], int(row["server_cores"]), row["workload"])]
        assert (float(row["p99_us"]) if row["p99_us"] else None) == want
        if want is not None:
            assert f"| {fmt_us(want)} |" in markdown

    # the HTML report prints each of them
    page = html.render(analysis)
    for want in expected.values():
        if want is not None:
            assert f">{fmt_us(want)}<" in page

    # compare (a run against itself): the merged p99 of each side is the same figure
    parser = compare.add_arguments(argparse.ArgumentParser())
    out = tmp_path / "compare.json"
    args = parser.parse_args([str(run.directory), str(run.directory), "--json", str(out)])
    compare.run(args, Console(file=io.StringIO(), width=200))
    configurations = json.loads(out.read_text())["configurations"]
    assert len(configurations) == len(expected)
    for c in configurations:
        want = expected[(c["server"], c["server_cores"], c["workload"])]
        assert c["a"]["p99_merged_us"] == c["b"]["p99_merged_us"] == want


def test_percentile_of_is_the_one_definition() -> None:
    # 1000 values 1..1000 us, one per bucket where buckets are 1 ns wide: nearest rank exactly
    hist = histogram.record(range(1, 1001))
    assert histogram.percentile_ns(hist, 99) == 990
    assert histogram.percentile_ns(hist, 99.9) == 999  # not 1000: the rank is exact
    merged = histogram.merge([hist, hist])
    lower, upper, counts = (list(c) for c in zip(*merged, strict=True))
    assert histogram.percentile_of(lower, upper, counts, 99) == 990  # type: ignore[arg-type]
    wide = [(2048, 2050, 3), (4096, 4100, 1)]  # [lower, upper): the highest equivalent value
    assert histogram.percentile_ns(wide, 50) == 2049
    assert histogram.percentile_ns(wide, 100) == 4099
    assert histogram.percentile_ns([], 99) is None
    with pytest.raises(ValueError):
        histogram.percentile_ns([], 0)
