//! Code shared by several designs, so that they differ only in what each file shows. The designs
//! themselves are the binaries in `src/bin/`, one short file each.

pub mod async_io_conn;
pub mod epoll_loop;
pub mod monoio_conn;
pub mod owned_buf;
pub mod tokio_conn;
pub mod uring_loop;
