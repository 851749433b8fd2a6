//! Whole frames: [`Decoder`] (wire bytes → [`Message`]) and the encoders.

use crate::body::{Body, GeneralReply, ReplyResult, id};
use crate::error::{DecodeError, EncodeError};
use crate::header::{ATTR_LEN_MASK, Header, MAX_BODY, Package, Version};
use crate::wire::{DELIM, ESC, checksum, strip_delims, unescape_from};

/// A decoded message: header and body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The body.
    pub body: Body,
}

/// A checked frame whose body is not yet decoded (borrowed from the wire or the decoder's buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header.
    pub header: Header,
    /// The body bytes (unescaped).
    pub body: &'a [u8],
    /// Offset of the body in the unescaped frame.
    pub body_offset: usize,
}

impl Frame<'_> {
    /// Decodes the body (fails for a sub-package or an encrypted body).
    #[inline]
    pub fn decode_body(&self) -> Result<Body, DecodeError> {
        let h = &self.header;
        if let Some(p) = h.package {
            return Err(DecodeError::Fragment {
                msg_id: h.msg_id,
                index: p.index,
                total: p.total,
            });
        }
        if h.encryption != 0 {
            return Err(DecodeError::Encrypted {
                msg_id: h.msg_id,
                method: h.encryption,
            });
        }
        Body::decode(h.msg_id, h.version, self.body, self.body_offset)
    }
}

/// Checks an unescaped frame (header, body, checksum; no delimiters) and splits it.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<Frame<'_>, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    let (header, declared, hlen) = Header::read(frame)?;
    let last = frame.len() - 1;
    let computed = checksum(&frame[..last]);
    if computed != frame[last] {
        return Err(DecodeError::Checksum {
            msg_id: header.msg_id,
            offset: last,
            found: frame[last],
            computed,
        });
    }
    let body = &frame[hlen..last];
    if body.len() != declared {
        return Err(DecodeError::BodyLength {
            msg_id: header.msg_id,
            declared,
            actual: body.len(),
        });
    }
    Ok(Frame {
        header,
        body,
        body_offset: hlen,
    })
}

/// Decodes frames, unescaping into a reusable buffer (no allocation per frame once warm).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Decoder {
            buf: Vec::with_capacity(1100),
        }
    }

    /// Unescapes and checks one frame (delimiters optional) without decoding its body.
    #[inline]
    pub fn frame<'s>(&'s mut self, wire: &'s [u8]) -> Result<Frame<'s>, DecodeError> {
        let wire = strip_delims(wire);
        match wire.iter().position(|&b| b == ESC) {
            None => parse_frame(wire),
            Some(first) => {
                unescape_from(wire, first, &mut self.buf)?;
                parse_frame(&self.buf)
            }
        }
    }

    /// Decodes one frame over `msg` in place: a 0x0200 is written into `msg`'s
    /// body when it already holds a location (no move of the report, its
    /// unknown-item list reused). The fastest way to decode a stream of reports;
    /// on error `msg` holds a valid but meaningless message.
    pub fn decode_into(&mut self, wire: &[u8], msg: &mut Message) -> Result<(), DecodeError> {
        let f = self.frame(wire)?;
        let h = f.header;
        msg.header = h;
        if h.msg_id == id::LOCATION && h.package.is_none() && h.encryption == 0 {
            if !matches!(msg.body, Body::Location(_)) {
                msg.body = Body::Location(crate::Location::default());
            }
            if let Body::Location(l) = &mut msg.body {
                return l.read_into(&mut crate::wire::Reader::new(
                    f.body,
                    f.body_offset,
                    h.msg_id,
                ));
            }
        }
        msg.body = f.decode_body()?;
        Ok(())
    }

    /// Decodes one whole frame (delimiters optional); sub-packages fail with [`DecodeError::Fragment`].
    pub fn decode(&mut self, wire: &[u8]) -> Result<Message, DecodeError> {
        let f = self.frame(wire)?;
        Ok(Message {
            header: f.header,
            body: f.decode_body()?,
        })
    }
}

/// Appends one frame (delimiters, escaped header, body and checksum) for a ready body.
pub fn encode_frame(header: &Header, body: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mark = out.len();
    out.push(DELIM);
    let start = out.len();
    if let Err(e) = header.write(body.len(), out) {
        out.truncate(mark);
        return Err(e);
    }
    out.extend_from_slice(body);
    finish_frame(out, start);
    Ok(())
}

/// Appends the checksum of `out[start..]`, escapes that range in place, and closes the frame.
fn finish_frame(out: &mut Vec<u8>, start: usize) {
    let cs = checksum(&out[start..]);
    out.push(cs);
    let specials = out[start..]
        .iter()
        .filter(|&&b| b == DELIM || b == ESC)
        .count();
    if specials > 0 {
        let old = out.len();
        out.resize(old + specials, 0);
        let (mut r, mut w) = (old, old + specials);
        while r > start {
            r -= 1;
            let b = out[r];
            if b == DELIM || b == ESC {
                w -= 2;
                out[w] = ESC;
                out[w + 1] = if b == DELIM { 0x02 } else { 0x01 };
            } else {
                w -= 1;
                out[w] = b;
            }
        }
    }
    out.push(DELIM);
}

impl Message {
    /// A message whose header id is taken from the body (no encryption, no sub-package).
    pub fn new(version: Version, phone: crate::Phone, serial: u16, body: Body) -> Message {
        Message {
            header: Header::new(body.msg_id(), version, phone, serial),
            body,
        }
    }

    /// Appends this message as one frame (with delimiters).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let h = &self.header;
        if h.msg_id != self.body.msg_id() {
            return Err(EncodeError::IdMismatch {
                header: h.msg_id,
                body: self.body.msg_id(),
            });
        }
        let mark = out.len();
        out.push(DELIM);
        let start = out.len();
        let res = h.write(0, out).and_then(|()| {
            let body_start = out.len();
            self.body.encode(h.version, out)?;
            let len = out.len() - body_start;
            if len > MAX_BODY {
                return Err(EncodeError::BodyTooLong {
                    msg_id: h.msg_id,
                    len,
                });
            }
            let attrs =
                u16::from_be_bytes([out[start + 2], out[start + 3]]) & !ATTR_LEN_MASK | len as u16;
            out[start + 2..start + 4].copy_from_slice(&attrs.to_be_bytes());
            Ok(())
        });
        if let Err(e) = res {
            out.truncate(mark);
            return Err(e);
        }
        finish_frame(out, start);
        Ok(())
    }

    /// This message as one frame.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Encodes the message as packets of at most `max_body` body bytes each
    /// (one plain frame when it fits); packet `i` gets serial `header.serial + i`.
    /// Returns the number of frames appended to `out`.
    pub fn encode_packets(
        &self,
        max_body: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<u16, EncodeError> {
        let h = &self.header;
        if h.msg_id != self.body.msg_id() {
            return Err(EncodeError::IdMismatch {
                header: h.msg_id,
                body: self.body.msg_id(),
            });
        }
        let max_body = max_body.clamp(1, MAX_BODY);
        let mut body = Vec::new();
        self.body.encode(h.version, &mut body)?;
        if body.len() <= max_body && h.package.is_none() {
            let mut f = Vec::with_capacity(body.len() + 24);
            encode_frame(h, &body, &mut f)?;
            out.push(f);
            return Ok(1);
        }
        let total =
            u16::try_from(body.len().div_ceil(max_body)).map_err(|_| EncodeError::Field {
                msg_id: h.msg_id,
                field: "package total",
                reason: "more than 65535 packets",
            })?;
        for (i, chunk) in body.chunks(max_body).enumerate() {
            let index = i as u16 + 1;
            let ph = Header {
                serial: h.serial.wrapping_add(i as u16),
                package: Some(Package { total, index }),
                ..*h
            };
            let mut f = Vec::with_capacity(chunk.len() + 28);
            encode_frame(&ph, chunk, &mut f)?;
            out.push(f);
        }
        Ok(total)
    }
}

/// A platform general reply (0x8001) to the message with header `to`.
pub fn general_reply(to: &Header, result: ReplyResult, serial: u16) -> Message {
    Message::new(
        to.version,
        to.phone,
        serial,
        Body::PlatformReply(GeneralReply {
            reply_serial: to.serial,
            reply_id: to.msg_id,
            result,
        }),
    )
}

/// Reads just the header of a frame that failed to decode (checksum and lengths not checked).
pub fn peek_header(wire: &[u8]) -> Option<Header> {
    let wire = strip_delims(wire);
    // The longest header is 21 bytes; unescape a bounded prefix.
    let mut buf = Vec::with_capacity(24);
    let mut i = 0;
    while i < wire.len() && buf.len() < 21 {
        match wire[i] {
            ESC => match wire.get(i + 1) {
                Some(0x01) => buf.push(ESC),
                Some(0x02) => buf.push(DELIM),
                _ => return None,
            },
            b => {
                buf.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    // A header read needs at least one byte after it; pad for the length check only.
    let real = buf.len();
    buf.push(0);
    let (h, _, hlen) = Header::read(&buf).ok()?;
    (hlen <= real).then_some(h)
}

/// The reply the protocol gives to a bad frame: a platform general reply with
/// result 2 (message error), when the frame's header can be read.
pub fn error_reply(wire: &[u8], serial: u16) -> Option<Message> {
    let h = peek_header(wire)?;
    // Never answer a reply with a reply.
    if h.msg_id == id::PLATFORM_REPLY || h.msg_id == id::TERMINAL_REPLY {
        return None;
    }
    Some(general_reply(&h, ReplyResult::MessageError, serial))
}
