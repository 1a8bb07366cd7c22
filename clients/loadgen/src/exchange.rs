//! What one client connection does, apart from its I/O: the requests it keeps on the wire, how
//! their answers are checked and timed, what a failure or a reopen does to them, and when it is
//! due to act (reconnect, time out). Both I/O paths (`conn` over epoll, `uring` over io_uring)
//! drive an [`Exchange`] with the bytes they moved, so the wrk2 model (what is timed from when,
//! what is lost or censored) lives here once.
//!
//! It holds the queue of requests on the wire (oldest first) with their send times, at most
//! `depth` of them. Closed loop refills the queue from an endless supply; open loop refills it
//! from the connection's [`Schedule`], whose due requests wait there while the pipeline is full
//! or the connection is (re)connecting.

use std::collections::VecDeque;

use crate::protocol::{Parsed, Protocol};
use crate::recorder::Recorder;
use crate::schedule::Schedule;
use crate::stats::ErrorKind;

/// Wait before reconnecting after a failed connect.
pub const CONNECT_BACKOFF_NS: u64 = 50_000_000;
/// `intended_ns` of a closed-loop request, `sent_ns` of a request not written yet.
const NONE: u64 = u64::MAX;

struct Request {
    seq: u64,
    /// Open loop: when the schedule meant it to be sent.
    intended_ns: u64,
    /// When the I/O path started sending its first byte.
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

    /// Whether some request has (part of) its bytes on the wire.
    fn has_sent(&self) -> bool {
        self.written > 0 || self.write_off > 0
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

    /// `w` bytes were written, sent at `stamp`; the requests whose first byte was among them
    /// are stamped as sent then. Returns how many.
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

/// What reading found, besides answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Keep going on this connection.
    Continue,
    /// Close it and open a new one, without error: the server said `Connection: close` or
    /// closed an idle connection, or the connection carried its quota of requests.
    Reopen,
}

/// What a connection does once its socket is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Connect again at once.
    Reopen,
    /// Stay closed until this time (a failed connect backs off).
    RetryAt(u64),
}

/// Where a connection's socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; reconnect at `retry_at`.
    Closed {
        retry_at: u64,
    },
    Connecting {
        since: u64,
    },
    Open,
}

/// What the periodic check asks of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chore {
    /// Its back-off is over: connect.
    Open,
    /// It failed: connecting or its oldest request took longer than the timeout.
    Fail(ErrorKind),
}

/// One connection's requests and its share of the load.
pub struct Exchange<P> {
    inflight: InFlight<P>,
    /// Most requests on the wire at once.
    depth: usize,
    /// Open loop only.
    schedule: Option<Schedule>,
    /// Requests per TCP connection before it is closed and reopened.
    per_connection: Option<u64>,
    /// Requests put on the current TCP connection, and answers it brought.
    assigned: u64,
    answered: u64,
}

impl<P: Protocol> Exchange<P> {
    pub fn new(
        proto: P,
        depth: usize,
        schedule: Option<Schedule>,
        per_connection: Option<u64>,
    ) -> Exchange<P> {
        Exchange {
            inflight: InFlight {
                proto,
                queue: VecDeque::with_capacity(depth),
                written: 0,
                write_off: 0,
                next_seq: 0,
            },
            depth,
            schedule,
            per_connection,
            assigned: 0,
            answered: 0,
        }
    }

    /// Bytes of a full pipeline of requests (the I/O path's send buffer need not be larger).
    pub fn pipeline_bytes(&self) -> usize {
        self.depth * self.inflight.proto.request_len(self.inflight.next_seq)
    }

    /// Open loop: when the next request becomes due.
    pub fn next_due(&self) -> Option<u64> {
        self.schedule.as_ref().map(Schedule::next_due)
    }

    /// Open loop: admits the requests due by `now` into the backlog (recording how late each
    /// was noticed); returns the next due time. The caller then refills and sends.
    pub fn admit_due(&mut self, now: u64, rec: &mut Recorder) -> u64 {
        let schedule = self
            .schedule
            .as_mut()
            .expect("admit_due without a schedule");
        while let Some(a) = schedule.admit(now) {
            rec.admitted(now, a.intended_ns);
            if let Some(dropped) = a.dropped {
                rec.lost(now, dropped, true, ErrorKind::QueueOverflow);
            }
        }
        schedule.next_due()
    }

    /// Tops the pipeline up to `depth` (within the connection's quota): closed loop with new
    /// requests, open loop with due ones from the schedule.
    pub fn refill(&mut self) {
        while self.inflight.queue.len() < self.depth
            && self.per_connection.is_none_or(|k| self.assigned < k)
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
    }

    pub fn has_unwritten(&self) -> bool {
        self.inflight.written < self.inflight.queue.len()
    }

    /// Unwritten request bytes into `buf` (as many as fit); the byte count.
    pub fn gather(&mut self, buf: &mut [u8]) -> usize {
        self.inflight.gather(buf)
    }

    /// The first `w` gathered bytes went out, sent at `stamp`.
    pub fn wrote(&mut self, w: usize, stamp: u64, rec: &mut Recorder) {
        let started = self.inflight.advance_write(w, stamp);
        if started > 0 {
            rec.sent(stamp, started);
        }
    }

    /// Bytes received by `now`: checks and times the answers they complete.
    pub fn received(
        &mut self,
        input: &[u8],
        now: u64,
        rec: &mut Recorder,
    ) -> Result<ReadOutcome, ErrorKind> {
        let (answered, close) = self.inflight.consume(input, now, rec)?;
        self.answered += answered;
        let quota_done = self.per_connection.is_some_and(|k| self.answered >= k);
        Ok(if close || quota_done {
            ReadOutcome::Reopen
        } else {
            ReadOutcome::Continue
        })
    }

    /// The server closed the connection (a read found its end): an error if a request was on
    /// the wire, else a reopen.
    pub fn peer_closed(&self) -> Result<ReadOutcome, ErrorKind> {
        if self.inflight.has_sent() {
            Err(ErrorKind::Eof)
        } else {
            Ok(ReadOutcome::Reopen)
        }
    }

    /// The periodic check of a connection in `state`: its due reconnect or its timeout.
    pub fn chore(&self, state: LinkState, now: u64, timeout_ns: u64) -> Option<Chore> {
        match state {
            LinkState::Closed { retry_at } if now >= retry_at => Some(Chore::Open),
            LinkState::Connecting { since } if now.saturating_sub(since) >= timeout_ns => {
                Some(Chore::Fail(ErrorKind::Connect))
            }
            LinkState::Open => {
                let oldest = self.inflight.queue.front().map(|r| r.sent_ns);
                let late = oldest.filter(|&t| t != NONE);
                late.is_some_and(|t| now.saturating_sub(t) >= timeout_ns)
                    .then_some(Chore::Fail(ErrorKind::Timeout))
            }
            _ => None,
        }
    }

    /// The connection is reopened without error; requests not answered yet are sent again on
    /// the new one (open loop: their latency still counts from their intended time).
    pub fn restart(&mut self) {
        self.inflight.rewind();
        self.assigned = self.inflight.queue.len() as u64;
        self.answered = 0;
    }

    /// The connection failed: what was outstanding on it is lost, each request counted as one
    /// error of `kind` (once when none was). Open loop: the schedule's backlog waits. Returns
    /// what to do once the socket is closed (after a failed connect, back off).
    pub fn fail(&mut self, now: u64, kind: ErrorKind, rec: &mut Recorder) -> Then {
        if self.inflight.lose_all(now, kind, rec) == 0 {
            rec.error(now, kind);
        }
        (self.assigned, self.answered) = (0, 0);
        if kind == ErrorKind::Connect {
            Then::RetryAt(now + CONNECT_BACKOFF_NS)
        } else {
            Then::Reopen
        }
    }

    /// Open loop, once the window is over: everything still unanswered that was intended before
    /// its end is censored (`Recorder::censor` ignores the rest): the requests due by then and
    /// not admitted yet, those on the connection, and the schedule's backlog.
    pub fn censor_at_end(&mut self, end: u64, rec: &mut Recorder) {
        let Some(schedule) = self.schedule.as_mut() else {
            return;
        };
        let now = crate::sys::now_ns();
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
}

#[cfg(test)]
mod tests;
