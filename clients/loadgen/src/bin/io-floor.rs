//! io-floor: what any closed-loop HTTP client must spend per request here, for
//! `scripts/bench-loadgen --floor` (docs/loadgen.md, "Cost"). It is the load generator's
//! io_uring path with everything but the I/O taken out: the same ring, flags and provided-buffer
//! pool (`uring_ring`), the same request bytes (`http::request`), one multishot receive and one
//! send per connection, but no parsing, no clock reads per request, no histograms, no hiccup
//! meter. Each receive completion is counted as one answer and answered with the next request.
//!
//! It is not a load generator: it measures no latency and checks no response beyond the first.
//! Counting receives as answers is right only when every response arrives whole in one receive;
//! at the end it checks that the bytes received are exactly that many copies of the first
//! response's length, and fails (exit 1) when they are not. Its requests per client CPU-second,
//! beside wrk's and the load generator's, say how much of a request's cost is the kernel's,
//! which no client can save.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::process::exit;

use clap::Parser;
use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue};
use serde::Serialize;

use loadgen::cli::parse_or_exit;
use loadgen::http;
use loadgen::sys;
use loadgen::uring_ring::{self, GROUP};

#[derive(Parser, Debug)]
#[command(
    name = "io-floor",
    about = "The I/O alone of a closed-loop HTTP client (io_uring), to measure what the kernel \
             charges a client per request",
    disable_version_flag = true,
    color = clap::ColorChoice::Never
)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long)]
    port: u16,
    /// Connections, each with one request outstanding.
    #[arg(long, default_value = "64", value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,
    /// Seconds to run.
    #[arg(long, value_name = "S", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// CPU to pin the one thread to.
    #[arg(long)]
    cpu: Option<usize>,
}

#[derive(Serialize)]
struct Summary {
    requests: u64,
    window_s: f64,
    requests_per_s: f64,
    response_bytes: usize,
    ring: String,
}

#[derive(Serialize)]
struct Document {
    schema: &'static str,
    summary: Summary,
}

fn fail(msg: &str, code: i32) -> ! {
    eprintln!("error: {msg}");
    exit(code);
}

/// Which operation a completion is for: connection `i`'s receive (`2i`) or send (`2i + 1`).
fn user_data(i: usize, send: bool) -> u64 {
    (i as u64) << 1 | u64::from(send)
}

fn main() {
    let args: Args = parse_or_exit();
    if let Some(cpu) = args.cpu {
        sys::pin_current_thread(&[cpu]).unwrap_or_else(|e| fail(&format!("--cpu {cpu}: {e}"), 2));
    }
    let addr = SocketAddr::new(args.host, args.port);
    let request = http::request("/", &args.host.to_string(), args.port);
    let n = args.connections as usize;
    let mut ring =
        uring_ring::setup(n, true).unwrap_or_else(|e| fail(&format!("io_uring: {e}"), 1));
    if ring.pool.is_none() {
        fail(
            "io_uring: no multishot receive on this kernel (Linux 6.0)",
            1,
        )
    }
    // Blocking connects before the window, as wrk connects before it counts.
    let streams: Vec<TcpStream> = (0..n)
        .map(|_| {
            let s = TcpStream::connect(addr)
                .unwrap_or_else(|e| fail(&format!("connect {addr}: {e}"), 1));
            s.set_nodelay(true)
                .unwrap_or_else(|e| fail(&format!("TCP_NODELAY: {e}"), 1));
            s
        })
        .collect();
    let fds: Vec<RawFd> = streams.iter().map(AsRawFd::as_raw_fd).collect();
    let recv = |i: usize| {
        opcode::RecvMulti::new(Fd(fds[i]), GROUP)
            .build()
            .user_data(user_data(i, false))
    };
    let send = |i: usize| {
        // SAFETY (of the push below): the request bytes live until the process ends.
        let e = opcode::Send::new(Fd(fds[i]), request.as_ptr(), request.len() as u32);
        e.flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(i, true))
    };
    let push = |ring: &mut uring_ring::Ring, e: &squeue::Entry| {
        // SAFETY: sends read the request (alive until exit); receives write into the pool, which
        // lives as long as the ring.
        while unsafe { ring.ring.submission().push(e) }.is_err() {
            ring.ring
                .submit()
                .unwrap_or_else(|e| fail(&format!("io_uring submit: {e}"), 1));
        }
    };
    for i in 0..n {
        push(&mut ring, &recv(i));
        push(&mut ring, &send(i));
    }
    let start = sys::now_ns();
    let end = start + args.duration * 1_000_000_000;
    let (mut answers, mut bytes, mut first_len) = (0u64, 0usize, None::<usize>);
    let mut next: Vec<squeue::Entry> = Vec::with_capacity(2 * n);
    let mut pool_back: Vec<u16> = Vec::with_capacity(n);
    let mut now = start;
    while now < end {
        ring.enter(now, end)
            .unwrap_or_else(|e| fail(&format!("io_uring_enter: {e}"), 1));
        for cqe in ring.ring.completion() {
            let (i, is_send) = ((cqe.user_data() >> 1) as usize, cqe.user_data() & 1 == 1);
            let res = cqe.result();
            if res < 0 {
                let what = if is_send { "send" } else { "receive" };
                fail(
                    &format!("{what}: {}", io::Error::from_raw_os_error(-res)),
                    1,
                );
            }
            if is_send {
                continue;
            }
            if res == 0 {
                fail("the server closed a connection", 1);
            }
            let id =
                cqueue::buffer_select(cqe.flags()).expect("a multishot receive names its buffer");
            let len = res as usize;
            if first_len.is_none() {
                let pool = ring.pool.as_ref().expect("checked above");
                if !pool.bytes(id, len).starts_with(b"HTTP/1.1 200 ") {
                    fail("the first response is not an HTTP/1.1 200", 1);
                }
                first_len = Some(len);
            }
            pool_back.push(id);
            (answers, bytes) = (answers + 1, bytes + len);
            if !cqueue::more(cqe.flags()) {
                next.push(recv(i));
            }
            next.push(send(i));
        }
        let pool = ring.pool.as_mut().expect("checked above");
        for id in pool_back.drain(..) {
            pool.put(id);
        }
        pool.publish();
        for e in next.drain(..) {
            push(&mut ring, &e);
        }
        now = sys::now_ns();
    }
    let window_s = (now - start) as f64 / 1e9;
    let response_bytes = first_len.unwrap_or(0);
    if bytes != answers as usize * response_bytes {
        fail(
            &format!(
                "{answers} receives brought {bytes} bytes, not {answers} x {response_bytes}: \
                 this server's responses do not arrive one per receive, so io-floor cannot \
                 count them"
            ),
            1,
        );
    }
    let doc = Document {
        schema: "io-floor/1",
        summary: Summary {
            requests: answers,
            window_s,
            requests_per_s: answers as f64 / window_s,
            response_bytes,
            ring: ring.features.to_string(),
        },
    };
    let text = serde_json::to_string(&doc).expect("the document serialises") + "\n";
    if let Err(e) = io::stdout().write_all(text.as_bytes()) {
        fail(&format!("writing the result: {e}"), 1);
    }
    drop(streams); // closed only once the count is out
}
