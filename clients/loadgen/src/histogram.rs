//! Log-linear latency histogram, the definition shared with `harness/histogram.py`
//! (docs/loadgen.md, "Latency histogram").
//!
//! Values are nanoseconds. `v < 2048` has its own bucket; above that every power of two is split
//! into 1024 equal sub-buckets, so a bucket is never wider than 1/1024 of its lower bound. This is
//! HdrHistogram with 3 significant digits and a lowest value of 1 ns. Values above [`MAX_NS`] are
//! clamped to it and counted. `min`, `max` and `sum` are kept exactly.
//!
//! One histogram per thread and interval; merging adds counts, so merging is exact.

/// Sub-buckets per power of two (the exact range `0..SUB_BUCKETS` is one bucket per value).
pub const SUB_BUCKETS: u64 = 2048;
/// Largest recordable value, 60 s; larger values are clamped to it.
pub const MAX_NS: u64 = 60_000_000_000;
/// Number of buckets needed to hold `0..=MAX_NS`.
const LEN: usize = index(MAX_NS) + 1;
const HALF: u64 = SUB_BUCKETS / 2;

/// Bucket index of `v` (`v <= MAX_NS`): `shift * 1024 + (v >> shift)`, where
/// `shift = max(0, floor(log2 v) - 10)`.
#[inline]
pub const fn index(v: u64) -> usize {
    let log2 = 63 - (v | 1).leading_zeros() as u64;
    let shift = log2.saturating_sub(10);
    (shift * HALF + (v >> shift)) as usize
}

/// `[lower, upper)` of bucket `i`.
pub const fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB_BUCKETS {
        return (i, i + 1);
    }
    let shift = i / HALF - 1;
    let sub = i - shift * HALF;
    (sub << shift, (sub + 1) << shift)
}

/// Nearest rank of percentile `ppm` (parts per million: p99.9 = 999_000) among `n` values:
/// `max(1, ceil(ppm * n / 10^6))`, computed exactly (floats get e.g. p99.9 of 1000 wrong).
pub fn rank(ppm: u64, n: u64) -> u64 {
    let r = (u128::from(ppm) * u128::from(n)).div_ceil(1_000_000);
    (r as u64).max(1)
}

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    /// Sum of the unclamped values (u64 holds 584 years of latency).
    sum: u64,
    min: u64,
    max: u64,
    clamped: u64,
}

/// The non-empty buckets of a histogram plus its exact statistics: what a thread hands over
/// at the end of an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub buckets: Vec<(u32, u64)>,
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    pub clamped: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; LEN].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
            clamped: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        let c = if v > MAX_NS {
            self.clamped += 1;
            MAX_NS
        } else {
            v
        };
        self.counts[index(c)] += 1;
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// Highest value of the bucket holding the nearest-rank `ppm` percentile (never below the
    /// true nearest-rank value, at most 1/1024 above it); `None` when empty.
    pub fn percentile(&self, ppm: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let r = rank(ppm, self.count);
        let mut seen = 0;
        for (_, upper, c) in self.buckets() {
            seen += c;
            if seen >= r {
                return Some(upper - 1);
            }
        }
        unreachable!("rank {r} beyond count {}", self.count)
    }

    /// The counts array from bucket 0 through the bucket of the largest value (empty when the
    /// histogram is): HdrHistogram's own layout, see `hlog`.
    pub fn counts_through_max(&self) -> &[u64] {
        match self.max() {
            None => &[],
            Some(max) => &self.counts[..=index(max.min(MAX_NS))],
        }
    }

    /// Non-empty buckets in increasing order, as `(lower, upper, count)`.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        let range = self.used_range();
        self.counts[range.clone()]
            .iter()
            .zip(range)
            .filter(|(c, _)| **c > 0)
            .map(|(c, i)| {
                let (lo, hi) = bounds(i);
                (lo, hi, *c)
            })
    }

    /// Indices that can be non-empty: those between the buckets of min and max.
    fn used_range(&self) -> std::ops::Range<usize> {
        if self.count == 0 {
            return 0..0;
        }
        index(self.min.min(MAX_NS))..index(self.max.min(MAX_NS)) + 1
    }

    pub fn snapshot(&self) -> Snapshot {
        let range = self.used_range();
        let buckets = self.counts[range.clone()]
            .iter()
            .zip(range)
            .filter(|(c, _)| **c > 0)
            .map(|(c, i)| (i as u32, *c))
            .collect();
        Snapshot {
            buckets,
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            clamped: self.clamped,
        }
    }

    /// Empties the histogram; costs the used range, not the whole array.
    pub fn clear(&mut self) {
        let range = self.used_range();
        self.counts[range].fill(0);
        self.count = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
        self.clamped = 0;
    }

    /// Merges a snapshot by adding counts.
    pub fn add_snapshot(&mut self, s: &Snapshot) {
        for &(i, c) in &s.buckets {
            self.counts[i as usize] += c;
        }
        self.add_stats(s.count, s.sum, s.min, s.max, s.clamped);
    }

    /// Merges another histogram by adding counts.
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.add_stats(other.count, other.sum, other.min, other.max, other.clamped);
    }

    fn add_stats(&mut self, count: u64, sum: u64, min: u64, max: u64, clamped: u64) {
        self.count += count;
        self.sum += sum;
        self.clamped += clamped;
        if count > 0 {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentiles the report uses, in ppm.
    const PPMS: [u64; 7] = [0, 1, 500_000, 900_000, 990_000, 999_000, 999_900];

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn bucketing_edges() {
        for v in 0..2048 {
            assert_eq!(index(v), v as usize);
            assert_eq!(bounds(index(v)), (v, v + 1));
        }
        assert_eq!(bounds(index(2048)), (2048, 2050));
        assert_eq!(bounds(index(2049)), (2048, 2050));
        assert_eq!(bounds(index(2050)), (2050, 2052));
        assert_eq!(bounds(index(4095)), (4094, 4096));
        assert_eq!(bounds(index(4096)), (4096, 4100));
        let m = 1u64 << 35;
        assert_eq!(bounds(index(m - 1)), (m - (1 << 24), m));
        assert_eq!(bounds(index(m)), (m, m + (1 << 25)));
        assert_eq!(index(MAX_NS), LEN - 1);
    }

    #[test]
    fn buckets_are_contiguous_and_contain_their_values() {
        for i in 0..LEN - 1 {
            let (lo, hi) = bounds(i);
            assert_eq!(bounds(i + 1).0, hi, "gap after bucket {i}");
            assert!(
                hi - lo == 1 || (hi - lo) * 1024 <= lo,
                "bucket {i} too wide"
            );
            assert_eq!(index(lo), i);
            assert_eq!(index(hi - 1), i);
        }
    }

    #[test]
    fn clamps_above_60s_and_keeps_exact_stats() {
        let mut h = Histogram::new();
        h.record(5);
        h.record(MAX_NS + 1);
        assert_eq!(h.clamped(), 1);
        assert_eq!(h.min(), Some(5));
        assert_eq!(h.max(), Some(MAX_NS + 1));
        assert_eq!(h.mean(), Some((MAX_NS + 6) as f64 / 2.0));
        assert_eq!(h.percentile(1_000_000), Some(bounds(index(MAX_NS)).1 - 1));
        assert_eq!(h.buckets().map(|b| b.2).sum::<u64>(), 2);
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.percentile(500_000), None);
        assert_eq!(h.min(), None);
        assert_eq!(h.mean(), None);
        assert_eq!(h.buckets().count(), 0);
        assert!(h.snapshot().buckets.is_empty());
    }

    #[test]
    fn exact_rank() {
        assert_eq!(rank(999_000, 1000), 999); // 99.9/100*1000 is 999.0000000000001 in floats
        assert_eq!(rank(999_900, 10_000), 9999);
        assert_eq!(rank(500_000, 1), 1);
        assert_eq!(rank(0, 10), 1);
        assert_eq!(rank(500_000, 3), 2);
    }

    #[test]
    fn percentiles_match_sorted_reference() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for n in [1usize, 2, 3, 10, 999, 1000, 12_345] {
            let mut h = Histogram::new();
            // Log-uniform values from 1 ns to ~2^36 ns, so every regime (exact, log, clamp) is hit.
            let mut values: Vec<u64> = (0..n)
                .map(|_| {
                    let bits = rng.next() % 37;
                    (rng.next() >> (64 - bits.max(1))).max(1)
                })
                .collect();
            values.iter().for_each(|&v| h.record(v));
            values.sort_unstable();
            for ppm in PPMS.into_iter().chain([1_000_000]) {
                let truth = values[rank(ppm, n as u64) as usize - 1];
                let got = h.percentile(ppm).unwrap();
                let c = truth.min(MAX_NS);
                assert_eq!(got, bounds(index(c)).1 - 1, "n={n} ppm={ppm}");
                assert!(got >= c && (got - c) * 1024 <= c, "n={n} ppm={ppm}");
            }
            assert_eq!(h.min(), values.first().copied());
            assert_eq!(h.max(), values.last().copied());
            assert_eq!(h.count(), n as u64);
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut rng = XorShift(7);
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for i in 0..10_000 {
            let v = rng.next() % 10_000_000;
            if i % 3 == 0 { &mut a } else { &mut b }.record(v);
            all.record(v);
        }
        let mut via_add = a.clone();
        via_add.add(&b);
        let mut via_snapshot = Histogram::new();
        via_snapshot.add_snapshot(&a.snapshot());
        via_snapshot.add_snapshot(&b.snapshot());
        via_snapshot.add_snapshot(&Histogram::new().snapshot());
        for m in [&via_add, &via_snapshot] {
            assert_eq!(m.snapshot(), all.snapshot());
            for ppm in PPMS {
                assert_eq!(m.percentile(ppm), all.percentile(ppm));
            }
        }
    }

    #[test]
    fn clear_resets_everything() {
        let mut h = Histogram::new();
        for v in [3, 3000, 3_000_000] {
            h.record(v);
        }
        h.clear();
        assert_eq!(h.snapshot(), Histogram::new().snapshot());
        assert!(h.counts.iter().all(|&c| c == 0));
        h.record(42);
        assert_eq!(h.percentile(500_000), Some(42));
    }
}
