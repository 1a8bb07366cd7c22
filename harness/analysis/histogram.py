"""The load generator's log-linear latency histogram, in Python (docs/loadgen.md).

Pure functions on (lower_ns, upper_ns, count) buckets. Merging adds counts, which is the only
correct way to combine latency distributions across threads and repetitions; percentiles are
never averaged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# The shared bucket arithmetic and THE percentile (harness/buckets.py), re-exported.
from harness.buckets import (
    SUB_BUCKETS as SUB_BUCKETS,
)
from harness.buckets import (
    Bucket as Bucket,
)
from harness.buckets import (
    bucket_bounds as bucket_bounds,
)
from harness.buckets import (
    merge as merge,
)
from harness.buckets import (
    nearest_rank as nearest_rank,
)
from harness.buckets import (
    percentile_ns as percentile_ns,
)
from harness.buckets import (
    percentile_of as percentile_of,
)
from harness.buckets import (
    percentile_us as percentile_us,
)
from harness.buckets import (
    record as record,
)
from harness.buckets import (
    total as total,
)
from harness.buckets import (
    values_at_ranks as values_at_ranks,
)
from harness.store.latency_read import LatencyChunk

_HALF = SUB_BUCKETS // 2


def spectrum(hist: Merged, points: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """HdrHistogram's percentile spectrum of a histogram, by percentile_of's rule: x =
    log10(1 / (1 - p)) on `points` even steps from 0 (p = 0) up to the rank of the
    last-but-one value (past it the curve is the maximum), y = latency in µs."""
    n = hist.total
    if n == 0:
        return np.zeros(0), np.zeros(0)
    xmax = max(0.5, math.log10(n)) if n > 1 else 0.5
    xs = np.linspace(0.0, xmax, points)
    ps = 100.0 * (1.0 - 10.0**-xs)
    ranks = np.array([nearest_rank(float(p), n) if p > 0 else 1 for p in ps.tolist()])
    return xs, values_at_ranks(hist.lower, hist.upper, hist.counts, ranks) / 1000.0


def sample_percentile(values: np.ndarray, p: float) -> float | None:
    """percentile_of's rule on raw values (no buckets: every value is its own): the
    nearest-rank value, ceil(p / 100 * n)-th smallest. None without a value."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    rank = nearest_rank(p, max(n, 1))
    return float(np.partition(values, rank - 1)[rank - 1]) if n else None


# --------------------------------------------------------------------------------------------
# Many histograms at once: the buckets of thousands of trials merged per group in one pass


@dataclass(frozen=True)
class Merged:
    """A merged histogram as arrays (sorted by lower bound, no empty bucket): what `merge`
    returns as a list of buckets, without one Python tuple per bucket."""

    lower: np.ndarray
    upper: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    def buckets(self) -> list[Bucket]:
        return list(
            zip(self.lower.tolist(), self.upper.tolist(), self.counts.tolist(), strict=True)
        )

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile_ns(self, p: float) -> int | None:
        """percentile_of these buckets."""
        return percentile_of(self.lower, self.upper, self.counts, p)

    def percentile_us(self, p: float) -> float | None:
        v = self.percentile_ns(p)
        return None if v is None else v / 1000.0


EMPTY = Merged(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def bucket_index(lower_ns: np.ndarray) -> np.ndarray:
    """The position of each bucket (given by its lower bound) in the log-linear layout:
    0..2047 one per value, then 1024 sub-buckets per power of two."""
    lower = np.asarray(lower_ns, dtype=np.int64)
    _, exp = np.frexp(np.maximum(lower, 1).astype(np.float64))  # exact below 2**53
    shift = np.maximum(exp.astype(np.int64) - 1 - 10, 0)
    sub = lower >> shift
    return np.where(lower < SUB_BUCKETS, lower, SUB_BUCKETS + (shift - 1) * _HALF + (sub - _HALF))


def _bounds_of(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of bucket_index: (lower, upper) of each bucket position."""
    index = np.asarray(index, dtype=np.int64)
    shift = np.where(index < SUB_BUCKETS, 0, (index - SUB_BUCKETS) // _HALF + 1)
    sub = np.where(index < SUB_BUCKETS, index, (index - SUB_BUCKETS) % _HALF + _HALF)
    return sub << shift, (sub + 1) << shift


def merge_groups(
    groups: np.ndarray, lower: np.ndarray, upper: np.ndarray, counts: np.ndarray
) -> dict[int, Merged]:
    """Merge bucket rows per group (rows with group < 0 are left out): for each group, exactly
    what `merge` gives for the histograms of its rows, computed by one bincount over
    (group, bucket) instead of a Python loop per bucket."""
    return _split(*_aggregate(groups, lower, upper, counts))


def merge_groups_chunked(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> dict[int, Merged]:
    """merge_groups over rows given in chunks (groups, lower, upper, counts): each chunk
    aggregated on its own, then the partial sums (far fewer rows) once more. Sums of counts
    are exact, so the result is the same; a chunk's temporaries stay small, which on a large
    run is most of the cost (fresh memory for tens of millions of rows is slow to touch)."""
    parts = [_aggregate(*chunk) for chunk in chunks]
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return {}
    return _split(*_aggregate(*(np.concatenate(column) for column in zip(*parts, strict=True))))


def merge_trial_groups(
    group_of: Mapping[str, int], chunks: Iterable[LatencyChunk], kind: str = "primary"
) -> dict[int, Merged]:
    """merge_groups over latency rows given in chunks (store's LatencyChunk), each trial's
    rows in the group `group_of` gives its id (trials absent from it, or with a negative
    group, are left out); only rows of `kind` (a row without a kind counts as primary)."""

    def grouped() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        for chunk in chunks:
            by_code = np.array([group_of.get(t, -1) for t in chunk.trial_ids] + [-1], np.int64)
            keep = np.array([k == kind for k in chunk.kinds] + [kind == "primary"], bool)
            rows = by_code[chunk.trial_codes]  # code -1: the appended "none"
            rows[~keep[chunk.kind_codes]] = -1
            yield rows, chunk.lower_ns, chunk.upper_ns, chunk.count

    return merge_groups_chunked(grouped())


Aggregated = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # group, lower, upper, n


def _aggregate(
    groups: np.ndarray, lower: np.ndarray, upper: np.ndarray, counts: np.ndarray
) -> Aggregated:
    """Rows summed per (group, bucket), sorted by group then lower bound, without empty ones."""
    keep = groups >= 0
    if not keep.all():
        groups, lower, upper, counts = groups[keep], lower[keep], upper[keep], counts[keep]
    if len(groups) == 0:
        return EMPTY_AGGREGATE
    # The distinct lower bounds (a few thousand among millions of rows), by hashing.
    encoded = pc.dictionary_encode(pa.array(lower, type=pa.int64()))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    distinct = encoded.dictionary.to_numpy()
    standard_lower, standard_upper = _bounds_of(bucket_index(distinct))
    if not (
        np.array_equal(standard_lower, distinct) and np.array_equal(standard_upper[codes], upper)
    ):
        return _aggregate_by_bounds(groups, lower, upper, counts)
    order = np.argsort(distinct)  # bucket position = rank of its lower bound
    position = np.empty(len(distinct), dtype=np.int64)
    position[order] = np.arange(len(distinct))
    lows, highs = distinct[order], standard_upper[order]
    width = len(distinct)
    key = groups.astype(np.int64) * width + position[codes]
    sums = np.bincount(key, weights=counts.astype(np.float64))  # exact below 2**53 per bucket
    cells = np.flatnonzero(sums)
    return (
        cells // width,
        lows[cells % width],
        highs[cells % width],
        np.rint(sums[cells]).astype(np.int64),
    )


EMPTY_AGGREGATE: Aggregated = (
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
)


def _split(owner: np.ndarray, lower: np.ndarray, upper: np.ndarray, n: np.ndarray) -> dict:
    out: dict[int, Merged] = {}
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else []
    ends = np.r_[starts[1:], len(owner)] if len(owner) else []
    for a, b in zip(starts, ends, strict=True):
        out[int(owner[a])] = Merged(lower[a:b], upper[a:b], n[a:b])
    return out


def _aggregate_by_bounds(
    groups: np.ndarray, lower: np.ndarray, upper: np.ndarray, counts: np.ndarray
) -> Aggregated:
    """_aggregate for buckets outside the standard layout: a group-by on (group, lower,
    upper), as `merge` keys them."""
    frame = pd.DataFrame({"g": groups, "lo": lower, "hi": upper, "n": counts})
    summed = frame.groupby(["g", "lo", "hi"], sort=True)["n"].sum()
    summed = summed[summed != 0].reset_index()
    return (
        summed["g"].to_numpy(np.int64),
        summed["lo"].to_numpy(np.int64),
        summed["hi"].to_numpy(np.int64),
        summed["n"].to_numpy(np.int64),
    )
