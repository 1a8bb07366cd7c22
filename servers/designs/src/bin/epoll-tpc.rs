//! epoll-tpc: thread per core without a runtime, the overhead floor.
//!
//! N std threads, each pinned to its CPU and running one level-triggered epoll loop over its own
//! `SO_REUSEPORT` listener and its connections (`server_designs::epoll_loop`): no futures, tasks,
//! wakers or queues, just `epoll_wait`, then a read and a write per ready connection: the shape
//! of redis's event loop (nginx's workers are the same, edge-triggered). Versus tokio-tpc only the
//! executor differs, here by being absent: the same threads, listeners, per-connection
//! `BUF_SIZE` buffer, socket options and session code, so the gap between the two is the cost of
//! the runtime itself.

use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::LocalCounters;
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use server_designs::epoll_loop::{EventLoop, Stop};

const DESIGN: &str = "epoll-tpc";

fn main() {
    let cfg = Config::from_env();
    // Read for its check only: this runtime is set up the same either way (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        // `epoll_loop`'s own constants.
        .with("epoll", "level-triggered")
        .with("max_events", 256u32);
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let stop = Arc::new(Stop::new().unwrap_or_else(fatal));
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, listener) in listeners.into_iter().enumerate() {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let event_loop = EventLoop::new(listener, &stop, cfg.protocol).unwrap_or_else(fatal);
            let counters = LocalCounters::default();
            workers_ready.wait();
            if let Err(e) = event_loop.run(&counters) {
                eprintln!("worker {worker}: {e}");
            }
            // The loop, and with it every connection, is gone: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    bench_core::ready_with(&settings);

    signals.wait();
    stop.trigger();
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}
