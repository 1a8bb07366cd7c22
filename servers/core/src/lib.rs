//! Everything the server designs share, independent of any async runtime.
//!
//! A design file (`servers/designs/src/bin/*.rs`) adds only its executor on top of this crate.
//! The modules import each other one way (no cycle; `tests/test_layout.py` checks it), and this
//! file only declares and re-exports them:
//! - [`cli`]: the command line of `docs/server-contract.md`;
//! - [`cpu`]: CPU lists and thread pinning;
//! - [`net`]: listeners and accepted-socket options, identical for every design;
//! - [`runner`]: the thread-per-core runner (listeners, pinning, start barrier, stop, counters,
//!   READY, report) and the start and end every design shares;
//! - [`session`]: the sans-IO protocol state machine every design drives the same way, with
//!   [`http`] (HTTP/1.1 plaintext) behind it and [`reply`] (what it answers) below both;
//! - [`work`]: `--work`, the CPU burned per request;
//! - [`counters`] and [`report`]: per-worker counters and the JSON line printed at exit;
//! - [`signal`]: SIGTERM/SIGINT handling that works under any runtime;
//! - [`process`]: READY, worker threads and fatal errors;
//! - [`settings`]: the runtime set-up a design uses (its authors' or the defaults), reported at
//!   start.

pub mod cli;
pub mod counters;
pub mod cpu;
pub mod http;
pub mod net;
pub mod process;
pub mod reply;
pub mod report;
pub mod runner;
pub mod session;
pub mod settings;
pub mod signal;
pub mod work;

pub use cli::Config;
pub use net::{read_buffer, BACKLOG, BUF_SIZE};
pub use process::{fatal, ready, ready_with, spawn_worker};
pub use reply::{Answer, Reply, ReplyAt};
pub use session::{Protocol, Session};
pub use work::WorkDist;

/// A global allocator for the tests that counts allocations per thread.
#[cfg(test)]
mod test_alloc;
