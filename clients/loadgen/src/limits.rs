//! Why the client may have limited or distorted its own measurement (docs/loadgen.md, "Honesty
//! about itself"), as records: each names what was measured, on which thread, and the limit it
//! crossed. Data, not sentences: the harness judges the records and only its report words them.

use serde::Serialize;

use crate::sys::CpuTime;

/// At or above this busy fraction a client thread is the likely bottleneck.
pub const BUSY_LIMIT: f64 = 0.90;
/// At or above this share of the window spent waiting for a CPU, a client thread was starved by
/// other processes: its timestamps and its schedule are late by that much.
pub const WAIT_LIMIT: f64 = 0.02;
/// Above this p99 schedule lag (µs) the open-loop client sent late.
pub const LAG_P99_LIMIT_US: f64 = 1000.0;
/// Below this ratio of sent to scheduled requests the open-loop client fell behind.
pub const SENT_SHARE_MIN: f64 = 0.99;

/// What a record measured.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// A thread's user+system CPU time over the window, as a fraction of it (>= limit).
    Busy,
    /// A thread's run-queue wait over the window, as a fraction of it (>= limit).
    RunqueueWait,
    /// A thread that never reported the end of its window (it failed or hung): no figures.
    NoReport,
    /// Open loop: the p99 of how late due requests were admitted, in µs (> limit).
    ScheduleLagP99,
    /// Open loop: requests sent over requests scheduled in the window (< limit).
    SentShare,
    /// Open loop: due requests dropped from a full connection backlog (> limit, which is 0).
    QueueOverflow,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Fraction,
    Us,
    Requests,
}

/// One limit the client crossed (`summary.client_limits` of docs/loadgen.md).
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct ClientLimit {
    pub kind: LimitKind,
    /// The client thread, for the per-thread kinds; `null` for the whole client.
    pub thread: Option<usize>,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Option<Unit>,
}

impl ClientLimit {
    fn of(kind: LimitKind, thread: Option<usize>, value: f64, limit: f64, unit: Unit) -> Self {
        ClientLimit {
            kind,
            thread,
            value: Some(value),
            limit: Some(limit),
            unit: Some(unit),
        }
    }
}

/// A thread's CPU use over the window, as it reported it.
#[derive(Clone, Copy, Debug)]
pub struct ThreadReport {
    pub cpu: CpuTime,
    pub wall_ns: u64,
    pub runqueue_wait_ns: Option<u64>,
}

impl ThreadReport {
    pub fn wait_fraction(&self) -> Option<f64> {
        self.runqueue_wait_ns
            .filter(|_| self.wall_ns > 0)
            .map(|w| w as f64 / self.wall_ns as f64)
    }

    pub fn busy_fraction(&self) -> f64 {
        let cpu_ns = (self.cpu.user_us + self.cpu.system_us) as f64 * 1e3;
        if self.wall_ns == 0 {
            0.0
        } else {
            cpu_ns / self.wall_ns as f64
        }
    }
}

/// Open loop: what became of the schedule over the whole window.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFigures {
    pub lag_p99_us: Option<f64>,
    pub sent: u64,
    pub scheduled: u64,
    /// Due requests dropped because a connection's backlog was full.
    pub overflow: u64,
}

/// Every limit crossed, threads first (in thread order), then the open-loop schedule's; empty
/// when the client neither limited nor distorted the measurement.
pub fn client_limits(
    threads: &[Option<ThreadReport>],
    schedule: Option<ScheduleFigures>,
) -> Vec<ClientLimit> {
    let mut limits = Vec::new();
    for (i, r) in threads.iter().enumerate() {
        let Some(r) = r else {
            limits.push(ClientLimit {
                kind: LimitKind::NoReport,
                thread: Some(i),
                value: None,
                limit: None,
                unit: None,
            });
            continue;
        };
        let busy = r.busy_fraction();
        if busy >= BUSY_LIMIT {
            limits.push(ClientLimit::of(
                LimitKind::Busy,
                Some(i),
                busy,
                BUSY_LIMIT,
                Unit::Fraction,
            ));
        }
        if let Some(w) = r.wait_fraction().filter(|&w| w >= WAIT_LIMIT) {
            limits.push(ClientLimit::of(
                LimitKind::RunqueueWait,
                Some(i),
                w,
                WAIT_LIMIT,
                Unit::Fraction,
            ));
        }
    }
    let Some(s) = schedule else {
        return limits;
    };
    if let Some(lag) = s.lag_p99_us.filter(|&lag| lag > LAG_P99_LIMIT_US) {
        limits.push(ClientLimit::of(
            LimitKind::ScheduleLagP99,
            None,
            lag,
            LAG_P99_LIMIT_US,
            Unit::Us,
        ));
    }
    if s.scheduled > 0 && (s.sent as f64) < SENT_SHARE_MIN * s.scheduled as f64 {
        let share = s.sent as f64 / s.scheduled as f64;
        limits.push(ClientLimit::of(
            LimitKind::SentShare,
            None,
            share,
            SENT_SHARE_MIN,
            Unit::Fraction,
        ));
    }
    if s.overflow > 0 {
        limits.push(ClientLimit::of(
            LimitKind::QueueOverflow,
            None,
            s.overflow as f64,
            0.0,
            Unit::Requests,
        ));
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(busy_us: u64, wait_ns: Option<u64>) -> Option<ThreadReport> {
        Some(ThreadReport {
            cpu: CpuTime {
                user_us: busy_us / 2,
                system_us: busy_us - busy_us / 2,
            },
            wall_ns: 1_000_000_000,
            runqueue_wait_ns: wait_ns,
        })
    }

    fn schedule(lag_p99_us: f64, sent: u64, overflow: u64) -> Option<ScheduleFigures> {
        Some(ScheduleFigures {
            lag_p99_us: Some(lag_p99_us),
            sent,
            scheduled: 1000,
            overflow,
        })
    }

    #[test]
    fn nothing_crossed_is_no_record() {
        let threads = [thread(500_000, Some(1_000_000)), thread(899_000, None)];
        assert!(client_limits(&threads, None).is_empty());
        assert!(client_limits(&threads, schedule(1000.0, 990, 0)).is_empty());
    }

    #[test]
    fn each_limit_is_one_record_with_its_own_figures() {
        let threads = [thread(950_000, Some(30_000_000)), None];
        let limits = client_limits(&threads, schedule(3260.5, 980, 7));
        let kinds: Vec<_> = limits.iter().map(|l| (l.kind, l.thread)).collect();
        assert_eq!(
            kinds,
            [
                (LimitKind::Busy, Some(0)),
                (LimitKind::RunqueueWait, Some(0)),
                (LimitKind::NoReport, Some(1)),
                (LimitKind::ScheduleLagP99, None),
                (LimitKind::SentShare, None),
                (LimitKind::QueueOverflow, None),
            ]
        );
        assert_eq!(limits[0].value, Some(0.95));
        assert_eq!(limits[0].limit, Some(BUSY_LIMIT));
        assert_eq!(limits[1].value, Some(0.03));
        assert_eq!((limits[2].value, limits[2].unit), (None, None));
        assert_eq!(
            (limits[3].value, limits[3].unit),
            (Some(3260.5), Some(Unit::Us))
        );
        assert_eq!(limits[4].value, Some(0.98));
        assert_eq!((limits[5].value, limits[5].limit), (Some(7.0), Some(0.0)));
    }

    #[test]
    fn the_records_serialise_as_documented() {
        let limits = client_limits(&[thread(950_000, None)], None);
        let json = serde_json::to_string(&limits).unwrap();
        assert_eq!(
            json,
            r#"[{"kind":"busy","thread":0,"value":0.95,"limit":0.9,"unit":"fraction"}]"#
        );
    }
}
