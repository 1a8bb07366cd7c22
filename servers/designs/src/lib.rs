//! Code shared by several designs, so that they differ only in what each file shows. The designs
//! themselves are the binaries in `src/bin/`, one short file each; bench-core's `runner` runs
//! them (threads, listeners, stop, counters, READY, report).
//!
//! - [`accept`]: the accept loop, once for every runtime;
//! - [`owned_buf`] and [`borrowed_buf`]: the two connection loops (completion runtimes' owned
//!   buffers, readiness runtimes' borrowed ones), each written once over a small read/write trait;
//! - [`tokio_conn`], [`async_io_conn`], [`monoio_conn`]: what the designs on one runtime share;
//! - [`epoll_loop`] and [`uring_loop`]: the event loops of the designs without a runtime.

pub mod accept;
pub mod async_io_conn;
pub mod borrowed_buf;
pub mod epoll_loop;
pub mod monoio_conn;
pub mod owned_buf;
pub mod tokio_conn;
pub mod uring_loop;
