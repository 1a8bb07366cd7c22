//! monoio-tpc and monoio-epoll-tpc: one body, generic over monoio's driver, so that the two
//! designs differ in the driver alone (`IoUringDriver` or `LegacyDriver`, i.e. io_uring or
//! epoll), with the same runtime, scheduler, tasks, buffers and code.
//!
//! The shape of monoio's own examples and benchmark server: one `RuntimeBuilder::<D>` runtime per
//! thread, each thread pinned to its CPU and accepting on its own `SO_REUSEPORT` listener, one
//! `monoio::spawn`ed task per connection, owned buffers (`AsyncReadRent` / `AsyncWriteRent`).
//! The listener is bench-core's (`net::listen_reuseport`, handed over with `from_std`), so the
//! socket options and backlog are everyone's; monoio's own `bind` would set the same
//! (`SO_REUSEPORT`, `SO_REUSEADDR`, backlog 1024). Each bin builds its runtime with the timer
//! enabled, used only for the accept back-off.

use std::io;
use std::ops::{Deref, Range};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::{Counters, Field, LocalCounters};
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config, Protocol, Session};
use futures_concurrency::prelude::*;
use futures_lite::stream::{self, Stream};
use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::{TcpListener, TcpStream, UnixStream};
use monoio::{Driver, Runtime};

use crate::owned_buf::{stage, Outgoing, StopLines};

/// The set-up both monoio designs share, so that they differ in the driver alone: monoio's
/// benchmark server (monoio-rs/monoio-benchmark, `monoio-server/src/main.rs`) builds each runtime
/// `with_entries(32768)`, and monoio's configuration guide (`docs/en/configuration.md`) says more
/// entries mean fewer submits under high load; `None` leaves monoio's default (1024: the io_uring
/// driver's ring, or the legacy driver's epoll event buffer). The timer is enabled for the accept
/// back-off only. Nothing is passed through `uring_builder`: neither upstream sets a flag.
pub fn entries(profile: Profile) -> Option<u32> {
    profile.authors().then_some(32768)
}

/// What `entries` gives, as the settings line reports it (each bin adds its driver's own).
pub fn settings(design: &'static str, driver: &str, profile: Profile) -> Settings {
    Settings::new(design, profile)
        .with("driver", driver)
        // monoio 0.2.4's default (its `IoUringDriver::DEFAULT_ENTRIES`, and the legacy driver's).
        .with("entries", entries(profile).unwrap_or(1024))
        .with("timer", true)
}

/// The whole server, each worker on a runtime from `build`, printing `design` in its counters
/// line and `settings` before READY.
pub fn main<D: Driver + 'static>(
    design: &'static str,
    settings: Settings,
    build: impl Fn() -> io::Result<Runtime<D>> + Clone + Send + 'static,
) {
    serve_workers(design, settings, build, Connections::Tasks);
}

/// The same server with each worker's connections polled as one group inside its one task
/// (monoio-tpc-structured): futures-concurrency's `co().for_each` over the accept stream, no
/// `monoio::spawn`, connections borrowing the worker's counters.
pub fn main_structured<D: Driver + 'static>(
    design: &'static str,
    settings: Settings,
    build: impl Fn() -> io::Result<Runtime<D>> + Clone + Send + 'static,
) {
    serve_workers(design, settings, build, Connections::Structured);
}

/// How a worker runs its connections: the registry's `concurrency` factor.
#[derive(Clone, Copy)]
enum Connections {
    /// `monoio::spawn` per connection (task-per-connection).
    Tasks,
    /// One group of futures inside the worker's task (structured).
    Structured,
}

fn serve_workers<D: Driver + 'static>(
    design: &'static str,
    settings: Settings,
    build: impl Fn() -> io::Result<Runtime<D>> + Clone + Send + 'static,
    connections: Connections,
) {
    let cfg = Config::from_env();
    let signals = ShutdownSignals::block();
    let listeners: Vec<_> = (0..cfg.threads)
        .map(|_| net::listen_reuseport(cfg.addr()).unwrap_or_else(fatal))
        .collect();

    let (stop, stop_ends) = StopLines::new(cfg.threads).unwrap_or_else(fatal);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, (listener, stop_end)) in listeners.into_iter().zip(stop_ends).enumerate() {
        let (cfg, build) = (cfg.clone(), build.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let mut rt =
                build().unwrap_or_else(|e| fatal(format_args!("{design}: monoio runtime: {e}")));
            let counters = Rc::new(LocalCounters::default());
            rt.block_on(async {
                // Registered with this thread's driver, so inside its runtime.
                let listener = TcpListener::from_std(listener).unwrap_or_else(fatal);
                let stop_end = UnixStream::from_std(stop_end).unwrap_or_else(fatal);
                workers_ready.wait();
                match connections {
                    Connections::Tasks => monoio::select! {
                        () = accept_loop(&listener, cfg.protocol, &counters) => {}
                        () = stopped(stop_end) => {}
                    },
                    Connections::Structured => {
                        let (protocol, counters) = (cfg.protocol, &*counters);
                        let group = accept_stream(&listener)
                            .co()
                            .for_each(|stream| serve(stream, protocol, counters));
                        monoio::select! {
                            () = group => {}
                            () = stopped(stop_end) => {}
                        }
                    }
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
    stop.stop();
    report::print(
        design,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}

async fn accept_loop(listener: &TcpListener, protocol: Protocol, counters: &Rc<LocalCounters>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                monoio::spawn(serve(stream, protocol, counters.clone()));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                monoio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The accepted connections as a stream, for the structured design. `unfold` keeps the pending
/// `accept` inside the stream, so a `next()` dropped by a race (`co().for_each` races the
/// stream against the group) does not drop it: a dropped io_uring accept would lose a
/// connection the kernel had already accepted (monoio ignores an abandoned operation's result).
fn accept_stream(listener: &TcpListener) -> impl Stream<Item = TcpStream> + '_ {
    stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => return Some((stream, listener)),
                Err(e) => {
                    eprintln!("accept: {e}");
                    monoio::time::sleep(net::ACCEPT_BACKOFF).await;
                }
            }
        }
    })
}

/// Returns when the main thread closes its end of the stop line.
async fn stopped(mut stop_end: UnixStream) {
    // Anything but data (EOF or an error) means the main thread's end is gone.
    while let (Ok(1..), _) = stop_end.read(vec![0; 1]).await {}
}

/// `counters`: an `Rc` in a spawned task, a plain reference in the structured group.
async fn serve(
    mut stream: TcpStream,
    protocol: Protocol,
    counters: impl Deref<Target = LocalCounters>,
) {
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
        // monoio reads into the whole capacity and sets the length to what was read.
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
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    mut range: Range<usize>,
    counters: &LocalCounters,
) -> io::Result<Vec<u8>> {
    while !range.is_empty() {
        let (written, slice) = stream.write(buf.slice(range.clone())).await;
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
