//! Command line -> typed [`Config`] (docs/loadgen.md, "Command line"). Every check on the
//! arguments happens here, before any load: a bad flag is one `error: ...` line and exit 2.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

// The typed configuration lives below both this parser and `plan` (which checks a skew), so that
// neither imports the other's types; re-exported for the modules that name them through `cli`.
use crate::config::seconds_to_ns;
pub use crate::config::{Arrival, Config, IoKind, OpenLoop, ProtocolKind, Skew, MAX_DEPTH};

/// The usage line of `--help` (clap renders the rest from the flags below).
const USAGE: &str = "\
loadgen [--host ADDR] [--port N] [--protocol echo|http] [--size B] [--path P]
               [--connections C] [--pipeline P] [--threads T] [--cpus LIST]
               [--rate R [--arrival poisson|uniform] [--seed N]]
               [--hot-fraction F --hot-share S] [--requests-per-connection K]
               [--warmup S] [--duration S] [--timeout S] [--interval-ms MS]
               [--no-hiccup] [--hlog FILE] [--out FILE] [--start-at UNIX_S]
               [--io epoll|uring]";

const MAX_SIZE: usize = 16 << 20;
const MAX_SECONDS: f64 = 1e6;
const MAX_RATE: f64 = 1e9;

pub enum Command {
    Run(Box<Config>),
    /// `--help`: the text to print.
    Help(String),
}

/// The flags as clap sees them; every value is checked by the same function as before clap, so
/// the messages name the flag, the accepted range and the value given.
#[derive(clap::Parser, Debug)]
#[command(
    name = "loadgen",
    override_usage = USAGE,
    help_template = "usage: {usage}\n\n{all-args}\n\nSee docs/loadgen.md for the meaning of each \
                     flag and of the JSON document it prints.",
    version,
    color = clap::ColorChoice::Never,
    allow_negative_numbers = true
)]
struct Args {
    /// Server address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, value_name = "N", default_value_t = 7878, value_parser = |v: &str| int(v, 1, 65535).map(|n| n as u16))]
    port: u16,
    /// Protocol spoken.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Echo)]
    protocol: ProtocolKind,
    /// Echo message size in bytes.
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = |v: &str| int(v, 1, MAX_SIZE as u64).map(|n| n as usize))]
    size: usize,
    /// HTTP request target (HTTP only).
    #[arg(long, value_name = "P", value_parser = request_target)]
    path: Option<String>,
    /// Connections in total, spread evenly over the threads.
    #[arg(long, value_name = "C", default_value_t = 64, value_parser = |v: &str| int(v, 1, 1_000_000).map(|n| n as usize))]
    connections: usize,
    /// Requests outstanding per connection.
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = |v: &str| int(v, 1, MAX_DEPTH as u64).map(|n| n as usize))]
    pipeline: usize,
    /// Client threads, each with its own event loop.
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = |v: &str| int(v, 1, 4096).map(|n| n as usize))]
    threads: usize,
    /// Thread i pinned to the i-th CPU of LIST (e.g. 0,2,4-7).
    #[arg(long, value_name = "LIST", value_parser = |v: &str| parse_cpu_list(v).map(CpuList))]
    cpus: Option<CpuList>,
    /// Open loop: requests per second in total (closed loop without it).
    #[arg(long, value_name = "R", value_parser = |v: &str| real(v, f64::MIN_POSITIVE, MAX_RATE))]
    rate: Option<f64>,
    /// Open loop: how intended send times are spaced.
    #[arg(long, value_enum)]
    arrival: Option<Arrival>,
    /// Open loop: seed of the Poisson schedules.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = |v: &str| int(v, 0, u64::MAX))]
    seed: u64,
    /// Skew: the fraction of connections that is hot (with --hot-share).
    #[arg(long, value_name = "F", value_parser = fraction)]
    hot_fraction: Option<f64>,
    /// Skew: the share of the load the hot connections carry (with --hot-fraction).
    #[arg(long, value_name = "S", value_parser = fraction)]
    hot_share: Option<f64>,
    /// Close and reopen each connection after K requests.
    #[arg(long, value_name = "K", value_parser = |v: &str| int(v, 1, u64::MAX))]
    requests_per_connection: Option<u64>,
    /// Seconds of load before measuring.
    #[arg(long, value_name = "S", default_value = "2", value_parser = |v: &str| seconds(v, true))]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, value_name = "S", default_value = "10", value_parser = |v: &str| seconds(v, false))]
    duration: f64,
    /// Seconds without a complete answer before a request is an error.
    #[arg(long, value_name = "S", default_value = "2", value_parser = |v: &str| seconds(v, false))]
    timeout: f64,
    /// Length of one interval of the per-interval series.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = |v: &str| int(v, 100, 3_600_000))]
    interval_ms: u64,
    /// Do not run the hiccup meter on the client CPUs.
    #[arg(long)]
    no_hiccup: bool,
    /// Also write an HdrHistogram interval log.
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Where the JSON document goes (stdout without it).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Start (t0) at this wall-clock time, seconds since the epoch in this host's clock
    /// (decimals allowed, e.g. 1764654000.25): load generators on several hosts start together.
    #[arg(long, value_name = "UNIX_S", value_parser = epoch_ns)]
    start_at: Option<u64>,
    /// I/O path of the client threads.
    #[arg(long, value_enum, default_value_t = IoKind::Epoll)]
    io: IoKind,
}

/// A parsed `--cpus` (a newtype, so that clap takes it as one value, not a list of values).
#[derive(Clone, Debug)]
struct CpuList(Vec<usize>);

/// clap's error as one line (its first paragraph, e.g. with the possible values), without the
/// `error: ` that `main` adds back (`parse_or_exit` too).
pub fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = first.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// The arguments of a helper binary (`hiccup`, `io-floor`): `--help` prints and exits 0; bad
/// arguments print one line and exit 2.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            print!("{e}");
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::exit(2);
        }
    }
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    use clap::Parser as _;
    let argv = std::iter::once("loadgen".to_string()).chain(args);
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        // Asked for: printed on stdout, exit 0 (`--version` too).
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            return Ok(Command::Help(e.to_string()))
        }
        Err(e) => return Err(one_line(&e)),
    };
    let Args {
        host,
        port,
        protocol,
        size,
        path,
        connections,
        pipeline,
        threads,
        cpus,
        rate,
        arrival,
        seed,
        hot_fraction,
        hot_share,
        requests_per_connection,
        warmup: warmup_s,
        duration: duration_s,
        timeout: timeout_s,
        interval_ms,
        no_hiccup,
        hlog,
        out,
        start_at,
        io,
    } = a;
    let cpu_list = cpus.map(|c| c.0);

    if path.is_some() && protocol != ProtocolKind::Http {
        return Err("--path needs --protocol http".into());
    }
    if arrival.is_some() && rate.is_none() {
        return Err("--arrival needs --rate (open loop)".into());
    }
    let open = rate.map(|rate| OpenLoop {
        rate,
        arrival: arrival.unwrap_or(Arrival::Poisson),
        seed,
    });
    let skew = match (hot_fraction, hot_share) {
        (None, None) => None,
        (Some(fraction), Some(share)) => Some(Skew { fraction, share }),
        _ => return Err("--hot-fraction and --hot-share go together".into()),
    };
    if connections < threads {
        return Err(format!(
            "--connections ({connections}) must be at least --threads ({threads})"
        ));
    }
    let cpus = match cpu_list {
        None => None,
        Some(list) if list.len() < threads => {
            return Err(format!(
                "--cpus names {} CPUs, fewer than --threads ({threads})",
                list.len()
            ))
        }
        Some(list) => Some(list[..threads].to_vec()),
    };
    if let Some(cpus) = &cpus {
        let allowed = crate::sys::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
        if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
            return Err(format!(
                "--cpus: CPU {bad} is not available to this process"
            ));
        }
    }
    let config_path = path.unwrap_or_else(|| "/".to_string());
    // A name may resolve to both families; prefer IPv4, which servers listen on by default.
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("--host: cannot resolve '{host}': {e}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("--host: '{host}' has no address"))?;

    let cfg = Config {
        host,
        port,
        addr,
        protocol,
        size,
        path: config_path,
        connections,
        pipeline,
        open,
        skew,
        requests_per_connection,
        threads,
        cpus,
        warmup_s,
        duration_s,
        timeout_s,
        interval_ms,
        hlog,
        out,
        start_at_ns: start_at,
        hiccup: !no_hiccup,
        io,
    };
    // Checked here so that a skew that cannot be split is a bad argument, not a panic later.
    crate::plan::check(&cfg)?;
    Ok(Command::Run(Box::new(cfg)))
}

/// `SECONDS[.FRACTION]` since the epoch -> nanoseconds, exactly (no floating point).
pub fn epoch_ns(v: &str) -> Result<u64, String> {
    let bad = || "expected seconds since the epoch, e.g. 1764654000.25".to_string();
    let (whole, frac) = v.split_once('.').unwrap_or((v, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > 9 {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    // Up to the year 2500: far beyond any real start time, far below u64 overflow.
    if secs > 16_725_225_600 {
        return Err(bad());
    }
    Ok(secs * 1_000_000_000 + nanos)
}

fn int(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected an integer in {min}..={max}")),
    }
}

fn real(v: &str, min: f64, max: f64) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(format!("expected a number in {min}..={max}")),
    }
}

/// A number strictly between 0 and 1.
fn fraction(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err("expected a number strictly between 0 and 1".to_string()),
    }
}

/// An origin-form request target: starts with `/`, visible ASCII only.
fn request_target(v: &str) -> Result<String, String> {
    if v.starts_with('/') && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(v.to_string())
    } else {
        Err("expected a path starting with '/' without spaces or control characters".to_string())
    }
}

fn seconds(v: &str, zero_ok: bool) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s <= MAX_SECONDS && (s > 0.0 || (zero_ok && s == 0.0)) => {
            // A duration must be at least 1 ns once converted.
            if s > 0.0 && seconds_to_ns(s) == 0 {
                return Err("shorter than 1 ns".to_string());
            }
            Ok(s)
        }
        _ => {
            let range = if zero_ok { ">= 0" } else { "> 0" };
            Err(format!("expected seconds {range} (decimals allowed)"))
        }
    }
}

/// `1,3,5` or ranges `0-3`, or a mix; a CPU may repeat.
pub fn parse_cpu_list(v: &str) -> Result<Vec<usize>, String> {
    let bad = || "expected a list like '0,2,4-7'".to_string();
    let cpu = |s: &str| -> Result<usize, String> {
        match s.trim().parse::<usize>() {
            Ok(c) if c < libc::CPU_SETSIZE as usize => Ok(c),
            _ => Err(bad()),
        }
    };
    let mut cpus = Vec::new();
    for part in v.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(cpu(part)?),
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(c) => Ok(*c),
            Command::Help(_) => Err("help".into()),
        }
    }

    #[test]
    fn start_at_is_exact_nanoseconds_and_off_by_default() {
        assert_eq!(run(&[]).unwrap().start_at_ns, None);
        let c = run(&["--start-at", "1764654000.25"]).unwrap();
        assert_eq!(c.start_at_ns, Some(1_764_654_000_250_000_000));
        assert_eq!(epoch_ns("12"), Ok(12_000_000_000));
        assert_eq!(epoch_ns("1.000000001"), Ok(1_000_000_001));
        for bad in ["", "-1", "1.", "1.0000000001", "1e9", "x", "99999999999999"] {
            assert!(epoch_ns(bad).is_err(), "{bad}");
        }
        let e = run(&["--start-at", "soon"]).unwrap_err();
        assert!(e.contains("--start-at"), "{e}");
    }

    #[test]
    fn defaults_follow_the_doc() {
        let c = run(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.size), ("127.0.0.1", 7878, 64));
        assert_eq!((c.connections, c.threads, c.interval_ms), (64, 1, 1000));
        assert_eq!((c.warmup_s, c.duration_s, c.timeout_s), (2.0, 10.0, 2.0));
        assert_eq!(c.cpus, None);
        assert_eq!(c.intervals(), 10);
        assert_eq!(
            (c.protocol, c.path.as_str(), c.pipeline),
            (ProtocolKind::Echo, "/", 1)
        );
        assert_eq!(
            (c.open, c.skew, c.requests_per_connection),
            (None, None, None)
        );
        assert_eq!((c.hlog.as_ref(), c.mode_name()), (None, "closed"));
    }

    #[test]
    fn open_loop_and_http_flags() {
        let c = run(&["--rate", "2500.5", "--protocol", "http", "--path", "/a?b=1"]).unwrap();
        let open = OpenLoop {
            rate: 2500.5,
            arrival: Arrival::Poisson,
            seed: 1,
        };
        assert_eq!(
            (c.open, c.mode_name(), c.path.as_str()),
            (Some(open), "open", "/a?b=1")
        );
        let c = run(&[
            "--rate=10",
            "--arrival=uniform",
            "--seed=9",
            "--pipeline=16",
        ])
        .unwrap();
        assert_eq!(
            c.open.map(|o| (o.arrival, o.seed)),
            Some((Arrival::Uniform, 9))
        );
        assert_eq!(c.pipeline, 16);
        let c = run(&["--requests-per-connection", "1", "--hlog", "x.hlog"]).unwrap();
        assert_eq!(c.requests_per_connection, Some(1));
        assert_eq!(c.hlog, Some(PathBuf::from("x.hlog")));
    }

    #[test]
    fn cpu_lists_and_spread() {
        assert_eq!(parse_cpu_list("1,3,5").unwrap(), [1, 3, 5]);
        assert_eq!(parse_cpu_list("0-2,0").unwrap(), [0, 1, 2, 0]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        let c = run(&["--connections", "10", "--threads", "4", "--cpus=0,0,0,0,1"]).unwrap();
        assert_eq!(c.cpus, Some(vec![0, 0, 0, 0]));
        let spread: Vec<_> = (0..4).map(|t| c.connections_of(t)).collect();
        assert_eq!(spread, [3, 3, 2, 2]);
    }

    #[test]
    fn decimals_and_partial_last_interval() {
        let c = run(&[
            "--duration",
            "2.5",
            "--interval-ms",
            "1000",
            "--warmup",
            "0",
        ])
        .unwrap();
        assert_eq!(c.duration_ns(), 2_500_000_000);
        assert_eq!(c.intervals(), 3);
    }

    #[test]
    fn rejects_bad_values() {
        for args in [
            &["--size", "0"][..],
            &["--size", "16777217"],
            &["--connections", "1", "--threads", "2"],
            &["--duration", "0"],
            &["--duration", "abc"],
            &["--warmup", "-1"],
            &["--timeout", "nan"],
            &["--port", "70000"],
            &["--protocol", "smtp"],
            &["--cpus", "0", "--threads", "2", "--connections", "2"],
            &["--bogus", "1"],
            &["--size"],
            &["stray"],
            &["--interval-ms", "99"],
            &["--pipeline", "0"],
            &["--pipeline", "4097"],
            &["--rate", "0"],
            &["--rate", "-5"],
            &["--rate", "inf"],
            &["--arrival", "poisson"], // without --rate
            &["--rate", "10", "--arrival", "bursty"],
            &["--path", "/"], // echo has no path
            &["--protocol", "http", "--path", "x"],
            &["--protocol", "http", "--path", "/a b"],
            &["--hot-fraction", "0.5"],
            &["--hot-share", "0", "--hot-fraction", "0.5"],
            &["--requests-per-connection", "0"],
            &["--seed", "-1"],
        ] {
            assert!(run(args).is_err(), "{args:?} accepted");
        }
    }
}
