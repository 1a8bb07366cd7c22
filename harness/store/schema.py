"""The tables of a results directory and their columns (docs/data.md): one parquet file each."""

from __future__ import annotations

import pyarrow as pa

from harness.plan.settings import SETTINGS

# 2: each flag's causes are typed records (`flag_causes`, written from the run's judgement)
# instead of English text; the `*_reason` columns stay for reading runs of version 1 (docs/data.md).
SCHEMA_VERSION = 2

_S, _I32, _I64, _F, _B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
_U64 = pa.uint64()  # seeds: 0..2^64-1
# One measured figure behind a flag (run.flags.Cause, named by its flag): docs/data.md, "Flags".
FLAG_CAUSE = pa.struct([
    ("flag", _S), ("kind", _S), ("value", _F), ("limit", _F), ("of", _F), ("unit", _S),
    ("thread", _I32), ("cpu", _I32), ("host", _S), ("interval", _I32), ("detail", _S),
])  # fmt: skip
# The trial settings' columns, typed where they are declared (plan/settings.py).
_SET = {s.name: (s.name, pa.type_for_alias(s.column)) for s in SETTINGS}

TRIALS = pa.schema([
    # identity and configuration
    ("run_id", _S), ("trial_id", _S), ("trial_index", _I32), ("server", _S),
    ("design_family", _S), ("io_model", _S), _SET["protocol"], _SET["server_cores"],
    ("scheduler", _S), ("accept", _S), ("io", _S), ("runtime", _S), ("runtime_version", _S),
    ("maintenance", _S), ("settings_profile", _S), ("server_settings", _S),
    ("concurrency", _S),
    ("server_cpus", _S), ("client_cpus", _S), ("client_threads", _I32), _SET["connections"],
    ("port", _I32), ("port_attempts", _I32),
    _SET["size_bytes"], _SET["pipeline"], _SET["work"], _SET["mode"], ("arrival", _S),
    ("target_rate", _F), ("rate_fraction", _F), ("capacity_trial", _S), ("hot_fraction", _F),
    ("hot_share", _F), _SET["requests_per_connection"], ("seed", _U64), ("repetition", _I32),
    ("warmup_s", _F), ("duration_s", _F),
    # what the load generator measured
    ("window_s", _F), ("requests", _I64), ("errors", _I64), ("throughput_rps", _F),
    ("achieved_rate", _F), ("sent_rate", _F), ("scheduled_rate", _F),
    ("latency_kind", _S), ("mean_us", _F), ("p50_us", _F), ("p90_us", _F), ("p99_us", _F),
    ("p999_us", _F), ("max_us", _F),
    ("uncorrected_p50_us", _F), ("uncorrected_p99_us", _F), ("uncorrected_p999_us", _F),
    ("schedule_lag_p99_us", _F), ("schedule_lag_max_us", _F),
    ("scheduled", _I64), ("failed", _I64), ("censored", _I64), ("censored_tail", _B),
    ("hiccup_p99_us", _F), ("hiccup_max_us", _F),
    # what the processes did (from /proc over the window, and perf)
    ("server_cpu_s", _F), ("server_cpu_util", _F), ("requests_per_server_cpu_s", _F),
    ("server_voluntary_ctxt", _I64), ("server_involuntary_ctxt", _I64),
    ("ctxt_per_request", _F), ("server_rss_bytes", _I64),
    ("client_cpu_s", _F), ("client_cpu_util", _F), ("client_runqueue_wait", _F),
    ("client_idle", _S), ("client_idle_why", _S),
    ("perf_instructions", _I64), ("perf_cycles", _I64), ("perf_context_switches", _I64),
    ("perf_cache_misses", _I64),
    # flags: why a number may not be the server's, each with the causes that set it
    ("oversubscribed", _B), ("client_bound", _B), ("rate_missed", _B), ("unsteady", _B),
    ("contended", _B), ("errors_flag", _B), ("censored_flag", _B),
    ("flag_causes", pa.list_(FLAG_CAUSE)),
    # schema_version 1 only (null since 2): each flag's reason in words, shown as it was written
    ("client_bound_reason", _S), ("rate_missed_reason", _S), ("unsteady_reason", _S),
    ("contended_reason", _S), ("errors_flag_reason", _S), ("censored_flag_reason", _S),
    ("server_host", _S), ("client_hosts", _S),  # docs/multi-host.md; "local" on one machine
    ("status", _S), ("reason", _S), ("failure", _S), ("started_at", _S), ("ended_at", _S),
])  # fmt: skip

LATENCY = pa.schema([
    ("trial_id", _S), ("kind", _S), ("lower_ns", _I64), ("upper_ns", _I64), ("count", _I64),
    ("client_host", _S),
])  # fmt: skip

TIMESERIES = pa.schema([
    ("trial_id", _S), ("second", _F), ("requests", _I64), ("errors", _I64), ("p50_us", _F),
    ("p99_us", _F), ("p999_us", _F), ("client_host", _S),
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
