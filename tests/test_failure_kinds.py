"""A failed trial carries what kind of failure it was as data (`failure`, run.trial.FailureKind),
set where the run found it, stored, and grouped by the report without reading its reason's
text; a trial stored before kinds were recorded is shown by its reason as written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import BIN_DIR
from fake_run import plan
from helpers import design_entry, registry_with

from harness.analysis.trial_figures import FailureCount, failure_counts
from harness.plan.designs import load_registry
from harness.report.flag_words import FAILURE_WORDS, failure_words
from harness.run import trial
from harness.run.trial import TrialResult
from harness.store.rows import trial_rows


def _trials(*rows: tuple[str, str | None, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"status": s, "failure": f, "reason": r} for s, f, r in rows],
    )


def test_failures_group_by_kind_and_older_ones_by_their_reason() -> None:
    trials = _trials(
        ("failed", "server_start", "server exited with code 132 before it was ready: x"),
        ("failed", "server_start", "server could not start: [Errno 8] Exec format error"),
        ("failed", None, "server exited with code 1 before it was ready: y"),
        ("failed", "no_requests", "no request succeeded (errors: connect=64)"),
        ("ok", None, ""),
    )
    counts = failure_counts(trials)
    assert counts[0] == FailureCount("server_start", None, 2)
    assert set(counts[1:]) == {
        FailureCount(None, "server exited with code 1 before it was ready: y", 1),
        FailureCount("no_requests", None, 1),
    }
    words = [failure_words(c.kind, c.reason) for c in counts]
    assert words[0] == "the server did not start"
    assert "server exited with code 1 before it was ready: y" in words  # as written


def test_every_kind_has_words() -> None:
    assert set(FAILURE_WORDS) == set(trial.FailureKind.__args__)


def test_a_server_that_exits_before_ready_is_a_server_start_failure(tmp_path: Path) -> None:
    """A real trial of a made-up design that exits at once: the kind is set by the run and
    stored beside the reason."""
    designs = load_registry(registry_with(tmp_path, design_entry("exits-at-once", "exit 3")))
    spec = plan(designs=("tokio-ws",), fractions=()).trials[0]
    raw = tmp_path / "raw"
    raw.mkdir()
    result = trial.run_trial(spec, designs["exits-at-once"], BIN_DIR, raw)
    assert (result.status, result.failure) == ("failed", "server_start"), result.reason
    row = trial_rows("run", result)["trials"][0]
    assert (row["failure"], row["reason"]) == ("server_start", result.reason)


def test_an_older_record_has_no_kind() -> None:
    spec = plan(designs=("tokio-ws",), fractions=()).trials[0]
    old = TrialResult(spec, "failed", "lost", "t0", "t1")
    assert trial_rows("run", old)["trials"][0]["failure"] is None
