//! tokio-uring-tpc: tokio-uring, thread per core, io_uring.
//!
//! UNMAINTAINED UPSTREAM: tokio-uring 0.5 is its last release and the repository sees no
//! active development; it is here because the question names it (monoio against tokio-uring).
//!
//! N std threads, each pinned to its CPU by bench-core before `tokio_uring::Runtime::new` (the
//! crate has no pinning API), each running its own tokio-uring runtime (a tokio current-thread
//! runtime and `LocalSet` whose I/O is submitted to an io_uring, with tokio-uring's default 256
//! entries) and accepting on its own `SO_REUSEPORT` listener (bench-core's, handed over with
//! `from_std`). A connection is a `tokio_uring::spawn`ed task that never leaves its thread, with
//! owned `BUF_SIZE` buffers, as in tokio-uring's examples. Versus tokio-tpc the scheduler is the
//! same (tokio's current-thread runtime and `LocalSet`) but every socket operation is an io_uring
//! submission instead of an epoll registration: the I/O model differs, and with it the runtime
//! layer that drives I/O. Versus monoio-tpc only the runtime differs. tokio's wakers work across
//! threads, so the main thread stops the workers through a `watch` channel, as in tokio-tpc.
//!
//! Set-up: tokio-uring's own examples (`examples/tcp_listener.rs`, `examples/wrk-bench.rs`, a
//! server for wrk) and monoio's benchmark's tokio-uring server all start with
//! `tokio_uring::start`, i.e. `tokio_uring::builder()` untouched: 256 entries, no setup flag.
//! So its authors' set-up is its defaults, the same under `BENCH_RUNTIME_SETTINGS=defaults`.

use std::rc::Rc;

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::Server;
use server_designs::accept::accept_loop;
use server_designs::owned_buf::serve;
use server_designs::tokio_conn::{until_stopped, WatchStop};
use tokio_uring::net::TcpListener;

const DESIGN: &str = "tokio-uring-tpc";

fn main() {
    let server = Server::from_env(DESIGN);
    // Read for its check only: both set-ups are the same here (see the top comment).
    let settings = server
        .settings()
        .with("driver", "io_uring")
        // `tokio_uring::builder()`'s default.
        .with("entries", 256u32)
        .with("setup_flags", "none")
        .with("accept", "single-shot")
        .with("recv", "single-shot, into the connection's buffer");
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, WatchStop::new, |worker| {
        let rt = tokio_uring::Runtime::new(&tokio_uring::builder())
            .unwrap_or_else(|e| fatal(format_args!("{DESIGN}: tokio-uring runtime: {e}")));
        let counters = Rc::new(LocalCounters::default());
        rt.block_on(async {
            // Registered with this thread's ring, so inside its runtime.
            let listener = &TcpListener::from_std(worker.incoming);
            worker.started.wait();
            let protocol = worker.cfg.protocol;
            let accept = move || async move { listener.accept().await.map(|(s, _)| s) };
            let spawn = |stream| {
                tokio_uring::spawn(serve(stream, protocol, counters.clone()));
            };
            until_stopped(accept_loop(accept, tokio::time::sleep, spawn), worker.stop).await;
        });
        // Nothing runs outside `block_on`: the counters are final.
        worker.report.send(counters.snapshot());
    });
}
