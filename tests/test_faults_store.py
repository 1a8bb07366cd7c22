"""The store's side of issue 12 without processes: records in raw/ rebuild the very tables
RunStore wrote (a resumed trial's newer record winning, in the same order), a failed write
names the trials only in raw/, and the largest seed is stored."""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace

import pytest
from test_store import COUNTERS, LOADGEN, spec

from harness.errors import StoreError
from harness.run.trial import TrialResult
from harness.store import RunStore, files, load_run
from harness.store.repair import repair_run, same_tables


def _loadgen_file(store: RunStore, trial_id: str) -> None:
    (store.raw / f"{trial_id}.loadgen.json").write_text(json.dumps(LOADGEN))


def _run(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write_manifest({"run_id": "r1", "plan": {"config": {}, "trials": []}})
    a, b = spec(0), replace(spec(1), seed=2**64 - 1)
    _loadgen_file(store, a.trial_id)
    ok = TrialResult(a, "ok", "", "t0", "t1", loadgen=LOADGEN, counters=COUNTERS,
                     cpu_busy={1: (0.5, 2.0)}, port=4242, port_attempts=2)  # fmt: skip
    store.record("r1", ok)
    store.record("r1", TrialResult(b, "failed", "interrupted by the user", "t2", "t3"))
    store.record("r1", TrialResult(b, "ok", "", "t4", "t5", loadgen=LOADGEN))  # resumed
    return store


def test_raw_records_rebuild_the_same_tables(tmp_path):
    store = _run(tmp_path)
    run = store.directory
    trials = load_run(run).trials
    assert list(trials["trial_id"]) == [spec(0).trial_id, spec(1).trial_id]
    assert trials["seed"].iloc[1] == 2**64 - 1 and trials["port_attempts"].iloc[0] == 2
    original = tmp_path / "original"
    shutil.copytree(run, original)
    for name in ("trials", "latency", "threads"):
        (run / f"{name}.parquet").unlink()
    report = repair_run(run)
    assert report.recovered == 2 and report.trials == 2
    assert same_tables(original, run)
    assert not repair_run(run).changed


def test_a_refused_write_names_the_trials_only_in_raw(tmp_path, monkeypatch):
    store = _run(tmp_path)

    def refuse(path, rows, schema):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_table", refuse)
    with pytest.raises(StoreError) as caught:
        store.record("r1", TrialResult(spec(2), "ok", "", "t6", "t7", loadgen=LOADGEN))
    message = str(caught.value)
    assert caught.value.raw_only == (spec(2).trial_id,)
    assert f"trial(s) {spec(2).trial_id} exist only as raw files" in message
    assert "No space left on device" in message and "harness repair" in message
    assert store.trial_counts() == (2, 0)  # what the tables on disk hold
    monkeypatch.undo()
    report = repair_run(store.directory)
    assert report.recovered == 1 and report.trials == 3


def test_repair_without_records_keeps_what_it_replaces(tmp_path):
    store = _run(tmp_path)
    run = store.directory
    for record in run.glob("raw/*.trial.json"):
        record.unlink()  # a run stored before records existed
    (run / "trials.parquet").write_bytes(b"junk")
    report = repair_run(run)
    assert report.damaged_tables == ["trials.parquet"] and report.trials == 0
    assert report.lost == sorted([spec(0).trial_id, spec(1).trial_id])
    assert (run / "trials.parquet.before-repair").read_bytes() == b"junk"
    assert (run / "latency.parquet.before-repair").is_file()
    assert any("lost and run again with --resume" in line for line in report.lines())
