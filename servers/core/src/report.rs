//! The counters line printed at shutdown (schema `server-counters/1`).

use std::io::{self, Write};

use crate::cli::Config;
use crate::counters::Snapshot;

/// The JSON line for `design`, whose workers reported `workers` (worker index, counters).
/// Formatted by hand: the schema is flat, and this keeps the contract's field order.
pub fn line(design: &str, cfg: &Config, workers: &[(usize, Snapshot)]) -> String {
    // Design names are fixed identifiers such as `tokio-ws`, so they need no JSON escaping.
    debug_assert!(design
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    let workers: Vec<String> = workers
        .iter()
        .map(|&(worker, counters)| worker_json(worker, cfg.cpu(worker), counters))
        .collect();
    format!(
        r#"{{"schema":"server-counters/1","design":"{design}","protocol":"{}","workers":[{}]}}"#,
        cfg.protocol,
        workers.join(",")
    )
}

fn worker_json(worker: usize, cpu: Option<usize>, counters: Snapshot) -> String {
    let cpu = cpu.map_or_else(|| "null".to_string(), |cpu| cpu.to_string());
    let Snapshot {
        connections,
        messages,
        bytes_in,
        bytes_out,
    } = counters;
    format!(
        concat!(
            r#"{{"worker":{},"cpu":{},"connections":{},"messages":{},"#,
            r#""bytes_in":{},"bytes_out":{}}}"#
        ),
        worker, cpu, connections, messages, bytes_in, bytes_out
    )
}

/// Prints the counters line on stdout. Workers that did not report in time are left out (the
/// harness records them as absent, never as zero) with a warning on stderr.
pub fn print(design: &str, cfg: &Config, workers: impl IntoIterator<Item = (usize, Snapshot)>) {
    let mut workers: Vec<_> = workers.into_iter().collect();
    workers.sort_by_key(|&(worker, _)| worker);
    if workers.len() < cfg.threads {
        eprintln!(
            "warning: only {} of {} workers reported counters",
            workers.len(),
            cfg.threads
        );
    }
    let mut out = io::stdout().lock();
    // If stdout is gone there is no one left to tell.
    let _ = writeln!(out, "{}", line(design, cfg, &workers)).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_follows_the_contract() {
        let cfg = Config::parse(["--threads", "2", "--cpus", "1,3"]).unwrap();
        let s = Snapshot {
            connections: 64,
            messages: 120345,
            bytes_in: 7702080,
            bytes_out: 7702080,
        };
        assert_eq!(
            line("tokio-tpc", &cfg, &[(0, s), (1, Snapshot::default())]),
            concat!(
                r#"{"schema":"server-counters/1","design":"tokio-tpc","protocol":"echo","#,
                r#""workers":[{"worker":0,"cpu":1,"connections":64,"messages":120345,"#,
                r#""bytes_in":7702080,"bytes_out":7702080},"#,
                r#"{"worker":1,"cpu":3,"connections":0,"messages":0,"bytes_in":0,"bytes_out":0}]}"#
            )
        );
        let unpinned = Config::default();
        assert!(line("tokio-ws", &unpinned, &[(0, s)]).contains(r#"{"worker":0,"cpu":null,"#));
    }
}
