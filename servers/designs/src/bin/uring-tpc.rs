//! uring-tpc: thread per core on io_uring without a runtime, the io_uring floor.
//!
//! N std threads, each pinned to its CPU with its own io_uring and its own `SO_REUSEPORT`
//! listener, as in tokio-tpc, monoio-tpc and epoll-tpc, each running one completion loop
//! (`server_designs::uring_loop`): accept, recv and send are submitted to the ring and a
//! completion runs the connection's next step directly, with no futures, tasks or wakers.
//!
//! Versus monoio-tpc (the same threads, listeners and io_uring) the executor is absent, and the
//! loop uses what a current kernel offers that monoio does not: multishot accept, multishot recv
//! from a per-thread ring of provided buffers (256 x 16 KiB, the contract's `BUF_SIZE` each), and
//! the `SINGLE_ISSUER | DEFER_TASKRUN` ring flags. So this design bounds what io_uring can give a
//! thread-per-core server; it does not measure monoio. Versus epoll-tpc only the I/O model
//! differs (completions vs level-triggered readiness). On a kernel without these features (before
//! 6.0/6.1) it falls back, with one stderr note, to single-shot accept and recv into per-connection
//! buffers (monoio's own I/O pattern); `uring_loop`'s top comment has the details.
//!
//! Shutdown: main triggers a `Stop` eventfd that every loop keeps a poll on; each worker reports
//! its counters, then drops its loop, which frees buffers only once the kernel has returned them.

use std::sync::{mpsc, Arc};

use bench_core::counters::LocalCounters;
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use server_designs::uring_loop::{EventLoop, Stop};

const DESIGN: &str = "uring-tpc";

fn main() {
    let cfg = Config::from_env();
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let stop = Arc::new(Stop::new().unwrap_or_else(fatal));
    let (started_tx, started_rx) = mpsc::channel();
    let (counters_tx, counters_rx) = mpsc::channel();
    for (worker, listener) in listeners.into_iter().enumerate() {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        let (started_tx, counters_tx) = (started_tx.clone(), counters_tx.clone());
        let run = move || {
            cfg.pin_worker(worker);
            // Made on the worker's own CPU and thread (the ring accepts only its creator's calls).
            let mut event_loop = match EventLoop::new(listener, &stop, cfg.protocol) {
                Ok(event_loop) => event_loop,
                Err(e) => return drop(started_tx.send(Err(e))),
            };
            let _ = started_tx.send(Ok(()));
            let counters = LocalCounters::default();
            if let Err(e) = event_loop.run(&counters) {
                eprintln!("worker {worker}: io_uring_enter: {e}");
            }
            // No completion is handled any more: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
            drop(event_loop);
        };
        bench_core::spawn_worker(worker, run);
    }
    // READY once every worker has its ring; the listeners already listen. (Main's own sender is
    // dropped so that a worker that died before reporting ends the wait.)
    drop(started_tx);
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fatal(format_args!(
                "io_uring unavailable: {e} (check `ulimit -l`, seccomp and the \
                 kernel.io_uring_disabled sysctl)"
            )),
            Err(_) => fatal("a worker exited during start-up"),
        }
    }
    bench_core::ready();

    signals.wait();
    stop.trigger();
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}
