//! smol-ws: work stealing, smol style.
//!
//! One `async_executor::Executor` (smol's executor) run by N std threads pinned to the N CPUs, each
//! in `block_on(ex.run(..))`, and ONE listener; the accept loop is a task on that executor, and
//! each connection is a task that any thread running the executor may pick up or steal. This is
//! the multi-threaded set-up smol and async-executor document, with threads the design names and
//! pins instead of `smol::spawn`'s unpinned global ones. Versus tokio-ws only the executor differs:
//! async-executor's scheduler (one global queue plus per-thread queues that idle threads steal
//! from; no LIFO slot, no task budget), and async-io's reactor, one epoll per process driven by
//! whichever worker is idle in `block_on` (as tokio's shared driver is), with async-io's own
//! "async-io" thread as a fallback, confined to the worker CPUs (`confine_helper_threads`).

use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::CurrentWorker;
use bench_core::fatal;
use server_designs::async_io_conn::{self, accept_loop, serve};
use smol::{block_on, channel, Async, Executor};

fn main() {
    let start = async_io_conn::start("smol-ws", EXECUTOR, REACTOR);
    let (mut server, counters) = (start.server, start.counters);
    let cfg = server.cfg.clone();
    // Registering the listener starts async-io's reactor and its "async-io" thread.
    let listener = Async::new(start.listener).unwrap_or_else(fatal);

    // Shared by every worker and task for the whole run, like smol's own global executor.
    let ex: &'static Executor<'static> = Box::leak(Box::default());
    let protocol = cfg.protocol;
    ex.spawn(async move {
        accept_loop(listener.incoming(), |stream| {
            ex.spawn(serve(stream, protocol, CurrentWorker)).detach();
        })
        .await;
    })
    .detach();

    // Closing `stop` ends every `ex.run`; the executor's tasks then no longer run anywhere.
    let (stop, stopped) = channel::unbounded::<()>();
    let (exited_tx, exited_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, counters) in counters.iter().enumerate() {
        let (cfg, stopped) = (cfg.clone(), stopped.clone());
        let (exited_tx, workers_ready) = (exited_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            counters.bind_to_current_thread();
            workers_ready.wait();
            let _ = block_on(ex.run(stopped.recv()));
            let _ = exited_tx.send(());
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    server.ready(&start.settings);

    server.wait_for_signal();
    stop.close();
    // Once every worker has left `ex.run` no counter changes.
    async_io_conn::report_once_stopped(&server, &exited_rx, counters);
}

/// The settings line's `executor` and `reactor`.
const EXECUTOR: &str = "async-executor Executor, run by every worker";
const REACTOR: &str = "async-io, driven by whichever thread is idle";
