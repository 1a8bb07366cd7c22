"""Shared fixtures: fake sysfs CPU trees and the paths of the built binaries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import BIN_DIR, REPO

__all__ = ["BIN_DIR", "REPO", "build_sysfs", "require_binaries"]


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
