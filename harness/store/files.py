"""Results on disk (docs/data.md). Every finished trial is written before the next starts.

A run directory holds manifest.json, the parquet tables, and raw/ with each trial's
load-generator JSON and server output, so nothing measured exists only in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.store.rows import trial_rows
from harness.store.schema import TABLES


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    _write_atomic(path, lambda p: pq.write_table(table, p))


@dataclass
class RunStore:
    """Accumulates rows and rewrites each table atomically after every trial (runs are hundreds
    of trials at most, so a rewrite costs milliseconds and a crash never leaves a torn file)."""

    directory: Path

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "raw").mkdir(exist_ok=True)
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.flush()

    @classmethod
    def reopen(cls, directory: Path) -> RunStore:
        """Continue a run: keep the rows already on disk (for --resume)."""
        store = cls.__new__(cls)
        store.directory = directory
        (directory / "raw").mkdir(exist_ok=True)
        store.rows = {}
        for name, schema in TABLES.items():
            path = directory / f"{name}.parquet"
            store.rows[name] = pq.read_table(path).to_pylist() if path.exists() else []
            # Tables written by an older layout gain the new columns as nulls.
            store.rows[name] = [{k: r.get(k) for k in schema.names} for r in store.rows[name]]
        return store

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.rows[table].extend(rows)

    def drop_trial(self, trial_id: str) -> None:
        for name in self.rows:
            self.rows[name] = [r for r in self.rows[name] if r["trial_id"] != trial_id]

    def record(self, run_id: str, result: Any) -> None:
        """Store one finished trial (a run.trial.TrialResult) on disk before the next starts;
        a resumed trial replaces its old rows."""
        self.drop_trial(result.spec.trial_id)
        for table, rows in trial_rows(run_id, result).items():
            self.add(table, rows)
        self.flush()

    def trial_counts(self) -> tuple[int, int]:
        """(trials stored, of which failed)."""
        rows = self.rows["trials"]
        return len(rows), sum(r["status"] != "ok" for r in rows)

    def flush(self) -> None:
        for name, schema in TABLES.items():
            write_table(self.directory / f"{name}.parquet", self.rows[name], schema)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json(self.directory / "manifest.json", manifest)


@dataclass(frozen=True)
class RunData:
    directory: Path
    manifest: dict[str, Any]
    trials: pd.DataFrame
    latency: pd.DataFrame
    timeseries: pd.DataFrame
    workers: pd.DataFrame
    threads: pd.DataFrame


_REPEATED = {"latency": ["trial_id", "kind", "client_host"]}


def load_run_manifest(directory: Path) -> dict[str, Any]:
    """A run's manifest.json, or one line saying this is not a results directory."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise HarnessError(
            f"{directory} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/"
        )
    return json.loads(manifest_path.read_text())


def resolve_run_dir(path: Path, side: str) -> tuple[Path, str | None]:
    """A run directory, or the newest run (run ids sort by time) under a results root.

    Returns the directory and a note saying which run was picked, if one was.
    """
    if not path.exists():
        raise HarnessError(
            f"{side} {path} does not exist; pass a results directory such as results/<run-id>/"
        )
    if not path.is_dir():
        raise HarnessError(
            f"{side} {path} is not a directory; pass a results directory such as results/<run-id>/"
        )
    if (path / "manifest.json").is_file():
        return path, None
    runs = sorted(p.parent for p in path.glob("*/manifest.json"))
    if not runs:
        raise HarnessError(
            f"{side} {path} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/ written by `harness run`"
        )
    note = f"{side}: {path} holds {len(runs)} run(s); using the newest, {runs[-1].name}"
    return runs[-1], note


def load_run(directory: Path) -> RunData:
    """Read a run back; what `harness report` and users (pandas) do."""
    manifest = load_run_manifest(directory)
    frames = {}
    for name, schema in TABLES.items():
        path = directory / f"{name}.parquet"
        # The latency table repeats each trial id on every bucket row (tens of millions of rows
        # in a long run): read the repeated strings as categories, not one string per row.
        repeated = _REPEATED.get(name, [])
        table = (
            pq.read_table(path, read_dictionary=repeated) if path.exists() else schema.empty_table()
        )
        for field in schema:  # older files: missing columns appear as nulls
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(len(table), field.type))
        # split_blocks: each column its own block, so millions of rows are not copied into one.
        frames[name] = table.select(schema.names).to_pandas(split_blocks=True)
    return RunData(directory=directory, manifest=manifest, **frames)
