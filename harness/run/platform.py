"""What machine and software a run measured: a result without its platform is not a result."""

from __future__ import annotations

import os
import platform as _platform
import subprocess
from pathlib import Path
from typing import Any

from harness.plan.designs import REPO_ROOT
from harness.plan.topology import Topology


def _command_output(argv: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> dict[str, Any]:
    commit = _command_output(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT)
    status = _command_output(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT
    )
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def pyperf_metadata() -> dict[str, Any]:
    """pyperf's own collection (CPU model, frequency, governor, ASLR, load, ...)."""
    try:
        from pyperf._collect_metadata import collect_metadata  # pyperf has no public API for it
    except ImportError:
        return {}
    try:
        return {k: v for k, v in collect_metadata().items() if not k.startswith("python_")}
    except Exception as exc:  # metadata must never cost a run
        return {"error": f"pyperf metadata failed: {exc}"}


def virtualization() -> str:
    """What the machine runs under (systemd-detect-virt: kvm, docker, none...), with the CPU's
    own hypervisor flag; "unknown" when neither can be read."""
    found = []
    try:
        out = subprocess.run(
            ["systemd-detect-virt"], capture_output=True, text=True, timeout=10, check=False
        )
        if out.stdout.strip():
            found.append(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        if " hypervisor" in Path("/proc/cpuinfo").read_text():
            found.append("CPU flag hypervisor")
    except OSError:
        pass
    return ", ".join(found) or "unknown"


def collect(topology: Topology) -> dict[str, Any]:
    uname = _platform.uname()
    return {
        "kernel": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "hostname": uname.node,
        "python": _platform.python_version(),
        "rustc": _command_output(["rustc", "--version"]),
        "cargo": _command_output(["cargo", "--version"]),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "topology": topology.describe(),
        "virtualization": virtualization(),
        "git": git_commit(),
        "pyperf": pyperf_metadata(),
    }
