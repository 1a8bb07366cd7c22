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

import pandas as pd

from harness.analysis.model_inputs import (
    THREAD_PER_CORE,
    WORK_STEALING,
    ModelInputs,
    model_inputs,
)
from harness.analysis.queues import (  # the simulation itself; re-exported for callers
    CORES,
    CUSTOMERS,
    REPLICATIONS,
    RHOS,
    SOURCE,
    WARMUP_FRACTION,
    QueueSample,
    ServiceTime,
    connection_weights,
    service_time,
    simulate,
    simulate_queues,
)

__all__ = [
    "ASSUMPTIONS",
    "CORES",
    "CUSTOMERS",
    "REPLICATIONS",
    "RHOS",
    "SOURCE",
    "WARMUP_FRACTION",
    "ModelResult",
    "QueueSample",
    "ServiceTime",
    "compare_measured",
    "connection_weights",
    "run_model",
    "service_time",
    "simulate",
    "simulate_queues",
    "throughput_ratios",
]

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
