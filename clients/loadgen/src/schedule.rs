//! One connection's open-loop schedule (docs/loadgen.md, "Open loop"): an endless, seeded
//! sequence of intended send times, and the queue of requests that are due but not sent yet.
//!
//! The queue costs O(1) memory whatever its length: the due-but-unsent requests are always a
//! contiguous stretch of the sequence (they leave in order), so the schedule keeps two cursors
//! over the same deterministic sequence, `due` (the next request to become due) and `send` (the
//! oldest due request not handed to the connection yet). `backlog` is the distance between them;
//! handing a request over advances `send`, which regenerates exactly the intended time `due`
//! produced earlier. A backlog that would exceed [`BACKLOG_LIMIT`] drops its oldest request
//! (counted as a `queue_overflow` error by the caller).

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cli::Arrival;

/// Most requests a connection keeps waiting for room in its pipeline.
pub const BACKLOG_LIMIT: u64 = 1 << 16;

/// A position in the sequence of intended send times.
#[derive(Clone)]
struct Cursor {
    arrival: Arrival,
    /// Mean gap between two requests, in ns.
    gap_ns: f64,
    /// Uniform: offset of request 0 from the origin, in ns.
    phase_ns: f64,
    rng: ChaCha8Rng,
    /// Index of the request this cursor is at.
    k: u64,
    /// Its intended time, ns after the origin.
    at_ns: f64,
}

impl Cursor {
    fn first(arrival: Arrival, gap_ns: f64, phase_ns: f64, rng: ChaCha8Rng) -> Cursor {
        let mut c = Cursor {
            arrival,
            gap_ns,
            phase_ns,
            rng,
            k: 0,
            at_ns: 0.0,
        };
        c.at_ns = match arrival {
            Arrival::Uniform => phase_ns,
            Arrival::Poisson => c.exponential_gap(),
        };
        c
    }

    /// An exponential variate of mean `gap_ns`: `-ln(1 - U) * gap` with `U` uniform in [0, 1)
    /// on 53 bits, so `1 - U` is never 0.
    fn exponential_gap(&mut self) -> f64 {
        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        -(1.0 - u).ln() * self.gap_ns
    }

    fn advance(&mut self) {
        self.k += 1;
        self.at_ns = match self.arrival {
            // From the index, not by summing, so no rounding error accumulates.
            Arrival::Uniform => self.phase_ns + self.k as f64 * self.gap_ns,
            Arrival::Poisson => self.at_ns + self.exponential_gap(),
        };
    }
}

/// A request that became due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub intended_ns: u64,
    /// The backlog was full: its oldest request, intended for this time, was dropped to make
    /// room.
    pub dropped: Option<u64>,
}

pub struct Schedule {
    origin_ns: u64,
    due: Cursor,
    send: Cursor,
    backlog: u64,
}

impl Schedule {
    /// The schedule of connection `index` (of `connections`): `rate` requests/s from `origin_ns`
    /// on. Poisson schedules draw from ChaCha8 seeded with `seed`, stream `index`, so they do not
    /// depend on how connections are spread over threads. Uniform schedules are phase-shifted by
    /// `index / connections` of their period, so equal-rate connections interleave evenly.
    pub fn new(
        arrival: Arrival,
        rate: f64,
        seed: u64,
        index: usize,
        connections: usize,
        origin_ns: u64,
    ) -> Schedule {
        let gap_ns = 1e9 / rate;
        let phase_ns = gap_ns * index as f64 / connections as f64;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        let due = Cursor::first(arrival, gap_ns, phase_ns, rng);
        Schedule {
            origin_ns,
            send: due.clone(),
            due,
            backlog: 0,
        }
    }

    fn time(&self, c: &Cursor) -> u64 {
        self.origin_ns.saturating_add(c.at_ns.round() as u64)
    }

    /// When the next request becomes due.
    pub fn next_due(&self) -> u64 {
        self.time(&self.due)
    }

    /// Requests due and not handed over yet.
    #[cfg(test)]
    pub fn backlog(&self) -> u64 {
        self.backlog
    }

    /// Admits the next request if it is due at `now`.
    pub fn admit(&mut self, now: u64) -> Option<Admission> {
        let intended_ns = self.next_due();
        if intended_ns > now {
            return None;
        }
        self.due.advance();
        let dropped = if self.backlog == BACKLOG_LIMIT {
            let oldest = self.time(&self.send);
            self.send.advance();
            Some(oldest)
        } else {
            self.backlog += 1;
            None
        };
        Some(Admission {
            intended_ns,
            dropped,
        })
    }

    /// Hands over the oldest due request: its intended send time.
    pub fn take(&mut self) -> Option<u64> {
        if self.backlog == 0 {
            return None;
        }
        let t = self.time(&self.send);
        self.send.advance();
        self.backlog -= 1;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit_all(s: &mut Schedule, now: u64) -> Vec<u64> {
        std::iter::from_fn(|| s.admit(now).map(|a| a.intended_ns)).collect()
    }

    #[test]
    fn uniform_is_evenly_spaced_and_phase_shifted() {
        // 1000/s: a gap of 1 ms; connection 1 of 4 starts a quarter gap late.
        let mut s = Schedule::new(Arrival::Uniform, 1000.0, 0, 1, 4, 10);
        assert_eq!(s.next_due(), 10 + 250_000);
        assert_eq!(
            admit_all(&mut s, 10 + 3_250_000),
            [250_010, 1_250_010, 2_250_010, 3_250_010]
        );
        assert_eq!(s.backlog(), 4);
        assert_eq!(s.take(), Some(250_010));
        assert_eq!(s.backlog(), 3);
        // Far along, still exact (computed from the index).
        let mut far = Schedule::new(Arrival::Uniform, 3.0, 0, 0, 1, 0);
        for _ in 0..3_000_000 {
            far.admit(u64::MAX);
        }
        assert_eq!(far.next_due(), 1_000_000_000_000_000);
    }

    #[test]
    fn the_send_cursor_replays_the_due_times() {
        let mut s = Schedule::new(Arrival::Poisson, 50_000.0, 42, 3, 8, 1_000);
        let admitted = admit_all(&mut s, 1_000 + 10_000_000);
        assert!(admitted.windows(2).all(|w| w[0] <= w[1]));
        let taken: Vec<u64> = std::iter::from_fn(|| s.take()).collect();
        assert_eq!(taken, admitted);
        assert_eq!(s.take(), None);
    }

    #[test]
    fn poisson_has_the_right_mean_and_spread_and_is_seeded() {
        let rate = 10_000.0;
        let mut s = Schedule::new(Arrival::Poisson, rate, 7, 0, 1, 0);
        let times = admit_all(&mut s, 10_000_000_000); // 10 s: ~100k requests
        let n = times.len() as f64;
        assert!((n - 100_000.0).abs() < 5.0 * 100_000f64.sqrt(), "{n}");
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 100_000.0).abs() < 1_500.0, "mean gap {mean}");
        // Exponential: standard deviation equals the mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.03,
            "cv {}",
            var.sqrt() / mean
        );
        // Same seed and stream, same schedule; another stream, another one.
        let again = admit_all(
            &mut Schedule::new(Arrival::Poisson, rate, 7, 0, 1, 0),
            1_000_000,
        );
        assert_eq!(again, times[..again.len()]);
        let other = admit_all(
            &mut Schedule::new(Arrival::Poisson, rate, 7, 1, 2, 0),
            1_000_000,
        );
        assert_ne!(other, again);
    }

    #[test]
    fn a_full_backlog_drops_its_oldest() {
        let mut s = Schedule::new(Arrival::Uniform, 1e9, 0, 0, 1, 0); // one per ns
        let n = BACKLOG_LIMIT + 3;
        let dropped: Vec<u64> = (0..n)
            .filter_map(|_| s.admit(u64::MAX).unwrap().dropped)
            .collect();
        assert_eq!(dropped.len(), 3);
        assert_eq!(dropped, [0, 1, 2]);
        assert_eq!(s.backlog(), BACKLOG_LIMIT);
        assert_eq!(s.take(), Some(3)); // requests 0, 1, 2 were dropped
    }
}
