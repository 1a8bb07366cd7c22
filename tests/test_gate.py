"""scripts/bench-gate end to end on two worktrees of this repository (issue 18): it fails when
the candidate's tokio-ws is made slower, and passes when nothing changed (or says that the
machine could not rank, naming the counts). The worktrees share this checkout's venv and
release build (--no-setup): set-up is `make setup`, tested by every fresh clone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, require_binaries

GATE = REPO / "scripts" / "bench-gate"
# Small enough for the suite: one design, open loop at a rate this 1 + 1 CPU machine holds,
# five repetitions a side (criterion's rule needs three ranked ones).
PLAN = """\
servers = ["tokio-ws"]
protocols = ["echo"]
cores = [1]
connections = [16]
mode = "open"
rates = [5000]
duration = 2
warmup = 0.5
repeat = 5
calibrate = false
"""
SLOWER = "--work fixed:15"  # 15 us of CPU per request on top of tokio-ws's own ~30 us


def _git(*args: str, cwd: Path = REPO) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    require_binaries("tokio-ws", "loadgen")
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv here (run `make setup`)")
    if subprocess.run(["git", "cat-file", "-e", f"HEAD:{GATE.relative_to(REPO)}"], cwd=REPO,
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("HEAD has no scripts/bench-gate yet: commit it to test the gate on HEAD")
    root = tmp_path_factory.mktemp("gate")
    base, candidate = root / "base", root / "candidate"
    try:
        for tree in (base, candidate):
            _git("worktree", "add", "--detach", str(tree), "HEAD")
            (tree / ".venv").symlink_to(REPO / ".venv")
            (tree / "target").symlink_to(REPO / "target")
        (root / "plan.toml").write_text(PLAN)
        yield base, candidate, root
    finally:
        for tree in (base, candidate):
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           capture_output=True, check=False)  # fmt: skip
        _git("worktree", "prune")


def _gate(base: Path, candidate: Path, root: Path, work: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GATE), "--base", str(base), "--candidate", str(candidate),
         "--plan", str(root / "plan.toml"), "--no-setup", "--work", str(root / work),
         "--summary", str(root / f"{work}.md")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("bench-gate: ")]
    return lines[-1] if lines else proc.stderr[-2000:]


def _skip_if_unranked(proc: subprocess.CompletedProcess) -> None:
    line = _last_line(proc)
    if proc.returncode == 2 and "could not rank" in line:
        pytest.skip(f"the machine left too few ranked trials: {line}")


def test_the_gate_fails_a_slower_candidate(trees: tuple[Path, Path, Path]) -> None:
    base, candidate, root = trees
    registry = candidate / "servers" / "registry.toml"
    original = registry.read_text()
    tokio_ws = "{bin_dir}/tokio-ws --protocol"
    assert original.count(tokio_ws) == 1
    registry.write_text(original.replace(tokio_ws, f"{{bin_dir}}/tokio-ws {SLOWER} --protocol"))
    try:
        proc = _gate(base, candidate, root, "slower")
    finally:
        registry.write_text(original)
    _skip_if_unranked(proc)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "FAILED" in _last_line(proc)
    summary = (root / "slower.md").read_text()
    assert "**FAILED**" in summary and "tokio-ws" in summary


def test_the_gate_passes_an_unchanged_candidate(trees: tuple[Path, Path, Path]) -> None:
    base, candidate, root = trees
    proc = _gate(base, candidate, root, "same")
    _skip_if_unranked(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _last_line(proc).startswith("bench-gate: passed")


def test_a_baseline_from_before_the_gate_is_said_as_such(tmp_path: Path) -> None:
    old = tmp_path / "old-checkout"
    old.mkdir()
    proc = subprocess.run(
        [sys.executable, str(GATE), "--base", str(old), "--candidate", str(REPO),
         "--work", str(tmp_path / "w"), "--no-setup"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0
    assert "predates the gate" in _last_line(proc)


def test_a_baseline_that_cannot_be_checked_out_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(GATE), "--base", "no-such-ref-anywhere", "--candidate", str(REPO),
         "--work", str(tmp_path / "w"), "--no-setup"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "cannot check out the baseline" in proc.stderr
