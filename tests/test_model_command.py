"""`harness model` on a stored synthetic run: model.parquet beside the run, and the report's
"Model (not a measurement)" section read back from it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MODEL_SMALL
from helpers import run_harness
from test_report import section, text

from harness.analysis.analyse import analyse
from harness.report.html import render
from harness.report.model_section import METADATA_KEY
from harness.store import load_run


@pytest.fixture(scope="module")
def modelled(modelled_run) -> tuple[Path, subprocess.CompletedProcess[str]]:
    return modelled_run


def test_model_command_writes_model_parquet(modelled) -> None:
    run_dir, done = modelled
    assert done.returncode == 0, done.stderr
    predictions = pd.read_parquet(run_dir / "model.parquet")
    assert len(predictions) > 0
    assert set(predictions["source"]) == {"model"}
    assert set(predictions["cores"]) == {1, 2}
    assert set(predictions["customers"]) == {400}
    extra = json.loads(pq.read_schema(run_dir / "model.parquet").metadata[METADATA_KEY])
    assert extra["assumptions"] and extra["ratios"] and extra["comparison"]
    assert "Model (not a measurement)" in done.stdout
    assert "ratio" in done.stdout and "epoll-tpc" in done.stdout  # the ratio table
    assert not list(run_dir.glob("*.tmp"))


def test_report_shows_the_stored_model(modelled) -> None:
    run_dir, _ = modelled
    page = render(analyse(load_run(run_dir)))
    shown = text(section(page, "model"))
    assert "Model (not a measurement)" in shown
    assert "Arrivals are Poisson" in shown  # the assumptions, written out
    assert 'id="model-ratios"' in section(page, "model")
    errors = section(page, "model-errors")
    extra = json.loads(pq.read_schema(run_dir / "model.parquet").metadata[METADATA_KEY])
    assert errors.count("<tr>") == len(extra["comparison"]) + 1  # header + one per point


def test_report_without_model_has_no_model_section(fake_run) -> None:
    assert 'id="model"' not in render(analyse(load_run(fake_run.directory)))


def test_model_command_refuses_a_bad_directory(tmp_path: Path) -> None:
    done = run_harness("model", str(tmp_path / "nowhere"), *MODEL_SMALL, timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "trials.parquet" in done.stderr
