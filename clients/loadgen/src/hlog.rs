//! HdrHistogram interval log (`--hlog FILE`, docs/loadgen.md, "HdrHistogram log"), written by
//! the `hdrhistogram` crate's `IntervalLogWriter` with its V2 deflate serializer: one line per
//! interval holding that interval's histogram (all threads merged), readable by HdrHistogram's
//! own tools and by the Python `hdrh` package.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::histogram::{Histogram, MAX_NS};

/// Values are ns; the log's `Interval_Max` column is in ms, as HdrHistogram's Java tools write it.
const MAX_VALUE_DIVISOR: f64 = 1e6;

/// Writes the log as intervals close. The first error is kept and reported by `finish`.
pub struct HlogWriter<'a, W: Write> {
    log: Option<IntervalLogWriter<'a, 'a, W, V2DeflateSerializer>>,
    error: Option<io::Error>,
}

impl<'a, W: Write> HlogWriter<'a, W> {
    /// Writes the header into `out`; timestamps of the lines are seconds after `start_epoch_s`,
    /// the measured window's start in seconds since the Unix epoch.
    pub fn new(
        out: &'a mut W,
        serializer: &'a mut V2DeflateSerializer,
        start_epoch_s: f64,
    ) -> HlogWriter<'a, W> {
        let start = UNIX_EPOCH + Duration::from_secs_f64(start_epoch_s.max(0.0));
        let begun = IntervalLogWriterBuilder::new()
            .add_comment("[Histogram log format version 1.3]")
            .add_comment(&format!(
                "[loadgen: values in ns (lowest 1, highest {MAX_NS}, 3 significant digits); \
                 Interval_Max in ms; one line per interval of the measured window]"
            ))
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(out, serializer);
        match begun {
            Ok(log) => HlogWriter {
                log: Some(log),
                error: None,
            },
            Err(e) => HlogWriter {
                log: None,
                error: Some(e),
            },
        }
    }

    /// One interval: starting `start_s` after the window's start, `length_s` long.
    pub fn interval(&mut self, start_s: f64, length_s: f64, h: &Histogram) {
        let Some(log) = &mut self.log else { return };
        let written = log.write_histogram(
            h.hdr(),
            Duration::from_secs_f64(start_s),
            Duration::from_secs_f64(length_s),
            None,
        );
        if let Err(e) = written {
            self.error = Some(io::Error::other(e.to_string()));
            self.log = None;
        }
    }

    /// The first error met, if any (the caller flushes the underlying writer).
    pub fn finish(self) -> io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use flate2::read::ZlibDecoder;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
    use hdrhistogram::Histogram as Hdr;
    use std::io::Read;

    /// The uncompressed V2 payload that Python's `hdrh` 0.10.8 (HdrHistogram's Python port)
    /// produces for `HdrHistogram(1, 60_000_000_000, 3)` recording
    /// 1, 1000, 2047, 2048 x2, 2049, 5000, 123456 x3, 1e9, 60e9:
    /// `zlib.decompress(base64.b64decode(h.encode())[8:]).hex()`.
    const HDRH_PAYLOAD: &str = "1c84931300000016000000000000000300000000000000010000000df8475800\
        3ff00000000000000102cb0f02ab100206c11302cb4a06d1cf01028f5e02";

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

    fn v2(h: &Histogram) -> Vec<u8> {
        let mut out = Vec::new();
        V2Serializer::new().serialize(h.hdr(), &mut out).unwrap();
        out
    }

    /// The same counts as Python's `hdrh` payload; the bytes differ in one place only: a lone
    /// empty bucket is written as a count of 0 by the crate and as a run of one zero (`-1`) by
    /// `hdrh` and HdrHistogram_c, which every V2 decoder reads alike.
    #[test]
    fn v2_payload_decodes_like_python_hdrh() {
        let ours = v2(&sample());
        let theirs: Vec<u8> = (0..HDRH_PAYLOAD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&HDRH_PAYLOAD[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(ours.len(), theirs.len());
        let differing: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
        assert_eq!(differing, [40]); // the first count: index 0 holds nothing
        assert_eq!((ours[40], theirs[40]), (0x00, 0x01));
        let decode = |bytes: &[u8]| -> Hdr<u64> {
            Deserializer::new().deserialize(&mut &bytes[..]).unwrap()
        };
        assert_eq!(decode(&ours), *sample().hdr());
        assert_eq!(decode(&theirs), *sample().hdr());
    }

    #[test]
    fn log_lines_hold_the_compressed_v2_encoding() {
        let mut out = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut w = HlogWriter::new(&mut out, &mut serializer, 1_700_000_000.5);
        w.interval(0.0, 1.0, &sample());
        w.interval(1.0, 0.25, &Histogram::new());
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[2],
            "#[StartTime: 1700000000.500 (seconds since epoch)]"
        );
        let first = lines.iter().position(|l| !l.starts_with('#')).unwrap();
        assert!(
            lines[first].starts_with("0.000,1.000,60028.879,HISTF"),
            "{}",
            lines[first]
        );
        assert!(lines[first + 1].starts_with("1.000,0.250,0.000,"));
        // The histogram column: cookie 0x1c849314, length, zlib of the V2 payload.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(lines[first].rsplit(',').next().unwrap())
            .unwrap();
        assert_eq!(raw[..4], 0x1c84_9314u32.to_be_bytes());
        let len = u32::from_be_bytes(raw[4..8].try_into().unwrap()) as usize;
        assert_eq!(raw.len(), 8 + len);
        let mut payload = Vec::new();
        ZlibDecoder::new(&raw[8..])
            .read_to_end(&mut payload)
            .unwrap();
        assert_eq!(payload, v2(&sample()));
    }
}
