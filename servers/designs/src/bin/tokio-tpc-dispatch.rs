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

use bench_core::counters::LocalCounters;
use bench_core::fatal;
use bench_core::runner::{Server, Started, Worker};
use server_designs::tokio_conn::{self, accept_loop, serve, until_stopped, WatchStop};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task;

fn main() {
    let server = Server::from_env("tokio-tpc-dispatch");
    let settings = tokio_conn::current_thread_settings(&server);
    // Before any thread exists: the acceptor inherits it, the workers then pin themselves.
    server.cfg.confine_to_worker_cpus();
    let listener = server.shared_listener();

    let (handoffs, inboxes): (Vec<_>, Vec<_>) = (0..server.cfg.threads)
        .map(|_| unbounded_channel::<StdTcpStream>())
        .unzip();
    let serve_worker = |worker: Worker<UnboundedReceiver<StdTcpStream>, _>| {
        let rt = tokio_conn::local_runtime();
        let counters = Rc::new(LocalCounters::default());
        worker.started.wait();
        let (protocol, index, mut inbox) = (worker.cfg.protocol, worker.index, worker.incoming);
        let receive = async {
            while let Some(stream) = inbox.recv().await {
                // Fails only if the runtime cannot register the socket (ENOMEM).
                match TcpStream::from_std(stream) {
                    Ok(stream) => {
                        task::spawn_local(serve(stream, protocol, counters.clone()));
                    }
                    Err(e) => eprintln!("worker {index}: register connection: {e}"),
                }
            }
            // The acceptor is gone (shutdown): keep serving until told to stop.
            std::future::pending::<()>().await;
        };
        rt.block_on(until_stopped(receive, worker.stop));
        // Connections are tasks of `rt`, which runs only inside `block_on`: the counters are
        // final.
        worker.report.send(counters.snapshot());
    };
    let acceptor = move |started: Started, stop| {
        let rt = Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(fatal);
        let listener = tokio_conn::register(rt.handle(), listener);
        started.wait();
        rt.block_on(until_stopped(dispatch(&listener, &handoffs), stop));
    };
    server.run_per_core_with_helper(
        &settings,
        inboxes,
        WatchStop::new,
        serve_worker,
        ("acceptor", acceptor),
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
