//! tokio-ws: work stealing.
//!
//! One tokio multi-thread runtime with N workers pinned to the N CPUs and ONE listener. The
//! accept loop runs where tokio's own documentation and examples put it: in the future given to
//! `block_on` (what `#[tokio::main]` does), on the main thread, which is no worker. So every
//! connection task enters the runtime through its shared inject queue, and idle workers take
//! tasks from it and steal from each other; the main thread waits for accept readiness, woken by
//! whichever worker drives the I/O driver. It is confined to the worker CPUs, so that accepting
//! costs the server's CPU budget, never the load generator's. Versus tokio-ws-reuseport only the
//! accept topology differs (one listener accepted off the workers against N `SO_REUSEPORT`
//! listeners accepted by tasks on them); per-worker state must be `Sync` (counters are written
//! through the slot of whichever worker runs the task).

use bench_core::counters::CurrentWorker;
use bench_core::fatal;
use bench_core::runner::Server;
use server_designs::tokio_conn::{self, accept_loop, serve, WorkStealing};
use tokio::sync::oneshot;

fn main() {
    let mut server = Server::from_env("tokio-ws");
    let settings = tokio_conn::multi_thread_settings(&server);
    // Before any thread exists: the main thread (the acceptor) and the signal thread inherit it,
    // the workers then pin themselves.
    server.cfg.confine_to_worker_cpus();
    let listener = server.shared_listener();
    let runtime = WorkStealing::start(&server.cfg);
    let listener = tokio_conn::register(runtime.rt.handle(), listener);

    // The main thread is busy accepting, so another waits for SIGTERM.
    let (stop, stopped) = oneshot::channel();
    let signals = server.take_signals();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            signals.wait();
            let _ = stop.send(());
        })
        .unwrap_or_else(fatal);

    // The listener listens since `shared_listener`: connections wait in its backlog until the
    // loop.
    server.ready(&settings);
    let protocol = server.cfg.protocol;
    runtime.rt.block_on(async {
        let accept = accept_loop(&listener, |stream| {
            tokio::spawn(serve(stream, protocol, CurrentWorker));
        });
        tokio::select! {
            () = accept => {}
            _ = stopped => {}
        }
    });
    drop(listener);
    runtime.shut_down(&server);
}
