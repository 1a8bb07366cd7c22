//! tokio-ws-spawn-accept: tokio-ws with its accept loop spawned on the runtime.
//!
//! tokio-ws's runtime (the same `tokio_conn::multi_thread_runtime`: N pinned workers, stealing)
//! and its ONE listener, accepted by a task spawned on the runtime instead of in `block_on` on
//! the main thread: where smol-ws, async-std-ws and rayon-ws accept (a task on their pool). A
//! task spawned by a worker starts in that worker's local queue (its LIFO slot), so a connection
//! starts on the worker that ran the accept task and moves only when stolen, instead of entering
//! through the shared inject queue as in tokio-ws. Versus tokio-ws only where the accept loop
//! runs differs; versus smol-ws, async-std-ws and rayon-ws only the runtime.

use bench_core::counters::{CurrentWorker, SharedCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{ShutdownSignals, SHUTDOWN_GRACE};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, multi_thread_runtime, serve};
use tokio::net::TcpListener;

const DESIGN: &str = "tokio-ws-spawn-accept";

fn main() {
    let cfg = Config::from_env();
    // tokio-ws's runtime, set up alike (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        .with("builder", "new_multi_thread, enable_all")
        .with("event_interval", 61u32)
        .with("max_io_events_per_tick", 1024u32)
        .with("lifo_slot", true);
    let signals = ShutdownSignals::block();
    let listener = net::listen(cfg.addr()).unwrap_or_else(fatal);
    let counters = SharedCounters::per_worker(cfg.threads);
    let rt = multi_thread_runtime(&cfg, counters);
    let listener = {
        let _runtime = rt.enter();
        TcpListener::from_std(listener).unwrap_or_else(fatal)
    };

    let protocol = cfg.protocol;
    rt.spawn(async move {
        accept_loop(&listener, |stream| {
            tokio::spawn(serve(stream, protocol, CurrentWorker));
        })
        .await;
    });
    // The listener listens since `net::listen`: connections wait in its backlog until the task.
    bench_core::ready_with(&settings);

    signals.wait();
    // Drops every task (the accept loop, hence the listener, and all connections) and waits for
    // the workers to exit, after which no counter changes.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    report::print(
        DESIGN,
        &cfg,
        counters.iter().map(SharedCounters::snapshot).enumerate(),
    );
}
