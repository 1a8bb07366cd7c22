//! What an I/O path is given and what it does (below `worker`, which runs one, and the paths,
//! `epoll` and `uring`, which implement it): a thread's share of the run and the [`Driver`]
//! trait.

use std::io;
use std::net::SocketAddr;

use crate::config::{Config, IoKind, OpenLoop};
use crate::plan::{self, ConnPlan};
use crate::recorder::{Recorder, Window};

pub struct WorkerSpec {
    pub thread: usize,
    pub cpu: Option<usize>,
    /// This thread's connections and their share of the load.
    pub plans: Vec<ConnPlan>,
    pub connections_total: usize,
    pub open: Option<OpenLoop>,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    pub per_connection: Option<u64>,
    /// The run's start: open-loop schedules count from here.
    pub t0: u64,
    pub window: Window,
    pub io: IoKind,
}

impl WorkerSpec {
    /// Thread `thread`'s share of the run `cfg`, which started at `t0` and measures `window`.
    pub fn new(cfg: &Config, thread: usize, t0: u64, window: Window) -> WorkerSpec {
        WorkerSpec {
            thread,
            cpu: cfg.cpu_of(thread),
            plans: plan::for_thread(cfg, thread),
            connections_total: cfg.connections,
            open: cfg.open,
            addr: cfg.addr,
            timeout_ns: cfg.timeout_ns(),
            per_connection: cfg.requests_per_connection,
            t0,
            window,
            io: cfg.io,
        }
    }
}

/// An I/O path: a thread's connections (indexed as its plans) and how it waits for them.
pub trait Driver {
    /// Starts connecting every connection.
    fn start(&mut self, rec: &mut Recorder);
    /// Open loop: connection `i` has requests due by `now`; admits them and sends (or queues)
    /// what its pipeline has room for. Returns when its next request is due.
    fn due(&mut self, i: usize, now: u64, rec: &mut Recorder) -> u64;
    /// Sends what is queued, waits for I/O until `wake` or the earliest due request `next_due`
    /// (`u64::MAX`: none), whichever is first, and handles what happened. `now` is the loop's
    /// last clock reading.
    fn wait(&mut self, now: u64, wake: u64, next_due: u64, rec: &mut Recorder) -> io::Result<()>;
    /// Periodic check: timeouts and due reconnects.
    fn tick(&mut self, now: u64, rec: &mut Recorder);
    /// Once the window is over: every connection's unanswered open-loop requests are censored.
    fn censor_at_end(&mut self, end: u64, rec: &mut Recorder);
}
