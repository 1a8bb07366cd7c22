//! Hiccup meter, as jHiccup measures a platform's stalls (docs/loadgen.md, "Hiccup meter"): a
//! thread pinned to one CPU sleeps 1 ms in a loop and records by how much each wake-up
//! overshot (actual elapsed time - 1 ms) into an HdrHistogram. What it sees is what any thread
//! on that CPU suffers from the machine itself (the hypervisor, the kernel, other processes):
//! the noise floor a latency difference must exceed to be resolvable.
//!
//! Shared by the load generator (one meter per client CPU during the measured window) and the
//! standalone `hiccup` binary (`src/bin/hiccup.rs`, run on a server CPU during calibration).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use serde::Serialize;

use crate::histogram::Histogram;
use crate::output::{us, HistogramOut, P50, P90, P99, P999};
use crate::sys;

/// The intended sleep of one sample.
pub const INTERVAL_NS: u64 = 1_000_000;

/// A deliberate stall of the meter's own thread (for testing the meter): once, at the first
/// sample that starts at or after `at_ns`, the thread sleeps `length_ns` more inside the
/// measured sample, so that sample overshoots by at least `length_ns`.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub at_ns: u64,
    pub length_ns: u64,
}

/// One meter: on `cpu` (unpinned when `None`), recording the samples that start in
/// `[start_ns, end_ns)` (`sys::now_ns` times).
#[derive(Clone, Copy, Debug)]
pub struct MeterSpec {
    pub cpu: Option<usize>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub stall: Option<Stall>,
}

/// Runs one meter on the calling thread until `end_ns` or until `stop` is set (checked every
/// sample), and returns its histogram of overshoots in ns.
pub fn measure(spec: MeterSpec, stop: &AtomicBool) -> io::Result<Histogram> {
    if let Some(cpu) = spec.cpu {
        sys::pin_current_thread(&[cpu])?;
    }
    let mut overshoot = Histogram::new();
    let mut stall = spec.stall;
    // Wait for the window without sampling, in steps short enough to notice `stop`.
    while !stop.load(Ordering::Relaxed) {
        let left = spec.start_ns.saturating_sub(sys::now_ns());
        if left == 0 {
            break;
        }
        thread::sleep(Duration::from_nanos(left.min(100 * INTERVAL_NS)));
    }
    loop {
        let before = sys::now_ns();
        if before >= spec.end_ns || stop.load(Ordering::Relaxed) {
            break;
        }
        thread::sleep(Duration::from_nanos(INTERVAL_NS));
        if let Some(s) = stall.filter(|s| before >= s.at_ns) {
            thread::sleep(Duration::from_nanos(s.length_ns));
            stall = None;
        }
        let elapsed = sys::now_ns().saturating_sub(before);
        overshoot.record(elapsed.saturating_sub(INTERVAL_NS));
    }
    Ok(overshoot)
}

/// Meters running on their own threads, one per CPU.
pub struct Meters {
    handles: Vec<(Option<usize>, thread::JoinHandle<io::Result<Histogram>>)>,
}

impl Meters {
    /// Starts one meter per CPU of `cpus` (repeats removed; one unpinned meter when `None`).
    pub fn start(
        cpus: Option<&[usize]>,
        start_ns: u64,
        end_ns: u64,
        stall: Option<Stall>,
        stop: &'static AtomicBool,
    ) -> io::Result<Meters> {
        let mut distinct: Vec<Option<usize>> = Vec::new();
        match cpus {
            None => distinct.push(None),
            Some(list) => {
                for &c in list {
                    if !distinct.contains(&Some(c)) {
                        distinct.push(Some(c));
                    }
                }
            }
        }
        let mut handles = Vec::new();
        for cpu in distinct {
            let spec = MeterSpec {
                cpu,
                start_ns,
                end_ns,
                stall,
            };
            let name = cpu.map_or("hiccup".to_string(), |c| format!("hiccup-{c}"));
            let handle = thread::Builder::new()
                .name(name)
                .spawn(move || measure(spec, stop))?;
            handles.push((cpu, handle));
        }
        Ok(Meters { handles })
    }

    /// Waits for every meter (each ends by itself at its end time, or when `stop` is set).
    pub fn join(self) -> io::Result<HiccupReport> {
        let mut per_cpu = Vec::new();
        for (cpu, handle) in self.handles {
            let h = handle
                .join()
                .map_err(|_| io::Error::other("a hiccup meter thread panicked"))??;
            per_cpu.push(HiccupCpu::of(cpu, &h));
        }
        Ok(HiccupReport {
            interval_us: INTERVAL_NS / 1000,
            per_cpu,
        })
    }
}

/// The meters' summary: one entry per CPU (not merged: a stall of one CPU is its own).
#[derive(Serialize, Debug)]
pub struct HiccupReport {
    /// The intended sleep of a sample, in µs.
    pub interval_us: u64,
    pub per_cpu: Vec<HiccupCpu>,
}

/// One CPU's overshoots in µs (percentiles by the same definition as latency; `null` when no
/// sample was taken) and their histogram in ns, encoded like the latency histogram.
#[derive(Serialize, Debug)]
pub struct HiccupCpu {
    pub cpu: Option<usize>,
    pub count: u64,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
    pub histogram: HistogramOut,
}

impl HiccupCpu {
    fn of(cpu: Option<usize>, h: &Histogram) -> HiccupCpu {
        let p = |ppm| h.percentile(ppm).map(us);
        HiccupCpu {
            cpu,
            count: h.count(),
            p50_us: p(P50),
            p90_us: p(P90),
            p99_us: p(P99),
            p999_us: p(P999),
            max_us: h.max().map(us),
            histogram: HistogramOut::of(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meter on no particular CPU, from `start` to `end` samples from now.
    fn spec(start: u64, end: u64) -> (MeterSpec, u64) {
        let now = sys::now_ns();
        let spec = MeterSpec {
            cpu: None,
            start_ns: now + start * INTERVAL_NS,
            end_ns: now + end * INTERVAL_NS,
            stall: None,
        };
        (spec, now)
    }

    #[test]
    fn a_stall_of_its_own_thread_is_seen() {
        let stop = AtomicBool::new(false);
        let (mut spec, now) = spec(0, 60);
        spec.stall = Some(Stall {
            at_ns: now + 10 * INTERVAL_NS,
            length_ns: 20 * INTERVAL_NS,
        });
        let h = measure(spec, &stop).unwrap();
        assert!(h.count() >= 1);
        // Both sleeps last at least as long as asked.
        assert!(h.max().unwrap() >= 20 * INTERVAL_NS);
    }

    #[test]
    fn stop_ends_it_at_once() {
        let stop = AtomicBool::new(true);
        let (spec, _) = spec(1_000, 2_000);
        assert_eq!(measure(spec, &stop).unwrap().count(), 0);
    }
}
