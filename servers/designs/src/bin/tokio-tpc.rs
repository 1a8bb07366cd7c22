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

use bench_core::counters::LocalCounters;
use bench_core::runner::Server;
use server_designs::tokio_conn::{self, accept_loop, serve, until_stopped, WatchStop};
use tokio::task;

fn main() {
    let server = Server::from_env("tokio-tpc");
    let settings = tokio_conn::current_thread_settings(&server);
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, WatchStop::new, |worker| {
        let rt = tokio_conn::local_runtime();
        let listener = tokio_conn::register(rt.handle(), worker.incoming);
        let counters = Rc::new(LocalCounters::default());
        worker.started.wait();
        let protocol = worker.cfg.protocol;
        rt.block_on(until_stopped(
            accept_loop(&listener, |stream| {
                task::spawn_local(serve(stream, protocol, counters.clone()));
            }),
            worker.stop,
        ));
        // Connections are tasks of `rt`, which runs only inside `block_on`: the counters are
        // final.
        worker.report.send(counters.snapshot());
    });
}
