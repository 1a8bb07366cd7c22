//! Main-thread side: merges the threads' interval statistics as they arrive (adding counts),
//! and builds the JSON document of docs/loadgen.md ("Output", schema `loadgen/1`).
//!
//! An interval is merged and dropped as soon as every thread has reported it, so only a
//! series row per interval is kept: memory does not grow with the duration beyond that.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::Config;
use crate::histogram::{Histogram, SUB_BUCKETS};
use crate::stats::{ErrorCounts, IntervalStats, ThreadMsg};
use crate::sys::CpuTime;

pub const SCHEMA: &str = "loadgen/1";

/// Percentiles in parts per million.
const P50: u64 = 500_000;
const P90: u64 = 900_000;
const P99: u64 = 990_000;
const P999: u64 = 999_000;
const P9999: u64 = 999_900;

#[derive(Default)]
struct Totals {
    latency: Histogram,
    errors: ErrorCounts,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Totals {
    fn add(&mut self, s: &IntervalStats) {
        self.latency.add_snapshot(&s.latency);
        self.errors.merge(&s.errors);
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
    }

    fn merge(&mut self, t: &Totals) {
        self.latency.add(&t.latency);
        self.errors.merge(&t.errors);
        self.bytes_sent += t.bytes_sent;
        self.bytes_received += t.bytes_received;
    }
}

pub struct Aggregator {
    threads: usize,
    interval_ms: u64,
    /// Intervals some but not all threads have reported: (reports so far, merged statistics).
    open: BTreeMap<usize, (usize, Totals)>,
    series: Vec<SeriesRow>,
    total: Totals,
    cpu: Vec<Option<CpuTime>>,
}

impl Aggregator {
    pub fn new(cfg: &Config) -> Aggregator {
        let empty = Totals::default();
        let series = (0..cfg.intervals())
            .map(|k| SeriesRow::new(k, cfg.interval_ms, &empty))
            .collect();
        Aggregator {
            threads: cfg.threads,
            interval_ms: cfg.interval_ms,
            open: BTreeMap::new(),
            series,
            total: Totals::default(),
            cpu: vec![None; cfg.threads],
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
            ThreadMsg::Done { thread, cpu } => self.cpu[thread] = Some(cpu),
        }
    }

    /// Whether every thread reached the end of the window.
    pub fn all_done(&self) -> bool {
        self.cpu.iter().all(Option::is_some)
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
    }

    /// The JSON document. Intervals some thread never reported (it failed) are closed with
    /// what arrived.
    pub fn into_document(mut self, cfg: &Config) -> Document {
        let unfinished: Vec<usize> = self.open.keys().copied().collect();
        for index in unfinished {
            self.close(index);
        }
        let h = &self.total.latency;
        let window_s = cfg.duration_ns() as f64 / 1e9;
        let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1000.0);
        let summary = Summary {
            requests: h.count(),
            errors_total: self.total.errors.total(),
            errors: self.total.errors,
            bytes_sent: self.total.bytes_sent,
            bytes_received: self.total.bytes_received,
            window_s,
            throughput_rps: h.count() as f64 / window_s,
            clamped: h.clamped(),
            latency_us: LatencyUs {
                min: us(h.min()),
                mean: h.mean().map(|v| v / 1000.0),
                p50: us(h.percentile(P50)),
                p90: us(h.percentile(P90)),
                p99: us(h.percentile(P99)),
                p999: us(h.percentile(P999)),
                p9999: us(h.percentile(P9999)),
                max: us(h.max()),
            },
        };
        let histogram = HistogramOut {
            unit: "ns",
            sub_buckets: SUB_BUCKETS,
            buckets: h
                .buckets()
                .map(|(lower_ns, upper_ns, count)| Bucket {
                    lower_ns,
                    upper_ns,
                    count,
                })
                .collect(),
        };
        let threads: Vec<ThreadCpu> = (0..cfg.threads)
            .filter_map(|t| {
                self.cpu[t].map(|c| ThreadCpu {
                    thread: t,
                    cpu: cfg.cpu_of(t),
                    user_s: c.user_us as f64 / 1e6,
                    system_s: c.system_us as f64 / 1e6,
                })
            })
            .collect();
        let user_s = threads.iter().map(|t| t.user_s).sum::<f64>();
        let system_s = threads.iter().map(|t| t.system_s).sum::<f64>();
        Document {
            schema: SCHEMA,
            config: ConfigOut::from(cfg),
            latency_kind: "closed-loop",
            summary,
            histogram,
            series: self.series,
            client_cpu: ClientCpu {
                user_s,
                system_s,
                total_s: user_s + system_s,
                threads,
            },
        }
    }
}

#[derive(Serialize)]
pub struct Document {
    pub schema: &'static str,
    pub config: ConfigOut,
    pub latency_kind: &'static str,
    pub summary: Summary,
    pub histogram: HistogramOut,
    pub series: Vec<SeriesRow>,
    pub client_cpu: ClientCpu,
}

#[derive(Serialize)]
pub struct ConfigOut {
    host: String,
    port: u16,
    protocol: &'static str,
    mode: &'static str,
    size: usize,
    connections: usize,
    threads: usize,
    cpus: Option<Vec<usize>>,
    warmup_s: f64,
    duration_s: f64,
    timeout_s: f64,
    interval_ms: u64,
}

impl From<&Config> for ConfigOut {
    fn from(c: &Config) -> ConfigOut {
        ConfigOut {
            host: c.host.clone(),
            port: c.port,
            protocol: c.protocol.name(),
            mode: "closed",
            size: c.size,
            connections: c.connections,
            threads: c.threads,
            cpus: c.cpus.clone(),
            warmup_s: c.warmup_s,
            duration_s: c.duration_s,
            timeout_s: c.timeout_s,
            interval_ms: c.interval_ms,
        }
    }
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

#[derive(Serialize)]
pub struct HistogramOut {
    unit: &'static str,
    sub_buckets: u64,
    buckets: Vec<Bucket>,
}

#[derive(Serialize)]
struct Bucket {
    lower_ns: u64,
    upper_ns: u64,
    count: u64,
}

#[derive(Serialize)]
pub struct SeriesRow {
    interval: usize,
    start_s: f64,
    requests: u64,
    errors: u64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
}

impl SeriesRow {
    fn new(index: usize, interval_ms: u64, t: &Totals) -> SeriesRow {
        let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1000.0);
        SeriesRow {
            interval: index,
            start_s: (index as u64 * interval_ms) as f64 / 1000.0,
            requests: t.latency.count(),
            errors: t.errors.total(),
            p50_us: us(t.latency.percentile(P50)),
            p99_us: us(t.latency.percentile(P99)),
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
}
