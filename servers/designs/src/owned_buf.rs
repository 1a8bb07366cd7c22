//! The connection loop of the designs on completion runtimes (monoio, compio, tokio-uring),
//! written once over [`OwnedIo`], the small read/write trait each runtime's owned-buffer API
//! implements in a few lines below: [`serve`].
//!
//! Their reads and writes take owned buffers: the kernel may use a buffer until the operation
//! completes, so the runtime holds it meanwhile and hands it back with the result. A connection
//! owns a read buffer made by `bench_core::read_buffer` and a write buffer, as every design
//! owns its read buffer and its `Session`'s response buffer. Echo's reply is a range of the read
//! buffer and is written from it, with no copy (as the readiness designs do). HTTP's responses
//! are built by the `Session` straight into the write buffer (`Session::on_read_into`, the same
//! code that fills the session's own buffer in the other designs), which is then handed to the
//! write: no copy either, so an owned-buffer design pays nothing its borrowed-buffer pair does not.

use std::io;
use std::ops::{Deref, Range};
use std::os::unix::io::AsRawFd;

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::{net, Protocol, ReplyAt, Session};

/// Where the reply to one read lies.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Nothing to write (HTTP: the read ended inside a request).
    Nothing,
    /// This range of the read buffer (echo).
    InRead(Range<usize>),
    /// The whole write buffer, into which the session built the reply (HTTP).
    InWrite,
}

/// The reply to one read, ready to be written from an owned buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Staged {
    pub outgoing: Outgoing,
    /// Close the connection once the reply is written.
    pub close: bool,
}

/// Feeds `read` (the bytes just read) to `session`, counting bytes in and messages, and says
/// where the reply lies: in `read` itself, or in `write`, which the session filled (replacing
/// what it held).
pub fn stage(
    session: &mut Session,
    read: &[u8],
    write: &mut Vec<u8>,
    counters: &impl Counters,
) -> Staged {
    counters.add(Field::BytesIn, read.len() as u64);
    let answer = session.on_read_into(read, write);
    counters.add(Field::Messages, answer.messages);
    let outgoing = match answer.at {
        ReplyAt::Nothing => Outgoing::Nothing,
        ReplyAt::Input => Outgoing::InRead(0..read.len()),
        ReplyAt::Out => Outgoing::InWrite,
    };
    Staged {
        outgoing,
        close: answer.close,
    }
}

/// An owned-buffer operation's result: bytes read or written, and the buffer handed back.
pub type Completed = (io::Result<usize>, Vec<u8>);

/// A connection's reads and writes with owned buffers, in one runtime's API: the runtime holds
/// the buffer while the kernel may use it and hands it back with the result.
// `async fn`: the futures are polled on the thread that made them (these runtimes are
// thread-per-core), so no caller needs them `Send`.
#[allow(async_fn_in_trait)]
pub trait OwnedIo: AsRawFd {
    /// Reads at most `buf.len()` bytes to the start of `buf` (the whole `BUF_SIZE` buffer),
    /// returning how many.
    async fn read_into(&mut self, buf: Vec<u8>) -> Completed;
    /// Writes some of `buf[range]` (a non-empty range), returning how many bytes.
    async fn write_from(&mut self, buf: Vec<u8>, range: Range<usize>) -> Completed;
}

/// Serves one connection until the peer closes it or an I/O error ends it. `counters`: an `Rc`
/// in a spawned task, a plain reference in a structured group; the loop is given the counters
/// themselves either way.
pub async fn serve(
    mut stream: impl OwnedIo,
    protocol: Protocol,
    counters: impl Deref<Target = LocalCounters>,
) {
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&mut stream, Session::new(protocol), &counters).await;
}

async fn run(
    stream: &mut impl OwnedIo,
    mut session: Session,
    counters: &LocalCounters,
) -> io::Result<()> {
    net::configure_accepted(stream)?;
    let mut read_buf = bench_core::read_buffer();
    let mut write_buf = Vec::new();
    loop {
        let (n, buf) = stream.read_into(read_buf).await;
        read_buf = buf;
        let n = n?;
        if n == 0 {
            // The peer half-closed, and every reply has been written: close.
            return Ok(());
        }
        let staged = stage(&mut session, &read_buf[..n], &mut write_buf, counters);
        match staged.outgoing {
            Outgoing::Nothing => {}
            Outgoing::InRead(range) => {
                read_buf = write_all(stream, read_buf, range, counters).await?
            }
            Outgoing::InWrite => {
                let all = 0..write_buf.len();
                write_buf = write_all(stream, write_buf, all, counters).await?;
            }
        }
        if staged.close {
            return Ok(());
        }
    }
}

/// Writes `buf[range]`, retrying partial writes, and hands the buffer back.
async fn write_all(
    stream: &mut impl OwnedIo,
    mut buf: Vec<u8>,
    mut range: Range<usize>,
    counters: &LocalCounters,
) -> io::Result<Vec<u8>> {
    while !range.is_empty() {
        let (written, back) = stream.write_from(buf, range.clone()).await;
        buf = back;
        match written? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                counters.add(Field::BytesOut, n as u64);
                range.start += n;
            }
        }
    }
    Ok(buf)
}

impl OwnedIo for monoio::net::TcpStream {
    async fn read_into(&mut self, buf: Vec<u8>) -> Completed {
        // monoio reads into the whole capacity and sets the length to what was read.
        monoio::io::AsyncReadRent::read(self, buf).await
    }

    async fn write_from(&mut self, buf: Vec<u8>, range: Range<usize>) -> Completed {
        use monoio::buf::IoBuf;
        let (written, slice) = monoio::io::AsyncWriteRent::write(self, buf.slice(range)).await;
        (written, slice.into_inner())
    }
}

impl OwnedIo for compio::net::TcpStream {
    async fn read_into(&mut self, buf: Vec<u8>) -> Completed {
        // compio reads to the start of the buffer and sets its length to what was read.
        let compio::BufResult(n, buf) = compio::io::AsyncRead::read(self, buf).await;
        (n, buf)
    }

    async fn write_from(&mut self, buf: Vec<u8>, range: Range<usize>) -> Completed {
        use compio::buf::{IntoInner, IoBuf};
        let compio::BufResult(written, slice) =
            compio::io::AsyncWrite::write(self, buf.slice(range)).await;
        (written, slice.into_inner())
    }
}

impl OwnedIo for tokio_uring::net::TcpStream {
    async fn read_into(&mut self, mut buf: Vec<u8>) -> Completed {
        // tokio-uring only ever grows a Vec's length to what was read: start from empty.
        buf.clear();
        tokio_uring::net::TcpStream::read(self, buf).await
    }

    async fn write_from(&mut self, buf: Vec<u8>, range: Range<usize>) -> Completed {
        use tokio_uring::buf::BoundedBuf;
        let (written, slice) = tokio_uring::net::TcpStream::write(self, buf.slice(range))
            .submit()
            .await;
        (written, slice.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_core::Protocol;

    #[test]
    fn echo_replies_stay_in_the_read_buffer_and_http_replies_are_built_in_the_write_buffer() {
        let counters = LocalCounters::default();
        let mut write = Vec::new();
        let buf = b"xxhello".to_vec();
        let mut echo = Session::with_work(Protocol::Echo, bench_core::WorkDist::NONE);
        let staged = stage(&mut echo, &buf[2..], &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::InRead(0..5));
        assert!(write.is_empty());
        assert_eq!(write.capacity(), 0);

        let mut http = Session::with_work(Protocol::Http, bench_core::WorkDist::NONE);
        let staged = stage(&mut http, b"GET / HTTP/1.1\r\n", &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::Nothing);
        let staged = stage(&mut http, b"\r\n", &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::InWrite);
        assert!(write.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // Built in place: the write buffer is the session's response buffer, sized as its own.
        assert_eq!(write.capacity(), bench_core::http::OUT_CAPACITY);
        let snapshot = counters.snapshot();
        assert_eq!((snapshot.messages, snapshot.bytes_in), (2, 5 + 18));
        let at = write.as_ptr();
        stage(&mut http, b"GET / HTTP/1.1\r\n\r\n", &mut write, &counters);
        assert_eq!(write.as_ptr(), at);
    }
}
