//! The command line of `docs/server-contract.md`, parsed by hand: seven flags do not need a parser
//! dependency, and every design gets the same errors. A new flag (`--work DIST`, ...) is one field
//! in [`Config`] and one arm in [`Config::parse`].

use std::env;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process;
use std::str::FromStr;

use crate::work::{self, WorkDist};
use crate::{cpu, fatal, Protocol};

const FLAGS: &str = "--protocol, --host, --port, --threads, --cpus, --work, --seed";

/// What a server was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub protocol: Protocol,
    /// Address every listener binds.
    pub host: IpAddr,
    pub port: u16,
    /// Worker threads that run connections.
    pub threads: usize,
    /// Worker *i* is pinned to `cpus[i]`; `None` leaves workers unpinned. Holds at least
    /// `threads` entries.
    pub cpus: Option<Vec<usize>>,
    /// CPU time burned before answering each request (`--work`).
    pub work: WorkDist,
    /// Seed of the per-worker generators that draw from `work` (`--seed`).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: Protocol::Echo,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7878,
            threads: 1,
            cpus: None,
            work: WorkDist::NONE,
            seed: work::DEFAULT_SEED,
        }
    }
}

impl Config {
    /// Parses the process arguments and checks that `--cpus` names only CPUs this process may use.
    /// On error prints one line `error: ...` on stderr and exits 2, as the contract requires.
    ///
    /// Also records `--work` and `--seed` for the whole process, which is how
    /// [`Session::new`](crate::Session::new) learns them.
    pub fn from_env() -> Config {
        let args: Result<Vec<String>, String> = env::args_os()
            .skip(1)
            .map(|arg| {
                arg.into_string()
                    .map_err(|arg| format!("argument {arg:?} is not UTF-8"))
            })
            .collect();
        let cfg = args
            .and_then(Config::parse)
            .and_then(|cfg| cfg.check_cpus_allowed().map(|()| cfg))
            .unwrap_or_else(|msg| {
                eprintln!("error: {msg}");
                process::exit(2)
            });
        work::set_process_work(cfg.work, cfg.seed);
        cfg
    }

    /// Parses flags (without the program name). Pure, so that it can be unit tested.
    pub fn parse<I, S>(args: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cfg = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let flag = flag.as_ref();
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag {
                "--protocol" => {
                    cfg.protocol = value?
                        .as_ref()
                        .parse()
                        .map_err(|e| format!("--protocol: {e}"))?;
                }
                "--host" => cfg.host = parse_value(flag, value?, "an IP address")?,
                "--port" => cfg.port = parse_value(flag, value?, "a port 1..65535")?,
                "--threads" => cfg.threads = parse_value(flag, value?, "a positive integer")?,
                "--cpus" => {
                    let list =
                        cpu::parse_list(value?.as_ref()).map_err(|e| format!("--cpus: {e}"))?;
                    cfg.cpus = Some(list);
                }
                "--work" => {
                    cfg.work = value?
                        .as_ref()
                        .parse()
                        .map_err(|e| format!("--work: {e}"))?;
                }
                "--seed" => cfg.seed = parse_value(flag, value?, "an integer 0..2^64-1")?,
                _ => return Err(format!("unknown argument '{flag}' (flags: {FLAGS})")),
            }
        }
        if cfg.port == 0 {
            // Port 0 would give each SO_REUSEPORT listener a different port.
            return Err("--port: expected a port 1..65535, got '0'".into());
        }
        if cfg.threads == 0 {
            return Err("--threads: expected a positive integer, got '0'".into());
        }
        match &cfg.cpus {
            Some(cpus) if cpus.len() < cfg.threads => Err(format!(
                "--cpus names {} CPUs but --threads is {}",
                cpus.len(),
                cfg.threads
            )),
            _ => Ok(cfg),
        }
    }

    /// The address every listener binds.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The CPU worker `worker` runs on, `None` when unpinned.
    pub fn cpu(&self, worker: usize) -> Option<usize> {
        self.cpus.as_ref()?.get(worker).copied()
    }

    /// Pins the calling thread to worker `worker`'s CPU, if `--cpus` was given, and seeds the
    /// thread's `--work` generator with stream `worker` of `--seed`. Call it once on each worker
    /// thread, pinned or not. Exits on failure: a benchmark on the wrong CPUs would be silently
    /// wrong.
    pub fn pin_worker(&self, worker: usize) {
        work::seed_thread(self.seed, worker);
        if let Some(cpu) = self.cpu(worker) {
            cpu::pin_current_thread(cpu)
                .unwrap_or_else(|e| fatal(format_args!("pin worker {worker} to CPU {cpu}: {e}")));
        }
    }

    /// Rejects CPUs outside this process's affinity mask now, as a bad value (exit 2), rather
    /// than when a worker fails to pin.
    fn check_cpus_allowed(&self) -> Result<(), String> {
        let cpus = match &self.cpus {
            Some(cpus) => cpus,
            None => return Ok(()),
        };
        let allowed = cpu::allowed().map_err(|e| format!("sched_getaffinity: {e}"))?;
        match cpus.iter().find(|cpu| !allowed.contains(cpu)) {
            Some(cpu) => Err(format!(
                "--cpus: CPU {cpu} is not available (allowed: {allowed:?})"
            )),
            None => Ok(()),
        }
    }
}

fn parse_value<T: FromStr>(
    flag: &str,
    value: impl AsRef<str>,
    expected: &str,
) -> Result<T, String> {
    let value = value.as_ref();
    value
        .parse()
        .map_err(|_| format!("{flag}: expected {expected}, got '{value}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Config, String> {
        Config::parse(args.split_whitespace())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.addr().to_string(), "127.0.0.1:7878");
        assert_eq!(cfg.cpu(0), None);
    }

    #[test]
    fn every_flag_is_parsed() {
        let cfg = parse("--protocol echo --host ::1 --port 9000 --threads 2 --cpus 1,0-1").unwrap();
        assert_eq!(cfg.protocol, Protocol::Echo);
        assert_eq!((cfg.work, cfg.seed), (WorkDist::NONE, 1));
        assert_eq!(cfg.addr().to_string(), "[::1]:9000");
        assert_eq!(cfg.threads, 2);
        assert_eq!(
            (cfg.cpu(0), cfg.cpu(1), cfg.cpu(2)),
            (Some(1), Some(0), Some(1))
        );
        let cfg = parse("--protocol http --work bimodal:10:1000:0.01 --seed 18446744073709551615")
            .unwrap();
        assert_eq!(cfg.protocol, Protocol::Http);
        assert_eq!(cfg.work, "bimodal:10:1000:0.01".parse().unwrap());
        assert_eq!(cfg.seed, u64::MAX);
        assert_eq!(parse("--work none").unwrap().work, WorkDist::NONE);
    }

    #[test]
    fn bad_flags_and_values_are_one_line_errors() {
        for (args, error) in [
            ("--bogus 1", "unknown argument '--bogus'"),
            ("7878", "unknown argument '7878'"),
            ("--port", "--port needs a value"),
            ("--port x", "--port: expected a port 1..65535, got 'x'"),
            ("--port 70000", "--port: expected a port"),
            ("--port 0", "--port: expected a port"),
            (
                "--threads 0",
                "--threads: expected a positive integer, got '0'",
            ),
            ("--threads -1", "--threads: expected a positive integer"),
            ("--host localhost", "--host: expected an IP address"),
            ("--protocol ftp", "--protocol: unknown protocol 'ftp'"),
            ("--work", "--work needs a value"),
            ("--work exp", "--work: expected none, fixed:US, exp:MEAN_US"),
            (
                "--work fixed:-1",
                "--work: '-1' in 'fixed:-1' is not a number >= 0",
            ),
            ("--work fixed:x", "--work: 'x' in 'fixed:x' is not a number"),
            (
                "--work bimodal:1:2:3",
                "--work: 'bimodal:1:2:3': P2 is a probability",
            ),
            ("--work lognormal:50", "--work: expected none"),
            (
                "--seed -1",
                "--seed: expected an integer 0..2^64-1, got '-1'",
            ),
            ("--seed 18446744073709551616", "--seed: expected an integer"),
            ("--seed x", "--seed: expected an integer"),
            ("--cpus 1-0", "--cpus: descending range"),
            (
                "--threads 3 --cpus 0,1",
                "--cpus names 2 CPUs but --threads is 3",
            ),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.starts_with(error), "{args}: {err}");
            assert!(!err.contains('\n'), "{args}: {err}");
        }
    }
}
