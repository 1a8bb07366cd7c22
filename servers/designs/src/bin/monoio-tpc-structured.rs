//! monoio-tpc-structured: monoio-tpc with structured concurrency instead of a task per
//! connection.
//!
//! The same runtime, driver and settings as monoio-tpc (io_uring, `RuntimeBuilder::<IoUringDriver>`
//! with the timer for the accept back-off), listeners, buffers and connection code
//! (`server_designs::monoio_conn`); one thing differs: no `monoio::spawn`. Each worker's
//! connections are futures polled as one group inside its one task (futures-concurrency's
//! `co().for_each` over the accept stream), borrowing the worker's counters by reference.

use bench_core::settings::Profile;
use monoio::{IoUringDriver, RuntimeBuilder};
use server_designs::monoio_conn;

const DESIGN: &str = "monoio-tpc-structured";

fn main() {
    // monoio-tpc's runtime, built by the same call and settings (one factor apart: concurrency).
    let profile = Profile::from_env();
    let entries = monoio_conn::entries(profile);
    let settings = monoio_conn::settings(DESIGN, "io_uring", profile)
        .with("setup_flags", "none")
        .with("accept", "single-shot")
        .with("recv", "single-shot, into the connection's buffer");
    monoio_conn::main_structured(DESIGN, settings, move || {
        let builder = RuntimeBuilder::<IoUringDriver>::new();
        match entries {
            Some(entries) => builder.with_entries(entries),
            None => builder,
        }
        .enable_timer()
        .build()
    });
}
