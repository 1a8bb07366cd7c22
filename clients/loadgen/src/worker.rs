//! One client thread: pinned, one event loop (mio/epoll), its own connections and counters.
//! It shares nothing with other threads while running; it hands each interval's statistics to
//! the main thread through its `Recorder` and stops by itself at the end of the window.
//!
//! Open loop adds a timer heap with one entry per connection (its next due request) and a
//! `timerfd` armed at the earliest of them, so the thread wakes when a request is due to within
//! the kernel's wake-up latency rather than epoll's millisecond timeout. Each loop iteration
//! first admits what is due, then waits, then handles socket events.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::cli::OpenLoop;
use crate::conn::{Conn, Shared};
use crate::plan::ConnPlan;
use crate::protocol::Protocol;
use crate::recorder::{Recorder, Window};
use crate::schedule::Schedule;
use crate::stats::ThreadMsg;
use crate::sys::{self, TimerFd};

/// Size of the thread's read and write buffers, shared by its connections.
const BUF_SIZE: usize = 64 * 1024;
/// Token of the schedule's timerfd (connections use their index).
const TIMER: Token = Token(usize::MAX);

pub struct WorkerSpec {
    pub thread: usize,
    pub cpu: Option<usize>,
    /// This thread's connections and their share of the load.
    pub plans: Vec<ConnPlan>,
    pub connections_total: usize,
    pub open: Option<OpenLoop>,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    pub per_connection: Option<u64>,
    /// The run's start: open-loop schedules count from here.
    pub t0: u64,
    pub window: Window,
}

/// Runs the thread's share of the load until the end of the window.
pub fn run<P: Protocol>(
    spec: WorkerSpec,
    make_protocol: impl Fn(usize) -> P,
    tx: Sender<ThreadMsg>,
) -> io::Result<()> {
    if let Some(cpu) = spec.cpu {
        sys::pin_current_thread(&[cpu])?;
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut sh = Shared {
        registry: poll.registry().try_clone()?,
        addr: spec.addr,
        timeout_ns: spec.timeout_ns,
        per_connection: spec.per_connection,
        read_buf: vec![0; BUF_SIZE].into_boxed_slice(),
        write_buf: vec![0; BUF_SIZE].into_boxed_slice(),
    };
    let mut rec = Recorder::new(spec.thread, spec.window, tx);
    let mut conns: Vec<Conn<P>> = spec
        .plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let schedule = spec.open.zip(plan.rate).map(|(o, rate)| {
                Schedule::new(
                    o.arrival,
                    rate,
                    o.seed,
                    plan.index,
                    spec.connections_total,
                    spec.t0,
                )
            });
            Conn::new(Token(i), make_protocol(plan.index), plan.depth, schedule)
        })
        .collect();
    // Open loop: (next due time, connection), earliest first.
    let mut due: BinaryHeap<Reverse<(u64, usize)>> = conns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.next_due().map(|t| Reverse((t, i))))
        .collect();
    let timer = match spec.open {
        Some(_) => {
            let t = TimerFd::new()?;
            poll.registry()
                .register(&mut SourceFd(&t.raw()), TIMER, Interest::READABLE)?;
            Some(t)
        }
        None => None,
    };
    let mut armed = u64::MAX;
    for c in &mut conns {
        c.open(&mut sh, &mut rec);
    }

    // Timeouts and reconnects are checked every `tick`, a tenth of the timeout (1..10 ms).
    let tick = (spec.timeout_ns / 10).clamp(1_000_000, 10_000_000);
    let mut now = sys::now_ns();
    let mut next_tick = now + tick;
    rec.advance(now);
    while !rec.window_over() {
        // Admit what is due before the phase moves, so requests due just before the window's
        // end are counted in it.
        while let Some(&Reverse((t, i))) = due.peek() {
            if t > now {
                break;
            }
            due.pop();
            let next = conns[i].on_due(now, &mut sh, &mut rec);
            due.push(Reverse((next, i)));
        }
        rec.advance(now);
        if rec.window_over() {
            break;
        }
        if let Some(timer) = &timer {
            let first = due.peek().map_or(u64::MAX, |r| (r.0).0);
            if first != armed {
                timer.set(first)?;
                armed = first;
            }
        }
        let wake = rec.next_boundary().min(next_tick);
        // Round up: mio truncates to milliseconds, which would spin before a boundary.
        let wait_ms = wake.saturating_sub(now).div_ceil(1_000_000);
        match poll.poll(&mut events, Some(Duration::from_millis(wait_ms))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            if ev.token() == TIMER {
                // Fired. Not read: every expiry wakes epoll anyway, and setting the timer again
                // (next iteration, whatever is due next) resets it; this saves a system call.
                armed = u64::MAX;
                continue;
            }
            conns[ev.token().0].on_event(ev, &mut sh, &mut rec);
        }
        now = sys::now_ns();
        if now >= next_tick {
            for c in &mut conns {
                c.tick(now, &mut sh, &mut rec);
            }
            next_tick = now + tick;
        }
    }
    // No censored tail: what is still unanswered is recorded at (end - intended) before the
    // last interval closes.
    for c in &mut conns {
        c.censor_at_end(spec.window.end, &mut rec);
    }
    rec.finish();
    Ok(()) // dropping the connections closes them
}
