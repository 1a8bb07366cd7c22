//! Main-thread side: merges the threads' interval statistics as they arrive (adding counts),
//! and builds the JSON document of docs/loadgen.md ("Output", schema `loadgen/2`).
//!
//! An interval is merged and dropped as soon as every thread has reported it, so only a
//! series row per interval is kept: memory does not grow with the duration beyond that.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter};

use serde::Serialize;

use crate::config::Config;
use crate::hiccup::HiccupReport;
use crate::histogram::Histogram;
use crate::hlog::HlogWriter;
use crate::limits::{client_limits, ClientLimit, ScheduleFigures, ThreadReport};
use crate::output::{us, ConfigOut, HistogramOut, P50, P90, P99, P999, P9999};
use crate::stats::{Counts, ErrorCounts, ErrorKind, IntervalStats, ScheduledOutcome, ThreadMsg};

/// Censored requests make the p99 uncertain when its upper bound exceeds it by more than this.
const CENSORED_P99_SLACK: f64 = 0.01;

/// The document's version: 2 since the client's limits are records (`summary.client_limits`)
/// instead of sentences (`client_bound_reasons` of `loadgen/1`).
pub const SCHEMA: &str = "loadgen/2";

#[derive(Default)]
struct Totals {
    latency: Histogram,
    service: Histogram,
    lag: Histogram,
    censored: Histogram,
    counts: Counts,
}

impl Totals {
    /// Successful answers: the latency histogram holds lost and censored requests too.
    fn answered(&self) -> u64 {
        self.latency.count() - self.counts.failed - self.censored.count()
    }

    fn histograms_mut(&mut self) -> [&mut Histogram; 4] {
        [
            &mut self.latency,
            &mut self.service,
            &mut self.lag,
            &mut self.censored,
        ]
    }

    /// Adds one thread's interval (its histograms as snapshots).
    fn add(&mut self, s: &IntervalStats) {
        let snapshots = [&s.latency, &s.service, &s.lag, &s.censored];
        for (h, snapshot) in self.histograms_mut().into_iter().zip(snapshots) {
            h.add_snapshot(snapshot);
        }
        self.counts.merge(&s.counts);
    }

    /// Adds a closed interval to the window's totals.
    fn merge(&mut self, t: &Totals) {
        let others = [&t.latency, &t.service, &t.lag, &t.censored];
        for (h, other) in self.histograms_mut().into_iter().zip(others) {
            h.add(other);
        }
        self.counts.merge(&t.counts);
    }
}

pub struct Aggregator<'a> {
    threads: usize,
    interval_ms: u64,
    duration_ns: u64,
    /// Intervals some but not all threads have reported: (reports so far, merged statistics).
    open: BTreeMap<usize, (usize, Totals)>,
    series: Vec<SeriesRow>,
    total: Totals,
    reports: Vec<Option<ThreadReport>>,
    hlog: Option<HlogWriter<'a, BufWriter<File>>>,
}

impl<'a> Aggregator<'a> {
    pub fn new(cfg: &Config, hlog: Option<HlogWriter<'a, BufWriter<File>>>) -> Aggregator<'a> {
        let empty = Totals::default();
        let series = (0..cfg.intervals())
            .map(|k| SeriesRow::new(k, cfg.interval_ms, &empty))
            .collect();
        Aggregator {
            threads: cfg.threads,
            interval_ms: cfg.interval_ms,
            duration_ns: cfg.duration_ns(),
            open: BTreeMap::new(),
            series,
            total: Totals::default(),
            reports: vec![None; cfg.threads],
            hlog,
        }
    }

    pub fn add(&mut self, msg: ThreadMsg) {
        match msg {
            ThreadMsg::Interval { index, stats } => {
                let (reports, merged) = self.open.entry(index).or_default();
                merged.add(&stats);
                *reports += 1;
                if *reports == self.threads {
                    self.close(index);
                }
            }
            ThreadMsg::Done {
                thread,
                cpu,
                wall_ns,
                runqueue_wait_ns,
            } => {
                self.reports[thread] = Some(ThreadReport {
                    cpu,
                    wall_ns,
                    runqueue_wait_ns,
                })
            }
        }
    }

    /// Whether every thread reached the end of the window.
    pub fn all_done(&self) -> bool {
        self.reports.iter().all(Option::is_some)
    }

    fn close(&mut self, index: usize) {
        let (_, merged) = self
            .open
            .remove(&index)
            .expect("closing an interval never opened");
        self.total.merge(&merged);
        if let Some(row) = self.series.get_mut(index) {
            *row = SeriesRow::new(index, self.interval_ms, &merged);
        }
        if let Some(hlog) = &mut self.hlog {
            let interval_ns = self.interval_ms * 1_000_000;
            let start = index as u64 * interval_ns;
            let length = interval_ns.min(self.duration_ns.saturating_sub(start));
            hlog.interval(start as f64 / 1e9, length as f64 / 1e9, &merged.latency);
        }
    }

    /// The JSON document, and the outcome of writing the HdrHistogram log. Intervals some thread
    /// never reported (it failed) are closed with what arrived.
    pub fn into_document(mut self, cfg: &Config) -> (Document, io::Result<()>) {
        let unfinished: Vec<usize> = self.open.keys().copied().collect();
        for index in unfinished {
            self.close(index);
        }
        let hlog_result = self.hlog.take().map_or(Ok(()), HlogWriter::finish);
        let open = cfg.open.is_some();
        let t = &self.total;
        let window_s = cfg.duration_ns() as f64 / 1e9;
        let rate = |n: u64| n as f64 / window_s;
        let lag_us = |ppm| t.lag.percentile(ppm).map(us);
        let schedule_lag_us = open.then(|| LagUs {
            p50: lag_us(P50),
            p99: lag_us(P99),
            max: t.lag.max().map(us),
        });
        let threads: Vec<ThreadCpu> = (0..cfg.threads)
            .filter_map(|i| {
                self.reports[i].map(|r| ThreadCpu {
                    thread: i,
                    cpu: cfg.cpu_of(i),
                    user_s: r.cpu.user_us as f64 / 1e6,
                    system_s: r.cpu.system_us as f64 / 1e6,
                    busy_fraction: r.busy_fraction(),
                    runqueue_wait_fraction: r.wait_fraction(),
                })
            })
            .collect();
        let limits = client_limits(
            &self.reports,
            open.then(|| ScheduleFigures {
                lag_p99_us: lag_us(P99),
                sent: t.counts.sent,
                scheduled: t.counts.scheduled.scheduled,
                overflow: t.counts.errors.get(ErrorKind::QueueOverflow),
            }),
        );
        let summary = Summary {
            requests: t.answered(),
            errors_total: t.counts.errors.total(),
            errors: t.counts.errors,
            bytes_sent: t.counts.bytes_sent,
            bytes_received: t.counts.bytes_received,
            window_s,
            throughput_rps: rate(t.answered()),
            clamped: t.latency.clamped(),
            latency_us: LatencyUs::of(&t.latency),
            service_latency_us: open.then(|| LatencyUs::of(&t.service)),
            target_rate: cfg.open.map(|o| o.rate),
            scheduled_rate: open.then(|| rate(t.counts.scheduled.scheduled)),
            achieved_rate: rate(t.answered()),
            sent_rate: rate(t.counts.sent),
            schedule_lag_us,
            client_bound: !limits.is_empty(),
            client_limits: limits,
            failed: t.counts.failed,
            censored: open.then(|| t.censored.count()),
            censored_latency_us: open.then(|| LatencyUs::of(&t.censored)),
            latency_upper_us: open.then(|| UpperUs::of(&t.latency, &t.censored)),
            censored_tail: open && censored_tail(&t.latency, &t.censored),
            scheduled: open.then_some(t.counts.scheduled),
        };
        let user_s = threads.iter().map(|t| t.user_s).sum::<f64>();
        let system_s = threads.iter().map(|t| t.system_s).sum::<f64>();
        let doc = Document {
            schema: SCHEMA,
            config: ConfigOut::from(cfg),
            latency_kind: if open {
                "open-loop-corrected"
            } else {
                "closed-loop"
            },
            summary,
            histogram: HistogramOut::of(&t.latency),
            service_histogram: open.then(|| HistogramOut::of(&t.service)),
            series: self.series,
            client_cpu: ClientCpu {
                user_s,
                system_s,
                total_s: user_s + system_s,
                threads,
            },
            censored_histogram: open.then(|| HistogramOut::of(&t.censored)),
            hiccup: None,
            clock: None,
        };
        (doc, hlog_result)
    }
}

#[derive(Serialize)]
pub struct Document {
    pub schema: &'static str,
    pub config: ConfigOut,
    pub latency_kind: &'static str,
    pub summary: Summary,
    pub histogram: HistogramOut,
    pub service_histogram: Option<HistogramOut>,
    pub series: Vec<SeriesRow>,
    pub client_cpu: ClientCpu,
    pub censored_histogram: Option<HistogramOut>,
    /// Set by `main` from the hiccup meter; `None` with `--no-hiccup`.
    pub hiccup: Option<HiccupReport>,
    /// Set by `main`: when the run started and its window began, in this host's wall clock.
    pub clock: Option<ClockOut>,
}

/// The run's instants in this host's wall clock (`CLOCK_REALTIME`, ns since the epoch), for a
/// harness that lines up several hosts' windows (docs/loadgen.md, "Starting together").
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOut {
    /// `--start-at` as given, or `null`.
    pub start_at_ns: Option<u64>,
    /// How late `t0` was after `--start-at` (0 when it waited; `null` without it).
    pub start_late_ns: Option<u64>,
    pub t0_unix_ns: u64,
    pub window_start_unix_ns: u64,
    pub window_end_unix_ns: u64,
}

#[derive(Serialize)]
pub struct Summary {
    pub requests: u64,
    pub errors_total: u64,
    pub errors: ErrorCounts,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub window_s: f64,
    pub throughput_rps: f64,
    pub clamped: u64,
    pub latency_us: LatencyUs,
    pub service_latency_us: Option<LatencyUs>,
    pub target_rate: Option<f64>,
    pub scheduled_rate: Option<f64>,
    pub achieved_rate: f64,
    pub sent_rate: f64,
    pub schedule_lag_us: Option<LagUs>,
    /// Whether the client may have limited or distorted the measurement: `client_limits` is
    /// not empty.
    pub client_bound: bool,
    pub client_limits: Vec<ClientLimit>,
    pub failed: u64,
    pub censored: Option<u64>,
    pub censored_latency_us: Option<LatencyUs>,
    pub latency_upper_us: Option<UpperUs>,
    pub censored_tail: bool,
    pub scheduled: Option<ScheduledOutcome>,
}

/// Whether censored requests leave the p99 uncertain: its upper bound (censored values taken as
/// unbounded) is more than [`CENSORED_P99_SLACK`] above it, or there is none.
fn censored_tail(latency: &Histogram, censored: &Histogram) -> bool {
    if censored.count() == 0 {
        return false;
    }
    match (
        latency.percentile(P99),
        latency.percentile_censored_unbounded(censored, P99),
    ) {
        (Some(low), Some(high)) => high as f64 > low as f64 * (1.0 + CENSORED_P99_SLACK),
        _ => true,
    }
}

/// Upper bounds of the percentiles of `latency_us` (censored requests taken as unbounded);
/// `None` (JSON `null`) where the rank falls among the censored ones.
#[derive(Serialize)]
pub struct UpperUs {
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    p999: Option<f64>,
    p9999: Option<f64>,
}

impl UpperUs {
    fn of(latency: &Histogram, censored: &Histogram) -> UpperUs {
        let p = |ppm| latency.percentile_censored_unbounded(censored, ppm).map(us);
        UpperUs {
            p50: p(P50),
            p90: p(P90),
            p99: p(P99),
            p999: p(P999),
            p9999: p(P9999),
        }
    }
}

/// Microseconds; `None` (JSON `null`) when no request succeeded.
#[derive(Serialize)]
pub struct LatencyUs {
    min: Option<f64>,
    mean: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    p999: Option<f64>,
    p9999: Option<f64>,
    max: Option<f64>,
}

impl LatencyUs {
    fn of(h: &Histogram) -> LatencyUs {
        let p = |ppm| h.percentile(ppm).map(us);
        LatencyUs {
            min: h.min().map(us),
            mean: h.mean().map(|v| v / 1000.0),
            p50: p(P50),
            p90: p(P90),
            p99: p(P99),
            p999: p(P999),
            p9999: p(P9999),
            max: h.max().map(us),
        }
    }
}

#[derive(Serialize)]
pub struct LagUs {
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

#[derive(Serialize)]
pub struct SeriesRow {
    interval: usize,
    start_s: f64,
    requests: u64,
    errors: u64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
}

impl SeriesRow {
    fn new(index: usize, interval_ms: u64, t: &Totals) -> SeriesRow {
        let p = |ppm| t.latency.percentile(ppm).map(us);
        SeriesRow {
            interval: index,
            start_s: (index as u64 * interval_ms) as f64 / 1000.0,
            requests: t.answered(),
            errors: t.counts.errors.total(),
            p50_us: p(P50),
            p99_us: p(P99),
            p999_us: p(P999),
        }
    }
}

#[derive(Serialize)]
pub struct ClientCpu {
    user_s: f64,
    system_s: f64,
    total_s: f64,
    threads: Vec<ThreadCpu>,
}

#[derive(Serialize)]
struct ThreadCpu {
    thread: usize,
    cpu: Option<usize>,
    user_s: f64,
    system_s: f64,
    busy_fraction: f64,
    runqueue_wait_fraction: Option<f64>,
}
