//! The connection loop of the designs on readiness-based sockets (tokio, async-std, smol, rayon
//! over async-io, glommio), written once over [`BorrowedIo`], the small read/write trait each
//! runtime's socket implements in a line or two below: [`serve`]. Reads and writes borrow the
//! connection's buffer (`bench_core::read_buffer`) and the session's reply.

use std::io;
use std::os::unix::io::AsRawFd;

use bench_core::counters::{Counters, Field};
use bench_core::{net, read_buffer, Protocol, Session};

/// A connection's reads and writes into and from borrowed buffers, in one runtime's API.
// `async fn`: the designs that move tasks between threads call `serve` on concrete socket types,
// whose futures are then known to be `Send`; nothing generic needs the bound.
#[allow(async_fn_in_trait)]
pub trait BorrowedIo: AsRawFd {
    /// Reads at most `buf.len()` bytes into `buf`, returning how many.
    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes some of `bytes` (not empty), returning how many.
    async fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize>;
}

/// Serves one connection until the peer closes it or an I/O error ends it.
pub async fn serve(mut stream: impl BorrowedIo, protocol: Protocol, counters: impl Counters) {
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&mut stream, Session::new(protocol), &counters).await;
}

async fn run(
    stream: &mut impl BorrowedIo,
    mut session: Session,
    counters: &impl Counters,
) -> io::Result<()> {
    net::configure_accepted(stream)?;
    let mut buf = read_buffer();
    loop {
        let n = stream.read_some(&mut buf).await?;
        if n == 0 {
            // The peer half-closed, and every reply has been written: close.
            return Ok(());
        }
        counters.add(Field::BytesIn, n as u64);
        let reply = session.on_read(&buf[..n]);
        counters.add(Field::Messages, reply.messages);
        let mut rest = reply.bytes;
        while !rest.is_empty() {
            // `write` rather than `write_all`: each piece is counted by the worker that wrote
            // it, even if the task moves to another worker mid-reply.
            let written = stream.write_some(rest).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            counters.add(Field::BytesOut, written as u64);
            rest = &rest[written..];
        }
        if reply.close {
            return Ok(());
        }
    }
}

impl BorrowedIo for tokio::net::TcpStream {
    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::io::AsyncReadExt::read(self, buf).await
    }

    async fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize> {
        tokio::io::AsyncWriteExt::write(self, bytes).await
    }
}

/// [`BorrowedIo`] for a futures-io socket type (`AsyncRead + AsyncWrite`).
macro_rules! futures_io {
    ($stream:ty) => {
        impl BorrowedIo for $stream {
            async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                futures_lite::AsyncReadExt::read(self, buf).await
            }

            async fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize> {
                futures_lite::AsyncWriteExt::write(self, bytes).await
            }
        }
    };
}

futures_io!(async_std::net::TcpStream);
futures_io!(async_io::Async<std::net::TcpStream>);
futures_io!(glommio::net::TcpStream);
