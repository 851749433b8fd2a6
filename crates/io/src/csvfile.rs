//! Shared CSV machinery: header → column map, a line-exact record loop,
//! and allocation-free field parsing.
//!
//! No field of the contract needs quoting, so a record is exactly one line
//! split at commas. Reading lines ourselves (instead of through a general CSV
//! parser) keeps line numbers exact whatever the line endings or blank lines,
//! and means one stray quote spoils only its own row. Fields wrapped in double
//! quotes are unwrapped.

use std::io::{BufRead, BufReader, Read};

use crate::badrows::{BadRowKind, BadRows};
use crate::error::IoError;

/// A CSV file being streamed: header checked, one reusable line buffer.
pub(crate) struct CsvFile<R: Read> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    /// End offset (exclusive) of each field of the current line in `buf`.
    ends: Vec<u32>,
    /// Index of each required column, in the order the reader asked for them.
    pub cols: Vec<usize>,
    pub file: String,
    pub bad: BadRows,
    pub rows: u64,
    pub line: u64,
}

impl<R: Read> CsvFile<R> {
    /// Opens the stream and maps the required columns. A missing column is
    /// a fatal error naming the file, line 1 and the column.
    pub fn new(inner: R, file: &str, required: &[&'static str]) -> Result<CsvFile<R>, IoError> {
        let mut f = CsvFile {
            inner: BufReader::with_capacity(1 << 16, inner),
            buf: Vec::with_capacity(256),
            ends: Vec::with_capacity(16),
            cols: Vec::new(),
            file: file.to_string(),
            bad: BadRows::new(file),
            rows: 0,
            line: 0,
        };
        if !f.read_line()? {
            return Err(IoError::Header {
                file: file.to_string(),
                message: "the file is empty (no header line)".into(),
            });
        }
        if f.buf.starts_with(b"\xEF\xBB\xBF") {
            f.buf.drain(..3);
            f.split();
        }
        let names: Vec<&[u8]> = (0..f.ends.len()).map(|i| f.raw_field(i)).collect();
        let mut cols = Vec::with_capacity(required.len());
        for &want in required {
            match names.iter().position(|n| *n == want.as_bytes()) {
                Some(i) => cols.push(i),
                None => {
                    return Err(IoError::Header {
                        file: file.to_string(),
                        message: format!(
                            "line 1: missing column `{want}` (the header must name {})",
                            required.join(",")
                        ),
                    });
                }
            }
        }
        f.cols = cols;
        Ok(f)
    }

    /// Reads one line into `buf` (without its line ending) and splits it.
    /// Returns `Ok(false)` at the end of the input.
    fn read_line(&mut self) -> Result<bool, IoError> {
        self.buf.clear();
        let n = self
            .inner
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| IoError::Read {
                file: self.file.clone(),
                line: self.line + 1,
                message: e.to_string(),
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        self.split();
        Ok(true)
    }

    fn split(&mut self) {
        self.ends.clear();
        for (i, &b) in self.buf.iter().enumerate() {
            if b == b',' {
                self.ends.push(i as u32);
            }
        }
        self.ends.push(self.buf.len() as u32);
    }

    /// Reads the next non-blank data line. Returns `Ok(false)` at the end.
    pub fn next_record(&mut self) -> Result<bool, IoError> {
        loop {
            if !self.read_line()? {
                return Ok(false);
            }
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue; // blank line: not a row, but it counts for line numbers
            }
            self.rows += 1;
            if !self.buf.is_ascii() && std::str::from_utf8(&self.buf).is_err() {
                self.bad.add(BadRowKind::Malformed, self.line, None);
                continue;
            }
            return Ok(true);
        }
    }

    #[inline]
    fn raw_field(&self, k: usize) -> &[u8] {
        let Some(&end) = self.ends.get(k) else {
            return b"";
        };
        let start = if k == 0 {
            0
        } else {
            self.ends[k - 1] as usize + 1
        };
        let f = self.buf[start..end as usize].trim_ascii();
        match f {
            [b'"', inner @ .., b'"'] => inner,
            _ => f,
        }
    }

    /// The field of required column `i` (empty if the row is short),
    /// trimmed, and without surrounding double quotes.
    #[inline]
    pub fn field(&self, i: usize) -> &[u8] {
        self.raw_field(self.cols[i])
    }
}

/// Guards a file's time order. A row older than the newest by more than its
/// tolerance is `time_backwards`. A row far *ahead* of the newest (a typo'd
/// year) would make every later row look backwards, so a jump of more than
/// `JUMP_MS` is believed only when three rows in a row agree on it (data
/// resuming after an outage); until then the jumping rows are `time_jump`.
pub(crate) struct TimeOrder {
    max_ts: i64,
    candidate: i64,
    confirmations: u8,
}

/// A forward jump larger than this needs confirmation (6 h).
const JUMP_MS: i64 = 6 * 3_600_000;

impl TimeOrder {
    pub fn new() -> TimeOrder {
        TimeOrder {
            max_ts: i64::MIN,
            candidate: i64::MIN,
            confirmations: 0,
        }
    }

    /// Checks a row's time; `Ok` means use the row.
    #[inline]
    pub fn check(&mut self, ts: i64, tolerance_ms: i64) -> Result<(), BadRowKind> {
        if self.max_ts == i64::MIN {
            self.max_ts = ts;
            return Ok(());
        }
        if ts < self.max_ts.saturating_sub(tolerance_ms) {
            return Err(BadRowKind::TimeBackwards);
        }
        if ts > self.max_ts.saturating_add(JUMP_MS) {
            if self.confirmations > 0 && (ts - self.candidate).abs() <= JUMP_MS {
                self.confirmations += 1;
            } else {
                self.candidate = ts;
                self.confirmations = 1;
            }
            if self.confirmations < 3 {
                return Err(BadRowKind::TimeJump);
            }
        }
        self.confirmations = 0;
        self.max_ts = self.max_ts.max(ts);
        Ok(())
    }
}

/// Parses a non-negative decimal integer (no sign, no spaces).
#[inline]
pub(crate) fn parse_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

/// Parses a finite decimal number (`12`, `12.5`, `-3`, `1e3`).
#[inline]
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    const P: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
    // Fast path for plain `123` and `123.45`.
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], Some(&b[p + 1..])),
        None => (b, None),
    };
    if (1..=9).contains(&int.len()) {
        match frac {
            None => {
                if let Some(i) = parse_uint(int) {
                    return Some(i as f64);
                }
            }
            Some(f) if (1..=6).contains(&f.len()) => {
                if let (Some(i), Some(f10)) = (parse_uint(int), parse_uint(f)) {
                    return Some(i as f64 + f10 as f64 / P[f.len()]);
                }
            }
            Some(_) => {}
        }
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses a signed number that must look like an integer, distinguishing
/// negative values (out of range) from garbage.
#[inline]
pub(crate) fn parse_int_signed(b: &[u8]) -> Result<i64, BadRowKind> {
    if let Some(v) = parse_uint(b) {
        return Ok(v as i64);
    }
    if let Some(rest) = b.strip_prefix(b"-")
        && let Some(v) = parse_uint(rest)
    {
        return Ok(-(v as i64));
    }
    Err(BadRowKind::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_uint(b"0"), Some(0));
        assert_eq!(parse_uint(b"123"), Some(123));
        assert_eq!(parse_uint(b""), None);
        assert_eq!(parse_uint(b"1a"), None);
        assert_eq!(parse_uint(b"-1"), None);
        assert_eq!(parse_f64(b"12.5"), Some(12.5));
        assert_eq!(parse_f64(b"12"), Some(12.0));
        assert_eq!(parse_f64(b"0.125"), Some(0.125));
        assert_eq!(parse_f64(b"-3.5"), Some(-3.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"NaN"), None);
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_int_signed(b"-4"), Ok(-4));
        assert_eq!(parse_int_signed(b"4.5"), Err(BadRowKind::BadNumber));
    }

    proptest! {
        #[test]
        fn f64_fast_path_agrees_with_std(i in 0u32..1_000_000, f in 0u32..1000, digits in 1usize..4) {
            let text = format!("{i}.{:0width$}", f % 10u32.pow(digits as u32), width = digits);
            let want: f64 = text.parse().unwrap();
            let got = parse_f64(text.as_bytes()).unwrap();
            prop_assert!((got - want).abs() <= want.abs() * 1e-12);
        }

        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_f64(&b);
            let _ = parse_uint(&b);
            let _ = parse_int_signed(&b);
        }
    }
}
