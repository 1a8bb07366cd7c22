//! glommio-tpc: glommio, thread per core, io_uring.
//!
//! N std threads, each making its own glommio `LocalExecutor`
//! (`LocalExecutorBuilder::new(Placement::Fixed(cpu)).make()` then `run`, which is what glommio's
//! `spawn` does, on a thread bench-core names) and accepting on its own listener with glommio's
//! `TcpListener`; each connection is a `spawn_local(..).detach()`ed task that never leaves its
//! executor. glommio's sockets are poll-style (`AsyncRead`/`AsyncWrite` over io_uring
//! operations), so the connection loop is `async_io_conn::serve`, the one the async-io designs
//! run. Versus monoio-tpc only the runtime differs (glommio's three rings per executor, task
//! queues and preemption timer instead of monoio's one ring).
//!
//! Sockets: glommio's `TcpListener::bind` would set `SO_REUSEPORT` and backlog 1024 but not
//! `SO_REUSEADDR`; instead the listener is bench-core's (`net::listen_reuseport`, made blocking
//! again as glommio's own is) wrapped with `FromRawFd`, so every option is the other designs'.
//! `TCP_NODELAY` is set on accepted streams by `net::configure_accepted`, as everywhere.
//!
//! Needs: io_uring, and an RLIMIT_MEMLOCK of at least 512 KiB (`ulimit -l`), which glommio
//! checks when an executor starts; a worker that cannot start exits the process at once with
//! one line naming the limit, never a hang. glommio's 10 MiB of registered I/O memory per
//! executor is for file I/O only; when the ring cannot register it (memlock accounting, no
//! CAP_IPC_LOCK) glommio goes on without it, which sockets never use.
//!
//! Each executor also has glommio's blocking-thread pool (one idle thread, `glommio-pool-N`, for
//! file and `spawn_blocking` work this design never submits). glommio's wakers cannot be woken
//! from a thread without an executor, so the main thread stops the workers through
//! bench-core's `runner::StopLines`, read with glommio's own `UnixStream`.
//!
//! Set-up: glommio's own TCP benchmark (`benches/tcp.rs`) and monoio's benchmark's glommio server
//! build `LocalExecutorBuilder::new(Placement::Fixed(cpu))` with nothing else, so its authors'
//! set-up is its defaults (ring depth 128, no spin before parking, 100 ms preemption timer), the
//! same under `BENCH_RUNTIME_SETTINGS=defaults`. (glommio's sharding benchmark spins 10 ms before
//! parking; that is a compute pipeline's setting, and spinning would bill idle time as server
//! CPU in an open-loop run.)

use std::io;
use std::os::unix::io::{FromRawFd, IntoRawFd};
use std::rc::Rc;

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::{Server, StopLines};
use futures_lite::{future, AsyncReadExt};
use glommio::net::{TcpListener, UnixStream};
use glommio::{LocalExecutorBuilder, Placement};
use server_designs::accept::accept_loop;
use server_designs::async_io_conn::serve;

const DESIGN: &str = "glommio-tpc";

fn main() {
    let server = Server::from_env(DESIGN);
    // Read for its check only: both set-ups are the same here (see the top comment).
    // glommio 0.9's `LocalExecutorBuilder::new` defaults.
    let settings = server
        .settings()
        .with("driver", "io_uring (three rings: main, latency, poll)")
        .with("ring_depth", 128u32)
        .with("spin_before_park", "none")
        .with("preempt_timer_ms", 100u32)
        .with("io_memory_bytes", 10usize << 20)
        // glommio 0.9's `net` module: a non-blocking system call first, a POLL_ADD on the ring
        // only when it would block.
        .with("accept", "accept(2), POLL_ADD when none is queued")
        .with(
            "recv",
            "recv(2) into the connection's buffer, POLL_ADD when nothing is queued",
        )
        .with("send", "send(2), POLL_ADD when the socket is full");
    let listeners = server.listeners_per_core();
    for listener in &listeners {
        listener.set_nonblocking(false).unwrap_or_else(fatal);
    }
    server.run_per_core(&settings, listeners, StopLines::new, |worker| {
        // The runner pinned this thread (and seeded `--work`); glommio's placement then binds to
        // the same CPU.
        let index = worker.index;
        let placement = worker
            .cfg
            .cpu(index)
            .map_or(Placement::Unbound, Placement::Fixed);
        // glommio's blocking-pool thread, started by `make`, inherits this thread's name (and
        // CPU): named apart, so that `worker-*` is only the thread that serves connections.
        set_thread_name(&format!("glommio-pool-{index}"));
        let executor = LocalExecutorBuilder::new(placement).make();
        set_thread_name(&format!("worker-{index}"));
        let executor = executor.unwrap_or_else(|e| {
            fatal(format_args!(
                "{DESIGN}: glommio executor for worker {index}: {e} (glommio needs \
                     io_uring and RLIMIT_MEMLOCK >= 512 KiB: raise `ulimit -l`)"
            ))
        });
        let counters = Rc::new(LocalCounters::default());
        executor.run(async {
            // SAFETY: each fd is a listening (resp. connected) socket whose ownership moves
            // into the glommio object; registered with this executor's reactor.
            let listener = &unsafe { TcpListener::from_raw_fd(worker.incoming.into_raw_fd()) };
            let stop_end = unsafe { UnixStream::from_raw_fd(worker.stop.into_raw_fd()) };
            worker.started.wait();
            let protocol = worker.cfg.protocol;
            let accept = move || async move { listener.accept().await.map_err(io::Error::from) };
            let spawn = |stream| {
                glommio::spawn_local(serve(stream, protocol, counters.clone())).detach();
            };
            future::or(
                accept_loop(accept, glommio::timer::sleep, spawn),
                stopped(stop_end),
            )
            .await;
        });
        // Nothing runs outside `run`: the counters are final.
        worker.report.send(counters.snapshot());
    });
}

/// Renames the calling thread (at most 15 bytes, as the kernel keeps them).
fn set_thread_name(name: &str) {
    let name = std::ffi::CString::new(name).expect("no NUL in a thread name");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, which `name` is, during the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Returns when the main thread closes its end of the stop line.
async fn stopped(mut stop_end: UnixStream) {
    let mut byte = [0; 1];
    // Anything but data (EOF or an error) means the main thread's end is gone.
    while let Ok(1..) = stop_end.read(&mut byte).await {}
}
