"""The shared histogram definition: merging and percentiles against numpy on random data."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from harness.analysis import histogram


def test_bucket_bounds_edges():
    assert histogram.bucket_bounds(0) == (0, 1)
    assert histogram.bucket_bounds(2047) == (2047, 2048)
    assert histogram.bucket_bounds(2048) == (2048, 2050)
    assert histogram.bucket_bounds(4095) == (4094, 4096)
    assert histogram.bucket_bounds(4096) == (4096, 4100)
    for v in (2048, 12345, 10**6, 60 * 10**9):
        lo, hi = histogram.bucket_bounds(v)
        assert lo <= v < hi
        assert (hi - lo) / lo <= 1 / 1024


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merged_percentiles_match_numpy(seed):
    rng = np.random.default_rng(seed)
    # Latency-like data: lognormal around 50 us with a heavy tail, in ns.
    parts = [rng.lognormal(np.log(50_000), 0.8, size=20_000).astype(np.int64) for _ in range(4)]
    merged = histogram.merge(histogram.record(p) for p in parts)
    allv = np.concatenate(parts)
    assert histogram.total(merged) == allv.size
    for p in (1, 50, 90, 99, 99.9, 99.99, 100):
        # Nearest rank computed exactly on numpy's sorted values (np.percentile's inverted_cdf
        # computes n*q in floats and lands one rank high when n*q is a whole number).
        rank = max(1, math.ceil(Fraction(str(p)) / 100 * allv.size))
        want = int(np.sort(allv)[rank - 1])
        got = histogram.percentile_ns(merged, p)
        assert got is not None
        assert want <= got <= want * (1 + 1 / 1024) + 1, (p, want, got)


def test_merge_adds_counts_and_empty():
    a = histogram.record([100, 100, 5000])
    b = histogram.record([100, 7000])
    m = histogram.merge([a, b])
    assert dict(((lo, hi), n) for lo, hi, n in m)[(100, 101)] == 3
    assert histogram.total(m) == 5
    assert histogram.percentile_ns([], 50) is None
    with pytest.raises(ValueError):
        histogram.percentile_ns(m, 0)


def test_rank_is_exact():
    # 1000 distinct exact values: p99.9 is the 999th, not the 1000th (float rounding trap).
    hist = histogram.record(range(1, 1001))
    assert histogram.percentile_ns(hist, 99.9) == 999
    assert histogram.percentile_ns(hist, 50) == 500
