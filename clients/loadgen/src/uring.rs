//! The io_uring I/O path (`--io uring`): completion-based, one ring per client thread
//! (`uring_ring`), the same connections, requests and timing as the epoll path (each
//! connection's [`Exchange`]), fewer system calls.
//!
//! - **One `io_uring_enter` per loop iteration.** Sends, re-armed receives, connects, cancels and
//!   closes are queued as the loop handles completions and open-loop due requests, then
//!   submitted together by the enter that also waits for the next completion (or for the next
//!   interval boundary, periodic check or due request: the wait's timeout, an absolute time on
//!   `CLOCK_MONOTONIC` where the kernel has it, so an open-loop send goes out at its intended
//!   time to within the kernel's wake-up latency, as the epoll path's `timerfd` does).
//! - **One multishot receive per connection** from a provided-buffer pool: it stays armed and
//!   posts a completion naming a buffer whenever answers arrive; the bytes are parsed at once and
//!   the buffer goes back (published to the kernel once per iteration). Without it (before Linux
//!   6.0, or the pool refused): one single-shot receive into the connection's own buffer,
//!   armed again after each.
//! - **One send per connection at a time**, of the request bytes gathered into the connection's
//!   own send buffer; what a short send left is gathered again.
//!
//! Timing: every send queued in an iteration is stamped with one clock reading taken just before
//! the enter that submits it (a send queued when the submission queue is full is stamped just
//! before that early submission instead), and every answer reaped by an enter with one reading
//! taken after its completions are collected (all arrived by then), where the epoll path reads
//! the clock before each write and after each read. Answers that complete while the
//! connection's send is still in flight (the kernel posted the receive first) wait for that
//! send's completion, so a request is always stamped as sent before its answer is checked.
//!
//! Closing a socket (error, `Connection: close`, quota, timeout) cancels its operations; the
//! socket is closed through the ring, and the connection reopened or left to back off, once the
//! kernel has returned them (usually in the next iteration). Dropping the driver cancels
//! everything and waits for the kernel before the buffers are freed (leaking them if it does not
//! answer within `DRAIN_DEADLINE`).

use std::collections::VecDeque;
use std::io;
use std::os::unix::io::{AsRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue};

use crate::driver::{Driver, WorkerSpec};
use crate::exchange::{Chore, Exchange, LinkState, ReadOutcome, Then};
use crate::protocol::Protocol;
use crate::recorder::Recorder;
use crate::stats::ErrorKind;
use crate::sys::now_ns;
use crate::uring_ring::{self, is_retry, Ring, SocketAddress, GROUP, READ_SIZE};

/// Largest send buffer of a connection (requests longer than this go in several sends).
const SEND_MAX: usize = 64 * 1024;
/// How long dropping the driver waits for the kernel to return its operations.
const DRAIN_DEADLINE: Duration = Duration::from_secs(1);

/// Which operation of a connection a completion is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Connect,
    Recv,
    Send,
    /// Cancels and closes: nothing to do when they complete.
    Ignore,
}

impl Op {
    const ALL: [Op; 4] = [Op::Connect, Op::Recv, Op::Send, Op::Ignore];

    /// The `user_data` of this operation on connection `i`.
    fn on(self, i: usize) -> u64 {
        i as u64 * Op::ALL.len() as u64 + self as u64
    }

    /// The connection and the operation a `user_data` names.
    fn of(user_data: u64) -> (usize, Op) {
        let n = Op::ALL.len() as u64;
        ((user_data / n) as usize, Op::ALL[(user_data % n) as usize])
    }
}

/// One connection: its exchange, its socket and the operations it has in flight.
struct Link<P> {
    ex: Exchange<P>,
    fd: Option<OwnedFd>,
    state: LinkState,
    /// The socket is being closed: what follows once its operations are back.
    closing: Option<Then>,
    connecting: bool,
    recv_armed: bool,
    sending: bool,
    send_buf: Box<[u8]>,
    /// When the send in flight was submitted.
    send_stamp: u64,
    /// Without multishot receive: the buffer of the single-shot receive.
    own_buf: Option<Box<[u8]>>,
    /// Receive completions that came while a send was in flight: (result, pool buffer, reaped at).
    held: VecDeque<(i32, Option<u16>, u64)>,
}

impl<P> Link<P> {
    /// The operations it has in flight.
    fn ops_in_flight(&self) -> [Option<Op>; 3] {
        [
            self.connecting.then_some(Op::Connect),
            self.recv_armed.then_some(Op::Recv),
            self.sending.then_some(Op::Send),
        ]
    }

    fn busy(&self) -> bool {
        self.connecting || self.recv_armed || self.sending
    }
}

pub struct UringDriver<P> {
    // Dropped first (field order): the ring goes before the memory it may have used.
    ring: Ring,
    links: Vec<Link<P>>,
    addr: SocketAddress,
    timeout_ns: u64,
    /// Connections whose send is queued but not yet stamped (see the module's "Timing").
    unstamped: Vec<usize>,
    /// Connections whose multishot receive ended for want of a pool buffer.
    starved: Vec<usize>,
    completions: Vec<(u64, i32, u32)>,
    /// The first failed submission, returned by the next `wait`.
    error: Option<io::Error>,
}

impl<P: Protocol> UringDriver<P> {
    /// The driver of `exchanges`, with multishot receives if `multishot` and the kernel has
    /// them (tests ask for the fallback).
    pub fn new(
        spec: &WorkerSpec,
        exchanges: Vec<Exchange<P>>,
        multishot: bool,
    ) -> io::Result<UringDriver<P>> {
        let ring = uring_ring::setup(exchanges.len(), multishot)?;
        let multishot = ring.features.recv_multishot;
        let links = exchanges
            .into_iter()
            .map(|ex| {
                let send_len = ex.pipeline_bytes().clamp(1, SEND_MAX);
                Link {
                    ex,
                    fd: None,
                    state: LinkState::Closed { retry_at: 0 },
                    closing: None,
                    connecting: false,
                    recv_armed: false,
                    sending: false,
                    send_buf: vec![0; send_len].into_boxed_slice(),
                    send_stamp: 0,
                    own_buf: (!multishot).then(|| vec![0; READ_SIZE].into_boxed_slice()),
                    held: VecDeque::new(),
                }
            })
            .collect();
        Ok(UringDriver {
            ring,
            links,
            addr: SocketAddress::new(spec.addr),
            timeout_ns: spec.timeout_ns,
            unstamped: Vec::new(),
            starved: Vec::new(),
            completions: Vec::new(),
            error: None,
        })
    }

    /// Queues `entry`; when the submission queue is full, first submits what it holds (with the
    /// sends in it stamped).
    ///
    /// # Safety
    /// Any memory the entry lends the kernel stays valid and unmoved until its last completion.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        while self.ring.ring.submission().push(&entry).is_err() {
            self.stamp_sends(now_ns());
            if let Err(e) = self.ring.ring.submit() {
                if !is_retry(&e) {
                    self.error.get_or_insert(e);
                    return;
                }
            }
        }
    }

    fn stamp_sends(&mut self, stamp: u64) {
        for i in self.unstamped.drain(..) {
            self.links[i].send_stamp = stamp;
        }
        if let Some(pool) = &self.ring.pool {
            pool.publish();
        }
    }

    fn open(&mut self, i: usize, rec: &mut Recorder) {
        let fd = match self.addr.tcp_socket() {
            Ok(fd) => fd,
            Err(_) => return self.fail(i, ErrorKind::Connect, rec),
        };
        let connect = opcode::Connect::new(Fd(fd.as_raw_fd()), self.addr.as_ptr(), self.addr.len);
        let link = &mut self.links[i];
        link.fd = Some(fd);
        link.state = LinkState::Connecting { since: now_ns() };
        link.connecting = true;
        // SAFETY: the address is boxed in `self.addr`, which outlives the ring's operations.
        unsafe { self.push(connect.build().user_data(Op::Connect.on(i))) };
    }

    fn arm_recv(&mut self, i: usize) {
        let link = &mut self.links[i];
        let Some(fd) = &link.fd else { return };
        let socket = Fd(fd.as_raw_fd());
        let entry = match &mut link.own_buf {
            Some(own) => opcode::Recv::new(socket, own.as_mut_ptr(), own.len() as u32).build(),
            None => opcode::RecvMulti::new(socket, GROUP).build(),
        };
        link.recv_armed = true;
        // SAFETY: the receive writes into the pool (alive as long as the ring) or into this
        // connection's own buffer, which is neither moved nor freed while it is armed.
        unsafe { self.push(entry.user_data(Op::Recv.on(i))) };
    }

    /// Queues a send of the connection's unwritten request bytes, unless one is in flight.
    fn send(&mut self, i: usize) {
        let link = &mut self.links[i];
        if link.sending || link.state != LinkState::Open || !link.ex.has_unwritten() {
            return;
        }
        let Some(fd) = &link.fd else { return };
        let n = link.ex.gather(&mut link.send_buf);
        // MSG_NOSIGNAL: a server that reset gives EPIPE, not a SIGPIPE.
        let entry = opcode::Send::new(Fd(fd.as_raw_fd()), link.send_buf.as_ptr(), n as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        link.sending = true;
        self.unstamped.push(i);
        // SAFETY: the send buffer is neither written nor freed until this send completes.
        unsafe { self.push(entry.user_data(Op::Send.on(i))) };
    }

    fn refill_and_send(&mut self, i: usize) {
        self.links[i].ex.refill();
        self.send(i);
    }

    fn connected(&mut self, i: usize, res: i32, rec: &mut Recorder) {
        self.links[i].connecting = false;
        if self.links[i].closing.is_some() {
            return self.finish_close(i, rec);
        }
        if res < 0 {
            return self.fail(i, ErrorKind::Connect, rec);
        }
        self.links[i].state = LinkState::Open;
        self.arm_recv(i);
        self.refill_and_send(i);
    }

    fn received(&mut self, i: usize, res: i32, flags: u32, now: u64, rec: &mut Recorder) {
        let buf = cqueue::buffer_select(flags);
        let link = &mut self.links[i];
        link.recv_armed = link.own_buf.is_none() && cqueue::more(flags);
        if link.closing.is_some() {
            self.give_back(buf);
            return self.finish_close(i, rec);
        }
        if link.sending && res >= 0 {
            link.held.push_back((res, buf, now));
            return;
        }
        self.answers(i, res, buf, now, rec);
    }

    /// A receive's result: bytes to check, the server's close, or an error.
    fn answers(&mut self, i: usize, res: i32, buf: Option<u16>, now: u64, rec: &mut Recorder) {
        let outcome = match res {
            1.. => {
                let link = &mut self.links[i];
                let input = match (buf, &link.own_buf, &self.ring.pool) {
                    (Some(id), _, Some(pool)) => pool.bytes(id, res as usize),
                    (None, Some(own), _) => &own[..res as usize],
                    _ => unreachable!("a receive without a buffer"),
                };
                let outcome = link.ex.received(input, now, rec);
                self.give_back(buf);
                outcome
            }
            0 => self.links[i].ex.peer_closed(),
            _ if res == -libc::ENOBUFS => {
                self.starved.push(i); // re-armed once this iteration's buffers are back
                return;
            }
            _ if [libc::EINTR, libc::EAGAIN, libc::ECANCELED].contains(&-res) => {
                Ok(ReadOutcome::Continue)
            }
            _ => Err(ErrorKind::Reset),
        };
        match outcome {
            Ok(ReadOutcome::Continue) => {
                self.refill_and_send(i);
                if !self.links[i].recv_armed {
                    self.arm_recv(i);
                }
            }
            Ok(ReadOutcome::Reopen) => {
                self.links[i].ex.restart();
                self.close(i, Then::Reopen, rec);
            }
            Err(kind) => self.fail(i, kind, rec),
        }
    }

    fn sent(&mut self, i: usize, res: i32, rec: &mut Recorder) {
        let link = &mut self.links[i];
        link.sending = false;
        if link.closing.is_some() {
            return self.finish_close(i, rec);
        }
        match res {
            1.. => link.ex.wrote(res as usize, link.send_stamp, rec),
            _ if res == -libc::EINTR || res == -libc::EAGAIN => {} // sent again below
            _ => return self.fail(i, ErrorKind::Reset, rec),
        }
        while let Some((res, buf, at)) = self.links[i].held.pop_front() {
            self.answers(i, res, buf, at, rec);
        }
        self.send(i); // what a short send left
    }

    fn give_back(&mut self, buf: Option<u16>) {
        if let (Some(id), Some(pool)) = (buf, &mut self.ring.pool) {
            pool.put(id);
        }
    }

    /// Starts closing connection `i`'s socket: cancels what it has in flight; `then` follows
    /// once the kernel has returned it all.
    fn close(&mut self, i: usize, then: Then, rec: &mut Recorder) {
        let link = &mut self.links[i];
        link.closing = Some(then);
        // Neither due for a check nor for sending while it closes.
        link.state = LinkState::Closed { retry_at: u64::MAX };
        let ops = link.ops_in_flight();
        while let Some((_, buf, _)) = self.links[i].held.pop_front() {
            self.give_back(buf);
        }
        for op in ops.into_iter().flatten() {
            let cancel = opcode::AsyncCancel::new(op.on(i)).build();
            // SAFETY: a cancel lends the kernel no memory.
            unsafe { self.push(cancel.user_data(Op::Ignore.on(i))) };
        }
        self.finish_close(i, rec);
    }

    /// Closes the socket once nothing of it is in flight, then reopens or backs off.
    fn finish_close(&mut self, i: usize, rec: &mut Recorder) {
        let link = &mut self.links[i];
        if link.busy() {
            return;
        }
        let Some(then) = link.closing.take() else {
            return;
        };
        if let Some(fd) = link.fd.take() {
            let close = opcode::Close::new(Fd(fd.into_raw_fd())).build();
            // SAFETY: a close lends the kernel no memory.
            unsafe { self.push(close.user_data(Op::Ignore.on(i))) };
        }
        match then {
            Then::Reopen => self.open(i, rec),
            Then::RetryAt(retry_at) => self.links[i].state = LinkState::Closed { retry_at },
        }
    }

    /// Connection `i` failed (see `Exchange::fail`).
    fn fail(&mut self, i: usize, kind: ErrorKind, rec: &mut Recorder) {
        let then = self.links[i].ex.fail(now_ns(), kind, rec);
        self.close(i, then, rec);
    }
}

impl<P: Protocol> Driver for UringDriver<P> {
    fn start(&mut self, rec: &mut Recorder) {
        for i in 0..self.links.len() {
            self.open(i, rec);
        }
    }

    fn due(&mut self, i: usize, now: u64, rec: &mut Recorder) -> u64 {
        let next = self.links[i].ex.admit_due(now, rec);
        if self.links[i].state == LinkState::Open {
            self.refill_and_send(i);
        }
        next
    }

    fn wait(&mut self, _now: u64, wake: u64, next_due: u64, rec: &mut Recorder) -> io::Result<()> {
        let stamp = now_ns();
        self.stamp_sends(stamp);
        self.ring.enter(stamp, wake.min(next_due))?;
        let mut completions = std::mem::take(&mut self.completions);
        completions.extend(
            self.ring
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let now = now_ns(); // every answer collected has arrived by now
        for &(data, res, flags) in &completions {
            match Op::of(data) {
                (i, Op::Connect) => self.connected(i, res, rec),
                (i, Op::Recv) => self.received(i, res, flags, now, rec),
                (i, Op::Send) => self.sent(i, res, rec),
                (_, Op::Ignore) => {}
            }
        }
        completions.clear();
        self.completions = completions;
        for i in std::mem::take(&mut self.starved) {
            let link = &self.links[i];
            if link.state == LinkState::Open && link.closing.is_none() && !link.recv_armed {
                self.arm_recv(i);
            }
        }
        self.error.take().map_or(Ok(()), Err)
    }

    fn tick(&mut self, now: u64, rec: &mut Recorder) {
        for i in 0..self.links.len() {
            match self.links[i]
                .ex
                .chore(self.links[i].state, now, self.timeout_ns)
            {
                Some(Chore::Open) => self.open(i, rec),
                Some(Chore::Fail(kind)) => self.fail(i, kind, rec),
                None => {}
            }
        }
    }

    fn censor_at_end(&mut self, end: u64, rec: &mut Recorder) {
        for link in &mut self.links {
            link.ex.censor_at_end(end, rec);
        }
    }
}

impl<P> Drop for UringDriver<P> {
    /// Shuts every socket down and cancels every operation, then waits for their last
    /// completions before the buffers they use are freed.
    fn drop(&mut self) {
        let mut in_flight = 0;
        for (i, link) in self.links.iter().enumerate() {
            if let Some(fd) = &link.fd {
                // SAFETY: plain system call on a descriptor we own; its result does not matter.
                unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
            }
            for op in link.ops_in_flight().into_iter().flatten() {
                in_flight += 1;
                let cancel = opcode::AsyncCancel::new(op.on(i)).build();
                let cancel = cancel.user_data(Op::Ignore.on(i));
                // SAFETY: a cancel lends the kernel no memory. A full queue is submitted first.
                while unsafe { self.ring.ring.submission().push(&cancel) }.is_err() {
                    let _ = self.ring.ring.submit();
                }
            }
        }
        let _ = self.ring.ring.submit(); // the cancels, and closes queued since the last enter
        let deadline = Instant::now() + DRAIN_DEADLINE;
        let tick = Timespec::from(Duration::from_millis(50));
        while in_flight > 0 && Instant::now() < deadline {
            let args = SubmitArgs::new().timespec(&tick);
            let _ = self.ring.ring.submitter().submit_with_args(1, &args);
            for cqe in self.ring.ring.completion() {
                let (i, op) = Op::of(cqe.user_data());
                let Some(link) = self.links.get_mut(i) else {
                    continue;
                };
                let done = match op {
                    Op::Connect => std::mem::take(&mut link.connecting),
                    Op::Recv if !cqueue::more(cqe.flags()) => std::mem::take(&mut link.recv_armed),
                    Op::Send => std::mem::take(&mut link.sending),
                    _ => false,
                };
                in_flight -= usize::from(done);
            }
        }
        if in_flight > 0 {
            // Never free memory the kernel may still write; the process is ending anyway.
            std::mem::forget(std::mem::take(&mut self.links));
            std::mem::forget(self.ring.pool.take());
        }
    }
}

#[cfg(test)]
mod tests;
