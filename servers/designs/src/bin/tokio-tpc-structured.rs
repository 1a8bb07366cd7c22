//! tokio-tpc-structured: tokio-tpc with structured concurrency instead of a task per connection.
//!
//! The same N pinned threads, each a tokio `LocalRuntime` with its own `SO_REUSEPORT` listener,
//! the same connection code (`tokio_conn::serve`: buffer, socket options, session). One thing
//! differs: no `spawn_local`. Each worker's connections are futures polled as one group inside
//! the worker's single task, the accept stream driven beside them: futures-concurrency's
//! `ConcurrentStream::for_each` (`stream.co().for_each(..)`, the crate's documented way to process
//! the items of a stream concurrently; a `FutureGroup` underneath). A connection is therefore no
//! `'static` task: it borrows the worker's counters by reference (no `Rc`), costs no task
//! allocation and no trip through the scheduler's queue. Only the connections whose waker fired
//! are polled, so a stuck one holds up nobody; a finished one is dropped from the group at once.
//! Every connection shares the worker task's cooperative budget (tokio's coop: 128 operations
//! per poll of a task), where each task of tokio-tpc has its own.

use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::LocalCounters;
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use futures_concurrency::prelude::*;
use server_designs::tokio_conn::{accept_stream, serve};
use tokio::net::TcpListener;
use tokio::runtime::{Builder, LocalOptions};
use tokio::sync::watch;

const DESIGN: &str = "tokio-tpc-structured";

fn main() {
    let cfg = Config::from_env();
    // tokio-tpc's runtime, set up alike (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        .with("builder", "new_current_thread, enable_all, build_local")
        .with("event_interval", 61u32)
        .with("max_io_events_per_tick", 1024u32);
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let (stop, stop_rx) = watch::channel(false);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, listener) in listeners.into_iter().enumerate() {
        let (cfg, mut stop_rx) = (cfg.clone(), stop_rx.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let rt = Builder::new_current_thread()
                .enable_all()
                .build_local(LocalOptions::default())
                .unwrap_or_else(fatal);
            let listener = {
                let _runtime = rt.enter();
                TcpListener::from_std(listener).unwrap_or_else(fatal)
            };
            let counters = LocalCounters::default();
            workers_ready.wait();
            rt.block_on(async {
                let protocol = cfg.protocol;
                let counters = &counters;
                let connections = accept_stream(&listener)
                    .co()
                    .for_each(|stream| serve(stream, protocol, counters));
                tokio::select! {
                    () = connections => {}
                    _ = stop_rx.changed() => {}
                }
            });
            // The connections lived inside `block_on`'s future, dropped when it returned: the
            // counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    bench_core::ready_with(&settings);

    signals.wait();
    stop.send_replace(true);
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}
