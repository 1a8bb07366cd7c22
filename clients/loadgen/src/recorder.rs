//! A thread's view of the run's timeline (docs/loadgen.md, "Timing"): warm-up, the measured
//! window cut into intervals, the end. Completions and errors are attributed by their own
//! timestamp, so the window is exact whatever the event loop's wake-up granularity.
//!
//! The hot path (`completed`) is one comparison against the next boundary plus the counting.
//! At each interval end the interval's counters go to the main thread as a sparse snapshot and
//! start again empty, so memory does not grow with the duration.

use std::sync::mpsc::Sender;

use crate::stats::{ErrorKind, IntervalCounters, ThreadMsg};
use crate::sys::CpuTime;

/// The measured window `[start, end)`, cut into intervals of `interval` ns (the last one may be
/// shorter). Times are `sys::now_ns()` values.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    pub interval: u64,
}

impl Window {
    /// End of interval `k`.
    fn interval_end(&self, k: usize) -> u64 {
        self.start
            .saturating_add(self.interval.saturating_mul(k as u64 + 1))
            .min(self.end)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measuring(usize),
    Done,
}

pub struct Recorder {
    thread: usize,
    window: Window,
    phase: Phase,
    /// When the phase changes next; `u64::MAX` once done.
    next_boundary: u64,
    counters: IntervalCounters,
    cpu_at_start: CpuTime,
    tx: Sender<ThreadMsg>,
}

impl Recorder {
    pub fn new(thread: usize, window: Window, tx: Sender<ThreadMsg>) -> Recorder {
        Recorder {
            thread,
            window,
            phase: Phase::Warmup,
            next_boundary: window.start,
            counters: IntervalCounters::default(),
            cpu_at_start: CpuTime::default(),
            tx,
        }
    }

    /// A request completed at `now` after `latency_ns`.
    #[inline]
    pub fn completed(&mut self, now: u64, latency_ns: u64, sent: usize, received: usize) {
        if now >= self.next_boundary {
            self.advance(now);
        }
        if let Phase::Measuring(_) = self.phase {
            let c = &mut self.counters;
            c.latency.record(latency_ns);
            c.bytes_sent += sent as u64;
            c.bytes_received += received as u64;
        }
    }

    pub fn error(&mut self, now: u64, kind: ErrorKind) {
        self.advance(now);
        if let Phase::Measuring(_) = self.phase {
            self.counters.errors.add(kind);
        }
    }

    pub fn next_boundary(&self) -> u64 {
        self.next_boundary
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Crosses every boundary at or before `now`: starts the window, closes intervals (also
    /// empty ones, so every thread reports every interval), ends the run.
    pub fn advance(&mut self, now: u64) {
        while now >= self.next_boundary {
            self.phase = match self.phase {
                Phase::Warmup => {
                    self.cpu_at_start = CpuTime::of_current_thread();
                    Phase::Measuring(0)
                }
                Phase::Measuring(k) => {
                    let stats = self.counters.take();
                    // The main thread outlives the workers unless it gave up on them.
                    let _ = self.tx.send(ThreadMsg::Interval { index: k, stats });
                    if self.window.interval_end(k) < self.window.end {
                        Phase::Measuring(k + 1)
                    } else {
                        let cpu = CpuTime::of_current_thread().since(self.cpu_at_start);
                        let _ = self.tx.send(ThreadMsg::Done {
                            thread: self.thread,
                            cpu,
                        });
                        Phase::Done
                    }
                }
                Phase::Done => return,
            };
            self.next_boundary = match self.phase {
                Phase::Measuring(k) => self.window.interval_end(k),
                _ => u64::MAX,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn attributes_by_timestamp_and_reports_every_interval() {
        let (tx, rx) = mpsc::channel();
        let window = Window {
            start: 100,
            end: 350,
            interval: 100,
        };
        let mut r = Recorder::new(3, window, tx);
        r.completed(50, 7, 1, 1); // warm-up: not recorded
        r.error(99, ErrorKind::Reset); // warm-up: not counted
        r.completed(100, 8, 1, 1); // interval 0
        r.completed(199, 9, 1, 1); // interval 0
        r.error(200, ErrorKind::Timeout); // interval 1
        r.completed(340, 10, 2, 3); // interval 2 (intervals 1 closed on the way)
        r.completed(350, 11, 1, 1); // after the end: dropped
        assert!(r.is_done());
        let msgs: Vec<_> = rx.try_iter().collect();
        assert_eq!(msgs.len(), 4);
        let mut rows = Vec::new();
        for m in &msgs[..3] {
            match m {
                ThreadMsg::Interval { index, stats } => rows.push((
                    *index,
                    stats.latency.count,
                    stats.errors.total(),
                    stats.bytes_received,
                )),
                ThreadMsg::Done { .. } => panic!("done too early"),
            }
        }
        assert_eq!(rows, [(0, 2, 0, 2), (1, 0, 1, 0), (2, 1, 0, 3)]);
        assert!(matches!(msgs[3], ThreadMsg::Done { thread: 3, .. }));
    }
}
