"""Stage 4, store: the results directory (docs/data.md): schema, rows of a trial, the manifest,
atomic rewrites, and reading a run back (`harness.store.load_run(Path(run))`)."""

from harness.store.files import (
    RunData,
    RunStore,
    load_run,
    load_run_manifest,
    resolve_run_dir,
    write_json,
    write_table,
)
from harness.store.rows import trial_rows
from harness.store.schema import SCHEMA_VERSION, TABLES

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "RunData",
    "RunStore",
    "load_run",
    "load_run_manifest",
    "resolve_run_dir",
    "trial_rows",
    "write_json",
    "write_table",
]
