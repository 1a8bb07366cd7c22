//! One client connection: connect, write requests, read and check answers, time them, and
//! reopen after an error, after the server's `Connection: close`, or after its quota of
//! requests (`--requests-per-connection`).
//!
//! It holds the queue of requests on the wire (oldest first) with their send times, at most
//! `depth` of them. Closed loop refills the queue from an endless supply; open loop refills it
//! from the connection's [`Schedule`], whose due requests wait there while the pipeline is full
//! or the connection is (re)connecting.
//!
//! Per answered request the hot path costs one `write` and one `read` (fewer when pipelined; a
//! short read means the socket is drained, so no extra read to see `EAGAIN`), two clock reads
//! and no allocation.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::protocol::{Parsed, Protocol};
use crate::recorder::Recorder;
use crate::schedule::Schedule;
use crate::stats::ErrorKind;
use crate::sys::now_ns;

/// Wait before reconnecting after a failed connect.
const CONNECT_BACKOFF_NS: u64 = 50_000_000;
/// `intended_ns` of a closed-loop request, `sent_ns` of a request not written yet.
const NONE: u64 = u64::MAX;

/// Per-thread buffers and settings shared by the thread's connections.
pub struct Shared {
    pub registry: Registry,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    /// Requests per TCP connection before it is closed and reopened.
    pub per_connection: Option<u64>,
    pub read_buf: Box<[u8]>,
    pub write_buf: Box<[u8]>,
}

struct Request {
    seq: u64,
    /// Open loop: when the schedule meant it to be sent.
    intended_ns: u64,
    /// Just before the write of its first byte.
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
    fn push(&mut self, intended_ns: u64) {
        self.queue.push_back(Request {
            seq: self.next_seq,
            intended_ns,
            sent_ns: NONE,
        });
        self.next_seq += 1;
    }

    fn has_unwritten(&self) -> bool {
        self.written < self.queue.len()
    }

    /// Whether some request has (part of) its bytes on the wire.
    fn has_sent(&self) -> bool {
        self.written > 0 || self.write_off > 0
    }

    /// Send time of the oldest request, if written.
    fn oldest_sent(&self) -> Option<u64> {
        self.queue.front().map(|r| r.sent_ns).filter(|&t| t != NONE)
    }

    /// Copies as many unwritten request bytes as fit into `buf`; returns the byte count. The
    /// cursor moves only with `advance_write`, so bytes the socket did not take are generated
    /// again next time.
    fn gather(&mut self, buf: &mut [u8]) -> usize {
        let (mut n, mut i, mut off) = (0, self.written, self.write_off);
        while i < self.queue.len() && n < buf.len() {
            let seq = self.queue[i].seq;
            let len = self.proto.request_len(seq);
            let take = (len - off).min(buf.len() - n);
            self.proto.fill_request(seq, off, &mut buf[n..n + take]);
            n += take;
            off += take;
            if off == len {
                (i, off) = (i + 1, 0);
            }
        }
        n
    }

    /// `w` bytes were written at `stamp`; the requests whose first byte was among them are
    /// stamped as sent then. Returns how many.
    fn advance_write(&mut self, mut w: usize, stamp: u64) -> u64 {
        let mut started = 0;
        while w > 0 {
            let req = &mut self.queue[self.written];
            if self.write_off == 0 {
                req.sent_ns = stamp;
                started += 1;
            }
            let left = self.proto.request_len(req.seq) - self.write_off;
            if w < left {
                self.write_off += w;
                return started;
            }
            w -= left;
            self.written += 1;
            self.write_off = 0;
        }
        started
    }

    /// Checks received bytes against the oldest requests' answers; each complete answer is
    /// timed (its last byte arrived by `now`) and leaves the queue. Returns how many were
    /// answered and whether the server closes the connection after the last of them.
    fn consume(
        &mut self,
        mut input: &[u8],
        now: u64,
        rec: &mut Recorder,
    ) -> Result<(u64, bool), ErrorKind> {
        let mut answered = 0;
        while !input.is_empty() {
            // Bytes that answer nothing sent are as wrong as wrong bytes.
            let head = match self.queue.front() {
                Some(head) if head.sent_ns != NONE => head,
                _ => return Err(P::INVALID),
            };
            match self.proto.parse_response(head.seq, input) {
                Parsed::Partial => break,
                Parsed::Complete { .. } if self.written == 0 => {
                    return Err(P::INVALID); // answered before fully sent
                }
                Parsed::Complete {
                    consumed,
                    len,
                    ok,
                    close,
                } => {
                    let sent = self.proto.request_len(head.seq);
                    let intended = (head.intended_ns != NONE).then_some(head.intended_ns);
                    rec.completed(now, head.sent_ns, intended, ok, sent, len);
                    self.queue.pop_front();
                    self.written -= 1;
                    answered += 1;
                    if close {
                        return Ok((answered, true)); // nothing more comes on this connection
                    }
                    input = &input[consumed..];
                }
                Parsed::Invalid => return Err(P::INVALID),
            }
        }
        Ok((answered, false))
    }

    /// The connection failed: every request on it is lost, recorded from its intended send time
    /// (open loop) or its send time (closed loop; one never written is no request yet). Returns
    /// how many were recorded.
    fn lose_all(&mut self, now: u64, kind: ErrorKind, rec: &mut Recorder) -> u64 {
        let mut lost = 0;
        for r in &self.queue {
            if r.intended_ns != NONE {
                rec.lost(now, r.intended_ns, true, kind);
            } else if r.sent_ns != NONE {
                rec.lost(now, r.sent_ns, false, kind);
            } else {
                continue;
            }
            lost += 1;
        }
        self.queue.clear();
        self.rewind();
        lost
    }

    /// Keeps the outstanding requests but as unsent, to be sent again on a new connection.
    fn rewind(&mut self) {
        for r in &mut self.queue {
            r.sent_ns = NONE;
        }
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

/// What reading found, besides answers.
enum ReadOutcome {
    /// Keep going on this connection.
    Continue,
    /// Close it and open a new one, without error: the server said `Connection: close` or
    /// closed an idle connection, or the connection carried its quota of requests.
    Reopen,
}

pub struct Conn<P> {
    token: Token,
    stream: Option<TcpStream>,
    state: State,
    inflight: InFlight<P>,
    /// Most requests on the wire at once.
    depth: usize,
    /// Open loop only.
    schedule: Option<Schedule>,
    /// Requests put on the current TCP connection, and answers it brought.
    assigned: u64,
    answered: u64,
}

impl<P: Protocol> Conn<P> {
    pub fn new(token: Token, proto: P, depth: usize, schedule: Option<Schedule>) -> Conn<P> {
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
            depth,
            schedule,
            assigned: 0,
            answered: 0,
        }
    }

    /// Open loop: when the next request becomes due.
    pub fn next_due(&self) -> Option<u64> {
        self.schedule.as_ref().map(Schedule::next_due)
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
            State::Connecting { .. } => self.finish_connect(sh, rec),
            State::Open if ev.is_readable() || ev.is_read_closed() || ev.is_error() => {
                // After the peer's FIN or an error no further edge comes: read to the end.
                let to_the_end = ev.is_read_closed() || ev.is_error();
                match self.read_answers(to_the_end, sh, rec) {
                    Ok(ReadOutcome::Reopen) => return self.reopen(sh, rec),
                    Ok(ReadOutcome::Continue) => self.refill_and_write(sh, rec),
                    Err(kind) => Err(kind),
                }
            }
            State::Open => self.write_requests(sh, rec),
        };
        if let Err(kind) = result {
            self.fail(kind, sh, rec);
        }
    }

    /// Open loop: admits the requests due by `now` into the backlog (recording how late each
    /// was noticed) and sends what the pipeline has room for. Returns the next due time.
    pub fn on_due(&mut self, now: u64, sh: &mut Shared, rec: &mut Recorder) -> u64 {
        let schedule = self.schedule.as_mut().expect("on_due without a schedule");
        while let Some(a) = schedule.admit(now) {
            rec.admitted(now, a.intended_ns);
            if let Some(dropped) = a.dropped {
                rec.lost(now, dropped, true, ErrorKind::QueueOverflow);
            }
        }
        let next = schedule.next_due();
        if let State::Open = self.state {
            if let Err(kind) = self.refill_and_write(sh, rec) {
                self.fail(kind, sh, rec);
            }
        }
        next
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
                if oldest.is_some_and(|t| now.saturating_sub(t) >= sh.timeout_ns) {
                    self.fail(ErrorKind::Timeout, sh, rec);
                }
            }
            _ => {}
        }
    }

    fn finish_connect(&mut self, sh: &mut Shared, rec: &mut Recorder) -> Result<(), ErrorKind> {
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
        self.refill_and_write(sh, rec)
    }

    /// Tops the pipeline up to `depth` (within the connection's quota): closed loop with new
    /// requests, open loop with due ones from the schedule. Then writes.
    fn refill_and_write(&mut self, sh: &mut Shared, rec: &mut Recorder) -> Result<(), ErrorKind> {
        while self.inflight.queue.len() < self.depth
            && sh.per_connection.is_none_or(|k| self.assigned < k)
        {
            let intended = match &mut self.schedule {
                None => NONE,
                Some(s) => match s.take() {
                    Some(t) => t,
                    None => break,
                },
            };
            self.inflight.push(intended);
            self.assigned += 1;
        }
        self.write_requests(sh, rec)
    }

    /// Reads until the socket is drained, checking and timing every complete answer. A short
    /// read counts as drained (new data raises a new edge) unless `to_the_end`.
    fn read_answers(
        &mut self,
        to_the_end: bool,
        sh: &mut Shared,
        rec: &mut Recorder,
    ) -> Result<ReadOutcome, ErrorKind> {
        let stream = self.stream.as_mut().expect("open without a socket");
        loop {
            let n = match stream.read(&mut sh.read_buf) {
                Ok(0) if self.inflight.has_sent() => return Err(ErrorKind::Eof),
                Ok(0) => return Ok(ReadOutcome::Reopen), // closed while idle: not an error
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Continue)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            let now = now_ns(); // the last byte of these has arrived
            let (answered, close) = self.inflight.consume(&sh.read_buf[..n], now, rec)?;
            self.answered += answered;
            let quota_done = sh.per_connection.is_some_and(|k| self.answered >= k);
            if close || quota_done {
                return Ok(ReadOutcome::Reopen);
            }
            if n < sh.read_buf.len() && !to_the_end {
                return Ok(ReadOutcome::Continue); // short read: drained, a new edge will come
            }
        }
    }

    /// Writes unwritten request bytes until there are none or the socket is full.
    fn write_requests(&mut self, sh: &mut Shared, rec: &mut Recorder) -> Result<(), ErrorKind> {
        let stream = self.stream.as_mut().expect("open without a socket");
        while self.inflight.has_unwritten() {
            let n = self.inflight.gather(&mut sh.write_buf);
            let stamp = now_ns();
            let w = match stream.write(&sh.write_buf[..n]) {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            let started = self.inflight.advance_write(w, stamp);
            if started > 0 {
                rec.sent(stamp, started);
            }
            if w < n {
                return Ok(()); // socket buffer full: a writable edge will follow
            }
        }
        Ok(())
    }

    fn close_socket(&mut self, sh: &mut Shared) {
        if let Some(mut s) = self.stream.take() {
            let _ = sh.registry.deregister(&mut s);
        }
    }

    /// Closes the connection without error and opens a new one; requests not answered yet are
    /// sent again on it (open loop: their latency still counts from their intended time).
    fn reopen(&mut self, sh: &mut Shared, rec: &mut Recorder) {
        self.close_socket(sh);
        self.inflight.rewind();
        self.assigned = self.inflight.queue.len() as u64;
        self.answered = 0;
        self.open(sh, rec);
    }

    /// Open loop, once the window is over: everything still unanswered that was intended before
    /// its end is censored (`Recorder::censor` ignores the rest): the requests due by then and
    /// not admitted yet, those on the connection, and the schedule's backlog.
    pub fn censor_at_end(&mut self, end: u64, rec: &mut Recorder) {
        let Some(schedule) = self.schedule.as_mut() else {
            return;
        };
        let now = now_ns();
        while let Some(a) = schedule.admit(end.saturating_sub(1)) {
            rec.admitted(now, a.intended_ns);
            if let Some(dropped) = a.dropped {
                rec.censor(dropped);
            }
        }
        for r in &self.inflight.queue {
            rec.censor(r.intended_ns);
        }
        while let Some(intended) = schedule.take() {
            rec.censor(intended);
        }
    }

    /// Drops the socket and what was outstanding on it, each request counted as one error of
    /// `kind` (once when none was), and reconnects (after a back-off when connecting failed).
    /// Open loop: the schedule's backlog waits.
    fn fail(&mut self, kind: ErrorKind, sh: &mut Shared, rec: &mut Recorder) {
        let now = now_ns();
        if self.inflight.lose_all(now, kind, rec) == 0 {
            rec.error(now, kind);
        }
        self.close_socket(sh);
        (self.assigned, self.answered) = (0, 0);
        if kind == ErrorKind::Connect {
            self.state = State::Closed {
                retry_at: now + CONNECT_BACKOFF_NS,
            };
        } else {
            self.open(sh, rec);
        }
    }
}
