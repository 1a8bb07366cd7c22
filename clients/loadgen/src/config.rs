//! The load generator's typed configuration (docs/loadgen.md, "Command line"): what `cli`
//! parses the flags into and every other module reads. Below both `cli` and `plan`, so that the
//! parser can ask `plan` whether a skew can be split without `plan` importing the parser.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest `--pipeline`; also bounds the depth a hot connection gets in closed loop.
pub const MAX_DEPTH: usize = 4096;
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolKind {
    Echo,
    Http,
}

impl ProtocolKind {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Echo => "echo",
            ProtocolKind::Http => "http",
        }
    }
}

/// The I/O path of the client threads (docs/loadgen.md, "I/O paths").
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IoKind {
    /// Readiness events (mio over epoll), one system call per read and per write.
    Epoll,
    /// io_uring: every connection's sends and receives submitted in one system call per loop.
    Uring,
}

impl IoKind {
    pub fn name(self) -> &'static str {
        match self {
            IoKind::Epoll => "epoll",
            IoKind::Uring => "uring",
        }
    }
}

/// How intended send times are spaced in open loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arrival {
    /// Exponential gaps (a Poisson process per connection; their sum is Poisson too).
    Poisson,
    /// Equal gaps, connections phase-shifted so that the sum is evenly spaced.
    Uniform,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Uniform => "uniform",
        }
    }
}

/// Open loop: a schedule of intended send times at `rate` requests/s in total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpenLoop {
    pub rate: f64,
    pub arrival: Arrival,
    pub seed: u64,
}

/// A fraction of the connections carries a share of the load (docs/loadgen.md, "Skew").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Skew {
    pub fraction: f64,
    pub share: f64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// `host:port` resolved once, before the run.
    pub addr: SocketAddr,
    pub protocol: ProtocolKind,
    /// Echo message size (unused by HTTP).
    pub size: usize,
    /// HTTP request target (unused by echo).
    pub path: String,
    pub connections: usize,
    /// Requests outstanding per connection (before skew).
    pub pipeline: usize,
    /// `None`: closed loop.
    pub open: Option<OpenLoop>,
    pub skew: Option<Skew>,
    /// Requests per TCP connection before it is closed and reopened; `None`: keep-alive.
    pub requests_per_connection: Option<u64>,
    pub threads: usize,
    /// `Some(cpus)` with one CPU per thread when pinned.
    pub cpus: Option<Vec<usize>>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub timeout_s: f64,
    pub interval_ms: u64,
    pub hlog: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// Wait until this `CLOCK_REALTIME` instant (ns since the epoch) before starting (`t0`);
    /// `None`: start at once.
    pub start_at_ns: Option<u64>,
    /// Run the hiccup meter on the client CPUs during the window (on unless `--no-hiccup`).
    pub hiccup: bool,
    pub io: IoKind,
}

impl Config {
    pub fn warmup_ns(&self) -> u64 {
        seconds_to_ns(self.warmup_s)
    }
    pub fn duration_ns(&self) -> u64 {
        seconds_to_ns(self.duration_s)
    }
    pub fn timeout_ns(&self) -> u64 {
        seconds_to_ns(self.timeout_s)
    }
    pub fn interval_ns(&self) -> u64 {
        self.interval_ms * 1_000_000
    }
    /// Number of rows of the series; the last interval is shorter when the duration is not a
    /// multiple of the interval.
    pub fn intervals(&self) -> usize {
        self.duration_ns().div_ceil(self.interval_ns()) as usize
    }
    /// Connections owned by `thread`: an even spread, the first threads taking the remainder.
    pub fn connections_of(&self, thread: usize) -> usize {
        self.connections / self.threads + usize::from(thread < self.connections % self.threads)
    }
    pub fn cpu_of(&self, thread: usize) -> Option<usize> {
        self.cpus.as_ref().map(|c| c[thread])
    }
    /// A configuration for unit tests: the documented defaults, closed loop, no skew.
    #[cfg(test)]
    pub fn example() -> Config {
        Config {
            host: "127.0.0.1".to_string(),
            port: 7878,
            addr: SocketAddr::from(([127, 0, 0, 1], 7878)),
            protocol: ProtocolKind::Echo,
            size: 64,
            path: "/".to_string(),
            connections: 64,
            pipeline: 1,
            open: None,
            skew: None,
            requests_per_connection: None,
            threads: 1,
            cpus: None,
            warmup_s: 2.0,
            duration_s: 10.0,
            timeout_s: 2.0,
            interval_ms: 1000,
            hlog: None,
            out: None,
            start_at_ns: None,
            hiccup: true,
            io: IoKind::Epoll,
        }
    }
    pub fn mode_name(&self) -> &'static str {
        if self.open.is_some() {
            "open"
        } else {
            "closed"
        }
    }
}

pub fn seconds_to_ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}
