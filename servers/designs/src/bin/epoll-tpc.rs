//! epoll-tpc: thread per core without a runtime, the overhead floor.
//!
//! N std threads, each pinned to its CPU and running one level-triggered epoll loop over its own
//! `SO_REUSEPORT` listener and its connections (`server_designs::epoll_loop`): no futures, tasks,
//! wakers or queues, just `epoll_wait`, then a read and a write per ready connection: the shape
//! of redis's event loop (nginx's workers are the same, edge-triggered). Versus tokio-tpc only the
//! executor differs, here by being absent: the same threads, listeners, per-connection
//! `BUF_SIZE` buffer, socket options and session code, so the gap between the two is the cost of
//! the runtime itself.

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::{Server, StopEvent};
use server_designs::epoll_loop::EventLoop;

fn main() {
    let server = Server::from_env("epoll-tpc");
    // Read for its check only: this runtime is set up the same either way (docs/fairness.md).
    let settings = server
        .settings()
        // `epoll_loop`'s own constants.
        .with("epoll", "level-triggered")
        .with("max_events", 256u32);
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, StopEvent::for_workers, |worker| {
        let event_loop = EventLoop::new(worker.incoming, &worker.stop, worker.cfg.protocol)
            .unwrap_or_else(fatal);
        let counters = LocalCounters::default();
        worker.started.wait();
        if let Err(e) = event_loop.run(&counters) {
            eprintln!("worker {}: {e}", worker.index);
        }
        // The loop, and with it every connection, is gone: the counters are final.
        worker.report.send(counters.snapshot());
    });
}
