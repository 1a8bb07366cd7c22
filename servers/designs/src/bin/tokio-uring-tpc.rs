//! tokio-uring-tpc: tokio-uring, thread per core, io_uring.
//!
//! UNMAINTAINED UPSTREAM: tokio-uring 0.5 is its last release and the repository sees no
//! active development; it is here because the question names it (monoio against tokio-uring).
//!
//! N std threads, each pinned to its CPU by bench-core before `tokio_uring::Runtime::new` (the
//! crate has no pinning API), each running its own tokio-uring runtime (a tokio current-thread
//! runtime and `LocalSet` whose I/O is submitted to an io_uring, with tokio-uring's default 256
//! entries) and accepting on its own `SO_REUSEPORT` listener (bench-core's, handed over with
//! `from_std`). A connection is a `tokio_uring::spawn`ed task that never leaves its thread, with
//! owned `BUF_SIZE` buffers, as in tokio-uring's examples. Versus tokio-tpc the scheduler is the
//! same (tokio's current-thread runtime and `LocalSet`) but every socket operation is an io_uring
//! submission instead of an epoll registration: the I/O model differs, and with it the runtime
//! layer that drives I/O. Versus monoio-tpc only the runtime differs. tokio's wakers work across
//! threads, so the main thread stops the workers through a `watch` channel, as in tokio-tpc.
//!
//! Set-up: tokio-uring's own examples (`examples/tcp_listener.rs`, `examples/wrk-bench.rs`, a
//! server for wrk) and monoio's benchmark's tokio-uring server all start with
//! `tokio_uring::start`, i.e. `tokio_uring::builder()` untouched: 256 entries, no setup flag.
//! So its authors' set-up is its defaults, the same under `BENCH_RUNTIME_SETTINGS=defaults`.

use std::io;
use std::ops::Range;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config, Protocol, Session};
use server_designs::owned_buf::{stage, Outgoing};
use tokio::sync::watch;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

const DESIGN: &str = "tokio-uring-tpc";

fn main() {
    let cfg = Config::from_env();
    // Read for its check only: both set-ups are the same here (see the top comment).
    let profile = Profile::from_env();
    let settings = Settings::new(DESIGN, profile)
        .with("driver", "io_uring")
        // `tokio_uring::builder()`'s default.
        .with("entries", 256u32)
        .with("setup_flags", "none")
        .with("accept", "single-shot")
        .with("recv", "single-shot, into the connection's buffer");
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let (stop, stop_rx) = watch::channel(false);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, listener) in listeners.into_iter().enumerate() {
        let (cfg, mut stop_rx) = (cfg.clone(), stop_rx.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let rt = tokio_uring::Runtime::new(&tokio_uring::builder())
                .unwrap_or_else(|e| fatal(format_args!("{DESIGN}: tokio-uring runtime: {e}")));
            let counters = Rc::new(LocalCounters::default());
            rt.block_on(async {
                // Registered with this thread's ring, so inside its runtime.
                let listener = TcpListener::from_std(listener);
                workers_ready.wait();
                tokio::select! {
                    () = accept_loop(&listener, cfg.protocol, &counters) => {}
                    _ = stop_rx.changed() => {}
                }
            });
            // Nothing runs outside `block_on`: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    bench_core::ready_with(&settings);

    signals.wait();
    stop.send_replace(true);
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
                tokio_uring::spawn(serve(stream, protocol, counters.clone()));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve(stream: TcpStream, protocol: Protocol, counters: Rc<LocalCounters>) {
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&stream, Session::new(protocol), &counters).await;
}

async fn run(stream: &TcpStream, mut session: Session, counters: &LocalCounters) -> io::Result<()> {
    net::configure_accepted(stream)?;
    let mut read_buf = bench_core::read_buffer();
    let mut write_buf = Vec::new();
    loop {
        // tokio-uring only ever grows a Vec's length to what was read: start from empty.
        read_buf.clear();
        let (n, buf) = stream.read(read_buf).await;
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
    stream: &TcpStream,
    mut buf: Vec<u8>,
    mut range: Range<usize>,
    counters: &LocalCounters,
) -> io::Result<Vec<u8>> {
    while !range.is_empty() {
        let (written, slice) = stream.write(buf.slice(range.clone())).submit().await;
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
