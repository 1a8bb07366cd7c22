//! monoio-epoll-tpc: monoio, thread per core, epoll.
//!
//! monoio-tpc with monoio's `LegacyDriver` (epoll through mio) instead of io_uring: the same
//! runtime, scheduler, tasks, owned buffers, builder settings and code
//! (`server_designs::monoio_conn`), so versus monoio-tpc only the I/O model differs, and versus
//! tokio-tpc (readiness, thread per core, SO_REUSEPORT) only the runtime does.

use monoio::LegacyDriver;
use server_designs::monoio_conn::{self, Connections};

fn main() {
    monoio_conn::main::<LegacyDriver>("monoio-epoll-tpc", Connections::Tasks);
}
