//! tokio-ws: work stealing.
//!
//! One tokio multi-thread runtime with N workers pinned to the N CPUs and ONE listener; the accept
//! loop is a task on that runtime, and each connection is a task any idle worker may steal.
//! Versus tokio-tpc only the executor differs: connections are balanced across workers while
//! they run, so per-worker state must be `Sync` (counters are written through the slot of
//! whichever worker runs the task).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use bench_core::counters::{CurrentWorker, SharedCounters};
use bench_core::signal::{ShutdownSignals, SHUTDOWN_GRACE};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, serve};
use tokio::net::TcpListener;
use tokio::runtime::Builder;

const DESIGN: &str = "tokio-ws";

fn main() {
    let cfg = Config::from_env();
    let signals = ShutdownSignals::block();
    let listener = net::listen(cfg.addr()).unwrap_or_else(fatal);
    let counters = SharedCounters::per_worker(cfg.threads);

    // tokio runs its workers on blocking-pool threads, so `on_thread_start` would also fire for
    // blocking threads (this design spawns none). The workers are the first `threads` threads,
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
    workers_ready.wait();
    bench_core::ready();

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
