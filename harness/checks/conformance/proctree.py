"""The server's processes and threads as /proc shows them: how workers are found (see the
package docstring), what each may run on, how many descriptors the tree holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from harness.plan.topology import parse_cpu_list
from harness.run import sampler


def parse_cpus(cpus: str | Sequence[int]) -> tuple[int, ...]:
    """A CPU list as the harness writes it ('1', '0,1', '0-3') or a sequence of CPU numbers."""
    return tuple(parse_cpu_list(cpus)) if isinstance(cpus, str) else tuple(cpus)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def process_tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    return [p for p in sampler.descendants(pid) if _alive(p)]


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid."""
    out = []
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            if p != pid and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(p)
    return out


def _tasks(pid: int) -> list[tuple[int, str, set[int]]]:
    """(tid, comm, allowed CPUs) of each thread of pid."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda p: int(p.name)):
        try:
            comm = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        allowed = next(ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:"))
        out.append((int(task.name), comm, set(parse_cpus(allowed.split(":")[1].strip()))))
    return out


def _process_workers(pid: int) -> list[int]:
    """Worker processes: processes of the tree named worker*, else the main process's children
    (empty for a design whose workers are threads)."""
    tree = process_tree(pid)
    named = [p for p in tree if p != pid and _tasks(p) and _tasks(p)[0][1].startswith("worker")]
    if named:
        return named
    return _children(pid)


def worker_affinities(pid: int) -> tuple[str, list[tuple[int, set[int]]]]:
    """How workers were found, and (tid, allowed CPUs) of each. See the module docstring."""
    tasks = [t for p in process_tree(pid) for t in _tasks(p)]
    named = [(tid, cpus) for tid, comm, cpus in tasks if comm.startswith("worker")]
    if named:
        return "threads or processes named worker*", named
    children = _children(pid)
    return "child processes of the main process", [(p, _tasks(p)[0][2]) for p in children]


def fd_count(pid: int) -> int:
    """Open file descriptors of the whole process tree."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total
