//! tokio-ws-spawn-accept: tokio-ws with its accept loop spawned on the runtime.
//!
//! tokio-ws's runtime (the same `tokio_conn::multi_thread_runtime`: N pinned workers, stealing)
//! and its ONE listener, accepted by a task spawned on the runtime instead of in `block_on` on
//! the main thread: where smol-ws, async-std-ws and rayon-ws accept (a task on their pool). A
//! task spawned by a worker starts in that worker's local queue (its LIFO slot), so a connection
//! starts on the worker that ran the accept task and moves only when stolen, instead of entering
//! through the shared inject queue as in tokio-ws. Versus tokio-ws only where the accept loop
//! runs differs; versus smol-ws, async-std-ws and rayon-ws only the runtime.

use bench_core::runner::Server;
use server_designs::tokio_conn::{self, WorkStealing};

fn main() {
    let mut server = Server::from_env("tokio-ws-spawn-accept");
    // tokio-ws's runtime, set up alike (docs/fairness.md).
    let settings = tokio_conn::multi_thread_settings(&server);
    let listener = server.shared_listener();
    let runtime = WorkStealing::start(&server.cfg);
    runtime.spawn_accept(listener, server.cfg.protocol);
    // The listener listens since `shared_listener`: connections wait in its backlog until the
    // task.
    server.ready(&settings);

    server.wait_for_signal();
    runtime.shut_down(&server);
}
