"""Rebuild a run's tables (and a damaged manifest) from raw/: `harness repair DIR`, and the first
step of `harness run --resume DIR`.

Each trial's record in raw/ (store/raw.py) gives exactly the rows `RunStore.record` wrote for it
(`trial_rows` of the same TrialResult), in the same order. A table that is missing, damaged, or
lacks trials that raw/ holds is rewritten; trials with rows but no record (a run stored before
records existed) keep their rows while their table is readable.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import DamagedFileError, HarnessError, StoreError, os_error_text
from harness.store import raw as raw_records
from harness.store.files import read_manifest, read_table, write_json, write_table
from harness.store.rows import trial_rows
from harness.store.schema import TABLES

KEPT_SUFFIX = ".before-repair"  # a damaged table (or one that loses rows) is copied aside first


@dataclass
class Repair:
    directory: Path
    manifest_restored: bool = False
    rebuilt: list[str] = field(default_factory=list)  # tables rewritten
    damaged_tables: list[str] = field(default_factory=list)
    recovered: int = 0  # trials whose rows raw/ gave back to trials.parquet
    trials: int = 0  # trials in trials.parquet after the repair
    lost: list[str] = field(default_factory=list)  # trials with neither readable rows nor record
    damaged_records: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # replaced files that lost rows, kept aside

    @property
    def changed(self) -> bool:
        return self.manifest_restored or bool(self.rebuilt)

    def lines(self) -> list[str]:
        out = []
        if self.manifest_restored:
            out.append("manifest.json was damaged or stale: restored from raw/manifest.json")
        if self.damaged_tables:
            out.append(f"damaged: {', '.join(self.damaged_tables)}")
        if self.rebuilt:
            out.append(
                f"rebuilt {', '.join(self.rebuilt)} from raw/: {self.recovered} trial(s) "
                f"recovered, {self.trials} stored"
            )
        else:
            out.append(f"tables complete: {self.trials} trial(s) stored, nothing to rebuild")
        if self.kept:
            out.append(f"the replaced files are kept as {', '.join(self.kept)}")
        if self.damaged_records:
            out.append(
                "damaged raw records (those trials run again with --resume): "
                + ", ".join(self.damaged_records)
            )
        if self.lost:
            out.append(
                f"{len(self.lost)} trial(s) had rows only in a damaged table and no raw record; "
                "they are lost and run again with --resume"
            )
        return out


def _manifest(directory: Path, report: Repair) -> dict[str, Any]:
    path = directory / "manifest.json"
    copy = directory / "raw" / raw_records.MANIFEST_COPY
    if not path.is_file() and not copy.is_file():
        raise HarnessError(
            f"{directory} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/"
        )
    try:
        manifest = read_manifest(path, directory)
    except (DamagedFileError, FileNotFoundError) as first:
        try:
            manifest = read_manifest(copy, directory)
        except (DamagedFileError, FileNotFoundError):
            why = str(first).split(" is damaged ", 1)[-1].split("; rebuild", 1)[0]
            raise HarnessError(
                f"{path} is damaged {why} and raw/ holds no readable copy: the run's plan "
                "cannot be rebuilt; start a new run (its raw/ files stay readable)"
            ) from None
        write_json(path, manifest)
        report.manifest_restored = True
        return manifest
    # The copy is written first: a newer one means the last write of manifest.json failed.
    try:
        newer = copy.stat().st_mtime_ns > path.stat().st_mtime_ns
        latest = read_manifest(copy, directory) if newer else manifest
    except (OSError, DamagedFileError):
        latest = manifest
    if latest != manifest and latest.get("run_id") == manifest.get("run_id"):
        write_json(path, latest)
        report.manifest_restored = True
    return latest


def _old_rows(directory: Path, report: Repair) -> dict[str, list[dict[str, Any]] | None]:
    """Each table's rows as stored, None when it is missing or damaged."""
    old: dict[str, list[dict[str, Any]] | None] = {}
    for name in TABLES:
        path = directory / f"{name}.parquet"
        if not path.exists():
            old[name] = None
            continue
        try:
            old[name] = read_table(path, directory).to_pylist()
        except DamagedFileError:
            report.damaged_tables.append(path.name)
            old[name] = None
    return old


def repair_run(directory: Path) -> Repair:
    """Make the run's manifest and tables whole again from raw/; says what it did."""
    report = Repair(directory)
    try:
        manifest = _manifest(directory, report)
        old = _old_rows(directory, report)
        records, report.damaged_records = raw_records.read_records(directory / "raw")
        run_id = str(manifest.get("run_id", ""))
        newest: dict[str, Any] = {}
        for _, rec_run_id, result in records:  # seq order: a later record of a trial wins
            newest.pop(result.spec.trial_id, None)
            newest[result.spec.trial_id] = (rec_run_id or run_id, result)
        old_trials = old["trials"] or []
        stored = {r["trial_id"]: r for r in old_trials}
        # Trials without a record keep their place first, then the records in stored order.
        order = [r["trial_id"] for r in old_trials if r["trial_id"] not in newest]
        order += list(newest)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for trial_id in order:
            if trial_id in newest:
                for table, trows in trial_rows(*newest[trial_id]).items():
                    rows[table].extend(trows)
                continue
            for table in TABLES:
                rows[table].extend(r for r in old[table] or [] if r["trial_id"] == trial_id)
        key = ("status", "reason", "ended_at")
        stale = {  # stored rows older than the trial's newest record (a resumed trial)
            trial_id
            for trial_id, (_, result) in newest.items()
            if trial_id in stored
            and tuple(stored[trial_id][k] for k in key) != tuple(getattr(result, k) for k in key)
        }
        recovered: set[str] = set()
        for name, schema in TABLES.items():
            ids = {r["trial_id"] for r in rows[name]}
            before = None if old[name] is None else {r["trial_id"] for r in old[name]}
            if before is None or ids != before or stale:
                recovered |= (ids - (before or set())) & set(newest)
                path = directory / f"{name}.parquet"
                if path.exists() and (before is None or before - ids):  # never delete bytes
                    kept = path.with_name(path.name + KEPT_SUFFIX)
                    shutil.copy2(path, kept)
                    report.kept.append(kept.name)
                write_table(path, rows[name], schema)
                report.rebuilt.append(f"{name}.parquet")
        report.recovered = len(recovered | stale)
        if old["trials"] is None:  # rows elsewhere of trials raw/ cannot give back
            seen = {r["trial_id"] for t in TABLES if t != "trials" for r in old[t] or []}
            report.lost = sorted(seen - set(newest))
        report.trials = len(order)
        if report.changed:
            _note(directory, manifest, rows["trials"], report)
    except OSError as exc:
        raise StoreError(
            f"could not repair {directory}: {os_error_text(exc)}; free space or make the "
            "directory writable, then run `harness repair` again"
        ) from None
    return report


def _note(
    directory: Path, manifest: dict[str, Any], trials: list[dict[str, Any]], report: Repair
) -> None:
    """The manifest says what the tables now hold, and that they were repaired."""
    outcome = manifest.get("outcome")
    if not isinstance(outcome, dict):
        planned = len((manifest.get("plan") or {}).get("trials") or [])
        outcome = manifest["outcome"] = {
            "trials_planned": planned,
            "interrupted": False,
            "result": "incomplete: the run stopped before writing its outcome; "
            "tables repaired from raw/ (finish it with --resume)",
        }
    outcome["trials_stored"] = len(trials)
    outcome["trials_failed"] = sum(r["status"] != "ok" for r in trials)
    manifest.setdefault("repaired_at", []).append(datetime.now(UTC).isoformat(timespec="seconds"))
    write_json(directory / "raw" / raw_records.MANIFEST_COPY, manifest)
    write_json(directory / "manifest.json", manifest)


def same_tables(a: Path, b: Path) -> bool:
    """Two runs' tables hold the same rows (for tests and checks)."""
    for name in TABLES:
        ta, tb = (read_table(d / f"{name}.parquet", d) for d in (a, b))
        if not ta.equals(tb):
            return False
    return True
