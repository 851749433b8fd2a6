//! # zhilu-jt808 — the JT/T 808 wire protocol for vehicle terminals
//!
//! Owns the JT/T 808-2013 and -2019 wire protocol that on-board terminals
//! (trucks, buses, hazardous-goods vehicles) speak to the centre:
//!
//! - the codec (this crate's root modules, no async, no I/O): framing with
//!   `0x7e` delimiters and `0x7d` escaping ([`wire`]), the header with the
//!   2019 version flag, BCD phone, serial and sub-package item ([`Header`]),
//!   the XOR checksum, the bodies ([`Body`]: general replies, heartbeat,
//!   registration, authentication, location reports with named alarm and
//!   status bits and typed additional items, batch uploads, parameters,
//!   temporary tracking), sub-package splitting ([`Message::encode_packets`])
//!   and reassembly ([`Reassembler`]), and [`frame_to_json`] for people;
//! - the TCP gateway ([`gateway`], tokio): registration, authentication,
//!   heartbeats and replies per connection, positions and alarms forwarded
//!   as [`gateway::GatewayEvent`]s;
//! - a terminal simulator ([`sim`]) for tests and load benchmarks.
//!
//! The codec modules use no tokio; only `gateway` and `sim` do.
//!
//! Must not: decide anything about traffic or vehicles (that is
//! `zhilu-core`), or store anything (`zhilu-store`; the gateway reaches
//! persistence only through the `TerminalRegistry` trait the server implements).
//!
//! ## Decoding
//!
//! [`Decoder::decode`] takes one frame as read from the wire (delimiters
//! optional), unescapes into a buffer it reuses (or reads the wire bytes in
//! place when nothing is escaped), checks checksum and body length, and
//! decodes the body. A 0x0200 report whose items are all known decodes
//! without allocating. Every failure is a [`DecodeError`] naming the field
//! and its byte offset in the unescaped frame; nothing panics and nothing is
//! allocated beyond what the frame's own length allows. [`error_reply`] gives
//! the protocol's answer to a bad frame (0x8001 with result 2) when its header
//! can be read.
//!
//! ```
//! use zhilu_jt808::{Body, Decoder};
//! let wire = zhilu_jt808::wire::parse_hex(
//!     "7E 0002 0000 013800138000 0001 A9 7E").unwrap();
//! let msg = Decoder::new().decode(&wire).unwrap();
//! assert_eq!(msg.body, Body::Heartbeat);
//! assert_eq!(msg.header.phone.as_str(), "013800138000");
//! ```

#![warn(missing_docs)]

pub mod body;
pub mod codec;
pub mod error;
pub mod gateway;
pub mod header;
pub mod json;
pub mod location;
pub mod reassembly;
pub mod sim;
pub mod time;
pub mod wire;

pub use body::{
    Authenticate, BatchLocation, Body, GeneralReply, Param, ParamKind, ParamValue, ParamsReply,
    Register, RegisterReply, ReplyResult, TempTracking,
};
pub use codec::{
    Decoder, Frame, Message, encode_frame, error_reply, general_reply, parse_frame, peek_header,
};
pub use error::{DecodeError, EncodeError};
pub use header::{Header, Package, Phone, Version};
pub use json::frame_to_json;
pub use location::{AlarmFlags, Extras, Location, RawItem, StatusFlags};
pub use reassembly::{Reassembled, Reassembler, ReassemblyConfig};
pub use time::BcdTime;
