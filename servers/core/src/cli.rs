//! The command line of `docs/server-contract.md`. clap reads the flags (`--flag VALUE` or
//! `--flag=VALUE`, the last of a repeated flag wins, `--help`); their values are checked here, so
//! that every design gets the same one-line errors. A new flag (`--work DIST`, ...) is one field
//! in [`Flags`] and one line in [`Config::from_flags`].

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process;
use std::str::FromStr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::cpu;
use crate::process::fatal;
use crate::session::Protocol;
use crate::work::{self, WorkDist};

const FLAGS: &str = "--protocol, --host, --port, --threads, --cpus, --work, --seed";

/// The flags as given; [`Config::from_flags`] checks the values. Values may begin with `-`, so
/// that `--threads -1` is refused for its value, as a bad value, not as an unknown flag.
#[derive(Debug, Parser)]
#[command(
    about = "A server design of the thread-per-core benchmark (docs/server-contract.md)",
    version,
    args_override_self = true
)]
struct Flags {
    /// echo | http
    #[arg(long, allow_hyphen_values = true, value_name = "echo|http")]
    protocol: Option<String>,
    /// Address every listener binds [default: 127.0.0.1]
    #[arg(long, allow_hyphen_values = true, value_name = "ADDR")]
    host: Option<String>,
    /// TCP port, 1..65535 [default: 7878]
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    port: Option<String>,
    /// Worker threads that run connections [default: 1]
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    threads: Option<String>,
    /// Worker i runs on the i-th CPU of LIST (`1,3,5`, `0-3`) [default: unpinned]
    #[arg(long, allow_hyphen_values = true, value_name = "LIST")]
    cpus: Option<String>,
    /// CPU time burned per request: none, fixed:US, exp:MEAN_US, bimodal:US1:US2:P2,
    /// lognormal:MEDIAN_US:SIGMA [default: none]
    #[arg(long, allow_hyphen_values = true, value_name = "DIST")]
    work: Option<String>,
    /// Seed of the per-worker --work generators, 0..2^64-1 [default: 1]
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    seed: Option<String>,
}

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
        // With the program's own name, which `--help` and `--version` show (`tokio-ws 0.1.0`).
        let program = std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "server".to_string());
        let flags = Flags::command()
            // clap takes a 'static name; one small string per process.
            .name(&*Box::leak(program.into_boxed_str()))
            .try_get_matches_from(std::env::args_os())
            .and_then(|m| Flags::from_arg_matches(&m))
            .unwrap_or_else(|e| match e.kind() {
                // Asked for, so on stdout with exit 0.
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
                _ => bad_command_line(clap_message(&e)),
            });
        let cfg = Config::from_flags(flags)
            .and_then(|cfg| cfg.check_cpus_allowed().map(|()| cfg))
            .unwrap_or_else(bad_command_line);
        work::set_process_work(cfg.work, cfg.seed);
        cfg
    }

    /// Parses flags (without the program name). Pure, so that it can be unit tested.
    pub fn parse<I, S>(args: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args = args.into_iter().map(|arg| OsString::from(arg.as_ref()));
        let argv = std::iter::once(OsString::from("server")).chain(args);
        let flags = Flags::try_parse_from(argv).map_err(|e| clap_message(&e))?;
        Config::from_flags(flags)
    }

    fn from_flags(flags: Flags) -> Result<Config, String> {
        let mut cfg = Config::default();
        if let Some(value) = flags.protocol {
            cfg.protocol = value.parse().map_err(|e| format!("--protocol: {e}"))?;
        }
        if let Some(value) = flags.host {
            cfg.host = parse_value("--host", value, "an IP address")?;
        }
        if let Some(value) = flags.port {
            cfg.port = parse_value("--port", value, "a port 1..65535")?;
        }
        if let Some(value) = flags.threads {
            cfg.threads = parse_value("--threads", value, "a positive integer")?;
        }
        if let Some(value) = flags.cpus {
            cfg.cpus = Some(cpu::parse_list(&value).map_err(|e| format!("--cpus: {e}"))?);
        }
        if let Some(value) = flags.work {
            cfg.work = value.parse().map_err(|e| format!("--work: {e}"))?;
        }
        if let Some(value) = flags.seed {
            cfg.seed = parse_value("--seed", value, "an integer 0..2^64-1")?;
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

    /// Confines the calling thread, and every thread it creates from then on, to the workers'
    /// CPUs as a set, if `--cpus` was given: for a design's threads that are not workers (a main
    /// thread that accepts, a runtime's helper thread), so that their work is paid inside the
    /// server's CPU budget and never on the load generator's CPUs. Exits on failure.
    pub fn confine_to_worker_cpus(&self) {
        if let Some(cpus) = &self.cpus {
            let cpus = &cpus[..self.threads];
            cpu::confine_current_thread(cpus)
                .unwrap_or_else(|e| fatal(format_args!("confine to CPUs {cpus:?}: {e}")));
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

/// Prints `error: {msg}` (one line) on stderr and exits 2, as the contract requires.
fn bad_command_line<T>(msg: String) -> T {
    eprintln!("error: {msg}");
    process::exit(2)
}

/// clap's error as one line in this command line's words.
fn clap_message(e: &clap::Error) -> String {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.as_str(),
        _ => "",
    };
    // clap names a flag with its value, `--port <N>`.
    let flag = arg.split(' ').next().unwrap_or(arg);
    match e.kind() {
        ErrorKind::UnknownArgument => format!("unknown argument '{arg}' (flags: {FLAGS})"),
        ErrorKind::InvalidValue | ErrorKind::NoEquals if !flag.is_empty() => {
            format!("{flag} needs a value")
        }
        ErrorKind::InvalidUtf8 => "an argument is not UTF-8".into(),
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
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
