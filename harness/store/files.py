"""Results on disk (docs/data.md). Every finished trial is written before the next starts.

A run directory holds manifest.json, the parquet tables, and raw/ with each trial's
load-generator JSON, server output and its record (raw/<trial_id>.trial.json, store/raw.py),
so nothing measured exists only in memory. A trial's raw files are on disk (fsynced) before its
rows are written; every write is atomic (temp file, fsync, rename, fsync of the directory); a
write the system refuses raises StoreError naming the trials that exist only in raw/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.atomic import write_atomic
from harness.errors import DamagedFileError, HarnessError, StoreError, os_error_text
from harness.plan.numbers import check_stored_plan
from harness.store import raw as raw_records
from harness.store.latency_read import (
    LatencyChunk,
    UnreadableLatency,
    file_chunks,
    frame_chunks,
    read_latency,
)
from harness.store.rows import trial_rows
from harness.store.schema import TABLES

_write_atomic = write_atomic  # cli/model.py writes model.parquet through it


def write_json(path: Path, data: Any) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    _write_atomic(path, lambda p: pq.write_table(table, p))


def repair_hint(directory: Path) -> str:
    return f"`harness repair {directory}` (or `harness run --resume {directory}`)"


def damaged(path: Path, exc: BaseException, directory: Path) -> DamagedFileError:
    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DamagedFileError(
        f"{path} is damaged ({why}); rebuild it from raw/ with {repair_hint(directory)}"
    )


def read_table(path: Path, directory: Path, **kw: Any) -> pa.Table:
    """A stored table, or one line naming the damaged file and the repair."""
    try:
        return pq.read_table(path, **kw)
    except (PermissionError, FileNotFoundError):
        raise  # not damage: errors.one_line says what it is
    except (OSError, pa.ArrowException) as exc:
        raise damaged(path, exc, directory) from None


@dataclass
class RunStore:
    """Accumulates rows and rewrites each table atomically after every trial (runs are hundreds
    of trials at most, so a rewrite costs milliseconds and a crash never leaves a torn file).
    Each trial's record goes to raw/ first; `raw_only` holds the trials whose rows a failed
    write kept out of the tables."""

    directory: Path

    def __post_init__(self) -> None:
        self.raw_only: list[str] = []
        self.seq = 0
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.raw.mkdir(exist_ok=True)
        except OSError as exc:
            raise self._failed(exc) from None
        self.flush()

    @property
    def raw(self) -> Path:
        return self.directory / "raw"

    @classmethod
    def reopen(cls, directory: Path) -> RunStore:
        """Continue a run: keep the rows already on disk (for --resume; repair first)."""
        store = cls.__new__(cls)
        store.directory = directory
        store.raw_only = []
        try:
            store.raw.mkdir(exist_ok=True)
        except OSError as exc:
            raise store._failed(exc) from None
        store.seq = raw_records.next_seq(store.raw)
        store.rows = {}
        for name, schema in TABLES.items():
            path = directory / f"{name}.parquet"
            rows = read_table(path, directory).to_pylist() if path.exists() else []
            # Tables written by an older layout gain the new columns as nulls.
            store.rows[name] = [{k: r.get(k) for k in schema.names} for r in rows]
        return store

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.rows[table].extend(rows)

    def drop_trial(self, trial_id: str) -> None:
        for name in self.rows:
            self.rows[name] = [r for r in self.rows[name] if r["trial_id"] != trial_id]

    def record(self, run_id: str, result: Any) -> None:
        """Store one finished trial (a run.trial.TrialResult) on disk before the next starts:
        its record in raw/ first, then its rows; a resumed trial replaces its old rows."""
        trial_id = result.spec.trial_id
        try:
            raw_records.write_record(
                self.raw, raw_records.to_record(run_id, result, self.seq, self.raw)
            )
        except OSError as exc:
            raise self._failed(exc, lost=trial_id) from None
        self.seq += 1
        self.raw_only.append(trial_id)
        self.drop_trial(trial_id)
        for table, rows in trial_rows(run_id, result).items():
            self.add(table, rows)
        self.flush()

    def trial_counts(self) -> tuple[int, int]:
        """(trials stored in the tables, of which failed)."""
        rows = [r for r in self.rows["trials"] if r["trial_id"] not in self.raw_only]
        return len(rows), sum(r["status"] != "ok" for r in rows)

    def flush(self) -> None:
        try:
            for name, schema in TABLES.items():
                write_table(self.directory / f"{name}.parquet", self.rows[name], schema)
        except OSError as exc:
            raise self._failed(exc) from None
        self.raw_only = []

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """manifest.json, and its copy raw/manifest.json (`harness repair` restores a damaged
        manifest from it)."""
        try:
            write_json(self.raw / raw_records.MANIFEST_COPY, manifest)
            write_json(self.directory / "manifest.json", manifest)
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError, lost: str | None = None) -> StoreError:
        """What could not be stored, what exists only in raw/, and how to get it back."""
        parts = [f"could not store results in {self.directory}: {os_error_text(exc)}"]
        if self.raw_only:
            parts.append(
                f"trial(s) {', '.join(self.raw_only)} exist only as raw files in {self.raw}/"
            )
        if lost:
            parts.append(
                f"trial {lost} could not be recorded (its raw output may be incomplete) "
                "and will run again with --resume"
            )
        fix = (
            f"free space or make the directory writable, then rebuild the tables with "
            f"{repair_hint(self.directory)}"
        )
        return StoreError("; ".join([*parts, fix]), raw_only=tuple(self.raw_only))


@dataclass(frozen=True)
class RunData:
    """A stored run read back. `latency` (tens of millions of bucket rows in a long run) is read
    on first use; the analysis streams it instead (`latency_chunks`), never holding it whole."""

    directory: Path
    manifest: dict[str, Any]
    trials: pd.DataFrame
    timeseries: pd.DataFrame
    workers: pd.DataFrame
    threads: pd.DataFrame
    latency_file: Path | None = None  # None: no latency table (or given as a frame)
    _loaded: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @property
    def latency(self) -> pd.DataFrame:
        if "latency" not in self._loaded:
            self._loaded["latency"] = _read_latency_frame(self.latency_file)
        return self._loaded["latency"]

    def latency_chunks(self) -> Iterator[LatencyChunk]:
        """The latency rows in chunks of about a million (what the analysis merges): streamed
        from the file unless the frame was read already."""
        if "latency" in self._loaded or self.latency_file is None:
            yield from frame_chunks(self.latency)
            return
        try:
            chunks = file_chunks(self.latency_file, TABLES["latency"])
            first = next(chunks, None)
        except UnreadableLatency:
            yield from frame_chunks(self.latency)
            return
        except (OSError, pa.ArrowException) as exc:
            raise _damaged(self.latency_file, exc) from None
        if first is None:
            return
        yield first
        try:
            yield from chunks
        except (OSError, pa.ArrowException, UnreadableLatency) as exc:
            raise _damaged(self.latency_file, exc) from None


def _damaged(path: Path, exc: BaseException) -> DamagedFileError:
    return damaged(path, exc, path.parent)


def _read_table(path: Path | None, name: str) -> pd.DataFrame:
    """A stored table as a frame; a missing file is an empty table, missing columns nulls."""
    schema = TABLES[name]
    # The latency table repeats each trial id on every bucket row (tens of millions of rows
    # in a long run): read the repeated strings as categories, not one string per row.
    repeated = _REPEATED.get(name, [])
    table = (
        read_table(path, path.parent, read_dictionary=repeated)
        if path is not None and path.exists()
        else schema.empty_table()
    )
    for column in schema:  # older files: missing columns appear as nulls
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(len(table), column.type))
    # split_blocks: each column its own block, so millions of rows are not copied into one.
    return table.select(schema.names).to_pandas(split_blocks=True)


def _read_latency_frame(path: Path | None) -> pd.DataFrame:
    if path is not None and path.exists():
        try:
            return read_latency(path, TABLES["latency"])
        except UnreadableLatency:
            pass  # an older or unusual file: the general way
    return _read_table(path, "latency")


_REPEATED = {"latency": ["trial_id", "kind", "client_host"]}


def read_manifest(path: Path, directory: Path) -> dict[str, Any]:
    """A manifest file whose plan's numbers are real, or one line naming it and the repair."""
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, or bytes that are not text
        raise damaged(path, exc, directory) from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise damaged(path, ValueError("not a run manifest: no run_id"), directory)
    try:
        check_stored_plan(manifest.get("plan"), "")
    except HarnessError as exc:
        raise damaged(path, exc, directory) from None
    return manifest


def load_run_manifest(directory: Path) -> dict[str, Any]:
    """A run's manifest.json, or one line saying this is not a results directory (or that the
    manifest is damaged)."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise HarnessError(
            f"{directory} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/"
        )
    return read_manifest(manifest_path, directory)


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
    """Read a run back; what `harness report` and users (pandas) do. The latency table's
    footer is read here (a damaged file is named now); its rows when first used."""
    manifest = load_run_manifest(directory)
    frames = {}
    for name in TABLES:
        path = directory / f"{name}.parquet"
        if name == "trials" and not path.exists() and any(directory.glob("raw/*.trial.json")):
            raise damaged(path, FileNotFoundError("missing"), directory)
        if name != "latency":
            frames[name] = _read_table(path, name)
    latency = directory / "latency.parquet"
    run = RunData(
        directory=directory,
        manifest=manifest,
        latency_file=latency if latency.exists() else None,
        **frames,
    )
    if latency.exists():
        try:
            pq.ParquetFile(latency)
        except (OSError, pa.ArrowException):
            _read_table(latency, "latency")  # names the damage the general way
            raise
    return run
