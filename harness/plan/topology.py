"""CPU topology read from sysfs: which logical CPUs exist, their physical core and NUMA node.

Reading from a root directory (not a hard-coded path) lets tests build fake topologies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SYSFS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Cpu:
    id: int
    package: int
    core: int  # core id, unique within its package
    node: int  # NUMA node, 0 when the kernel exposes none


@dataclass(frozen=True)
class Topology:
    cpus: tuple[Cpu, ...]

    @property
    def cpu_ids(self) -> list[int]:
        return [c.id for c in self.cpus]

    def physical_cores(self) -> list[tuple[int, ...]]:
        """Logical CPUs grouped by physical core (SMT siblings together), ordered by lowest id."""
        groups: dict[tuple[int, int], list[int]] = {}
        for cpu in self.cpus:
            groups.setdefault((cpu.package, cpu.core), []).append(cpu.id)
        return sorted((tuple(sorted(ids)) for ids in groups.values()), key=lambda g: g[0])

    def node_of(self, cpu_id: int) -> int:
        return next(c.node for c in self.cpus if c.id == cpu_id)

    @property
    def nodes(self) -> list[int]:
        return sorted({c.node for c in self.cpus})

    @property
    def smt(self) -> bool:
        return any(len(g) > 1 for g in self.physical_cores())

    def describe(self) -> dict[str, object]:
        return {
            "cpus": len(self.cpus),
            "physical_cores": len(self.physical_cores()),
            "numa_nodes": len(self.nodes),
            "smt": self.smt,
            "cores": [list(g) for g in self.physical_cores()],
        }


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's list format ("0-3,8,10-11"); duplicates are kept in order."""
    out: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad CPU list element {part!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad CPU range {part!r}")
        out.extend(range(lo, hi + 1))
    return out


def format_cpu_list(cpus: tuple[int, ...] | list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return default


def read_topology(root: Path = SYSFS_CPU) -> Topology:
    """Online CPUs with their package, core and NUMA node, as the kernel reports them."""
    online_file = root / "online"
    if online_file.exists():
        ids = parse_cpu_list(online_file.read_text())
    else:  # very old kernels or odd containers: every cpuN directory
        ids = sorted(int(p.name[3:]) for p in root.glob("cpu[0-9]*"))
    cpus = []
    for cpu_id in ids:
        base = root / f"cpu{cpu_id}"
        topo = base / "topology"
        node_dirs = sorted(base.glob("node[0-9]*"))
        node = int(node_dirs[0].name[4:]) if node_dirs else 0
        cpus.append(
            Cpu(
                id=cpu_id,
                package=_read_int(topo / "physical_package_id", 0),
                core=_read_int(topo / "core_id", cpu_id),
                node=node,
            )
        )
    return Topology(tuple(cpus))


def from_description(data: dict) -> Topology:
    """A topology saved as `Topology.describe()` (a run manifest's platform.topology, or the
    server host's in hosts.layout): physical cores as lists of their logical CPUs. NUMA nodes
    are not in it: every CPU is placed on node 0."""
    cores = data.get("cores")
    if not isinstance(cores, list) or not cores:
        raise ValueError("no `cores` list (a Topology.describe(): [[0, 8], [1, 9], ...])")
    cpus = [
        Cpu(id=int(cpu), package=0, core=i, node=0)
        for i, group in enumerate(cores)
        for cpu in (group if isinstance(group, list) else [group])
    ]
    if len({c.id for c in cpus}) != len(cpus):
        raise ValueError("a CPU is listed in two cores")
    return Topology(tuple(sorted(cpus, key=lambda c: c.id)))


def restrict(topology: Topology, allowed: set[int]) -> Topology:
    """Only the CPUs this process may run on (containers and cgroups can hide some)."""
    return Topology(tuple(c for c in topology.cpus if c.id in allowed))
