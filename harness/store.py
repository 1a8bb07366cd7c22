"""Stage 3: results on disk (docs/data.md). Every finished trial is written before the next starts.

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

from harness import flags
from harness.errors import HarnessError

SCHEMA_VERSION = 1

_S, _I32, _I64, _F, _B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()

TRIALS = pa.schema([
    # identity and configuration
    ("run_id", _S), ("trial_id", _S), ("trial_index", _I32), ("server", _S),
    ("design_family", _S), ("io_model", _S), ("protocol", _S), ("server_cores", _I32),
    ("server_cpus", _S), ("client_cpus", _S), ("client_threads", _I32), ("connections", _I32),
    ("size_bytes", _I64), ("pipeline", _I32), ("work", _S), ("mode", _S), ("arrival", _S),
    ("target_rate", _F), ("rate_fraction", _F), ("capacity_trial", _S), ("hot_fraction", _F),
    ("hot_share", _F), ("requests_per_connection", _I64), ("seed", _I64), ("repetition", _I32),
    ("warmup_s", _F), ("duration_s", _F),
    # what the load generator measured
    ("window_s", _F), ("requests", _I64), ("errors", _I64), ("throughput_rps", _F),
    ("achieved_rate", _F), ("sent_rate", _F), ("scheduled_rate", _F),
    ("latency_kind", _S), ("mean_us", _F), ("p50_us", _F), ("p90_us", _F), ("p99_us", _F),
    ("p999_us", _F), ("max_us", _F),
    ("uncorrected_p50_us", _F), ("uncorrected_p99_us", _F), ("uncorrected_p999_us", _F),
    ("schedule_lag_p99_us", _F), ("schedule_lag_max_us", _F),
    # what the processes did (from /proc over the window, and perf)
    ("server_cpu_s", _F), ("server_cpu_util", _F), ("requests_per_server_cpu_s", _F),
    ("server_voluntary_ctxt", _I64), ("server_involuntary_ctxt", _I64),
    ("ctxt_per_request", _F), ("server_rss_bytes", _I64),
    ("client_cpu_s", _F), ("client_cpu_util", _F), ("client_runqueue_wait", _F),
    ("perf_instructions", _I64), ("perf_cycles", _I64), ("perf_context_switches", _I64),
    ("perf_cache_misses", _I64),
    # flags: why a number may not be the server's
    ("oversubscribed", _B), ("client_bound", _B), ("client_bound_reason", _S),
    ("rate_missed", _B), ("rate_missed_reason", _S), ("unsteady", _B), ("unsteady_reason", _S),
    ("contended", _B), ("contended_reason", _S),
    ("status", _S), ("reason", _S), ("started_at", _S), ("ended_at", _S),
])  # fmt: skip

LATENCY = pa.schema([
    ("trial_id", _S), ("kind", _S), ("lower_ns", _I64), ("upper_ns", _I64), ("count", _I64),
])  # fmt: skip

TIMESERIES = pa.schema([
    ("trial_id", _S), ("second", _F), ("requests", _I64), ("errors", _I64), ("p50_us", _F),
    ("p99_us", _F), ("p999_us", _F),
])  # fmt: skip

WORKERS = pa.schema([
    ("trial_id", _S), ("worker", _I32), ("cpu", _I32), ("connections", _I64),
    ("requests", _I64), ("bytes_in", _I64), ("bytes_out", _I64),
])  # fmt: skip

THREADS = pa.schema([
    ("trial_id", _S), ("role", _S), ("pid", _I64), ("tid", _I64), ("name", _S), ("cpu", _I32),
    ("user_s", _F), ("system_s", _F), ("cpu_s", _F), ("voluntary_ctxt_switches", _I64),
    ("involuntary_ctxt_switches", _I64),
])  # fmt: skip

TABLES = {
    "trials": TRIALS,
    "latency": LATENCY,
    "timeseries": TIMESERIES,
    "workers": WORKERS,
    "threads": THREADS,
}


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


def load_run(directory: Path) -> RunData:
    """Read a run back; what `harness report` and users (pandas) do."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise HarnessError(
            f"{directory} is not a results directory (no manifest.json); "
            "pass one of results/<run-id>/"
        )
    manifest = json.loads(manifest_path.read_text())
    frames = {}
    for name, schema in TABLES.items():
        path = directory / f"{name}.parquet"
        table = pq.read_table(path) if path.exists() else schema.empty_table()
        for field in schema:  # older files: missing columns appear as nulls
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(len(table), field.type))
        frames[name] = table.select(schema.names).to_pandas()
    return RunData(directory=directory, manifest=manifest, **frames)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def trial_rows(run_id: str, result: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows one TrialResult contributes to each table. Absent figures stay None (null),
    never zero."""
    spec = result.spec
    report = result.loadgen or {}
    summary = report.get("summary", {})
    lat = summary.get("latency_us") or {}
    service = summary.get("service_latency_us") or {}
    lag = summary.get("schedule_lag_us") or {}
    cpu = report.get("client_cpu") or {}
    window = summary.get("window_s")
    requests = summary.get("requests")
    server_threads = [t for t in result.threads if t["role"] == "server"]
    vol = sum(t["voluntary_ctxt_switches"] for t in server_threads) if server_threads else None
    invol = sum(t["involuntary_ctxt_switches"] for t in server_threads) if server_threads else None
    bound, bound_why = flags.client_bound(report)
    missed, missed_why = flags.rate_missed(report)
    unsteady, unsteady_why = flags.unsteady(report.get("series", []), window)
    busy = getattr(result, "cpu_busy", None) or {}
    contended, contended_why = flags.contended(busy, result.threads, window)
    perf = result.perf or {}
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
        "pipeline": spec.pipeline,
        "work": spec.work,
        "mode": spec.mode,
        "arrival": spec.arrival if spec.mode == "open" else None,
        "target_rate": spec.rate,
        "rate_fraction": spec.rate_fraction,
        "capacity_trial": spec.capacity_trial,
        "hot_fraction": spec.hot_fraction,
        "hot_share": spec.hot_share,
        "requests_per_connection": spec.requests_per_connection,
        "seed": spec.seed,
        "repetition": spec.repetition,
        "warmup_s": spec.warmup_s,
        "duration_s": spec.duration_s,
        "window_s": window,
        "requests": requests,
        "errors": summary.get("errors_total"),
        "throughput_rps": summary.get("throughput_rps"),
        "achieved_rate": summary.get("achieved_rate", summary.get("throughput_rps")),
        "sent_rate": summary.get("sent_rate"),
        "scheduled_rate": summary.get("scheduled_rate"),
        "latency_kind": report.get("latency_kind"),
        "mean_us": lat.get("mean"),
        "p50_us": lat.get("p50"),
        "p90_us": lat.get("p90"),
        "p99_us": lat.get("p99"),
        "p999_us": lat.get("p999"),
        "max_us": lat.get("max"),
        "uncorrected_p50_us": service.get("p50"),
        "uncorrected_p99_us": service.get("p99"),
        "uncorrected_p999_us": service.get("p999"),
        "schedule_lag_p99_us": lag.get("p99"),
        "schedule_lag_max_us": lag.get("max"),
        "server_cpu_s": result.server_cpu_s,
        "server_cpu_util": _div(result.server_cpu_s, (window or 0) * spec.server_cores),
        "requests_per_server_cpu_s": _div(requests, result.server_cpu_s),
        "server_voluntary_ctxt": vol,
        "server_involuntary_ctxt": invol,
        "ctxt_per_request": _div((vol or 0) + (invol or 0), requests) if vol is not None else None,
        "server_rss_bytes": result.server_rss_bytes,
        "client_cpu_s": cpu.get("total_s"),
        "client_cpu_util": _div(cpu.get("total_s"), (window or 0) * spec.client_threads),
        "client_runqueue_wait": max(
            (
                t["runqueue_wait_fraction"]
                for t in cpu.get("threads", [])
                if t.get("runqueue_wait_fraction") is not None
            ),
            default=None,
        ),
        "perf_instructions": perf.get("instructions"),
        "perf_cycles": perf.get("cycles"),
        "perf_context_switches": perf.get("context-switches"),
        "perf_cache_misses": perf.get("cache-misses"),
        "oversubscribed": spec.cpus.oversubscribed,
        "client_bound": bound,
        "client_bound_reason": bound_why,
        "rate_missed": missed,
        "rate_missed_reason": missed_why,
        "unsteady": unsteady,
        "unsteady_reason": unsteady_why,
        "contended": contended,
        "contended_reason": contended_why,
        "status": result.status,
        "reason": result.reason,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
    }
    latency = []
    for kind, key in (("primary", "histogram"), ("uncorrected", "service_histogram")):
        for b in (report.get(key) or {}).get("buckets", []):
            latency.append({"trial_id": spec.trial_id, "kind": kind, "lower_ns": b["lower_ns"],
                            "upper_ns": b["upper_ns"], "count": b["count"]})  # fmt: skip
    series = [
        {"trial_id": spec.trial_id, "second": s.get("start_s"), "requests": s.get("requests"),
         "errors": s.get("errors"), "p50_us": s.get("p50_us"), "p99_us": s.get("p99_us"),
         "p999_us": s.get("p999_us")}
        for s in report.get("series", [])
    ]  # fmt: skip
    workers = [
        {"trial_id": spec.trial_id, "worker": w.get("worker"), "cpu": w.get("cpu"),
         "connections": w.get("connections"), "requests": w.get("messages"),
         "bytes_in": w.get("bytes_in"), "bytes_out": w.get("bytes_out")}
        for w in (result.counters or {}).get("workers", [])
    ]  # fmt: skip
    return {"trials": [trial], "latency": latency, "timeseries": series, "workers": workers,
            "threads": result.threads}  # fmt: skip
