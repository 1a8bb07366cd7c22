//! uring-tpc-single-recv: uring-tpc without multishot recv and the provided-buffer ring. One rung
//! of the io_uring ladder: the same loop (`server_designs::uring_loop`), threads, listeners and
//! session code as uring-tpc, differing in this one kernel feature, so the gap between the two is
//! what the feature is worth on the machine it ran on.
//!
//! Each connection reads with one single-shot recv at a time into its own `BUF_SIZE` buffer
//! (`bench_core::read_buffer`, as in every other design), re-armed after each reply: monoio's,
//! compio's and tokio-uring's pattern.

use server_designs::uring_loop::{self, Features};

fn main() {
    let features = Features {
        recv_multishot: false,
        ..Features::FLOOR
    };
    uring_loop::main("uring-tpc-single-recv", features);
}
