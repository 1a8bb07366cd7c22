//! The epoll I/O path (`--io epoll`): one mio `Poll` per thread, readiness events on the
//! connections' non-blocking sockets (`conn`), and in open loop a `timerfd` armed at the
//! earliest due request, so the thread wakes when a request is due to within the kernel's
//! wake-up latency rather than epoll's millisecond timeout.

use std::io;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::conn::{Conn, Shared};
use crate::driver::{Driver, WorkerSpec};
use crate::exchange::Exchange;
use crate::protocol::Protocol;
use crate::recorder::Recorder;
use crate::sys::TimerFd;

/// Size of the thread's read and write buffers, shared by its connections.
const BUF_SIZE: usize = 64 * 1024;
/// Token of the schedule's timerfd (connections use their index).
const TIMER: Token = Token(usize::MAX);

pub struct EpollDriver<P> {
    poll: Poll,
    events: Events,
    sh: Shared,
    conns: Vec<Conn<P>>,
    /// Open loop only, and the time it is armed at (`u64::MAX`: disarmed).
    timer: Option<TimerFd>,
    armed: u64,
}

impl<P: Protocol> EpollDriver<P> {
    pub fn new(spec: &WorkerSpec, exchanges: Vec<Exchange<P>>) -> io::Result<EpollDriver<P>> {
        let poll = Poll::new()?;
        let timer = match spec.open {
            Some(_) => {
                let t = TimerFd::new()?;
                poll.registry()
                    .register(&mut SourceFd(&t.raw()), TIMER, Interest::READABLE)?;
                Some(t)
            }
            None => None,
        };
        let sh = Shared {
            registry: poll.registry().try_clone()?,
            addr: spec.addr,
            timeout_ns: spec.timeout_ns,
            read_buf: vec![0; BUF_SIZE].into_boxed_slice(),
            write_buf: vec![0; BUF_SIZE].into_boxed_slice(),
        };
        let conns = exchanges
            .into_iter()
            .enumerate()
            .map(|(i, ex)| Conn::new(Token(i), ex))
            .collect();
        Ok(EpollDriver {
            poll,
            events: Events::with_capacity(1024),
            sh,
            conns,
            timer,
            armed: u64::MAX,
        })
    }
}

impl<P: Protocol> Driver for EpollDriver<P> {
    fn start(&mut self, rec: &mut Recorder) {
        for c in &mut self.conns {
            c.open(&mut self.sh, rec);
        }
    }

    fn due(&mut self, i: usize, now: u64, rec: &mut Recorder) -> u64 {
        self.conns[i].on_due(now, &mut self.sh, rec)
    }

    fn wait(&mut self, now: u64, wake: u64, next_due: u64, rec: &mut Recorder) -> io::Result<()> {
        if let Some(timer) = &self.timer {
            if next_due != self.armed {
                timer.set(next_due)?;
                self.armed = next_due;
            }
        }
        // Round up: mio truncates to milliseconds, which would spin before a boundary.
        let wait_ms = wake.saturating_sub(now).div_ceil(1_000_000);
        match self
            .poll
            .poll(&mut self.events, Some(Duration::from_millis(wait_ms)))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            if ev.token() == TIMER {
                // Fired. Not read: every expiry wakes epoll anyway, and setting the timer again
                // (next iteration, whatever is due next) resets it; this saves a system call.
                self.armed = u64::MAX;
                continue;
            }
            self.conns[ev.token().0].on_event(ev, &mut self.sh, rec);
        }
        Ok(())
    }

    fn tick(&mut self, now: u64, rec: &mut Recorder) {
        for c in &mut self.conns {
            c.tick(now, &mut self.sh, rec);
        }
    }

    fn censor_at_end(&mut self, end: u64, rec: &mut Recorder) {
        for c in &mut self.conns {
            c.exchange().censor_at_end(end, rec);
        }
    }
}
