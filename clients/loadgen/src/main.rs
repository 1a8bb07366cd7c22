//! loadgen: the measuring instrument (docs/loadgen.md); the pipeline is described in `lib.rs`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use loadgen::cli::{self, Command, Config, IoKind, ProtocolKind};
use loadgen::hiccup::Meters;
use loadgen::hlog::HlogWriter;
use loadgen::http::{self, Http};
use loadgen::protocol::Echo;
use loadgen::recorder::Window;
use loadgen::report::{Aggregator, ClockOut, Document};
use loadgen::worker::{self, WorkerSpec};
use loadgen::{sys, uring_ring};

/// Slack past `warmup + duration + timeout` before the main thread stops waiting for threads.
const GRACE_NS: u64 = 1_000_000_000;

fn main() {
    let cfg = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help(text)) => {
            print!("{text}");
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
    let hlog = cfg.hlog.as_ref().map(|path| match File::create(path) {
        Ok(f) => BufWriter::new(f),
        Err(e) => fail_args(&format!("--hlog {}: {e}", path.display())),
    });

    let (doc, all_threads_finished, hlog_result) = run(&cfg, hlog);

    let written = serde_json::to_writer(&mut out, &doc)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        eprintln!("error: writing the result: {e}");
        exit(1);
    }
    if let Err(e) = hlog_result {
        eprintln!("error: writing the HdrHistogram log: {e}");
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
/// or did not finish by the hard deadline (the document then holds what did arrive); the third
/// is the outcome of writing the HdrHistogram log.
fn run(cfg: &Config, mut hlog: Option<BufWriter<File>>) -> (Document, bool, io::Result<()>) {
    sys::raise_fd_limit();
    if cfg.io == IoKind::Uring {
        // What every client thread's ring will get (the same kernel): said once, before any load.
        match uring_ring::setup(1, true) {
            Ok(ring) => {
                eprintln!("loadgen: io_uring features: {}", ring.features);
                if !ring.features.recv_multishot {
                    eprintln!(
                        "loadgen: io_uring: no multishot receive (Linux 6.0) or its buffer ring \
                         refused; single-shot receives into per-connection buffers"
                    );
                }
            }
            Err(e) => fail_args(&format!(
                "--io uring: io_uring cannot be used here: {e} (use --io epoll)"
            )),
        }
    }
    if let Some(cpus) = &cfg.cpus {
        // Keep the main thread (and the threads it spawns, until they pin) off the server's CPUs.
        if let Err(e) = sys::pin_current_thread(cpus) {
            fail_args(&format!("--cpus: cannot pin: {e}"));
        }
    }
    let (tx, rx) = mpsc::channel();
    // --start-at: wait for the common instant in this host's wall clock (off the hot path).
    let start_late_ns = cfg.start_at_ns.map(sys::wait_until_realtime);
    let (t0, t0_unix_ns) = (sys::now_ns(), sys::realtime_ns());
    let window = Window {
        start: t0 + cfg.warmup_ns(),
        end: t0 + cfg.warmup_ns() + cfg.duration_ns(),
        interval: cfg.interval_ns(),
    };
    // Set when the main thread gives up on the threads, so the meters stop too.
    static STOP_METERS: AtomicBool = AtomicBool::new(false);
    let meters = if cfg.hiccup {
        match Meters::start(
            cfg.cpus.as_deref(),
            window.start,
            window.end,
            None,
            &STOP_METERS,
        ) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("error: cannot start the hiccup meter: {e}");
                None
            }
        }
    } else {
        None
    };
    let request = http::request(&cfg.path, &cfg.host, cfg.port);
    let mut handles = Vec::new();
    for t in 0..cfg.threads {
        let spec = WorkerSpec::new(cfg, t, t0, window);
        let (tx, protocol, size, request) = (tx.clone(), cfg.protocol, cfg.size, request.clone());
        let handle = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || {
                let result = match protocol {
                    ProtocolKind::Echo => worker::run(spec, |id| Echo::new(size, id), tx),
                    ProtocolKind::Http => worker::run(spec, |_| Http::new(request.clone()), tx),
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

    let mut serializer = V2DeflateSerializer::new();
    let start_epoch_s = sys::epoch_seconds_at(window.start);
    let log = hlog
        .as_mut()
        .map(|out| HlogWriter::new(out, &mut serializer, start_epoch_s));
    let mut agg = Aggregator::new(cfg, log);
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
    let (mut doc, logged) = agg.into_document(cfg);
    doc.clock = Some(ClockOut {
        start_at_ns: cfg.start_at_ns,
        start_late_ns,
        t0_unix_ns,
        window_start_unix_ns: t0_unix_ns + cfg.warmup_ns(),
        window_end_unix_ns: t0_unix_ns + cfg.warmup_ns() + cfg.duration_ns(),
    });
    if !finished {
        STOP_METERS.store(true, Ordering::Relaxed);
    }
    doc.hiccup = meters.and_then(|m| match m.join() {
        Ok(report) => Some(report),
        Err(e) => {
            eprintln!("error: hiccup meter: {e}");
            None
        }
    });
    let flushed = hlog.map_or(Ok(()), |mut out| out.flush());
    (doc, finished, logged.and(flushed))
}
