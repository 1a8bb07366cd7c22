//! What every tokio design shares: the accept loop and the connection loop (same buffer, socket
//! options and session code, so that the designs differ only in where these futures run), the
//! current-thread runtime of the thread-per-core designs and the multi-thread runtime of the
//! work-stealing ones, each built in one place with the settings line that reports it.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use bench_core::counters::{CurrentWorker, LocalCounters, SharedCounters};
use bench_core::runner::{Server, StopWorkers};
use bench_core::settings::Settings;
use bench_core::signal::SHUTDOWN_GRACE;
use bench_core::{fatal, Config, Protocol};
use futures_lite::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Handle, LocalOptions, LocalRuntime, Runtime};
use tokio::sync::watch;

pub use crate::borrowed_buf::serve;

/// The settings line of the thread-per-core tokio designs (tokio-tpc, tokio-tpc-structured,
/// tokio-tpc-dispatch): tokio 1.54's defaults for `Builder::new_current_thread`, which
/// [`local_runtime`] leaves untouched. Read for its check only: this runtime is set up the same
/// under either profile (docs/fairness.md).
pub fn current_thread_settings(server: &Server) -> Settings {
    builder_defaults(server, "new_current_thread, enable_all, build_local")
}

/// tokio 1.54's defaults that both builders share.
fn builder_defaults(server: &Server, builder: &str) -> Settings {
    server
        .settings()
        .with("builder", builder)
        .with("event_interval", 61u32)
        .with("max_io_events_per_tick", 1024u32)
}

/// tokio-tpc and tokio-tpc-structured: `Server::run_per_core` with a [`local_runtime`] per worker
/// and its own listener registered with it. `connections` makes what the worker runs until it is
/// stopped, from its listener, the protocol and its counters.
pub fn thread_per_core<F, C>(design: &'static str, connections: C)
where
    C: FnOnce(TcpListener, Protocol, Rc<LocalCounters>) -> F + Clone + Send + 'static,
    F: Future<Output = ()>,
{
    let server = Server::from_env(design);
    let settings = current_thread_settings(&server);
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, WatchStop::new, |worker| {
        let rt = local_runtime();
        let listener = register(rt.handle(), worker.incoming);
        let counters = Rc::new(LocalCounters::default());
        worker.started.wait();
        let serving = connections(listener, worker.cfg.protocol, counters.clone());
        rt.block_on(until_stopped(serving, worker.stop));
        // The connections are tasks of `rt`, or futures inside `block_on`'s; either way nothing
        // runs any more: the counters are final.
        worker.report.send(counters.snapshot());
    });
}

/// A worker's runtime in the thread-per-core tokio designs: a `LocalRuntime` (stable since tokio
/// 1.51: the current-thread scheduler made to run `!Send` `spawn_local` tasks itself, where the
/// older form wraps them in a `LocalSet` on a current-thread runtime). Exits 1 on failure.
pub fn local_runtime() -> LocalRuntime {
    Builder::new_current_thread()
        .enable_all()
        .build_local(LocalOptions::default())
        .unwrap_or_else(fatal)
}

/// `listener` registered with the runtime of `handle`; exits 1 on failure.
pub fn register(handle: &Handle, listener: std::net::TcpListener) -> TcpListener {
    let _runtime = handle.enter();
    TcpListener::from_std(listener).unwrap_or_else(fatal)
}

/// How the main thread stops the thread-per-core tokio workers: tokio's wakers work across
/// threads, so one `watch` channel that every worker's runtime waits on.
pub struct WatchStop(watch::Sender<bool>);

impl WatchStop {
    /// For `Server::run_per_core`.
    pub fn new(workers: usize) -> std::io::Result<(WatchStop, Vec<watch::Receiver<bool>>)> {
        let (stop, stop_rx) = watch::channel(false);
        Ok((WatchStop(stop), vec![stop_rx; workers]))
    }
}

impl StopWorkers for WatchStop {
    type End = watch::Receiver<bool>;

    fn stop(self) {
        self.0.send_replace(true);
    }
}

/// Runs `serving` until it ends or the main thread stops the workers.
pub async fn until_stopped(serving: impl Future<Output = ()>, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        () = serving => {}
        _ = stop.changed() => {}
    }
}

/// The settings line of the work-stealing tokio designs (tokio-ws, tokio-ws-reuseport,
/// tokio-ws-spawn-accept): tokio 1.54's defaults for `Builder::new_multi_thread`
/// ([`WorkStealing::start`] sets only the workers, their names and pinning), as `#[tokio::main]`
/// leaves them. Read for its check only: this runtime is set up the same either way.
pub fn multi_thread_settings(server: &Server) -> Settings {
    builder_defaults(server, "new_multi_thread, enable_all").with("lifo_slot", true)
}

/// The multi-thread runtime of the work-stealing tokio designs, built the same way for all:
/// `cfg.threads` workers named `worker`, worker *i* pinned to the *i*-th CPU and counting into
/// `counters[i]`.
pub struct WorkStealing {
    pub rt: Runtime,
    pub counters: &'static [SharedCounters],
}

impl WorkStealing {
    /// Builds the runtime; returns once every worker runs.
    pub fn start(cfg: &Config) -> WorkStealing {
        let counters = SharedCounters::per_worker(cfg.threads);
        let rt = multi_thread_runtime(cfg, counters);
        WorkStealing { rt, counters }
    }

    /// Spawns on the runtime a task that accepts on `listener`, each connection a task of its own.
    pub fn spawn_accept(&self, listener: std::net::TcpListener, protocol: Protocol) {
        let listener = register(self.rt.handle(), listener);
        self.rt.spawn(async move {
            accept_loop(&listener, |stream| {
                tokio::spawn(serve(stream, protocol, CurrentWorker));
            })
            .await;
        });
    }

    /// Drops every task (accept loops, hence listeners, and all connections), waits for the
    /// workers to exit, after which no counter changes, and prints the counters line.
    pub fn shut_down(self, server: &Server) {
        self.rt.shutdown_timeout(SHUTDOWN_GRACE);
        server.report_shared(self.counters);
    }
}

fn multi_thread_runtime(cfg: &Config, counters: &'static [SharedCounters]) -> Runtime {
    // tokio runs its workers on blocking-pool threads, so `on_thread_start` would also fire for
    // blocking threads (these designs spawn none). The workers are the first `threads` threads,
    // all started while the runtime is built; any later thread is left unpinned and uncounted.
    let started = AtomicUsize::new(0);
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    let rt = Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .thread_name("worker")
        .enable_all()
        .on_thread_start({
            let (cfg, workers_ready) = (cfg.clone(), workers_ready.clone());
            move || {
                let worker = started.fetch_add(1, Ordering::Relaxed);
                if worker < cfg.threads {
                    cfg.pin_worker(worker);
                    counters[worker].bind_to_current_thread();
                    workers_ready.wait();
                }
            }
        })
        .build()
        .unwrap_or_else(fatal);
    workers_ready.wait();
    rt
}

/// Accepts connections until the future is dropped, handing each to `spawn`.
pub async fn accept_loop(listener: &TcpListener, spawn: impl FnMut(TcpStream)) {
    let accept = move || async move { listener.accept().await.map(|(stream, _)| stream) };
    crate::accept::accept_loop(accept, tokio::time::sleep, spawn).await;
}

/// The accepted connections as a stream, for the structured designs (`co().for_each`).
pub fn accept_stream(listener: &TcpListener) -> impl Stream<Item = TcpStream> + '_ {
    let accept = move || async move { listener.accept().await.map(|(stream, _)| stream) };
    crate::accept::accept_stream(accept, tokio::time::sleep)
}
