//! What every design does around its runtime, written once: the start (command line, runtime
//! settings profile, shutdown signals blocked before any thread exists), the listeners, READY
//! with the `server-settings/1` line, the wait for SIGTERM and the counters line at the end; and
//! for the thread-per-core designs the whole runner ([`Server::run_per_core`]): one pinned
//! thread per worker, a start barrier, a stop the main thread triggers, and each worker's
//! counters handed back over a channel. A design file keeps only what makes it that design: its
//! runtime, built with its settings, and how it accepts and serves connections.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Barrier};

use crate::cli::Config;
use crate::counters::{SharedCounters, Snapshot};
use crate::net;
use crate::process::{self, fatal};
use crate::report;
use crate::settings::{Profile, Settings};
use crate::signal::{self, ShutdownSignals};

/// A server that has read its command line and blocked the shutdown signals; no thread exists
/// yet.
pub struct Server {
    pub design: &'static str,
    pub cfg: Config,
    /// The runtime set-up asked for (`BENCH_RUNTIME_SETTINGS`).
    pub profile: Profile,
    /// Taken by [`Server::wait_for_signal`] or [`Server::take_signals`].
    signals: Option<ShutdownSignals>,
}

impl Server {
    /// Reads the command line ([`Config::from_env`]), then `BENCH_RUNTIME_SETTINGS`
    /// ([`Profile::from_env`]), each exiting 2 with one line on a bad value, then blocks SIGTERM
    /// and SIGINT ([`ShutdownSignals::block`]). Call it first in `main`, before any thread.
    pub fn from_env(design: &'static str) -> Server {
        let cfg = Config::from_env();
        let profile = Profile::from_env();
        let signals = Some(ShutdownSignals::block());
        Server {
            design,
            cfg,
            profile,
            signals,
        }
    }

    /// An empty settings line for this design and profile, to which the design adds its own.
    pub fn settings(&self) -> Settings {
        Settings::new(self.design, self.profile)
    }

    /// One `SO_REUSEPORT` listener per worker (`net::listen_reuseport`); exits 1 on failure.
    pub fn listeners_per_core(&self) -> Vec<TcpListener> {
        (0..self.cfg.threads)
            .map(|_| net::listen_reuseport(self.cfg.addr()).unwrap_or_else(fatal))
            .collect()
    }

    /// One listener for every worker (`net::listen`); exits 1 on failure.
    pub fn shared_listener(&self) -> TcpListener {
        net::listen(self.cfg.addr()).unwrap_or_else(fatal)
    }

    /// Prints the settings line and READY.
    pub fn ready(&self, settings: &Settings) {
        process::ready_with(settings);
    }

    /// Blocks until SIGTERM or SIGINT (perhaps received before this call).
    pub fn wait_for_signal(&mut self) {
        self.take_signals().wait();
    }

    /// The blocked signals, for a design whose main thread is busy until the end (tokio-ws
    /// accepts on it) and waits for them on another thread.
    pub fn take_signals(&mut self) -> ShutdownSignals {
        self.signals
            .take()
            .expect("the shutdown signals are waited for once")
    }

    /// Prints the counters line of the workers that reported (see [`report::print`]).
    pub fn report(&self, workers: impl IntoIterator<Item = (usize, Snapshot)>) {
        report::print(self.design, &self.cfg, workers);
    }

    /// Prints the counters line from the per-worker counters of a work-stealing design.
    pub fn report_shared(&self, counters: &[SharedCounters]) {
        self.report(counters.iter().map(SharedCounters::snapshot).enumerate());
    }

    /// Runs the server thread per core, until SIGTERM or SIGINT. Worker *i* (a thread named
    /// `worker-i`, pinned by `Config::pin_worker` before anything else) is given `incoming[i]`
    /// and stop end *i* from `stop(workers)`, and runs `serve`, which builds its runtime, calls
    /// [`Started::wait`] once ready to serve, serves until its stop end fires, and hands its
    /// counters to [`ReportSlot::send`]. Once every worker has started, the settings line and
    /// READY are printed; on the signal the main thread triggers the stop and prints the
    /// counters line of the workers that reported within the grace period.
    pub fn run_per_core<I, S, F>(
        self,
        settings: &Settings,
        incoming: Vec<I>,
        stop: impl FnOnce(usize) -> io::Result<(S, Vec<S::End>)>,
        serve: F,
    ) where
        I: Send + 'static,
        S: StopWorkers,
        F: FnOnce(Worker<I, S::End>) + Clone + Send + 'static,
    {
        self.run(settings, incoming, stop, serve, None);
    }

    /// [`Server::run_per_core`] with one more thread that is no worker (tokio-tpc-dispatch's
    /// acceptor), named `name`, started after the workers and confined by the design: it gets
    /// the last stop end, and READY waits for its [`Started::wait`] too.
    pub fn run_per_core_with_helper<I, S, F>(
        self,
        settings: &Settings,
        incoming: Vec<I>,
        stop: impl FnOnce(usize) -> io::Result<(S, Vec<S::End>)>,
        serve: F,
        (name, helper): (&'static str, impl FnOnce(Started, S::End) + Send + 'static),
    ) where
        I: Send + 'static,
        S: StopWorkers,
        F: FnOnce(Worker<I, S::End>) + Clone + Send + 'static,
    {
        self.run(
            settings,
            incoming,
            stop,
            serve,
            Some((name, Box::new(helper))),
        );
    }

    fn run<I, S, F>(
        mut self,
        settings: &Settings,
        incoming: Vec<I>,
        stop: impl FnOnce(usize) -> io::Result<(S, Vec<S::End>)>,
        serve: F,
        helper: Option<Helper<S::End>>,
    ) where
        I: Send + 'static,
        S: StopWorkers,
        F: FnOnce(Worker<I, S::End>) + Clone + Send + 'static,
    {
        let threads = self.cfg.threads;
        let helpers = usize::from(helper.is_some());
        let (stopper, mut stop_ends) = stop(threads + helpers).unwrap_or_else(fatal);
        let helper_end = helper.as_ref().and_then(|_| stop_ends.pop());
        let (counters_tx, counters_rx) = mpsc::channel();
        let started = Started(Arc::new(Barrier::new(threads + helpers + 1)));
        for (index, (incoming, stop)) in incoming.into_iter().zip(stop_ends).enumerate() {
            let worker = Worker {
                index,
                cfg: self.cfg.clone(),
                profile: self.profile,
                incoming,
                stop,
                started: started.clone(),
                report: ReportSlot {
                    index,
                    counters: counters_tx.clone(),
                },
            };
            let serve = serve.clone();
            process::spawn_worker(index, move || {
                worker.cfg.pin_worker(index);
                serve(worker);
            });
        }
        if let (Some((name, helper)), Some(end)) = (helper, helper_end) {
            let started = started.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || helper(started, end))
                .unwrap_or_else(fatal);
        }
        started.wait();
        self.ready(settings);

        self.wait_for_signal();
        stopper.stop();
        self.report(signal::collect_within_grace(&counters_rx, threads));
    }
}

type Helper<E> = (&'static str, Box<dyn FnOnce(Started, E) + Send>);

/// How the main thread stops the thread-per-core workers: made with one end per worker, which
/// the worker waits on with its own runtime's I/O (tokio's wakers, or a socket or eventfd read
/// where a runtime's tasks cannot be woken from another thread).
pub trait StopWorkers {
    /// What one worker waits on.
    type End: Send + 'static;
    /// Tells every worker to stop.
    fn stop(self);
}

/// What one worker thread of [`Server::run_per_core`] is given.
pub struct Worker<I, E> {
    pub index: usize,
    pub cfg: Config,
    pub profile: Profile,
    /// Where its connections come from: its own listener (or, in tokio-tpc-dispatch, its inbox).
    pub incoming: I,
    /// What it waits on to stop.
    pub stop: E,
    pub started: Started,
    pub report: ReportSlot,
}

/// The start barrier: every worker, any helper thread and the main thread (which then prints
/// READY).
#[derive(Clone)]
pub struct Started(Arc<Barrier>);

impl Started {
    /// Blocks until every thread has started. Call it once, when the runtime is built and the
    /// listener registered with it, just before serving.
    pub fn wait(&self) {
        self.0.wait();
    }
}

/// Where a worker hands its counters once it stopped serving.
pub struct ReportSlot {
    index: usize,
    counters: mpsc::Sender<(usize, Snapshot)>,
}

impl ReportSlot {
    /// Hands over the worker's final counters (after the last connection was served; a worker
    /// that never calls this is reported absent).
    pub fn send(self, counters: Snapshot) {
        // The main thread may have given up waiting (grace period over): nothing to do then.
        let _ = self.counters.send((self.index, counters));
    }
}

/// How the main thread stops per-core workers on runtimes whose tasks cannot be woken from
/// another thread without an opt-in feature (monoio without `sync`, glommio, compio): one socket
/// pair per worker. The worker reads its end with its runtime's own I/O; the main thread drops
/// its ends, and every read returns 0. Nothing on the serving path changes.
pub struct StopLines {
    main_ends: Vec<UnixStream>,
}

impl StopLines {
    /// One line per worker; returns the workers' ends (nonblocking, as epoll drivers need).
    pub fn new(workers: usize) -> io::Result<(StopLines, Vec<UnixStream>)> {
        let mut main_ends = Vec::with_capacity(workers);
        let mut worker_ends = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (main_end, worker_end) = UnixStream::pair()?;
            worker_end.set_nonblocking(true)?;
            main_ends.push(main_end);
            worker_ends.push(worker_end);
        }
        Ok((StopLines { main_ends }, worker_ends))
    }
}

impl StopWorkers for StopLines {
    type End = UnixStream;

    fn stop(self) {
        drop(self.main_ends);
    }
}

/// How the main thread stops event loops without a runtime (epoll-tpc, uring-tpc): one eventfd
/// that every loop polls. Nothing consumes it, so once written it stays readable and every loop
/// sees it, once and for good.
#[derive(Clone, Debug)]
pub struct StopEvent(Arc<File>);

impl StopEvent {
    pub fn new() -> io::Result<StopEvent> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd that we own.
        match unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) } {
            fd if fd >= 0 => Ok(StopEvent(Arc::new(unsafe { File::from_raw_fd(fd) }))),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// The event and one handle on it per worker, for [`Server::run_per_core`].
    pub fn for_workers(workers: usize) -> io::Result<(StopEvent, Vec<StopEvent>)> {
        let stop = StopEvent::new()?;
        let ends = vec![stop.clone(); workers];
        Ok((stop, ends))
    }

    /// The eventfd, to poll.
    pub fn file(&self) -> &File {
        &self.0
    }

    pub fn trigger(&self) {
        // An eventfd write fails only if its counter would overflow, after 2^64 - 2 triggers.
        let _ = (&*self.0).write(&1u64.to_ne_bytes());
    }
}

impl StopWorkers for StopEvent {
    type End = StopEvent;

    fn stop(self) {
        self.trigger();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn stop_lines_end_every_workers_read() {
        let (stop, mut ends) = StopLines::new(2).unwrap();
        let mut byte = [0; 1];
        assert_eq!(
            ends[0].read(&mut byte).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        stop.stop();
        for end in &mut ends {
            assert_eq!(end.read(&mut byte).unwrap(), 0);
        }
    }

    #[test]
    fn a_stop_event_stays_readable_once_triggered() {
        let (stop, ends) = StopEvent::for_workers(2).unwrap();
        let mut count = [0; 8];
        assert_eq!(
            ends[1].file().read(&mut count).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        stop.stop();
        for end in &ends {
            let mut poll = libc::pollfd {
                fd: std::os::unix::io::AsRawFd::as_raw_fd(end.file()),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            assert_eq!(unsafe { libc::poll(&mut poll, 1, 0) }, 1);
        }
    }
}
