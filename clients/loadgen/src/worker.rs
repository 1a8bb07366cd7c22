//! One client thread: pinned, one event loop over its own connections and counters, on the I/O
//! path `--io` chose (`epoll` or `uring`, a [`Driver`]). It shares nothing with other threads
//! while running; it hands each interval's statistics to the main thread through its `Recorder`
//! and stops by itself at the end of the window.
//!
//! The loop is the same for both paths: each iteration first admits what the open-loop
//! schedules made due (a heap with one entry per connection, its next due request), then lets
//! the driver send what is queued and wait for I/O until the next interval boundary, periodic
//! check or due request, whichever comes first, and handle what happened.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::mpsc::Sender;

use crate::cli::IoKind;
pub use crate::driver::{Driver, WorkerSpec};
use crate::epoll::EpollDriver;
use crate::exchange::Exchange;
use crate::protocol::Protocol;
use crate::recorder::Recorder;
use crate::schedule::Schedule;
use crate::stats::ThreadMsg;
use crate::sys;
use crate::uring::UringDriver;

/// Runs the thread's share of the load until the end of the window.
pub fn run<P: Protocol>(
    spec: WorkerSpec,
    make_protocol: impl Fn(usize) -> P,
    tx: Sender<ThreadMsg>,
) -> io::Result<()> {
    if let Some(cpu) = spec.cpu {
        sys::pin_current_thread(&[cpu])?;
    }
    let rec = Recorder::new(spec.thread, spec.window, tx);
    let (exchanges, due) = prepare(&spec, make_protocol);
    match spec.io {
        IoKind::Epoll => drive(EpollDriver::new(&spec, exchanges)?, due, &spec, rec),
        IoKind::Uring => drive(UringDriver::new(&spec, exchanges, true)?, due, &spec, rec),
    }
}

/// Open loop: (next due time, connection), earliest first.
pub(crate) type DueHeap = BinaryHeap<Reverse<(u64, usize)>>;

/// Each connection's exchange (with its open-loop schedule) and the heap of their due times.
pub(crate) fn prepare<P: Protocol>(
    spec: &WorkerSpec,
    make_protocol: impl Fn(usize) -> P,
) -> (Vec<Exchange<P>>, DueHeap) {
    let exchanges: Vec<Exchange<P>> = spec
        .plans
        .iter()
        .map(|plan| {
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
            let proto = make_protocol(plan.index);
            Exchange::new(proto, plan.depth, schedule, spec.per_connection)
        })
        .collect();
    let due = exchanges
        .iter()
        .enumerate()
        .filter_map(|(i, ex)| ex.next_due().map(|t| Reverse((t, i))))
        .collect();
    (exchanges, due)
}

pub(crate) fn drive(
    mut driver: impl Driver,
    mut due: DueHeap,
    spec: &WorkerSpec,
    mut rec: Recorder,
) -> io::Result<()> {
    driver.start(&mut rec);
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
            let next = driver.due(i, now, &mut rec);
            due.push(Reverse((next, i)));
        }
        rec.advance(now);
        if rec.window_over() {
            break;
        }
        let next_due = due.peek().map_or(u64::MAX, |r| (r.0).0);
        let wake = rec.next_boundary().min(next_tick);
        driver.wait(now, wake, next_due, &mut rec)?;
        now = sys::now_ns();
        if now >= next_tick {
            driver.tick(now, &mut rec);
            next_tick = now + tick;
        }
    }
    // No censored tail: what is still unanswered is recorded at (end - intended) before the
    // last interval closes.
    driver.censor_at_end(spec.window.end, &mut rec);
    rec.finish();
    Ok(()) // dropping the driver closes the connections
}
