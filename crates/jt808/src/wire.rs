//! Bytes on the wire: delimiters, escaping, checksum, hex, a stream framer and
//! the bounds-checked field reader the body decoders share.

use crate::error::{DecodeError, EscapeNext};

/// The frame delimiter.
pub const DELIM: u8 = 0x7e;
/// The escape byte.
pub const ESC: u8 = 0x7d;

/// XOR of all bytes (the frame checksum over header and body).
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    // XOR eight bytes at a time; the fold of a u64 is the XOR of its bytes.
    let mut chunks = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc ^= u64::from_ne_bytes(w);
    }
    let mut x = acc.to_ne_bytes().iter().fold(0u8, |a, b| a ^ b);
    for b in chunks.remainder() {
        x ^= b;
    }
    x
}

/// Strips one leading and one trailing `0x7e` if present.
pub fn strip_delims(wire: &[u8]) -> &[u8] {
    let w = wire.strip_prefix(&[DELIM]).unwrap_or(wire);
    w.strip_suffix(&[DELIM]).unwrap_or(w)
}

/// Unescapes `wire` (without delimiters) into `out` (cleared first).
pub fn unescape_into(wire: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let first = wire.iter().position(|&b| b == ESC).unwrap_or(wire.len());
    unescape_from(wire, first, out)
}

/// [`unescape_into`] when the caller already knows the first escape is at `first`.
#[inline]
pub(crate) fn unescape_from(
    wire: &[u8],
    first: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    out.resize(wire.len(), 0);
    let dst = out.as_mut_slice();
    let first = first.min(wire.len());
    dst[..first].copy_from_slice(&wire[..first]);
    let (mut r, mut w) = (first, first);
    while r < wire.len() {
        let b = wire[r];
        if b == ESC {
            dst[w] = match wire.get(r + 1) {
                Some(0x02) => DELIM,
                Some(0x01) => ESC,
                Some(&other) => {
                    return Err(DecodeError::BadEscape {
                        offset: r,
                        next: EscapeNext::Byte(other),
                    });
                }
                None => {
                    return Err(DecodeError::BadEscape {
                        offset: r,
                        next: EscapeNext::End,
                    });
                }
            };
            r += 2;
        } else {
            dst[w] = b;
            r += 1;
        }
        w += 1;
    }
    out.truncate(w);
    Ok(())
}

/// Appends `bytes` escaped (`0x7e` → `7d 02`, `0x7d` → `7d 01`) to `out`.
pub fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 4);
    for &b in bytes {
        match b {
            DELIM => out.extend_from_slice(&[ESC, 0x02]),
            ESC => out.extend_from_slice(&[ESC, 0x01]),
            _ => out.push(b),
        }
    }
}

/// Parses hex text (whitespace and an optional `0x` per token allowed) into bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut hi: Option<u8> = None;
    let mut digits = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() || c == ',' || c == ':' {
            continue;
        }
        if c == '0' && hi.is_none() && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            continue;
        }
        let v = c.to_digit(16).ok_or(DecodeError::Hex {
            offset: i,
            found: c,
        })? as u8;
        digits += 1;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if hi.is_some() {
        return Err(DecodeError::OddHex { digits });
    }
    Ok(out)
}

/// Formats bytes as upper-case hex with no separators.
pub fn to_hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// A bounds-checked big-endian reader over a body; errors name the field and frame offset.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    msg_id: u16,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at frame offset `base`.
    pub fn new(buf: &'a [u8], base: usize, msg_id: u16) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            msg_id,
        }
    }

    /// Frame offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The message id errors carry.
    pub fn msg_id(&self) -> u16 {
        self.msg_id
    }

    /// Takes `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                msg_id: self.msg_id,
                field,
                offset: self.offset(),
                need: n,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes a fixed-size array.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, field)?);
        Ok(a)
    }

    /// Takes a BYTE.
    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Takes a big-endian WORD.
    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Takes a big-endian DWORD.
    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Takes the rest.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// An error naming `field` at the current offset.
    pub fn invalid(&self, field: &'static str, reason: &'static str) -> DecodeError {
        DecodeError::Invalid {
            msg_id: self.msg_id,
            field,
            offset: self.offset(),
            reason,
        }
    }

    /// Fails if bytes are left over.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                msg_id: self.msg_id,
                offset: self.offset(),
                extra: self.remaining(),
            })
        }
    }
}

/// Splits a byte stream into frames at `0x7e` delimiters, with a bounded buffer.
///
/// Every `0x7e` separates; empty segments (`7e 7e`) are skipped, so both
/// `7e A 7e 7e B 7e` and `7e A 7e B 7e` yield A and B. Bytes before the first
/// delimiter of a stream are yielded as a segment too (they fail to decode).
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    max_frame: usize,
    discarding: bool,
}

impl Framer {
    /// A framer that rejects frames longer than `max_frame` escaped bytes.
    pub fn new(max_frame: usize) -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_frame: max_frame.max(16),
            discarding: false,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (an incomplete frame).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete segment (escaped, without delimiters), or an error
    /// for an over-long one (whose bytes are dropped up to the next delimiter).
    pub fn next_frame(&mut self) -> Option<Result<&[u8], DecodeError>> {
        loop {
            let pending = &self.buf[self.scanned..];
            match pending.iter().position(|&b| b == DELIM) {
                Some(i) => {
                    let end = self.scanned + i;
                    let seg_start = self.start;
                    self.start = end + 1;
                    self.scanned = end + 1;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if end == seg_start {
                        continue;
                    }
                    if end - seg_start > self.max_frame {
                        return Some(Err(DecodeError::FrameTooLong {
                            max: self.max_frame,
                        }));
                    }
                    return Some(Ok(&self.buf[seg_start..end]));
                }
                None => {
                    self.scanned = self.buf.len();
                    if self.buffered() > self.max_frame {
                        // Drop what we hold; skip until the next delimiter.
                        self.start = self.buf.len();
                        let was = self.discarding;
                        self.discarding = true;
                        if !was {
                            return Some(Err(DecodeError::FrameTooLong {
                                max: self.max_frame,
                            }));
                        }
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trip() {
        let raw = [0x30, 0x7e, 0x08, 0x7d, 0x55];
        let mut esc = Vec::new();
        escape_into(&raw, &mut esc);
        assert_eq!(esc, [0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55]);
        let mut back = Vec::new();
        unescape_into(&esc, &mut back).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn bad_escapes_name_offset() {
        let mut out = Vec::new();
        assert_eq!(
            unescape_into(&[1, 2, 0x7d, 0x03], &mut out),
            Err(DecodeError::BadEscape {
                offset: 2,
                next: EscapeNext::Byte(3)
            })
        );
        assert_eq!(
            unescape_into(&[1, 0x7d, 0x01, 0x7d], &mut out),
            Err(DecodeError::BadEscape {
                offset: 3,
                next: EscapeNext::End
            })
        );
    }

    #[test]
    fn checksum_matches_naive() {
        let data: Vec<u8> = (0..=200u8).collect();
        for n in 0..data.len() {
            let naive = data[..n].iter().fold(0, |a, b| a ^ b);
            assert_eq!(checksum(&data[..n]), naive);
        }
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(
            parse_hex("7E 02 0x00 ff").unwrap(),
            [0x7e, 0x02, 0x00, 0xff]
        );
        assert_eq!(
            parse_hex("7e0").unwrap_err(),
            DecodeError::OddHex { digits: 3 }
        );
        assert!(matches!(
            parse_hex("7g"),
            Err(DecodeError::Hex {
                offset: 1,
                found: 'g'
            })
        ));
    }

    #[test]
    fn framer_splits_and_bounds() {
        let mut f = Framer::new(16);
        f.push(&[0x7e, 1, 2, 0x7e, 0x7e, 3]);
        assert_eq!(f.next_frame().unwrap().unwrap(), &[1, 2]);
        assert!(f.next_frame().is_none());
        f.push(&[4, 0x7e, 9, 9]);
        assert_eq!(f.next_frame().unwrap().unwrap(), &[3, 4]);
        assert!(f.next_frame().is_none());
        // An over-long frame is reported once and skipped to the next delimiter.
        f.push(&[0u8; 40]);
        assert!(matches!(
            f.next_frame(),
            Some(Err(DecodeError::FrameTooLong { .. }))
        ));
        assert!(f.next_frame().is_none());
        f.push(&[0u8; 40]);
        assert!(f.next_frame().is_none());
        assert!(f.buffered() <= 16 + 40);
        f.push(&[0x7e, 5, 0x7e]);
        assert_eq!(f.next_frame().unwrap().unwrap(), &[5]);
    }
}
