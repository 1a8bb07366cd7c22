"""Queueing model of thread-per-core against work stealing, fed by a run's measurements (issue 11).

Thread-per-core is simulated as N independent FIFO queues, one server each: every connection is
assigned to a core at random once (as SO_REUSEPORT hashing does) and each request is served by
its connection's core. Work stealing is one FIFO queue served by N cores, each request costing the
thread-per-core service time plus the measured extra cost of the work-stealing design. Events are
scheduled by SimPy (a discrete-event simulation library); numpy only draws the random numbers.
Both designs see the same arrival and service draws in a replication (common random numbers), so
their ratio is sharper than either figure.

Units: microseconds and requests per second. `rho` is the offered load as the thread-per-core
design's utilisation: offered_rps x tpc mean service time / N (1.0 = its N cores saturated), so
both designs of a pair are compared at the same offered rate.

`ModelResult.predictions` (stored as `model.parquet`), one row per (pair, workload, design, N,
rho):
  source            always "model": these are predictions, not measurements
  thread_per_core, work_stealing   the pair of designs compared
  design            the design this row predicts (one of the pair); family: its family
  work, connections, hot_fraction, hot_share   the workload (--work spec, skew asked; null: even)
  cores             N;  rho, offered_rps   the offered load
  service_mean_us   this design's mean service time (work + overhead [+ extra]);
  service_scv       its squared coefficient of variation (dispersion: 1 for exp, 0 for fixed)
  extra_us          work stealing's extra cost per request (0 on thread-per-core rows)
  utilisation       offered_rps x service_mean_us / N for this design
  p50_us, p50_low, p50_high, p99_us, p99_low, p99_high   response time (wait + service): median
                    over replications with an order-statistic interval (or min..max range)
  ci_level, ci_method   the interval's real coverage and how it was obtained (harness.stats)
  p99_ratio, p99_ratio_low, p99_ratio_high   tpc p99 / ws p99 at this load (same on both rows
                    of a pair), per replication then median and interval as above; a
                    replication where only ws is unstable gives 0, only tpc +inf, both NaN
  core_imbalance    thread-per-core: median over replications of max/mean per-core arrival
                    rate (1.0 for work stealing); compare with the measured worker_imbalance
  unstable_replications   replications in which a queue's utilisation was >= 1: its p50/p99
                    are +inf there (an unstable queue has no steady-state percentile)
  replications, customers, warmup_customers, seed   the simulation's own size

`ModelResult.ratios`, one row per (pair, workload, N): `p99_target_us`, the largest offered
rate each design sustains with median p99 <= target (`tpc_rps_at_target`, `ws_rps_at_target`,
linear interpolation on the rho grid; `*_censored` true when even the largest rho meets the
target, so the figure is a lower bound) and `throughput_ratio` (tpc / ws); source "model".

`ModelResult.comparison`: every measured open-loop trial at a modelled (design, N, work),
beside the model's p99 at its own offered rate: `measured_p99_us`, `model_p99_us` (+ interval),
`error` = model / measured - 1, `flagged`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from harness.analysis import stats
from harness.analysis.model_inputs import (
    HEADLINE,
    THREAD_PER_CORE,
    WORK_STEALING,
    ModelInputs,
    WorkDist,
    model_inputs,
    parse_work,
)

CORES = (1, 2, 4, 8, 16)
RHOS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CUSTOMERS = 50_000  # per replication; the M/M/1 p99 at rho 0.8 has a ~5% sd at this size
REPLICATIONS = 5
WARMUP_FRACTION = 0.1  # first customers dropped: the queues start empty
SOURCE = "model"

ASSUMPTIONS = (
    "Arrivals are Poisson at the offered rate (the load generator's open-loop schedule).",
    "A request's service time is its --work draw plus a constant overhead: the design's "
    "measured server CPU per request minus the work's mean (a negative overhead, from "
    "measurement noise, is taken as 0).",
    "Work stealing is ideal: one FIFO queue served by N cores, any request on any idle core, "
    "each paying the measured extra CPU per request of the work-stealing design over the "
    "thread-per-core one at 1 core; stealing latency and cache effects beyond that cost are "
    "not modelled.",
    "Thread-per-core: each connection is assigned to a core uniformly at random once, for its "
    "whole life (SO_REUSEPORT hashing); a core serves only its own connections, FIFO.",
    "Skewed load: round(F x C) hot connections carry the share S of the requests, as the load "
    "generator's --hot-fraction F --hot-share S.",
    "A request does not wait for its connection's previous answer (pipelining per connection "
    "is not modelled); the client and the kernel's network path add no time.",
    "The extra cost and the overhead measured at 1 core are taken to hold at every N (no "
    "contention on shared state, memory bandwidth or locks growing with N).",
)


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
        return float(np.percentile(self.response_us, q)) if self.stable else math.inf


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
    assert found is not None  # there is always at least one replication
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
                    _ratio(a.percentile(99), b.percentile(99))
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
                        "work": work or _spec(service.work),
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


def _ratio(a: float, b: float) -> float:
    if math.isinf(a) and math.isinf(b):
        return math.nan
    return a / b if b else math.nan


def _spec(work: WorkDist) -> str:
    return ":".join([work.kind, *(f"{p:g}" for p in work.params)])


# ------------------------------------------------------------------------------------------
# Ratios at a p99 target


def _rps_at_target(rows: pd.DataFrame, target: float) -> tuple[float, bool]:
    """Largest offered rate with p99 <= target, interpolated linearly between grid points;
    (nan, False) when even the lowest load misses it, (largest rate, True) when none does."""
    rows = rows.sort_values("offered_rps")
    rates, p99 = rows["offered_rps"].to_numpy(), rows["p99_us"].to_numpy()
    if p99[0] > target:
        return math.nan, False
    for i in range(1, len(rates)):
        if p99[i] > target:
            if math.isinf(p99[i]):
                return float(rates[i - 1]), False
            frac = (target - p99[i - 1]) / (p99[i] - p99[i - 1])
            return float(rates[i - 1] + frac * (rates[i] - rates[i - 1])), False
    return float(rates[-1]), True


def throughput_ratios(
    predictions: pd.DataFrame, p99_target_us: float | None = None
) -> pd.DataFrame:
    """Per (pair, workload, N): each design's sustainable rate at a p99 target and their ratio.
    The default target is 10x the thread-per-core design's mean service time."""
    keys = ["thread_per_core", "work_stealing", "work", "connections", "hot_fraction", "hot_share"]
    rows = []
    for key, group in predictions.groupby([*keys, "cores"], dropna=False, sort=True):
        tpc = group[group["family"] == THREAD_PER_CORE]
        ws = group[group["family"] == WORK_STEALING]
        target = p99_target_us or 10.0 * float(tpc["service_mean_us"].iloc[0])
        tpc_rps, tpc_cens = _rps_at_target(tpc, target)
        ws_rps, ws_cens = _rps_at_target(ws, target)
        rows.append(
            {
                "source": SOURCE,
                **dict(zip([*keys, "cores"], key, strict=True)),
                "p99_target_us": target,
                "tpc_rps_at_target": tpc_rps,
                "tpc_censored": tpc_cens,
                "ws_rps_at_target": ws_rps,
                "ws_censored": ws_cens,
                "throughput_ratio": tpc_rps / ws_rps if ws_rps else math.nan,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Against measurements


def compare_measured(
    predictions: pd.DataFrame, trials: pd.DataFrame, *, tolerance: float = 1e-6
) -> pd.DataFrame:
    """Each measured open-loop trial beside the model's p99 at the same (design, N, work, rho).

    A trial's rho is its achieved rate on the pair's scale (x the tpc service mean / N); only
    trials whose rho is a modelled grid point (within `tolerance`) are joined: run_model
    simulates every measured point exactly."""
    cols = [
        "trial_id", "thread_per_core", "work_stealing", "design", "cores", "work", "rho",
        "offered_rps", "measured_p99_us",
        "model_p99_us", "model_p99_low", "model_p99_high", "ci_level", "error", "flagged",
    ]  # fmt: skip
    if predictions.empty or trials.empty:
        return pd.DataFrame(columns=cols)
    t = trials[(trials["status"] == "ok") & (trials["mode"] == "open")].copy()
    t["work"] = t["work"].fillna("none")
    flag_cols = [c for c in ("client_bound", "rate_missed", "unsteady", "contended") if c in t]
    t["flagged"] = t[flag_cols].fillna(False).astype(bool).any(axis=1) if flag_cols else False
    rows = []
    for _, trial in t.iterrows():
        rate = trial["target_rate"] if pd.notna(trial["target_rate"]) else trial["achieved_rate"]
        match = predictions[
            (predictions["design"] == trial["server"])
            & (predictions["cores"] == trial["server_cores"])
            & (predictions["work"] == trial["work"])
            & (predictions["connections"] == trial["connections"])
        ]
        if match.empty or pd.isna(rate):
            continue
        for _, pair in match.groupby(["thread_per_core", "work_stealing"]):
            tpc_mean = _tpc_mean(predictions, pair.iloc[0])
            rho = float(rate) * tpc_mean / (int(trial["server_cores"]) * 1e6)
            exact = pair[(pair["rho"] - _round_rho(rho)).abs() <= tolerance]
            if exact.empty:
                continue
            m = exact.iloc[0]
            measured = float(trial["p99_us"])
            rows.append(
                {
                    "trial_id": trial["trial_id"],
                    "thread_per_core": m["thread_per_core"],
                    "work_stealing": m["work_stealing"],
                    "design": trial["server"],
                    "cores": int(trial["server_cores"]),
                    "work": trial["work"],
                    "rho": float(m["rho"]),
                    "offered_rps": float(rate),
                    "measured_p99_us": measured,
                    "model_p99_us": float(m["p99_us"]),
                    "model_p99_low": float(m["p99_low"]),
                    "model_p99_high": float(m["p99_high"]),
                    "ci_level": float(m["ci_level"]),
                    "error": float(m["p99_us"]) / measured - 1.0 if measured else math.nan,
                    "flagged": bool(trial["flagged"]),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _tpc_mean(predictions: pd.DataFrame, row: pd.Series) -> float:
    pair = predictions[
        (predictions["thread_per_core"] == row["thread_per_core"])
        & (predictions["work"] == row["work"])
        & (predictions["family"] == THREAD_PER_CORE)
    ]
    return float(pair["service_mean_us"].iloc[0])


def _round_rho(rho: float) -> float:
    return round(rho, 4)


# ------------------------------------------------------------------------------------------
# Entry point


@dataclass(frozen=True)
class ModelResult:
    inputs: ModelInputs
    predictions: pd.DataFrame  # model.parquet
    ratios: pd.DataFrame
    comparison: pd.DataFrame
    assumptions: tuple[str, ...] = ASSUMPTIONS
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be modelled, and why


def _read(run_dir: Path, name: str) -> pd.DataFrame | None:
    path = run_dir / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def run_model(
    run_dir: Path,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    cores: Sequence[int] = CORES,
    rhos: Sequence[float] = RHOS,
    customers: int = CUSTOMERS,
    replications: int = REPLICATIONS,
    seed: int = 1,
    p99_target_us: float | None = None,
) -> ModelResult:
    """Read a stored run, derive the inputs, simulate every (tpc, ws) pair measured at the same
    work (or just `pairs`, as (thread_per_core, work_stealing) names) over cores x rhos plus each
    measured open-loop point, and join the measurements. ValueError names a missing table."""
    trials = _read(run_dir, "trials")
    if trials is None:
        raise ValueError(f"{run_dir} has no trials.parquet: pass a run directory under results/")
    inputs = model_inputs(trials, _read(run_dir, "threads"), _read(run_dir, "workers"))
    wanted = set(pairs) if pairs is not None else None
    frames, notes = [], []
    ok = trials[trials["status"] == "ok"].assign(work=lambda t: t["work"].fillna("none"))
    for extra in inputs.extra_costs:
        pair = (extra.thread_per_core, extra.work_stealing)
        if wanted is not None and pair not in wanted:
            continue
        tpc_cost = inputs.cost(extra.thread_per_core, extra.work, extra.server_cores)
        assert tpc_cost is not None  # extra costs are only made from measured costs
        if extra.server_cores != 1:
            notes.append(
                f"{pair[0]} / {pair[1]} at {extra.work}: no 1-core trials; costs are from "
                f"{extra.server_cores} cores"
            )
        if tpc_cost.flagged_only:
            notes.append(f"{pair[0]} at {extra.work}: CPU per request from flagged trials only")
        service = service_time(extra.work, tpc_cost.overhead_us)
        extra_us = max(0.0, extra.extra_us)
        mine = ok[ok["server"].isin(pair) & (ok["work"] == extra.work)]
        workloads = mine[["connections", "hot_fraction", "hot_share"]].drop_duplicates()
        for _, wl in workloads.iterrows():
            common = dict(
                thread_per_core=pair[0],
                work_stealing=pair[1],
                work=extra.work,
                connections=int(wl["connections"]),
                hot_fraction=_opt(wl["hot_fraction"]),
                hot_share=_opt(wl["hot_share"]),
                customers=customers,
                replications=replications,
                seed=seed,
            )
            frames.append(simulate(service, extra_us, cores=cores, rhos=rhos, **common))
            # The measured points, simulated at their own load.
            measured = mine[(mine["mode"] == "open") & (mine["connections"] == wl["connections"])]
            for n, group in measured.groupby("server_cores"):
                rate = group["target_rate"].fillna(group["achieved_rate"]).dropna()
                points = sorted(
                    {_round_rho(float(r) * service.mean_us / (int(n) * 1e6)) for r in rate}
                    - {_round_rho(r) for r in rhos if int(n) in cores}
                )
                if points:
                    frames.append(
                        simulate(service, extra_us, cores=(int(n),), rhos=points, **common)
                    )
    if not inputs.extra_costs:
        notes.append("no work-stealing and thread-per-core design measured at the same work")
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    ratios = (
        throughput_ratios(predictions, p99_target_us) if not predictions.empty else pd.DataFrame()
    )
    return ModelResult(
        inputs=inputs,
        predictions=predictions,
        ratios=ratios,
        comparison=compare_measured(predictions, trials),
        notes=tuple(notes),
    )


def _opt(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)  # type: ignore[arg-type]
