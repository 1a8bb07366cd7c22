//! tokio-ws: work stealing.
//!
//! One tokio multi-thread runtime with N workers pinned to the N CPUs and ONE listener. The
//! accept loop runs where tokio's own documentation and examples put it: in the future given to
//! `block_on` (what `#[tokio::main]` does), on the main thread, which is no worker. So every
//! connection task enters the runtime through its shared inject queue, and idle workers take
//! tasks from it and steal from each other; the main thread waits for accept readiness, woken by
//! whichever worker drives the I/O driver. It is confined to the worker CPUs, so that accepting
//! costs the server's CPU budget, never the load generator's. Versus tokio-ws-reuseport only the
//! accept topology differs (one listener accepted off the workers against N `SO_REUSEPORT`
//! listeners accepted by tasks on them); per-worker state must be `Sync` (counters are written
//! through the slot of whichever worker runs the task).

use bench_core::counters::{CurrentWorker, SharedCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{ShutdownSignals, SHUTDOWN_GRACE};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, multi_thread_runtime, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const DESIGN: &str = "tokio-ws";

fn main() {
    let cfg = Config::from_env();
    // Read for its check only: this runtime is set up the same either way (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        // tokio 1.54's defaults for `Builder::new_multi_thread` (`tokio_conn::multi_thread_runtime`
        // sets only the workers, their names and pinning), as `#[tokio::main]` leaves them.
        .with("builder", "new_multi_thread, enable_all")
        .with("event_interval", 61u32)
        .with("max_io_events_per_tick", 1024u32)
        .with("lifo_slot", true);
    let signals = ShutdownSignals::block();
    // Before any thread exists: the main thread (the acceptor) and the signal thread inherit it,
    // the workers then pin themselves.
    cfg.confine_to_worker_cpus();
    let listener = net::listen(cfg.addr()).unwrap_or_else(fatal);
    let counters = SharedCounters::per_worker(cfg.threads);
    let rt = multi_thread_runtime(&cfg, counters);
    let listener = {
        let _runtime = rt.enter();
        TcpListener::from_std(listener).unwrap_or_else(fatal)
    };

    // The main thread is busy accepting, so another waits for SIGTERM.
    let (stop, stopped) = oneshot::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            signals.wait();
            let _ = stop.send(());
        })
        .unwrap_or_else(fatal);

    // The listener listens since `net::listen`: connections wait in its backlog until the loop.
    bench_core::ready_with(&settings);
    let protocol = cfg.protocol;
    rt.block_on(async {
        let accept = accept_loop(&listener, |stream| {
            tokio::spawn(serve(stream, protocol, CurrentWorker));
        });
        tokio::select! {
            () = accept => {}
            _ = stopped => {}
        }
    });
    drop(listener);
    // Drops every task (all connections) and waits for the workers to exit, after which no
    // counter changes.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    report::print(
        DESIGN,
        &cfg,
        counters.iter().map(SharedCounters::snapshot).enumerate(),
    );
}
