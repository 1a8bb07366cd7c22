//! Tests of the io_uring path against a loopback echo server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use super::*;
use crate::cli::{self, Command, Config};
use crate::protocol::Echo;
use crate::recorder::Window;
use crate::stats::{ScheduledOutcome, ThreadMsg};
use crate::worker;

/// An echo server on loopback, a thread per connection; the threads end with their
/// connections, the acceptor with the test process.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || echo(stream));
        }
    });
    port
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// What one uring thread counted over a 0.3 s window with `flags`: requests answered, bytes
/// sent and received, errors, and the open-loop outcome.
fn run(flags: &str, multishot: bool) -> (u64, u64, u64, u64, ScheduledOutcome) {
    let port = echo_server();
    let args =
        format!("--port {port} --warmup 0.1 --duration 0.3 --interval-ms 100 --io uring {flags}");
    let cfg: Box<Config> = match cli::parse(args.split_whitespace().map(String::from)) {
        Ok(Command::Run(cfg)) => cfg,
        _ => panic!("bad flags {args}"),
    };
    let t0 = now_ns();
    let start = t0 + cfg.warmup_ns();
    let window = Window {
        start,
        end: start + cfg.duration_ns(),
        interval: cfg.interval_ns(),
    };
    let spec = WorkerSpec::new(&cfg, 0, t0, window);
    let (tx, rx) = mpsc::channel();
    let rec = Recorder::new(0, spec.window, tx);
    let (exchanges, due) = worker::prepare(&spec, |id| Echo::new(cfg.size, id));
    let driver = UringDriver::new(&spec, exchanges, multishot).unwrap();
    assert_eq!(
        driver.ring.features.recv_multishot,
        multishot && uring_ring::setup(1, true).unwrap().features.recv_multishot
    );
    worker::drive(driver, due, &spec, rec).unwrap();
    let mut totals = (0, 0, 0, 0, ScheduledOutcome::default());
    for msg in rx.try_iter() {
        if let ThreadMsg::Interval { stats, .. } = msg {
            totals.0 += stats.latency.count;
            totals.1 += stats.counts.bytes_sent;
            totals.2 += stats.counts.bytes_received;
            totals.3 += stats.counts.errors.total();
            totals.4.scheduled += stats.counts.scheduled.scheduled;
            totals.4.answered += stats.counts.scheduled.answered;
            totals.4.failed += stats.counts.scheduled.failed;
            totals.4.censored += stats.counts.scheduled.censored;
        }
    }
    totals
}

/// Closed loop (pipelined), open loop and one request per connection, with and without
/// multishot receives: every request answered, checked and counted, none lost. (Skipped
/// where io_uring cannot be set up.)
#[test]
fn the_uring_path_answers_every_request() {
    if uring_ring::setup(1, true).is_err() {
        return;
    }
    for multishot in [true, false] {
        let (n, sent, received, errors, _) =
            run("--connections 3 --pipeline 2 --size 100", multishot);
        assert!(
            n > 0 && errors == 0,
            "closed loop: {n} answered, {errors} errors"
        );
        assert_eq!((sent, received), (100 * n, 100 * n));

        let (n, _, _, errors, scheduled) = run("--connections 2 --rate 2000", multishot);
        assert_eq!(errors, 0);
        // 2000/s over 0.3 s: about 600 scheduled in the window, every one accounted for.
        assert!(scheduled.scheduled > 300, "{scheduled:?}");
        assert_eq!(
            scheduled.scheduled,
            scheduled.answered + scheduled.failed + scheduled.censored
        );
        assert!(n >= scheduled.answered);

        let (n, _, _, errors, _) = run("--connections 2 --requests-per-connection 1", multishot);
        assert!(n > 0 && errors == 0, "churn: {n} answered, {errors} errors");
    }
}

#[test]
fn features_print_as_one_line_of_pairs() {
    let all = uring_ring::Features {
        recv_multishot: true,
        ring_flags: true,
        abs_timer: false,
    };
    assert_eq!(
        all.to_string(),
        "recv_multishot=on ring_flags=on abs_timer=off"
    );
}
