//! `--protocol http`: HTTP/1.1 "plaintext" as TechEmpower defines it (`docs/server-contract.md`,
//! "HTTP protocol"), as the sans-IO state of one connection.
//!
//! # Buffers
//! - Complete requests are parsed straight out of the design's read buffer (no copy).
//! - Only an incomplete request head left at the end of a read is copied, into `partial`
//!   (capacity [`MAX_HEAD`], reserved the first time it is needed and never exceeded: the next
//!   read tops it up with at most `MAX_HEAD - partial.len()` bytes, so a head that does not
//!   complete within `MAX_HEAD` bytes is a 400 wherever the reads split it).
//! - Request bodies are never buffered: their length is skipped as it arrives (`body_left`).
//! - All responses to one read are appended to `out`, a buffer the caller lends (the `Session`'s
//!   own, or an owned-buffer design's write buffer, so that neither copies the reply), cleared
//!   (capacity kept) at the next read, so a design writes them with as few writes as possible.
//!   It is given [`OUT_CAPACITY`] the first time a read is answered, whoever owns it. It holds at
//!   most the responses to one read: ~7x the read's size for the smallest possible requests, ~1x
//!   for TechEmpower's.
//!
//! In steady state nothing is allocated per request (`on_read` allocates only while `out` grows to
//! its working size and the first time a head is split; a test checks this with a counting
//! allocator) and httparse's header array is left uninitialised (no 2 KiB memset per request).
//!
//! # Date
//! A thread-local cache holds the formatted `Date` value and the second it is for. Each read that
//! answers something reads `CLOCK_REALTIME_COARSE` once (vDSO, no system call, cheaper than a
//! precise clock since it reads the kernel's last tick instead of the TSC) and reformats only
//! when the second changed: at most once a second per worker thread, never per request. It is up
//! to one tick (<= 4 ms) late, invisible at the header's one-second resolution. Per-thread
//! rather than one process-wide value refreshed by a timer thread: no cache line shared between
//! workers, which would favour work-stealing designs over thread-per-core ones or the reverse,
//! and no extra thread competing for the workers' CPUs.

use std::cell::Cell;
use std::io::Write as _;
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::work::WorkDist;

/// Largest request head (request line, headers and the blank line after them): a head that has
/// not completed within this many bytes is answered `400` and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most headers a request may have (httparse's fixed array); more is `400` and close.
pub const MAX_HEADERS: usize = 64;

/// The `Server` header of every response.
pub const SERVER: &str = "bench";

/// The body of every `200` response to `GET`.
pub const BODY: &[u8] = b"Hello, World!";

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub const DATE_LEN: usize = 29;

// The responses, as the bytes before the date and after it. Status line, Content-Length,
// Content-Type, Server, Date, then Connection when it is not the default.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\
Server: bench\r\nDate: ";
const NOT_ALLOWED: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\
Allow: GET, HEAD\r\nServer: bench\r\nDate: ";
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\
Server: bench\r\nDate: ";
const END_KEEP_ALIVE: &[u8] = b"\r\n\r\n";
const END_KEEP_ALIVE_10: &[u8] = b"\r\nConnection: keep-alive\r\n\r\n";
const END_CLOSE: &[u8] = b"\r\nConnection: close\r\n\r\n";

/// What a response says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persist {
    /// HTTP/1.1 default: no `Connection` header.
    KeepAlive,
    /// HTTP/1.0 request with `Connection: keep-alive`: echoed back.
    KeepAlive10,
    /// `Connection: close`, then the connection is closed.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    /// Anything else: `405 Method Not Allowed`.
    Other,
}

/// A complete, acceptable request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    /// Bytes of the head, up to and including the blank line.
    len: usize,
    method: Method,
    persist: Persist,
    /// `Content-Length` (bytes to skip after the head).
    body: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Request(Head),
    /// A valid prefix shorter than [`MAX_HEAD`]: wait for more bytes.
    Partial,
    /// Not HTTP/1.x, too many headers, a head over [`MAX_HEAD`], a bad or conflicting
    /// `Content-Length`, or `Transfer-Encoding` (chunked bodies are not supported).
    Bad,
}

/// Parses the request head at the start of `buf`.
fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Bad,
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let (mut close, mut keep_alive, mut body) = (false, false, None);
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for option in header.value.split(|&b| b == b',').map(trim) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match (parse_length(header.value), body) {
                (Some(n), None) => body = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Bad,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad;
        }
    }
    // httparse accepts only HTTP/1.0 and HTTP/1.1.
    let http10 = req.version == Some(0);
    let persist = if close || (http10 && !keep_alive) {
        Persist::Close
    } else if http10 {
        Persist::KeepAlive10
    } else {
        Persist::KeepAlive
    };
    Parsed::Request(Head {
        len,
        method,
        persist,
        body: body.unwrap_or(0),
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// `Content-Length`: one or more digits, optionally surrounded by spaces, that fit in a u64.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = trim(value);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|&d| d <= 9)?);
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// Appends one response.
fn respond(out: &mut Vec<u8>, date: &[u8; DATE_LEN], head: Option<&Head>) {
    let (start, persist, body) = match head {
        None => (BAD_REQUEST, Persist::Close, &b""[..]),
        Some(head) => match head.method {
            Method::Get => (OK, head.persist, BODY),
            Method::Head => (OK, head.persist, &b""[..]),
            Method::Other => (NOT_ALLOWED, head.persist, &b""[..]),
        },
    };
    out.extend_from_slice(start);
    out.extend_from_slice(date);
    out.extend_from_slice(match persist {
        Persist::KeepAlive => END_KEEP_ALIVE,
        Persist::KeepAlive10 => END_KEEP_ALIVE_10,
        Persist::Close => END_CLOSE,
    });
    out.extend_from_slice(body);
}

/// The HTTP state of one connection (the responses go to a buffer the caller lends).
#[derive(Debug, Default)]
pub(crate) struct Conn {
    /// An incomplete request head carried over from earlier reads; shorter than [`MAX_HEAD`].
    partial: Vec<u8>,
    /// Body bytes of an answered request still to arrive and be skipped.
    body_left: u64,
    /// A response closed the connection: later input is ignored.
    closed: bool,
}

/// Room for 16 pipelined TechEmpower responses (~130 bytes each) before `out` first grows.
pub const OUT_CAPACITY: usize = 4096;

impl Conn {
    pub(crate) fn new() -> Conn {
        Conn::default()
    }

    /// Answers every complete request in `input` (after what earlier reads left), in order,
    /// replacing what `out` held by the responses; returns (responses, close).
    pub(crate) fn on_read_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        work: WorkDist,
    ) -> (u64, bool) {
        out.clear();
        let (messages, close) = if self.closed || input.is_empty() {
            (0, self.closed)
        } else {
            if out.capacity() == 0 {
                out.reserve_exact(OUT_CAPACITY);
            }
            self.answer(input, out, work)
        };
        self.closed = close;
        (messages, close)
    }

    /// Appends the responses to `out`; returns (responses, close).
    fn answer(&mut self, input: &[u8], out: &mut Vec<u8>, work: WorkDist) -> (u64, bool) {
        let mut answering = Answering {
            out,
            date: None,
            messages: 0,
            work,
        };
        // Body bytes owed by a request answered in an earlier read.
        let owed = self.body_left;
        let mut rest = skip_body(&mut self.body_left, owed, input);

        // A head split by earlier reads: complete it with as few bytes as it needs.
        if !self.partial.is_empty() && !rest.is_empty() {
            let had = self.partial.len();
            let take = rest.len().min(MAX_HEAD.saturating_sub(had));
            self.partial
                .extend_from_slice(rest.get(..take).unwrap_or_default());
            let parsed = parse(&self.partial);
            // It parsed as incomplete before, so it now ends past the bytes it had; check anyway
            // rather than trust that to slice client data.
            let after = match &parsed {
                Parsed::Request(head) => head.len.checked_sub(had).and_then(|n| rest.get(n..)),
                _ => None,
            };
            match (parsed, after) {
                // Not complete, and shorter than MAX_HEAD, so all of `rest` was taken.
                (Parsed::Partial, _) => return (answering.messages, false),
                (Parsed::Request(head), Some(after)) => {
                    self.partial.clear();
                    rest = after;
                    if answering.request(&head) {
                        return (answering.messages, true);
                    }
                    rest = skip_body(&mut self.body_left, head.body, rest);
                }
                _ => {
                    answering.bad_request();
                    return (answering.messages, true);
                }
            }
        }

        // The rest of this read, parsed in place.
        while !rest.is_empty() {
            match parse(rest) {
                Parsed::Request(head) => {
                    if answering.request(&head) {
                        return (answering.messages, true);
                    }
                    let after = rest.get(head.len..).unwrap_or_default();
                    rest = skip_body(&mut self.body_left, head.body, after);
                }
                Parsed::Partial => {
                    if self.partial.capacity() == 0 {
                        self.partial.reserve_exact(MAX_HEAD);
                    }
                    self.partial.extend_from_slice(rest);
                    break;
                }
                Parsed::Bad => {
                    answering.bad_request();
                    return (answering.messages, true);
                }
            }
        }
        (answering.messages, false)
    }
}

/// Skips a body of `body` bytes starting at `rest`: returns what follows it in `rest` and sets
/// `body_left` to the part still to arrive in later reads.
fn skip_body<'r>(body_left: &mut u64, body: u64, rest: &'r [u8]) -> &'r [u8] {
    let skip = usize::try_from(body).map_or(rest.len(), |body| body.min(rest.len()));
    *body_left = body - skip as u64;
    rest.get(skip..).unwrap_or_default()
}

/// The responses of one read being built.
struct Answering<'a> {
    out: &'a mut Vec<u8>,
    /// Read from the cache once per read, when the first response needs it.
    date: Option<[u8; DATE_LEN]>,
    messages: u64,
    work: WorkDist,
}

impl Answering<'_> {
    /// Burns the request's work and appends its response; true if the connection closes.
    fn request(&mut self, head: &Head) -> bool {
        self.work.run_one();
        let date = self.date();
        respond(self.out, &date, Some(head));
        self.messages += 1;
        head.persist == Persist::Close
    }

    fn bad_request(&mut self) {
        let date = self.date();
        respond(self.out, &date, None);
        self.messages += 1;
    }

    fn date(&mut self) -> [u8; DATE_LEN] {
        *self.date.get_or_insert_with(date::current)
    }
}

mod date {
    use super::*;

    #[derive(Clone, Copy)]
    struct Cached {
        second: libc::time_t,
        text: [u8; DATE_LEN],
    }

    thread_local! {
        static CACHE: Cell<Cached> = const {
            Cell::new(Cached { second: libc::time_t::MIN, text: [0; DATE_LEN] })
        };
    }

    /// The `Date` value for now, formatted at most once a second per thread.
    pub(super) fn current() -> [u8; DATE_LEN] {
        let second = coarse_unix_seconds();
        CACHE.with(|cache| {
            let cached = cache.get();
            if cached.second == second {
                return cached.text;
            }
            let text = format(second);
            cache.set(Cached { second, text });
            text
        })
    }

    fn coarse_unix_seconds() -> libc::time_t {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec for the kernel (or vDSO) to write.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } == 0 {
            now.tv_sec
        } else {
            // Not expected on Linux; fall back to the precise clock.
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as libc::time_t)
        }
    }

    /// IMF-fixdate of a Unix time, clamped to the years httpdate can format (1970..=9999).
    pub(super) fn format(second: libc::time_t) -> [u8; DATE_LEN] {
        let second = u64::try_from(second).unwrap_or(0).min(253_402_300_799);
        let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(second));
        let mut text = [b' '; DATE_LEN];
        // Always exactly DATE_LEN bytes: `HttpDate` formats into a fixed 29-byte array.
        let _ = write!(&mut text[..], "{date}");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Reply;
    use crate::work::Rng;

    /// A connection with its own response buffer, as a `Session` drives it.
    #[derive(Default)]
    struct Conn {
        conn: super::Conn,
        out: Vec<u8>,
    }

    impl Conn {
        fn new() -> Conn {
            Conn::default()
        }

        fn on_read(&mut self, input: &[u8], work: WorkDist) -> Reply<'_> {
            let (messages, close) = self.conn.on_read_into(input, &mut self.out, work);
            Reply {
                bytes: &self.out,
                messages,
                close,
            }
        }
    }

    /// `bytes` with every Date value replaced by `D...D`, after checking that it is a valid
    /// IMF-fixdate within a few seconds of now.
    fn masked(bytes: &[u8]) -> Vec<u8> {
        const MARK: &[u8] = b"\r\nDate: ";
        let mut out = bytes.to_vec();
        let mut at = 0;
        while let Some(i) = find(&out[at..], MARK) {
            let start = at + i + MARK.len();
            let date = std::str::from_utf8(&out[start..start + DATE_LEN]).unwrap();
            let when = httpdate::parse_http_date(date).unwrap();
            let age = SystemTime::now().duration_since(when).unwrap_or_default();
            assert!(age < Duration::from_secs(5), "{date} is {age:?} old");
            out[start..start + DATE_LEN].copy_from_slice(&[b'D'; DATE_LEN]);
            at = start + DATE_LEN;
        }
        out
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    const D: &str = "DDDDDDDDDDDDDDDDDDDDDDDDDDDDD";

    fn ok() -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\
             Server: bench\r\nDate: {D}\r\n\r\nHello, World!"
        )
    }

    fn bad() -> String {
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nServer: bench\r\nDate: {D}\r\n\
             Connection: close\r\n\r\n"
        )
    }

    /// TechEmpower's plaintext request.
    const TFB: &str = "GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: Mozilla/5.0 (X11; \
        Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 \
        Trident/10.0 Safari/600.00\r\nCookie: uid=12345678901234567890; \
        __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n\
        Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,\
        */*;q=0.7\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

    /// Output, messages and close of feeding `chunks` to a fresh connection, one read each.
    fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, u64, bool) {
        let mut conn = Conn::new();
        let (mut out, mut messages, mut close) = (Vec::new(), 0, false);
        // A design never passes an empty read (a read of 0 bytes closes the connection).
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            if close {
                break; // The design has closed the connection.
            }
            let reply = conn.on_read(chunk, WorkDist::NONE);
            out.extend_from_slice(reply.bytes);
            messages += reply.messages;
            close = reply.close;
        }
        (masked(&out), messages, close)
    }

    fn feed_str(chunks: &[&str]) -> (String, u64, bool) {
        let (out, messages, close) = feed(chunks.iter().map(|c| c.as_bytes()));
        (String::from_utf8(out).unwrap(), messages, close)
    }

    #[test]
    fn get_is_answered_with_the_exact_plaintext_response() {
        assert_eq!(feed_str(&[TFB]), (ok(), 1, false));
        assert_eq!(
            feed_str(&["GET /anything?x=1 HTTP/1.1\r\n\r\n"]),
            (ok(), 1, false)
        );
        assert_eq!(BODY.len(), 13);
        assert_eq!(SERVER, "bench");
    }

    #[test]
    fn the_date_is_an_imf_fixdate_cached_per_second() {
        assert_eq!(&date::format(784111777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&date::format(-5), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &date::format(libc::time_t::MAX),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        masked(&[&b"\r\nDate: "[..], &date::current()[..]].concat());
    }

    fn ok_n(n: usize) -> String {
        ok().repeat(n)
    }

    #[test]
    fn sixteen_pipelined_requests_in_one_read_get_sixteen_responses_in_one_buffer() {
        let input = TFB.repeat(16);
        let mut conn = Conn::new();
        let reply = conn.on_read(input.as_bytes(), WorkDist::NONE);
        assert_eq!((reply.messages, reply.close), (16, false));
        assert_eq!(masked(reply.bytes), ok_n(16).into_bytes());
    }

    #[test]
    fn pipelined_requests_split_at_every_byte_give_the_same_responses() {
        let input = TFB.repeat(16);
        let input = input.as_bytes();
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(
                feed([a, b]),
                (ok_n(16).into_bytes(), 16, false),
                "split at {split}"
            );
        }
        // And one byte per read.
        assert_eq!(feed(input.chunks(1)), (ok_n(16).into_bytes(), 16, false));
        // A head split across three reads.
        assert_eq!(
            feed_str(&["GET / HT", "TP/1.1\r\nHost: a\r\n", "\r\n"]),
            (ok(), 1, false)
        );
    }

    #[test]
    fn connection_close_is_answered_then_closes_and_ignores_the_rest() {
        let close = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let expected = ok().replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        assert_eq!(feed_str(&[close]), (expected.clone(), 1, true));
        // Options are comma-separated and case-insensitive.
        assert_eq!(
            feed_str(&["GET / HTTP/1.1\r\nconnection: Upgrade , CLOSE\r\n\r\n"]),
            (expected.clone(), 1, true)
        );
        // Requests after it are not answered, in the same read or later.
        let mut conn = Conn::new();
        let input = format!("GET / HTTP/1.1\r\n\r\n{close}GET / HTTP/1.1\r\n\r\n");
        let reply = conn.on_read(input.as_bytes(), WorkDist::NONE);
        assert_eq!(
            (masked(reply.bytes), reply.messages, reply.close),
            (format!("{}{expected}", ok()).into_bytes(), 2, true)
        );
        let reply = conn.on_read(b"GET / HTTP/1.1\r\n\r\n", WorkDist::NONE);
        assert_eq!(
            (reply.bytes, reply.messages, reply.close),
            (&b""[..], 0, true)
        );
    }

    #[test]
    fn http_1_0_closes_unless_keep_alive_is_asked_for() {
        let close = ok().replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        assert_eq!(feed_str(&["GET / HTTP/1.0\r\n\r\n"]), (close, 1, true));
        let keep = ok().replace("\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n");
        let request = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        assert_eq!(feed_str(&[request, request]), (keep.repeat(2), 2, false));
    }

    #[test]
    fn head_and_other_methods() {
        let head = ok().replace("Hello, World!", "");
        assert_eq!(feed_str(&["HEAD / HTTP/1.1\r\n\r\n"]), (head, 1, false));
        let not_allowed = format!(
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\
             Server: bench\r\nDate: {D}\r\n\r\n"
        );
        // The body is skipped, also when it arrives over several reads, and the next request
        // is answered.
        let post = "POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
        let get = "GET / HTTP/1.1\r\n\r\n";
        let expected = (format!("{not_allowed}{}", ok()), 2, false);
        assert_eq!(feed_str(&[&format!("{post}{get}")]), expected);
        let stream = format!("{post}{get}");
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(feed_str(&[a, b]), expected, "split at {split}");
        }
        assert_eq!(
            feed_str(&[
                "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
                "c",
                "de",
                get
            ]),
            expected
        );
        // A GET with a body (and a duplicate, equal Content-Length) is still a GET.
        assert_eq!(
            feed_str(&[
                "GET / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nGET",
                get
            ]),
            (ok_n(2), 2, false)
        );
    }

    #[test]
    fn garbage_is_a_400_that_closes() {
        for garbage in [
            "garbage\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            "\x00\x01\x02",
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(feed_str(&[garbage]), (bad(), 1, true), "{garbage:?}");
        }
        // Valid requests before it in the same read are answered first.
        assert_eq!(
            feed_str(&["GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nBREW\r\n\r\n"]),
            (format!("{}{}", ok_n(2), bad()), 3, true)
        );
        // A bad head completed from a split read.
        assert_eq!(
            feed_str(&["GET / HTTP/1.1\r\nBad", " Header\r\n\r\n"]),
            (bad(), 1, true)
        );
    }

    /// A request whose head is exactly `len` bytes long.
    fn head_of_len(len: usize) -> String {
        let start = "GET / HTTP/1.1\r\nX: ";
        let end = "\r\n\r\n";
        format!("{start}{}{end}", "a".repeat(len - start.len() - end.len()))
    }

    #[test]
    fn heads_over_8_kib_are_a_400_however_they_are_split() {
        let fits = head_of_len(MAX_HEAD);
        let too_long = head_of_len(MAX_HEAD + 1);
        assert_eq!(feed_str(&[&fits]), (ok(), 1, false));
        assert_eq!(feed_str(&[&too_long]), (bad(), 1, true));
        for split in [1, 100, MAX_HEAD - 1, MAX_HEAD, MAX_HEAD + 1] {
            let (a, b) = fits.split_at(split.min(fits.len()));
            assert_eq!(feed_str(&[a, b]), (ok(), 1, false), "split at {split}");
            let (a, b) = too_long.split_at(split);
            assert_eq!(feed_str(&[a, b]), (bad(), 1, true), "split at {split}");
        }
        // A head that never ends is refused once 8 KiB are buffered, not buffered for ever.
        let mut conn = Conn::new();
        let start = b"GET / HTTP/1.1\r\nX-Long: ";
        assert_eq!(conn.on_read(start, WorkDist::NONE).messages, 0);
        let mut sent = start.len();
        let reply = loop {
            let reply = conn.on_read(&[b'a'; 500], WorkDist::NONE);
            sent += 500;
            if reply.messages > 0 {
                break reply;
            }
            assert!(sent < MAX_HEAD, "{sent} bytes buffered");
        };
        assert!(sent >= MAX_HEAD);
        assert_eq!(
            (masked(reply.bytes), reply.close),
            (bad().into_bytes(), true)
        );
        assert!(conn.conn.partial.capacity() <= MAX_HEAD);
    }

    #[test]
    fn too_many_headers_is_a_400() {
        let with = |n: usize| {
            let headers: String = (0..n).map(|i| format!("H{i}: v\r\n")).collect();
            format!("GET / HTTP/1.1\r\n{headers}\r\n")
        };
        assert_eq!(feed_str(&[&with(MAX_HEADERS)]), (ok(), 1, false));
        assert_eq!(feed_str(&[&with(MAX_HEADERS + 1)]), (bad(), 1, true));
    }

    #[test]
    fn an_empty_or_incomplete_read_answers_nothing() {
        let mut conn = Conn::new();
        for input in [&b""[..], b"GET / HTTP/1.1\r\n", b"Host: x\r\n"] {
            let reply = conn.on_read(input, WorkDist::NONE);
            assert_eq!(
                (reply.bytes, reply.messages, reply.close),
                (&b""[..], 0, false)
            );
        }
        let reply = conn.on_read(b"\r\n", WorkDist::NONE);
        assert_eq!(
            (masked(reply.bytes), reply.messages),
            (ok().into_bytes(), 1)
        );
    }

    #[test]
    fn steady_state_reads_allocate_nothing() {
        let pipelined = TFB.repeat(16);
        let (a, b) = pipelined.as_bytes().split_at(1000);
        let mut conn = Conn::new();
        // Warm-up: `out` grows to its working size, `partial` is reserved.
        for _ in 0..3 {
            conn.on_read(a, WorkDist::NONE);
            conn.on_read(b, WorkDist::NONE);
        }
        let before = crate::test_alloc::allocations_on_this_thread();
        for _ in 0..1000 {
            assert_eq!(
                conn.on_read(pipelined.as_bytes(), WorkDist::NONE).messages,
                16
            );
            let first = conn.on_read(a, WorkDist::NONE).messages;
            assert_eq!(first + conn.on_read(b, WorkDist::NONE).messages, 16);
        }
        assert_eq!(crate::test_alloc::allocations_on_this_thread(), before);
    }

    /// A valid request of the fuzz corpus and the response it must get (`D` for the date).
    fn corpus() -> Vec<(String, String)> {
        let head = ok().replace("Hello, World!", "");
        let keep_10 = ok().replace("\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n");
        let not_allowed = format!(
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\
             Server: bench\r\nDate: {D}\r\n\r\n"
        );
        vec![
            (TFB.to_string(), ok()),
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".into(), ok()),
            ("\r\nGET /a/b?c HTTP/1.1\r\n\r\n".into(), ok()),
            ("HEAD / HTTP/1.1\r\n\r\n".into(), head),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".into(),
                keep_10,
            ),
            (
                "POST /p HTTP/1.1\r\nContent-Length: 20\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\n".into(),
                not_allowed.clone(),
            ),
            (
                "DELETE / HTTP/1.1\r\ncontent-length: 0\r\n\r\n".into(),
                not_allowed,
            ),
        ]
    }

    /// Splits `input` into reads of random sizes (often tiny, sometimes large).
    fn random_chunks<'a>(rng: &mut Rng, mut input: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        while !input.is_empty() {
            let max = [1, 8, 64, 1024, 16 * 1024][(rng.next_u64() % 5) as usize];
            let n = 1 + (rng.next_u64() % max) as usize;
            let (chunk, rest) = input.split_at(n.min(input.len()));
            chunks.push(chunk);
            input = rest;
        }
        chunks
    }

    /// Feeds `chunks` and checks the invariants that hold for any input: the output is a
    /// sequence of complete responses, one per message; a 400 is the last response and closes;
    /// nothing follows a close.
    fn check_invariants(chunks: &[&[u8]]) -> (Vec<u8>, u64, bool) {
        let mut conn = Conn::new();
        let (mut out, mut messages, mut closed) = (Vec::new(), 0, false);
        for chunk in chunks {
            let reply = conn.on_read(chunk, WorkDist::NONE);
            if closed {
                assert_eq!(
                    (reply.bytes, reply.messages, reply.close),
                    (&b""[..], 0, true)
                );
                continue;
            }
            out.extend_from_slice(reply.bytes);
            messages += reply.messages;
            closed = reply.close;
        }
        let mut rest = &out[..];
        let mut responses = 0;
        let mut last_status = 0;
        while !rest.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let len = match response.parse(rest) {
                Ok(httparse::Status::Complete(len)) => len,
                other => panic!(
                    "not a response: {other:?} in {:?}",
                    String::from_utf8_lossy(rest)
                ),
            };
            assert_ne!(last_status, 400, "a response after a 400");
            last_status = response.code.unwrap();
            let length = response
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .map(|h| {
                    std::str::from_utf8(h.value)
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .unwrap();
            let body = if length == 13 && rest[len..].starts_with(BODY) {
                13
            } else {
                0
            };
            rest = &rest[len + body..];
            responses += 1;
        }
        assert_eq!(responses, messages);
        if last_status == 400 {
            assert!(closed);
        }
        (out, messages, closed)
    }

    #[test]
    fn fuzz_random_splits_of_valid_pipelines_get_the_right_responses() {
        let corpus = corpus();
        let close = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let close_response = ok().replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        let mut rng = Rng::for_stream(2024, 0);
        for case in 0..3000 {
            let n = 1 + (rng.next_u64() % 40) as usize;
            let (mut input, mut expected) = (String::new(), String::new());
            for _ in 0..n {
                let (request, response) = &corpus[(rng.next_u64() % corpus.len() as u64) as usize];
                input += request;
                expected += response;
            }
            let ends_with_close = rng.next_u64() % 4 == 0;
            if ends_with_close {
                input += close;
                expected += &close_response;
                input += "GET / HTTP/1.1\r\n\r\n"; // never answered
            }
            let chunks = random_chunks(&mut rng, input.as_bytes());
            let (out, messages, closed) = check_invariants(&chunks);
            let answered = n as u64 + u64::from(ends_with_close);
            assert_eq!(
                (String::from_utf8(masked(&out)).unwrap(), messages, closed),
                (expected, answered, ends_with_close),
                "case {case}"
            );
        }
    }

    #[test]
    fn fuzz_random_and_mutated_bytes_never_panic() {
        const TOKENS: &[&str] = &[
            "GET ",
            "POST ",
            "HEAD ",
            "/",
            " HTTP/1.1",
            " HTTP/1.0",
            "\r\n",
            "\r\n\r\n",
            "\n",
            ": ",
            "Content-Length: ",
            "Connection: close",
            "Connection: keep-alive",
            "Transfer-Encoding: chunked",
            "0",
            "7",
            "18446744073709551616",
            " ",
            "\t",
            "\x00",
            "\x7f",
            "\u{e9}",
            "Host: x",
        ];
        let corpus = corpus();
        let mut rng = Rng::for_stream(7, 0);
        for _ in 0..3000 {
            let mut input: Vec<u8> = Vec::new();
            match rng.next_u64() % 3 {
                // Random bytes.
                0 => (0..rng.next_u64() % 2000).for_each(|_| input.push(rng.next_u64() as u8)),
                // Random HTTP-ish tokens.
                1 => (0..rng.next_u64() % 300).for_each(|_| {
                    let token = TOKENS[(rng.next_u64() % TOKENS.len() as u64) as usize];
                    input.extend_from_slice(token.as_bytes());
                }),
                // A valid pipeline with a few bytes replaced, inserted or deleted.
                _ => {
                    for _ in 0..1 + rng.next_u64() % 20 {
                        let (request, _) = &corpus[(rng.next_u64() % 7) as usize];
                        input.extend_from_slice(request.as_bytes());
                    }
                    for _ in 0..1 + rng.next_u64() % 4 {
                        let at = (rng.next_u64() % input.len() as u64) as usize;
                        match rng.next_u64() % 3 {
                            0 => input[at] = rng.next_u64() as u8,
                            1 => input.insert(at, rng.next_u64() as u8),
                            _ => {
                                input.remove(at);
                            }
                        }
                        if input.is_empty() {
                            break;
                        }
                    }
                }
            }
            let chunks = random_chunks(&mut rng, &input);
            check_invariants(&chunks);
        }
        // A huge header section and a huge body, fed in reads of the design's buffer size.
        let big = [
            b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n".to_vec(),
            vec![b'x'; 1_000_000],
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![b'a'; 100_000],
        ]
        .concat();
        let chunks: Vec<&[u8]> = big.chunks(crate::net::BUF_SIZE).collect();
        let (_, messages, closed) = check_invariants(&chunks);
        assert_eq!((messages, closed), (3, true));
    }
}
