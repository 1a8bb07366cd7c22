//! monoio-tpc-structured: monoio-tpc with structured concurrency instead of a task per
//! connection.
//!
//! The same runtime, driver and settings as monoio-tpc (io_uring, `RuntimeBuilder::<IoUringDriver>`
//! with the timer for the accept back-off), listeners, buffers and connection code
//! (`server_designs::monoio_conn`); one thing differs: no `monoio::spawn`. Each worker's
//! connections are futures polled as one group inside its one task (futures-concurrency's
//! `co().for_each` over the accept stream), borrowing the worker's counters by reference.

use monoio::IoUringDriver;
use server_designs::monoio_conn::{self, Connections};

fn main() {
    monoio_conn::main::<IoUringDriver>("monoio-tpc-structured", Connections::Structured);
}
