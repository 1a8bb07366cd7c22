//! What a server process says and does outside its protocol: the READY line, worker threads,
//! fatal errors.

use std::fmt::Display;
use std::io::{self, Write};
use std::process;

use crate::settings;

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
