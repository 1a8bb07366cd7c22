//! What a thread counts and what it hands to the main thread: errors by kind, one interval's
//! statistics, and the messages on the channel between them.

use crate::histogram::{Histogram, Snapshot};
use crate::sys::CpuTime;

/// Error kinds of docs/loadgen.md, "Errors".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Refused, failed or timed-out connect.
    Connect,
    /// Connection reset or any other read/write error.
    Reset,
    /// The server closed the connection while a request was outstanding.
    Eof,
    /// The answer differs from the expected one (or came unasked).
    Mismatch,
    /// No complete answer within `--timeout`.
    Timeout,
    /// HTTP: a well-formed response whose status is not 200.
    HttpStatus,
    /// HTTP: a response that cannot be parsed or framed (or bytes nobody asked for).
    HttpParse,
    /// Open loop: a due request dropped because its connection's backlog was full.
    QueueOverflow,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Eof,
        ErrorKind::Mismatch,
        ErrorKind::Timeout,
        ErrorKind::HttpStatus,
        ErrorKind::HttpParse,
        ErrorKind::QueueOverflow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Eof => "eof",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::HttpParse => "http_parse",
            ErrorKind::QueueOverflow => "queue_overflow",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; 8]);

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind as usize] += 1;
    }
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl serde::Serialize for ErrorCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(ErrorKind::ALL.len()))?;
        for kind in ErrorKind::ALL {
            map.serialize_entry(kind.name(), &self.get(kind))?;
        }
        map.end()
    }
}

/// The plain counts of an interval (or of a whole window, once merged): added, never sampled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub errors: ErrorCounts,
    /// Requests recorded in the latency histogram because they were lost (timed out, died with
    /// their connection, dropped from a full backlog); each is also one error of its kind.
    pub failed: u64,
    /// Requests whose first byte was written.
    pub sent: u64,
    pub scheduled: ScheduledOutcome,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Counts {
    pub fn merge(&mut self, o: &Counts) {
        self.errors.merge(&o.errors);
        self.failed += o.failed;
        self.sent += o.sent;
        self.scheduled.merge(&o.scheduled);
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

/// One thread's accumulators for the current interval (reused across intervals).
#[derive(Default)]
pub struct IntervalCounters {
    /// Closed loop: from the actual send. Open loop: from the intended send time.
    pub latency: Histogram,
    /// Open loop only: from the actual send.
    pub service: Histogram,
    /// Open loop only: how late each request was admitted after its intended send time.
    pub lag: Histogram,
    /// Open loop only: requests unanswered at the window's end, at (end - intended send time).
    /// They are in `latency` too.
    pub censored: Histogram,
    pub counts: Counts,
}

/// Open loop: what became of the requests whose intended send time fell in the window.
/// `scheduled == answered + failed + censored`, exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledOutcome {
    pub scheduled: u64,
    /// Answered in the window (any status).
    pub answered: u64,
    /// Lost in the window (and counted as errors).
    pub failed: u64,
    /// Unanswered at the window's end.
    pub censored: u64,
}

impl ScheduledOutcome {
    pub fn merge(&mut self, o: &ScheduledOutcome) {
        self.scheduled += o.scheduled;
        self.answered += o.answered;
        self.failed += o.failed;
        self.censored += o.censored;
    }
}

/// One thread's statistics of one interval, as sent to the main thread.
#[derive(Clone, Debug, Default)]
pub struct IntervalStats {
    pub latency: Snapshot,
    pub service: Snapshot,
    pub lag: Snapshot,
    pub censored: Snapshot,
    pub counts: Counts,
}

impl IntervalCounters {
    /// Takes the interval's statistics and starts the next interval empty.
    pub fn take(&mut self) -> IntervalStats {
        let stats = IntervalStats {
            latency: self.latency.snapshot(),
            service: self.service.snapshot(),
            lag: self.lag.snapshot(),
            censored: self.censored.snapshot(),
            counts: std::mem::take(&mut self.counts),
        };
        self.latency.clear();
        self.service.clear();
        self.lag.clear();
        self.censored.clear();
        stats
    }
}

/// Thread -> main thread.
pub enum ThreadMsg {
    Interval {
        index: usize,
        stats: Box<IntervalStats>,
    },
    /// The thread reached the end of the window; `cpu` is its CPU time over the window, which
    /// lasted `wall_ns` by its own clock, `runqueue_wait_ns` the time it waited for a CPU.
    Done {
        thread: usize,
        cpu: CpuTime,
        wall_ns: u64,
        runqueue_wait_ns: Option<u64>,
    },
}
