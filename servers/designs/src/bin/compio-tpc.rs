//! compio-tpc: compio, thread per core, io_uring.
//!
//! N std threads, each pinned to its CPU and running its own compio runtime (the io_uring driver
//! alone: this crate enables no polling fallback, and a worker refuses to start on any other
//! driver), each accepting on its own listener with `SO_REUSEPORT` set explicitly (bench-core's
//! `net::listen_reuseport`, handed over with `from_std`: compio's own `bind` sets no
//! `SO_REUSEPORT`). A connection is a `compio::runtime::spawn`ed task that never leaves its
//! thread, with owned `BUF_SIZE` buffers, as in compio's examples. compio's `thread_affinity`
//! would pin too, but silently drops CPUs outside the process's mask, so bench-core pins (a
//! benchmark on the wrong CPU must fail). Versus monoio-tpc only the runtime differs: compio's
//! executor and driver (completion-based, like monoio's) instead of monoio's. The main thread
//! stops workers through `owned_buf::StopLines`, read with compio's own I/O.
//!
//! Set-up (`authors_proactor`): as compio's own documentation advises for its io_uring driver
//! (the crate's top-level "Linux io_uring tuning", and `ProactorBuilder::coop_taskrun`: "optimize
//! performance for most cases, especially compio is a single thread runtime"): `single_issuer`,
//! `coop_taskrun` and `taskrun_flag`; connections come from `TcpListener::incoming()`, one
//! multishot accept per listener. Under `BENCH_RUNTIME_SETTINGS=defaults`: `RuntimeBuilder::new()`
//! untouched and one `accept()` at a time. Reads stay single-shot `recv`s into the connection's
//! own buffer in both (see docs/fairness.md for why `read_multi` is not used).

use std::io;
use std::ops::Range;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config, Protocol, Session};
use compio::buf::{IntoInner, IoBuf};
use compio::driver::{DriverType, ProactorBuilder};
use compio::io::{AsyncRead, AsyncWrite};
use compio::net::{TcpListener, TcpStream, UnixStream};
use compio::runtime::RuntimeBuilder;
use compio::BufResult;
use futures_lite::{future, StreamExt};
use server_designs::owned_buf::{stage, Outgoing, StopLines};

const DESIGN: &str = "compio-tpc";

/// compio's io_uring driver as compio's documentation advises (see the top comment).
fn authors_proactor() -> ProactorBuilder {
    let mut proactor = ProactorBuilder::new();
    proactor
        .single_issuer(true)
        .coop_taskrun(true)
        .taskrun_flag(true);
    proactor
}

/// What `main` builds, as the settings line reports it; 1024 entries and event interval 61 are
/// compio's defaults (`ProactorBuilder::new`, `RuntimeBuilder::new`), kept in both.
fn settings(profile: Profile) -> Settings {
    let authors = profile.authors();
    Settings::new(DESIGN, profile)
        .with("driver", "io_uring")
        .with("entries", 1024u32)
        .with("event_interval", 61u32)
        .with("single_issuer", authors)
        .with("coop_taskrun", authors)
        .with("taskrun_flag", authors)
        .with("defer_taskrun", false)
        .with("accept", if authors { "multishot" } else { "single-shot" })
        .with("recv", "single-shot, into the connection's buffer")
}

fn main() {
    let cfg = Config::from_env();
    let profile = Profile::from_env();
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let (stop, stop_ends) = StopLines::new(cfg.threads).unwrap_or_else(fatal);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, (listener, stop_end)) in listeners.into_iter().zip(stop_ends).enumerate() {
        let cfg = cfg.clone();
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let mut builder = RuntimeBuilder::new();
            if profile.authors() {
                builder.with_proactor(authors_proactor());
            }
            let rt = builder
                .build()
                .unwrap_or_else(|e| fatal(format_args!("{DESIGN}: compio runtime: {e}")));
            if rt.driver_type() != DriverType::IoUring {
                fatal::<()>(format_args!(
                    "{DESIGN}: compio chose the {:?} driver, not io_uring",
                    rt.driver_type()
                ));
            }
            let counters = Rc::new(LocalCounters::default());
            rt.block_on(async {
                // Registered with this thread's driver, so inside its runtime.
                let listener = TcpListener::from_std(listener).unwrap_or_else(fatal);
                let stop_end = UnixStream::from_std(stop_end).unwrap_or_else(fatal);
                workers_ready.wait();
                let accept = async {
                    if profile.authors() {
                        accept_multishot(&listener, cfg.protocol, &counters).await
                    } else {
                        accept_loop(&listener, cfg.protocol, &counters).await
                    }
                };
                future::or(accept, stopped(stop_end)).await;
            });
            // Nothing runs outside `block_on`: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    bench_core::ready_with(&settings(profile));

    signals.wait();
    stop.stop();
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}

async fn accept_loop(listener: &TcpListener, protocol: Protocol, counters: &Rc<LocalCounters>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                compio::runtime::spawn(serve(stream, protocol, counters.clone())).detach();
            }
            Err(e) => {
                eprintln!("accept: {e}");
                compio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// `accept_loop` with one multishot accept: each connection is a completion of the same
/// operation, which compio re-arms if the kernel ends it.
async fn accept_multishot(
    listener: &TcpListener,
    protocol: Protocol,
    counters: &Rc<LocalCounters>,
) {
    let mut incoming = std::pin::pin!(listener.incoming());
    while let Some(accepted) = incoming.next().await {
        match accepted {
            Ok(stream) => {
                compio::runtime::spawn(serve(stream, protocol, counters.clone())).detach();
            }
            Err(e) => {
                eprintln!("accept: {e}");
                compio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Returns when the main thread closes its end of the stop line.
async fn stopped(mut stop_end: UnixStream) {
    // Anything but data (EOF or an error) means the main thread's end is gone.
    while let BufResult(Ok(1..), _) = stop_end.read(Vec::with_capacity(1)).await {}
}

async fn serve(mut stream: TcpStream, protocol: Protocol, counters: Rc<LocalCounters>) {
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&mut stream, Session::new(protocol), &counters).await;
}

async fn run(
    stream: &mut TcpStream,
    mut session: Session,
    counters: &LocalCounters,
) -> io::Result<()> {
    net::configure_accepted(stream)?;
    let mut read_buf = bench_core::read_buffer();
    let mut write_buf = Vec::new();
    loop {
        // compio reads to the start of the buffer and sets its length to what was read.
        let BufResult(n, buf) = stream.read(read_buf).await;
        read_buf = buf;
        let n = n?;
        if n == 0 {
            // The peer half-closed, and every reply has been written: close.
            return Ok(());
        }
        let staged = stage(&mut session, &read_buf[..n], &mut write_buf, counters);
        match staged.outgoing {
            Outgoing::Nothing => {}
            Outgoing::InRead(range) => {
                read_buf = write_all(stream, read_buf, range, counters).await?
            }
            Outgoing::InWrite => {
                let all = 0..write_buf.len();
                write_buf = write_all(stream, write_buf, all, counters).await?;
            }
        }
        if staged.close {
            return Ok(());
        }
    }
}

/// Writes `buf[range]`, retrying partial writes, and hands the buffer back.
async fn write_all(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    mut range: Range<usize>,
    counters: &LocalCounters,
) -> io::Result<Vec<u8>> {
    while !range.is_empty() {
        let BufResult(written, slice) = stream.write(buf.slice(range.clone())).await;
        buf = slice.into_inner();
        match written? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                counters.add(Field::BytesOut, n as u64);
                range.start += n;
            }
        }
    }
    Ok(buf)
}
