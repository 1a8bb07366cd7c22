//! tokio-tpc-dispatch: thread per core behind one acceptor.
//!
//! N std threads, each pinned to its CPU and running its own tokio current-thread runtime and
//! `LocalSet`, as in tokio-tpc; but there is ONE listener, and its accept loop, a task on worker
//! 0, deals the new connections to the N workers in turn (round robin). A connection for another
//! worker leaves worker 0's runtime as a std `TcpStream` (`into_std`), crosses a per-worker
//! channel, and is registered with the receiving worker's runtime, on which it then stays. This is
//! how actix-web (an acceptor thread feeding per-core single-threaded workers) and Seastar (shard
//! 0 accepting for every shard) avoid `SO_REUSEPORT`'s hashing, which can give one core twice the
//! connections of another. Versus tokio-tpc only the placement of connections differs: even
//! counts per worker whatever the hash, for the price of an accept loop competing with worker 0's
//! connections and a hand-off (channel, wake-up, epoll registration moved) per connection.
//!
//! The accept loop runs as a task on worker 0, Seastar's choice, rather than on actix's extra
//! acceptor thread: a thread of its own would either run outside the N CPUs the design is given or
//! share worker 0's CPU through the OS scheduler; as a task it shares it through tokio's.

use std::future;
use std::net::TcpStream as StdTcpStream;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};

use bench_core::counters::LocalCounters;
use bench_core::signal::{self, ShutdownSignals};
use bench_core::{fatal, net, report, Config};
use server_designs::tokio_conn::{accept_loop, serve};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::watch;
use tokio::task::{self, LocalSet};

const DESIGN: &str = "tokio-tpc-dispatch";

fn main() {
    let cfg = Config::from_env();
    let signals = ShutdownSignals::block();
    let mut listener = Some(net::listen(cfg.addr()).unwrap_or_else(fatal));

    // Worker 0 keeps its own share; workers 1..N receive theirs over these channels.
    let (handoffs, inboxes): (Vec<_>, Vec<_>) = (1..cfg.threads)
        .map(|_| unbounded_channel::<StdTcpStream>())
        .unzip();
    let mut handoffs = Some(handoffs);
    let inboxes = std::iter::once(None).chain(inboxes.into_iter().map(Some));
    let (stop, stop_rx) = watch::channel(false);
    let (counters_tx, counters_rx) = mpsc::channel();
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    for (worker, inbox) in inboxes.enumerate() {
        // Worker 0 gets the listener and the senders, every other worker its inbox.
        let acceptor = match worker {
            0 => listener.take().zip(handoffs.take()),
            _ => None,
        };
        let (cfg, mut stop_rx) = (cfg.clone(), stop_rx.clone());
        let (counters_tx, workers_ready) = (counters_tx.clone(), workers_ready.clone());
        let run = move || {
            cfg.pin_worker(worker);
            let rt = Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(fatal);
            let acceptor = acceptor.map(|(listener, handoffs)| {
                let _runtime = rt.enter();
                (
                    TcpListener::from_std(listener).unwrap_or_else(fatal),
                    handoffs,
                )
            });
            let counters = Rc::new(LocalCounters::default());
            workers_ready.wait();
            LocalSet::new().block_on(&rt, async {
                let serve_here = |stream| {
                    task::spawn_local(serve(stream, cfg.protocol, counters.clone()));
                };
                let work = async {
                    if let Some((listener, handoffs)) = &acceptor {
                        dispatch(listener, handoffs, serve_here).await;
                    } else if let Some(mut inbox) = inbox {
                        while let Some(stream) = inbox.recv().await {
                            // Fails only if the runtime cannot register the socket (ENOMEM).
                            match TcpStream::from_std(stream) {
                                Ok(stream) => serve_here(stream),
                                Err(e) => eprintln!("worker {worker}: register connection: {e}"),
                            }
                        }
                        // Worker 0 is gone (shutdown): keep serving until told to stop.
                        future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    () = work => {}
                    _ = stop_rx.changed() => {}
                }
            });
            // The LocalSet, and with it every connection, is gone: the counters are final.
            let _ = counters_tx.send((worker, counters.snapshot()));
        };
        bench_core::spawn_worker(worker, run);
    }
    workers_ready.wait();
    bench_core::ready();

    signals.wait();
    stop.send_replace(true);
    report::print(
        DESIGN,
        &cfg,
        signal::collect_within_grace(&counters_rx, cfg.threads),
    );
}

/// Worker 0's accept loop: deals connections to workers 0, 1, .., N-1, 0, .. in turn, serving its
/// own share on the spot and handing the others over.
async fn dispatch(
    listener: &TcpListener,
    handoffs: &[UnboundedSender<StdTcpStream>],
    mut serve_here: impl FnMut(TcpStream),
) {
    let mut next = 0;
    accept_loop(listener, |stream| {
        let worker = next;
        next = (next + 1) % (handoffs.len() + 1);
        if worker == 0 {
            serve_here(stream);
            return;
        }
        // Leaves this runtime's epoll; the receiver registers it with its own. Neither step fails
        // for a healthy socket, and a dropped connection is the client's loss alone.
        match stream.into_std() {
            Ok(stream) => {
                let _ = handoffs[worker - 1].send(stream);
            }
            Err(e) => eprintln!("hand-off to worker {worker}: {e}"),
        }
    })
    .await;
}
