//! What the designs on completion runtimes (monoio, compio, tokio-uring) share, whatever their
//! buffer traits: where the reply to a read lies, and how the main thread stops their workers.
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
use std::ops::Range;
use std::os::unix::net::UnixStream;

use bench_core::counters::{Counters, Field};
use bench_core::{ReplyAt, Session};

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

/// How the main thread stops per-core workers on runtimes whose tasks cannot be woken from
/// another thread without an opt-in feature (monoio without `sync`): one socket pair per worker.
/// The worker reads its end with its runtime's own I/O; the main thread drops its ends, and every
/// read returns 0. Nothing on the serving path changes.
pub struct StopLines {
    main_ends: Vec<UnixStream>,
}

impl StopLines {
    /// One line per worker; returns the workers' ends (nonblocking, as epoll drivers need).
    pub fn new(workers: usize) -> io::Result<(StopLines, Vec<UnixStream>)> {
        let mut main_ends = Vec::with_capacity(workers);
        let mut worker_ends = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (main_end, worker_end) = UnixStream::pair()?;
            worker_end.set_nonblocking(true)?;
            main_ends.push(main_end);
            worker_ends.push(worker_end);
        }
        Ok((StopLines { main_ends }, worker_ends))
    }

    /// Tells every worker to stop.
    pub fn stop(self) {
        drop(self.main_ends);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_core::counters::LocalCounters;
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
