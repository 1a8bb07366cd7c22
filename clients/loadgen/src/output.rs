//! The JSON shapes shared by the load generator's document (`report`) and the hiccup meter's
//! (`hiccup`, `bin/hiccup.rs`): percentiles in µs, a histogram's buckets, the configuration as
//! run. Below both, so that neither imports the other.

use serde::Serialize;

use crate::config::{Config, ProtocolKind};
use crate::histogram::{Histogram, SUB_BUCKETS};

/// Percentiles in parts per million.
pub const P50: u64 = 500_000;
pub const P90: u64 = 900_000;
pub const P99: u64 = 990_000;
pub const P999: u64 = 999_000;
pub const P9999: u64 = 999_900;

/// Nanoseconds as microseconds, the unit of every figure in the documents.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

#[derive(Serialize, Debug)]
pub struct HistogramOut {
    unit: &'static str,
    sub_buckets: u64,
    buckets: Vec<Bucket>,
}

impl HistogramOut {
    pub fn of(h: &Histogram) -> HistogramOut {
        HistogramOut {
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
        }
    }
}

#[derive(Serialize, Debug)]
struct Bucket {
    lower_ns: u64,
    upper_ns: u64,
    count: u64,
}

#[derive(Serialize)]
pub struct ConfigOut {
    host: String,
    port: u16,
    protocol: &'static str,
    mode: &'static str,
    size: Option<usize>,
    path: Option<String>,
    connections: usize,
    pipeline: usize,
    rate: Option<f64>,
    arrival: Option<&'static str>,
    seed: Option<u64>,
    hot_fraction: Option<f64>,
    hot_share: Option<f64>,
    requests_per_connection: Option<u64>,
    threads: usize,
    cpus: Option<Vec<usize>>,
    warmup_s: f64,
    duration_s: f64,
    timeout_s: f64,
    interval_ms: u64,
    hlog: Option<String>,
    /// The client's I/O path (`--io`): epoll or uring.
    io: &'static str,
}

impl From<&Config> for ConfigOut {
    fn from(c: &Config) -> ConfigOut {
        let http = c.protocol == ProtocolKind::Http;
        ConfigOut {
            host: c.host.clone(),
            port: c.port,
            protocol: c.protocol.name(),
            mode: c.mode_name(),
            size: (!http).then_some(c.size),
            path: http.then(|| c.path.clone()),
            connections: c.connections,
            pipeline: c.pipeline,
            rate: c.open.map(|o| o.rate),
            arrival: c.open.map(|o| o.arrival.name()),
            seed: c.open.map(|o| o.seed),
            hot_fraction: c.skew.map(|s| s.fraction),
            hot_share: c.skew.map(|s| s.share),
            requests_per_connection: c.requests_per_connection,
            threads: c.threads,
            cpus: c.cpus.clone(),
            warmup_s: c.warmup_s,
            duration_s: c.duration_s,
            timeout_s: c.timeout_s,
            interval_ms: c.interval_ms,
            hlog: c.hlog.as_ref().map(|p| p.display().to_string()),
            io: c.io.name(),
        }
    }
}
