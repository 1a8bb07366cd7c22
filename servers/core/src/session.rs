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
//! Nothing is read while a reply is unwritten, so a client that does not read is back-pressured
//! and a connection holds at most one buffer of data.

use std::fmt;
use std::str::FromStr;

/// What a server speaks (`--protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Every byte received is sent back.
    Echo,
}

impl Protocol {
    /// The name used on the command line and in the counters line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
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
            "http" => Err("http is not implemented yet".into()),
            _ => Err(format!("unknown protocol '{s}' (expected echo or http)")),
        }
    }
}

/// Per-connection protocol state.
#[derive(Debug)]
pub enum Session {
    /// Echo keeps no state: each read is answered in full before the next.
    Echo,
}

/// What to do after a read.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Bytes to write back, in full, before reading again.
    pub bytes: &'a [u8],
    /// Messages answered (the `messages` counter): for echo, 1 per non-empty read.
    pub messages: u64,
    /// Close the connection once `bytes` are written.
    pub close: bool,
}

impl Session {
    pub fn new(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Echo => Session::Echo,
        }
    }

    /// Consumes one read's worth of bytes and says what to write back.
    ///
    /// The reply may borrow `input` itself: echo answers with the bytes just read instead of
    /// copying them into a buffer of the session's own, so every design writes straight from its
    /// read buffer as echo servers do, with no copy in the measured path. Protocols that build
    /// their replies (HTTP) return a buffer owned by the session, and the design's loop stays the
    /// same.
    pub fn on_read<'a>(&'a mut self, input: &'a [u8]) -> Reply<'a> {
        match self {
            Session::Echo => Reply {
                bytes: input,
                messages: u64::from(!input.is_empty()),
                close: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_answers_each_read_with_its_bytes() {
        let mut session = Session::new(Protocol::Echo);
        for input in [&b"x"[..], b"hello", &[0u8; crate::BUF_SIZE]] {
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
        assert_eq!("echo".parse(), Ok(Protocol::Echo));
        assert_eq!(Protocol::Echo.to_string(), "echo");
        assert!("http"
            .parse::<Protocol>()
            .unwrap_err()
            .contains("not implemented"));
        assert!("ECHO".parse::<Protocol>().is_err());
    }
}
