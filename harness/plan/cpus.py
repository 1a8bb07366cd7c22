"""CPU planning: the server gets k physical cores, the load generator disjoint ones.

Rules (docs/measurement rules 1): server and client never share a CPU nor split an SMT pair;
both sit on one NUMA node when one node is big enough; the server gets one hardware thread per
physical core and the siblings of its cores stay idle. CPU 0 (interrupts, housekeeping) goes to
the client side, so the server takes cores from the high end.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.plan.topology import Topology

CLIENT_PER_SERVER_CORE = 4  # monoio's published setup drove each server core with 4 client cores


@dataclass(frozen=True)
class CpuAssignment:
    server: tuple[int, ...]  # worker i is pinned to server[i]
    client: tuple[int, ...]  # load-generator thread i is pinned to client[i]
    oversubscribed: bool
    note: str = ""


def max_server_cores(topology: Topology) -> int:
    """The largest k that leaves at least one physical core for the load generator."""
    return max(0, len(topology.physical_cores()) - 1)


def default_core_counts(topology: Topology) -> list[int]:
    """Powers of two up to what fits, e.g. [1] on 2 CPUs, [1, 2, 4, 8] on 16."""
    top = max(1, max_server_cores(topology))
    counts, k = [], 1
    while k <= top:
        counts.append(k)
        k *= 2
    return counts


def _too_small(k: int, client: int | None, topology: Topology) -> HarnessError:
    cores = len(topology.physical_cores())
    need_client = client or 1
    fit = max_server_cores(topology)
    fewer = f"use --cores {fit} or fewer" if fit >= 1 else "use a machine with 2 or more cores"
    return HarnessError(
        f"--cores {k} needs {k + need_client} CPUs on {k + need_client} physical cores "
        f"({k} for the server, {need_client} for the load generator); this machine has "
        f"{len(topology.cpus)} CPUs on {cores} physical cores. To fix: {fewer}, or add "
        f"--oversubscribe to run anyway (those trials are marked oversubscribed)"
    )


def assign_cpus(
    topology: Topology, k: int, client_cpus: int | None = None, oversubscribe: bool = False
) -> CpuAssignment:
    """Pick CPUs for a k-core server and its load generator (client_cpus threads, default 4k
    capped by what is left)."""
    if k < 1:
        raise HarnessError(f"server cores must be at least 1, got {k}")
    nodes = topology.nodes
    # Try one NUMA node at a time, largest first, then the whole machine.
    candidates = sorted(nodes, key=lambda n: -sum(1 for c in topology.cpus if c.node == n))
    groups_all = topology.physical_cores()
    for node in [*candidates, None]:
        groups = [g for g in groups_all if node is None or topology.node_of(g[0]) == node]
        if len(groups) < k + 1:
            continue
        server_groups = groups[-k:]
        client_pool = [cpu for g in groups[: len(groups) - k] for cpu in g]
        want = client_cpus if client_cpus is not None else CLIENT_PER_SERVER_CORE * k
        if client_cpus is not None and len(client_pool) < client_cpus:
            continue
        # Server: the first hardware thread of each of its cores, so workers never share a core.
        server = tuple(g[0] for g in server_groups)
        # Client: whole cores first (one thread per core), then their SMT siblings.
        by_core = [g[0] for g in groups[: len(groups) - k]] + [
            cpu for g in groups[: len(groups) - k] for cpu in g[1:]
        ]
        client = tuple(by_core[: min(want, len(client_pool))])
        note = "" if node is not None or len(nodes) == 1 else "server and client span NUMA nodes"
        return CpuAssignment(server=server, client=client, oversubscribed=False, note=note)
    if not oversubscribe:
        raise _too_small(k, client_cpus, topology)
    # Oversubscribed: cycle through every CPU from the high end for the server, the client takes
    # the lowest ones; CPUs are shared, and every such trial says so.
    ids = topology.cpu_ids
    server = tuple(ids[-1 - (i % len(ids))] for i in range(k))
    n_client = client_cpus or 1
    client = tuple(ids[i % len(ids)] for i in range(n_client))
    shared = sorted(set(server) & set(client))
    note = f"{k} server workers on {len(set(server))} CPUs"
    if shared:
        note += f"; CPUs {','.join(map(str, shared))} shared with the load generator"
    return CpuAssignment(server=server, client=client, oversubscribed=True, note=note)
