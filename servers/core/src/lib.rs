//! Everything the server designs share, independent of any async runtime.
//!
//! A design file (`servers/designs/src/bin/*.rs`) adds only its executor on top of this crate:
//! - [`cli`]: the command line of `docs/server-contract.md`;
//! - [`cpu`]: CPU lists and thread pinning;
//! - [`net`]: listeners and accepted-socket options, identical for every design;
//! - [`session`]: the sans-IO protocol state machine every design drives the same way;
//! - [`counters`] and [`report`]: per-worker counters and the JSON line printed at exit;
//! - [`signal`]: SIGTERM/SIGINT handling that works under any runtime.

pub mod cli;
pub mod counters;
pub mod cpu;
pub mod net;
pub mod report;
pub mod session;
pub mod signal;

use std::fmt::Display;
use std::io::{self, Write};
use std::process;

pub use cli::Config;
pub use net::{BACKLOG, BUF_SIZE};
pub use session::{Protocol, Reply, Session};

/// Announces that every listener accepts connections: the one line allowed on stdout before the
/// counters.
pub fn ready() {
    let mut out = io::stdout().lock();
    // Nothing useful can be done if stdout is gone; the harness would then time out on READY.
    let _ = writeln!(out, "READY").and_then(|()| out.flush());
}

/// Prints `error: {err}` on stderr and exits 1. For failures after the command line was accepted
/// (bind, runtime or thread creation); bad flags exit 2 from [`Config::from_env`].
///
/// Generic in its return type so that it can be passed straight to `unwrap_or_else`.
pub fn fatal<T>(err: impl Display) -> T {
    eprintln!("error: {err}");
    process::exit(1)
}
