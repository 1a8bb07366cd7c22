"""End to end: `harness run` against the real servers and load generator on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
from conftest import REPO, RUN_FAST, require_binaries
from helpers import design_entry, harness_argv, only_run, registry_with, run_harness


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


def test_failed_trial_is_stored_and_run_goes_on(tmp_path):
    require_binaries("loadgen", "tokio-ws")
    out = tmp_path / "results"
    proc = run_harness(
        "run",
        *RUN_FAST,
        "--no-preflight",  # let it fail as a trial, not at the door
        "--servers",
        "broken,tokio-ws",
        "--registry",
        str(broken_registry(tmp_path)),
        "--out",
        str(out),
        "--reports",
        str(tmp_path / "reports"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 of 2 trials failed" in proc.stdout and "broken" in proc.stdout
    trials = pd.read_parquet(only_run(out) / "trials.parquet").set_index("server")
    assert trials.loc["broken", "status"] == "failed"
    assert "exited with code 3" in trials.loc["broken", "reason"]
    assert "cannot bind" in trials.loc["broken", "reason"]
    assert trials.loc["tokio-ws", "status"] == "ok"


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


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_ctrl_c_leaves_no_process_and_keeps_results(tmp_path):
    require_binaries("loadgen", "tokio-ws", "tokio-tpc")
    out = tmp_path / "results"
    proc = subprocess.Popen(
        harness_argv(
            "run",
            "--servers",
            "tokio-ws,tokio-tpc",
            "--cores",
            "1",
            "--duration",
            "3",
            "--no-preflight",
            "--warmup",
            "0",
            "--repeat",
            "1",
            "--mode",
            "closed",
            "--out",
            str(out),
            "--reports",
            str(tmp_path / "r"),
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        kids: list[int] = []
        while time.monotonic() < deadline and len(kids) < 2:  # server and load generator
            time.sleep(0.2)
            kids = _children(proc.pid)
        assert len(kids) >= 2, "trial did not start"
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
        assert proc.returncode == 130
        for kid in kids:
            assert (
                not Path(f"/proc/{kid}").exists()
                or Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            )
        run = only_run(out)
        trials = pd.read_parquet(run / "trials.parquet")
        assert len(trials) == 1 and trials.iloc[0]["reason"] == "interrupted by the user"
        # The run goes on from where it stopped, with its stored plan.
        resumed = run_harness("run", "--resume", str(run), "--reports", str(tmp_path / "r"))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        trials = pd.read_parquet(run / "trials.parquet")
        assert sorted(trials["server"]) == ["tokio-tpc", "tokio-ws"]
        assert (trials["status"] == "ok").all()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
