//! Reassembly of sub-packaged messages (header bit 13), with a timeout and bounded memory.
//!
//! Packets of one message share the phone, message id and total, and carry
//! consecutive serials (packet `i` has serial `first + i - 1`), so several
//! transfers of the same message id can be in flight at once. The caller
//! passes the time in (`now_ms`): this module reads no clock.

use crate::body::Body;
use crate::codec::{Frame, Message};
use crate::error::DecodeError;
use crate::header::{Header, Phone};

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// A transfer not completed this long after its first packet is dropped.
    pub timeout_ms: u64,
    /// Most packets one message may have.
    pub max_packets: u16,
    /// Most body bytes one reassembled message may have.
    pub max_message_bytes: usize,
    /// Most bytes held across all transfers in progress.
    pub max_pending_bytes: usize,
    /// Most transfers in progress at once.
    pub max_pending: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout_ms: 60_000,
            max_packets: 256,
            max_message_bytes: 256 * 1024,
            max_pending_bytes: 512 * 1024,
            max_pending: 8,
        }
    }
}

#[derive(Debug)]
struct Pending {
    phone: Phone,
    msg_id: u16,
    first_serial: u16,
    total: u16,
    header: Header,
    parts: Vec<Option<Vec<u8>>>,
    received: u16,
    bytes: usize,
    started_ms: u64,
}

/// A sub-packaged message put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The first packet's header, without the package item.
    pub header: Header,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Reassembled {
    /// Decodes the body (offsets in errors count from the start of the reassembled body).
    pub fn decode(&self) -> Result<Message, DecodeError> {
        let h = self.header;
        if h.encryption != 0 {
            return Err(DecodeError::Encrypted {
                msg_id: h.msg_id,
                method: h.encryption,
            });
        }
        Ok(Message {
            header: h,
            body: Body::decode(h.msg_id, h.version, &self.body, 0)?,
        })
    }
}

/// Collects packets until a message is complete.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReassemblyConfig,
    pending: Vec<Pending>,
    bytes: usize,
}

impl Reassembler {
    /// An empty reassembler with these limits.
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembler {
            cfg,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    /// Transfers in progress.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held by transfers in progress.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Drops transfers older than the timeout; returns how many were dropped.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.pending.len();
        let timeout = self.cfg.timeout_ms;
        let mut freed = 0;
        self.pending.retain(|p| {
            let keep = now_ms.saturating_sub(p.started_ms) < timeout;
            if !keep {
                freed += p.bytes;
            }
            keep
        });
        self.bytes -= freed;
        before - self.pending.len()
    }

    /// Takes one packet; returns the whole message when this packet completes it.
    /// A frame without a package item is returned as is.
    pub fn push(
        &mut self,
        frame: &Frame<'_>,
        now_ms: u64,
    ) -> Result<Option<Reassembled>, DecodeError> {
        let h = frame.header;
        let Some(pkg) = h.package else {
            return Ok(Some(Reassembled {
                header: h,
                body: frame.body.to_vec(),
            }));
        };
        self.expire(now_ms);
        let err = |reason| DecodeError::Reassembly {
            msg_id: h.msg_id,
            index: pkg.index,
            total: pkg.total,
            reason,
        };
        if pkg.total > self.cfg.max_packets {
            return Err(err("more packets than allowed"));
        }
        let first_serial = h.serial.wrapping_sub(pkg.index - 1);
        let pos = self.pending.iter().position(|p| {
            p.phone == h.phone
                && p.msg_id == h.msg_id
                && p.first_serial == first_serial
                && p.total == pkg.total
        });
        let pos = match pos {
            Some(i) => i,
            None => {
                if self.pending.len() >= self.cfg.max_pending {
                    return Err(err("too many sub-packaged messages in progress"));
                }
                self.pending.push(Pending {
                    phone: h.phone,
                    msg_id: h.msg_id,
                    first_serial,
                    total: pkg.total,
                    header: Header {
                        serial: first_serial,
                        package: None,
                        ..h
                    },
                    parts: vec![None; pkg.total as usize],
                    received: 0,
                    bytes: 0,
                    started_ms: now_ms,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[pos];
        let slot = &mut p.parts[pkg.index as usize - 1];
        if slot.is_some() {
            // A repeated packet (a terminal re-sending after a lost reply): keep the first copy.
            return Ok(None);
        }
        let n = frame.body.len();
        if p.bytes + n > self.cfg.max_message_bytes {
            let freed = p.bytes;
            self.pending.swap_remove(pos);
            self.bytes -= freed;
            return Err(err("message larger than allowed"));
        }
        if self.bytes + n > self.cfg.max_pending_bytes {
            return Err(err("reassembly memory full"));
        }
        *slot = Some(frame.body.to_vec());
        p.received += 1;
        p.bytes += n;
        self.bytes += n;
        if p.received < p.total {
            return Ok(None);
        }
        let p = self.pending.swap_remove(pos);
        self.bytes -= p.bytes;
        let mut body = Vec::with_capacity(p.bytes);
        for part in p.parts.into_iter().flatten() {
            body.extend_from_slice(&part);
        }
        Ok(Some(Reassembled {
            header: p.header,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{Package, Version};

    fn frame(serial: u16, total: u16, index: u16, body: &'static [u8]) -> Frame<'static> {
        let mut header = Header::new(
            0x0704,
            Version::V2013,
            Phone::new("13800138000").unwrap(),
            serial,
        );
        header.package = Some(Package { total, index });
        Frame {
            header,
            body,
            body_offset: 16,
        }
    }

    #[test]
    fn out_of_order_duplicates_and_timeout() {
        let mut r = Reassembler::new(ReassemblyConfig {
            timeout_ms: 1000,
            ..Default::default()
        });
        assert_eq!(r.push(&frame(12, 3, 3, b"ef"), 0).unwrap(), None);
        assert_eq!(r.push(&frame(10, 3, 1, b"ab"), 10).unwrap(), None);
        assert_eq!(r.push(&frame(10, 3, 1, b"XX"), 10).unwrap(), None);
        let done = r.push(&frame(11, 3, 2, b"cd"), 20).unwrap().unwrap();
        assert_eq!(done.body, b"abcdef");
        assert_eq!(done.header.serial, 10);
        assert_eq!(done.header.package, None);
        assert_eq!((r.pending(), r.pending_bytes()), (0, 0));

        assert_eq!(r.push(&frame(20, 2, 1, b"ab"), 0).unwrap(), None);
        assert_eq!(
            r.push(&frame(21, 2, 2, b"cd"), 5000).unwrap(),
            None,
            "first part expired"
        );
        assert_eq!(r.pending(), 1);
        assert_eq!(r.expire(10_000), 1);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn bounded() {
        let cfg = ReassemblyConfig {
            max_packets: 4,
            max_message_bytes: 5,
            max_pending: 1,
            ..Default::default()
        };
        let mut r = Reassembler::new(cfg);
        assert!(r.push(&frame(1, 5, 1, b"a"), 0).is_err());
        assert_eq!(r.push(&frame(1, 4, 1, b"abc"), 0).unwrap(), None);
        assert!(
            r.push(&frame(9, 2, 1, b"a"), 0).is_err(),
            "second transfer refused"
        );
        assert!(
            r.push(&frame(2, 4, 2, b"def"), 0).is_err(),
            "over message size"
        );
        assert_eq!((r.pending(), r.pending_bytes()), (0, 0));
    }
}
