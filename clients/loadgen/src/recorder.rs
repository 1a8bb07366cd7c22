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
    /// When this thread crossed the window's start (its own clock, for the busy fraction).
    wall_at_start: u64,
    runqueue_wait_at_start: Option<u64>,
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
            wall_at_start: 0,
            runqueue_wait_at_start: None,
            tx,
        }
    }

    /// A request completed at `now`, `latency_ns` after it was sent (closed loop) or intended to
    /// be sent (open loop, which also passes `service_ns`, the time since the actual send).
    #[inline]
    pub fn completed(
        &mut self,
        now: u64,
        latency_ns: u64,
        service_ns: Option<u64>,
        sent: usize,
        received: usize,
    ) {
        if now >= self.next_boundary {
            self.advance(now);
        }
        if let Phase::Measuring(_) = self.phase {
            let c = &mut self.counters;
            c.latency.record(latency_ns);
            if let Some(s) = service_ns {
                c.service.record(s);
            }
            c.bytes_sent += sent as u64;
            c.bytes_received += received as u64;
        }
    }

    /// `n` requests had their first byte written at `now`.
    #[inline]
    pub fn sent(&mut self, now: u64, n: u64) {
        if now >= self.next_boundary {
            self.advance(now);
        }
        if let Phase::Measuring(_) = self.phase {
            self.counters.sent += n;
        }
    }

    /// Open loop: a request intended for `intended_ns` was admitted (found due) at `now`.
    /// Attributed by its intended time, so the count of requests scheduled in the window does not
    /// depend on how late the thread woke up; the worker admits before it advances the phase, so
    /// requests due just before the end are still counted.
    #[inline]
    pub fn admitted(&mut self, now: u64, intended_ns: u64) {
        let w = &self.window;
        if intended_ns >= w.start && intended_ns < w.end && self.phase != Phase::Done {
            self.counters.scheduled += 1;
            self.counters.lag.record(now.saturating_sub(intended_ns));
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
                    self.wall_at_start = crate::sys::now_ns();
                    self.runqueue_wait_at_start = crate::sys::runqueue_wait_ns();
                    Phase::Measuring(0)
                }
                Phase::Measuring(k) => {
                    let stats = Box::new(self.counters.take());
                    // The main thread outlives the workers unless it gave up on them.
                    let _ = self.tx.send(ThreadMsg::Interval { index: k, stats });
                    if self.window.interval_end(k) < self.window.end {
                        Phase::Measuring(k + 1)
                    } else {
                        let cpu = CpuTime::of_current_thread().since(self.cpu_at_start);
                        let wall_ns = crate::sys::now_ns().saturating_sub(self.wall_at_start);
                        let runqueue_wait_ns = self
                            .runqueue_wait_at_start
                            .zip(crate::sys::runqueue_wait_ns())
                            .map(|(a, b)| b.saturating_sub(a));
                        let _ = self.tx.send(ThreadMsg::Done {
                            thread: self.thread,
                            cpu,
                            wall_ns,
                            runqueue_wait_ns,
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
        r.completed(50, 7, None, 1, 1); // warm-up: not recorded
        r.error(99, ErrorKind::Reset); // warm-up: not counted
        r.admitted(99, 99); // intended before the window: not scheduled in it
        r.admitted(100, 100); // due at the start, admitted before the phase moved: interval 0
        r.sent(99, 1); // warm-up
        r.completed(100, 8, Some(5), 1, 1); // interval 0
        r.sent(150, 2); // interval 0
        r.completed(199, 9, None, 1, 1); // interval 0
        r.error(200, ErrorKind::Timeout); // interval 1
        r.completed(340, 10, None, 2, 3); // interval 2 (intervals 1 closed on the way)
        r.admitted(360, 349); // late, but intended in the window: counted with its lag
        r.completed(350, 11, None, 1, 1); // after the end: dropped
        r.admitted(400, 360); // done
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
                    (
                        stats.service.count,
                        stats.sent,
                        stats.scheduled,
                        stats.lag.max,
                    ),
                )),
                ThreadMsg::Done { .. } => panic!("done too early"),
            }
        }
        assert_eq!(
            rows,
            [
                (0, 2, 0, 2, (1, 2, 1, 0)),
                (1, 0, 1, 0, (0, 0, 0, 0)),
                (2, 1, 0, 3, (0, 0, 1, 11))
            ]
        );
        assert!(matches!(msgs[3], ThreadMsg::Done { thread: 3, .. }));
    }
}
