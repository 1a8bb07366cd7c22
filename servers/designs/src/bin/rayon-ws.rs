//! rayon-ws: work stealing on a data-parallel pool.
//!
//! Futures run as jobs on a rayon `ThreadPool` of N threads pinned to the N CPUs, and ONE
//! listener; the accept loop and each connection are `async_task` tasks whose schedule function
//! is `pool.spawn(|| runnable.run())`. Nothing in the pool waits for I/O: async-io's reactor runs
//! on its own "async-io" thread (confined to the worker CPUs, see `confine_helper_threads`), and
//! its wake-ups inject the woken tasks into the pool. This is the design of rayon's former
//! futures integration (rayon-futures: a future is polled by a rayon job each time it is woken).
//! Versus smol-ws only the executor differs: rayon's deques (a task rescheduled by a worker goes on
//! that worker's own deque, LIFO; a wake-up from the reactor goes through rayon's global injector)
//! and a reactor that is always a separate thread, hence a thread hand-off on every wake-up.

use std::future::Future;
use std::sync::{mpsc, Arc, Barrier};

use async_io::Async;
use async_task::Runnable;
use bench_core::counters::CurrentWorker;
use bench_core::fatal;
use rayon::{ThreadPool, ThreadPoolBuilder};
use server_designs::async_io_conn::{self, accept_loop, serve};

/// Runs `future` on `pool`: each time it is woken, one rayon job polls it once.
fn spawn(pool: &'static ThreadPool, future: impl Future<Output = ()> + Send + 'static) {
    let schedule = move |runnable: Runnable| {
        pool.spawn(move || {
            runnable.run();
        });
    };
    let (runnable, task) = async_task::spawn(future, schedule);
    runnable.schedule();
    task.detach();
}

fn main() {
    let start = async_io_conn::start("rayon-ws", EXECUTOR, REACTOR);
    let (mut server, counters) = (start.server, start.counters);
    let cfg = server.cfg.clone();
    // Registering the listener starts async-io's reactor and its "async-io" thread.
    let listener = Async::new(start.listener).unwrap_or_else(fatal);

    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    let pool = ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|worker| format!("worker-{worker}"))
        .start_handler({
            let (cfg, workers_ready) = (cfg.clone(), workers_ready.clone());
            move |worker| {
                cfg.pin_worker(worker);
                counters[worker].bind_to_current_thread();
                workers_ready.wait();
            }
        })
        .build()
        .unwrap_or_else(fatal);
    // Every task's schedule function refers to the pool, for the whole run.
    let pool: &'static ThreadPool = Box::leak(Box::new(pool));

    let protocol = cfg.protocol;
    spawn(pool, async move {
        accept_loop(listener.incoming(), |stream| {
            spawn(pool, serve(stream, protocol, CurrentWorker));
        })
        .await;
    });
    workers_ready.wait();
    server.ready(&start.settings);

    server.wait_for_signal();
    // Detached tasks have no owner that could cancel them, so the workers are stopped instead:
    // each, between two jobs, takes one that parks it until the process exits. Once all are
    // parked no counter changes; a worker still busy after the grace period is abandoned and its
    // counters are read as they are. Returning from `main` then ends the process, and with it the
    // listener and every connection.
    let (parked_tx, parked_rx) = mpsc::sync_channel(cfg.threads);
    pool.spawn_broadcast(move |_| {
        let _ = parked_tx.send(());
        async_io_conn::park_for_good()
    });
    async_io_conn::report_once_stopped(&server, &parked_rx, counters);
}

/// The settings line's `executor` and `reactor`.
const EXECUTOR: &str = "rayon ThreadPool, futures run as jobs";
const REACTOR: &str = "async-io, on its own thread";
