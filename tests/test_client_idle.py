"""The load generator's CPUs poll when idle during a trial and get their setting back after it
(harness.run.client_idle; docs/fairness.md, "Waking the client").

On a fake sysfs tree: the value written and restored, holds that overlap (two runs on one CPU,
or a run killed before it restored), a CPU without a polling state, a file that cannot be
written, an exception inside the block. On the real machine: a real `harness run` records how
its client CPUs idled, and the report says it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import RealRun
from helpers import REPO

from harness.run.client_idle import (
    POLL,
    ClientIdle,
    polling_when_idle,
    qos_file,
    release_abandoned,
)


def _cpus(root: Path, count: int = 2, state0: str = "POLL", value: str = "0") -> Path:
    for cpu in range(count):
        (root / f"cpu{cpu}" / "cpuidle" / "state0").mkdir(parents=True)
        (root / f"cpu{cpu}" / "cpuidle" / "state0" / "name").write_text(state0 + "\n")
        (root / f"cpu{cpu}" / "power").mkdir(parents=True)
        qos_file(cpu, root).write_text(value + "\n")
    return root


def _value(root: Path, cpu: int) -> str:
    return qos_file(cpu, root).read_text().strip()


def test_the_cpus_poll_inside_the_block_and_get_their_value_back(tmp_path: Path) -> None:
    root, state = _cpus(tmp_path / "sys", value="25"), tmp_path / "state"
    with polling_when_idle([1], root, state) as idle:
        assert idle == ClientIdle("poll")
        assert (_value(root, 0), _value(root, 1)) == ("25", POLL)  # only the client's CPU
    assert (_value(root, 0), _value(root, 1)) == ("25", "25")
    assert not list(state.glob("cpu*"))  # nothing held, nothing saved


def test_overlapping_holds_restore_when_the_last_one_leaves(tmp_path: Path) -> None:
    root, state = _cpus(tmp_path / "sys"), tmp_path / "state"
    first = polling_when_idle([0, 1], root, state)
    first.__enter__()
    with polling_when_idle([1], root, state):
        assert _value(root, 1) == POLL
    assert _value(root, 1) == POLL  # the first hold is still on
    first.__exit__(None, None, None)
    assert (_value(root, 0), _value(root, 1)) == ("0", "0")  # the value from before the first


def test_a_killed_runs_hold_does_not_keep_the_cpu_polling(tmp_path: Path) -> None:
    """A run killed inside its block left the CPU at n/a, its saved value and its marker: the
    next hold finds the marker's process gone, and restores the saved value at its end."""
    root, state = _cpus(tmp_path / "sys"), tmp_path / "state"
    state.mkdir()
    dead = max(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()) + 10_000
    (state / "cpu0.before").write_text("0")
    (state / f"cpu0.held.{dead}.0").touch()
    qos_file(0, root).write_text(POLL)
    with polling_when_idle([0], root, state):
        assert _value(root, 0) == POLL
    assert _value(root, 0) == "0"
    assert not (state / f"cpu0.held.{dead}.0").exists()


def test_a_killed_runs_setting_is_put_back_before_the_next_trial_holds_anything(
    tmp_path: Path,
) -> None:
    """The next trial may use other CPUs: every CPU left by a dead holder is put back first."""
    root, state = _cpus(tmp_path / "sys"), tmp_path / "state"
    state.mkdir()
    (state / "lock").touch()
    dead = max(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()) + 10_000
    (state / "cpu1.before").write_text("7")
    (state / f"cpu1.held.{dead}.3").touch()
    qos_file(1, root).write_text(POLL)
    assert release_abandoned(root, state) == [1]
    assert _value(root, 1) == "7" and not list(state.glob("cpu1*"))
    with polling_when_idle([0], root, state):
        assert (_value(root, 0), _value(root, 1)) == (POLL, "7")


def test_an_exception_inside_the_block_still_restores(tmp_path: Path) -> None:
    root, state = _cpus(tmp_path / "sys"), tmp_path / "state"
    with pytest.raises(KeyboardInterrupt), polling_when_idle([0], root, state):
        raise KeyboardInterrupt
    assert _value(root, 0) == "0"


def test_a_cpu_without_a_polling_state_is_left_alone_and_says_why(tmp_path: Path) -> None:
    root, state = _cpus(tmp_path / "sys", state0="C1"), tmp_path / "state"
    with polling_when_idle([0], root, state) as idle:
        assert idle.mode == "system" and "no cpuidle polling state" in idle.why
        assert _value(root, 0) == "0"


def test_a_setting_that_cannot_be_written_is_left_alone_and_says_why(tmp_path: Path) -> None:
    """The second CPU's file cannot be written (a directory here; not root, on a real machine):
    nothing stays changed, the first CPU included."""
    root, state = _cpus(tmp_path / "sys"), tmp_path / "state"
    qos_file(1, root).unlink()
    qos_file(1, root).mkdir()
    with polling_when_idle([0, 1], root, state) as idle:
        assert idle.mode == "system" and str(qos_file(1, root)) in idle.why
        assert _value(root, 0) == "0"
    assert _value(root, 0) == "0"


def test_a_real_run_records_how_its_client_cpus_idled(real_run: RealRun) -> None:
    assert real_run.proc.returncode == 0, real_run.proc.stderr
    trials = pd.concat(pd.read_parquet(p) for p in real_run.out.glob("*/trials.parquet"))
    ok = trials[trials["status"] == "ok"]
    assert len(ok) and set(ok["client_idle"]) <= {"poll", "system"}
    system = ok[ok["client_idle"] == "system"]
    assert system["client_idle_why"].notna().all()  # never "system" without the reason
    cpu0 = Path("/sys/devices/system/cpu/cpu0")
    can_poll = (cpu0 / "cpuidle/state0/name").exists() and os.access(
        cpu0 / "power/pm_qos_resume_latency_us", os.W_OK
    )
    if can_poll:
        assert set(ok["client_idle"]) == {"poll"}
    html = "".join(p.read_text() for p in real_run.reports.rglob("*.html"))
    assert "client CPUs when idle" in html


def test_a_user_who_cannot_write_the_setting_gets_the_reason_not_an_error(
    request: pytest.FixtureRequest,
) -> None:
    """Not root (here: nobody, while root's state directory exists): the trial goes on with the
    CPUs as they were, and says why."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as nobody")
    shared = Path(tempfile.mkdtemp(prefix="client-idle-"))  # pytest's tmp_path is root's only
    shared.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(shared))
    root, state = _cpus(shared / "sys"), shared / "state"
    with polling_when_idle([0], root, state):  # root's lock and state exist now
        pass
    code = (
        "from pathlib import Path; from harness.run.client_idle import polling_when_idle\n"
        f"with polling_when_idle([0], Path({str(root)!r}), Path({str(state)!r})) as idle:\n"
        "    print(idle.mode, idle.why)\n"
    )
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    out = subprocess.run(
        [*nobody, sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("system ") and "not writable (run as root)" in out.stdout
    assert _value(root, 0) == "0"
