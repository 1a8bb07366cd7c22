"""Stage 1: turn the command line into a plan, a list of trials in the order they will run.

Designs are interleaved (A B A B ...) inside every repetition so that drift of the machine (heat,
other tenants) hits every design alike; with --seed the order inside each group is shuffled
reproducibly instead.

A rate sweep (--rate-sweep) measures each configuration's closed-loop capacity first, in a
trial of its own, then offers fractions of it open loop; those trials carry `rate_fraction`
and get their `rate` when the capacity trial has run (execute.resolve_rate).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.plan.cpus import CpuAssignment, assign_cpus
from harness.plan.designs import Design
from harness.plan.numbers import check_numbers
from harness.plan.settings import SETTING_NAMES, Workload
from harness.plan.topology import Topology

# Time a trial costs beyond warm-up + duration: start, READY, shutdown, storing.
TRIAL_OVERHEAD_S = 1.5
DEFAULT_SEED = 1  # load-generator arrivals and server work draws when --seed is not given
MAX_SIZE = 16 * 1024 * 1024
MAX_WORK_US = 1_000_000  # the servers' bound on one drawn burn (bench_core::work::MAX_US)
WORK_KINDS = {"none": 0, "fixed": 1, "exp": 1, "bimodal": 3, "lognormal": 2}


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
    mode: str = "closed"  # closed | open
    rates: tuple[float, ...] = ()  # open loop: offered requests per second
    rate_sweep: tuple[float, ...] = ()  # open loop: fractions of the measured capacity
    arrival: str = "poisson"
    pipeline: tuple[int, ...] = (1,)
    works: tuple[str, ...] = ("none",)
    hot_fraction: float | None = None
    hot_share: float | None = None
    # Churn: each value is a workload, a new connection after that many requests; None keeps
    # connections open (keep-alive). Several values: one configuration each.
    requests_per_connection: tuple[int | None, ...] = (None,)
    # What the run measures (plan/measure.py): auto | fixed-rate | server-bound | closed-loop |
    # as-given (the flags exactly). Calibration first unless calibrate is False.
    measure: str = "as-given"
    calibrate: bool = True
    # Open loop, set from a calibration: per configuration group (protocol, cores, connections,
    # size, pipeline, work) its offered rates and, when not empty, the only designs it runs.
    group_rates: tuple[tuple[tuple, tuple[float, ...], tuple[str, ...]], ...] = ()
    # Fixed-rate: the common rates as fractions of the smallest closed-loop capacity compared.
    rate_fractions: tuple[float, ...] = (0.5,)
    # Several hosts (docs/multi-host.md; harness.plan.hosts_plan): SSH destinations or "local".
    server_host: str = "local"
    client_hosts: tuple[str, ...] = ()
    remote_bin: str | None = None  # the load generator's path on the client hosts
    ssh_key: str | None = None  # an SSH private key (default: agent and ~/.ssh keys)
    known_hosts: str | None = None  # a known_hosts file (default: ~/.ssh/known_hosts)
    # Connections per server core (monoio's benchmark scales them with the cores): when set, a
    # k-core trial opens c x k connections for each c, and `connections` is not used.
    connections_per_core: tuple[int, ...] = ()
    # Core counts that do not fit the machine (or the hosts) are left out and named in the plan
    # (Plan.dropped_cores) instead of refusing the whole run: a profile of published core counts.
    drop_unfit_cores: bool = False
    # The published benchmark this run replays (harness/analysis/published/NAME.toml), if any.
    published: str | None = None


@dataclass(frozen=True, kw_only=True)
class TrialSpec(Workload):
    """One trial: its workload (plan/settings.py), the design, the CPUs and the offered load."""

    index: int
    trial_id: str
    server: str
    design_family: str
    io_model: str
    repetition: int
    warmup_s: float
    duration_s: float
    timeout_s: float
    cpus: CpuAssignment
    rate: float | None = None
    rate_fraction: float | None = None  # sweep: rate = fraction x capacity, set at run time
    capacity_trial: str | None = None  # sweep: the closed-loop trial whose throughput is 1.0x
    arrival: str = "poisson"
    hot_fraction: float | None = None
    hot_share: float | None = None
    seed: int = DEFAULT_SEED
    # The design's factors (registry), stored per trial so tables group by them; None: undeclared
    # (or a manifest written before they existed).
    scheduler: str | None = None
    accept: str | None = None
    io: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    maintenance: str | None = None
    concurrency: str | None = None  # task-per-connection | structured | event-loop

    @property
    def client_threads(self) -> int:
        # A load-generator thread without a connection would be idle: never more threads than
        # connections.
        return min(len(self.cpus.client), self.connections)

    @property
    def config_key(self) -> tuple:
        """What makes two trials repetitions of one configuration."""
        workload = tuple(getattr(self, name) for name in SETTING_NAMES)
        return (self.server, *workload, self.rate_fraction or self.rate)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    trials: tuple[TrialSpec, ...]
    # (core count, why it does not fit): left out under config.drop_unfit_cores.
    dropped_cores: tuple[tuple[int, str], ...] = ()

    def estimated_seconds(self) -> float:
        return sum(t.warmup_s + t.duration_s + TRIAL_OVERHEAD_S for t in self.trials)

    def to_dict(self) -> dict[str, object]:
        return {
            "config": asdict(self.config),
            "trials": [t.to_dict() for t in self.trials],
            "dropped_cores": [list(d) for d in self.dropped_cores],
        }


def check_work(dist: str) -> None:
    kind, *params = dist.split(":")
    if kind not in WORK_KINDS or len(params) != WORK_KINDS[kind]:
        raise HarnessError(
            f"--work {dist!r} is not a distribution; use none, fixed:US, exp:MEAN_US, "
            "bimodal:US1:US2:P2 or lognormal:MEDIAN_US:SIGMA"
        )
    try:
        values = [float(p) for p in params]
    except ValueError:
        raise HarnessError(f"--work {dist!r}: parameters must be numbers") from None
    if any(not v >= 0 or v == float("inf") for v in values) or (  # NaN and inf too
        kind == "bimodal" and not 0 <= values[2] <= 1
    ):
        raise HarnessError(f"--work {dist!r}: parameters must be finite and >= 0 (and P2 in 0..1)")
    durations = values[:2] if kind == "bimodal" else values[:1]
    if any(v > MAX_WORK_US for v in durations):
        raise HarnessError(f"--work {dist!r}: durations are at most {MAX_WORK_US:,} us (1 s)")


def validate(config: RunConfig, designs: dict[str, Design]) -> None:
    """A configuration that cannot run is one line naming the option and the fix."""
    _validate_designs(config, designs)
    check_numbers(vars(config))  # NaN, infinities, negatives, seeds outside 0..2^64-1
    _validate_counts(config)
    _validate_load(config)
    for dist in config.works:
        check_work(dist)
        if dist != "none":
            unable = [s for s in config.servers if not designs[s].work]
            if unable:
                raise HarnessError(
                    f"--work {dist} needs designs that burn CPU per request; "
                    f"{', '.join(unable)} cannot: leave them out of --servers"
                )


def _validate_designs(config: RunConfig, designs: dict[str, Design]) -> None:
    if not config.servers:
        raise HarnessError("no server design selected; pick some with --servers (see harness list)")
    for name in config.servers:
        if name not in designs:
            known = ", ".join(sorted(designs))
            raise HarnessError(
                f"unknown server {name!r}; known designs: {known} (see harness list)"
            )
    for proto in config.protocols:
        if proto not in ("echo", "http"):
            raise HarnessError(f"unknown protocol {proto!r}; use --protocols echo,http")
        if not any(proto in designs[s].protocols for s in config.servers):
            speakers = ", ".join(n for n, d in designs.items() if proto in d.protocols)
            raise HarnessError(
                f"no selected design speaks --protocols {proto}; designs that do: {speakers}"
            )


def _validate_counts(config: RunConfig) -> None:
    if config.duration_s <= 0:
        raise HarnessError(f"--duration must be positive, got {config.duration_s}")
    if config.warmup_s < 0:
        raise HarnessError(f"--warmup must be 0 or more, got {config.warmup_s}")
    if config.repeat < 1:
        raise HarnessError(f"--repeat must be at least 1, got {config.repeat}")
    if config.client_cpus is not None and config.client_cpus < 1:
        raise HarnessError(f"--client-cpus must be at least 1, got {config.client_cpus}")
    if any(n < 1 for n in config.connections_per_core):
        raise HarnessError(
            f"--connections-per-core must be at least 1, got {config.connections_per_core}"
        )
    if any(n < 1 for n in config.connections):
        raise HarnessError(f"--connections must be at least 1, got {config.connections}")
    if any(not 1 <= n <= MAX_SIZE for n in config.sizes):
        raise HarnessError(f"--size must be 1 .. {MAX_SIZE} bytes, got {config.sizes}")
    if any(p < 1 for p in config.pipeline):
        raise HarnessError(f"--pipeline must be at least 1, got {config.pipeline}")
    if any(n is not None and n < 1 for n in config.requests_per_connection):
        raise HarnessError("--requests-per-connection must be at least 1 (or keep-alive)")


def _validate_load(config: RunConfig) -> None:
    if config.mode not in ("closed", "open"):
        raise HarnessError(f"--mode must be closed or open, got {config.mode!r}")
    if config.mode == "open" and not (config.rates or config.rate_sweep or config.group_rates):
        raise HarnessError("--mode open needs --rates R1,R2,... or --rate-sweep F1,F2,...")
    if config.mode == "closed" and (config.rates or config.rate_sweep):
        raise HarnessError("--rates and --rate-sweep are open-loop options; add --mode open")
    if any(r <= 0 for r in config.rates) or any(not 0 < f <= 2 for f in config.rate_sweep):
        raise HarnessError("--rates must be positive; --rate-sweep fractions in (0, 2]")
    if any(not 0 < f <= 1 for f in config.rate_fractions):
        raise HarnessError(
            f"--rate-fractions must be in (0, 1] (fractions of the smallest closed-loop capacity "
            f"among the designs), got {config.rate_fractions}; e.g. --rate-fractions 0.25,0.5"
        )
    if config.arrival not in ("poisson", "uniform"):
        raise HarnessError(f"--arrival must be poisson or uniform, got {config.arrival!r}")
    if (config.hot_fraction is None) != (config.hot_share is None):
        raise HarnessError("--hot-fraction and --hot-share go together; give both")
    for value, flag in ((config.hot_fraction, "--hot-fraction"), (config.hot_share, "--hot-share")):
        if value is not None and not 0 < value < 1:
            raise HarnessError(f"{flag} must be between 0 and 1 exclusive, got {value}")


def make_plan(
    config: RunConfig,
    topology: Topology,
    designs: dict[str, Design],
    assign: Callable[[int], CpuAssignment] | None = None,
) -> Plan:
    """assign: k -> CPUs of a k-core trial (several hosts: harness.plan.hosts_plan.assigner);
    default: server and load generator on this machine's topology."""
    validate(config, designs)
    assignments, dropped = _assignments(config, topology, assign)
    rng = random.Random(config.seed) if config.seed is not None else None
    trials: list[TrialSpec] = []
    for rep, workload in _workloads(config, [k for k in config.cores if k in assignments]):
        chosen = _servers_and_loads(config, designs, workload)
        if chosen is None:
            continue
        group, loads = chosen
        if rng is not None:
            rng.shuffle(group)
        for server in group:
            base = _base_spec(config, designs[server], workload, rep, assignments)
            _add_loads(trials, base, config, loads)
    return Plan(config=config, trials=tuple(trials), dropped_cores=tuple(sorted(dropped)))


def _assignments(
    config: RunConfig, topology: Topology, assign: Callable[[int], CpuAssignment] | None
) -> tuple[dict[int, CpuAssignment], list[tuple[int, str]]]:
    """The CPUs of each core count; one that does not fit is an error, or left out (and why)
    under drop_unfit_cores. Largest first, so that an error names the core count that is
    furthest out of reach."""
    assignments: dict[int, CpuAssignment] = {}
    dropped: list[tuple[int, str]] = []
    for k in sorted(set(config.cores), reverse=True):
        try:
            assignments[k] = (
                assign(k)
                if assign is not None
                else assign_cpus(topology, k, config.client_cpus, config.oversubscribe)
            )
        except HarnessError as exc:
            if not config.drop_unfit_cores:
                raise
            dropped.append((k, str(exc)))
    if not assignments:
        raise HarnessError(f"no core count of {list(config.cores)} fits: {dropped[-1][1]}")
    return assignments, dropped


def _workloads(config: RunConfig, cores: list[int]) -> Iterator[tuple[int, Workload]]:
    """(repetition, workload) in the plan's order; HTTP GET once, at the first size (message
    size means nothing to it)."""
    for rep, proto, k in itertools.product(range(config.repeat), config.protocols, cores):
        for conns, size, depth, work, churn in itertools.product(
            connection_counts(config, k),
            config.sizes,
            config.pipeline,
            config.works,
            config.requests_per_connection or (None,),
        ):
            if proto == "http" and size != config.sizes[0]:
                continue
            yield rep, Workload(
                protocol=proto, server_cores=k, connections=conns, size_bytes=size,
                pipeline=depth, work=work, requests_per_connection=churn,
            )  # fmt: skip


Load = tuple[float | None, float | None]  # (rate, fraction of capacity); closed: (None, None)


def _servers_and_loads(
    config: RunConfig, designs: dict[str, Design], w: Workload
) -> tuple[list[str], list[Load]] | None:
    """The designs that run a workload and its offered loads: the flags', or those the
    calibration chose for its configuration group (None: it chose none)."""
    group = [s for s in config.servers if w.protocol in designs[s].protocols]
    if config.mode == "closed":
        loads: list[Load] = [(None, None)]
    else:
        loads = [(r, None) for r in config.rates] + [(None, f) for f in config.rate_sweep]
    if not config.group_rates:
        return group, loads
    by_group = {tuple(g): (tuple(r), tuple(s)) for g, r, s in config.group_rates}
    key = (w.protocol, w.server_cores, w.connections, w.size_bytes, w.pipeline, w.work)
    rates, only = by_group.get(key, ((), ()))
    if not rates:
        return None
    return [s for s in group if not only or s in only], [(r, None) for r in rates]


def _base_spec(
    config: RunConfig,
    d: Design,
    w: Workload,
    repetition: int,
    assignments: dict[int, CpuAssignment],
) -> TrialSpec:
    """A design's trial of a workload, before its load, index and id."""
    return TrialSpec(
        **vars(w),
        **{f: getattr(d, f) for f in SPEC_FACTORS},
        **{f: getattr(config, f) for f in SPEC_OPTIONS},
        index=0,
        trial_id="",
        server=d.name,
        design_family=d.family,
        io_model=d.io_model,
        repetition=repetition,
        cpus=assignments[w.server_cores],
        seed=config.seed if config.seed is not None else DEFAULT_SEED,
    )


# The design's factors each trial stores (registry, plan/designs.py), and the run options each
# trial carries as they are.
SPEC_FACTORS = (
    "scheduler", "accept", "io", "runtime", "runtime_version", "maintenance", "concurrency",
)  # fmt: skip
SPEC_OPTIONS = ("warmup_s", "duration_s", "timeout_s", "arrival", "hot_fraction", "hot_share")


def _add_loads(
    trials: list[TrialSpec], base: TrialSpec, config: RunConfig, loads: list[Load]
) -> None:
    """The trials of one design and workload: one per offered load (a sweep's capacity trial,
    closed loop, first)."""
    capacity_id = None
    if config.rate_sweep:
        capacity_id = _add(trials, base, mode="closed").trial_id
    for rate, fraction in loads:
        if config.mode == "closed":
            _add(trials, base)
        elif fraction is None:
            _add(trials, base, mode="open", rate=rate)
        else:
            _add(trials, base, mode="open", rate_fraction=fraction, capacity_trial=capacity_id)


def _add(trials: list[TrialSpec], base: TrialSpec, **changes: object) -> TrialSpec:
    spec = replace(base, index=len(trials), **changes)
    spec = replace(spec, trial_id=trial_id(spec))
    trials.append(spec)
    return spec


def trial_id(spec: TrialSpec) -> str:
    """The trial's id: its index, design and every setting that differs from the defaults."""
    if spec.mode == "closed":
        load = "closed"
    elif spec.rate_fraction is not None:
        load = f"open{spec.rate_fraction:g}x"
    else:
        load = f"open{spec.rate:g}"
    size = f"b{spec.size_bytes}" if spec.protocol == "echo" else "get"
    extra = "".join(
        [
            f"-p{spec.pipeline}" if spec.pipeline != 1 else "",
            f"-w{spec.work.replace(':', '_')}" if spec.work != "none" else "",
            f"-n{spec.requests_per_connection}" if spec.requests_per_connection else "",
        ]
    )
    return (
        f"{spec.index:04d}-{spec.server}-{spec.protocol}-k{spec.server_cores}"
        f"-c{spec.connections}-{size}{extra}-{load}-r{spec.repetition}"
    )


def connection_counts(config: RunConfig, cores: int) -> tuple[int, ...]:
    """A k-core trial's connection counts: c x k per --connections-per-core, else --connections."""
    if config.connections_per_core:
        return tuple(c * cores for c in config.connections_per_core)
    return config.connections


def plan_from_dict(data: dict) -> Plan:
    """Rebuild a plan stored in a manifest (for --resume and --plan manifest.json)."""
    cfg = data["config"]
    config = RunConfig(**{k: _tuples(v) for k, v in cfg.items()})
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
    check_numbers(vars(config), "the stored plan.config.")  # a manifest read back
    for spec in trials:
        check_numbers(vars(spec), f"the stored trial {spec.trial_id} ")
    dropped = tuple((int(k), str(why)) for k, why in data.get("dropped_cores") or [])
    return Plan(config=config, trials=tuple(trials), dropped_cores=dropped)


def _tuples(value: object) -> object:
    """JSON lists back to the tuples a RunConfig holds (nested: group_rates)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


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
