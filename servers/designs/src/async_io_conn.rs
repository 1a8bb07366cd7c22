//! The accept loop and the connection loop of every design whose sockets are async-io's
//! (async-std-ws, smol-ws, rayon-ws), the futures-io twin of `tokio_conn`: same buffer, socket
//! options, session code and back-off, so that these designs differ only in where the futures run.
//! glommio-tpc runs [`serve`] too (glommio's sockets are futures-io), with its own accept loop:
//! this one's back-off timer would start async-io's reactor thread.
//!
//! It also places the thread async-io adds to every such process, see [`confine_helper_threads`].

use std::io;
use std::os::unix::io::AsRawFd;

use async_io::Timer;
use bench_core::counters::{Counters, Field};
use bench_core::{net, read_buffer, Config, Protocol, Session};
use futures_lite::{pin, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Stream, StreamExt};

/// Accepts connections from `incoming` (the listener's `incoming()`, async-std's or async-io's)
/// until the future is dropped, handing each to `spawn`.
pub async fn accept_loop<S>(incoming: impl Stream<Item = io::Result<S>>, mut spawn: impl FnMut(S)) {
    pin!(incoming);
    // `incoming()` streams never end; `None` would mean the listener is gone.
    while let Some(accepted) = incoming.next().await {
        match accepted {
            Ok(stream) => spawn(stream),
            Err(e) => {
                eprintln!("accept: {e}");
                // async-std's `task::sleep` is this same timer.
                Timer::after(net::ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves one connection until the peer closes it or an I/O error ends it.
pub async fn serve<S>(mut stream: S, protocol: Protocol, counters: impl Counters)
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
    counters.add(Field::Connections, 1);
    // A reset or a vanished client ends only its own connection; in a benchmark that is routine,
    // so it is not logged.
    let _ = run(&mut stream, Session::new(protocol), &counters).await;
}

async fn run<S>(stream: &mut S, mut session: Session, counters: &impl Counters) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
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

/// Confines the calling thread, and so every thread it creates from now on (Linux threads inherit
/// their creator's affinity), to the worker CPUs as a set. Does nothing when `--cpus` is absent.
///
/// Call it first in `main`. async-io starts a thread named "async-io" the first time a socket is
/// registered: in smol-ws and async-std-ws a fallback that drives the reactor only while no worker
/// does, in rayon-ws the reactor itself. Created while this mask holds, it runs on any of the
/// server's CPUs (competing with the workers, not tied to one of them) and never on the load
/// generator's: its cost is paid inside the server's CPU budget, as every other design's is.
/// Workers then pin themselves to their one CPU; this thread only waits for signals.
pub fn confine_helper_threads(cfg: &Config) {
    cfg.confine_to_worker_cpus();
}
