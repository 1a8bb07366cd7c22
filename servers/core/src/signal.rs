//! Shutdown on SIGTERM or SIGINT, the same under every runtime and without a signal handler:
//! the signals are blocked in every thread and the main thread waits for them with `sigwait`.

use std::mem;
use std::ptr;
use std::time::Duration;

/// How long workers get to stop and hand back their counters, well inside the contract's 2 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// SIGTERM and SIGINT, blocked.
pub struct ShutdownSignals(libc::sigset_t);

impl ShutdownSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread. Call it first in `main`, before any
    /// thread (runtime workers included) is spawned: threads inherit the mask, so the signals
    /// stay pending for [`wait`](Self::wait) instead of killing the process or interrupting a
    /// worker.
    pub fn block() -> Self {
        // SAFETY: the set is initialised by sigemptyset before use; the calls only read it.
        unsafe {
            let mut set: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
            assert_eq!(rc, 0, "pthread_sigmask");
            ShutdownSignals(set)
        }
    }

    /// Blocks the calling thread until SIGTERM or SIGINT is pending (perhaps since before READY).
    pub fn wait(&self) {
        let mut signal = 0;
        // SAFETY: the set was initialised in `block`; sigwait fails only for an invalid set.
        let rc = unsafe { libc::sigwait(&self.0, &mut signal) };
        assert_eq!(rc, 0, "sigwait");
    }
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
