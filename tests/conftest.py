"""Shared fixtures: fake sysfs CPU trees and the paths of the built binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = REPO / "target" / "release"


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
