//! tokio-ws-reuseport: work stealing behind thread-per-core's listeners.
//!
//! tokio-ws's runtime (the same `tokio_conn::multi_thread_runtime`: N pinned workers, stealing)
//! with tokio-tpc's accept topology: N `SO_REUSEPORT` listeners, the kernel hashing each new
//! connection to one, and one accept task per listener, spawned on the runtime. A task spawned
//! by a worker starts in that worker's local queue, so a connection starts where it was accepted
//! and moves only when an idle worker steals it (or its accept task). Versus tokio-tpc only the
//! scheduler differs (stealing or not, over the same listeners and accept tasks); versus
//! tokio-ws only the accept topology does.

use bench_core::counters::{CurrentWorker, SharedCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{ShutdownSignals, SHUTDOWN_GRACE};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, multi_thread_runtime, serve};
use tokio::net::TcpListener;

const DESIGN: &str = "tokio-ws-reuseport";

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
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();
    let counters = SharedCounters::per_worker(cfg.threads);
    let rt = multi_thread_runtime(&cfg, counters);

    let protocol = cfg.protocol;
    for listener in listeners {
        let listener = {
            let _runtime = rt.enter();
            TcpListener::from_std(listener).unwrap_or_else(fatal)
        };
        rt.spawn(async move {
            accept_loop(&listener, |stream| {
                tokio::spawn(serve(stream, protocol, CurrentWorker));
            })
            .await;
        });
    }
    bench_core::ready_with(&settings);

    signals.wait();
    // Drops every task (the accept loops, hence the listeners, and all connections) and waits for
    // the workers to exit, after which no counter changes.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    report::print(
        DESIGN,
        &cfg,
        counters.iter().map(SharedCounters::snapshot).enumerate(),
    );
}
