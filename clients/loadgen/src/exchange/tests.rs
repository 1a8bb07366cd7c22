//! Unit tests of `exchange`: the I/O-free part of a connection, driven by hand.

use std::sync::mpsc;

use super::*;
use crate::protocol::Echo;
use crate::recorder::Window;
use crate::stats::{IntervalStats, ThreadMsg};

const END: u64 = 1_000_000;
const SIZE: usize = 8;

/// A recorder measuring from time 0 to `END` in one interval.
fn recorder() -> (Recorder, mpsc::Receiver<ThreadMsg>) {
    let (tx, rx) = mpsc::channel();
    let window = Window {
        start: 0,
        end: END,
        interval: END,
    };
    let mut rec = Recorder::new(0, window, tx);
    rec.advance(0);
    (rec, rx)
}

/// What the recorder counted in its one interval.
fn counted(mut rec: Recorder, rx: &mpsc::Receiver<ThreadMsg>) -> IntervalStats {
    rec.advance(END);
    rec.finish();
    match rx.try_iter().next() {
        Some(ThreadMsg::Interval { stats, .. }) => *stats,
        _ => panic!("no interval reported"),
    }
}

/// The echo answer to request `seq` of connection 0.
fn answer(seq: u64) -> Vec<u8> {
    let mut bytes = vec![0; SIZE];
    Echo::new(SIZE, 0).fill_request(seq, 0, &mut bytes);
    bytes
}

fn closed(depth: usize, per_connection: Option<u64>) -> Exchange<Echo> {
    Exchange::new(Echo::new(SIZE, 0), depth, None, per_connection)
}

#[test]
fn pipelined_requests_are_stamped_by_their_first_byte_and_timed_from_it() {
    let (mut rec, rx) = recorder();
    let mut ex = closed(2, None);
    ex.refill();
    assert_eq!(ex.pipeline_bytes(), 2 * SIZE);
    let mut buf = [0; 12];
    assert_eq!(ex.gather(&mut buf), 12); // request 0 and half of request 1
    assert_eq!(buf[..SIZE], answer(0)[..]);
    ex.wrote(12, 10, &mut rec);
    assert!(ex.has_unwritten());
    assert_eq!(ex.gather(&mut buf), 4);
    assert_eq!(buf[..4], answer(1)[4..]);
    ex.wrote(4, 20, &mut rec);
    assert!(!ex.has_unwritten());
    assert_eq!(
        ex.received(&answer(0), 30, &mut rec),
        Ok(ReadOutcome::Continue)
    );
    let second = answer(1);
    assert_eq!(
        ex.received(&second[..3], 40, &mut rec),
        Ok(ReadOutcome::Continue)
    );
    assert_eq!(
        ex.received(&second[3..], 50, &mut rec),
        Ok(ReadOutcome::Continue)
    );
    let c = counted(rec, &rx);
    // Both were first written at 10: answered at 30 and 50.
    assert_eq!((c.latency.count, c.latency.min, c.latency.max), (2, 20, 40));
    assert_eq!(
        (c.counts.sent, c.counts.bytes_sent, c.counts.bytes_received),
        (2, 16, 16)
    );
    assert_eq!(c.counts.errors.total(), 0);
}

#[test]
fn an_answer_to_nothing_sent_is_invalid() {
    let (mut rec, _rx) = recorder();
    let mut ex = closed(1, None);
    ex.refill();
    assert_eq!(
        ex.received(&answer(0), 5, &mut rec),
        Err(ErrorKind::Mismatch)
    );
}

#[test]
fn the_quota_and_the_servers_close_reopen_without_error() {
    let (mut rec, rx) = recorder();
    let mut ex = closed(4, Some(1));
    ex.refill();
    let mut buf = [0; 64];
    assert_eq!(ex.gather(&mut buf), SIZE, "the quota limits the pipeline");
    assert_eq!(ex.peer_closed(), Ok(ReadOutcome::Reopen), "idle: no error");
    ex.wrote(SIZE, 1, &mut rec);
    assert_eq!(ex.peer_closed(), Err(ErrorKind::Eof));
    assert_eq!(
        ex.received(&answer(0), 2, &mut rec),
        Ok(ReadOutcome::Reopen)
    );
    ex.restart();
    ex.refill();
    assert_eq!(ex.gather(&mut buf), SIZE, "a new connection, a new quota");
    assert_eq!(buf[..SIZE], answer(1)[..]);
    let c = counted(rec, &rx);
    assert_eq!((c.latency.count, c.counts.errors.total()), (1, 0));
}

#[test]
fn a_failure_loses_what_was_sent_and_a_failed_connect_backs_off() {
    let (mut rec, rx) = recorder();
    let mut ex = closed(1, None);
    ex.refill();
    ex.wrote(SIZE, 10, &mut rec);
    assert_eq!(ex.fail(40, ErrorKind::Reset, &mut rec), Then::Reopen);
    assert!(!ex.has_unwritten(), "nothing outstanding after a failure");
    assert_eq!(
        ex.fail(50, ErrorKind::Connect, &mut rec),
        Then::RetryAt(50 + CONNECT_BACKOFF_NS)
    );
    let c = counted(rec, &rx);
    // The lost request at (40 - 10); the refused connect counted once, in no histogram.
    assert_eq!(
        (c.latency.count, c.latency.max, c.counts.failed),
        (1, 30, 1)
    );
    assert_eq!(c.counts.errors.get(ErrorKind::Reset), 1);
    assert_eq!(c.counts.errors.get(ErrorKind::Connect), 1);
}

#[test]
fn chores_are_due_reconnects_and_timeouts() {
    let (mut rec, _rx) = recorder();
    let mut ex = closed(1, None);
    let closed_until = |t| LinkState::Closed { retry_at: t };
    assert_eq!(ex.chore(closed_until(5), 4, 10), None);
    assert_eq!(ex.chore(closed_until(5), 5, 10), Some(Chore::Open));
    let connecting = LinkState::Connecting { since: 0 };
    assert_eq!(ex.chore(connecting, 9, 10), None);
    assert_eq!(
        ex.chore(connecting, 10, 10),
        Some(Chore::Fail(ErrorKind::Connect))
    );
    assert_eq!(ex.chore(LinkState::Open, 100, 10), None, "idle");
    ex.refill();
    assert_eq!(ex.chore(LinkState::Open, 100, 10), None, "not sent yet");
    ex.wrote(SIZE, 100, &mut rec);
    assert_eq!(ex.chore(LinkState::Open, 109, 10), None);
    assert_eq!(
        ex.chore(LinkState::Open, 110, 10),
        Some(Chore::Fail(ErrorKind::Timeout))
    );
}
