"""Parquet round trip: what a trial stores is what pandas reads back, nulls stay null."""

from __future__ import annotations

import json

from harness.plan.cpus import CpuAssignment
from harness.plan.plan import TrialSpec
from harness.run.trial import TrialResult
from harness.store import TABLES, RunStore, load_run, trial_rows


def spec(index: int = 0) -> TrialSpec:
    return TrialSpec(
        index=index,
        trial_id=f"{index:04d}-tokio-ws-echo-k1-c2-b64-r0",
        server="tokio-ws",
        design_family="work-stealing",
        io_model="epoll",
        protocol="echo",
        server_cores=1,
        connections=2,
        size_bytes=64,
        repetition=0,
        warmup_s=1.0,
        duration_s=2.0,
        timeout_s=2.0,
        cpus=CpuAssignment(server=(1,), client=(0,), oversubscribed=False),
    )


LOADGEN = {
    "schema": "loadgen/1",
    "latency_kind": "closed-loop",
    "summary": {
        "requests": 300,
        "errors_total": 1,
        "errors": {"reset": 1},
        "window_s": 2.0,
        "throughput_rps": 150.0,
        "latency_us": {
            "min": 10.0,
            "mean": 20.0,
            "p50": 19.9,
            "p90": 30.0,
            "p99": 40.0,
            "p999": 41.0,
            "max": 42.0,
        },
    },
    "histogram": {
        "unit": "ns",
        "sub_buckets": 2048,
        "buckets": [
            {"lower_ns": 19968, "upper_ns": 19984, "count": 200},
            {"lower_ns": 40960, "upper_ns": 40992, "count": 100},
        ],
    },
    "series": [
        {
            "interval": 0,
            "start_s": 0.0,
            "requests": 150,
            "errors": 1,
            "p50_us": 19.9,
            "p99_us": None,
        },
        {
            "interval": 1,
            "start_s": 1.0,
            "requests": 150,
            "errors": 0,
            "p50_us": 20.0,
            "p99_us": 40.0,
        },
    ],
    "client_cpu": {"total_s": 1.5},
}
COUNTERS = {
    "workers": [
        {
            "worker": 0,
            "cpu": 1,
            "connections": 2,
            "messages": 301,
            "bytes_in": 19264,
            "bytes_out": 19264,
        }
    ]
}


def test_round_trip(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write_manifest({"run_id": "r1", "plan": {}})
    ok = TrialResult(
        spec(0), "ok", "", "t0", "t1", loadgen=LOADGEN, counters=COUNTERS, server_cpu_s=1.9
    )
    failed = TrialResult(
        spec(1), "failed", "server exited with code 1 before it was ready", "t2", "t3"
    )
    for result in (ok, failed):
        for table, rows in trial_rows("r1", result).items():
            store.add(table, rows)
        store.flush()
    run = load_run(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["run_id"] == "r1"
    for name, schema in TABLES.items():
        assert list(getattr(run, name).columns) == schema.names
    t = run.trials.set_index("trial_index")
    assert t.loc[0, "requests"] == 300 and t.loc[0, "throughput_rps"] == 150.0
    assert t.loc[0, "server_cpu_s"] == 1.9 and t.loc[0, "client_cpu_s"] == 1.5
    assert t.loc[1, "status"] == "failed" and "before it was ready" in t.loc[1, "reason"]
    # Figures a failed trial never measured are null, not zero.
    assert run.trials.loc[run.trials.trial_index == 1, "requests"].isna().all()
    assert run.latency["count"].sum() == 300
    assert len(run.timeseries) == 2 and run.timeseries["p99_us"].isna().sum() == 1
    assert run.workers.iloc[0]["requests"] == 301 and run.workers.iloc[0]["cpu"] == 1
