//! One client connection of the epoll path (`--io epoll`): connect, write requests, read
//! answers, and reopen after an error, after the server's `Connection: close`, or after its quota
//! of requests (`--requests-per-connection`). What the bytes mean, and what is timed, is the
//! connection's [`Exchange`]; this file only moves them.
//!
//! Per answered request the hot path costs one `write` and one `read` (fewer when pipelined; a
//! short read means the socket is drained, so no extra read to see `EAGAIN`), two clock reads
//! and no allocation.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::exchange::{Chore, Exchange, LinkState, ReadOutcome, Then};
use crate::protocol::Protocol;
use crate::recorder::Recorder;
use crate::stats::ErrorKind;
use crate::sys::now_ns;

/// Per-thread buffers and settings shared by the thread's connections.
pub struct Shared {
    pub registry: Registry,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    pub read_buf: Box<[u8]>,
    pub write_buf: Box<[u8]>,
}

pub struct Conn<P> {
    token: Token,
    stream: Option<TcpStream>,
    state: LinkState,
    ex: Exchange<P>,
}

impl<P: Protocol> Conn<P> {
    pub fn new(token: Token, ex: Exchange<P>) -> Conn<P> {
        Conn {
            token,
            stream: None,
            state: LinkState::Closed { retry_at: 0 },
            ex,
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
                self.state = LinkState::Connecting { since: now_ns() };
            }
            Err(_) => self.fail(ErrorKind::Connect, sh, rec),
        }
    }

    pub fn on_event(&mut self, ev: &Event, sh: &mut Shared, rec: &mut Recorder) {
        let result = match self.state {
            LinkState::Closed { .. } => return, // stale event of a closed socket
            LinkState::Connecting { .. } => self.finish_connect(sh, rec),
            LinkState::Open if ev.is_readable() || ev.is_read_closed() || ev.is_error() => {
                // After the peer's FIN or an error no further edge comes: read to the end.
                let to_the_end = ev.is_read_closed() || ev.is_error();
                match self.read_answers(to_the_end, sh, rec) {
                    Ok(ReadOutcome::Reopen) => return self.reopen(sh, rec),
                    Ok(ReadOutcome::Continue) => self.refill_and_write(sh, rec),
                    Err(kind) => Err(kind),
                }
            }
            LinkState::Open => self.write_requests(sh, rec),
        };
        if let Err(kind) = result {
            self.fail(kind, sh, rec);
        }
    }

    /// Open loop: admits the requests due by `now` and sends what the pipeline has room for.
    /// Returns the next due time.
    pub fn on_due(&mut self, now: u64, sh: &mut Shared, rec: &mut Recorder) -> u64 {
        let next = self.ex.admit_due(now, rec);
        if let LinkState::Open = self.state {
            if let Err(kind) = self.refill_and_write(sh, rec) {
                self.fail(kind, sh, rec);
            }
        }
        next
    }

    /// Periodic check: timeouts and due reconnects.
    pub fn tick(&mut self, now: u64, sh: &mut Shared, rec: &mut Recorder) {
        match self.ex.chore(self.state, now, sh.timeout_ns) {
            Some(Chore::Open) => self.open(sh, rec),
            Some(Chore::Fail(kind)) => self.fail(kind, sh, rec),
            None => {}
        }
    }

    pub fn exchange(&mut self) -> &mut Exchange<P> {
        &mut self.ex
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
        self.state = LinkState::Open;
        self.refill_and_write(sh, rec)
    }

    fn refill_and_write(&mut self, sh: &mut Shared, rec: &mut Recorder) -> Result<(), ErrorKind> {
        self.ex.refill();
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
                Ok(0) => return self.ex.peer_closed(),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Continue)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            let now = now_ns(); // the last byte of these has arrived
            if self.ex.received(&sh.read_buf[..n], now, rec)? == ReadOutcome::Reopen {
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
        while self.ex.has_unwritten() {
            let n = self.ex.gather(&mut sh.write_buf);
            let stamp = now_ns();
            let w = match stream.write(&sh.write_buf[..n]) {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::Reset),
            };
            self.ex.wrote(w, stamp, rec);
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

    /// Closes the connection without error and opens a new one.
    fn reopen(&mut self, sh: &mut Shared, rec: &mut Recorder) {
        self.close_socket(sh);
        self.ex.restart();
        self.open(sh, rec);
    }

    /// Drops the socket and what was outstanding on it (see `Exchange::fail`) and reconnects,
    /// after a back-off when connecting failed.
    fn fail(&mut self, kind: ErrorKind, sh: &mut Shared, rec: &mut Recorder) {
        let then = self.ex.fail(now_ns(), kind, rec);
        self.close_socket(sh);
        match then {
            Then::RetryAt(retry_at) => self.state = LinkState::Closed { retry_at },
            Then::Reopen => self.open(sh, rec),
        }
    }
}
