//! Per-worker counters (`docs/server-contract.md`, "Shutdown and counters").
//!
//! Each worker writes only its own counters, so the hot path never does a shared atomic
//! increment. Thread-per-core designs keep a [`LocalCounters`] per thread (plain `Cell`s, `!Send`);
//! work-stealing designs, whose tasks move between workers, count through [`CurrentWorker`] into
//! the [`SharedCounters`] of whichever worker runs the task at that moment.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What a design counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Connections this worker started serving.
    Connections,
    /// Messages answered (echo: reads that produced a write; HTTP: requests answered).
    Messages,
    /// Payload bytes read from sockets.
    BytesIn,
    /// Payload bytes written to sockets.
    BytesOut,
}

/// Somewhere a connection's events are counted.
pub trait Counters {
    fn add(&self, field: Field, n: u64);
}

impl<C: Counters + ?Sized> Counters for &C {
    fn add(&self, field: Field, n: u64) {
        (**self).add(field, n);
    }
}

impl<C: Counters + ?Sized> Counters for Rc<C> {
    fn add(&self, field: Field, n: u64) {
        (**self).add(field, n);
    }
}

/// The counter values of one worker at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connections: u64,
    pub messages: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Snapshot {
    fn from_fields(get: impl Fn(Field) -> u64) -> Self {
        Snapshot {
            connections: get(Field::Connections),
            messages: get(Field::Messages),
            bytes_in: get(Field::BytesIn),
            bytes_out: get(Field::BytesOut),
        }
    }
}

/// Counters of one thread-per-core worker: plain cells, so the type is `!Sync` and the compiler
/// guarantees a single writer.
#[derive(Debug, Default)]
pub struct LocalCounters([Cell<u64>; 4]);

impl LocalCounters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::from_fields(|field| self.0[field as usize].get())
    }
}

impl Counters for LocalCounters {
    fn add(&self, field: Field, n: u64) {
        let cell = &self.0[field as usize];
        cell.set(cell.get() + n);
    }
}

/// Counters of one work-stealing worker, readable from any thread, written only by the worker
/// thread bound to them (see [`SharedCounters::bind_to_current_thread`]) through
/// [`CurrentWorker`].
///
/// With a single writer, an update is a relaxed load and store, as cheap as a plain add: no
/// lock-prefixed read-modify-write. Aligned to 128 bytes, a pair of cache lines (the adjacent-line
/// prefetcher fetches lines in pairs), so that workers never write to the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct SharedCounters([AtomicU64; 4]);

thread_local! {
    static CURRENT: Cell<Option<&'static SharedCounters>> = const { Cell::new(None) };
}

impl SharedCounters {
    /// One set of counters per worker, for the lifetime of the process (leaked once, so that
    /// threads can refer to them without reference counting).
    pub fn per_worker(workers: usize) -> &'static [SharedCounters] {
        Box::leak((0..workers).map(|_| SharedCounters::default()).collect())
    }

    /// Makes the calling thread the writer of these counters: from now on [`CurrentWorker`]
    /// counts here when it runs on this thread. Bind each set to exactly one worker thread.
    pub fn bind_to_current_thread(&'static self) {
        CURRENT.with(|current| current.set(Some(self)));
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot::from_fields(|field| self.0[field as usize].load(Relaxed))
    }
}

/// The counters of the worker thread the caller runs on, for tasks that move between workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct CurrentWorker;

impl Counters for CurrentWorker {
    fn add(&self, field: Field, n: u64) {
        CURRENT.with(|current| match current.get() {
            Some(counters) => {
                let value = &counters.0[field as usize];
                value.store(value.load(Relaxed) + n, Relaxed);
            }
            // Only worker threads run connections; a count elsewhere is a bug in the design.
            None => debug_assert!(false, "counting on a thread that is not a bound worker"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(counters: &impl Counters) {
        counters.add(Field::Connections, 1);
        counters.add(Field::BytesIn, 10);
        counters.add(Field::Messages, 1);
        counters.add(Field::BytesOut, 4);
        counters.add(Field::BytesOut, 6);
    }

    const EXPECTED: Snapshot = Snapshot {
        connections: 1,
        messages: 1,
        bytes_in: 10,
        bytes_out: 10,
    };

    #[test]
    fn local_counters_count_each_field() {
        let counters = Rc::new(LocalCounters::default());
        count(&counters);
        assert_eq!(counters.snapshot(), EXPECTED);
    }

    #[test]
    fn current_worker_counts_into_the_slot_bound_to_its_thread() {
        let slots = SharedCounters::per_worker(2);
        std::thread::spawn(move || {
            slots[1].bind_to_current_thread();
            count(&CurrentWorker);
        })
        .join()
        .unwrap();
        assert_eq!(slots[0].snapshot(), Snapshot::default());
        assert_eq!(slots[1].snapshot(), EXPECTED);
        assert_eq!(std::mem::align_of_val(&slots[0]), 128);
    }
}
