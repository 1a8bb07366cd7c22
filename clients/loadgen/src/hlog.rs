//! HdrHistogram interval log (`--hlog FILE`, docs/loadgen.md, "HdrHistogram log"): one line per
//! interval holding that interval's histogram (all threads merged) in HdrHistogram's V2
//! compressed encoding, readable by HdrHistogram's own tools and by the Python `hdrh` package.
//!
//! Our bucket layout *is* HdrHistogram's for `lowestDiscernibleValue = 1`,
//! `numberOfSignificantValueDigits = 3`: sub-bucket count 2048 (half 1024), unit magnitude 0,
//! and counts index `bucket * 1024 + (v >> bucket)` with `bucket = max(0, floor(log2 v) - 10)`,
//! which is `histogram::index`. So the counts array is encoded as it is, no re-bucketing.
//!
//! V2 encoding (all integers big-endian): cookie `0x1c849313`, payload length, normalizing index
//! offset 0, significant digits 3, lowest 1 (i64), highest [`MAX_NS`] (i64), integer-to-double
//! ratio 1.0 (f64), then the counts from index 0 through the largest value's, each a ZigZag
//! LEB128 varint, a run of `n` zero counts written as `-n`. Compressed: cookie `0x1c849314`,
//! length of the zlib stream, the zlib-deflated V2 encoding. A log line is base64 of that.

use std::io::{self, Write};

use base64::Engine as _;
use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::histogram::{Histogram, MAX_NS};

const V2_ENCODING_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
const SIGNIFICANT_DIGITS: u32 = 3;
const LOWEST: u64 = 1;

/// HdrHistogram's ZigZag LEB128: 7 bits per byte for up to 8 bytes, a 9th byte holds the last 8.
fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    for _ in 0..8 {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The uncompressed V2 encoding of `h`.
pub fn encode_v2(h: &Histogram) -> Vec<u8> {
    let mut counts = Vec::new();
    let mut rest = h.counts_through_max();
    while let Some((&c, tail)) = rest.split_first() {
        if c != 0 {
            put_zigzag(&mut counts, c as i64);
            rest = tail;
            continue;
        }
        // A run of zeros (even of one, as HdrHistogram_c and hdrh write it) as its negated length.
        let zeros = rest.iter().take_while(|&&c| c == 0).count();
        put_zigzag(&mut counts, -(zeros as i64));
        rest = &rest[zeros..];
    }
    let mut out = Vec::with_capacity(40 + counts.len());
    out.extend_from_slice(&V2_ENCODING_COOKIE.to_be_bytes());
    out.extend_from_slice(&(counts.len() as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    out.extend_from_slice(&SIGNIFICANT_DIGITS.to_be_bytes());
    out.extend_from_slice(&LOWEST.to_be_bytes());
    out.extend_from_slice(&MAX_NS.to_be_bytes());
    out.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
    out.extend_from_slice(&counts);
    out
}

/// Base64 of the compressed V2 encoding: the histogram column of a log line.
pub fn encode_compressed(h: &Histogram) -> String {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&encode_v2(h))
        .expect("writing to a Vec cannot fail");
    let deflated = z.finish().expect("writing to a Vec cannot fail");
    let mut out = Vec::with_capacity(8 + deflated.len());
    out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
    out.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
    out.extend_from_slice(&deflated);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Writes the log as intervals close. The first write error is kept and reported by `finish`.
pub struct HlogWriter<W: Write> {
    out: W,
    error: Option<io::Error>,
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header; timestamps of the lines are seconds after `start_epoch_s`, the
    /// measured window's start in seconds since the Unix epoch.
    pub fn new(out: W, start_epoch_s: f64) -> HlogWriter<W> {
        let mut w = HlogWriter { out, error: None };
        let header = format!(
            "#[Histogram log format version 1.3]\n\
             #[StartTime: {start_epoch_s:.3} (seconds since epoch)]\n\
             #[BaseTime: {start_epoch_s:.3} (seconds since epoch)]\n\
             #[loadgen: values in ns (lowest 1, highest {MAX_NS}, 3 significant digits); \
             Interval_Max in ms; one line per interval of the measured window]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
        );
        w.write(header.as_bytes());
        w
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    /// One interval: starting `start_s` after the window's start, `length_s` long.
    pub fn interval(&mut self, start_s: f64, length_s: f64, h: &Histogram) {
        let max_ms = h.max().map_or(0.0, |m| m as f64 / 1e6);
        let line = format!(
            "{start_s:.3},{length_s:.3},{max_ms:.3},{}\n",
            encode_compressed(h)
        );
        self.write(line.as_bytes());
    }

    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    /// The uncompressed V2 payload that Python's `hdrh` 0.10.8 (HdrHistogram's Python port)
    /// produces for `HdrHistogram(1, 60_000_000_000, 3)` recording
    /// 1, 1000, 2047, 2048 x2, 2049, 5000, 123456 x3, 1e9, 60e9:
    /// `zlib.decompress(base64.b64decode(h.encode())[8:]).hex()`.
    const HDRH_PAYLOAD: &str = "1c84931300000016000000000000000300000000000000010000000df8475800\
        3ff00000000000000102cb0f02ab100206c11302cb4a06d1cf01028f5e02";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sample() -> Histogram {
        let mut h = Histogram::new();
        for v in [
            1, 1000, 2047, 2048, 2048, 2049, 5000, 123_456, 123_456, 123_456,
        ] {
            h.record(v);
        }
        h.record(1_000_000_000);
        h.record(MAX_NS);
        h
    }

    #[test]
    fn v2_payload_matches_hdrhistogram() {
        assert_eq!(hex(&encode_v2(&sample())), HDRH_PAYLOAD);
    }

    #[test]
    fn compressed_form_round_trips() {
        let text = encode_compressed(&sample());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        assert_eq!(raw[..4], V2_COMPRESSED_COOKIE.to_be_bytes());
        let len = u32::from_be_bytes(raw[4..8].try_into().unwrap()) as usize;
        assert_eq!(raw.len(), 8 + len);
        let mut payload = Vec::new();
        ZlibDecoder::new(&raw[8..])
            .read_to_end(&mut payload)
            .unwrap();
        assert_eq!(payload, encode_v2(&sample()));
    }

    #[test]
    fn zigzag_leb128() {
        let enc = |v| {
            let mut out = Vec::new();
            put_zigzag(&mut out, v);
            hex(&out)
        };
        assert_eq!(enc(0), "00");
        assert_eq!(enc(-1), "01");
        assert_eq!(enc(1), "02");
        assert_eq!(enc(64), "8001");
        assert_eq!(enc(-1000), "cf0f");
        assert_eq!(enc(i64::MAX).len(), 18); // 9 bytes
    }

    #[test]
    fn empty_histogram_encodes_no_counts() {
        let payload = encode_v2(&Histogram::new());
        assert_eq!(payload.len(), 40);
        assert_eq!(payload[4..8], [0, 0, 0, 0]);
    }

    #[test]
    fn log_lines() {
        let mut w = HlogWriter::new(Vec::new(), 1_700_000_000.5);
        w.interval(0.0, 1.0, &sample());
        w.interval(1.0, 0.25, &Histogram::new());
        let text = String::from_utf8(w.out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "#[StartTime: 1700000000.500 (seconds since epoch)]"
        );
        assert!(
            lines[5].starts_with("0.000,1.000,60000.000,HISTF"),
            "{}",
            lines[5]
        );
        assert!(lines[6].starts_with("1.000,0.250,0.000,"));
    }
}
