//! tokio-ws-reuseport: work stealing behind thread-per-core's listeners.
//!
//! tokio-ws's runtime (the same `tokio_conn::multi_thread_runtime`: N pinned workers, stealing)
//! with tokio-tpc's accept topology: N `SO_REUSEPORT` listeners, the kernel hashing each new
//! connection to one, and one accept task per listener, spawned on the runtime. A task spawned
//! by a worker starts in that worker's local queue, so a connection starts where it was accepted
//! and moves only when an idle worker steals it (or its accept task). Versus tokio-tpc only the
//! scheduler differs (stealing or not, over the same listeners and accept tasks); versus
//! tokio-ws only the accept topology does.

use bench_core::runner::Server;
use server_designs::tokio_conn::{self, WorkStealing};

fn main() {
    let mut server = Server::from_env("tokio-ws-reuseport");
    let settings = tokio_conn::multi_thread_settings(&server);
    let listeners = server.listeners_per_core();
    let runtime = WorkStealing::start(&server.cfg);
    for listener in listeners {
        runtime.spawn_accept(listener, server.cfg.protocol);
    }
    server.ready(&settings);

    server.wait_for_signal();
    runtime.shut_down(&server);
}
