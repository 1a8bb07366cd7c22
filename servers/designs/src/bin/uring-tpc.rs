//! uring-tpc: thread per core on io_uring, monoio's I/O model without its future machinery.
//!
//! N std threads, each pinned to its CPU with its own io_uring (1024 entries, monoio's default;
//! no setup flags, no SQPOLL) and its own `SO_REUSEPORT` listener, as in tokio-tpc and monoio.
//! Socket I/O is completion-based with owned buffers: accept, recv, send and close are submitted
//! to the ring, and each connection's `BUF_SIZE` buffer belongs to the kernel while a recv into it
//! or a send from it is in flight. Nothing in user space asks whether a socket is ready (no epoll,
//! no poll requests): the kernel performs the operation, waiting inside io_uring when there is no
//! data yet, and reports its result. A worker sleeps in one `io_uring_enter` that both submits
//! what it queued and waits for the next completion.
//!
//! What differs from monoio is the executor, not the I/O: monoio runs each connection as a task
//! whose `read(buf).await` submits an operation and parks until the completion wakes the task.
//! Here a connection is a two-state machine (receiving, or sending the unsent part of a reply),
//! and a completion runs the connection's next step directly: the same system calls and ring
//! traffic, minus task polling, wakers and run queues. A short hand-written loop keeps what is
//! measured visible in one file, where a minimal executor would add machinery unlike monoio's own.
//! So versus tokio-tpc both the I/O model (completions vs epoll readiness) and the executor cost
//! differ: this design bounds what monoio's I/O model can give; it does not measure monoio.
//!
//! Accept is single-shot and re-armed after each completion (one accept in flight per listener),
//! as monoio's `accept` is. Shutdown: each worker keeps a read in flight on its own eventfd, which
//! main writes on SIGTERM/SIGINT; the worker then reports its counters, cancels what is in flight
//! and frees each connection's buffer only once the kernel has returned it.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config, Protocol, Session, BUF_SIZE};
use uring_sys::{Ring, Timespec};

const DESIGN: &str = "uring-tpc";

/// Submission queue entries per ring (monoio's default); the completion queue has twice as many,
/// and the kernel (5.5+) holds any overflow rather than dropping completions.
const RING_ENTRIES: u32 = 1024;

/// `net::ACCEPT_BACKOFF` as the ring's timeout wants it (a static: the kernel reads it later).
static ACCEPT_BACKOFF: Timespec = Timespec {
    tv_sec: net::ACCEPT_BACKOFF.as_secs() as i64,
    tv_nsec: net::ACCEPT_BACKOFF.subsec_nanos() as i64,
};

// `user_data` of each operation: a connection's operations carry `FIRST_CONN + slot`; the values
// below are the worker's own. (liburing reserves u64::MAX.)
const STOP: u64 = 0;
const ACCEPT: u64 = 1;
const BACKOFF: u64 = 2;
/// Operations whose completion needs no action: close and cancel.
const IGNORE: u64 = 3;
const FIRST_CONN: u64 = 4;

fn main() {
    let cfg = Config::from_env();
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();
    let stops: Vec<File> = (0..cfg.threads).map(|_| eventfd()).collect();

    let (started_tx, started_rx) = mpsc::channel();
    let (counters_tx, counters_rx) = mpsc::channel();
    for (worker, listener) in listeners.into_iter().enumerate() {
        // Main keeps the eventfd open until the process exits.
        let stop = stops[worker].as_raw_fd();
        let (cfg, started_tx, counters_tx) = (cfg.clone(), started_tx.clone(), counters_tx.clone());
        let run = move || {
            cfg.pin_worker(worker);
            // Made on the worker's own CPU, like every per-core structure here.
            let ring = match Ring::new(RING_ENTRIES) {
                Ok(ring) => ring,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            let mut worker_loop = Worker::new(ring, listener, cfg.protocol);
            worker_loop.run(stop);
            // No completion is handled any more: the counters are final.
            let _ = counters_tx.send((worker, worker_loop.counters.snapshot()));
            worker_loop.cancel_and_drain();
        };
        bench_core::spawn_worker(worker, run);
    }
    // READY once every worker has its ring; the listeners already listen. (Main's own sender is
    // dropped so that a worker that died before reporting ends the wait.)
    drop(started_tx);
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fatal(format_args!("io_uring unavailable: {e}")),
            Err(_) => fatal("a worker exited during start-up"),
        }
    }
    bench_core::ready();

    signals.wait();
    for mut stop in &stops {
        stop.write_all(&1u64.to_ne_bytes()).unwrap_or_else(fatal);
    }
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}

fn eventfd() -> File {
    // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
    match unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) } {
        fd if fd >= 0 => unsafe { File::from_raw_fd(fd) },
        _ => fatal(format_args!("eventfd: {}", io::Error::last_os_error())),
    }
}

/// One connection. Boxed, and its buffer boxed, so that neither moves while the kernel holds a
/// pointer into them.
struct Conn {
    fd: OwnedFd,
    session: Session,
    buf: Box<[u8]>,
    /// The operation in flight: each connection has exactly one, from accept until it is closed.
    op: Op,
}

#[derive(Clone, Copy)]
enum Op {
    /// A recv into `buf`.
    Recv,
    /// A send of the first `len` bytes at `rest`: the unsent part of the reply to the last read.
    /// The reply lies in `buf` or in `session` (`Reply::bytes` borrows one of them), neither of
    /// which is touched until the send completes.
    Send {
        rest: *const u8,
        len: usize,
        close: bool,
    },
}

impl Conn {
    /// Queues this connection's operation, `self.op`.
    fn submit(&mut self, ring: &mut Ring, token: u64) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: `buf` and the reply `rest` points into belong to this boxed connection, which is
        // freed only after the operation's completion (see `Worker::close` and `cancel_and_drain`),
        // and which nothing reads or writes until then.
        unsafe {
            match self.op {
                Op::Recv => ring.recv(fd, self.buf.as_mut_ptr(), self.buf.len(), 0, token),
                // MSG_NOSIGNAL: a peer that reset gets EPIPE, not a SIGPIPE.
                Op::Send { rest, len, .. } => ring.send(fd, rest, len, libc::MSG_NOSIGNAL, token),
            }
        }
    }

    /// Takes the completion (`res`) of this connection's operation and queues the next one: the
    /// same loop as `tokio_conn::run`. Returns `Ok(false)` when the connection is done.
    fn advance(
        &mut self,
        res: i32,
        ring: &mut Ring,
        token: u64,
        counters: &impl Counters,
    ) -> io::Result<bool> {
        if res == -libc::EINTR || res == -libc::EAGAIN {
            // Nothing happened: issue the same operation again.
            return self.submit(ring, token).map(|()| true);
        }
        if res < 0 {
            // A reset or a vanished client ends only its own connection; not logged, as in tokio.
            return Ok(false);
        }
        let n = res as usize;
        match self.op {
            // The peer half-closed, and every reply has been written: close.
            Op::Recv if n == 0 => return Ok(false),
            Op::Recv => {
                counters.add(Field::BytesIn, n as u64);
                let reply = self.session.on_read(&self.buf[..n.min(self.buf.len())]);
                counters.add(Field::Messages, reply.messages);
                self.op = Op::Send {
                    rest: reply.bytes.as_ptr(),
                    len: reply.bytes.len(),
                    close: reply.close,
                };
            }
            Op::Send { .. } if n == 0 => return Ok(false), // as io::ErrorKind::WriteZero
            Op::Send { rest, len, close } => {
                let n = n.min(len);
                counters.add(Field::BytesOut, n as u64);
                self.op = Op::Send {
                    // SAFETY: `n <= len`, so this stays inside (or one past) the reply.
                    rest: unsafe { rest.add(n) },
                    len: len - n,
                    close,
                };
            }
        }
        match self.op {
            Op::Send { len: 0, close, .. } => {
                if close {
                    return Ok(false);
                }
                self.op = Op::Recv;
            }
            Op::Send { .. } | Op::Recv => {}
        }
        self.submit(ring, token).map(|()| true)
    }
}

/// One thread's ring, listener and connections.
struct Worker {
    ring: Ring,
    listener: TcpListener,
    protocol: Protocol,
    counters: LocalCounters,
    /// Connections by slot (`user_data - FIRST_CONN`); a slot is reused only after the
    /// connection's last completion.
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    /// The stop eventfd's read lands here (boxed: the kernel writes it while the loop runs).
    stop_buf: Box<[u8; 8]>,
}

impl Worker {
    fn new(ring: Ring, listener: TcpListener, protocol: Protocol) -> Self {
        Worker {
            ring,
            listener,
            protocol,
            counters: LocalCounters::default(),
            conns: Vec::new(),
            free: Vec::new(),
            stop_buf: Box::new([0; 8]),
        }
    }

    /// Serves connections until `stop` (an eventfd) is written.
    fn run(&mut self, stop: RawFd) {
        let buf = self.stop_buf.as_mut_ptr();
        // SAFETY: `stop_buf` is boxed and lives as long as `self`, which outlives the loop below,
        // and the loop returns only after this read completed.
        unsafe { self.ring.read(stop, buf, 8, STOP) }.unwrap_or_else(fatal);
        self.arm_accept();
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // EINTR: a signal (not ours: SIGTERM/SIGINT are blocked). EBUSY/EAGAIN: the
                // kernel wants completions reaped first, which happens next.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(e) => fatal(format_args!("io_uring_enter: {e}")),
            }
            let mut stopping = false;
            while let Some(cqe) = self.ring.next_completion() {
                match cqe.user_data {
                    STOP => stopping = true,
                    ACCEPT => self.accepted(cqe.res),
                    BACKOFF => self.arm_accept(),
                    IGNORE => {}
                    token => self.completed(token, cqe.res),
                }
            }
            if stopping {
                return;
            }
        }
    }

    fn arm_accept(&mut self) {
        let listener = self.listener.as_raw_fd();
        if let Err(e) = self.ring.accept(listener, libc::SOCK_CLOEXEC, ACCEPT) {
            fatal(format_args!("accept: {e}"))
        }
    }

    fn accepted(&mut self, res: i32) {
        if res >= 0 {
            // SAFETY: a successful accept returns a new descriptor, owned by no one else.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.counters.add(Field::Connections, 1);
            // As in tokio_conn::run, a connection whose options cannot be set is closed.
            if net::configure_accepted(&fd).is_ok() {
                self.open(fd);
            }
        } else if res != -libc::EINTR && res != -libc::EAGAIN {
            eprintln!("accept: {}", io::Error::from_raw_os_error(-res));
            // Accept again when the back-off expires.
            if let Err(e) = self.ring.timeout(&ACCEPT_BACKOFF, BACKOFF) {
                fatal(format_args!("accept back-off: {e}"))
            }
            return;
        }
        self.arm_accept();
    }

    fn open(&mut self, fd: OwnedFd) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let mut conn = Box::new(Conn {
            fd,
            session: Session::new(self.protocol),
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            op: Op::Recv,
        });
        let started = conn.submit(&mut self.ring, FIRST_CONN + slot as u64);
        self.conns[slot] = Some(conn);
        if started.is_err() {
            self.close(slot);
        }
    }

    fn completed(&mut self, token: u64, res: i32) {
        let slot = (token - FIRST_CONN) as usize;
        let conn = self.conns[slot]
            .as_mut()
            .expect("a completion for a connection that is not open");
        let more = conn.advance(res, &mut self.ring, token, &self.counters);
        if !matches!(more, Ok(true)) {
            self.close(slot);
        }
    }

    /// Frees a connection that has no operation in flight and closes its socket via the ring.
    fn close(&mut self, slot: usize) {
        let conn = self.conns[slot].take().expect("closing a closed slot");
        self.free.push(slot);
        let _ = self.ring.close(conn.fd, IGNORE); // on error closed at once
    }

    /// Cancels every connection's operation and waits for its completion (it may also complete
    /// on its own first) before freeing its buffer. Accept and its back-off lend no memory, so
    /// they are cancelled without waiting. The counters were reported already: if the kernel were
    /// slow, main would exit at its deadline regardless.
    fn cancel_and_drain(&mut self) {
        let open: Vec<u64> = (self.conns.iter().enumerate())
            .filter(|(_, conn)| conn.is_some())
            .map(|(slot, _)| FIRST_CONN + slot as u64)
            .collect();
        let cancelled = [ACCEPT, BACKOFF]
            .iter()
            .chain(&open)
            .all(|&target| self.ring.cancel(target, IGNORE).is_ok());
        let mut open = open.len();
        while cancelled && open > 0 {
            match self.ring.submit_and_wait(1) {
                Err(e) if e.raw_os_error() != Some(libc::EINTR) => break,
                _ => {}
            }
            while let Some(cqe) = self.ring.next_completion() {
                if cqe.user_data >= FIRST_CONN {
                    // The connection's last completion: the kernel is done with its buffer.
                    self.conns[(cqe.user_data - FIRST_CONN) as usize] = None;
                    open -= 1;
                }
            }
        }
        if open > 0 {
            // Never free a buffer the kernel may still write; the process is ending anyway.
            std::mem::forget(std::mem::take(&mut self.conns));
        }
    }
}
