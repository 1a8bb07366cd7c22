//! The event loop of epoll-tpc: what the runtimes do for the other designs, written out by hand
//! for one thread and its own listener, with the same buffer size, socket options, session code
//! and accept back-off.
//!
//! Level-triggered: epoll reports a socket for as long as it is ready, so the loop does ONE read
//! (of at most `BUF_SIZE` bytes) per ready connection per `epoll_wait` and leaves the rest for the
//! next round. Connections are thus served fairly without the task budget and the memory of
//! still-ready sockets that edge triggering (tokio's mode) needs, and without the `epoll_ctl` that
//! one-shot mode (async-io's) spends re-arming a socket after each event. A connection's interest
//! is `EPOLLIN` or, while a reply waits for the peer to read, `EPOLLOUT` alone: exactly the
//! back-pressure of the contract (nothing is read until the reply is flushed). Switching costs an
//! `epoll_ctl` each way, paid only when a socket's send buffer is full.
//!
//! Connections live in a `Vec` indexed by file descriptor (as in redis's `ae` loop); the fd is the
//! epoll token. Each connection owns a `BUF_SIZE` read buffer, allocated when it is accepted, as
//! in every runtime design: with readiness one buffer per thread would do (a buffer is needed
//! only during a read), but the floor must have the others' working set, or it would win on
//! cache footprint rather than on having no runtime. The rare reply that cannot be written at
//! once is copied into the connection's `pending` buffer (at most one reply, since reading stops
//! until it is flushed).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::runner::StopEvent;
use bench_core::{net, Protocol, Session};

/// Events taken per `epoll_wait`.
const MAX_EVENTS: usize = 256;

/// Epoll tokens that are not connections (connections use their fd, never this large).
const LISTENER: u64 = u64::MAX;
const STOP: u64 = u64::MAX - 1;

/// One thread's event loop, set up (listening and registered) but not yet running.
pub struct EventLoop {
    epoll: Epoll,
    listener: TcpListener,
    protocol: Protocol,
    /// Indexed by fd; `None` for fds that are not this loop's connections.
    conns: Vec<Option<Conn>>,
    /// Set while the listener is out of the epoll set after a failed accept.
    accept_paused_until: Option<Instant>,
}

struct Conn {
    stream: TcpStream,
    session: Session,
    /// The connection's read buffer, `BUF_SIZE` bytes.
    buf: Box<[u8]>,
    /// Reply bytes the socket did not take yet, written from `sent` on; empty when reading.
    pending: Vec<u8>,
    sent: usize,
    /// Close once `pending` is flushed (the session asked for it).
    close_after: bool,
}

/// What to do with a connection after serving one event.
enum Next {
    Read,
    Flush,
    Close,
}

impl EventLoop {
    /// Registers `listener` (nonblocking) and `stop`.
    pub fn new(
        listener: TcpListener,
        stop: &StopEvent,
        protocol: Protocol,
    ) -> io::Result<EventLoop> {
        let epoll = Epoll::new()?;
        epoll.ctl(
            libc::EPOLL_CTL_ADD,
            listener.as_raw_fd(),
            libc::EPOLLIN,
            LISTENER,
        )?;
        epoll.ctl(
            libc::EPOLL_CTL_ADD,
            stop.file().as_raw_fd(),
            libc::EPOLLIN,
            STOP,
        )?;
        Ok(EventLoop {
            epoll,
            listener,
            protocol,
            conns: Vec::new(),
            accept_paused_until: None,
        })
    }

    /// Serves connections until `stop` is triggered, then drops (closes) them all. Fails only if
    /// `epoll_wait` does.
    pub fn run(mut self, counters: &LocalCounters) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        loop {
            let timeout = self
                .accept_paused_until
                .map(|until| until.saturating_duration_since(Instant::now()));
            let ready = self.epoll.wait(&mut events, timeout)?;
            if self
                .accept_paused_until
                .is_some_and(|t| t <= Instant::now())
            {
                self.resume_accepting();
            }
            for event in &events[..ready] {
                // A copy: the kernel's struct is packed, its fields cannot be borrowed.
                let token = event.u64;
                match token {
                    STOP => return Ok(()),
                    LISTENER => self.accept(counters),
                    fd => self.serve(fd as RawFd, counters),
                }
            }
        }
    }

    fn accept(&mut self, counters: &LocalCounters) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The peer gave up before we accepted: nothing to do.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("accept: {e}");
                    return self.pause_accepting();
                }
            };
            counters.add(Field::Connections, 1);
            let fd = stream.as_raw_fd();
            let registered = net::configure_accepted(&stream)
                .and_then(|()| stream.set_nonblocking(true))
                .and_then(|()| {
                    self.epoll
                        .ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN, fd as u64)
                });
            // As in the runtimes' loops, a connection that cannot be set up is just closed.
            if registered.is_ok() {
                let index = fd as usize;
                if self.conns.len() <= index {
                    self.conns.resize_with(index + 1, || None);
                }
                self.conns[index] = Some(Conn {
                    stream,
                    session: Session::new(self.protocol),
                    buf: bench_core::read_buffer().into_boxed_slice(),
                    pending: Vec::new(),
                    sent: 0,
                    close_after: false,
                });
            }
        }
    }

    fn pause_accepting(&mut self) {
        let fd = self.listener.as_raw_fd();
        // Removing a registered fd cannot fail.
        let _ = self.epoll.ctl(libc::EPOLL_CTL_DEL, fd, 0, LISTENER);
        self.accept_paused_until = Some(Instant::now() + net::ACCEPT_BACKOFF);
    }

    fn resume_accepting(&mut self) {
        let fd = self.listener.as_raw_fd();
        let _ = self
            .epoll
            .ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN, LISTENER);
        self.accept_paused_until = None;
    }

    /// Serves one event of connection `fd`: a read, or flushing the pending reply. The event's
    /// flags are not looked at: the connection's state says what to do, and the syscall's result
    /// (data, EOF, EAGAIN or an error such as a reset) what happened. This also makes an event
    /// left over from a connection closed earlier in the same batch harmless when a new
    /// connection got its fd: it finds nothing to read yet (EAGAIN).
    fn serve(&mut self, fd: RawFd, counters: &LocalCounters) {
        let conn = match self.conns.get_mut(fd as usize) {
            Some(Some(conn)) => conn,
            _ => return,
        };
        let was_flushing = !conn.pending.is_empty();
        let next = if was_flushing {
            conn.flush(counters)
        } else {
            conn.read_and_reply(counters)
        };
        let interest = match (next, was_flushing) {
            (Next::Close, _) => None,
            (Next::Read, true) => Some(libc::EPOLLIN),
            (Next::Flush, false) => Some(libc::EPOLLOUT),
            // Same state as before: the registration stays.
            (Next::Read, false) | (Next::Flush, true) => return,
        };
        let keep = interest.is_some_and(|events| {
            let modified = self.epoll.ctl(libc::EPOLL_CTL_MOD, fd, events, fd as u64);
            modified.is_ok()
        });
        if !keep {
            // Closing the fd (dropping the stream) also removes it from the epoll set.
            self.conns[fd as usize] = None;
        }
    }
}

impl Conn {
    fn read_and_reply(&mut self, counters: &impl Counters) -> Next {
        let n = match self.stream.read(&mut self.buf) {
            // The peer half-closed, and every reply has been written: close.
            Ok(0) => return Next::Close,
            Ok(n) => n,
            Err(e) if is_transient(&e) => return Next::Read,
            // A reset or a vanished client ends only its own connection, without a log line.
            Err(_) => return Next::Close,
        };
        counters.add(Field::BytesIn, n as u64);
        let reply = self.session.on_read(&self.buf[..n]);
        counters.add(Field::Messages, reply.messages);
        let (mut rest, close) = (reply.bytes, reply.close);
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Next::Close,
                Ok(written) => {
                    counters.add(Field::BytesOut, written as u64);
                    rest = &rest[written..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(rest);
                    self.close_after = close;
                    return Next::Flush;
                }
                Err(_) => return Next::Close,
            }
        }
        if close {
            Next::Close
        } else {
            Next::Read
        }
    }

    fn flush(&mut self, counters: &impl Counters) -> Next {
        while self.sent < self.pending.len() {
            match self.stream.write(&self.pending[self.sent..]) {
                Ok(0) => return Next::Close,
                Ok(written) => {
                    counters.add(Field::BytesOut, written as u64);
                    self.sent += written;
                }
                Err(e) if is_transient(&e) => return Next::Flush,
                Err(_) => return Next::Close,
            }
        }
        self.pending.clear();
        self.sent = 0;
        if self.close_after {
            Next::Close
        } else {
            Next::Read
        }
    }
}

/// Errors after which the same call succeeds later: level triggering will report the socket again.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// An epoll instance: the three syscalls, nothing else.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; a non-negative result is a new fd that we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: libc::c_int, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        // SAFETY: `event` outlives the call, which only reads it.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }

    /// Waits for events (`None`: for ever), retrying on EINTR; returns how many were stored.
    fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        // Rounded up, so that a back-off never ends in a busy loop of zero-timeout waits.
        let timeout_ms = timeout.map_or(-1, |t| t.as_nanos().div_ceil(1_000_000) as libc::c_int);
        loop {
            // SAFETY: the kernel writes at most `events.len()` entries into `events`.
            let n = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    timeout_ms,
                )
            };
            match cvt(n) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}
