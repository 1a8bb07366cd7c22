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
//! The loop and `main` live in `uring_loop`, shared with the ladder designs (`uring-tpc-*`), each
//! of which differs from this one in one kernel feature (`uring_loop::Features`).
//!
//! Shutdown: main triggers a `Stop` eventfd that every loop keeps a poll on; each worker reports
//! its counters, then drops its loop, which frees buffers only once the kernel has returned them.

use server_designs::uring_loop::{self, Features};

fn main() {
    uring_loop::main("uring-tpc", Features::FLOOR);
}
