//! tokio-tpc: thread per core.
//!
//! N std threads, each pinned to its CPU and running its own tokio `LocalRuntime` (stable since
//! tokio 1.51: the current-thread scheduler made to run `!Send` `spawn_local` tasks itself, where
//! the older form wraps them in a `LocalSet` on a current-thread runtime), each accepting on its
//! own `SO_REUSEPORT` listener (the kernel spreads connections over them by hash). Versus
//! tokio-ws-reuseport only the scheduler differs (same listeners, same accept tasks, no
//! stealing): a connection never leaves the thread that accepted it, so per-core state may be
//! `!Send` (`Rc<LocalCounters>`), which work stealing forbids. Versus monoio-epoll-tpc only the
//! runtime differs.

use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::LocalCounters;
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, serve};
use tokio::net::TcpListener;
use tokio::runtime::{Builder, LocalOptions};
use tokio::sync::watch;
use tokio::task;

const DESIGN: &str = "tokio-tpc";

fn main() {
    let cfg = Config::from_env();
    // Read for its check only: this runtime is set up the same either way (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        // tokio 1.54's defaults for `Builder::new_current_thread`.
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
            let counters = Rc::new(LocalCounters::default());
            workers_ready.wait();
            rt.block_on(async {
                let accept = accept_loop(&listener, |stream| {
                    task::spawn_local(serve(stream, cfg.protocol, counters.clone()));
                });
                tokio::select! {
                    () = accept => {}
                    _ = stop_rx.changed() => {}
                }
            });
            // Connections are tasks of `rt`, which runs only inside `block_on`: the counters are
            // final.
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
