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
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Eof,
        ErrorKind::Mismatch,
        ErrorKind::Timeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Eof => "eof",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Timeout => "timeout",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; 5]);

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

/// One thread's accumulators for the current interval (reused across intervals).
#[derive(Default)]
pub struct IntervalCounters {
    pub latency: Histogram,
    pub errors: ErrorCounts,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// One thread's statistics of one interval, as sent to the main thread.
#[derive(Clone, Debug, Default)]
pub struct IntervalStats {
    pub latency: Snapshot,
    pub errors: ErrorCounts,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl IntervalCounters {
    /// Takes the interval's statistics and starts the next interval empty.
    pub fn take(&mut self) -> IntervalStats {
        let stats = IntervalStats {
            latency: self.latency.snapshot(),
            errors: std::mem::take(&mut self.errors),
            bytes_sent: std::mem::take(&mut self.bytes_sent),
            bytes_received: std::mem::take(&mut self.bytes_received),
        };
        self.latency.clear();
        stats
    }
}

/// Thread -> main thread.
pub enum ThreadMsg {
    Interval {
        index: usize,
        stats: IntervalStats,
    },
    /// The thread reached the end of the window; `cpu` is its CPU time over the window.
    Done {
        thread: usize,
        cpu: CpuTime,
    },
}
