//! hiccup: the load generator's hiccup meter on its own (docs/loadgen.md, "Hiccup meter"), for
//! the harness to run pinned on a server CPU during a calibration trial. One meter thread per
//! CPU of `--cpus` sleeps 1 ms in a loop for `--duration` seconds and records each wake-up's
//! overshoot; the summary is printed as one JSON document (and written to `--json FILE`). On
//! SIGTERM or SIGINT it stops at once and prints what it measured (`"interrupted": true`).

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use loadgen::cli::{parse_cpu_list, parse_or_exit};
use loadgen::hiccup::{HiccupReport, Meters, Stall};
use loadgen::sys;

#[derive(Parser, Debug)]
#[command(
    name = "hiccup",
    about = "Hiccup meter: sleeps 1 ms in a loop on each CPU and records the overshoot",
    disable_version_flag = true,
    color = clap::ColorChoice::Never,
    allow_negative_numbers = true
)]
struct Args {
    /// CPUs to measure, one meter thread pinned to each (e.g. 1 or 0,2-3).
    #[arg(long, value_name = "LIST", value_parser = |v: &str| parse_cpu_list(v).map(CpuList))]
    cpus: CpuList,
    /// Seconds to measure.
    #[arg(long, value_name = "S", default_value = "5", value_parser = positive_seconds)]
    duration: f64,
    /// Also write the JSON document to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Testing: stall each meter's own thread once for MS milliseconds (see --stall-at).
    #[arg(long, value_name = "MS", value_parser = positive_seconds)]
    stall_ms: Option<f64>,
    /// Testing: when the stall happens, in seconds after the start.
    #[arg(long, value_name = "S", default_value = "1", value_parser = non_negative_seconds)]
    stall_at: f64,
}

#[derive(Clone, Debug)]
struct CpuList(Vec<usize>);

fn seconds(v: &str, zero_ok: bool) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s <= 1e6 && (s > 0.0 || (zero_ok && s == 0.0)) => Ok(s),
        _ if zero_ok => Err("expected a number >= 0".into()),
        _ => Err("expected a number > 0".into()),
    }
}

fn positive_seconds(v: &str) -> Result<f64, String> {
    seconds(v, false)
}

fn non_negative_seconds(v: &str) -> Result<f64, String> {
    seconds(v, true)
}

#[derive(Serialize)]
struct Document {
    schema: &'static str,
    duration_s: f64,
    /// Seconds actually measured (less than `duration_s` when interrupted).
    measured_s: f64,
    interrupted: bool,
    stall_ms: Option<f64>,
    stall_at_s: Option<f64>,
    #[serde(flatten)]
    report: HiccupReport,
}

fn fail(msg: &str, code: i32) -> ! {
    eprintln!("error: {msg}");
    exit(code);
}

fn main() {
    let args: Args = parse_or_exit();
    let allowed =
        sys::allowed_cpus().unwrap_or_else(|e| fail(&format!("sched_getaffinity: {e}"), 2));
    if let Some(bad) = args.cpus.0.iter().find(|c| !allowed.contains(c)) {
        fail(
            &format!("--cpus: CPU {bad} is not available to this process"),
            2,
        );
    }
    // Opened first: an unwritable path is a bad argument, not a lost measurement.
    let mut json_file = args.json.as_ref().map(|p| {
        File::create(p).unwrap_or_else(|e| fail(&format!("--json {}: {e}", p.display()), 2))
    });

    static STOP: AtomicBool = AtomicBool::new(false);
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&signalled)) {
            fail(&format!("cannot handle signal {sig}: {e}"), 1);
        }
    }
    let start = sys::now_ns();
    let end = start + (args.duration * 1e9).round() as u64;
    let stall = args.stall_ms.map(|ms| Stall {
        at_ns: start + (args.stall_at * 1e9).round() as u64,
        length_ns: (ms * 1e6).round() as u64,
    });
    let meters = Meters::start(Some(&args.cpus.0), start, end, stall, &STOP)
        .unwrap_or_else(|e| fail(&format!("cannot start the meters: {e}"), 1));
    // The main thread only relays a signal to the meters (they check every 1 ms sample).
    while sys::now_ns() < end && !signalled.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(5));
    }
    let interrupted = signalled.load(Ordering::Relaxed);
    STOP.store(true, Ordering::Relaxed);
    let report = meters
        .join()
        .unwrap_or_else(|e| fail(&format!("a meter failed: {e}"), 1));
    let measured_s = (sys::now_ns().min(end) - start) as f64 / 1e9;
    let doc = Document {
        schema: "hiccup/1",
        duration_s: args.duration,
        measured_s,
        interrupted,
        stall_ms: args.stall_ms,
        stall_at_s: args.stall_ms.map(|_| args.stall_at),
        report,
    };
    let text = serde_json::to_string(&doc).expect("the document serialises") + "\n";
    let written = io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| match &mut json_file {
            Some(f) => f.write_all(text.as_bytes()),
            None => Ok(()),
        });
    if let Err(e) = written {
        fail(&format!("writing the result: {e}"), 1);
    }
}
