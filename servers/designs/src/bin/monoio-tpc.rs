//! monoio-tpc: monoio, thread per core, io_uring.
//!
//! N std threads, each pinned to its CPU and running its own monoio runtime on the io_uring
//! driver (`RuntimeBuilder::<IoUringDriver>`), each accepting on its own `SO_REUSEPORT` listener;
//! a connection is a task that never leaves its thread, with owned `BUF_SIZE` buffers handed to
//! the kernel. The design monoio's benchmark claims 2-3x over tokio for. Versus monoio-epoll-tpc
//! only the driver differs (the code and the builder settings are `server_designs::monoio_conn`,
//! shared); versus tokio-tpc the runtime and the I/O model differ, so the pair monoio-epoll-tpc /
//! monoio-tpc says how much of that gap is io_uring. The runtime is set up as monoio's benchmark
//! server sets it up (`monoio_conn::entries`), or with monoio's defaults under
//! `BENCH_RUNTIME_SETTINGS=defaults`.

use monoio::IoUringDriver;
use server_designs::monoio_conn::{self, Connections};

fn main() {
    monoio_conn::main::<IoUringDriver>("monoio-tpc", Connections::Tasks);
}
