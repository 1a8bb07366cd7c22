"""CPU planning across hosts (docs/multi-host.md): the server on its own host, one load generator
per client host, each placed from that host's own topology (read over SSH by the caller).

Pure: the topologies come in, CPU assignments come out. The server host runs only the server,
so `--cores k` needs k physical cores there (one hardware thread each, siblings left idle,
taken from the high end as on one machine); a client host lends the load generator its CPUs,
whole cores first, then their SMT siblings, at most `--client-cpus` of them per host. A trial's
connections and offered rate are shared out across client hosts in proportion to the client
CPUs each one uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.plan.cpus import CpuAssignment
from harness.plan.hosts import LOCAL, parse_host
from harness.plan.topology import Topology, format_cpu_list


def is_multihost(server_host: str, client_hosts: Sequence[str]) -> bool:
    """True when any side of the benchmark is on another host."""
    return server_host != LOCAL or any(h != LOCAL for h in client_hosts)


def check_hosts(server_host: str, client_hosts: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The hosts in canonical spelling; one line for a bad combination."""
    server = str(parse_host(server_host))
    clients = tuple(str(parse_host(h)) for h in client_hosts) or (LOCAL,)
    if not is_multihost(server, clients):
        return server, clients
    if len(set(clients)) != len(clients):
        raise HarnessError(
            f"--client-host names a host twice ({', '.join(clients)}); give each once"
        )
    if server in clients:
        raise HarnessError(
            f"{server} is both the server host and a client host; put the load generators on "
            "other hosts (or run everything on one machine without --server-host/--client-host)"
        )
    return server, clients


def server_assignment(
    topology: Topology, host: str, k: int, oversubscribe: bool = False
) -> tuple[int, ...]:
    """The server's k CPUs on a host of its own: the first thread of k physical cores from the
    high end (CPU 0 and its interrupts last)."""
    if k < 1:
        raise HarnessError(f"server cores must be at least 1, got {k}")
    groups = topology.physical_cores()
    if len(groups) >= k:
        return tuple(g[0] for g in groups[-k:])
    if not oversubscribe:
        raise HarnessError(
            f"--cores {k} needs {k} physical cores on the server host {host}; it has "
            f"{len(topology.cpus)} CPUs on {len(groups)} physical cores (those a process started "
            f"over SSH may use). To fix: use --cores {len(groups)} or fewer, or add "
            "--oversubscribe to run anyway (those trials are marked oversubscribed)"
        )
    ids = topology.cpu_ids
    return tuple(ids[-1 - (i % len(ids))] for i in range(k))


def client_cpus(topology: Topology, cap: int | None) -> tuple[int, ...]:
    """A client host's CPUs for the load generator: whole cores first, then SMT siblings."""
    groups = topology.physical_cores()
    ordered = [g[0] for g in groups] + [cpu for g in groups for cpu in g[1:]]
    return tuple(ordered[:cap] if cap is not None else ordered)


def split_counts(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """total shared in proportion to weights (largest remainder; ties to the first host)."""
    weight = sum(weights.values())
    if weight <= 0:
        raise ValueError("no weight to split by")
    exact = {h: total * w / weight for h, w in weights.items()}
    out = {h: int(v) for h, v in exact.items()}
    left = total - sum(out.values())
    for h in sorted(exact, key=lambda h: -(exact[h] - out[h]))[:left]:
        out[h] += 1
    return out


@dataclass(frozen=True)
class ClientShare:
    """One client host's part of a trial: its CPUs (one load-generator thread each, at most one
    per connection), its connections and its offered rate (None: closed loop)."""

    host: str
    cpus: tuple[int, ...]
    connections: int
    rate: float | None

    @property
    def threads(self) -> int:
        return min(len(self.cpus), self.connections)


@dataclass(frozen=True)
class HostLayout:
    """Where a multi-host run puts things; stored in the manifest (`hosts.layout`)."""

    server_host: str
    client_hosts: tuple[str, ...]
    client_cpus: tuple[tuple[int, ...], ...]  # per client host, in client_hosts order
    server_topology: dict[str, object]
    client_topologies: tuple[dict[str, object], ...]

    def shares(self, connections: int, rate: float | None) -> list[ClientShare]:
        """A trial's connections and rate across client hosts, by the CPUs each one uses."""
        if connections < len(self.client_hosts):
            raise HarnessError(
                f"--connections {connections} is fewer than the {len(self.client_hosts)} client "
                "hosts; give each client host at least one connection"
            )
        cpus = dict(zip(self.client_hosts, self.client_cpus, strict=True))
        conns = split_counts(connections, {h: len(c) for h, c in cpus.items()})
        used = {h: min(len(cpus[h]), conns[h]) for h in self.client_hosts}
        total_used = sum(used.values())
        return [
            ClientShare(
                host=h,
                cpus=cpus[h][: used[h]],
                connections=conns[h],
                rate=None if rate is None else rate * used[h] / total_used,
            )
            for h in self.client_hosts
        ]

    def assignment(self, server: tuple[int, ...], oversubscribed: bool) -> CpuAssignment:
        """The trial's CpuAssignment: server CPUs on the server host; `client` lists every
        client host's CPUs in host order (their count is the load generators' threads), and
        the note says which belong to which host."""
        per_host = "; ".join(
            f"{h} {format_cpu_list(c)}"
            for h, c in zip(self.client_hosts, self.client_cpus, strict=True)
        )
        return CpuAssignment(
            server=server,
            client=tuple(cpu for c in self.client_cpus for cpu in c),
            oversubscribed=oversubscribed,
            note=f"server on {self.server_host}; client CPUs per host: {per_host}",
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "server_host": self.server_host,
            "client_hosts": list(self.client_hosts),
            "client_cpus": {
                h: list(c) for h, c in zip(self.client_hosts, self.client_cpus, strict=True)
            },
            "server_topology": self.server_topology,
            "client_topologies": dict(zip(self.client_hosts, self.client_topologies, strict=True)),
        }


def layout(
    server_host: str,
    server_topology: Topology,
    client_topologies: Mapping[str, Topology],
    client_cap: int | None,
) -> HostLayout:
    """The run's layout from each host's topology."""
    hosts = tuple(client_topologies)
    cpus = tuple(client_cpus(client_topologies[h], client_cap) for h in hosts)
    for h, c in zip(hosts, cpus, strict=True):
        if not c:
            raise HarnessError(f"{h}: no CPU a process started over SSH may use")
    return HostLayout(
        server_host=server_host,
        client_hosts=hosts,
        client_cpus=cpus,
        server_topology=server_topology.describe(),
        client_topologies=tuple(client_topologies[h].describe() for h in hosts),
    )


def assigner(layout_: HostLayout, server_topology: Topology, oversubscribe: bool):
    """For make_plan: k -> the CpuAssignment of a k-core server on the server host."""

    def assign(k: int) -> CpuAssignment:
        groups = len(server_topology.physical_cores())
        server = server_assignment(server_topology, layout_.server_host, k, oversubscribe)
        return layout_.assignment(server, oversubscribed=k > groups)

    return assign
