//! monoio-tpc, monoio-epoll-tpc and monoio-tpc-structured: one body, generic over monoio's driver
//! ([`MonoioDriver`]) and how a worker runs its connections ([`Connections`]), so that the
//! designs differ in the driver alone (`IoUringDriver` or `LegacyDriver`, i.e. io_uring or
//! epoll) or in concurrency alone, with the same runtime builder, scheduler, buffers and code.
//!
//! The shape of monoio's own examples and benchmark server: one `RuntimeBuilder::<D>` runtime per
//! thread, each thread pinned to its CPU and accepting on its own `SO_REUSEPORT` listener, one
//! `monoio::spawn`ed task per connection, owned buffers (`AsyncReadRent` / `AsyncWriteRent`).
//! The listener is bench-core's (`net::listen_reuseport`, handed over with `from_std`), so the
//! socket options and backlog are everyone's; monoio's own `bind` would set the same
//! (`SO_REUSEPORT`, `SO_REUSEADDR`, backlog 1024). Every runtime is built with the timer enabled,
//! used only for the accept back-off. The runner (threads, pinning, stop, counters, READY) is
//! bench-core's `Server::run_per_core`; the connection loop is `owned_buf::serve`.

use std::io;
use std::rc::Rc;

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::{Server, StopLines};
use bench_core::settings::Profile;
use futures_concurrency::prelude::*;
use monoio::io::AsyncReadRent;
use monoio::net::{TcpListener, UnixStream};
use monoio::time::TimeDriver;
use monoio::{Driver, IoUringDriver, LegacyDriver, Runtime, RuntimeBuilder};

use crate::accept::{accept_loop, accept_stream};
use crate::owned_buf::serve;

/// The set-up every monoio design shares, so that they differ in the driver alone: monoio's
/// benchmark server (monoio-rs/monoio-benchmark, `monoio-server/src/main.rs`) builds each runtime
/// `with_entries(32768)`, and monoio's configuration guide (`docs/en/configuration.md`) says more
/// entries mean fewer submits under high load; `None` leaves monoio's default (1024: the io_uring
/// driver's ring, or the legacy driver's epoll event buffer). The timer is enabled for the accept
/// back-off only. Nothing is passed through `uring_builder`: neither upstream sets a flag.
fn entries(profile: Profile) -> Option<u32> {
    profile.authors().then_some(32768)
}

/// A monoio driver, with the one runtime builder every monoio design uses.
pub trait MonoioDriver: Driver + Sized + 'static {
    /// The `driver` setting.
    const NAME: &'static str;
    /// What the settings line says of this driver's I/O, after `driver`, `entries` and `timer`.
    const IO: &'static [(&'static str, &'static str)];
    /// `RuntimeBuilder::<Self>`, with `entries` if given, and the timer.
    fn runtime(entries: Option<u32>) -> io::Result<Runtime<TimeDriver<Self>>>;
}

/// Implements [`MonoioDriver`] for a driver type: `RuntimeBuilder::build` exists only per driver
/// type, so the one builder is written once here and expanded for each.
macro_rules! monoio_driver {
    ($driver:ty, $name:expr, $io:expr) => {
        impl MonoioDriver for $driver {
            const NAME: &'static str = $name;
            const IO: &'static [(&'static str, &'static str)] = $io;

            fn runtime(entries: Option<u32>) -> io::Result<Runtime<TimeDriver<Self>>> {
                let builder = RuntimeBuilder::<$driver>::new();
                match entries {
                    Some(entries) => builder.with_entries(entries),
                    None => builder,
                }
                .enable_timer()
                .build()
            }
        }
    };
}

monoio_driver!(
    IoUringDriver,
    "io_uring",
    &[
        ("setup_flags", "none"),
        ("accept", "single-shot"),
        ("recv", "single-shot, into the connection's buffer"),
    ]
);
monoio_driver!(
    LegacyDriver,
    "legacy (epoll)",
    &[
        ("accept", "readiness, then accept"),
        ("recv", "readiness, then read into the connection's buffer"),
    ]
);

/// How a worker runs its connections: the registry's `concurrency` factor.
#[derive(Clone, Copy)]
pub enum Connections {
    /// `monoio::spawn` per connection (task-per-connection).
    Tasks,
    /// One group of futures inside the worker's task (structured): futures-concurrency's
    /// `co().for_each` over the accept stream, no `monoio::spawn`, connections borrowing the
    /// worker's counters.
    Structured,
}

/// The whole server: `design` on driver `D`, its connections run as `connections` says.
pub fn main<D: MonoioDriver>(design: &'static str, connections: Connections) {
    let server = Server::from_env(design);
    let entries = entries(server.profile);
    let settings = D::IO.iter().fold(
        server
            .settings()
            .with("driver", D::NAME)
            // monoio 0.2.4's default (its `IoUringDriver::DEFAULT_ENTRIES`, and the legacy
            // driver's).
            .with("entries", entries.unwrap_or(1024))
            .with("timer", true),
        |settings, &(key, value)| settings.with(key, value),
    );
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, StopLines::new, move |worker| {
        let mut rt = D::runtime(entries)
            .unwrap_or_else(|e| fatal(format_args!("{design}: monoio runtime: {e}")));
        let counters = Rc::new(LocalCounters::default());
        rt.block_on(async {
            // Registered with this thread's driver, so inside its runtime.
            let listener = TcpListener::from_std(worker.incoming).unwrap_or_else(fatal);
            let stop_end = UnixStream::from_std(worker.stop).unwrap_or_else(fatal);
            worker.started.wait();
            let (listener, protocol) = (&listener, worker.cfg.protocol);
            let accept = move || async move { listener.accept().await.map(|(stream, _)| stream) };
            match connections {
                Connections::Tasks => {
                    let spawn = |stream| {
                        monoio::spawn(serve(stream, protocol, counters.clone()));
                    };
                    monoio::select! {
                        () = accept_loop(accept, monoio::time::sleep, spawn) => {}
                        () = stopped(stop_end) => {}
                    }
                }
                Connections::Structured => {
                    let counters = &*counters;
                    let group = accept_stream(accept, monoio::time::sleep)
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
        worker.report.send(counters.snapshot());
    });
}

/// Returns when the main thread closes its end of the stop line.
async fn stopped(mut stop_end: UnixStream) {
    // Anything but data (EOF or an error) means the main thread's end is gone.
    while let (Ok(1..), _) = stop_end.read(vec![0; 1]).await {}
}
