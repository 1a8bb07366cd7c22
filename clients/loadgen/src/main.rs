//! loadgen: the measuring instrument (docs/loadgen.md).
//!
//! Pipeline: `cli` (flags -> `Config`) -> `worker` threads, each an event loop over its own
//! `conn`s speaking a `protocol`, timing answers into its `recorder` (per-interval `histogram`s
//! and `stats`) -> channel -> `report` (merge by adding counts, JSON document) -> stdout/file.

mod cli;
mod conn;
mod histogram;
mod protocol;
mod recorder;
mod report;
mod stats;
mod sys;
mod worker;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::exit;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use cli::{Command, Config, ProtocolKind};
use protocol::Echo;
use recorder::Window;
use report::{Aggregator, Document};
use worker::WorkerSpec;

/// Closed loop keeps one request outstanding per connection (`--pipeline` will set this).
const DEPTH: usize = 1;
/// Slack past `warmup + duration + timeout` before the main thread stops waiting for threads.
const GRACE_NS: u64 = 1_000_000_000;

fn main() {
    let cfg = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return;
        }
        Err(e) => fail_args(&e),
    };
    // Opened before the run: an unwritable path is a bad argument, not a lost measurement.
    let mut out: BufWriter<Box<dyn Write>> = BufWriter::new(match &cfg.out {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(f),
            Err(e) => fail_args(&format!("--out {}: {e}", path.display())),
        },
        None => Box::new(io::stdout()),
    });

    let (doc, all_threads_finished) = run(&cfg);

    let written = serde_json::to_writer(&mut out, &doc)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        eprintln!("error: writing the result: {e}");
        exit(1);
    }
    // 0 only when the measurement is whole and at least one request succeeded in the window.
    exit(if all_threads_finished && doc.summary.requests > 0 {
        0
    } else {
        1
    });
}

fn fail_args(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(2);
}

/// Runs the threads and merges what they report. The second value is false when a thread failed
/// or did not finish by the hard deadline (the document then holds what did arrive).
fn run(cfg: &Config) -> (Document, bool) {
    sys::raise_fd_limit();
    if let Some(cpus) = &cfg.cpus {
        // Keep the main thread (and the threads it spawns, until they pin) off the server's CPUs.
        if let Err(e) = sys::pin_current_thread(cpus) {
            fail_args(&format!("--cpus: cannot pin: {e}"));
        }
    }
    let (tx, rx) = mpsc::channel();
    let t0 = sys::now_ns();
    let window = Window {
        start: t0 + cfg.warmup_ns(),
        end: t0 + cfg.warmup_ns() + cfg.duration_ns(),
        interval: cfg.interval_ns(),
    };
    let mut handles = Vec::new();
    let mut first = 0;
    for t in 0..cfg.threads {
        let n = cfg.connections_of(t);
        let spec = WorkerSpec {
            thread: t,
            cpu: cfg.cpu_of(t),
            connections: first..first + n,
            addr: cfg.addr,
            timeout_ns: cfg.timeout_ns(),
            depth: DEPTH,
            window,
        };
        first += n;
        let (tx, protocol, size) = (tx.clone(), cfg.protocol, cfg.size);
        let handle = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || {
                let result = match protocol {
                    ProtocolKind::Echo => worker::run(spec, |id| Echo::new(size, id), tx),
                };
                if let Err(e) = result {
                    eprintln!("error: client thread {t}: {e}");
                }
            });
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => eprintln!("error: cannot start client thread {t}: {e}"),
        }
    }
    drop(tx);

    let mut agg = Aggregator::new(cfg);
    let deadline = window.end + cfg.timeout_ns() + GRACE_NS;
    while !agg.all_done() {
        let left = Duration::from_nanos(deadline.saturating_sub(sys::now_ns()));
        match rx.recv_timeout(left) {
            Ok(msg) => agg.add(msg),
            Err(RecvTimeoutError::Timeout) => {
                eprintln!("error: client threads did not finish by the deadline");
                break;
            }
            Err(RecvTimeoutError::Disconnected) => {
                eprintln!("error: a client thread stopped early");
                break;
            }
        }
    }
    let finished = agg.all_done();
    if finished {
        for h in handles {
            let _ = h.join();
        }
    }
    (agg.into_document(cfg), finished)
}
