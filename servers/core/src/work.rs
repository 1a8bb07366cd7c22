//! `--work DIST`: CPU burned before answering each request, so that load imbalance between
//! workers can be studied (`docs/server-contract.md`, "Per-request work").
//!
//! - A *request* is one HTTP request (16 pipelined requests burn 16 draws) or, for echo, one
//!   non-empty read: an echo server cannot see the client's message boundaries.
//! - Each worker thread draws from its own generator, seeded from `--seed` mixed with the worker
//!   index by [`Config::pin_worker`](crate::Config::pin_worker) (which every design calls on each
//!   worker thread). A thread that never called it is seeded lazily on first use with a stream
//!   number of its own (see [`LAZY_STREAM_BASE`]).
//! - The burn runs inline on the thread that handles the request, before the reply is built.
//!
//! # Why the burn spins on the monotonic clock
//!
//! [`burn`] spins reading `Instant::now()` (`clock_gettime(CLOCK_MONOTONIC)`, served by the vDSO
//! without a system call, ~20-30 ns) until the drawn duration has passed. Unlike an iteration
//! count calibrated at start-up it needs no calibration, so it cannot be mis-calibrated, and the
//! service time it produces does not depend on the frequency the core happens to run at (turbo
//! varies with how many cores are busy, which differs between designs) nor on an SMT sibling: a
//! drawn 50 us is 50 us of the worker's time in every design, which is the service time the
//! queueing models of `docs/` reason about (ZygOS and Shinjuku burn synthetic work the same way,
//! spinning on the time-stamp counter). The cost: a burn measures wall time, so if the worker is
//! preempted in the middle of one (oversubscribed trials, which the harness flags), the burn
//! ends on time having used less CPU. Overshoot is at most one clock read; burns much shorter
//! than ~1 us are dominated by that granularity.
//!
//! The compiler cannot remove the loop: every iteration calls `clock_gettime` through libc, an
//! opaque call with side effects, and the loop's exit depends on its result. The loop has no
//! `spin_loop()` hint: a request doing real work does not execute `PAUSE`, which would hand the
//! core to an SMT sibling. [`burn`] is never inlined, so a profile shows it as one symbol.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use once_cell::sync::OnceCell;

/// `--seed` when none is given (the harness's default seed too).
pub const DEFAULT_SEED: u64 = 1;

/// Largest microsecond parameter accepted (1 s): a request that burns longer is not a server
/// benchmark any more.
pub const MAX_US: f64 = 1e6;

/// Largest single draw (10 s), a safety net for heavy tails (`lognormal` with a large sigma):
/// a draw is clamped to it.
pub const MAX_DRAW: Duration = Duration::from_secs(10);

/// Threads that were never given a worker index draw from streams `LAZY_STREAM_BASE + k`
/// (k = 0, 1, ... in the order they first draw), disjoint from worker streams `0..threads`.
pub const LAZY_STREAM_BASE: u64 = 1 << 32;

const SYNTAX: &str = "none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2 or lognormal:MEDIAN_US:SIGMA";

/// A distribution of per-request CPU time (`--work`). Built by parsing, which guarantees finite,
/// non-negative parameters within [`MAX_US`] and `P2` in 0..=1.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WorkDist(Dist);

// Every parameter is finite (parsing rejects NaN and infinities, and the fields are private), so
// `==` on them is an equivalence relation.
impl Eq for WorkDist {}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Dist {
    /// No work: the default; sessions skip the burn entirely.
    #[default]
    None,
    /// Always `us`.
    Fixed { us: f64 },
    /// Exponential with mean `mean_us`.
    Exp { mean_us: f64 },
    /// `us2` with probability `p2`, else `us1`.
    Bimodal { us1: f64, us2: f64, p2: f64 },
    /// `median_us * exp(sigma * Z)`, Z standard normal.
    LogNormal { median_us: f64, sigma: f64 },
}

impl WorkDist {
    /// No work (`--work none`).
    pub const NONE: WorkDist = WorkDist(Dist::None);

    pub fn is_none(self) -> bool {
        matches!(self.0, Dist::None)
    }

    /// The distribution's mean in microseconds (before the [`MAX_DRAW`] clamp, which only
    /// matters for absurd parameters).
    pub fn mean_us(self) -> f64 {
        match self.0 {
            Dist::None => 0.0,
            Dist::Fixed { us } => us,
            Dist::Exp { mean_us } => mean_us,
            Dist::Bimodal { us1, us2, p2 } => us1 * (1.0 - p2) + us2 * p2,
            Dist::LogNormal { median_us, sigma } => median_us * (sigma * sigma / 2.0).exp(),
        }
    }

    /// One draw, in nanoseconds (rounded, clamped to [`MAX_DRAW`]).
    pub fn sample_ns(self, rng: &mut Rng) -> u64 {
        let us = match self.0 {
            Dist::None => return 0,
            Dist::Fixed { us } => us,
            // Inversion; open01 is never 0, so ln is finite.
            Dist::Exp { mean_us } => -mean_us * rng.open01().ln(),
            // unit() < 1 always, so p2 = 1 always picks us2 and p2 = 0 never does.
            Dist::Bimodal { us1, us2, p2 } => {
                if rng.unit() < p2 {
                    us2
                } else {
                    us1
                }
            }
            // Box-Muller (the cosine half; the sine half is dropped to keep no state).
            Dist::LogNormal { median_us, sigma } => {
                let radius = (-2.0 * rng.open01().ln()).sqrt();
                let z = radius * (std::f64::consts::TAU * rng.unit()).cos();
                median_us * (sigma * z).exp()
            }
        };
        // `as` saturates (and maps NaN to 0), so no draw can overflow.
        (us * 1e3).min(MAX_DRAW.as_nanos() as f64).round() as u64
    }

    /// Draws from the calling thread's generator and burns that long: the per-request hook of
    /// [`Session`](crate::Session). Does nothing (not even a draw) for `none`.
    pub fn run_one(self) {
        if self.is_none() {
            return;
        }
        let ns = with_thread_rng(|rng| self.sample_ns(rng));
        burn(ns);
    }
}

impl FromStr for WorkDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.collect();
        let arity = match kind {
            "none" => 0,
            "fixed" | "exp" => 1,
            "lognormal" => 2,
            "bimodal" => 3,
            _ => return Err(format!("expected {SYNTAX}, got '{s}'")),
        };
        if params.len() != arity {
            return Err(format!("expected {SYNTAX}, got '{s}'"));
        }
        let mut values = [0.0; 3];
        for (value, param) in values.iter_mut().zip(&params) {
            *value = match param.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => return Err(format!("'{param}' in '{s}' is not a number >= 0")),
            };
        }
        let [a, b, c] = values;
        let micros: &[f64] = match kind {
            "bimodal" => &values[..2],
            "lognormal" => &values[..1],
            _ => &values[..arity],
        };
        if micros.iter().any(|&us| us > MAX_US) {
            return Err(format!("'{s}': durations are at most {MAX_US} us"));
        }
        Ok(WorkDist(match kind {
            "none" => Dist::None,
            "fixed" => Dist::Fixed { us: a },
            "exp" => Dist::Exp { mean_us: a },
            "lognormal" => Dist::LogNormal {
                median_us: a,
                sigma: b,
            },
            // Only "bimodal" is left (the arity match returned for unknown kinds).
            _ if c > 1.0 => return Err(format!("'{s}': P2 is a probability, 0..1")),
            _ => Dist::Bimodal {
                us1: a,
                us2: b,
                p2: c,
            },
        }))
    }
}

/// The `--work` syntax, so that parsing the display gives the same distribution back.
impl fmt::Display for WorkDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Dist::None => write!(f, "none"),
            Dist::Fixed { us } => write!(f, "fixed:{us}"),
            Dist::Exp { mean_us } => write!(f, "exp:{mean_us}"),
            Dist::Bimodal { us1, us2, p2 } => write!(f, "bimodal:{us1}:{us2}:{p2}"),
            Dist::LogNormal { median_us, sigma } => write!(f, "lognormal:{median_us}:{sigma}"),
        }
    }
}

/// Spins until `ns` nanoseconds of wall time have passed (see the module comment for why).
#[inline(never)]
pub fn burn(ns: u64) {
    if ns == 0 {
        return;
    }
    let budget = Duration::from_nanos(ns);
    let start = Instant::now();
    while start.elapsed() < budget {}
}

/// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014; the seeder of the xoshiro family): 64 bits of
/// state, one add and three xor-shift-multiplies per draw, passes BigCrush. Written out here
/// (twelve lines) rather than taken from `rand`, whose `StdRng` algorithm may change between
/// versions: a seed must give the same draws wherever the benchmark is rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng(u64);

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator with exactly this state (the reference algorithm's seed).
    pub fn from_state(state: u64) -> Rng {
        Rng(state)
    }

    /// Stream `stream` (a worker index) of `seed`. Different streams of one seed start at
    /// different points of the 2^64 cycle (mix64 is a bijection and the stream is multiplied by
    /// an odd constant), scattered pseudo-randomly, so worker sequences do not overlap in any
    /// run of realistic length.
    pub fn for_stream(seed: u64, stream: u64) -> Rng {
        Rng(mix64(mix64(seed) ^ stream.wrapping_mul(GOLDEN_GAMMA)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// Uniform in [0, 1), 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1), 53 bits: never 0, so its logarithm is finite.
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

thread_local! {
    static THREAD_RNG: Cell<Option<Rng>> = const { Cell::new(None) };
}

/// `--work` and `--seed` of this process, set once by [`Config::from_env`](crate::Config):
/// [`Session::new`](crate::Session::new) takes only the protocol, so the distribution reaches it
/// through here (one read-only load per connection, never written after start-up).
static PROCESS_WORK: OnceCell<(WorkDist, u64)> = OnceCell::new();

static LAZY_STREAMS: AtomicU64 = AtomicU64::new(0);

/// Records the process's `--work` and `--seed`. The first call wins (there is one command line).
pub(crate) fn set_process_work(dist: WorkDist, seed: u64) {
    let _ = PROCESS_WORK.set((dist, seed));
}

/// The process's `--work`, `none` if [`set_process_work`] was never called.
pub(crate) fn process_work() -> WorkDist {
    PROCESS_WORK.get().map_or(WorkDist::NONE, |&(dist, _)| dist)
}

/// Seeds the calling thread's generator with stream `worker` of `seed`.
pub(crate) fn seed_thread(seed: u64, worker: usize) {
    THREAD_RNG.with(|rng| rng.set(Some(Rng::for_stream(seed, worker as u64))));
}

/// Runs `f` on the calling thread's generator, seeding it lazily if needed.
pub(crate) fn with_thread_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    THREAD_RNG.with(|cell| {
        let mut rng = cell.get().unwrap_or_else(|| {
            let seed = PROCESS_WORK.get().map_or(DEFAULT_SEED, |&(_, seed)| seed);
            let stream = LAZY_STREAM_BASE + LAZY_STREAMS.fetch_add(1, Ordering::Relaxed);
            Rng::for_stream(seed, stream)
        });
        let result = f(&mut rng);
        cell.set(Some(rng));
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(s: &str) -> WorkDist {
        s.parse().unwrap()
    }

    #[test]
    fn distributions_parse_and_display_round_trip() {
        for s in [
            "none",
            "fixed:50",
            "fixed:0.5",
            "exp:50",
            "bimodal:10:1000:0.01",
            "lognormal:50:1",
            "fixed:0",
            "bimodal:1:2:0",
            "bimodal:1:2:1",
            "fixed:1000000",
        ] {
            assert_eq!(dist(s).to_string(), s);
            assert_eq!(dist(&dist(s).to_string()), dist(s));
        }
        assert_eq!(WorkDist::default(), WorkDist::NONE);
        assert!(dist("none").is_none() && !dist("fixed:0").is_none());
        assert_eq!(dist("fixed:1e2"), dist("fixed:100"));
    }

    #[test]
    fn bad_distributions_are_one_line_errors() {
        for bad in [
            "",
            "None",
            "fixed",
            "fixed:",
            "fixed:-1",
            "fixed:abc",
            "fixed:NaN",
            "fixed:inf",
            "fixed:1:2",
            "exp:1000001",
            "none:1",
            "uniform:1:2",
            "bimodal:1:2",
            "bimodal:1:2:1.5",
            "bimodal:1:2000000:0.5",
            "lognormal:50",
            "lognormal:50:-1",
            "lognormal:2e6:1",
        ] {
            let err = bad.parse::<WorkDist>().unwrap_err();
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
    }

    #[test]
    fn means() {
        assert_eq!(dist("none").mean_us(), 0.0);
        assert_eq!(dist("fixed:50").mean_us(), 50.0);
        assert_eq!(dist("exp:50").mean_us(), 50.0);
        assert_eq!(dist("bimodal:10:110:0.1").mean_us(), 20.0);
        let lognormal = dist("lognormal:50:1").mean_us();
        assert!((lognormal - 50.0 * 0.5f64.exp()).abs() < 1e-9);
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // First outputs of the reference C implementation (prng.di.unimi.it/splitmix64.c) from
        // state 0 and from state 1234567.
        let first_three = |state| {
            let mut rng = Rng::from_state(state);
            [rng.next_u64(), rng.next_u64(), rng.next_u64()]
        };
        assert_eq!(
            [first_three(0), first_three(1234567)].concat(),
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f,
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }

    #[test]
    fn worker_streams_are_reproducible_and_distinct() {
        let first = |seed, stream| Rng::for_stream(seed, stream).next_u64();
        assert_eq!(first(1, 0), first(1, 0));
        assert_ne!(first(1, 0), first(1, 1));
        assert_ne!(first(1, 0), first(2, 0));
        // Stream k is not stream 0 shifted by k steps (the flaw of seeding with seed + k).
        let mut zero = Rng::for_stream(1, 0);
        let shifted: Vec<u64> = (0..64).map(|_| zero.next_u64()).collect();
        assert!(!shifted.contains(&first(1, 1)));

        // pin_worker's seeding: the same worker on any thread draws the same sequence.
        let draws = |worker| {
            std::thread::spawn(move || {
                seed_thread(7, worker);
                (0..4)
                    .map(|_| with_thread_rng(Rng::next_u64))
                    .collect::<Vec<_>>()
            })
            .join()
            .unwrap()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
        let mut expected = Rng::for_stream(7, 3);
        assert_eq!(draws(3)[0], expected.next_u64());
    }

    #[test]
    fn unseeded_threads_get_streams_of_their_own() {
        let first = || {
            std::thread::spawn(|| with_thread_rng(Rng::next_u64))
                .join()
                .unwrap()
        };
        assert_ne!(first(), first());
    }

    /// Sample statistics of a million draws (no burning): a deterministic check of the samplers.
    #[test]
    fn samplers_follow_their_distributions() {
        const N: usize = 1_000_000;
        let mut rng = Rng::for_stream(DEFAULT_SEED, 0);
        for s in [
            "fixed:50",
            "exp:50",
            "bimodal:10:1000:0.01",
            "lognormal:50:0.5",
            "lognormal:50:1",
        ] {
            let d = dist(s);
            let mut draws: Vec<u64> = (0..N).map(|_| d.sample_ns(&mut rng)).collect();
            let mean_us = draws.iter().sum::<u64>() as f64 / N as f64 / 1e3;
            let error = (mean_us / d.mean_us() - 1.0).abs();
            // Standard error of the mean is <= 0.5% for every distribution here (bimodal's is
            // the largest: sd 99 us over a mean of 19.9 us, / sqrt(N)).
            assert!(
                error < 0.02,
                "{s}: mean {mean_us} us, expected {}",
                d.mean_us()
            );
            draws.sort_unstable();
            let median_us = draws[N / 2] as f64 / 1e3;
            let expected_median = match s {
                "fixed:50" | "lognormal:50:0.5" | "lognormal:50:1" => 50.0,
                "exp:50" => 50.0 * std::f64::consts::LN_2,
                _ => 10.0,
            };
            assert!(
                (median_us / expected_median - 1.0).abs() < 0.01,
                "{s}: median {median_us} us, expected {expected_median}"
            );
        }
        let mut rng = Rng::for_stream(DEFAULT_SEED, 1);
        let bimodal = dist("bimodal:1:2:0.25");
        let high = (0..N)
            .filter(|_| bimodal.sample_ns(&mut rng) == 2000)
            .count();
        assert!((high as f64 / N as f64 - 0.25).abs() < 0.005, "{high}");
        let mut rng = Rng::for_stream(DEFAULT_SEED, 2);
        assert_eq!(dist("fixed:0.5").sample_ns(&mut rng), 500);
        assert_eq!(dist("none").sample_ns(&mut rng), 0);
        assert_eq!(dist("bimodal:1:2:1").sample_ns(&mut rng), 2000);
        assert_eq!(dist("bimodal:1:2:0").sample_ns(&mut rng), 1000);
    }

    /// Voluntary plus involuntary context switches of the calling thread so far.
    fn context_switches() -> i64 {
        // SAFETY: rusage is plain data, valid when zeroed; the kernel fills it in.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_nvcsw + usage.ru_nivcsw
        }
    }

    /// The mean time `burn` takes over `draws` draws of `d`, in microseconds.
    ///
    /// This machine is shared and has two cores (and `cargo test` runs other tests beside this
    /// one), so the test thread is sometimes descheduled; a burn that spans the deadline while
    /// descheduled overshoots by however long the thread waited. Such a sample says nothing
    /// about `burn`, so it is measured again with the same draw (keeping the sample unbiased):
    /// when the thread was context-switched during it, or when it overshot by more than
    /// `DISTURBED` (100 us; the loop reads the clock every ~25 ns, so only a thread that was not
    /// running overshoots that much, e.g. when the hypervisor steals the vCPU). A burn that is
    /// systematically long (a sleep, a mis-calibrated loop) still shows: its overshoot is below
    /// the threshold and kept, or above it on every attempt and kept after `ATTEMPTS`.
    fn measured_mean_us(d: WorkDist, draws: usize) -> f64 {
        const DISTURBED: Duration = Duration::from_micros(100);
        const ATTEMPTS: usize = 20;
        let mut rng = Rng::for_stream(DEFAULT_SEED, 0);
        let (mut total, mut asked_total, mut remeasured) = (Duration::ZERO, Duration::ZERO, 0);
        for _ in 0..draws {
            let ns = d.sample_ns(&mut rng);
            let asked = Duration::from_nanos(ns);
            asked_total += asked;
            for attempt in 1..=ATTEMPTS {
                let switches = context_switches();
                let start = Instant::now();
                burn(ns);
                let took = start.elapsed();
                assert!(took >= asked, "burn({ns}) returned after {took:?}");
                let disturbed = context_switches() != switches || took > asked + DISTURBED;
                if !disturbed || attempt == ATTEMPTS {
                    total += took;
                    break;
                }
                remeasured += 1;
            }
        }
        let mean_us = total.as_secs_f64() * 1e6 / draws as f64;
        eprintln!(
            "{d}: mean burn {mean_us:.2} us, mean draw {:.2} us, distribution mean {:.2} us \
             ({draws} draws, {remeasured} re-measured)",
            asked_total.as_secs_f64() * 1e6 / draws as f64,
            d.mean_us()
        );
        mean_us
    }

    /// The calibration the `--work` flag promises: mean burn within 5% of the distribution's mean.
    #[test]
    fn mean_burn_is_within_5_percent_of_the_distribution_mean() {
        for (s, draws) in [
            ("fixed:50", 2_000),
            ("exp:50", 20_000),
            ("lognormal:50:1", 20_000),
        ] {
            let d = dist(s);
            let measured = measured_mean_us(d, draws);
            let error = measured / d.mean_us() - 1.0;
            assert!(
                error.abs() <= 0.05,
                "{s}: mean burn {measured:.2} us vs distribution mean {:.2} us ({:+.1}%)",
                d.mean_us(),
                error * 100.0
            );
        }
    }

    #[test]
    fn burn_of_zero_returns_at_once_and_none_draws_nothing() {
        let start = Instant::now();
        for _ in 0..1000 {
            burn(0);
            WorkDist::NONE.run_one();
        }
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
