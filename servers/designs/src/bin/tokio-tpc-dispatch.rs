//! tokio-tpc-dispatch: thread per core behind one acceptor thread.
//!
//! N std threads, each pinned to its CPU and running its own tokio `LocalRuntime`, as in
//! tokio-tpc; but there is ONE listener, accepted by a dedicated acceptor thread that deals the
//! new connections to the N workers in turn (round robin). This is actix-web's design
//! (actix-server's `Accept` loop runs on its own "actix-server acceptor" thread and hands each
//! connection to the next single-threaded worker over a channel). A connection leaves the
//! acceptor's runtime as a std `TcpStream` (`into_std`), crosses the worker's channel, and is
//! registered with that worker's runtime, on which it then stays. Versus tokio-tpc only the
//! accept topology differs: even counts per worker whatever `SO_REUSEPORT`'s hash would do, for
//! the price of a hand-off per connection (channel, wake-up, epoll registration moved) and one
//! more thread. That thread is confined to the worker CPUs (never the load generator's), so it
//! shares them with the workers through the OS scheduler, as actix's acceptor does.

use std::net::TcpStream as StdTcpStream;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::LocalCounters;
use bench_core::settings::{Profile, Settings};
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, serve};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, LocalOptions};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::watch;
use tokio::task;

const DESIGN: &str = "tokio-tpc-dispatch";

fn main() {
    let cfg = Config::from_env();
    // Read for its check only: this runtime is set up the same either way (docs/fairness.md).
    let settings = Settings::new(DESIGN, Profile::from_env())
        // tokio 1.54's defaults for `Builder::new_current_thread`.
        .with("builder", "new_current_thread, enable_all, build_local")
        .with("event_interval", 61u32)
        .with("max_io_events_per_tick", 1024u32);
    let signals = ShutdownSignals::block();
    // Before any thread exists: the acceptor inherits it, the workers then pin themselves.
    cfg.confine_to_worker_cpus();
    let listener = net::listen(cfg.addr()).unwrap_or_else(fatal);

    let (handoffs, inboxes): (Vec<_>, Vec<_>) = (0..cfg.threads)
        .map(|_| unbounded_channel::<StdTcpStream>())
        .unzip();
    let (stop, stop_rx) = watch::channel(false);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 2));
    for (worker, mut inbox) in inboxes.into_iter().enumerate() {
        let (cfg, mut stop_rx) = (cfg.clone(), stop_rx.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let rt = Builder::new_current_thread()
                .enable_all()
                .build_local(LocalOptions::default())
                .unwrap_or_else(fatal);
            let counters = Rc::new(LocalCounters::default());
            workers_ready.wait();
            rt.block_on(async {
                let receive = async {
                    while let Some(stream) = inbox.recv().await {
                        // Fails only if the runtime cannot register the socket (ENOMEM).
                        match TcpStream::from_std(stream) {
                            Ok(stream) => {
                                task::spawn_local(serve(stream, cfg.protocol, counters.clone()));
                            }
                            Err(e) => eprintln!("worker {worker}: register connection: {e}"),
                        }
                    }
                    // The acceptor is gone (shutdown): keep serving until told to stop.
                    std::future::pending::<()>().await;
                };
                tokio::select! {
                    () = receive => {}
                    _ = stop_rx.changed() => {}
                }
            });
            // Connections are tasks of `rt`, which runs only inside `block_on`: the counters are
            // final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }

    let (acceptor_ready, mut stop_rx) = (workers_ready.clone(), stop_rx.clone());
    std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || {
            let rt = Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(fatal);
            let listener = {
                let _runtime = rt.enter();
                TcpListener::from_std(listener).unwrap_or_else(fatal)
            };
            acceptor_ready.wait();
            rt.block_on(async {
                tokio::select! {
                    () = dispatch(&listener, &handoffs) => {}
                    _ = stop_rx.changed() => {}
                }
            });
        })
        .unwrap_or_else(fatal);
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

/// The acceptor's loop: deals connections to workers 0, 1, .., N-1, 0, .. in turn.
async fn dispatch(listener: &TcpListener, handoffs: &[UnboundedSender<StdTcpStream>]) {
    let mut next = 0;
    accept_loop(listener, |stream| {
        let worker = next;
        next = (next + 1) % handoffs.len();
        // Leaves this runtime's epoll; the receiver registers it with its own. Neither step fails
        // for a healthy socket, and a dropped connection is the client's loss alone.
        match stream.into_std() {
            Ok(stream) => {
                let _ = handoffs[worker].send(stream);
            }
            Err(e) => eprintln!("hand-off to worker {worker}: {e}"),
        }
    })
    .await;
}
