"""Stage 3: results on disk (docs/data.md). Every finished trial is written before the next starts.

A run directory holds manifest.json, the four parquet tables, and raw/ with each trial's
load-generator JSON and server output, so nothing measured exists only in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1

TRIALS = pa.schema(
    [
        ("run_id", pa.string()),
        ("trial_id", pa.string()),
        ("trial_index", pa.int32()),
        ("server", pa.string()),
        ("design_family", pa.string()),
        ("io_model", pa.string()),
        ("protocol", pa.string()),
        ("server_cores", pa.int32()),
        ("server_cpus", pa.string()),
        ("client_cpus", pa.string()),
        ("client_threads", pa.int32()),
        ("connections", pa.int32()),
        ("size_bytes", pa.int64()),
        ("repetition", pa.int32()),
        ("warmup_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("window_s", pa.float64()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("throughput_rps", pa.float64()),
        ("mean_us", pa.float64()),
        ("p50_us", pa.float64()),
        ("p90_us", pa.float64()),
        ("p99_us", pa.float64()),
        ("p999_us", pa.float64()),
        ("max_us", pa.float64()),
        ("latency_kind", pa.string()),
        ("server_cpu_s", pa.float64()),
        ("client_cpu_s", pa.float64()),
        ("oversubscribed", pa.bool_()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("started_at", pa.string()),
        ("ended_at", pa.string()),
    ]
)

LATENCY = pa.schema(
    [
        ("trial_id", pa.string()),
        ("lower_ns", pa.int64()),
        ("upper_ns", pa.int64()),
        ("count", pa.int64()),
    ]
)

TIMESERIES = pa.schema(
    [
        ("trial_id", pa.string()),
        ("second", pa.float64()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("p50_us", pa.float64()),
        ("p99_us", pa.float64()),
    ]
)

WORKERS = pa.schema(
    [
        ("trial_id", pa.string()),
        ("worker", pa.int32()),
        ("cpu", pa.int32()),
        ("connections", pa.int64()),
        ("requests", pa.int64()),
        ("bytes_in", pa.int64()),
        ("bytes_out", pa.int64()),
    ]
)

TABLES = {"trials": TRIALS, "latency": LATENCY, "timeseries": TIMESERIES, "workers": WORKERS}


def _write_atomic(path: Path, write) -> None:
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

    def raw_path(self, trial_id: str, suffix: str) -> Path:
        return self.directory / "raw" / f"{trial_id}.{suffix}"

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.rows[table].extend(rows)

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


def load_run(directory: Path) -> RunData:
    """Read a run back; what `harness report` and users (pandas) do."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        from harness.errors import HarnessError

        raise HarnessError(
            f"{directory} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/"
        )
    manifest = json.loads(manifest_path.read_text())
    frames = {}
    for name, schema in TABLES.items():
        path = directory / f"{name}.parquet"
        frames[name] = (
            pq.read_table(path).to_pandas() if path.exists() else schema.empty_table().to_pandas()
        )
    return RunData(directory=directory, manifest=manifest, **frames)


def trial_rows(run_id: str, result: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows one TrialResult contributes to each table. Absent figures stay None (null),
    never zero."""
    spec = result.spec
    report = result.loadgen or {}
    summary = report.get("summary", {})
    lat = summary.get("latency_us") or {}
    cpu = report.get("client_cpu") or {}
    trial = {
        "run_id": run_id,
        "trial_id": spec.trial_id,
        "trial_index": spec.index,
        "server": spec.server,
        "design_family": spec.design_family,
        "io_model": spec.io_model,
        "protocol": spec.protocol,
        "server_cores": spec.server_cores,
        "server_cpus": ",".join(map(str, spec.cpus.server)),
        "client_cpus": ",".join(map(str, spec.cpus.client[: spec.client_threads])),
        "client_threads": spec.client_threads,
        "connections": spec.connections,
        "size_bytes": spec.size_bytes,
        "repetition": spec.repetition,
        "warmup_s": spec.warmup_s,
        "duration_s": spec.duration_s,
        "window_s": summary.get("window_s"),
        "requests": summary.get("requests"),
        "errors": summary.get("errors_total"),
        "throughput_rps": summary.get("throughput_rps"),
        "mean_us": lat.get("mean"),
        "p50_us": lat.get("p50"),
        "p90_us": lat.get("p90"),
        "p99_us": lat.get("p99"),
        "p999_us": lat.get("p999"),
        "max_us": lat.get("max"),
        "latency_kind": report.get("latency_kind"),
        "server_cpu_s": result.server_cpu_s,
        "client_cpu_s": cpu.get("total_s"),
        "oversubscribed": spec.cpus.oversubscribed,
        "status": result.status,
        "reason": result.reason,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
    }
    buckets = (report.get("histogram") or {}).get("buckets", [])
    latency = [
        {
            "trial_id": spec.trial_id,
            "lower_ns": b["lower_ns"],
            "upper_ns": b["upper_ns"],
            "count": b["count"],
        }
        for b in buckets
    ]
    series = [
        {
            "trial_id": spec.trial_id,
            "second": s.get("start_s"),
            "requests": s.get("requests"),
            "errors": s.get("errors"),
            "p50_us": s.get("p50_us"),
            "p99_us": s.get("p99_us"),
        }
        for s in report.get("series", [])
    ]
    workers = [
        {
            "trial_id": spec.trial_id,
            "worker": w.get("worker"),
            "cpu": w.get("cpu"),
            "connections": w.get("connections"),
            "requests": w.get("messages"),
            "bytes_in": w.get("bytes_in"),
            "bytes_out": w.get("bytes_out"),
        }
        for w in (result.counters or {}).get("workers", [])
    ]
    return {"trials": [trial], "latency": latency, "timeseries": series, "workers": workers}
