//! Latency histogram: the `hdrhistogram` crate (HdrHistogram's Rust port) with 3 significant
//! digits over 1 ns .. 60 s, plus the exact statistics it does not keep (docs/loadgen.md,
//! "Latency histogram"; the definition shared with `harness/analysis/histogram.py`).
//!
//! With these bounds HdrHistogram's layout is: `v < 2048` has its own bucket; above that every
//! power of two is split into 1024 equal sub-buckets, so a bucket is never wider than 1/1024 of
//! its lower bound (the tests check the crate against that formula). Values above [`MAX_NS`] are
//! clamped to it and counted. `min`, `max` and `sum` are kept exactly, beside the buckets.
//!
//! Percentiles use an exact integer nearest rank (`max(1, ceil(ppm * n / 10^6))`), not the
//! crate's `value_at_quantile`, whose float rank gets e.g. p99.9 of 1000 values wrong; the
//! answer is the highest equivalent value of the bucket holding that rank, as HdrHistogram's is.
//!
//! One histogram per thread and interval; merging adds counts, so merging is exact.

use hdrhistogram::Histogram as Hdr;

/// HdrHistogram's sub-bucket count for 3 significant digits (the exact range `0..SUB_BUCKETS`
/// is one bucket per value).
pub const SUB_BUCKETS: u64 = 2048;
/// Largest recordable value, 60 s; larger values are clamped to it.
pub const MAX_NS: u64 = 60_000_000_000;
/// Lowest discernible value, 1 ns.
pub const LOWEST_NS: u64 = 1;
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Nearest rank of percentile `ppm` (parts per million: p99.9 = 999_000) among `n` values:
/// `max(1, ceil(ppm * n / 10^6))`, computed exactly (floats get e.g. p99.9 of 1000 wrong).
pub fn rank(ppm: u64, n: u64) -> u64 {
    let r = (u128::from(ppm) * u128::from(n)).div_ceil(1_000_000);
    (r as u64).max(1)
}

fn new_hdr() -> Hdr<u64> {
    Hdr::new_with_bounds(LOWEST_NS, MAX_NS, SIGNIFICANT_DIGITS)
        .expect("1 ns .. 60 s at 3 significant digits is a valid HdrHistogram")
}

#[derive(Clone)]
pub struct Histogram {
    hdr: Hdr<u64>,
    /// Sum of the unclamped values (u64 holds 584 years of latency).
    sum: u64,
    min: u64,
    max: u64,
    clamped: u64,
}

/// The non-empty buckets of a histogram (as `(value, count)`, any value of the bucket) plus its
/// exact statistics: what a thread hands over at the end of an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub buckets: Vec<(u64, u64)>,
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
            hdr: new_hdr(),
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
        self.hdr.saturating_record(c);
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The HdrHistogram itself (for its V2 encoding in the interval log).
    pub fn hdr(&self) -> &Hdr<u64> {
        &self.hdr
    }

    pub fn count(&self) -> u64 {
        self.hdr.len()
    }
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
    pub fn min(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max)
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.sum as f64 / self.count() as f64)
    }

    /// Highest value of the bucket holding the nearest-rank `ppm` percentile (never below the
    /// true nearest-rank value, at most 1/1024 above it); `None` when empty.
    pub fn percentile(&self, ppm: u64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let r = rank(ppm, n);
        let mut seen = 0;
        for v in self.hdr.iter_recorded() {
            seen += v.count_at_value();
            if seen >= r {
                return Some(self.hdr.highest_equivalent(v.value_iterated_to()));
            }
        }
        unreachable!("rank {r} beyond count {n}")
    }

    /// The `ppm` percentile were the `censored` values (a subset of this histogram's, each a
    /// lower bound of a latency never observed) all unbounded: so an upper bound of the true
    /// percentile, where [`Histogram::percentile`] is a lower one. `None` when empty or when the
    /// rank falls among the censored values (no upper bound).
    pub fn percentile_censored_unbounded(&self, censored: &Histogram, ppm: u64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        if censored.count() == 0 {
            return self.percentile(ppm);
        }
        let mut known = self.hdr.clone();
        known.subtract(&censored.hdr).ok()?;
        let r = rank(ppm, n);
        let mut seen = 0;
        for v in known.iter_recorded() {
            seen += v.count_at_value();
            if seen >= r {
                return Some(known.highest_equivalent(v.value_iterated_to()));
            }
        }
        None
    }

    /// Non-empty buckets in increasing order, as `(lower, upper, count)` with `upper`
    /// exclusive.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.hdr.iter_recorded().map(|v| {
            let x = v.value_iterated_to();
            (
                self.hdr.lowest_equivalent(x),
                self.hdr.next_non_equivalent(x),
                v.count_at_value(),
            )
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        let buckets = if self.count() == 0 {
            Vec::new()
        } else {
            self.hdr
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        Snapshot {
            buckets,
            count: self.count(),
            sum: self.sum,
            min: self.min,
            max: self.max,
            clamped: self.clamped,
        }
    }

    /// Empties the histogram.
    pub fn clear(&mut self) {
        if self.count() > 0 {
            self.hdr.reset();
        }
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
        self.clamped = 0;
    }

    /// Merges a snapshot by adding counts.
    pub fn add_snapshot(&mut self, s: &Snapshot) {
        for &(v, c) in &s.buckets {
            self.hdr.saturating_record_n(v, c);
        }
        self.add_stats(s.sum, s.min, s.max, s.clamped);
    }

    /// Merges another histogram by adding counts.
    pub fn add(&mut self, other: &Histogram) {
        self.hdr
            .add(&other.hdr)
            .expect("histograms of the same bounds always add");
        self.add_stats(other.sum, other.min, other.max, other.clamped);
    }

    fn add_stats(&mut self, sum: u64, min: u64, max: u64, clamped: u64) {
        self.sum += sum;
        self.clamped += clamped;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentiles the report uses, in ppm.
    const PPMS: [u64; 7] = [0, 1, 500_000, 900_000, 990_000, 999_000, 999_900];

    /// `[lower, upper)` of the bucket holding `v` by the formula of docs/loadgen.md.
    fn documented_bucket(v: u64) -> (u64, u64) {
        if v < SUB_BUCKETS {
            return (v, v + 1);
        }
        let shift = (63 - v.leading_zeros() as u64) - 10;
        let sub = v >> shift;
        (sub << shift, (sub + 1) << shift)
    }

    fn bucket_of(h: &Histogram, v: u64) -> (u64, u64) {
        (h.hdr.lowest_equivalent(v), h.hdr.next_non_equivalent(v))
    }

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
    fn the_crate_buckets_as_documented() {
        let h = Histogram::new();
        let mut rng = XorShift(99);
        let edges = (0..4200).chain([1 << 35, (1 << 35) - 1, MAX_NS - 1, MAX_NS]);
        for v in edges.chain((0..20_000).map(|_| rng.next() % MAX_NS)) {
            let (lo, hi) = documented_bucket(v);
            assert_eq!(bucket_of(&h, v), (lo, hi), "value {v}");
            assert!(
                hi - lo == 1 || (hi - lo) * 1024 <= lo,
                "bucket of {v} too wide"
            );
        }
        assert_eq!(bucket_of(&h, 2049), (2048, 2050));
        assert_eq!(bucket_of(&h, 4096), (4096, 4100));
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
        assert_eq!(
            h.percentile(1_000_000),
            Some(documented_bucket(MAX_NS).1 - 1)
        );
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
                assert_eq!(got, documented_bucket(c).1 - 1, "n={n} ppm={ppm}");
                assert!(got >= c && (got - c) * 1024 <= c, "n={n} ppm={ppm}");
            }
            assert_eq!(h.min(), values.first().copied());
            assert_eq!(h.max(), values.last().copied());
            assert_eq!(h.count(), n as u64);
            let buckets: Vec<_> = h.buckets().collect();
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].0));
            assert!(buckets
                .iter()
                .all(|&(lo, hi, _)| documented_bucket(lo) == (lo, hi)));
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
    fn censored_values_bound_the_percentiles_from_both_sides() {
        let (mut all, mut censored) = (Histogram::new(), Histogram::new());
        for v in 1..=100 {
            all.record(v);
        }
        for v in [10, 20] {
            censored.record(v); // also in `all`: two of the 100 are at least 10 and 20
        }
        assert_eq!(all.percentile(500_000), Some(50));
        // Moving 10 and 20 to infinity shifts the rank-50 value up by two.
        assert_eq!(
            all.percentile_censored_unbounded(&censored, 500_000),
            Some(52)
        );
        assert_eq!(
            all.percentile_censored_unbounded(&censored, 980_000),
            Some(100)
        );
        assert_eq!(all.percentile_censored_unbounded(&censored, 990_000), None);
        assert_eq!(
            all.percentile_censored_unbounded(&Histogram::new(), 990_000),
            Some(99)
        );
    }

    #[test]
    fn clear_resets_everything() {
        let mut h = Histogram::new();
        for v in [3, 3000, 3_000_000] {
            h.record(v);
        }
        h.clear();
        assert_eq!(h.snapshot(), Histogram::new().snapshot());
        h.record(42);
        assert_eq!(h.percentile(500_000), Some(42));
        assert_eq!(h.min(), Some(42));
    }
}
