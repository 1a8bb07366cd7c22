//! Accepting connections, written once for every runtime: each design passes its listener's
//! `accept` (or its stream of accepted connections) and its runtime's timer. A failed accept is
//! logged and followed by `net::ACCEPT_BACKOFF` on that timer, in every design alike.

use std::future::Future;
use std::io;

use bench_core::net;
use futures_lite::stream::{self, Stream};
use futures_lite::{pin, StreamExt};

/// Accepts connections until the future is dropped, handing each to `spawn`. `accept` starts one
/// accept; `sleep` sleeps for the given time on the runtime's timer.
pub async fn accept_loop<S, A, T>(
    accept: impl FnMut() -> A,
    sleep: impl Fn(std::time::Duration) -> T,
    mut spawn: impl FnMut(S),
) where
    A: Future<Output = io::Result<S>>,
    T: Future,
{
    let connections = accept_stream(accept, sleep);
    pin!(connections);
    while let Some(stream) = connections.next().await {
        spawn(stream);
    }
}

/// The accepted connections as a stream, for the structured designs (`co().for_each`). `unfold`
/// keeps the pending `accept` inside the stream, so a `next()` dropped by a race (`co().for_each`
/// races the stream against the group) does not drop it: a dropped io_uring accept would lose a
/// connection the kernel had already accepted (monoio ignores an abandoned operation's result).
pub fn accept_stream<S, A, T>(
    accept: impl FnMut() -> A,
    sleep: impl Fn(std::time::Duration) -> T,
) -> impl Stream<Item = S>
where
    A: Future<Output = io::Result<S>>,
    T: Future,
{
    stream::unfold((accept, sleep), |(mut accept, sleep)| async move {
        loop {
            match accept().await {
                Ok(stream) => return Some((stream, (accept, sleep))),
                Err(e) => back_off(e, &sleep).await,
            }
        }
    })
}

/// Accepts connections from `incoming` (a listener's stream of accepts: async-std's, async-io's,
/// compio's multishot `incoming()`) until the future is dropped, handing each to `spawn`.
pub async fn accept_incoming<S, T>(
    incoming: impl Stream<Item = io::Result<S>>,
    sleep: impl Fn(std::time::Duration) -> T,
    mut spawn: impl FnMut(S),
) where
    T: Future,
{
    pin!(incoming);
    // `incoming()` streams never end; `None` would mean the listener is gone.
    while let Some(accepted) = incoming.next().await {
        match accepted {
            Ok(stream) => spawn(stream),
            Err(e) => back_off(e, &sleep).await,
        }
    }
}

/// After a failed accept: the usual causes (EMFILE, ENFILE, ENOBUFS) persist, so retrying at once
/// would spin a core and flood stderr.
async fn back_off<T: Future>(e: io::Error, sleep: &impl Fn(std::time::Duration) -> T) {
    eprintln!("accept: {e}");
    sleep(net::ACCEPT_BACKOFF).await;
}
