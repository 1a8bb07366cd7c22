//! uring-tpc-plain-ring: uring-tpc without the ring flags `SINGLE_ISSUER | DEFER_TASKRUN |
//! COOP_TASKRUN`. One rung of the io_uring ladder: the same loop (`server_designs::uring_loop`),
//! threads, listeners and session code as uring-tpc, differing in this one kernel feature, so the
//! gap between the two is what the feature is worth on the machine it ran on.
//!
//! A ring made with no setup flags, as the runtimes make theirs by default: completion work may
//! then run in task work that interrupts the thread, not only when it enters the kernel.

use server_designs::uring_loop::{self, Features};

fn main() {
    let features = Features {
        ring_flags: false,
        ..Features::FLOOR
    };
    uring_loop::main("uring-tpc-plain-ring", features);
}
