//! One thread's io_uring event loop (the io_uring floor, `uring-tpc`), on the `io-uring` crate.
//!
//! Completion-based: accept, recv, send and close are operations submitted to the thread's ring,
//! and the loop sleeps in one `io_uring_enter` that submits what it queued and waits for the next
//! completion. Nothing asks whether a socket is ready. A completion runs the connection's next
//! step directly (no tasks, wakers or run queues).
//!
//! What a current kernel offers that monoio does not use (monoio 0.2 arms one single-shot accept
//! and one single-shot recv into the connection's own buffer per read):
//! - **Multishot accept** (Linux 5.19): one accept stays armed and posts a completion per
//!   connection.
//! - **Multishot recv from a provided buffer ring** (5.19 rings, 6.0 multishot recv): one recv per
//!   connection stays armed; the kernel picks a buffer from the thread's pool when data arrives
//!   and posts a completion naming it. The buffer goes back to the ring once its reply is sent.
//! - **Ring flags** `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` (6.1): completion work runs
//!   only when this thread enters the kernel, never interrupting it.
//!
//! Working set: the pool is `POOL_BUFFERS` (256) buffers of `BUF_SIZE` (16 KiB) = 4 MiB per
//! thread, the per-connection 16 KiB buffers of the other designs at 256 connections per thread
//! (the most any profile runs), and every read is at most 16 KiB as in the others. With fewer
//! connections the pool is larger than their buffers, but a buffer is only touched where data
//! lands, as in theirs. Back-pressure: while a reply is unsent, the armed recv may fill up to
//! `READ_AHEAD` (4) more buffers; then the loop cancels it and re-arms it once the replies are
//! flushed, so a client that does not read is stopped after at most 5 buffers.
//!
//! The ladder: each of these features (and one the floor does not use, registered files) is an
//! option of this one loop ([`Features`]), so that designs differing from `uring-tpc` in one
//! feature alone show what that feature is worth (`uring-tpc-single-recv`,
//! `uring-tpc-single-accept`, `uring-tpc-plain-ring`, `uring-tpc-fixed-files`). Without multishot
//! recv a connection reads with single-shot recvs into its own buffer (`bench_core::read_buffer`,
//! as in every other design) and the pool is not made. With registered files each accepted
//! socket is also put in the ring's file table (`register_files_update`, once per connection,
//! after its options are set on the plain descriptor) and its recv, send and close name the
//! table slot, so the kernel skips the descriptor lookup and reference count per operation; the
//! listener stays a plain descriptor. [`EventLoop::features`] says what the loop really uses,
//! after the fallbacks below, and `main` prints it on stderr at start.
//!
//! Fallback: the loop probes the ring (`Probe`). `SEND_ZC` came with multishot recv in 6.0, so a
//! kernel without it, or one that refuses the buffer ring, gets single-shot accept and recv into
//! one `BUF_SIZE` buffer per connection (monoio's own I/O pattern), with one stderr note; a ring
//! that rejects the 6.1 flags is made without them. A kernel lacking one of the basic opcodes
//! (before 5.6) is an error.
//!
//! Shutdown: a poll for `POLLIN` on the `Stop` eventfd stays in flight (nothing consumes the
//! eventfd, so every loop sees one write). Dropping the loop cancels every operation and frees
//! the connections and the pool only once the kernel has returned them, or never (leaked) if it
//! does not within `DRAIN_DEADLINE`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::runner::{Server, StopEvent};
use bench_core::signal;
use bench_core::{fatal, net, Protocol, Session, BUF_SIZE};
use io_uring::types::{BufRingEntry, Fd, Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

/// Slots in the registered file table (`Features::registered_files`): connection slots beyond it
/// use their plain descriptor (no profile runs that many connections per thread).
const FIXED_FILES: u32 = 4096;
/// Submission queue entries per ring (monoio's default); the completion queue has twice as many,
/// and the kernel holds any overflow rather than dropping completions.
const RING_ENTRIES: u32 = 1024;
/// Provided buffers per thread (a power of two, as the kernel requires of a buffer ring).
const POOL_BUFFERS: u16 = 256;
/// Buffers a connection may fill while its reply is unsent before its recv is cancelled.
const READ_AHEAD: usize = 4;
/// The buffer group of the pool (one per ring).
const POOL_GROUP: u16 = 0;
/// How long dropping a loop waits for the kernel to return its connections' operations.
const DRAIN_DEADLINE: Duration = Duration::from_secs(1);

// `user_data`: the low 3 bits say what an operation is, the rest is the connection's slot.
const STOP: u64 = 0;
const ACCEPT: u64 = 1;
const BACKOFF: u64 = 2;
/// Operations whose completion needs no action: close and cancel.
const IGNORE: u64 = 3;
const RECV: u64 = 4;
const SEND: u64 = 5;
const KIND_BITS: u32 = 3;

fn token(slot: usize, kind: u64) -> u64 {
    ((slot as u64) << KIND_BITS) | kind
}

/// Builds an operation on a connection's socket: its registered file slot if it has one, else
/// its descriptor (the io-uring crate takes either, as two types).
macro_rules! on_socket {
    ($conn:expr, $socket:ident => $build:expr) => {
        match $conn.fixed {
            Some(slot) => {
                let $socket = Fixed(slot);
                $build
            }
            None => {
                let $socket = Fd($conn.fd.as_raw_fd());
                $build
            }
        }
    };
}

/// The kernel features a loop uses. `uring-tpc` uses all but `registered_files`
/// ([`Features::FLOOR`]); each ladder design differs from it in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Multishot recv from a provided-buffer ring (Linux 6.0); otherwise single-shot recv into a
    /// per-connection buffer.
    pub recv_multishot: bool,
    /// Multishot accept (5.19); otherwise one single-shot accept at a time.
    pub accept_multishot: bool,
    /// `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` (6.1); otherwise a ring without flags.
    pub ring_flags: bool,
    /// Connections in the ring's registered file table, named by slot (5.15 for close).
    pub registered_files: bool,
}

impl Features {
    /// What `uring-tpc` asks for.
    pub const FLOOR: Features = Features {
        recv_multishot: true,
        accept_multishot: true,
        ring_flags: true,
        registered_files: false,
    };
}

impl std::fmt::Display for Features {
    /// One line, `key=value` pairs, for the start-up line on stderr (and tests reading it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "recv_multishot={} accept_multishot={} ring_flags={} registered_files={}",
            on(self.recv_multishot),
            on(self.accept_multishot),
            on(self.ring_flags),
            on(self.registered_files)
        )
    }
}

/// One thread's ring, listener, buffer pool and connections, set up but not yet running.
pub struct EventLoop {
    // Dropped first (field order): the ring goes before the memory it may have used.
    ring: IoUring,
    listener: TcpListener,
    stop: File,
    protocol: Protocol,
    /// `None` without multishot recv (per-connection buffers, single-shot recvs).
    pool: Option<BufPool>,
    /// What this loop uses (asked for, less what the kernel refused).
    features: Features,
    /// Connections by slot; a slot is reused only after the connection's last completion.
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    /// Connections whose recv ended for want of a pool buffer: re-armed once one returns.
    starved: Vec<usize>,
    buffers_returned: bool,
    accept_backoff: Box<Timespec>,
    completions: Vec<(u64, i32, u32)>,
}

struct Conn {
    fd: OwnedFd,
    /// The socket's slot in the registered file table, if it has one.
    fixed: Option<u32>,
    session: Session,
    /// The connection's own read buffer, without multishot recv only.
    own_buf: Option<Box<[u8]>>,
    recv_armed: bool,
    recv_cancelled: bool,
    /// The recv ended for want of a pool buffer (on `EventLoop::starved`).
    starved: bool,
    sending: Option<Sending>,
    /// Reads not yet answered, in order: (pool buffer id or `OWN_BUF`, length).
    received: VecDeque<(u16, usize)>,
    /// The peer half-closed: answer what was read, then close.
    eof: bool,
    /// Close once nothing is in flight, answering nothing more (the session asked for it, or
    /// the socket failed).
    closing: bool,
}

/// `received`'s buffer id for a read into `Conn::own_buf`.
const OWN_BUF: u16 = u16::MAX;

/// A send of the first `len` bytes at `rest`: the unsent part of the reply to one read, which lies
/// in that read's buffer (`held`) or in the session; neither is touched until the send completes.
struct Sending {
    rest: *const u8,
    len: usize,
    close: bool,
    held: u16,
}

impl EventLoop {
    /// Makes the ring (on the calling thread, which must be the one that runs the loop) and the
    /// buffer pool, with the `wanted` features the kernel offers. Fails when io_uring cannot be
    /// set up here.
    pub fn new(
        listener: TcpListener,
        stop: &StopEvent,
        protocol: Protocol,
        wanted: Features,
    ) -> io::Result<EventLoop> {
        let (ring, ring_flags) = make_ring(wanted.ring_flags)?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        let basic = [
            opcode::Accept::CODE,
            opcode::Recv::CODE,
            opcode::Send::CODE,
            opcode::Close::CODE,
            opcode::PollAdd::CODE,
            opcode::AsyncCancel::CODE,
            opcode::Timeout::CODE,
        ];
        if !basic.iter().all(|&op| probe.is_supported(op)) {
            return Err(io::Error::other(
                "the kernel's io_uring lacks accept/recv/send/close (needs Linux 5.6 or later)",
            ));
        }
        // `SEND_ZC` came with multishot recv in 6.0, after multishot accept (5.19).
        let multishot = probe.is_supported(opcode::SendZc::CODE);
        if !multishot && (wanted.recv_multishot || wanted.accept_multishot) {
            note_once("io_uring loop: no multishot recv (Linux 6.0); single-shot accept and recv");
        }
        let pool = if multishot && wanted.recv_multishot {
            BufPool::register(&ring).map_or_else(
                |e| {
                    note_once(&format!(
                        "io_uring loop: buffer ring refused: {e}; single-shot recv into \
                         per-connection buffers"
                    ));
                    None
                },
                Some,
            )
        } else {
            None
        };
        let registered_files = wanted.registered_files
            && ring
                .submitter()
                .register_files_sparse(FIXED_FILES)
                .map_err(|e| note_once(&format!("io_uring loop: no registered files: {e}")))
                .is_ok();
        let features = Features {
            recv_multishot: pool.is_some(),
            accept_multishot: multishot && wanted.accept_multishot,
            ring_flags,
            registered_files,
        };
        Ok(EventLoop {
            ring,
            listener,
            stop: stop.file().try_clone()?,
            protocol,
            pool,
            features,
            conns: Vec::new(),
            free: Vec::new(),
            starved: Vec::new(),
            buffers_returned: false,
            accept_backoff: Box::new(net::ACCEPT_BACKOFF.into()),
            completions: Vec::with_capacity(2 * RING_ENTRIES as usize),
        })
    }

    /// The features this loop uses: those asked for, less any the kernel refused.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Serves connections until `Stop` is triggered. Fails only if `io_uring_enter` does. The
    /// counters are final when it returns; dropping the loop then releases its connections.
    pub fn run(&mut self, counters: &LocalCounters) -> io::Result<()> {
        let stop = opcode::PollAdd::new(Fd(self.stop.as_raw_fd()), libc::POLLIN as u32);
        // SAFETY: a poll lends the kernel no memory.
        unsafe { self.push(stop.build().user_data(STOP)) };
        self.arm_accept();
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // EINTR: a signal (not ours: SIGTERM/SIGINT are blocked). EBUSY/EAGAIN: the
                // kernel wants completions reaped first, which happens next.
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(e),
            }
            let mut completions = std::mem::take(&mut self.completions);
            completions
                .extend((self.ring.completion()).map(|c| (c.user_data(), c.result(), c.flags())));
            let mut stopping = false;
            for &(user_data, res, flags) in &completions {
                let slot = (user_data >> KIND_BITS) as usize;
                match user_data & ((1 << KIND_BITS) - 1) {
                    STOP => stopping = true,
                    ACCEPT => self.accepted(res, flags, counters),
                    BACKOFF => self.arm_accept(),
                    RECV => self.received(slot, res, flags, counters),
                    SEND => self.sent(slot, res, counters),
                    _ => {}
                }
            }
            completions.clear();
            self.completions = completions;
            if std::mem::take(&mut self.buffers_returned) {
                for slot in std::mem::take(&mut self.starved) {
                    if let Some(conn) = self.conns[slot].as_mut().filter(|c| c.starved) {
                        conn.starved = false;
                        self.drive(slot, counters);
                    }
                }
            }
            if stopping {
                return Ok(());
            }
        }
    }

    /// Queues `entry`, first submitting what the full submission queue holds if need be.
    ///
    /// # Safety
    /// Any memory the entry lends the kernel stays valid and unmoved until its last completion.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        while self.ring.submission().push(&entry).is_err() {
            match self.ring.submit() {
                Err(e) if !is_retry(&e) => fatal(format_args!("io_uring_enter: {e}")),
                _ => {}
            }
        }
    }

    fn arm_accept(&mut self) {
        let listener = Fd(self.listener.as_raw_fd());
        let entry = if self.features.accept_multishot {
            opcode::AcceptMulti::new(listener)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            let (addr, addrlen) = (std::ptr::null_mut(), std::ptr::null_mut());
            opcode::Accept::new(listener, addr, addrlen)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        // SAFETY: with null address pointers the kernel writes no user memory.
        unsafe { self.push(entry.user_data(ACCEPT)) };
    }

    fn accepted(&mut self, res: i32, flags: u32, counters: &LocalCounters) {
        let armed = cqueue::more(flags);
        if res >= 0 {
            // SAFETY: a successful accept returns a new descriptor, owned by no one else.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            counters.add(Field::Connections, 1);
            // As in tokio_conn::run, a connection whose options cannot be set is closed.
            if net::configure_accepted(&fd).is_ok() {
                self.open(fd, counters);
            }
        } else if res != -libc::EINTR && res != -libc::EAGAIN && res != -libc::ECONNABORTED {
            eprintln!("accept: {}", io::Error::from_raw_os_error(-res));
            if !armed {
                let backoff = opcode::Timeout::new(&*self.accept_backoff).build();
                // SAFETY: the timespec is boxed in `self` (and the kernel copies it at submission).
                unsafe { self.push(backoff.user_data(BACKOFF)) };
            }
            return;
        }
        if !armed {
            self.arm_accept();
        }
    }

    fn open(&mut self, fd: OwnedFd, counters: &LocalCounters) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let own_buf = self
            .pool
            .is_none()
            .then(|| bench_core::read_buffer().into_boxed_slice());
        let fixed = u32::try_from(slot)
            .ok()
            .filter(|&slot| self.features.registered_files && slot < FIXED_FILES)
            .filter(|&slot| {
                let submitter = self.ring.submitter();
                submitter
                    .register_files_update(slot, &[fd.as_raw_fd()])
                    .is_ok()
            });
        self.conns[slot] = Some(Box::new(Conn {
            fd,
            fixed,
            session: Session::new(self.protocol),
            own_buf,
            recv_armed: false,
            recv_cancelled: false,
            starved: false,
            sending: None,
            received: VecDeque::new(),
            eof: false,
            closing: false,
        }));
        self.drive(slot, counters);
    }

    fn received(&mut self, slot: usize, res: i32, flags: u32, counters: &LocalCounters) {
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        conn.recv_armed = cqueue::more(flags);
        let buf = cqueue::buffer_select(flags).unwrap_or(OWN_BUF);
        if res > 0 && !conn.closing {
            counters.add(Field::BytesIn, res as u64);
            conn.received.push_back((buf, res as usize));
            let pending = conn.received.len() + usize::from(conn.sending.is_some());
            if conn.recv_armed && !conn.recv_cancelled && pending > READ_AHEAD {
                conn.recv_cancelled = true;
                let cancel = opcode::AsyncCancel::new(token(slot, RECV)).build();
                // SAFETY: a cancel lends the kernel no memory.
                unsafe { self.push(cancel.user_data(IGNORE)) };
            }
        } else {
            self.recycle(buf);
            match res {
                // The peer half-closed: answer what was read, then close.
                0 => conn_mut(&mut self.conns, slot).eof = true,
                _ if res == -libc::ENOBUFS => {
                    conn_mut(&mut self.conns, slot).starved = true;
                    self.starved.push(slot);
                }
                // Cancelled by us, or interrupted: re-armed below if still wanted.
                _ if res == -libc::ECANCELED || res == -libc::EINTR || res == -libc::EAGAIN => {}
                // A reset or a vanished client ends only its own connection; not logged.
                _ if res < 0 => conn_mut(&mut self.conns, slot).closing = true,
                _ => {}
            }
        }
        self.drive(slot, counters);
    }

    fn sent(&mut self, slot: usize, res: i32, counters: &LocalCounters) {
        let conn = conn_mut(&mut self.conns, slot);
        let mut sending = conn.sending.take().expect("a send in flight");
        if res == -libc::EINTR || res == -libc::EAGAIN {
            // Nothing happened: send the same bytes again.
            self.send(slot, sending);
            return;
        }
        if res <= 0 {
            // An error, or zero bytes (as io::ErrorKind::WriteZero): the connection is over.
            conn.closing = true;
        } else if (res as usize) < sending.len {
            counters.add(Field::BytesOut, res as u64);
            // SAFETY: `res < len`, so this stays inside the reply.
            sending.rest = unsafe { sending.rest.add(res as usize) };
            sending.len -= res as usize;
            self.send(slot, sending);
            return;
        } else {
            counters.add(Field::BytesOut, sending.len as u64);
            conn.closing |= sending.close;
        }
        self.recycle(sending.held);
        self.drive(slot, counters);
    }

    fn send(&mut self, slot: usize, sending: Sending) {
        let conn = conn_mut(&mut self.conns, slot);
        let len = sending.len.min(u32::MAX as usize) as u32;
        // MSG_NOSIGNAL: a peer that reset gets EPIPE, not a SIGPIPE.
        let send = on_socket!(conn, socket => opcode::Send::new(socket, sending.rest, len)
            .flags(libc::MSG_NOSIGNAL)
            .build());
        conn.sending = Some(sending);
        // SAFETY: the reply lies in a held pool buffer or in this boxed connection's own buffer
        // or session, none of which is touched or freed before this send's completion.
        unsafe { self.push(send.user_data(token(slot, SEND))) };
    }

    /// Runs connection `slot` as far as it can go without the kernel: answers the reads it holds
    /// (one reply in flight at a time), then re-arms its recv, or closes it once nothing is in
    /// flight.
    fn drive(&mut self, slot: usize, counters: &LocalCounters) {
        loop {
            let conn = conn_mut(&mut self.conns, slot);
            if conn.sending.is_some() || conn.closing {
                break;
            }
            let Some((buf, n)) = conn.received.pop_front() else {
                break;
            };
            let input = match (&self.pool, &conn.own_buf) {
                (_, Some(own)) => &own[..n],
                (Some(pool), None) => pool.contents(buf, n),
                (None, None) => unreachable!("a connection with no buffer"),
            };
            let reply = conn.session.on_read(input);
            counters.add(Field::Messages, reply.messages);
            let (rest, len, close) = (reply.bytes.as_ptr(), reply.bytes.len(), reply.close);
            if len > 0 {
                self.send(
                    slot,
                    Sending {
                        rest,
                        len,
                        close,
                        held: buf,
                    },
                );
            } else {
                conn.closing = close;
                self.recycle(buf);
            }
        }
        let conn = conn_mut(&mut self.conns, slot);
        if conn.sending.is_some() || (!conn.received.is_empty() && !conn.closing) {
            return;
        }
        conn.closing |= conn.eof;
        if conn.closing {
            // Unanswered reads of a closing connection are dropped (nothing after a close).
            let unanswered: Vec<u16> = conn.received.drain(..).map(|(buf, _)| buf).collect();
            let recv_armed = conn.recv_armed;
            for buf in unanswered {
                self.recycle(buf);
            }
            let conn = conn_mut(&mut self.conns, slot);
            if recv_armed && !conn.recv_cancelled {
                conn.recv_cancelled = true;
                let cancel = opcode::AsyncCancel::new(token(slot, RECV)).build();
                // SAFETY: a cancel lends the kernel no memory.
                unsafe { self.push(cancel.user_data(IGNORE)) };
            } else if !recv_armed && conn.sending.is_none() {
                self.close(slot);
            }
        } else if !conn.recv_armed && !conn.starved {
            self.arm_recv(slot);
        }
    }

    fn arm_recv(&mut self, slot: usize) {
        let conn = conn_mut(&mut self.conns, slot);
        let entry = match &mut conn.own_buf {
            Some(own) => {
                let (at, len) = (own.as_mut_ptr(), own.len() as u32);
                on_socket!(conn, socket => opcode::Recv::new(socket, at, len).build())
            }
            None => on_socket!(conn, socket => opcode::RecvMulti::new(socket, POOL_GROUP).build()),
        };
        conn.recv_armed = true;
        conn.recv_cancelled = false;
        // SAFETY: the recv writes into the pool (alive as long as the ring) or into this boxed
        // connection's own buffer, which is freed only after the recv's last completion.
        unsafe { self.push(entry.user_data(token(slot, RECV))) };
    }

    /// Hands a read's buffer back to the kernel if it is a pool buffer (the starved recvs are
    /// re-armed after the current batch of completions).
    fn recycle(&mut self, buf: u16) {
        if let (Some(pool), false) = (&mut self.pool, buf == OWN_BUF) {
            pool.give_back(buf);
            self.buffers_returned = true;
        }
    }

    /// Frees a connection that has no operation in flight and closes its socket via the ring.
    fn close(&mut self, slot: usize) {
        let conn = self.conns[slot].take().expect("closing a closed slot");
        self.free.push(slot);
        if let Some(slot) = conn.fixed {
            // Empties the table slot at once (it holds a reference to the socket, which would
            // stay open), and before a later connection of this slot fills it: a queued close of
            // the slot would run after that synchronous update and close the newcomer.
            let _ = self.ring.submitter().register_files_update(slot, &[-1]);
        }
        let close = opcode::Close::new(Fd(conn.fd.into_raw_fd())).build();
        // SAFETY: a close lends the kernel no memory.
        unsafe { self.push(close.user_data(IGNORE)) };
    }
}

/// The whole server (uring-tpc and its ladder): N pinned threads, each running one loop with the
/// `wanted` features and its own `SO_REUSEPORT` listener, printing `design` in its counters line.
/// Worker 0 prints the features its loop really uses on stderr once it runs, one line:
/// `{design}: io_uring features: recv_multishot=on ...`.
pub fn main(design: &'static str, wanted: Features) {
    let mut server = Server::from_env(design);
    let (cfg, listeners) = (server.cfg.clone(), server.listeners_per_core());
    let (stop, stop_ends) = StopEvent::for_workers(cfg.threads).unwrap_or_else(fatal);
    // Not the runner's barrier: the settings line says which features the rings really got, so
    // READY waits for each worker's word (a worker that cannot make its ring ends the process).
    let (started_tx, started_rx) = mpsc::channel();
    let (counters_tx, counters_rx) = mpsc::channel();
    for (worker, (listener, stop)) in listeners.into_iter().zip(stop_ends).enumerate() {
        let (cfg, started_tx, counters_tx) = (cfg.clone(), started_tx.clone(), counters_tx.clone());
        let run = move || {
            cfg.pin_worker(worker);
            // Made on the worker's own CPU and thread (the ring accepts only its creator's calls).
            let mut event_loop = match EventLoop::new(listener, &stop, cfg.protocol, wanted) {
                Ok(event_loop) => event_loop,
                Err(e) => return drop(started_tx.send(Err(e))),
            };
            if worker == 0 {
                eprintln!("{design}: io_uring features: {}", event_loop.features());
            }
            let _ = started_tx.send(Ok(event_loop.features()));
            let counters = LocalCounters::default();
            if let Err(e) = event_loop.run(&counters) {
                eprintln!("worker {worker}: io_uring_enter: {e}");
            }
            // No completion is handled any more: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
            drop(event_loop);
        };
        bench_core::spawn_worker(worker, run);
    }
    // READY once every worker has its ring; the listeners already listen. (Main's own sender is
    // dropped so that a worker that died before reporting ends the wait.)
    drop(started_tx);
    let mut used = wanted;
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok(features)) => used = features,
            Ok(Err(e)) => fatal(format_args!(
                "io_uring unavailable: {e} (check `ulimit -l`, seccomp and the \
                 kernel.io_uring_disabled sysctl)"
            )),
            Err(_) => fatal("a worker exited during start-up"),
        }
    }
    // The features really in use (less any the kernel refused): the same on every worker.
    // The floor has no library defaults to fall back to, so both profiles report the same.
    let settings = server
        .settings()
        .with("recv_multishot", used.recv_multishot)
        .with("accept_multishot", used.accept_multishot)
        .with("ring_flags", used.ring_flags)
        .with("registered_files", used.registered_files);
    server.ready(&settings);

    server.wait_for_signal();
    stop.trigger();
    server.report(signal::collect_within_grace(&counters_rx, cfg.threads));
}

impl Drop for EventLoop {
    /// Cancels every connection's operations and waits for their last completions (some may
    /// complete on their own first) before the connections and the pool are freed.
    fn drop(&mut self) {
        let mut in_flight = 0;
        for slot in 0..self.conns.len() {
            let Some(conn) = &self.conns[slot] else {
                continue;
            };
            let (recv, send) = (conn.recv_armed, conn.sending.is_some());
            in_flight += usize::from(recv) + usize::from(send);
            for (busy, kind) in [(recv, RECV), (send, SEND)] {
                if busy {
                    let cancel = opcode::AsyncCancel::new(token(slot, kind)).build();
                    // SAFETY: a cancel lends the kernel no memory.
                    unsafe { self.push(cancel.user_data(IGNORE)) };
                }
            }
        }
        let deadline = Instant::now() + DRAIN_DEADLINE;
        let tick = Timespec::from(Duration::from_millis(50));
        while in_flight > 0 && Instant::now() < deadline {
            let args = SubmitArgs::new().timespec(&tick);
            match self.ring.submitter().submit_with_args(1, &args) {
                Err(e) if !is_retry(&e) && e.raw_os_error() != Some(libc::ETIME) => break,
                _ => {}
            }
            for cqe in self.ring.completion() {
                let slot = (cqe.user_data() >> KIND_BITS) as usize;
                let conn = self.conns.get_mut(slot).and_then(Option::as_mut);
                match (cqe.user_data() & ((1 << KIND_BITS) - 1), conn) {
                    (RECV, Some(conn)) if !cqueue::more(cqe.flags()) && conn.recv_armed => {
                        conn.recv_armed = false;
                        in_flight -= 1;
                    }
                    (SEND, Some(conn)) if conn.sending.is_some() => {
                        conn.sending = None;
                        in_flight -= 1;
                    }
                    _ => {}
                }
            }
        }
        if in_flight > 0 {
            // Never free memory the kernel may still write; the process is ending anyway.
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(self.pool.take());
        }
    }
}

/// The thread's provided buffers: `POOL_BUFFERS` buffers of `BUF_SIZE` bytes and the ring of
/// their descriptors that the kernel takes them from (registered as buffer group `POOL_GROUP`).
struct BufPool {
    /// Page-aligned ring of `POOL_BUFFERS` entries, shared with the kernel.
    entries: *mut BufRingEntry,
    tail: u16,
    buffers: Box<[u8]>,
}

impl BufPool {
    fn register(ring: &IoUring) -> io::Result<BufPool> {
        let size = POOL_BUFFERS as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: a fresh anonymous private mapping (page-aligned, zeroed); checked below.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut pool = BufPool {
            entries: entries.cast(),
            tail: 0,
            buffers: vec![0; POOL_BUFFERS as usize * BUF_SIZE].into_boxed_slice(),
        };
        // SAFETY: the ring memory and the buffers live until the pool is dropped, which happens
        // after the ring (EventLoop's field order) or never (leaked while operations are out).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                POOL_BUFFERS,
                POOL_GROUP,
                0,
            )?
        };
        for buf in 0..POOL_BUFFERS {
            pool.give_back(buf);
        }
        Ok(pool)
    }

    /// The first `len` bytes the kernel wrote into buffer `buf`.
    fn contents(&self, buf: u16, len: usize) -> &[u8] {
        let start = buf as usize * BUF_SIZE;
        &self.buffers[start..start + len.min(BUF_SIZE)]
    }

    /// Puts buffer `buf` at the ring's tail, where the kernel may take it again.
    fn give_back(&mut self, buf: u16) {
        let addr = self.buffers[buf as usize * BUF_SIZE..].as_ptr();
        // SAFETY: `tail % POOL_BUFFERS` indexes the mapped ring; the kernel reads an entry only
        // once the tail published below has passed it.
        unsafe {
            let entry = &mut *self.entries.add((self.tail % POOL_BUFFERS) as usize);
            entry.set_addr(addr as u64);
            entry.set_len(BUF_SIZE as u32);
            entry.set_bid(buf);
            self.tail = self.tail.wrapping_add(1);
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        let size = POOL_BUFFERS as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: the mapping made in `register`, unused by the kernel once the ring is gone.
        unsafe { libc::munmap(self.entries.cast(), size) };
    }
}

/// A ring with the flags of Linux 6.1 if `flags` (and the kernel takes them), else a plain one;
/// says whether it has them.
fn make_ring(flags: bool) -> io::Result<(IoUring, bool)> {
    if !flags {
        return Ok((IoUring::new(RING_ENTRIES)?, false));
    }
    let modern = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .build(RING_ENTRIES);
    match modern {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            note_once("io_uring loop: ring flags of Linux 6.1 refused; a plain ring instead");
            Ok((IoUring::new(RING_ENTRIES)?, false))
        }
        ring => Ok((ring?, true)),
    }
}

fn conn_mut(conns: &mut [Option<Box<Conn>>], slot: usize) -> &mut Conn {
    conns[slot]
        .as_mut()
        .expect("a completion for a connection that is not open")
}

/// EINTR: a signal. EBUSY/EAGAIN: the kernel wants completions reaped first.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

/// Prints a note on stderr once per process (every worker would print the same).
fn note_once(note: &str) {
    static NOTE: Once = Once::new();
    NOTE.call_once(|| eprintln!("{note}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rung's loop uses what it asks for (on a kernel that has every feature: where the
    /// floor itself is refused something, the rest says nothing and is skipped).
    #[test]
    fn a_loop_uses_the_features_it_is_asked_for() {
        let stop = StopEvent::new().unwrap();
        let make = |wanted| {
            let listener = net::listen_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
            EventLoop::new(listener, &stop, Protocol::Http, wanted)
        };
        let Ok(floor) = make(Features::FLOOR) else {
            return; // no io_uring here
        };
        if floor.features() != Features::FLOOR {
            return;
        }
        let rungs = [
            Features {
                recv_multishot: false,
                ..Features::FLOOR
            },
            Features {
                accept_multishot: false,
                ..Features::FLOOR
            },
            Features {
                ring_flags: false,
                ..Features::FLOOR
            },
            Features {
                registered_files: true,
                ..Features::FLOOR
            },
        ];
        for wanted in rungs {
            let event_loop = make(wanted).unwrap();
            assert_eq!(event_loop.features(), wanted);
            assert_eq!(event_loop.pool.is_some(), wanted.recv_multishot);
        }
        assert_eq!(
            Features::FLOOR.to_string(),
            "recv_multishot=on accept_multishot=on ring_flags=on registered_files=off"
        );
    }
}
