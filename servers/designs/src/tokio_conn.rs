//! The accept loop and the connection loop of every tokio design: same buffer, socket options and
//! session code, so that the designs differ only in where these futures run.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use bench_core::counters::{Counters, Field, SharedCounters};
use bench_core::{fatal, net, read_buffer, Config, Protocol, Session};
use futures_lite::stream::{self, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};

/// The multi-thread runtime of the work-stealing tokio designs (tokio-ws, tokio-ws-reuseport),
/// built the same way for both: `cfg.threads` workers named `worker`, worker *i* pinned to the
/// *i*-th CPU and bound to `counters[i]`. Returns once every worker runs.
pub fn multi_thread_runtime(cfg: &Config, counters: &'static [SharedCounters]) -> Runtime {
    // tokio runs its workers on blocking-pool threads, so `on_thread_start` would also fire for
    // blocking threads (these designs spawn none). The workers are the first `threads` threads,
    // all started while the runtime is built; any later thread is left unpinned and uncounted.
    let started = AtomicUsize::new(0);
    let workers_ready = Arc::new(Barrier::new(cfg.threads + 1));
    let rt = Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .thread_name("worker")
        .enable_all()
        .on_thread_start({
            let (cfg, workers_ready) = (cfg.clone(), workers_ready.clone());
            move || {
                let worker = started.fetch_add(1, Ordering::Relaxed);
                if worker < cfg.threads {
                    cfg.pin_worker(worker);
                    counters[worker].bind_to_current_thread();
                    workers_ready.wait();
                }
            }
        })
        .build()
        .unwrap_or_else(fatal);
    workers_ready.wait();
    rt
}

/// Accepts connections until the future is dropped, handing each to `spawn`.
pub async fn accept_loop(listener: &TcpListener, mut spawn: impl FnMut(TcpStream)) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn(stream),
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves one connection until the peer closes it or an I/O error ends it.
pub async fn serve(mut stream: TcpStream, protocol: Protocol, counters: impl Counters) {
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&mut stream, Session::new(protocol), &counters).await;
}

async fn run(
    stream: &mut TcpStream,
    mut session: Session,
    counters: &impl Counters,
) -> io::Result<()> {
    net::configure_accepted(stream)?;
    let mut buf = read_buffer();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // The peer half-closed, and every reply has been written: close.
            return Ok(());
        }
        counters.add(Field::BytesIn, n as u64);
        let reply = session.on_read(&buf[..n]);
        counters.add(Field::Messages, reply.messages);
        let mut rest = reply.bytes;
        while !rest.is_empty() {
            // `write` rather than `write_all`: each piece is counted by the worker that wrote
            // it, even if the task moves to another worker mid-reply.
            let written = stream.write(rest).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            counters.add(Field::BytesOut, written as u64);
            rest = &rest[written..];
        }
        if reply.close {
            return Ok(());
        }
    }
}

/// The accepted connections as a stream, for the structured designs (`co().for_each`). Backs off
/// on an accept error as `accept_loop` does. `unfold` keeps the pending `accept` inside the
/// stream, so a `next()` dropped by a race does not drop it.
pub fn accept_stream(listener: &TcpListener) -> impl Stream<Item = TcpStream> + '_ {
    stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => return Some((stream, listener)),
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(net::ACCEPT_BACKOFF).await;
                }
            }
        }
    })
}
