"""What the queueing model (harness/analysis/model.py) takes from a stored run.

Pure functions of the run's tables as the store reads them (docs/data.md): `trials`,
`threads` and `workers` DataFrames in, plain frozen dataclasses out. Nothing here simulates.

- `DesignCost`: a design's measured server CPU per completed request at one `--work`
  distribution and core count (all server threads' CPU over the window / requests, so the
  runtime's own overhead is in it), and the part of it that is not the drawn work (`overhead_us`).
- `LoadSkew`: how unevenly requests landed on the workers (workers.parquet), and the skew the
  load generator was asked for (`--hot-fraction`, `--hot-share`).
- `ExtraCost`: what a work-stealing design pays per request over a thread-per-core design at the
  same work on 1 core (or the fewest cores both were measured at).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import pandas as pd

WORK_SYNTAX = "none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2 or lognormal:MEDIAN_US:SIGMA"
WORK_STEALING = "work-stealing"
THREAD_PER_CORE = "thread-per-core"
# The pair the project's headline compares (same runtime, stealing on and off).
HEADLINE = ("tokio-tpc", "tokio-ws")


@dataclass(frozen=True)
class WorkDist:
    """A `--work` spec, with the meaning servers/core/src/work.rs gives it (microseconds)."""

    kind: str  # none | fixed | exp | bimodal | lognormal
    params: tuple[float, ...]

    @property
    def mean_us(self) -> float:
        p = self.params
        if self.kind == "none":
            return 0.0
        if self.kind in ("fixed", "exp"):
            return p[0]
        if self.kind == "bimodal":
            return p[0] * (1.0 - p[2]) + p[1] * p[2]
        return p[0] * math.exp(p[1] ** 2 / 2.0)  # lognormal: median * exp(sigma^2 / 2)

    def sample_us(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n draws, as the server draws them (work.rs: exp by inversion, lognormal =
        median * exp(sigma * Z), bimodal picks US2 with probability P2), clamped at 10 s."""
        p = self.params
        if self.kind == "none":
            draws = np.zeros(n)
        elif self.kind == "fixed":
            draws = np.full(n, p[0])
        elif self.kind == "exp":
            draws = rng.exponential(p[0], n)
        elif self.kind == "bimodal":
            draws = np.where(rng.random(n) < p[2], p[1], p[0])
        else:
            draws = p[0] * np.exp(p[1] * rng.standard_normal(n))
        return np.minimum(draws, 1e7)


def parse_work(spec: str | None) -> WorkDist:
    """`exp:100` -> WorkDist("exp", (100.0,)); None or "" is `none`. ValueError names the syntax."""
    text = (spec or "none").strip()
    kind, *raw = text.split(":")
    arity = {"none": 0, "fixed": 1, "exp": 1, "lognormal": 2, "bimodal": 3}.get(kind)
    if arity is None or len(raw) != arity:
        raise ValueError(f"--work '{text}' is not one of {WORK_SYNTAX}")
    try:
        params = tuple(float(x) for x in raw)
    except ValueError:
        raise ValueError(f"--work '{text}': parameters must be numbers ({WORK_SYNTAX})") from None
    if any(not math.isfinite(x) or x < 0 for x in params):
        raise ValueError(f"--work '{text}': parameters must be finite and non-negative")
    if kind == "bimodal" and params[2] > 1:
        raise ValueError(f"--work '{text}': P2 must be between 0 and 1")
    return WorkDist(kind, params)


@dataclass(frozen=True)
class DesignCost:
    server: str
    family: str
    work: str
    server_cores: int
    cpu_us_per_request: float  # median over the trials used
    work_mean_us: float  # mean of the --work distribution
    overhead_us: float  # cpu_us_per_request - work_mean_us (may be < 0 from sampling noise)
    trials: int  # trials the median is over
    flagged_only: bool  # no unflagged trial had the figure: the median is of flagged ones


@dataclass(frozen=True)
class LoadSkew:
    server: str
    server_cores: int
    work: str
    connections: int
    hot_fraction: float | None  # asked of the load generator (None: even)
    hot_share: float | None
    worker_imbalance: float | None  # median over trials of max/mean requests per worker
    worker_shares: tuple[float, ...]  # median over trials of each worker's share, largest first
    trials: int


@dataclass(frozen=True)
class ExtraCost:
    work_stealing: str
    thread_per_core: str
    work: str
    server_cores: int  # the core count both were measured at (1 when measured)
    extra_us: float  # ws cpu_us_per_request - tpc cpu_us_per_request
    extra_fraction: float  # extra_us / tpc cpu_us_per_request


@dataclass(frozen=True)
class ModelInputs:
    costs: tuple[DesignCost, ...]
    skews: tuple[LoadSkew, ...]
    extra_costs: tuple[ExtraCost, ...]

    def cost(self, server: str, work: str, cores: int | None = None) -> DesignCost | None:
        """The design's cost at that work: at `cores`, or at the fewest cores measured."""
        found = [c for c in self.costs if c.server == server and c.work == work]
        if cores is not None:
            found = [c for c in found if c.server_cores == cores]
        return min(found, key=lambda c: c.server_cores) if found else None


def _ok(trials: pd.DataFrame) -> pd.DataFrame:
    t = trials[trials["status"] == "ok"].copy()
    t["work"] = t["work"].fillna("none") if "work" in t else "none"
    flag_cols = [
        c
        for c in ("oversubscribed", "client_bound", "rate_missed", "unsteady", "contended")
        if c in t
    ]
    t["flagged"] = t[flag_cols].fillna(False).astype(bool).any(axis=1) if flag_cols else False
    return t


def _server_cpu_s(trials: pd.DataFrame, threads: pd.DataFrame | None) -> pd.Series:
    """All server threads' CPU over the window per trial (threads.parquet), falling back to the
    harness's process-level figure (trials.server_cpu_s) for a trial without thread rows."""
    cpu = trials.set_index("trial_id")["server_cpu_s"].astype(float)
    if threads is not None and not threads.empty:
        server = threads[threads["role"] == "server"]
        summed = server.groupby("trial_id")["cpu_s"].sum(min_count=1)
        cpu = summed.reindex(cpu.index).fillna(cpu)
    return cpu


def design_costs(trials: pd.DataFrame, threads: pd.DataFrame | None = None) -> list[DesignCost]:
    """Per (server, work, server_cores): median server CPU-us per request over unflagged ok
    trials (flagged ones only when there is no unflagged one, and then said so)."""
    t = _ok(trials)
    if t.empty:
        return []
    cpu = _server_cpu_s(t, threads)
    t["cpu_us_per_request"] = (cpu.reindex(t["trial_id"]).to_numpy() * 1e6) / t["requests"].astype(
        float
    ).where(t["requests"] > 0)
    t = t[np.isfinite(t["cpu_us_per_request"].astype(float))]
    out = []
    for (server, work, cores), group in t.groupby(["server", "work", "server_cores"], sort=True):
        clean = group[~group["flagged"]]
        used = clean if not clean.empty else group
        value = float(statistics.median(used["cpu_us_per_request"].astype(float)))
        mean = parse_work(str(work)).mean_us
        out.append(
            DesignCost(
                server=str(server),
                family=str(group["design_family"].iloc[0]),
                work=str(work),
                server_cores=int(cores),
                cpu_us_per_request=value,
                work_mean_us=mean,
                overhead_us=value - mean,
                trials=len(used),
                flagged_only=clean.empty,
            )
        )
    return out


def _none_if_nan(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)  # type: ignore[arg-type]


def load_skews(trials: pd.DataFrame, workers: pd.DataFrame | None = None) -> list[LoadSkew]:
    """Per (server, cores, work, connections, asked skew): the measured per-worker request
    shares (median over trials, largest first) and max/mean imbalance."""
    t = _ok(trials)
    if t.empty:
        return []
    for col in ("hot_fraction", "hot_share"):
        if col not in t:
            t[col] = np.nan
    by_trial = {}
    if workers is not None and not workers.empty:
        by_trial = {
            tid: g["requests"].dropna().astype(float) for tid, g in workers.groupby("trial_id")
        }
    keys = ["server", "server_cores", "work", "connections", "hot_fraction", "hot_share"]
    out = []
    for key, group in t.groupby(keys, sort=True, dropna=False):
        server, cores, work, conns, hot_f, hot_s = key
        shares, imbalances = [], []
        for tid in group["trial_id"]:
            reqs = by_trial.get(tid)
            if reqs is None or len(reqs) < 1 or reqs.sum() <= 0:
                continue
            shares.append(np.sort(reqs.to_numpy() / reqs.sum())[::-1])
            if len(reqs) > 1:
                imbalances.append(float(reqs.max() / reqs.mean()))
        widths = {len(s) for s in shares}
        median_shares: tuple[float, ...] = ()
        if len(widths) == 1:
            median_shares = tuple(float(x) for x in np.median(np.vstack(shares), axis=0))
        out.append(
            LoadSkew(
                server=str(server),
                server_cores=int(cores),
                work=str(work),
                connections=int(conns),
                hot_fraction=_none_if_nan(hot_f),
                hot_share=_none_if_nan(hot_s),
                worker_imbalance=statistics.median(imbalances) if imbalances else None,
                worker_shares=median_shares,
                trials=len(shares),
            )
        )
    return out


def extra_costs(costs: list[DesignCost]) -> list[ExtraCost]:
    """Every (work-stealing, thread-per-core) pair at the same work, at the fewest cores both
    were measured at (1 when a run has 1-core trials)."""
    out = []
    ws = [c for c in costs if c.family == WORK_STEALING]
    tpc = [c for c in costs if c.family == THREAD_PER_CORE]
    for w in ws:
        for p in tpc:
            if p.work != w.work or p.server_cores != w.server_cores:
                continue
            fewest = min(
                c.server_cores
                for c in costs
                if c.work == w.work and c.server in (w.server, p.server)
            )
            if w.server_cores != fewest:
                continue
            extra = w.cpu_us_per_request - p.cpu_us_per_request
            out.append(
                ExtraCost(
                    work_stealing=w.server,
                    thread_per_core=p.server,
                    work=w.work,
                    server_cores=w.server_cores,
                    extra_us=extra,
                    extra_fraction=extra / p.cpu_us_per_request if p.cpu_us_per_request else 0.0,
                )
            )
    return out


def model_inputs(
    trials: pd.DataFrame,
    threads: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
) -> ModelInputs:
    """Everything the model takes from one run's tables."""
    costs = design_costs(trials, threads)
    return ModelInputs(
        costs=tuple(costs),
        skews=tuple(load_skews(trials, workers)),
        extra_costs=tuple(extra_costs(costs)),
    )
