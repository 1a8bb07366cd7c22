//! One client connection: connect, write requests, read and check answers, time them, and
//! reopen after an error. It holds a queue of outstanding requests (oldest first) with their
//! send times; closed loop keeps `depth` requests in it, refilling one per answer.
//!
//! Per answered request the hot path costs one `write` and one `read` (a short read means the
//! socket is drained, so no extra read to see `EAGAIN`), two clock reads and no allocation.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::protocol::{Parsed, Protocol};
use crate::recorder::Recorder;
use crate::stats::ErrorKind;
use crate::sys::now_ns;

/// Wait before reconnecting after a failed connect.
const CONNECT_BACKOFF_NS: u64 = 50_000_000;
/// `sent_ns` of a request not written yet.
const NOT_SENT: u64 = u64::MAX;

/// Per-thread buffers and settings shared by the thread's connections.
pub struct Shared {
    pub registry: Registry,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    /// Requests kept outstanding per connection (closed loop).
    pub depth: usize,
    pub read_buf: Box<[u8]>,
    pub write_buf: Box<[u8]>,
}

struct Request {
    seq: u64,
    /// Just before the first write of its first byte.
    sent_ns: u64,
}

/// The requests outstanding on one connection, oldest first, and the protocol that encodes
/// them and checks their answers: `queue[..written]` are fully written, `queue[written]` has
/// `write_off` bytes written.
struct InFlight<P> {
    proto: P,
    queue: VecDeque<Request>,
    written: usize,
    write_off: usize,
    next_seq: u64,
}

impl<P: Protocol> InFlight<P> {
    fn push(&mut self) {
        self.queue.push_back(Request {
            seq: self.next_seq,
            sent_ns: NOT_SENT,
        });
        self.next_seq += 1;
    }

    fn has_unwritten(&self) -> bool {
        self.written < self.queue.len()
    }

    /// Send time of the oldest request, if written.
    fn oldest_sent(&self) -> Option<u64> {
        self.queue
            .front()
            .map(|r| r.sent_ns)
            .filter(|&t| t != NOT_SENT)
    }

    /// Copies as many unwritten request bytes as fit into `buf`, stamping the send time of each
    /// request as its first byte goes in; returns the byte count. The cursor moves only with
    /// `advance_write`, so bytes the socket did not take are generated again next time.
    fn gather(&mut self, buf: &mut [u8]) -> usize {
        let (mut n, mut i, mut off) = (0, self.written, self.write_off);
        let mut stamp = None; // one clock read however many requests start here
        while i < self.queue.len() && n < buf.len() {
            let req = &mut self.queue[i];
            if req.sent_ns == NOT_SENT {
                req.sent_ns = *stamp.get_or_insert_with(now_ns);
            }
            let len = self.proto.request_len(req.seq);
            let take = (len - off).min(buf.len() - n);
            self.proto.fill_request(req.seq, off, &mut buf[n..n + take]);
            n += take;
            off += take;
            if off == len {
                (i, off) = (i + 1, 0);
            }
        }
        n
    }

    fn advance_write(&mut self, mut w: usize) {
        while w > 0 {
            let left = self.proto.request_len(self.queue[self.written].seq) - self.write_off;
            if w < left {
                self.write_off += w;
                return;
            }
            w -= left;
            self.written += 1;
            self.write_off = 0;
        }
    }

    /// Checks received bytes against the oldest requests' answers; each complete answer is
    /// timed (its last byte arrived by `now`) and replaced by a new request (closed loop).
    fn consume(&mut self, mut input: &[u8], now: u64, rec: &mut Recorder) -> Result<(), ErrorKind> {
        while !input.is_empty() {
            // Bytes that answer nothing sent are as wrong as wrong bytes.
            let head = match self.queue.front() {
                Some(head) if head.sent_ns != NOT_SENT => head,
                _ => return Err(ErrorKind::Mismatch),
            };
            match self.proto.parse_response(head.seq, input) {
                Parsed::Partial => return Ok(()),
                Parsed::Complete { .. } if self.written == 0 => {
                    return Err(ErrorKind::Mismatch); // answered before fully sent
                }
                Parsed::Complete { consumed, len } => {
                    let sent = self.proto.request_len(head.seq);
                    rec.completed(now, now - head.sent_ns, sent, len);
                    input = &input[consumed..];
                    self.queue.pop_front();
                    self.written -= 1;
                    self.push();
                }
                Parsed::Invalid => return Err(ErrorKind::Mismatch),
            }
        }
        Ok(())
    }

    /// Abandons everything outstanding (the connection is being reopened).
    fn clear(&mut self) {
        self.queue.clear();
        (self.written, self.write_off) = (0, 0);
        self.proto.reset();
    }
}

enum State {
    /// Not connected; reconnect at `retry_at`.
    Closed {
        retry_at: u64,
    },
    Connecting {
        since: u64,
    },
    Open,
}

pub struct Conn<P> {
    token: Token,
    stream: Option<TcpStream>,
    state: State,
    inflight: InFlight<P>,
}

impl<P: Protocol> Conn<P> {
    pub fn new(token: Token, proto: P, depth: usize) -> Conn<P> {
        Conn {
            token,
            stream: None,
            state: State::Closed { retry_at: 0 },
            inflight: InFlight {
                proto,
                queue: VecDeque::with_capacity(depth),
                written: 0,
                write_off: 0,
                next_seq: 0,
            },
        }
    }

    /// Starts a non-blocking connect.
    pub fn open(&mut self, sh: &mut Shared, rec: &mut Recorder) {
        let connected = TcpStream::connect(sh.addr).and_then(|mut s| {
            s.set_nodelay(true)?;
            sh.registry
                .register(&mut s, self.token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(s)
        });
        match connected {
            Ok(s) => {
                self.stream = Some(s);
                self.state = State::Connecting { since: now_ns() };
            }
            Err(_) => self.fail(ErrorKind::Connect, sh, rec),
        }
    }

    pub fn on_event(&mut self, ev: &Event, sh: &mut Shared, rec: &mut Recorder) {
        let result = match self.state {
            State::Closed { .. } => return, // stale event of a closed socket
            State::Connecting { .. } => self.finish_connect(sh),
            State::Open if ev.is_readable() || ev.is_read_closed() || ev.is_error() => self
                .read_answers(sh, rec)
                .and_then(|()| self.write_requests(sh)),
            State::Open => self.write_requests(sh),
        };
        if let Err(kind) = result {
            self.fail(kind, sh, rec);
        }
    }

    /// Periodic check: timeouts and due reconnects.
    pub fn tick(&mut self, now: u64, sh: &mut Shared, rec: &mut Recorder) {
        match self.state {
            State::Closed { retry_at } if now >= retry_at => self.open(sh, rec),
            State::Connecting { since } if now.saturating_sub(since) >= sh.timeout_ns => {
                self.fail(ErrorKind::Connect, sh, rec)
            }
            State::Open => {
                let oldest = self.inflight.oldest_sent();
                if oldest.map_or(false, |t| now.saturating_sub(t) >= sh.timeout_ns) {
                    self.fail(ErrorKind::Timeout, sh, rec);
                }
            }
            _ => {}
        }
    }

    fn finish_connect(&mut self, sh: &mut Shared) -> Result<(), ErrorKind> {
        let stream = self.stream.as_ref().expect("connecting without a socket");
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return Err(ErrorKind::Connect),
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()), // not yet
            Err(_) => return Err(ErrorKind::Connect),
        }
        self.state = State::Open;
        while self.inflight.queue.len() < sh.depth {
            self.inflight.push();
        }
        self.write_requests(sh)
    }

    /// Reads until the socket is drained, checking and timing every complete answer.
    fn read_answers(&mut self, sh: &mut Shared, rec: &mut Recorder) -> Result<(), ErrorKind> {
        let stream = self.stream.as_mut().expect("open without a socket");
        loop {
            let n = match stream.read(&mut sh.read_buf) {
                Ok(0) => return Err(ErrorKind::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            let now = now_ns(); // the last byte of these has arrived
            self.inflight.consume(&sh.read_buf[..n], now, rec)?;
            if n < sh.read_buf.len() {
                return Ok(()); // short read: drained, new data will raise a new edge
            }
        }
    }

    /// Writes unwritten request bytes until there are none or the socket is full.
    fn write_requests(&mut self, sh: &mut Shared) -> Result<(), ErrorKind> {
        let stream = self.stream.as_mut().expect("open without a socket");
        while self.inflight.has_unwritten() {
            let n = self.inflight.gather(&mut sh.write_buf);
            let w = match stream.write(&sh.write_buf[..n]) {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            self.inflight.advance_write(w);
            if w < n {
                return Ok(()); // socket buffer full: a writable edge will follow
            }
        }
        Ok(())
    }

    /// Counts the error, drops the socket and what was outstanding on it, and reconnects
    /// (after a back-off when connecting failed).
    fn fail(&mut self, kind: ErrorKind, sh: &mut Shared, rec: &mut Recorder) {
        let now = now_ns();
        rec.error(now, kind);
        if let Some(mut s) = self.stream.take() {
            let _ = sh.registry.deregister(&mut s);
        }
        self.inflight.clear();
        if kind == ErrorKind::Connect {
            self.state = State::Closed {
                retry_at: now + CONNECT_BACKOFF_NS,
            };
        } else {
            self.open(sh, rec);
        }
    }
}
