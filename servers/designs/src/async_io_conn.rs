//! The accept loop and the connection loop of every design whose sockets are async-io's
//! (async-std-ws, smol-ws, rayon-ws), the futures-io twin of `tokio_conn`: same buffer, socket
//! options, session code (`borrowed_buf::serve`) and back-off, so that these designs differ only
//! in where the futures run. glommio-tpc runs [`serve`] too (glommio's sockets are futures-io),
//! with glommio's own timer for the back-off: async-io's would start async-io's reactor thread.
//!
//! It also places the thread async-io adds to every such process, see [`confine_helper_threads`].

use std::io;
use std::net::TcpListener;
use std::sync::mpsc;

use async_io::Timer;
use bench_core::counters::SharedCounters;
use bench_core::runner::Server;
use bench_core::settings::Settings;
use bench_core::{signal, Config};
use futures_lite::Stream;

pub use crate::borrowed_buf::serve;

/// Accepts connections from `incoming` (the listener's `incoming()`, async-std's or async-io's)
/// until the future is dropped, handing each to `spawn`.
pub async fn accept_loop<S>(incoming: impl Stream<Item = io::Result<S>>, spawn: impl FnMut(S)) {
    // async-std's `task::sleep` is this same timer.
    crate::accept::accept_incoming(incoming, Timer::after, spawn).await;
}

/// Confines the calling thread, and so every thread it creates from now on (Linux threads inherit
/// their creator's affinity), to the worker CPUs as a set. Does nothing when `--cpus` is absent.
///
/// Call it first in `main`. async-io starts a thread named "async-io" the first time a socket is
/// registered: in smol-ws and async-std-ws a fallback that drives the reactor only while no worker
/// does, in rayon-ws the reactor itself. Created while this mask holds, it runs on any of the
/// server's CPUs (competing with the workers, not tied to one of them) and never on the load
/// generator's: its cost is paid inside the server's CPU budget, as every other design's is.
/// Workers then pin themselves to their one CPU; this thread only waits for signals.
pub fn confine_helper_threads(cfg: &Config) {
    cfg.confine_to_worker_cpus();
}

/// What every async-io design starts with, before its executor.
pub struct Start {
    pub server: Server,
    pub settings: Settings,
    /// The one listener, not yet registered with async-io (which would start its thread).
    pub listener: TcpListener,
    pub counters: &'static [SharedCounters],
}

/// Reads the command line, blocks the signals, confines the helper threads
/// ([`confine_helper_threads`]), listens, and makes the per-worker counters. The settings line
/// names the design's `executor` and `reactor`; it is read for its check only: these runtimes
/// are set up the same either way (docs/fairness.md).
pub fn start(design: &'static str, executor: &str, reactor: &str) -> Start {
    let server = Server::from_env(design);
    let settings = server
        .settings()
        .with("executor", executor)
        .with("reactor", reactor);
    confine_helper_threads(&server.cfg);
    let listener = server.shared_listener();
    let counters = SharedCounters::per_worker(server.cfg.threads);
    Start {
        server,
        settings,
        listener,
        counters,
    }
}

/// Prints the counters line once every worker has said on `stopped` that it runs no task any
/// more, after which no counter changes; a worker still busy after the grace period is abandoned
/// and its counters are read as they are.
pub fn report_once_stopped(
    server: &Server,
    stopped: &mpsc::Receiver<()>,
    counters: &[SharedCounters],
) {
    signal::collect_within_grace(stopped, server.cfg.threads);
    server.report_shared(counters);
}

/// Parks the calling thread until the process exits: how async-std-ws and rayon-ws stop a worker
/// whose runtime cannot be shut down, by giving it a job that never returns.
pub fn park_for_good() -> ! {
    loop {
        std::thread::park();
    }
}
