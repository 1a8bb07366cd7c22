//! One client thread: pinned, one event loop (mio/epoll), its own connections and counters.
//! It shares nothing with other threads while running; it hands each interval's statistics to
//! the main thread through its `Recorder` and stops by itself at the end of the window.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::mpsc::Sender;
use std::time::Duration;

use mio::{Events, Poll, Token};

use crate::conn::{Conn, Shared};
use crate::protocol::Protocol;
use crate::recorder::{Recorder, Window};
use crate::stats::ThreadMsg;
use crate::sys;

/// Size of the thread's read and write buffers, shared by its connections.
const BUF_SIZE: usize = 64 * 1024;

pub struct WorkerSpec {
    pub thread: usize,
    pub cpu: Option<usize>,
    /// Global indices of this thread's connections.
    pub connections: Range<usize>,
    pub addr: SocketAddr,
    pub timeout_ns: u64,
    pub depth: usize,
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
        depth: spec.depth,
        read_buf: vec![0; BUF_SIZE].into_boxed_slice(),
        write_buf: vec![0; BUF_SIZE].into_boxed_slice(),
    };
    let mut rec = Recorder::new(spec.thread, spec.window, tx);
    let mut conns: Vec<Conn<P>> = spec
        .connections
        .clone()
        .enumerate()
        .map(|(i, id)| Conn::new(Token(i), make_protocol(id), spec.depth))
        .collect();
    for c in &mut conns {
        c.open(&mut sh, &mut rec);
    }

    // Timeouts and reconnects are checked every `tick`, a tenth of the timeout (1..10 ms).
    let tick = (spec.timeout_ns / 10).clamp(1_000_000, 10_000_000);
    let mut now = sys::now_ns();
    let mut next_tick = now + tick;
    rec.advance(now);
    while !rec.is_done() {
        let wake = rec.next_boundary().min(next_tick);
        // Round up: mio truncates to milliseconds, which would spin before a boundary.
        let wait_ms = (wake.saturating_sub(now) + 999_999) / 1_000_000;
        match poll.poll(&mut events, Some(Duration::from_millis(wait_ms))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            conns[ev.token().0].on_event(ev, &mut sh, &mut rec);
        }
        now = sys::now_ns();
        rec.advance(now);
        if now >= next_tick {
            for c in &mut conns {
                c.tick(now, &mut sh, &mut rec);
            }
            next_tick = now + tick;
        }
    }
    Ok(()) // dropping the connections abandons what is in flight
}
