//! Shutdown on SIGTERM or SIGINT, the same under every runtime: the signals are blocked in every
//! thread but the one that waits for them, so no worker (in `epoll_wait`, `io_uring_enter` or a
//! runtime's park) is ever interrupted, and signal-hook's iterator receives them there.

use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::process::fatal;

/// How long workers get to stop and hand back their counters, well inside the contract's 2 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

const SHUTDOWN: [libc::c_int; 2] = [SIGTERM, SIGINT];

/// SIGTERM and SIGINT, blocked, with signal-hook's handlers registered for them.
pub struct ShutdownSignals(Signals);

impl ShutdownSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread and registers the handlers. Call it first
    /// in `main`, before any thread (runtime workers included) is spawned: threads inherit the
    /// mask, so a signal stays pending for [`wait`](Self::wait) instead of reaching a worker.
    /// Exits 1 if the handlers cannot be registered.
    pub fn block() -> Self {
        set_mask(libc::SIG_BLOCK);
        ShutdownSignals(Signals::new(SHUTDOWN).unwrap_or_else(fatal))
    }

    /// Blocks the calling thread until SIGTERM or SIGINT arrives (perhaps since before READY):
    /// unblocks them in this thread only, where a pending one is then delivered at once.
    pub fn wait(mut self) {
        set_mask(libc::SIG_UNBLOCK);
        // `forever` ends only once a signal was received.
        let _ = self.0.forever().next();
    }
}

/// Blocks (`SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) the shutdown signals in the calling thread.
fn set_mask(how: libc::c_int) {
    // SAFETY: the set is initialised by sigemptyset before use; the calls only read it.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SHUTDOWN {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    assert_eq!(rc, 0, "pthread_sigmask");
}

/// Up to `n` messages from the workers (their counters, or word that they stopped), waiting at
/// most [`SHUTDOWN_GRACE`] in all. A worker that does not answer in time is left out: its
/// counters are then absent from the report, never zero.
pub fn collect_within_grace<T>(rx: &std::sync::mpsc::Receiver<T>, n: usize) -> Vec<T> {
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    std::iter::from_fn(|| {
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .ok()
    })
    .take(n)
    .collect()
}
