//! The accept loop and the connection loop of every design whose sockets are async-io's
//! (async-std-ws, smol-ws, rayon-ws), the futures-io twin of `tokio_conn`: same buffer, socket
//! options, session code (`borrowed_buf::serve`) and back-off, so that these designs differ only
//! in where the futures run. glommio-tpc runs [`serve`] too (glommio's sockets are futures-io),
//! with glommio's own timer for the back-off: async-io's would start async-io's reactor thread.
//!
//! It also places the thread async-io adds to every such process, see [`confine_helper_threads`].

use std::io;

use async_io::Timer;
use bench_core::Config;
use futures_lite::Stream;

pub use crate::borrowed_buf::serve;

/// Accepts connections from `incoming` (the listener's `incoming()`, async-std's or async-io's)
/// until the future is dropped, handing each to `spawn`.
pub async fn accept_loop<S>(incoming: impl Stream<Item = io::Result<S>>, spawn: impl FnMut(S)) {
    // async-std's `task::sleep` is this same timer.
    crate::accept::accept_incoming(incoming, Timer::after, spawn).await;
}

/// Confines the calling thread, and so every thread it creates from now on (Linux threads inherit
/// their creator's affinity), to the worker CPUs as a set. Does nothing when `--cpus` is absent.
///
/// Call it first in `main`. async-io starts a thread named "async-io" the first time a socket is
/// registered: in smol-ws and async-std-ws a fallback that drives the reactor only while no worker
/// does, in rayon-ws the reactor itself. Created while this mask holds, it runs on any of the
/// server's CPUs (competing with the workers, not tied to one of them) and never on the load
/// generator's: its cost is paid inside the server's CPU budget, as every other design's is.
/// Workers then pin themselves to their one CPU; this thread only waits for signals.
pub fn confine_helper_threads(cfg: &Config) {
    cfg.confine_to_worker_cpus();
}
