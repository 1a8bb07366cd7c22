//! The protocol a connection speaks, as a sans-IO state machine: bytes in, bytes to write out.
//!
//! Every design drives a [`Session`] with the same loop, whatever its I/O model (readiness-based
//! tokio, async-std, smol and epoll, or completion-based `io_uring`):
//!
//! 1. read at most [`BUF_SIZE`](crate::BUF_SIZE) bytes; a read of 0 means the peer closed its
//!    side, and since nothing is ever left unwritten the connection can close at once;
//! 2. `let reply = session.on_read(&buf[..n]);`
//! 3. write all of `reply.bytes` (partial writes retried), then close if `reply.close`;
//! 4. read again.
//!
//! `reply.bytes` may be empty (HTTP: the read ended inside a request, which stays buffered in the
//! session until the rest arrives): then there is nothing to write, and the design reads again.
//! A design must not submit a zero-length write (an `io_uring` write of 0 bytes completes with 0,
//! which looks like `WriteZero`).
//!
//! Designs whose writes take owned buffers (monoio, compio, tokio-uring) call
//! [`Session::on_read_into`] instead of step 2, lending the buffer they will hand to the write:
//! the HTTP responses are built straight into it, and the reply reaches the kernel without a
//! copy, as it does from the session's own buffer in the other designs. Both calls run the same
//! code ([`Session::on_read`] is `on_read_into` with the session's own buffer).
//!
//! Nothing is read while a reply is unwritten, so a client that does not read is back-pressured
//! and a connection holds at most one buffer of data (HTTP: one read's responses, plus at most
//! [`MAX_HEAD`](crate::http::MAX_HEAD) bytes of an incomplete request).
//!
//! With `--work`, `on_read` burns the drawn CPU time inline before answering: once per
//! non-empty read for echo, once per request for HTTP ([`work`]).

use std::fmt;
use std::str::FromStr;

use crate::http;
use crate::reply::{Answer, Reply, ReplyAt};
use crate::work::{self, WorkDist};

/// What a server speaks (`--protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Every byte received is sent back.
    Echo,
    /// HTTP/1.1 plaintext: `Hello, World!` to every `GET` ([`http`]).
    Http,
}

impl Protocol {
    /// The name used on the command line and in the counters line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "echo" => Ok(Protocol::Echo),
            "http" => Ok(Protocol::Http),
            _ => Err(format!("unknown protocol '{s}' (expected echo or http)")),
        }
    }
}

/// Per-connection protocol state.
#[derive(Debug)]
pub struct Session {
    state: State,
    /// `--work`, read once per connection.
    work: WorkDist,
    /// HTTP's responses to the current read, for [`Session::on_read`] (left empty, never
    /// allocated, when the design lends its own buffer to [`Session::on_read_into`]).
    out: Vec<u8>,
}

#[derive(Debug)]
enum State {
    /// Echo keeps no state: each read is answered in full before the next.
    Echo,
    Http(http::Conn),
}

impl Session {
    /// A session that burns the process's `--work` per request (none unless
    /// [`Config::from_env`](crate::Config::from_env) was given `--work`).
    pub fn new(protocol: Protocol) -> Self {
        Session::with_work(protocol, work::process_work())
    }

    /// A session with an explicit per-request work distribution (for tests and tools; designs
    /// use [`Session::new`]).
    pub fn with_work(protocol: Protocol, work: WorkDist) -> Self {
        let state = match protocol {
            Protocol::Echo => State::Echo,
            Protocol::Http => State::Http(http::Conn::new()),
        };
        Session {
            state,
            work,
            out: Vec::new(),
        }
    }

    /// Consumes one read's worth of bytes and says what to write back.
    ///
    /// The reply may borrow `input` itself: echo answers with the bytes just read instead of
    /// copying them into a buffer of the session's own, so every design writes straight from its
    /// read buffer as echo servers do, with no copy in the measured path. HTTP returns a buffer
    /// owned by the session holding the responses to every request completed by this read, and
    /// the design's loop stays the same.
    pub fn on_read<'a>(&'a mut self, input: &'a [u8]) -> Reply<'a> {
        let answer = answer(&mut self.state, self.work, input, &mut self.out);
        let bytes = match answer.at {
            ReplyAt::Nothing => &[],
            ReplyAt::Input => input,
            ReplyAt::Out => &self.out[..],
        };
        Reply {
            bytes,
            messages: answer.messages,
            close: answer.close,
        }
    }

    /// [`Session::on_read`] for a design that writes from buffers it owns: HTTP's responses
    /// replace what `out` held (it gets [`http::OUT_CAPACITY`] the first time, as the session's
    /// own buffer does), so the design hands `out` itself to its write, with no copy. Echo's
    /// reply is the input, as in `on_read`; `out` is then left alone.
    pub fn on_read_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Answer {
        answer(&mut self.state, self.work, input, out)
    }
}

/// The one path both [`Session::on_read`] and [`Session::on_read_into`] take.
fn answer(state: &mut State, work: WorkDist, input: &[u8], out: &mut Vec<u8>) -> Answer {
    match state {
        State::Echo => {
            let read = !input.is_empty();
            if read {
                work.run_one();
            }
            Answer {
                at: if read {
                    ReplyAt::Input
                } else {
                    ReplyAt::Nothing
                },
                messages: u64::from(read),
                close: false,
            }
        }
        State::Http(conn) => {
            let (messages, close) = conn.on_read_into(input, out, work);
            Answer {
                at: if out.is_empty() {
                    ReplyAt::Nothing
                } else {
                    ReplyAt::Out
                },
                messages,
                close,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn echo_answers_each_read_with_its_bytes() {
        let mut session = Session::with_work(Protocol::Echo, WorkDist::NONE);
        for input in [&b"x"[..], b"hello", &[0u8; crate::net::BUF_SIZE]] {
            let reply = session.on_read(input);
            assert_eq!(
                reply,
                Reply {
                    bytes: input,
                    messages: 1,
                    close: false
                }
            );
        }
        assert_eq!(session.on_read(b"").messages, 0);
    }

    #[test]
    fn protocol_names_round_trip() {
        for protocol in [Protocol::Echo, Protocol::Http] {
            assert_eq!(protocol.to_string().parse(), Ok(protocol));
        }
        assert_eq!(Protocol::Http.to_string(), "http");
        assert!("ECHO".parse::<Protocol>().is_err());
        assert!("ftp"
            .parse::<Protocol>()
            .unwrap_err()
            .contains("unknown protocol"));
    }

    #[test]
    fn http_sessions_answer_requests() {
        let mut session = Session::new(Protocol::Http);
        let reply = session.on_read(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!((reply.messages, reply.close), (2, false));
        assert!(reply.bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(reply.bytes.ends_with(b"Hello, World!"));
    }

    /// Both calls give the same bytes, messages and close, wherever the reply is built.
    #[test]
    fn on_read_into_builds_the_same_replies_in_the_lent_buffer() {
        let inputs: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\n",
            b"\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ];
        let mut borrowed = Session::with_work(Protocol::Http, WorkDist::NONE);
        let mut owned = Session::with_work(Protocol::Http, WorkDist::NONE);
        let mut out = Vec::new();
        for input in inputs {
            let reply = borrowed.on_read(input);
            let answer = owned.on_read_into(input, &mut out);
            let bytes: &[u8] = match answer.at {
                ReplyAt::Nothing => &[],
                ReplyAt::Input => input,
                ReplyAt::Out => &out,
            };
            assert_eq!(
                (bytes, answer.messages, answer.close),
                (reply.bytes, reply.messages, reply.close)
            );
            // The owned path never fills the session's own buffer.
            assert_eq!(owned.out.capacity(), 0);
        }
        assert_eq!(out.capacity(), http::OUT_CAPACITY);

        let mut echo = Session::with_work(Protocol::Echo, WorkDist::NONE);
        let mut out = Vec::new();
        let answer = echo.on_read_into(b"hello", &mut out);
        assert_eq!((answer.at, answer.messages), (ReplyAt::Input, 1));
        assert_eq!(echo.on_read_into(b"", &mut out).at, ReplyAt::Nothing);
        assert_eq!(out.capacity(), 0);
    }

    /// The burn happens per read for echo and per request for HTTP. Only lower bounds are
    /// checked: a busy machine can make a burn longer, never shorter.
    #[test]
    fn work_is_burned_per_echo_read_and_per_http_request() {
        let work: WorkDist = "fixed:500".parse().unwrap();
        let mut echo = Session::with_work(Protocol::Echo, work);
        let start = Instant::now();
        assert_eq!(echo.on_read(b"a").messages, 1);
        assert!(start.elapsed() >= Duration::from_micros(500));
        // An empty read is no request: nothing is drawn from the thread's generator (so nothing
        // is burned), which a fresh generator on the same stream shows.
        work::seed_thread(7, 0);
        assert_eq!(echo.on_read(b"").messages, 0);
        let next_draw = work::with_thread_rng(|rng| rng.next_u64());
        assert_eq!(next_draw, work::Rng::for_stream(7, 0).next_u64());

        let mut http = Session::with_work(Protocol::Http, work);
        let start = Instant::now();
        assert_eq!(
            http.on_read(&b"GET / HTTP/1.1\r\n\r\n".repeat(16)).messages,
            16
        );
        assert!(start.elapsed() >= Duration::from_micros(16 * 500));
    }
}
