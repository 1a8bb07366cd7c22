//! uring-tpc-single-accept: uring-tpc without multishot accept. One rung of the io_uring ladder:
//! the same loop (`server_designs::uring_loop`), threads, listeners and session code as uring-tpc,
//! differing in this one kernel feature, so the gap between the two is what the feature is worth on
//! the machine it ran on.
//!
//! One single-shot accept is armed at a time and re-armed after each connection, as the io_uring
//! runtimes do.

use server_designs::uring_loop::{self, Features};

fn main() {
    let features = Features {
        accept_multishot: false,
        ..Features::FLOOR
    };
    uring_loop::main("uring-tpc-single-accept", features);
}
