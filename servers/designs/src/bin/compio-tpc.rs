//! compio-tpc: compio, thread per core, io_uring.
//!
//! N std threads, each pinned to its CPU and running its own compio runtime (the io_uring driver
//! alone: this crate enables no polling fallback, and a worker refuses to start on any other
//! driver), each accepting on its own listener with `SO_REUSEPORT` set explicitly (bench-core's
//! `net::listen_reuseport`, handed over with `from_std`: compio's own `bind` sets no
//! `SO_REUSEPORT`). A connection is a `compio::runtime::spawn`ed task that never leaves its
//! thread, with owned `BUF_SIZE` buffers, as in compio's examples. compio's `thread_affinity`
//! would pin too, but silently drops CPUs outside the process's mask, so bench-core pins (a
//! benchmark on the wrong CPU must fail). Versus monoio-tpc only the runtime differs: compio's
//! executor and driver (completion-based, like monoio's) instead of monoio's. The main thread
//! stops workers through bench-core's `runner::StopLines`, read with compio's own I/O.
//!
//! Set-up (`authors_proactor`): as compio's own documentation advises for its io_uring driver
//! (the crate's top-level "Linux io_uring tuning", and `ProactorBuilder::coop_taskrun`: "optimize
//! performance for most cases, especially compio is a single thread runtime"): `single_issuer`,
//! `coop_taskrun` and `taskrun_flag`; connections come from `TcpListener::incoming()`, one
//! multishot accept per listener. Under `BENCH_RUNTIME_SETTINGS=defaults`: `RuntimeBuilder::new()`
//! untouched and one `accept()` at a time. Reads stay single-shot `recv`s into the connection's
//! own buffer in both (see docs/fairness.md for why `read_multi` is not used).

use std::rc::Rc;

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::{Server, StopLines};
use bench_core::settings::Settings;
use compio::driver::{DriverType, ProactorBuilder};
use compio::io::AsyncRead;
use compio::net::{TcpListener, UnixStream};
use compio::runtime::RuntimeBuilder;
use compio::BufResult;
use futures_lite::future;
use server_designs::accept::{accept_incoming, accept_loop};
use server_designs::owned_buf::serve;

const DESIGN: &str = "compio-tpc";

/// compio's io_uring driver as compio's documentation advises (see the top comment).
fn authors_proactor() -> ProactorBuilder {
    let mut proactor = ProactorBuilder::new();
    proactor
        .single_issuer(true)
        .coop_taskrun(true)
        .taskrun_flag(true);
    proactor
}

/// What `main` builds, as the settings line reports it; 1024 entries and event interval 61 are
/// compio's defaults (`ProactorBuilder::new`, `RuntimeBuilder::new`), kept in both.
fn settings(server: &Server) -> Settings {
    let authors = server.profile.authors();
    server
        .settings()
        .with("driver", "io_uring")
        .with("entries", 1024u32)
        .with("event_interval", 61u32)
        .with("single_issuer", authors)
        .with("coop_taskrun", authors)
        .with("taskrun_flag", authors)
        .with("defer_taskrun", false)
        .with("accept", if authors { "multishot" } else { "single-shot" })
        .with("recv", "single-shot, into the connection's buffer")
}

fn main() {
    let server = Server::from_env(DESIGN);
    let settings = settings(&server);
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, StopLines::new, |worker| {
        let mut builder = RuntimeBuilder::new();
        if worker.profile.authors() {
            builder.with_proactor(authors_proactor());
        }
        let rt = builder
            .build()
            .unwrap_or_else(|e| fatal(format_args!("{DESIGN}: compio runtime: {e}")));
        if rt.driver_type() != DriverType::IoUring {
            fatal::<()>(format_args!(
                "{DESIGN}: compio chose the {:?} driver, not io_uring",
                rt.driver_type()
            ));
        }
        let counters = Rc::new(LocalCounters::default());
        rt.block_on(async {
            // Registered with this thread's driver, so inside its runtime.
            let listener = TcpListener::from_std(worker.incoming).unwrap_or_else(fatal);
            let stop_end = UnixStream::from_std(worker.stop).unwrap_or_else(fatal);
            worker.started.wait();
            let protocol = worker.cfg.protocol;
            let spawn = |stream| {
                compio::runtime::spawn(serve(stream, protocol, counters.clone())).detach();
            };
            let accept = async {
                if worker.profile.authors() {
                    // One multishot accept: each connection is a completion of the same
                    // operation, which compio re-arms if the kernel ends it.
                    accept_incoming(listener.incoming(), compio::time::sleep, spawn).await
                } else {
                    let listener = &listener;
                    let accept = move || async move { listener.accept().await.map(|(s, _)| s) };
                    accept_loop(accept, compio::time::sleep, spawn).await
                }
            };
            future::or(accept, stopped(stop_end)).await;
        });
        // Nothing runs outside `block_on`: the counters are final.
        worker.report.send(counters.snapshot());
    });
}

/// Returns when the main thread closes its end of the stop line.
async fn stopped(mut stop_end: UnixStream) {
    // Anything but data (EOF or an error) means the main thread's end is gone.
    while let BufResult(Ok(1..), _) = stop_end.read(Vec::with_capacity(1)).await {}
}
