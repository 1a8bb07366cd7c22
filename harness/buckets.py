"""The load generator's log-linear latency histogram buckets, in Python (docs/loadgen.md): shared
by every stage that meets a histogram (run merges the hosts' of one trial, analysis a run's).

Pure functions on (lower_ns, upper_ns, count) buckets. Merging adds counts, which is the only
correct way to combine latency distributions across threads, hosts and repetitions; percentiles
are never averaged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np

SUB_BUCKETS = 2048  # 3 significant digits: relative bucket width < 1/1024
_HALF = SUB_BUCKETS // 2

Bucket = tuple[int, int, int]  # (lower_ns, upper_ns exclusive, count)


def bucket_bounds(value_ns: int) -> tuple[int, int]:
    """The [lower, upper) bucket holding value_ns."""
    if value_ns < SUB_BUCKETS:
        return value_ns, value_ns + 1
    shift = value_ns.bit_length() - 1 - 10  # m - 10 where m = floor(log2 v)
    sub = value_ns >> shift
    return sub << shift, (sub + 1) << shift


def record(values_ns: Iterable[int]) -> list[Bucket]:
    """Histogram of raw values (used by tests and by anything that has samples)."""
    counts: dict[tuple[int, int], int] = {}
    for v in values_ns:
        key = bucket_bounds(int(v))
        counts[key] = counts.get(key, 0) + 1
    return [(lo, hi, n) for (lo, hi), n in sorted(counts.items())]


def merge(histograms: Iterable[Iterable[Bucket]]) -> list[Bucket]:
    counts: dict[tuple[int, int], int] = {}
    for hist in histograms:
        for lo, hi, n in hist:
            counts[(lo, hi)] = counts.get((lo, hi), 0) + n
    return [(lo, hi, n) for (lo, hi), n in sorted(counts.items()) if n]


def total(hist: Iterable[Bucket]) -> int:
    return sum(n for _, _, n in hist)


def nearest_rank(p: float, n: int) -> int:
    """The 1-based rank of the p-th percentile among n values: ceil(p / 100 * n), at least 1."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    # Exact rank: in floats 99.9 / 100 * 1000 is 999.0000000000001, one rank too far.
    return max(1, math.ceil(Fraction(str(p)) / 100 * n))


def percentile_of(lower: np.ndarray, upper: np.ndarray, counts: np.ndarray, p: float) -> int | None:
    """THE percentile of the harness (docs/loadgen.md, "Percentiles"): every percentile the
    report, the exports and compare show is computed here from a histogram (sorted buckets,
    [lower, upper) in ns), as the load generator computes a trial's own in Rust.

    Nearest rank, answered as the bucket's highest equivalent value (upper - 1): never below
    the true nearest-rank value and at most 0.1% above it. None for an empty histogram.
    """
    counts = np.asarray(counts, dtype=np.int64)
    nearest_rank(p, 0)  # checks p even for an empty histogram
    n = int(counts.sum())
    if n == 0:
        return None
    return int(values_at_ranks(lower, upper, counts, np.array([nearest_rank(p, n)]))[0])


def values_at_ranks(
    lower: np.ndarray, upper: np.ndarray, counts: np.ndarray, ranks: np.ndarray
) -> np.ndarray:
    """The value of each 1-based rank (percentile_of's answer): the highest equivalent value
    (upper - 1) of the bucket holding it, the bucket's only value when it is one wide."""
    cum = np.cumsum(np.asarray(counts, dtype=np.int64))
    i = np.minimum(np.searchsorted(cum, ranks), len(cum) - 1)
    lo, hi = np.asarray(lower, np.int64)[i], np.asarray(upper, np.int64)[i]
    return np.where(hi - lo > 1, hi - 1, lo)


def percentile_ns(hist: Sequence[Bucket], p: float) -> int | None:
    """percentile_of a histogram given as (lower, upper, count) buckets."""
    table = np.array(sorted(hist), dtype=np.int64).reshape(-1, 3)
    return percentile_of(table[:, 0], table[:, 1], table[:, 2], p)


def percentile_us(hist: Sequence[Bucket], p: float) -> float | None:
    v = percentile_ns(hist, p)
    return None if v is None else v / 1000.0
