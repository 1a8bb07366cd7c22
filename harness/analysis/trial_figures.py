"""Figures of a run's trials beside the summaries: how evenly work landed on the workers, the
client's noise floor (hiccup meter), how the client's CPUs idled, the trial counts and the
network's idle floor. Pure: tables in, numbers out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd


def _nan_to_none(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def trial_imbalance(workers: pd.DataFrame) -> dict[str, float]:
    """Per trial, max/mean requests per worker over its workers with a count (needs 2)."""
    if workers.empty:
        return {}
    requests = workers.groupby("trial_id", sort=False, observed=True)["requests"]
    stats_ = requests.agg(["max", "mean", "count"])
    ok = stats_[(stats_["count"] > 1) & (stats_["mean"] > 0)]
    return {str(t): float(m / a) for t, m, a in zip(ok.index, ok["max"], ok["mean"], strict=True)}


def hiccup_floor(trials: pd.DataFrame) -> tuple[float | None, float | None]:
    """The client's noise floor over a run: the largest hiccup p99 and max of any successful
    trial (each already the worst of its client CPUs). A tail difference below the p99 is not
    resolvable on this machine. (None, None) when no trial measured it."""
    if trials.empty or "hiccup_p99_us" not in trials:
        return None, None
    ok = trials[trials["status"] == "ok"]
    p99, top = ok["hiccup_p99_us"].max(), ok["hiccup_max_us"].max()
    return _nan_to_none(p99), _nan_to_none(top)


def trial_counts(trials: pd.DataFrame) -> dict[str, int]:
    """How many trials a run has: in all, ranked, flagged (not ranked), failed and run on
    oversubscribed CPUs."""
    n = len(trials)
    if not n:
        return dict.fromkeys(("trials", "ranked", "flagged", "failed", "oversubscribed"), 0)
    return {
        "trials": n,
        "ranked": int(trials["ranked"].sum()),
        "flagged": int(trials["flagged"].sum()),
        "failed": int((trials["status"] != "ok").sum()),
        "oversubscribed": int(trials["oversubscribed"].fillna(False).astype(bool).sum()),
    }


def idle_floor_us(manifest: dict[str, Any]) -> float | None:
    """The smallest idle round trip (ping min) from a client host to the server host, in µs:
    the floor under every latency of a run across hosts; None on one machine (or a run
    without the measurement)."""
    rtts = [r.get("min_us") for r in (manifest.get("hosts") or {}).get("idle_rtt") or []]
    present = [float(v) for v in rtts if v is not None]
    return min(present) if present else None


@dataclass(frozen=True)
class ClientIdleCounts:
    """How the load generator's CPUs idled over a run's successful trials (docs/fairness.md,
    "Waking the client"): set to poll, left to the system (with the distinct reasons), or not
    recorded (client hosts, or a run from before the column)."""

    poll: int
    system: int
    unrecorded: int
    why: tuple[str, ...]


def client_idle_counts(trials: pd.DataFrame) -> ClientIdleCounts:
    ok = trials[trials["status"] == "ok"] if not trials.empty else trials
    if ok.empty or "client_idle" not in ok:
        return ClientIdleCounts(0, 0, len(ok), ())
    mode = ok["client_idle"]
    system = ok[mode == "system"]
    why = sorted({str(w) for w in system.get("client_idle_why", pd.Series()).dropna()})
    return ClientIdleCounts(
        poll=int((mode == "poll").sum()),
        system=len(system),
        unrecorded=int(mode.isna().sum()),
        why=tuple(why),
    )


@dataclass(frozen=True)
class FailureCount:
    """Failed trials of one kind (`failure`), or, for trials stored before kinds were recorded,
    of one reason as it was written (`kind` None)."""

    kind: str | None
    reason: str | None
    count: int


def failure_counts(trials: pd.DataFrame) -> list[FailureCount]:
    """A run's failed trials grouped by kind of failure, most first."""
    if trials.empty:
        return []
    failed = trials[trials["status"] != "ok"]
    kinds = failed["failure"] if "failure" in failed else pd.Series(None, index=failed.index)
    groups: Counter[tuple[str | None, str | None]] = Counter()
    for kind, reason in zip(kinds, failed["reason"].fillna("unknown"), strict=True):
        groups[(kind, None) if isinstance(kind, str) else (None, str(reason))] += 1
    return [FailureCount(kind, reason, n) for (kind, reason), n in groups.most_common()]
