//! monoio-epoll-tpc: monoio, thread per core, epoll.
//!
//! monoio-tpc with monoio's `LegacyDriver` (epoll through mio) instead of io_uring: the same
//! runtime, scheduler, tasks, owned buffers and code (`server_designs::monoio_conn`), so versus
//! monoio-tpc only the I/O model differs, and versus tokio-tpc (readiness, thread per core,
//! SO_REUSEPORT) only the runtime does.

use monoio::{LegacyDriver, RuntimeBuilder};

fn main() {
    server_designs::monoio_conn::main("monoio-epoll-tpc", || {
        RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()
    });
}
