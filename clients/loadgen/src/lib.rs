//! loadgen: the measuring instrument (docs/loadgen.md), as a library shared by the `loadgen`
//! binary, the `hiccup` meter (`src/bin/hiccup.rs`) and `io-floor` (`src/bin/io-floor.rs`, the
//! I/O alone, for `scripts/bench-loadgen --floor`).
//!
//! Pipeline: `cli` (flags -> `config::Config`) -> `plan` (each connection's share of the load) ->
//! `worker` threads, each an event loop on one I/O path (`epoll` over `conn`s, or `uring` on
//! `uring_ring`) over its connections' `exchange`s speaking a `protocol` (echo or `http`), open
//! loop paced by a per-connection `schedule`, timing answers into its `recorder`
//! (per-interval `histogram`s and `stats`) -> channel -> `report` (merge by adding counts, JSON
//! document; `hlog` for the optional HdrHistogram log) -> stdout/file.

pub mod cli;
pub mod config;
pub mod conn;
pub mod driver;
pub mod epoll;
pub mod exchange;
pub mod hiccup;
pub mod histogram;
pub mod hlog;
pub mod http;
pub mod limits;
pub mod output;
pub mod plan;
pub mod protocol;
pub mod recorder;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod sys;
pub mod uring;
pub mod uring_ring;
pub mod worker;
