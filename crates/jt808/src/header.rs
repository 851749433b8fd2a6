//! The message header: id, body attributes, protocol version, BCD phone,
//! serial and sub-package item.

use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

/// Body attributes: bits 0–9 body length.
pub const ATTR_LEN_MASK: u16 = 0x03ff;
/// Body attributes: bits 10–12 encryption method.
pub const ATTR_ENCRYPT_SHIFT: u16 = 10;
/// Body attributes: bit 13 sub-packaged.
pub const ATTR_SUBPACKAGE: u16 = 1 << 13;
/// Body attributes: bit 14 the 2019 version flag.
pub const ATTR_VERSION_2019: u16 = 1 << 14;
/// Largest body one frame can carry.
pub const MAX_BODY: usize = ATTR_LEN_MASK as usize;

/// Which edition of JT/T 808 a frame uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Version {
    /// JT/T 808-2013 (and 2011): 6-byte BCD phone, no version byte.
    #[serde(rename = "2013")]
    V2013,
    /// JT/T 808-2019: version flag set, protocol-version byte, 10-byte BCD phone.
    #[serde(rename = "2019")]
    V2019 {
        /// The protocol-version byte (1 for the 2019 edition).
        protocol: u8,
    },
}

impl Version {
    /// The 2019 edition with protocol version 1.
    pub const V2019_1: Version = Version::V2019 { protocol: 1 };

    /// Bytes of the BCD phone number.
    pub fn phone_bytes(self) -> usize {
        match self {
            Version::V2013 => 6,
            Version::V2019 { .. } => 10,
        }
    }

    /// Whether this is the 2019 edition.
    pub fn is_2019(self) -> bool {
        matches!(self, Version::V2019 { .. })
    }

    /// Header length without the sub-package item.
    pub fn header_len(self) -> usize {
        match self {
            Version::V2013 => 12,
            Version::V2019 { .. } => 17,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Version::V2013 => "2013",
            Version::V2019 { .. } => "2019",
        }
    }
}

/// A terminal's phone number (its identity on the wire), as decimal digits.
///
/// Leading zeros are padding: phones compare and hash by [`Phone::trimmed`], so
/// `13800138000` from a 2013 header equals `00000000013800138000` from a 2019 one.
#[derive(Clone, Copy)]
pub struct Phone {
    digits: [u8; 20],
    len: u8,
}

impl Phone {
    /// A phone from up to 20 decimal digits.
    pub fn new(digits: &str) -> Option<Phone> {
        let b = digits.as_bytes();
        if b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut p = Phone {
            digits: [b'0'; 20],
            len: b.len() as u8,
        };
        p.digits[..b.len()].copy_from_slice(b);
        Some(p)
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }

    /// The digits without leading zeros (equal for the same number in 2013 and 2019 headers).
    pub fn trimmed(&self) -> &str {
        let s = self.as_str().trim_start_matches('0');
        if s.is_empty() { "0" } else { s }
    }

    #[inline]
    fn from_bcd(bcd: &[u8]) -> Option<Phone> {
        let mut p = Phone {
            digits: [0; 20],
            len: (bcd.len() * 2) as u8,
        };
        for (i, &b) in bcd.iter().enumerate() {
            let (h, l) = (b >> 4, b & 15);
            if h > 9 || l > 9 {
                return None;
            }
            p.digits[2 * i] = b'0' + h;
            p.digits[2 * i + 1] = b'0' + l;
        }
        Some(p)
    }

    fn write_bcd(&self, width: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let d = &self.digits[..self.len as usize];
        let n = width * 2;
        if d.len() > n {
            // Leading zeros beyond the width may be dropped; other digits may not.
            let cut = d.len() - n;
            if d[..cut].iter().any(|&c| c != b'0') {
                return Err(EncodeError::Field {
                    msg_id: 0,
                    field: "phone",
                    reason: "more digits than the header holds",
                });
            }
        }
        let mut padded = [b'0'; 20];
        let take = d.len().min(n);
        padded[n - take..n].copy_from_slice(&d[d.len() - take..]);
        for i in 0..width {
            out.push((padded[2 * i] - b'0') << 4 | (padded[2 * i + 1] - b'0'));
        }
        Ok(())
    }
}

impl PartialEq for Phone {
    fn eq(&self, other: &Phone) -> bool {
        self.trimmed() == other.trimmed()
    }
}

impl Eq for Phone {}

impl std::hash::Hash for Phone {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.trimmed().hash(state);
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.as_str())
    }
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The sub-package item of a header (bit 13 set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Package {
    /// Total packets of the message.
    pub total: u16,
    /// This packet's number, from 1.
    pub index: u16,
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// Message id.
    pub msg_id: u16,
    /// Protocol edition.
    pub version: Version,
    /// Terminal phone number.
    pub phone: Phone,
    /// Message serial number.
    pub serial: u16,
    /// Encryption bits (0 = none, 1 = RSA).
    pub encryption: u8,
    /// Set when this frame is one packet of a sub-packaged message.
    pub package: Option<Package>,
}

impl Header {
    /// A plain header (no encryption, no sub-package).
    pub fn new(msg_id: u16, version: Version, phone: Phone, serial: u16) -> Header {
        Header {
            msg_id,
            version,
            phone,
            serial,
            encryption: 0,
            package: None,
        }
    }

    /// Encoded length of this header.
    pub fn len(&self) -> usize {
        self.version.header_len() + if self.package.is_some() { 4 } else { 0 }
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads a header; returns it, the declared body length, and the header length.
    #[inline]
    pub fn read(frame: &[u8]) -> Result<(Header, usize, usize), DecodeError> {
        if frame.len() < 4 {
            return Err(DecodeError::TooShort {
                len: frame.len(),
                need: 13,
                version: "2013",
            });
        }
        let msg_id = u16::from_be_bytes([frame[0], frame[1]]);
        let attrs = u16::from_be_bytes([frame[2], frame[3]]);
        let mut r = Reader::new(frame, 0, msg_id);
        r.bytes(4, "header")?;
        let version = if attrs & ATTR_VERSION_2019 != 0 {
            Version::V2019 {
                protocol: r.u8("protocol version")?,
            }
        } else {
            Version::V2013
        };
        let sub = attrs & ATTR_SUBPACKAGE != 0;
        let need = version.header_len() + if sub { 4 } else { 0 } + 1;
        if frame.len() < need {
            return Err(DecodeError::TooShort {
                len: frame.len(),
                need,
                version: version.name(),
            });
        }
        let at = r.offset();
        let phone = Phone::from_bcd(r.bytes(version.phone_bytes(), "phone")?).ok_or(
            DecodeError::Invalid {
                msg_id,
                field: "phone",
                offset: at,
                reason: "not BCD digits",
            },
        )?;
        let serial = r.u16("serial")?;
        let package = if sub {
            let at = r.offset();
            let total = r.u16("package total")?;
            let index = r.u16("package index")?;
            if total == 0 || index == 0 || index > total {
                return Err(DecodeError::Invalid {
                    msg_id,
                    field: "package",
                    offset: at,
                    reason: "packet number must be 1..=total",
                });
            }
            Some(Package { total, index })
        } else {
            None
        };
        let h = Header {
            msg_id,
            version,
            phone,
            serial,
            encryption: ((attrs >> ATTR_ENCRYPT_SHIFT) & 7) as u8,
            package,
        };
        Ok((h, (attrs & ATTR_LEN_MASK) as usize, r.offset()))
    }

    /// Appends the header for a body of `body_len` bytes.
    pub fn write(&self, body_len: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if body_len > MAX_BODY {
            return Err(EncodeError::BodyTooLong {
                msg_id: self.msg_id,
                len: body_len,
            });
        }
        let mut attrs = body_len as u16 | (u16::from(self.encryption & 7) << ATTR_ENCRYPT_SHIFT);
        if self.package.is_some() {
            attrs |= ATTR_SUBPACKAGE;
        }
        if self.version.is_2019() {
            attrs |= ATTR_VERSION_2019;
        }
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        out.extend_from_slice(&attrs.to_be_bytes());
        if let Version::V2019 { protocol } = self.version {
            out.push(protocol);
        }
        self.phone
            .write_bcd(self.version.phone_bytes(), out)
            .map_err(|e| match e {
                EncodeError::Field { field, reason, .. } => EncodeError::Field {
                    msg_id: self.msg_id,
                    field,
                    reason,
                },
                other => other,
            })?;
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(p) = self.package {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_pads_and_trims() {
        let p = Phone::new("13800138000").unwrap();
        let mut out = Vec::new();
        p.write_bcd(6, &mut out).unwrap();
        assert_eq!(out, [0x01, 0x38, 0x00, 0x13, 0x80, 0x00]);
        assert_eq!(Phone::from_bcd(&out).unwrap().as_str(), "013800138000");
        assert_eq!(Phone::from_bcd(&out).unwrap().trimmed(), "13800138000");
        let long = Phone::new("00000000013800138000").unwrap();
        out.clear();
        long.write_bcd(6, &mut out).unwrap();
        assert_eq!(out, [0x01, 0x38, 0x00, 0x13, 0x80, 0x00]);
        assert!(
            Phone::new("12345678901234567890")
                .unwrap()
                .write_bcd(6, &mut out)
                .is_err()
        );
        assert!(Phone::new("12a").is_none());
        assert!(Phone::from_bcd(&[0x1a]).is_none());
    }
}
