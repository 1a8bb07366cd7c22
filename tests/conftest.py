"""Shared fixtures: fake sysfs CPU trees, the paths of the built binaries, the synthetic run
built once per session (tests/fake_run.py), no thread left behind; and Ctrl-C as a terminal
sends it (below)."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import BIN_DIR, REPO, run_harness

if TYPE_CHECKING:  # fake_run imports the harness: only the tests that use it pay for that
    from fake_run import FakeRun

__all__ = ["BIN_DIR", "REPO", "build_sysfs", "require_binaries"]

# A test run started as a background job of a non-interactive shell (`make test &`, some CI
# runners) inherits SIGINT ignored, and so would every process the tests start: the Ctrl-C tests
# (test_faults, test_multihost, test_multihost_run) would find the harness ignoring the signal,
# as it must when its user chose that. They stand for a Ctrl-C at a terminal, where nobody did:
# with a handler here, the processes they start get the default disposition at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def build_sysfs(root: Path, cpus: list[tuple[int, int, int, int]]) -> Path:
    """A /sys/devices/system/cpu look-alike; cpus are (id, package, core, node)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "online").write_text(",".join(str(c[0]) for c in cpus) + "\n")
    siblings: dict[tuple[int, int], list[int]] = {}
    for cpu, pkg, core, _ in cpus:
        siblings.setdefault((pkg, core), []).append(cpu)
    for cpu, pkg, core, node in cpus:
        topo = root / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{pkg}\n")
        (topo / "core_id").write_text(f"{core}\n")
        (topo / "thread_siblings_list").write_text(",".join(map(str, siblings[(pkg, core)])))
        (root / f"cpu{cpu}" / f"node{node}").mkdir()
    return root


@pytest.fixture
def sysfs(tmp_path: Path):
    return lambda cpus: build_sysfs(tmp_path / "cpu", cpus)


def require_binaries(*names: str) -> None:
    missing = [n for n in names if not (BIN_DIR / n).is_file()]
    if missing:
        pytest.skip(f"not built: {', '.join(missing)} (run `make build`)")


@pytest.fixture
def no_leftover_threads():
    """The test leaves no thread of this process running (its test servers stopped)."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads left running: {leftover}"


def _tree_state(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeRun]:
    """The default synthetic run of tests/fake_run.py (`build_run()`), built once per session
    and shared: read it, never write into it (`fake_run_copy` gives a test its own). Checked
    unchanged at the end of the session."""
    from fake_run import RUN_ID, build_run

    run = build_run(tmp_path_factory.mktemp("fake-run") / RUN_ID)
    before = _tree_state(run.directory)
    yield run
    assert _tree_state(run.directory) == before, f"a test wrote into the shared {run.directory}"


@pytest.fixture
def fake_run_copy(fake_run: FakeRun, tmp_path: Path) -> FakeRun:
    """A test's own copy of the shared fake run (results/<RUN_ID> under its tmp_path)."""
    from fake_run import RUN_ID

    directory = tmp_path / "results" / RUN_ID
    shutil.copytree(fake_run.directory, directory)
    return dataclasses.replace(fake_run, directory=directory)


# `harness model` small on purpose (the simulation is seeded): the tests check the plumbing and
# the charts, not the simulation's accuracy.
MODEL_SMALL = ["--customers", "400", "--replications", "2", "--cores", "1,2"]


@pytest.fixture(scope="session")
def modelled_run(
    fake_run: FakeRun, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A copy of the shared fake run after `harness model` (MODEL_SMALL), once per session:
    its directory and the finished command. Read it, never write into it."""
    from fake_run import RUN_ID

    run_dir = tmp_path_factory.mktemp("modelled") / RUN_ID
    shutil.copytree(fake_run.directory, run_dir)
    return run_dir, run_harness("model", str(run_dir), *MODEL_SMALL, timeout=300)


# --mode closed: the plan as given (no calibration), so the end-to-end tests check the pipeline,
# quickly; the headline pair only (a later --servers wins).
RUN_FAST = ["--servers", "tokio-ws,tokio-tpc", "--cores", "1", "--duration", "2", "--warmup", "1",
            "--repeat", "1", "--mode", "closed"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RealRun:
    out: Path  # --out: the run directory is its one subdirectory
    reports: Path  # --reports
    proc: subprocess.CompletedProcess[str]  # the finished `harness run`


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRun]:
    """One real `harness run` RUN_FAST (tokio-ws and tokio-tpc on loopback, one trial each) and
    its report, once per session, for the tests that only read a run (each checks its exit
    code); a test that changes the run works on a copy. Checked unchanged at the end."""
    require_binaries("loadgen", "tokio-ws", "tokio-tpc")
    root = tmp_path_factory.mktemp("real-run")
    out, reports = root / "results", root / "reports"
    proc = run_harness("run", *RUN_FAST, "--out", str(out), "--reports", str(reports))
    before = _tree_state(root)
    yield RealRun(out, reports, proc)
    assert _tree_state(root) == before, f"a test wrote into the shared {root}"
