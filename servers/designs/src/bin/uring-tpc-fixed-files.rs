//! uring-tpc-fixed-files: uring-tpc with registered files, which uring-tpc does not use. One rung
//! of the io_uring ladder: the same loop (`server_designs::uring_loop`), threads, listeners and
//! session code as uring-tpc, differing in this one kernel feature, so the gap between the two is
//! what the feature is worth on the machine it ran on.
//!
//! Each accepted socket is also put in the ring's registered file table and every recv and send
//! names its slot, sparing the kernel the descriptor lookup and reference count per operation.

use server_designs::uring_loop::{self, Features};

fn main() {
    let features = Features {
        registered_files: true,
        ..Features::FLOOR
    };
    uring_loop::main("uring-tpc-fixed-files", features);
}
