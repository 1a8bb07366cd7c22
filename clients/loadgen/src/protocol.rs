//! What travels on a connection. A protocol encodes request number `seq` and checks the answer
//! to it; the connection does the I/O and keeps the queue of outstanding requests. Echo lives
//! here, HTTP in `http`.
//!
//! Requests are a pure function of `(seq, offset)`: a connection keeps no copy of what it sent,
//! only a cursor, so a partial write is resumed by generating the rest again, and memory does
//! not grow with the message size or the pipeline depth.

use crate::stats::ErrorKind;

/// Result of feeding received bytes to [`Protocol::parse_response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// All input belonged to the current answer, which needs more bytes.
    Partial,
    /// The answer is complete after `consumed` bytes of the input (the rest belongs to the
    /// next answer); it was `len` bytes long in total. `ok` is false for a well-framed answer
    /// that reports a failure (an HTTP status other than 200); `close` says the server closes
    /// the connection after it.
    Complete {
        consumed: usize,
        len: usize,
        ok: bool,
        close: bool,
    },
    /// The bytes are not the expected answer.
    Invalid,
}

pub trait Protocol {
    /// The error an invalid answer (or an unasked-for byte) counts as.
    const INVALID: ErrorKind;
    /// Length in bytes of request `seq`.
    fn request_len(&self, seq: u64) -> usize;
    /// Writes bytes `offset .. offset + dst.len()` of request `seq` into `dst`.
    fn fill_request(&self, seq: u64, offset: usize, dst: &mut [u8]);
    /// Checks `input`, the next received bytes, against the answer to request `seq` (the oldest
    /// outstanding one).
    fn parse_response(&mut self, seq: u64, input: &[u8]) -> Parsed;
    /// Forgets a partly received answer (the connection was reopened).
    fn reset(&mut self);
}

/// Echo: request `seq` is `size` bytes, bytes `seq * size ..` of the connection's pattern
/// stream; the answer must be the same bytes.
///
/// The pattern stream is the little-endian `u32` counter `salt, salt + 1, salt + 2, ...`, so
/// every message differs, and stale, lost, duplicated or reordered bytes (at any distance short
/// of 16 GiB) and bytes from another connection (different salt) are all caught.
pub struct Echo {
    size: usize,
    salt: u32,
    /// Bytes of the current answer already checked.
    got: usize,
}

impl Echo {
    pub fn new(size: usize, connection: usize) -> Echo {
        Echo {
            size,
            salt: (connection as u32).wrapping_mul(0x9e37_79b9),
            got: 0,
        }
    }

    fn stream_pos(&self, seq: u64, offset: usize) -> u64 {
        seq * self.size as u64 + offset as u64
    }
}

impl Protocol for Echo {
    const INVALID: ErrorKind = ErrorKind::Mismatch;

    fn request_len(&self, _seq: u64) -> usize {
        self.size
    }

    fn fill_request(&self, seq: u64, offset: usize, dst: &mut [u8]) {
        fill_pattern(self.stream_pos(seq, offset), self.salt, dst);
    }

    fn parse_response(&mut self, seq: u64, input: &[u8]) -> Parsed {
        let n = input.len().min(self.size - self.got);
        if !matches_pattern(self.stream_pos(seq, self.got), self.salt, &input[..n]) {
            return Parsed::Invalid;
        }
        self.got += n;
        if self.got < self.size {
            return Parsed::Partial;
        }
        self.got = 0;
        Parsed::Complete {
            consumed: n,
            len: self.size,
            ok: true,
            close: false,
        }
    }

    fn reset(&mut self) {
        self.got = 0;
    }
}

/// Fills `dst` with the pattern stream from byte `pos` on.
fn fill_pattern(pos: u64, salt: u32, dst: &mut [u8]) {
    let word = |i: u64| (i as u32).wrapping_add(salt).to_le_bytes();
    // Up to 3 bytes to reach a word boundary, then whole words, then the tail.
    let head = (pos.wrapping_neg() % 4) as usize;
    let (head_bytes, rest) = dst.split_at_mut(head.min(dst.len()));
    for (i, b) in head_bytes.iter_mut().enumerate() {
        *b = word(pos / 4)[(pos % 4) as usize + i];
    }
    let first = (pos + head as u64) / 4;
    let last = word(first + (rest.len() / 4) as u64);
    let mut words = rest.chunks_exact_mut(4);
    for (i, w) in (&mut words).enumerate() {
        w.copy_from_slice(&word(first + i as u64));
    }
    let tail = words.into_remainder();
    tail.copy_from_slice(&last[..tail.len()]);
}

/// Whether `src` equals the pattern stream from byte `pos` on.
fn matches_pattern(pos: u64, salt: u32, src: &[u8]) -> bool {
    let mut expected = [0u8; 256];
    let mut pos = pos;
    src.chunks(expected.len()).all(|chunk| {
        let e = &mut expected[..chunk.len()];
        fill_pattern(pos, salt, e);
        pos += chunk.len() as u64;
        e == chunk
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(pos: u64, salt: u32, len: usize) -> Vec<u8> {
        (pos..pos + len as u64)
            .map(|p| ((p / 4) as u32).wrapping_add(salt).to_le_bytes()[(p % 4) as usize])
            .collect()
    }

    #[test]
    fn pattern_matches_reference_at_any_alignment() {
        for pos in 0..9u64 {
            for len in 0..23 {
                let mut buf = vec![0; len];
                fill_pattern(pos, 77, &mut buf);
                assert_eq!(buf, reference(pos, 77, len), "pos={pos} len={len}");
                assert!(matches_pattern(pos, 77, &buf));
            }
        }
        let big = reference(3, 5, 1000);
        assert!(matches_pattern(3, 5, &big));
        assert!(!matches_pattern(3, 6, &big));
        assert!(!matches_pattern(4, 5, &big));
    }

    #[test]
    fn echo_checks_answers_split_anywhere() {
        let mut e = Echo::new(10, 1);
        let mut msg = vec![0; 10];
        for seq in 0..3 {
            e.fill_request(seq, 0, &mut msg);
            assert_eq!(e.parse_response(seq, &msg[..3]), Parsed::Partial);
            assert_eq!(e.parse_response(seq, &msg[3..9]), Parsed::Partial);
            // Extra input belongs to the next answer.
            let mut tail = msg[9..].to_vec();
            tail.push(0xff);
            assert_eq!(
                e.parse_response(seq, &tail),
                Parsed::Complete {
                    consumed: 1,
                    len: 10,
                    ok: true,
                    close: false
                }
            );
        }
        // Messages differ, and a stale one is caught.
        let (mut a, mut b) = (vec![0; 10], vec![0; 10]);
        e.fill_request(5, 0, &mut a);
        e.fill_request(6, 0, &mut b);
        assert_ne!(a, b);
        assert_eq!(e.parse_response(6, &a), Parsed::Invalid);
        // A partial request fill continues where the first part stopped.
        let mut part = vec![0; 4];
        e.fill_request(6, 6, &mut part);
        assert_eq!(part, b[6..]);
    }

    #[test]
    fn one_corrupted_byte_is_caught() {
        let mut e = Echo::new(64, 0);
        let mut msg = vec![0; 64];
        e.fill_request(2, 0, &mut msg);
        msg[40] ^= 1;
        assert_eq!(e.parse_response(2, &msg), Parsed::Invalid);
    }
}
