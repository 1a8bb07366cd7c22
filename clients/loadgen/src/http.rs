//! HTTP/1.1 (docs/loadgen.md, "HTTP"): every request is the same `GET`; every response is parsed
//! incrementally, however the bytes are split across reads: status line, headers (only
//! `Content-Length`, `Connection` and `Transfer-Encoding` matter), then the body is skipped by
//! its length. A response is a success only with status 200; one that cannot be framed is
//! `Invalid` (an `http_parse` error).
//!
//! No allocation per response: a line that arrives whole in one read is parsed in place; only a
//! line split across reads is copied into a small per-connection buffer.

use std::sync::Arc;

use crate::protocol::{Parsed, Protocol};
use crate::stats::ErrorKind;

/// Bytes of a header line kept for parsing; the rest of a longer line is skipped (a header we
/// need that does not fit is a parse error).
const LINE_MAX: usize = 256;
/// Most bytes of status line plus headers in one response.
const HEAD_MAX: usize = 64 * 1024;

/// The request bytes, built once and shared by a thread's connections.
pub fn request(path: &str, host: &str, port: u16) -> Arc<[u8]> {
    let host = if host.contains(':') {
        format!("[{host}]") // IPv6 literal
    } else {
        host.to_string()
    };
    format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n")
        .into_bytes()
        .into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    StatusLine,
    Headers,
    Body { left: u64 },
}

pub struct Http {
    request: Arc<[u8]>,
    stage: Stage,
    /// A line split across reads, so far (its first `LINE_MAX` bytes).
    line: Box<[u8]>,
    line_len: usize,
    line_truncated: bool,
    /// Bytes of the current response so far, and of its head.
    got: usize,
    head: usize,
    status: u16,
    http10: bool,
    content_length: Option<u64>,
    close: bool,
    keep_alive: bool,
}

/// What one head line says.
enum Line {
    Status { code: u16, http10: bool },
    ContentLength(u64),
    Connection { close: bool, keep_alive: bool },
    End,
    Other,
}

impl Http {
    pub fn new(request: Arc<[u8]>) -> Http {
        Http {
            request,
            stage: Stage::StatusLine,
            line: vec![0; LINE_MAX].into_boxed_slice(),
            line_len: 0,
            line_truncated: false,
            got: 0,
            head: 0,
            status: 0,
            http10: false,
            content_length: None,
            close: false,
            keep_alive: false,
        }
    }

    fn buffer(&mut self, part: &[u8]) {
        let room = LINE_MAX - self.line_len;
        let n = part.len().min(room);
        self.line[self.line_len..self.line_len + n].copy_from_slice(&part[..n]);
        self.line_len += n;
        self.line_truncated |= n < part.len();
    }

    /// Applies one complete head line; `Err` when the response is malformed.
    fn apply(&mut self, line: Line) -> Result<(), ()> {
        match (self.stage, line) {
            (Stage::StatusLine, Line::Status { code, http10 }) => {
                self.status = code;
                self.http10 = http10;
                self.stage = Stage::Headers;
            }
            (Stage::Headers, Line::ContentLength(n)) => {
                if self.content_length.is_some_and(|m| m != n) {
                    return Err(()); // conflicting lengths
                }
                self.content_length = Some(n);
            }
            (Stage::Headers, Line::Connection { close, keep_alive }) => {
                self.close |= close;
                self.keep_alive |= keep_alive;
            }
            (Stage::Headers, Line::Other) => {}
            (Stage::Headers, Line::End) => {
                let left = match self.status {
                    204 | 304 => 0,
                    _ => self.content_length.ok_or(())?,
                };
                self.stage = Stage::Body { left };
            }
            _ => return Err(()),
        }
        Ok(())
    }

    fn finish(&mut self, consumed: usize) -> Parsed {
        let done = Parsed::Complete {
            consumed,
            len: self.got,
            ok: self.status == 200,
            close: self.close || (self.http10 && !self.keep_alive),
        };
        self.reset();
        done
    }
}

impl Protocol for Http {
    const INVALID: ErrorKind = ErrorKind::HttpParse;

    fn request_len(&self, _seq: u64) -> usize {
        self.request.len()
    }

    fn fill_request(&self, _seq: u64, offset: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.request[offset..offset + dst.len()]);
    }

    fn parse_response(&mut self, _seq: u64, input: &[u8]) -> Parsed {
        let mut i = 0;
        loop {
            if let Stage::Body { left } = self.stage {
                let take = left.min((input.len() - i) as u64);
                i += take as usize;
                self.got += take as usize;
                if take == left {
                    return self.finish(i);
                }
                self.stage = Stage::Body { left: left - take };
                return Parsed::Partial;
            }
            let rest = &input[i..];
            let newline = match rest.iter().position(|&b| b == b'\n') {
                Some(j) => j,
                None => {
                    self.head += rest.len();
                    self.got += rest.len();
                    if self.head > HEAD_MAX {
                        return Parsed::Invalid;
                    }
                    self.buffer(rest);
                    return Parsed::Partial;
                }
            };
            self.head += newline + 1;
            self.got += newline + 1;
            if self.head > HEAD_MAX {
                return Parsed::Invalid;
            }
            let segment = &rest[..newline];
            let parsed = if self.line_len == 0 && !self.line_truncated {
                classify(self.stage, segment, false) // whole in this read: parsed in place
            } else {
                self.buffer(segment);
                let parsed = classify(self.stage, &self.line[..self.line_len], self.line_truncated);
                (self.line_len, self.line_truncated) = (0, false);
                parsed
            };
            i += newline + 1;
            match parsed.map(|line| self.apply(line)) {
                Some(Ok(())) => {}
                _ => return Parsed::Invalid,
            }
            if self.stage == (Stage::Body { left: 0 }) {
                return self.finish(i);
            }
        }
    }

    fn reset(&mut self) {
        self.stage = Stage::StatusLine;
        (self.line_len, self.line_truncated) = (0, false);
        (self.got, self.head, self.status, self.http10) = (0, 0, 0, false);
        (self.content_length, self.close, self.keep_alive) = (None, false, false);
    }
}

/// Classifies one head line (without its `\n`); `None` when malformed. `truncated` lines are
/// fine unless they are a header whose value we need.
fn classify(stage: Stage, line: &[u8], truncated: bool) -> Option<Line> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if stage == Stage::StatusLine {
        return status_line(line);
    }
    if line.is_empty() {
        return Some(Line::End);
    }
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
        return None; // includes obsolete line folding
    }
    if name.eq_ignore_ascii_case(b"content-length") {
        if truncated || value.is_empty() || value.len() > 18 {
            return None;
        }
        let mut n = 0u64;
        for &b in value {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(b - b'0');
        }
        Some(Line::ContentLength(n))
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        None // chunked and friends are not supported: the response cannot be framed
    } else if name.eq_ignore_ascii_case(b"connection") {
        let token = |t: &[u8]| {
            value
                .split(|&b| b == b',')
                .any(|v| trim(v).eq_ignore_ascii_case(t))
        };
        Some(Line::Connection {
            close: token(b"close"),
            keep_alive: token(b"keep-alive"),
        })
    } else {
        Some(Line::Other)
    }
}

/// `HTTP/1.x SSS[ reason]`; 1xx (interim) responses are not expected and are malformed here.
fn status_line(line: &[u8]) -> Option<Line> {
    if line.len() < 12 || !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return None;
    }
    let http10 = match line[7] {
        b'0' => true,
        b'1' => false,
        _ => return None,
    };
    let digits = &line[9..12];
    if !digits.iter().all(u8::is_ascii_digit) || (line.len() > 12 && line[12] != b' ') {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (code >= 200).then_some(Line::Status { code, http10 })
}

fn trim(v: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_space(b)).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Http {
        Http::new(request("/x", "127.0.0.1", 80))
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 13\r\n\r\nHello, World!";

    /// Feeds `input` in pieces cut at `cuts`, collecting the answers it completes.
    fn feed(h: &mut Http, input: &[u8], cuts: &[usize]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < input.len()));
        bounds.push(input.len());
        for w in bounds.windows(2) {
            let mut piece = &input[w[0]..w[1]];
            while !piece.is_empty() {
                match h.parse_response(0, piece) {
                    Parsed::Partial => break,
                    Parsed::Invalid => {
                        out.push(Parsed::Invalid);
                        return out;
                    }
                    done @ Parsed::Complete { consumed, .. } => {
                        out.push(done);
                        piece = &piece[consumed..];
                    }
                }
            }
        }
        out
    }

    fn lens(answers: &[Parsed]) -> Vec<(usize, bool, bool)> {
        answers
            .iter()
            .map(|a| match *a {
                Parsed::Complete { len, ok, close, .. } => (len, ok, close),
                _ => (0, false, false),
            })
            .collect()
    }

    #[test]
    fn request_bytes() {
        let h = http();
        let mut buf = vec![0; h.request_len(0)];
        h.fill_request(0, 0, &mut buf);
        assert_eq!(buf, b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n");
        assert_eq!(
            &*request("/", "::1", 8),
            b"GET / HTTP/1.1\r\nHost: [::1]:8\r\n\r\n"
        );
    }

    #[test]
    fn pipelined_responses_split_at_every_pair_of_points() {
        let mut stream = OK.to_vec();
        stream.extend_from_slice(b"HTTP/1.1 500 Oops\r\ncontent-length:  2 \r\n\r\nno");
        stream.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        stream.extend_from_slice(
            b"HTTP/1.1 200 OK\nConnection: keep-alive, Close\nContent-Length: 0\n\n",
        );
        let want = vec![
            (OK.len(), true, false),
            (44, false, false),
            (27, false, false),
            (65, true, true),
        ];
        for a in 0..stream.len() {
            for b in (a..stream.len()).step_by(7) {
                let mut h = http();
                assert_eq!(
                    lens(&feed(&mut h, &stream, &[a, b])),
                    want,
                    "cut at {a}, {b}"
                );
            }
        }
        // Byte by byte.
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(lens(&feed(&mut http(), &stream, &every)), want);
    }

    #[test]
    fn long_lines_are_skipped_but_long_lengths_are_not() {
        let mut long = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1000));
        long.extend_from_slice(b"\r\nContent-Length: 1\r\n\r\nZ");
        for cut in [30, 300, 1020, 1030] {
            assert_eq!(
                lens(&feed(&mut http(), &long, &[cut])),
                [(long.len(), true, false)]
            );
        }
        let mut bad = b"HTTP/1.1 200 OK\r\nContent-Length: ".to_vec();
        bad.extend(std::iter::repeat_n(b'0', 300));
        bad.extend_from_slice(b"1\r\n\r\nZ");
        assert_eq!(feed(&mut http(), &bad, &[20]), [Parsed::Invalid]);
    }

    #[test]
    fn malformed_responses_are_invalid() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],                          // no length
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", // unsupported
            b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n",
            b"HTTP/1.1 20x OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"ello, World!HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(feed(&mut http(), bad, &[]), [Parsed::Invalid], "{bad:?}");
        }
        // A body longer than its Content-Length: the extra bytes are not a status line.
        let mut long_body = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello, World!".to_vec();
        long_body.extend_from_slice(OK);
        let got = feed(&mut http(), &long_body, &[]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Parsed::Invalid);
    }

    #[test]
    fn http10_closes_unless_kept_alive_and_reset_forgets() {
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(lens(&feed(&mut http(), r, &[])), [(r.len(), true, true)]);
        let k = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(lens(&feed(&mut http(), k, &[])), [(k.len(), true, false)]);
        let mut h = http();
        assert_eq!(h.parse_response(0, &OK[..40]), Parsed::Partial);
        h.reset();
        assert_eq!(lens(&feed(&mut h, OK, &[])), [(OK.len(), true, false)]);
    }
}
