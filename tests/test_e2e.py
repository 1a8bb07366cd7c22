"""End to end: `harness run` against the real servers and load generator on loopback.

A trial whose server dies, and Ctrl-C then --resume, are checked in test_faults (with its
watch on every process the run starts)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import REPO, RUN_FAST, require_binaries
from helpers import design_entry, only_run, registry_with, run_harness


def test_run_produces_tables_and_report(real_run, tmp_path):
    out, reports, proc = real_run.out, real_run.reports, real_run.proc
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = only_run(out)
    trials = pd.read_parquet(run / "trials.parquet")
    assert sorted(trials["server"]) == ["tokio-tpc", "tokio-ws"]
    assert (trials["status"] == "ok").all(), trials[["trial_id", "reason"]]
    assert (trials["requests"] > 0).all() and (trials["throughput_rps"] > 0).all()
    assert set(trials["design_family"]) == {"work-stealing", "thread-per-core"}
    assert (trials["server_cpus"] != trials["client_cpus"]).all()
    assert trials["server_cpu_s"].notna().all() and trials["client_cpu_s"].notna().all()
    latency = pd.read_parquet(run / "latency.parquet")
    sums = latency.groupby("trial_id")["count"].sum()
    assert (sums == trials.set_index("trial_id")["requests"]).all()
    series = pd.read_parquet(run / "timeseries.parquet")
    assert (series.groupby("trial_id").size() == 2).all()
    assert trials["server_cpu_util"].between(0, 1.05).all()
    assert trials["requests_per_server_cpu_s"].notna().all()
    # The run judged every trial's flags once; the store kept them as typed data (docs/data.md).
    assert trials["contended"].notna().all() and trials["flag_causes"].notna().all()
    for record in (run / "raw").glob("*.trial.json"):
        assert set(json.loads(record.read_text())["flags"]) >= {"client_bound", "contended"}
    threads = pd.read_parquet(run / "threads.parquet")
    assert set(threads["role"]) == {"server", "client"}
    assert (threads.groupby("trial_id")["cpu_s"].sum() > 0).all()
    workers = pd.read_parquet(run / "workers.parquet")
    assert len(workers) == 2 and (workers["connections"] == 64).all()
    # Every request the client counted passed through some server worker.
    assert (workers["bytes_in"] > 0).all()
    html = reports / run.name / "index.html"
    assert html.is_file() and str(html) in proc.stdout
    text = html.read_text()
    assert "data:image/png;base64," in text and "http://" not in text and "https://" not in text
    again = run_harness("report", str(run), "-o", str(tmp_path / "again.html"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.html").is_file()


def broken_registry(tmp_path: Path) -> Path:
    """The real registry plus a design that dies at start-up."""
    command = "/bin/sh -c 'echo cannot bind >&2; exit 3' --port {port}"
    entry = design_entry("broken", command, ready="line", pins_itself=True, counters=True)
    return registry_with(tmp_path, entry)


def test_nonconforming_design_is_refused(tmp_path):
    require_binaries("loadgen", "tokio-ws")
    args = [
        "run",
        *RUN_FAST,
        "--registry",
        str(broken_registry(tmp_path)),
        "--out",
        str(tmp_path / "results"),
        "--reports",
        str(tmp_path / "reports"),
    ]
    named = run_harness(*args, "--servers", "broken,tokio-ws")
    assert named.returncode == 2, named.stdout + named.stderr
    error = named.stderr.strip().splitlines()[-1]
    assert "design broken failed conformance" in error and "cannot bind" in error
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    # With --servers all, a refused design is left out, said so, and the others still run.
    registry = tmp_path / "two.toml"
    entries = (REPO / "servers" / "registry.toml").read_text().split("[[design]]")
    tokio_ws = next(e for e in entries if 'name = "tokio-ws"' in e)
    broken = broken_registry(tmp_path).read_text().split("[[design]]")[-1]
    registry.write_text(f"[[design]]{tokio_ws}[[design]]{broken}")
    args[args.index("--registry") + 1] = str(registry)
    everything = run_harness(*args, "--servers", "all")
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert "refused broken" in everything.stdout
    manifest = json.loads((only_run(tmp_path / "results") / "manifest.json").read_text())
    assert "cannot bind" in manifest["left_out"]["broken"]
