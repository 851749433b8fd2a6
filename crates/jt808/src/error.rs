//! The error types of the codec.
//!
//! Byte offsets in frame errors count from the first header byte of the
//! *unescaped* frame (the byte after the opening `0x7e`), except for
//! [`DecodeError::BadEscape`] and [`DecodeError::Hex`], which point into the
//! text or bytes the caller gave.

/// Why a frame (or hex text of one) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Hex text held a character that is not a hex digit.
    #[error("hex: character {found:?} at position {offset} is not a hex digit")]
    Hex {
        /// Character position in the text.
        offset: usize,
        /// The offending character.
        found: char,
    },
    /// Hex text held an odd number of digits.
    #[error("hex: odd number of digits ({digits})")]
    OddHex {
        /// How many digits there were.
        digits: usize,
    },
    /// A frame with no bytes between its delimiters.
    #[error("empty frame")]
    Empty,
    /// A `0x7d` not followed by `0x01` or `0x02`.
    #[error("bad escape: 0x7d followed by {next} at wire byte {offset}")]
    BadEscape {
        /// Offset of the `0x7d` in the escaped bytes.
        offset: usize,
        /// What followed it (`end of frame` when nothing did).
        next: EscapeNext,
    },
    /// A frame longer than the framer allows.
    #[error("frame longer than {max} bytes")]
    FrameTooLong {
        /// The limit.
        max: usize,
    },
    /// Fewer bytes than a header and a checksum need.
    #[error("frame too short: {len} bytes, a {version} header and checksum need {need}")]
    TooShort {
        /// Unescaped length.
        len: usize,
        /// Bytes needed.
        need: usize,
        /// Which header layout was expected.
        version: &'static str,
    },
    /// The XOR checksum does not match.
    #[error(
        "message 0x{msg_id:04x}: checksum 0x{found:02x} at byte {offset}, computed 0x{computed:02x}"
    )]
    Checksum {
        /// Message id from the header.
        msg_id: u16,
        /// Offset of the checksum byte.
        offset: usize,
        /// The checksum the frame carries.
        found: u8,
        /// The XOR of header and body.
        computed: u8,
    },
    /// The body length in the header differs from the bytes present.
    #[error("message 0x{msg_id:04x}: header says body is {declared} bytes, frame has {actual}")]
    BodyLength {
        /// Message id from the header.
        msg_id: u16,
        /// Length from the body attributes.
        declared: usize,
        /// Bytes between header and checksum.
        actual: usize,
    },
    /// A field runs past the end of the body.
    #[error("message 0x{msg_id:04x}: {field} at byte {offset} needs {need} bytes, {have} left")]
    Truncated {
        /// Message id from the header.
        msg_id: u16,
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the body.
        have: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("message 0x{msg_id:04x}: {field} at byte {offset}: {reason}")]
    Invalid {
        /// Message id from the header (0 before it is known).
        msg_id: u16,
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes left over after the last field of a fixed body.
    #[error(
        "message 0x{msg_id:04x}: {extra} unexpected bytes after the body's last field at byte {offset}"
    )]
    Trailing {
        /// Message id from the header.
        msg_id: u16,
        /// Offset of the first extra byte.
        offset: usize,
        /// How many bytes are left over.
        extra: usize,
    },
    /// The body is encrypted (RSA), which this codec does not decrypt.
    #[error("message 0x{msg_id:04x}: body encrypted (method bits {method:#05b}), cannot decode")]
    Encrypted {
        /// Message id from the header.
        msg_id: u16,
        /// The three encryption bits.
        method: u8,
    },
    /// The frame is one packet of a sub-packaged message; reassemble first.
    #[error(
        "message 0x{msg_id:04x}: packet {index} of {total}, reassemble before decoding the body"
    )]
    Fragment {
        /// Message id from the header.
        msg_id: u16,
        /// Packet number (from 1).
        index: u16,
        /// Total packets.
        total: u16,
    },
    /// A sub-package could not be taken into reassembly.
    #[error("message 0x{msg_id:04x} packet {index}/{total}: {reason}")]
    Reassembly {
        /// Message id from the header.
        msg_id: u16,
        /// Packet number.
        index: u16,
        /// Total packets.
        total: u16,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What followed a `0x7d` escape byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeNext {
    /// A byte other than `0x01` or `0x02`.
    Byte(u8),
    /// The frame ended.
    End,
}

impl std::fmt::Display for EscapeNext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EscapeNext::Byte(b) => write!(f, "0x{b:02x}"),
            EscapeNext::End => f.write_str("end of frame"),
        }
    }
}

impl DecodeError {
    /// The message id the error is about, when the header was read.
    pub fn msg_id(&self) -> Option<u16> {
        match self {
            DecodeError::Checksum { msg_id, .. }
            | DecodeError::BodyLength { msg_id, .. }
            | DecodeError::Truncated { msg_id, .. }
            | DecodeError::Trailing { msg_id, .. }
            | DecodeError::Encrypted { msg_id, .. }
            | DecodeError::Fragment { msg_id, .. }
            | DecodeError::Reassembly { msg_id, .. } => Some(*msg_id),
            DecodeError::Invalid { msg_id, .. } if *msg_id != 0 => Some(*msg_id),
            _ => None,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The body is longer than the 10-bit length field allows; split it into packets.
    #[error("message 0x{msg_id:04x}: body of {len} bytes exceeds 1023; use packets")]
    BodyTooLong {
        /// Message id.
        msg_id: u16,
        /// Body length.
        len: usize,
    },
    /// A field value does not fit its wire field.
    #[error("message 0x{msg_id:04x}: {field}: {reason}")]
    Field {
        /// Message id.
        msg_id: u16,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The header's message id differs from the body's.
    #[error("header message id 0x{header:04x} differs from body's 0x{body:04x}")]
    IdMismatch {
        /// Id in the header.
        header: u16,
        /// Id of the body.
        body: u16,
    },
}
