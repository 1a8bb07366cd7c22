//! Everything the server designs share, independent of any async runtime.
//!
//! A design file (`servers/designs/src/bin/*.rs`) adds only its executor on top of this crate:
//! - [`cli`]: the command line of `docs/server-contract.md`;
//! - [`cpu`]: CPU lists and thread pinning;
//! - [`net`]: listeners and accepted-socket options, identical for every design;
//! - [`session`]: the sans-IO protocol state machine every design drives the same way, with
//!   [`http`] (HTTP/1.1 plaintext) behind it;
//! - [`work`]: `--work`, the CPU burned per request;
//! - [`counters`] and [`report`]: per-worker counters and the JSON line printed at exit;
//! - [`signal`]: SIGTERM/SIGINT handling that works under any runtime;
//! - [`settings`]: the runtime set-up a design uses (its authors' or the defaults), reported at
//!   start.

pub mod cli;
pub mod counters;
pub mod cpu;
pub mod http;
pub mod net;
pub mod report;
pub mod session;
pub mod settings;
pub mod signal;
pub mod work;

use std::fmt::Display;
use std::io::{self, Write};
use std::process;

pub use cli::Config;
pub use net::{read_buffer, BACKLOG, BUF_SIZE};
pub use session::{Answer, Protocol, Reply, ReplyAt, Session};
pub use work::WorkDist;

/// Reports the design's runtime settings (the `server-settings/1` line), then announces that
/// every listener accepts connections (`READY`): the two lines allowed on stdout before the
/// counters.
pub fn ready_with(settings: &settings::Settings) {
    settings.print();
    ready();
}

/// Announces that every listener accepts connections: the one line allowed on stdout before the
/// counters (after the settings line, see `ready_with`).
pub fn ready() {
    let mut out = io::stdout().lock();
    // Nothing useful can be done if stdout is gone; the harness would then time out on READY.
    let _ = writeln!(out, "READY").and_then(|()| out.flush());
}

/// Starts worker thread `worker`, named `worker-{worker}` (the name the harness and the
/// conformance suite look for in /proc); exits 1 if the thread cannot be created.
pub fn spawn_worker<F: FnOnce() + Send + 'static>(worker: usize, run: F) {
    std::thread::Builder::new()
        .name(format!("worker-{worker}"))
        .spawn(run)
        .unwrap_or_else(fatal);
}

/// Prints `error: {err}` on stderr and exits 1. For failures after the command line was accepted
/// (bind, runtime or thread creation); bad flags exit 2 from [`Config::from_env`].
///
/// Generic in its return type so that it can be passed straight to `unwrap_or_else`.
pub fn fatal<T>(err: impl Display) -> T {
    eprintln!("error: {err}");
    process::exit(1)
}

/// A global allocator for the tests that counts allocations per thread, so that a test can check
/// that a hot path allocates nothing.
#[cfg(test)]
mod test_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn count() {
        // `try_with`: a thread being torn down may still allocate.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    pub fn allocations_on_this_thread() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            System.alloc(layout)
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            System.alloc_zeroed(layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            System.realloc(ptr, layout, new_size)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout);
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;
}
