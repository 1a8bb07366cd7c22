"""The rows one finished trial contributes to each table: what it measured and the flags the run
judged (TrialResult.flags), stored as they are."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from harness.run.flags import FLAG_NAMES, TrialFlags

# The design's factors, copied from its registry entry through the trial spec.
_FACTOR_COLUMNS = (
    "scheduler",
    "accept",
    "io",
    "runtime",
    "runtime_version",
    "maintenance",
    "concurrency",
)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _worst(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _client_cpus(result: Any) -> str:
    """The load generators' CPUs: `0,1` on one machine; `host=0,1;host=2,3` across hosts."""
    spec = result.spec
    per_host = getattr(result, "per_host", None)
    if not per_host:
        return ",".join(map(str, spec.cpus.client[: spec.client_threads]))
    return ";".join(
        f"{h}={','.join(map(str, (d.get('config') or {}).get('cpus') or []))}"
        for h, d in per_host.items()
    )


def _settings_columns(settings: dict[str, Any] | None) -> dict[str, str | None]:
    """The server's settings line as two columns: its profile (authors | defaults) and its
    settings object as JSON with sorted keys (so that equal settings are equal strings)."""
    if not settings:
        return {"settings_profile": None, "server_settings": None}
    return {
        "settings_profile": settings.get("profile"),
        "server_settings": json.dumps(settings.get("settings"), sort_keys=True),
    }


# Each flag's column in the trials table (two are suffixed: `errors` and `censored` are counts).
FLAG_COLUMNS = {"errors": "errors_flag", "censored": "censored_flag"}


def _flag_columns(judged: TrialFlags | None) -> dict[str, Any]:
    """Each flag as a bool column (None: not judged) and every cause as a typed record of
    `flag_causes`, named by its flag's column."""
    if judged is None:  # a trial the run did not judge: its flags are unknown, not false
        return {FLAG_COLUMNS.get(n, n): None for n in FLAG_NAMES} | {"flag_causes": None}
    columns: dict[str, Any] = {"flag_causes": []}
    for name in FLAG_NAMES:
        flag = getattr(judged, name)
        column = FLAG_COLUMNS.get(name, name)
        columns[column] = flag.set
        columns["flag_causes"] += [{"flag": column, **asdict(c)} for c in flag.causes]
    return columns


def trial_rows(run_id: str, result: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows one TrialResult contributes to each table. Absent figures stay None (null),
    never zero."""
    report = result.loadgen or {}
    window = report.get("summary", {}).get("window_s")
    trial = {
        "run_id": run_id,
        **_spec_columns(result),
        **_loadgen_columns(report),
        **_server_columns(result, window, report.get("summary", {}).get("requests")),
        **_client_columns(result.spec, report, window),
        # getattr: a result from before the client CPUs were set to poll has neither
        "client_idle": getattr(result, "client_idle", None),
        "client_idle_why": getattr(result, "client_idle_why", None) or None,
        # getattr: a result from before flags were judged by the run has none
        **_flag_columns(getattr(result, "flags", None)),
        "server_host": getattr(result, "server_host", "") or "local",
        "client_hosts": ",".join(getattr(result, "per_host", None) or ["local"]),
        "status": result.status,
        "reason": result.reason,
        "failure": getattr(result, "failure", None),  # getattr: older records have none
        "started_at": result.started_at,
        "ended_at": result.ended_at,
    }
    # Several client hosts: each host's histogram and series are rows of their own (the trial's
    # histogram is their sum, docs/multi-host.md); one host: the rows of "local".
    per_host = getattr(result, "per_host", None) or {"local": report}
    return {"trials": [trial], **_host_rows(result.spec.trial_id, per_host),
            "workers": _worker_rows(result), "threads": result.threads}  # fmt: skip


def _spec_columns(result: Any) -> dict[str, Any]:
    """What the trial was: its identity, design, placement and settings (from its spec)."""
    spec = result.spec
    return {
        "trial_id": spec.trial_id,
        "trial_index": spec.index,
        "server": spec.server,
        "design_family": spec.design_family,
        "io_model": spec.io_model,
        # getattr: a spec from before the factors existed has none of them
        **{f: getattr(spec, f, None) for f in _FACTOR_COLUMNS},
        "protocol": spec.protocol,
        "server_cores": spec.server_cores,
        "server_cpus": ",".join(map(str, spec.cpus.server)),
        "client_cpus": _client_cpus(result),
        "client_threads": spec.client_threads,
        # getattr: a result from before ports were recorded has neither
        "port": getattr(result, "port", None),
        "port_attempts": getattr(result, "port_attempts", None),
        **_settings_columns(getattr(result, "server_settings", None)),
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
        "oversubscribed": spec.cpus.oversubscribed,
    }


def _loadgen_columns(report: dict[str, Any]) -> dict[str, Any]:
    """What the load generator measured (its document's summary, docs/loadgen.md)."""
    summary = report.get("summary", {})
    lat = summary.get("latency_us") or {}
    service = summary.get("service_latency_us") or {}
    lag = summary.get("schedule_lag_us") or {}
    return {
        "window_s": summary.get("window_s"),
        "requests": summary.get("requests"),
        "errors": summary.get("errors_total"),
        "throughput_rps": summary.get("throughput_rps"),
        "achieved_rate": summary.get("achieved_rate", summary.get("throughput_rps")),
        "sent_rate": summary.get("sent_rate"),
        "scheduled_rate": summary.get("scheduled_rate"),
        "latency_kind": report.get("latency_kind"),
        "mean_us": lat.get("mean"),
        **{f"{p}_us": lat.get(p) for p in ("p50", "p90", "p99", "p999", "max")},
        **{f"uncorrected_{p}_us": service.get(p) for p in ("p50", "p99", "p999")},
        "schedule_lag_p99_us": lag.get("p99"),
        "schedule_lag_max_us": lag.get("max"),
        "scheduled": (summary.get("scheduled") or {}).get("scheduled"),
        "failed": summary.get("failed"),
        "censored": summary.get("censored"),
        "censored_tail": summary.get("censored_tail"),
    }


def _server_columns(result: Any, window: float | None, requests: int | None) -> dict[str, Any]:
    """What the server's processes cost (/proc and perf)."""
    server_threads = [t for t in result.threads if t["role"] == "server"]
    vol = sum(t["voluntary_ctxt_switches"] for t in server_threads) if server_threads else None
    invol = sum(t["involuntary_ctxt_switches"] for t in server_threads) if server_threads else None
    perf = result.perf or {}
    cores = result.spec.server_cores
    return {
        "server_cpu_s": result.server_cpu_s,
        "server_cpu_util": _div(result.server_cpu_s, (window or 0) * cores),
        "requests_per_server_cpu_s": _div(requests, result.server_cpu_s),
        "server_voluntary_ctxt": vol,
        "server_involuntary_ctxt": invol,
        "ctxt_per_request": _div((vol or 0) + (invol or 0), requests) if vol is not None else None,
        "server_rss_bytes": result.server_rss_bytes,
        "perf_instructions": perf.get("instructions"),
        "perf_cycles": perf.get("cycles"),
        "perf_context_switches": perf.get("context-switches"),
        "perf_cache_misses": perf.get("cache-misses"),
    }


def _client_columns(spec: Any, report: dict[str, Any], window: float | None) -> dict[str, Any]:
    """What the load generator itself cost and how noisy its CPUs were."""
    cpu = report.get("client_cpu") or {}
    hiccups = (report.get("hiccup") or {}).get("per_cpu") or []
    waits = [
        t["runqueue_wait_fraction"]
        for t in cpu.get("threads", [])
        if t.get("runqueue_wait_fraction") is not None
    ]
    return {
        # The client's noise floor: the worst of its CPUs (a stall of any one delays requests).
        "hiccup_p99_us": _worst(h.get("p99_us") for h in hiccups),
        "hiccup_max_us": _worst(h.get("max_us") for h in hiccups),
        "client_cpu_s": cpu.get("total_s"),
        "client_cpu_util": _div(cpu.get("total_s"), (window or 0) * spec.client_threads),
        "client_runqueue_wait": max(waits, default=None),
    }


def _host_rows(trial_id: str, per_host: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The latency buckets and per-interval series of each client host."""
    latency = []
    for host, doc in per_host.items():
        for kind, key in (("primary", "histogram"), ("uncorrected", "service_histogram")):
            for b in (doc.get(key) or {}).get("buckets", []):
                latency.append({"trial_id": trial_id, "kind": kind, "lower_ns": b["lower_ns"],
                                "upper_ns": b["upper_ns"], "count": b["count"],
                                "client_host": host})  # fmt: skip
    series = [
        {"trial_id": trial_id, "second": s.get("start_s"), "requests": s.get("requests"),
         "errors": s.get("errors"), "p50_us": s.get("p50_us"), "p99_us": s.get("p99_us"),
         "p999_us": s.get("p999_us"), "client_host": host}
        for host, doc in per_host.items()
        for s in doc.get("series", [])
    ]  # fmt: skip
    return {"latency": latency, "timeseries": series}


def _worker_rows(result: Any) -> list[dict[str, Any]]:
    """The server's counters per worker."""
    return [
        {"trial_id": result.spec.trial_id, "worker": w.get("worker"), "cpu": w.get("cpu"),
         "connections": w.get("connections"), "requests": w.get("messages"),
         "bytes_in": w.get("bytes_in"), "bytes_out": w.get("bytes_out")}
        for w in (result.counters or {}).get("workers", [])
    ]  # fmt: skip
