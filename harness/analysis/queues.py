"""The queueing simulation behind harness/analysis/model.py: service-time distributions, one
seeded SimPy replication of N per-core queues against one shared queue, and the grid of
replications with intervals of the simulation's own. Pure: no files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from harness.analysis import histogram, stats
from harness.analysis.model_inputs import (
    HEADLINE,
    THREAD_PER_CORE,
    WORK_STEALING,
    WorkDist,
    parse_work,
)

CUSTOMERS = 50_000  # per replication; the M/M/1 p99 at rho 0.8 has a ~5% sd at this size
REPLICATIONS = 5
WARMUP_FRACTION = 0.1  # first customers dropped: the queues start empty
CORES = (1, 2, 4, 8, 16)
RHOS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
SOURCE = "model"


# ------------------------------------------------------------------------------------------
# Service times


@dataclass(frozen=True)
class ServiceTime:
    """Per-request service time: a `--work` draw plus a constant overhead, in microseconds."""

    work: WorkDist
    overhead_us: float = 0.0

    @property
    def mean_us(self) -> float:
        return self.work.mean_us + self.overhead_us

    def sample_us(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.work.sample_us(rng, n) + self.overhead_us

    def scv(self) -> float:
        """Squared coefficient of variation of the service time."""
        w, p = self.work, self.work.params
        if w.kind == "exp":
            var = p[0] ** 2
        elif w.kind == "bimodal":
            var = p[2] * (1 - p[2]) * (p[1] - p[0]) ** 2
        elif w.kind == "lognormal":
            var = (math.exp(p[1] ** 2) - 1) * w.mean_us**2
        else:
            var = 0.0
        return var / self.mean_us**2 if self.mean_us > 0 else 0.0


def service_time(work: str, overhead_us: float = 0.0) -> ServiceTime:
    return ServiceTime(parse_work(work), max(0.0, overhead_us))


# ------------------------------------------------------------------------------------------
# One replication


@dataclass(frozen=True)
class QueueSample:
    """One simulated replication: per-customer response and waiting times (warm-up dropped)."""

    response_us: np.ndarray
    wait_us: np.ndarray
    max_utilisation: float  # the busiest queue's offered utilisation
    core_imbalance: float  # max / mean arrival rate per queue
    stable: bool

    def percentile(self, q: float) -> float:
        """The harness's one percentile (nearest rank, histogram.sample_percentile) of the
        response times; +inf for an unstable queue (no steady state)."""
        if not self.stable:
            return math.inf
        value = histogram.sample_percentile(self.response_us, q)
        return math.nan if value is None else value


def connection_weights(
    connections: int, hot_fraction: float | None = None, hot_share: float | None = None
) -> np.ndarray:
    """Each connection's share of the requests (the load generator's skew rule)."""
    if connections < 1:
        raise ValueError(f"connections must be >= 1, got {connections}")
    if hot_fraction is None or hot_share is None:
        return np.full(connections, 1.0 / connections)
    hot = math.floor(hot_fraction * connections + 0.5)  # round half away from zero
    if not 1 <= hot <= connections - 1:
        raise ValueError(
            f"hot fraction {hot_fraction} of {connections} connections gives {hot} hot ones; "
            "need 1 .. connections - 1"
        )
    weights = np.full(connections, (1.0 - hot_share) / (connections - hot))
    weights[:hot] = hot_share / hot
    return weights


def simulate_queues(
    *,
    shared: bool,
    cores: int,
    offered_rps: float,
    service: ServiceTime,
    customers: int,
    seed: int | Sequence[int],
    connections: int = 64,
    hot_fraction: float | None = None,
    hot_share: float | None = None,
    extra_us: float = 0.0,
    warmup_fraction: float = WARMUP_FRACTION,
) -> QueueSample:
    """One replication. shared=True: one FIFO queue served by `cores` servers (work stealing);
    False: `cores` single-server FIFO queues, each connection fixed to a random one.

    The arrival, service and connection draws come from separate streams of `seed`, so the two
    designs at the same seed see the same requests (the service times differing by extra_us)."""
    arrivals_rng, service_rng, pick_rng, assign_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    rate_per_us = offered_rps / 1e6
    gaps = arrivals_rng.exponential(1.0 / rate_per_us, customers)
    service_us = service.sample_us(service_rng, customers) + extra_us
    mean_service = service.mean_us + extra_us
    weights = connection_weights(connections, hot_fraction, hot_share)
    conn_of = pick_rng.choice(connections, size=customers, p=weights)
    if shared:
        queue_of = np.zeros(customers, dtype=np.int64)
        queues, servers_per_queue = 1, cores
        shares = np.array([1.0])
    else:
        core_of_conn = assign_rng.integers(0, cores, connections)
        queue_of = core_of_conn[conn_of]
        queues, servers_per_queue = cores, 1
        shares = np.bincount(core_of_conn, weights=weights, minlength=cores)
    utilisation = rate_per_us * mean_service * shares / servers_per_queue
    max_util = float(utilisation.max())
    imbalance = float(shares.max() / shares.mean())
    if max_util >= 1.0:
        # An unstable queue grows without bound: no steady state to sample.
        empty = np.empty(0)
        return QueueSample(empty, empty, max_util, imbalance, stable=False)

    env = simpy.Environment()
    stores = [simpy.Store(env) for _ in range(queues)]
    arrived = [0.0] * customers
    started = [0.0] * customers
    finished = [0.0] * customers
    gap_list, service_list, queue_list = gaps.tolist(), service_us.tolist(), queue_of.tolist()

    def source():  # a SimPy process
        for i in range(customers):
            yield env.timeout(gap_list[i])
            arrived[i] = env.now
            stores[queue_list[i]].put(i)

    def server(store: simpy.Store):
        while True:
            i = yield store.get()
            started[i] = env.now
            yield env.timeout(service_list[i])
            finished[i] = env.now

    env.process(source())
    for store in stores:
        for _ in range(servers_per_queue):
            env.process(server(store))
    env.run()
    skip = int(customers * warmup_fraction)
    arr = np.asarray(arrived[skip:])
    return QueueSample(
        response_us=np.asarray(finished[skip:]) - arr,
        wait_us=np.asarray(started[skip:]) - arr,
        max_utilisation=max_util,
        core_imbalance=imbalance,
        stable=True,
    )


# ------------------------------------------------------------------------------------------
# The grid


def _interval(values: list[float]) -> stats.Interval:
    found = stats.median_ci(values)
    if found is None:  # every replication NaN (both designs unstable): no figure, not a crash
        return stats.Interval(math.nan, math.nan, math.nan, 0.0, stats.CIMethod.RANGE, 0)
    return found


def simulate(
    service: ServiceTime,
    extra_us: float,
    *,
    thread_per_core: str = HEADLINE[0],
    work_stealing: str = HEADLINE[1],
    work: str | None = None,
    cores: Sequence[int] = CORES,
    rhos: Sequence[float] = RHOS,
    connections: int = 64,
    hot_fraction: float | None = None,
    hot_share: float | None = None,
    customers: int = CUSTOMERS,
    replications: int = REPLICATIONS,
    seed: int = 1,
) -> pd.DataFrame:
    """Predictions for one pair and workload over cores x rhos (columns: module docstring).

    `service` is the thread-per-core design's service time; the work-stealing design's is the
    same plus `extra_us`. Replication r of every grid point uses seed (seed, N, rho index, r),
    shared by the two designs."""
    if customers < 100 or replications < 1:
        raise ValueError("need at least 100 customers and 1 replication per grid point")
    rows = []
    for n in cores:
        for k, rho in enumerate(rhos):
            offered = rho * n * 1e6 / service.mean_us
            samples: dict[str, list[QueueSample]] = {THREAD_PER_CORE: [], WORK_STEALING: []}
            for r in range(replications):
                s = (seed, n, k, r)
                common = dict(
                    cores=n,
                    offered_rps=offered,
                    service=service,
                    customers=customers,
                    seed=s,
                    connections=connections,
                    hot_fraction=hot_fraction,
                    hot_share=hot_share,
                )
                samples[THREAD_PER_CORE].append(simulate_queues(shared=False, **common))
                samples[WORK_STEALING].append(
                    simulate_queues(shared=True, extra_us=extra_us, **common)
                )
            ratio = _interval(
                [
                    safe_ratio(a.percentile(99), b.percentile(99))
                    for a, b in zip(samples[THREAD_PER_CORE], samples[WORK_STEALING], strict=True)
                ]
            )
            for family, design, extra in (
                (THREAD_PER_CORE, thread_per_core, 0.0),
                (WORK_STEALING, work_stealing, extra_us),
            ):
                reps = samples[family]
                p50 = _interval([s.percentile(50) for s in reps])
                p99 = _interval([s.percentile(99) for s in reps])
                rows.append(
                    {
                        "source": SOURCE,
                        "thread_per_core": thread_per_core,
                        "work_stealing": work_stealing,
                        "design": design,
                        "family": family,
                        "work": work or work_spec(service.work),
                        "connections": connections,
                        "hot_fraction": hot_fraction,
                        "hot_share": hot_share,
                        "cores": n,
                        "rho": rho,
                        "offered_rps": offered,
                        "service_mean_us": service.mean_us + extra,
                        "service_scv": ServiceTime(service.work, service.overhead_us + extra).scv(),
                        "extra_us": extra,
                        "utilisation": offered * (service.mean_us + extra) / (n * 1e6),
                        "p50_us": p50.estimate,
                        "p50_low": p50.low,
                        "p50_high": p50.high,
                        "p99_us": p99.estimate,
                        "p99_low": p99.low,
                        "p99_high": p99.high,
                        "ci_level": p99.level,
                        "ci_method": str(p99.method),
                        "p99_ratio": ratio.estimate,
                        "p99_ratio_low": ratio.low,
                        "p99_ratio_high": ratio.high,
                        "core_imbalance": float(np.median([s.core_imbalance for s in reps])),
                        "unstable_replications": sum(not s.stable for s in reps),
                        "replications": replications,
                        "customers": customers,
                        "warmup_customers": int(customers * WARMUP_FRACTION),
                        "seed": seed,
                    }
                )
    return pd.DataFrame(rows)


def safe_ratio(a: float, b: float) -> float:
    if math.isinf(a) and math.isinf(b):
        return math.nan
    return a / b if b else math.nan


def work_spec(work: WorkDist) -> str:
    return ":".join([work.kind, *(f"{p:g}" for p in work.params)])
