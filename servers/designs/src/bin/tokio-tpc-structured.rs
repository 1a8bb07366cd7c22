//! tokio-tpc-structured: tokio-tpc with structured concurrency instead of a task per connection.
//!
//! The same N pinned threads, each a tokio `LocalRuntime` with its own `SO_REUSEPORT` listener,
//! the same connection code (`tokio_conn::serve`: buffer, socket options, session). One thing
//! differs: no `spawn_local`. Each worker's connections are futures polled as one group inside
//! the worker's single task, the accept stream driven beside them: futures-concurrency's
//! `ConcurrentStream::for_each` (`stream.co().for_each(..)`, the crate's documented way to process
//! the items of a stream concurrently; a `FutureGroup` underneath). A connection is therefore no
//! `'static` task: it borrows the worker's counters by reference (no `Rc`), costs no task
//! allocation and no trip through the scheduler's queue. Only the connections whose waker fired
//! are polled, so a stuck one holds up nobody; a finished one is dropped from the group at once.
//! Every connection shares the worker task's cooperative budget (tokio's coop: 128 operations
//! per poll of a task), where each task of tokio-tpc has its own.

use bench_core::counters::LocalCounters;
use bench_core::runner::Server;
use futures_concurrency::prelude::*;
use server_designs::tokio_conn::{self, accept_stream, serve, until_stopped, WatchStop};

fn main() {
    let server = Server::from_env("tokio-tpc-structured");
    // tokio-tpc's runtime, set up alike (docs/fairness.md).
    let settings = tokio_conn::current_thread_settings(&server);
    let listeners = server.listeners_per_core();
    server.run_per_core(&settings, listeners, WatchStop::new, |worker| {
        let rt = tokio_conn::local_runtime();
        let listener = tokio_conn::register(rt.handle(), worker.incoming);
        let counters = LocalCounters::default();
        worker.started.wait();
        let (protocol, counters_ref) = (worker.cfg.protocol, &counters);
        let connections = accept_stream(&listener)
            .co()
            .for_each(|stream| serve(stream, protocol, counters_ref));
        rt.block_on(until_stopped(connections, worker.stop));
        // The connections lived inside `block_on`'s future, dropped when it returned: the
        // counters are final.
        worker.report.send(counters.snapshot());
    });
}
