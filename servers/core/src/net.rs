//! Sockets, set up identically for every design: the contract forbids design files from setting
//! socket options themselves.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::{Domain, SockRef, Socket, Type};

/// Size of the buffer every design reads into.
pub const BUF_SIZE: usize = 16 * 1024;

/// A connection's read buffer, made the same way in every design: `BUF_SIZE` bytes, zeroed when
/// the connection opens. Zeroed because the readiness APIs (tokio's `read`, futures-io's) read
/// only into initialised bytes; the owned-buffer designs could skip it, so they are given the same
/// cost rather than a saving their pair does not get.
pub fn read_buffer() -> Vec<u8> {
    vec![0; BUF_SIZE]
}

/// Listen backlog of every listener.
pub const BACKLOG: i32 = 1024;

/// Pause after a failed accept, in every design: the usual causes (EMFILE, ENFILE, ENOBUFS)
/// persist, and retrying at once would spin a core and flood stderr.
pub const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

/// A listener shared by all workers (work-stealing designs): `SO_REUSEADDR`, nonblocking.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    bind(addr, false)
}

/// One of several listeners on the same port, one per thread (thread-per-core designs):
/// `SO_REUSEADDR` and `SO_REUSEPORT`, so the kernel spreads connections over them; nonblocking.
pub fn listen_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    bind(addr, true)
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let listen = || {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    listen().map_err(|e: io::Error| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))
}

/// Options for an accepted connection, whatever runtime type wraps it: `TCP_NODELAY`, since
/// request/response traffic must not wait for Nagle's algorithm.
/// Takes `AsRawFd` because async-std's `TcpStream` implements no `AsFd`.
pub fn configure_accepted(stream: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: `stream` owns the descriptor and outlives this call.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    SockRef::from(&fd).set_tcp_nodelay(true)
}
