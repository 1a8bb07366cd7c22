//! A thread's view of the run's timeline (docs/loadgen.md, "Timing"): warm-up, the measured
//! window cut into intervals, the end. Completions and errors are attributed by their own
//! timestamp, so the window is exact whatever the event loop's wake-up granularity.
//!
//! The hot path (`completed`) is one comparison against the next boundary plus the counting.
//!
//! No censored tail (docs/loadgen.md, "Lost and censored requests"): a request that is lost
//! (`lost`) is recorded at (now - its reference time) and counted as one error; when the window
//! ends the phase becomes `Ending`, in which the worker hands over every open-loop request still
//! unanswered (`censor`), and anything answered or lost after the end but intended before it
//! counts as censored too; `finish` then closes the last interval.
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
    /// The window is over; the last interval (`usize`) stays open for censored requests until
    /// `finish`.
    Ending(usize),
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
    /// Taken when the window ended, reported by `finish`.
    at_end: Option<(CpuTime, u64, Option<u64>)>,
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
            at_end: None,
            tx,
        }
    }

    /// A request was answered at `now`: sent at `sent_ns`, and in open loop intended for
    /// `intended_ns` (its latency counts from there). `ok` is false for a non-200 HTTP answer,
    /// which is an `http_status` error and in no histogram.
    #[inline]
    pub fn completed(
        &mut self,
        now: u64,
        sent_ns: u64,
        intended_ns: Option<u64>,
        ok: bool,
        sent: usize,
        received: usize,
    ) {
        if now >= self.next_boundary {
            self.advance(now);
        }
        match self.phase {
            Phase::Measuring(_) => {
                let c = &mut self.counters;
                if let Some(intended) = intended_ns {
                    if intended >= self.window.start {
                        c.counts.scheduled.answered += 1;
                    }
                }
                if !ok {
                    c.counts.errors.add(ErrorKind::HttpStatus);
                    return;
                }
                let since_sent = now.saturating_sub(sent_ns);
                match intended_ns {
                    None => c.latency.record(since_sent),
                    Some(intended) => {
                        c.latency.record(now.saturating_sub(intended));
                        c.service.record(since_sent);
                    }
                }
                c.counts.bytes_sent += sent as u64;
                c.counts.bytes_received += received as u64;
            }
            // Unanswered when the window ended.
            Phase::Ending(_) => {
                if let Some(intended) = intended_ns {
                    self.censor(intended);
                }
            }
            Phase::Warmup | Phase::Done => {}
        }
    }

    /// A request was lost at `now` (`kind`: timed out, died with its connection, dropped from a
    /// full backlog): recorded at `now - from_ns` and counted as one error. `from_ns` is its
    /// intended send time in open loop, its send time in closed loop.
    pub fn lost(&mut self, now: u64, from_ns: u64, open_loop: bool, kind: ErrorKind) {
        self.advance(now);
        match self.phase {
            Phase::Measuring(_) => {
                let c = &mut self.counters;
                c.latency.record(now.saturating_sub(from_ns));
                c.counts.errors.add(kind);
                c.counts.failed += 1;
                if open_loop && from_ns >= self.window.start {
                    c.counts.scheduled.failed += 1;
                }
            }
            Phase::Ending(_) if open_loop => self.censor(from_ns),
            _ => {}
        }
    }

    /// Open loop, once the window has ended: a request intended for `intended_ns` has no answer.
    /// Recorded at (window end - intended) in the latency and the censored histograms; one
    /// intended at or after the end is none of the window's business.
    pub fn censor(&mut self, intended_ns: u64) {
        let w = self.window;
        if !matches!(self.phase, Phase::Ending(_)) || intended_ns >= w.end {
            return;
        }
        let c = &mut self.counters;
        let at_least = w.end - intended_ns;
        c.latency.record(at_least);
        c.censored.record(at_least);
        if intended_ns >= w.start {
            c.counts.scheduled.censored += 1;
        }
    }

    /// `n` requests had their first byte written at `now`.
    #[inline]
    pub fn sent(&mut self, now: u64, n: u64) {
        if now >= self.next_boundary {
            self.advance(now);
        }
        if let Phase::Measuring(_) = self.phase {
            self.counters.counts.sent += n;
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
            self.counters.counts.scheduled.scheduled += 1;
            self.counters.lag.record(now.saturating_sub(intended_ns));
        }
    }

    /// An error that lost no request (e.g. a refused connect): counted once.
    pub fn error(&mut self, now: u64, kind: ErrorKind) {
        self.advance(now);
        if let Phase::Measuring(_) = self.phase {
            self.counters.counts.errors.add(kind);
        }
    }

    pub fn next_boundary(&self) -> u64 {
        self.next_boundary
    }

    /// Whether the window is over (`Ending` or `Done`).
    pub fn window_over(&self) -> bool {
        matches!(self.phase, Phase::Ending(_) | Phase::Done)
    }

    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Closes the last interval (with whatever was censored into it) and reports the thread's
    /// CPU use over the window. Call once the window is over.
    pub fn finish(&mut self) {
        let Phase::Ending(k) = self.phase else { return };
        let stats = Box::new(self.counters.take());
        let _ = self.tx.send(ThreadMsg::Interval { index: k, stats });
        let (cpu, wall_ns, runqueue_wait_ns) = self.at_end.take().unwrap_or_default();
        let _ = self.tx.send(ThreadMsg::Done {
            thread: self.thread,
            cpu,
            wall_ns,
            runqueue_wait_ns,
        });
        self.phase = Phase::Done;
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
                Phase::Measuring(k) if self.window.interval_end(k) < self.window.end => {
                    let stats = Box::new(self.counters.take());
                    // The main thread outlives the workers unless it gave up on them.
                    let _ = self.tx.send(ThreadMsg::Interval { index: k, stats });
                    Phase::Measuring(k + 1)
                }
                Phase::Measuring(k) => {
                    let cpu = CpuTime::of_current_thread().since(self.cpu_at_start);
                    let wall_ns = crate::sys::now_ns().saturating_sub(self.wall_at_start);
                    let runqueue_wait_ns = self
                        .runqueue_wait_at_start
                        .zip(crate::sys::runqueue_wait_ns())
                        .map(|(a, b)| b.saturating_sub(a));
                    self.at_end = Some((cpu, wall_ns, runqueue_wait_ns));
                    Phase::Ending(k)
                }
                Phase::Ending(_) | Phase::Done => return,
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

    fn intervals(msgs: &[ThreadMsg]) -> Vec<&IntervalStatsRef> {
        msgs.iter()
            .filter_map(|m| match m {
                ThreadMsg::Interval { stats, .. } => Some(&**stats),
                ThreadMsg::Done { .. } => None,
            })
            .collect()
    }
    type IntervalStatsRef = crate::stats::IntervalStats;

    /// A recorder of `thread` over `[start, end)` in intervals of `interval` ns, and the
    /// receiving end of its channel.
    fn recorder(
        thread: usize,
        start: u64,
        end: u64,
        interval: u64,
    ) -> (Recorder, mpsc::Receiver<ThreadMsg>) {
        let (tx, rx) = mpsc::channel();
        let window = Window {
            start,
            end,
            interval,
        };
        (Recorder::new(thread, window, tx), rx)
    }

    #[test]
    fn attributes_by_timestamp_and_reports_every_interval() {
        let (mut r, rx) = recorder(3, 100, 350, 100);
        r.completed(50, 43, None, true, 1, 1); // warm-up: not recorded
        r.error(99, ErrorKind::Reset); // warm-up: not counted
        r.admitted(99, 99); // intended before the window: not scheduled in it
        r.admitted(100, 100); // due at the start, admitted before the phase moved: interval 0
        r.sent(99, 1); // warm-up
        r.completed(100, 95, Some(92), true, 1, 1); // interval 0
        r.sent(150, 2); // interval 0
        r.completed(199, 190, None, true, 1, 1); // interval 0
        r.error(200, ErrorKind::Timeout); // interval 1
        r.completed(340, 330, None, true, 2, 3); // interval 2 (intervals 1 closed on the way)
        r.admitted(360, 349); // late, but intended in the window: counted with its lag
        r.completed(350, 339, None, true, 1, 1); // after the end: dropped (closed loop)
        r.admitted(400, 360); // after the end
        assert!(r.window_over() && !r.is_done());
        r.finish();
        assert!(r.is_done());
        let msgs: Vec<_> = rx.try_iter().collect();
        assert_eq!(msgs.len(), 4);
        let mut rows = Vec::new();
        for m in &msgs[..3] {
            match m {
                ThreadMsg::Interval { index, stats } => rows.push((
                    *index,
                    stats.latency.count,
                    stats.counts.errors.total(),
                    stats.counts.bytes_received,
                    (
                        stats.service.count,
                        stats.counts.sent,
                        stats.counts.scheduled.scheduled,
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

    #[test]
    fn lost_and_censored_requests_are_recorded_and_accounted() {
        let (mut r, rx) = recorder(0, 1_000, 2_000, 1_000);
        r.lost(900, 500, true, ErrorKind::Timeout); // warm-up: nothing
        for t in [1_000, 1_100, 1_200, 1_300, 1_900] {
            r.admitted(t, t);
        }
        r.completed(1_500, 1_050, Some(1_000), true, 1, 1); // answered: 500 ns
        r.completed(1_510, 1_120, Some(1_100), false, 1, 1); // answered, non-200
        r.lost(1_600, 1_200, true, ErrorKind::Eof); // lost: 400 ns
        r.lost(1_700, 800, true, ErrorKind::Eof); // intended in the warm-up: lost, not scheduled
        r.completed(2_050, 2_010, Some(1_300), true, 1, 1); // after the end: censored at 700
        r.lost(2_060, 1_900, true, ErrorKind::Timeout); // after the end: censored at 100
        r.censor(950); // left over from the warm-up: censored at 1050, not scheduled
        r.censor(2_000); // intended at the end: not the window's
        r.finish();
        let msgs: Vec<_> = rx.try_iter().collect();
        let s = intervals(&msgs)[0];
        assert_eq!(s.latency.count, 6);
        assert_eq!(s.censored.count, 3);
        assert_eq!((s.censored.min, s.censored.max), (100, 1_050));
        assert_eq!(s.latency.max, 1_050);
        assert_eq!(s.service.count, 1);
        assert_eq!(s.counts.failed, 2);
        assert_eq!(s.counts.errors.get(ErrorKind::Eof), 2);
        assert_eq!(s.counts.errors.get(ErrorKind::HttpStatus), 1);
        assert_eq!(s.counts.errors.total(), 3);
        let o = s.counts.scheduled;
        assert_eq!(
            (o.scheduled, o.answered, o.failed, o.censored),
            (5, 2, 1, 2)
        );
        assert_eq!(o.scheduled, o.answered + o.failed + o.censored);
    }
}
