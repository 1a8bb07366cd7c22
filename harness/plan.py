"""Stage 1: turn the command line into a plan, a list of trials in the order they will run.

Designs are interleaved (A B A B ...) inside every repetition so that drift of the machine (heat,
other tenants) hits every design alike; with --seed the order inside each group is shuffled
reproducibly instead.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.cpus import CpuAssignment, assign_cpus
from harness.designs import Design
from harness.errors import HarnessError
from harness.topology import Topology

# Time a trial costs beyond warm-up + duration: start, READY, shutdown, storing.
TRIAL_OVERHEAD_S = 1.5


@dataclass(frozen=True)
class RunConfig:
    servers: tuple[str, ...]
    protocols: tuple[str, ...]
    cores: tuple[int, ...]
    connections: tuple[int, ...]
    sizes: tuple[int, ...]
    duration_s: float
    warmup_s: float
    repeat: int
    oversubscribe: bool
    client_cpus: int | None
    seed: int | None
    timeout_s: float = 2.0


@dataclass(frozen=True)
class TrialSpec:
    index: int
    trial_id: str
    server: str
    design_family: str
    io_model: str
    protocol: str
    server_cores: int
    connections: int
    size_bytes: int
    repetition: int
    warmup_s: float
    duration_s: float
    timeout_s: float
    cpus: CpuAssignment

    @property
    def client_threads(self) -> int:
        # A load-generator thread without a connection would be idle: never more threads than
        # connections.
        return min(len(self.cpus.client), self.connections)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    trials: tuple[TrialSpec, ...]

    def estimated_seconds(self) -> float:
        return sum(t.warmup_s + t.duration_s + TRIAL_OVERHEAD_S for t in self.trials)

    def to_dict(self) -> dict[str, object]:
        return {"config": asdict(self.config), "trials": [t.to_dict() for t in self.trials]}


def validate(config: RunConfig, designs: dict[str, Design]) -> None:
    if not config.servers:
        raise HarnessError("no server design selected; pick some with --servers (see harness list)")
    for name in config.servers:
        if name not in designs:
            known = ", ".join(sorted(designs))
            raise HarnessError(
                f"unknown server {name!r}; known designs: {known} (see harness list)"
            )
    for proto in config.protocols:
        if not any(proto in designs[s].protocols for s in config.servers):
            raise HarnessError(f"no selected design speaks --protocol {proto}; choose echo")
    if config.duration_s <= 0:
        raise HarnessError(f"--duration must be positive, got {config.duration_s}")
    if config.warmup_s < 0:
        raise HarnessError(f"--warmup must be 0 or more, got {config.warmup_s}")
    if config.repeat < 1:
        raise HarnessError(f"--repeat must be at least 1, got {config.repeat}")
    if config.client_cpus is not None and config.client_cpus < 1:
        raise HarnessError(f"--client-cpus must be at least 1, got {config.client_cpus}")
    for n in config.connections:
        if n < 1:
            raise HarnessError(f"--connections must be at least 1, got {n}")
    for n in config.sizes:
        if not 1 <= n <= 16 * 1024 * 1024:
            raise HarnessError(f"--size must be 1 .. 16777216 bytes, got {n}")


def make_plan(config: RunConfig, topology: Topology, designs: dict[str, Design]) -> Plan:
    validate(config, designs)
    # Largest first, so that an error names the core count that is furthest out of reach.
    assignments = {
        k: assign_cpus(topology, k, config.client_cpus, config.oversubscribe)
        for k in sorted(set(config.cores), reverse=True)
    }
    rng = random.Random(config.seed) if config.seed is not None else None
    trials: list[TrialSpec] = []
    for rep, proto, k, conns, size in itertools.product(
        range(config.repeat), config.protocols, config.cores, config.connections, config.sizes
    ):
        group = [s for s in config.servers if proto in designs[s].protocols]
        if rng is not None:
            rng.shuffle(group)
        for server in group:
            d = designs[server]
            index = len(trials)
            trials.append(
                TrialSpec(
                    index=index,
                    trial_id=f"{index:04d}-{server}-{proto}-k{k}-c{conns}-b{size}-r{rep}",
                    server=server,
                    design_family=d.family,
                    io_model=d.io_model,
                    protocol=proto,
                    server_cores=k,
                    connections=conns,
                    size_bytes=size,
                    repetition=rep,
                    warmup_s=config.warmup_s,
                    duration_s=config.duration_s,
                    timeout_s=config.timeout_s,
                    cpus=assignments[k],
                )
            )
    return Plan(config=config, trials=tuple(trials))


def plan_from_dict(data: dict) -> Plan:
    """Rebuild a plan stored in a manifest (for reports and, later, --resume)."""
    cfg = data["config"]
    config = RunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    trials = []
    for t in data["trials"]:
        cpus = t["cpus"]
        assignment = CpuAssignment(
            server=tuple(cpus["server"]),
            client=tuple(cpus["client"]),
            oversubscribed=cpus["oversubscribed"],
            note=cpus.get("note", ""),
        )
        trials.append(TrialSpec(**{**t, "cpus": assignment}))
    return Plan(config=config, trials=tuple(trials))


def resolve_out(path: Path) -> Path:
    """Make sure results can be written there before anything runs."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(
            f"cannot write results to --out {path}: {exc.strerror or exc}; "
            "choose a writable directory with --out DIR"
        ) from exc
    return path
