//! async-std-ws: work stealing, async-std's own runtime.
//!
//! async-std's global executor (async-global-executor: one `async_executor::Executor` run by a
//! pool of threads, each in async-io's `block_on`) with N threads pinned to the N CPUs, and ONE
//! listener; the accept loop is a task spawned with `task::spawn`, and each connection is a task
//! any worker may pick up or steal. Versus smol-ws the executor code is the same; what differs is
//! what async-std adds (task-local support around every task, a per-thread local executor polled
//! beside the global one) and that async-std owns its threads: they are configured only by
//! environment variables read at first use, and have no start hook. So the design pins them from
//! inside: N tasks that each block their thread on a barrier until all N run must be on N distinct
//! threads, which are all of them; each pins its thread and binds its counters before releasing.

use std::env;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};

use async_std::net::TcpListener;
use async_std::task;
use bench_core::counters::CurrentWorker;
use server_designs::async_io_conn::{self, accept_loop, serve};

fn main() {
    let start = async_io_conn::start("async-std-ws", EXECUTOR, REACTOR);
    let (mut server, counters) = (start.server, start.counters);
    let cfg = server.cfg.clone();
    // async-std's only configuration, read when its runtime starts (the first spawn). Set while
    // this is the only thread, so no one reads the environment concurrently.
    env::set_var("ASYNC_STD_THREAD_COUNT", cfg.threads.to_string());
    env::set_var("ASYNC_STD_THREAD_NAME", "worker");
    // From a std listener (registered with async-io, which starts its "async-io" thread), not
    // `TcpListener::bind`, which resolves the address on async-std's blocking pool.
    let listener = TcpListener::from(start.listener);

    // Starts the runtime, then takes over each of its threads once (see the top comment).
    let started = Arc::new(AtomicUsize::new(0));
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for _ in 0..cfg.threads {
        let (cfg, started, workers_ready) = (cfg.clone(), started.clone(), workers_ready.clone());
        task::spawn(async move {
            let worker = started.fetch_add(1, Ordering::Relaxed);
            cfg.pin_worker(worker);
            counters[worker].bind_to_current_thread();
            // Blocks this thread on purpose, and only before READY.
            workers_ready.wait();
        });
    }
    workers_ready.wait();

    let protocol = cfg.protocol;
    task::spawn(async move {
        accept_loop(listener.incoming(), |stream| {
            task::spawn(serve(stream, protocol, CurrentWorker));
        })
        .await;
    });
    server.ready(&start.settings);

    server.wait_for_signal();
    // async-std's runtime cannot be shut down, so its threads are taken over again, now for good:
    // N tasks that each park their thread until the process exits. Once all N run, nothing else
    // does and no counter changes; a worker still busy after the grace period is abandoned and
    // its counters are read as they are. Returning from `main` then ends the process, and with it
    // the listener and every connection.
    let (parked_tx, parked_rx) = mpsc::channel();
    for _ in 0..cfg.threads {
        let parked_tx = parked_tx.clone();
        task::spawn(async move {
            let _ = parked_tx.send(());
            async_io_conn::park_for_good()
        });
    }
    async_io_conn::report_once_stopped(&server, &parked_rx, counters);
}

/// The settings line's `executor` and `reactor`.
const EXECUTOR: &str = "async-global-executor (async-std 1.13's task::spawn)";
const REACTOR: &str = "async-io, driven by whichever thread is idle";
