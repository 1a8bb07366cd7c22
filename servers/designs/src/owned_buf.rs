//! What the designs on completion runtimes (monoio, compio, tokio-uring) share, whatever their
//! buffer traits: where the reply to a read lies, and how the main thread stops their workers.
//!
//! Their reads and writes take owned buffers: the kernel may use a buffer until the operation
//! completes, so the runtime holds it meanwhile and hands it back with the result. A connection
//! owns a `BUF_SIZE` read buffer, as in every design. Echo's reply is a range of that buffer and
//! is written from it, with no copy (as the readiness designs do). HTTP's reply lies in the
//! `Session`, which cannot lend it to the kernel, so it is copied into the connection's write
//! buffer: one read's responses (~130 bytes per request), the price of the owned-buffer API that
//! monoio-http and every handler on these runtimes pay too.

use std::io;
use std::ops::Range;
use std::os::unix::net::UnixStream;

use bench_core::counters::{Counters, Field};
use bench_core::Session;

/// Where the reply to one read lies.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Nothing to write (HTTP: the read ended inside a request).
    Nothing,
    /// This range of the read buffer (echo).
    InRead(Range<usize>),
    /// The whole write buffer, into which the reply was copied (HTTP).
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
/// where the reply lies: in `read` itself, or copied into `write` (cleared first).
pub fn stage(
    session: &mut Session,
    read: &[u8],
    write: &mut Vec<u8>,
    counters: &impl Counters,
) -> Staged {
    counters.add(Field::BytesIn, read.len() as u64);
    let reply = session.on_read(read);
    counters.add(Field::Messages, reply.messages);
    let read_range = read.as_ptr_range();
    let start = reply.bytes.as_ptr();
    let outgoing = if reply.bytes.is_empty() {
        Outgoing::Nothing
    } else if read_range.contains(&start) {
        // Echo answers with (part of) the input itself.
        let offset = start as usize - read.as_ptr() as usize;
        Outgoing::InRead(offset..offset + reply.bytes.len())
    } else {
        write.clear();
        write.extend_from_slice(reply.bytes);
        Outgoing::InWrite
    };
    Staged {
        outgoing,
        close: reply.close,
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
    fn echo_replies_stay_in_the_read_buffer_and_http_replies_are_copied() {
        let counters = LocalCounters::default();
        let mut write = Vec::new();
        let buf = b"xxhello".to_vec();
        let mut echo = Session::with_work(Protocol::Echo, bench_core::WorkDist::NONE);
        let staged = stage(&mut echo, &buf[2..], &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::InRead(0..5));
        assert!(write.is_empty());

        let mut http = Session::with_work(Protocol::Http, bench_core::WorkDist::NONE);
        let staged = stage(&mut http, b"GET / HTTP/1.1\r\n", &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::Nothing);
        let staged = stage(&mut http, b"\r\n", &mut write, &counters);
        assert_eq!(staged.outgoing, Outgoing::InWrite);
        assert!(write.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let snapshot = counters.snapshot();
        assert_eq!((snapshot.messages, snapshot.bytes_in), (2, 5 + 18));
    }
}
