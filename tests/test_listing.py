"""Issue 8's harness side: `harness list` shows the factors, runtime versions, maintenance labels,
why a design cannot run here, and the controlled pairs; `harness doctor` shows what the designs'
runtimes need; `harness run` refuses a design whose needs are not met; trials.parquet carries the
factors of each trial."""

from __future__ import annotations

import dataclasses
import errno
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_store import spec as store_spec

from harness.checks import runtime_needs
from harness.checks.runtime_needs import Probes
from harness.cli import doctor as doctor_cli
from harness.cli import listing
from harness.errors import HarnessError
from harness.plan.designs import DEFAULT_REGISTRY, load_registry
from harness.plan.plan import RunConfig
from harness.run.trial import TrialResult
from harness.session import run as run_session
from harness.store import TABLES, RunStore, load_run, trial_rows

ROOT = Path(__file__).resolve().parent.parent
NO_URING = Probes(io_uring=lambda: errno.EPERM, io_uring_sysctl=Path("/nonexistent"))


def _refusing_io_uring(design, probes=None):
    return runtime_needs.why_not_runnable(design, NO_URING)


def test_harness_list_shows_factor_columns_and_pairs(tmp_path):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "harness"), "list", "--bin-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:7] == [
        "DESIGN",
        "SCHEDULER",
        "ACCEPT",
        "IO",
        "RUNTIME",
        "MAINTENANCE",
        "CONCURRENCY",
    ]
    tokio_ws = next(line for line in lines if line.startswith("tokio-ws "))
    assert "work-stealing" in tokio_ws and "shared-listener" in tokio_ws and "epoll" in tokio_ws
    # An empty bin dir: no binary, so the reason is said on the design's line.
    assert "not runnable here: " in tokio_ws
    async_std = next(line for line in lines if line.startswith("async-std-ws "))
    assert "discontinued upstream" in async_std
    assert "controlled pairs" in proc.stdout
    assert "  tokio-ws -> tokio-ws-reuseport: accept (shared-listener -> reuseport)" in lines
    structured = next(line for line in lines if line.startswith("tokio-tpc-structured "))
    assert "structured" in structured.split()
    assert "task-per-connection" in tokio_ws.split()
    assert (
        "  tokio-tpc -> tokio-tpc-structured: concurrency (task-per-connection -> structured)"
        in lines
    )


def test_list_names_an_unmet_runtime_need(monkeypatch):
    monkeypatch.setattr(listing, "why_not_runnable", _refusing_io_uring)
    designs = load_registry(DEFAULT_REGISTRY)
    uring = dataclasses.replace(designs["monoio-tpc"], command="true")
    epoll = dataclasses.replace(designs["tokio-ws"], command="true")
    assert listing.state(uring, Path("/")).startswith("not runnable here: io_uring_setup refused")
    assert listing.state(epoll, Path("/")) == "runnable"


def test_doctor_prints_needs_with_the_fix(monkeypatch):
    monkeypatch.setattr(
        doctor_cli, "machine_needs", lambda ds: runtime_needs.machine_needs(ds, NO_URING)
    )
    text = doctor_cli.format_needs(list(load_registry(DEFAULT_REGISTRY).values()))
    assert "problem  io_uring" in text and "monoio-tpc" in text
    assert "fix: allow io_uring_setup" in text
    assert "memlock" in text and "kernel" in text


def _config(servers: tuple[str, ...]) -> RunConfig:
    # _not_runnable reads only the servers of the config.
    return SimpleNamespace(servers=servers)  # type: ignore[return-value]


def test_run_refuses_a_named_design_and_leaves_it_out_of_all(monkeypatch, tmp_path):
    monkeypatch.setattr(run_session, "why_not_runnable", _refusing_io_uring)
    designs = load_registry(DEFAULT_REGISTRY)
    # Every binary "exists" so only the runtime need can refuse.
    designs = {n: dataclasses.replace(d, command="true") for n, d in designs.items()}
    with pytest.raises(HarnessError, match="design monoio-tpc cannot run here: io_uring_setup"):
        run_session.not_runnable(_config(("monoio-tpc",)), designs, tmp_path, explicit=True)
    left_out = run_session.not_runnable(
        _config(("tokio-ws", "monoio-tpc")), designs, tmp_path, explicit=False
    )
    assert list(left_out) == ["monoio-tpc"] and "EPERM" in left_out["monoio-tpc"]


def test_trials_parquet_carries_the_factors(tmp_path):
    spec = dataclasses.replace(
        store_spec(0),
        trial_id="0000-monoio-tpc-echo-k1-c2-b64-r0",
        server="monoio-tpc",
        design_family="thread-per-core",
        io_model="io_uring",
        scheduler="per-core",
        accept="reuseport",
        io="uring-oneshot",
        runtime="monoio",
        runtime_version="0.2.4",
    )
    store = RunStore(tmp_path / "run")
    store.write_manifest({"run_id": "r1", "plan": {}})
    for table, rows in trial_rows("r1", TrialResult(spec, "failed", "x", "t0", "t1")).items():
        store.add(table, rows)
    store.flush()
    trials = load_run(tmp_path / "run").trials
    assert list(trials.columns) == TABLES["trials"].names
    row = trials.iloc[0]
    assert (row["scheduler"], row["accept"], row["io"]) == (
        "per-core",
        "reuseport",
        "uring-oneshot",
    )
    assert (row["runtime"], row["runtime_version"]) == ("monoio", "0.2.4")
    assert trials["maintenance"].isna().all()  # undeclared: null, not a label


def test_run_names_the_unmet_need_and_exits_2(monkeypatch, tmp_path, capsys):
    from harness.cli import main

    monkeypatch.setattr(run_session, "why_not_runnable", _refusing_io_uring)
    (tmp_path / "monoio-tpc").write_text("")  # a "built" binary: only the need refuses it
    code = main(["run", "--servers", "monoio-tpc", "--dry-run", "--bin-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "design monoio-tpc cannot run here: io_uring_setup refused: EPERM" in err
    assert "fix: allow io_uring_setup" in err
