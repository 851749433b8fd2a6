//! Message bodies: the typed messages this codec knows, and raw bytes for the rest.

use crate::error::{DecodeError, EncodeError};
use crate::header::Version;
use crate::location::Location;
use crate::wire::{Reader, to_hex};
use encoding_rs::GBK;
use serde::ser::SerializeStruct;
use std::borrow::Cow;

/// Message ids this codec decodes.
pub mod id {
    /// Terminal general reply.
    pub const TERMINAL_REPLY: u16 = 0x0001;
    /// Terminal heartbeat.
    pub const HEARTBEAT: u16 = 0x0002;
    /// Terminal deregistration.
    pub const DEREGISTER: u16 = 0x0003;
    /// Terminal registration.
    pub const REGISTER: u16 = 0x0100;
    /// Terminal authentication.
    pub const AUTHENTICATE: u16 = 0x0102;
    /// Reply to a parameter query.
    pub const PARAMS_REPLY: u16 = 0x0104;
    /// Location report.
    pub const LOCATION: u16 = 0x0200;
    /// Batch location upload.
    pub const BATCH_LOCATION: u16 = 0x0704;
    /// Platform general reply.
    pub const PLATFORM_REPLY: u16 = 0x8001;
    /// Registration reply.
    pub const REGISTER_REPLY: u16 = 0x8100;
    /// Set terminal parameters.
    pub const SET_PARAMS: u16 = 0x8103;
    /// Query all terminal parameters.
    pub const QUERY_PARAMS: u16 = 0x8104;
    /// Temporary location tracking control.
    pub const TEMP_TRACKING: u16 = 0x8202;
}

/// Decodes GBK text (invalid sequences become U+FFFD).
pub fn gbk_decode(bytes: &[u8]) -> String {
    GBK.decode_without_bom_handling(bytes).0.into_owned()
}

/// Encodes text as GBK; fails on characters GBK cannot represent.
pub fn gbk_encode<'a>(
    text: &'a str,
    msg_id: u16,
    field: &'static str,
) -> Result<Cow<'a, [u8]>, EncodeError> {
    let (b, _, unmappable) = GBK.encode(text);
    if unmappable {
        return Err(EncodeError::Field {
            msg_id,
            field,
            reason: "character not representable in GBK",
        });
    }
    Ok(b)
}

/// GBK text if the bytes decode and re-encode losslessly.
fn gbk_exact(bytes: &[u8]) -> Option<String> {
    let (s, had_errors) = GBK.decode_without_bom_handling(bytes);
    if had_errors {
        return None;
    }
    let (back, _, unmappable) = GBK.encode(&s);
    (!unmappable && back.as_ref() == bytes).then(|| s.into_owned())
}

fn read_fixed_str(
    r: &mut Reader<'_>,
    n: usize,
    field: &'static str,
) -> Result<String, DecodeError> {
    let b = r.bytes(n, field)?;
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    Ok(gbk_decode(&b[..end]))
}

fn write_fixed_str(
    s: &str,
    n: usize,
    msg_id: u16,
    field: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let b = gbk_encode(s, msg_id, field)?;
    if b.len() > n {
        return Err(EncodeError::Field {
            msg_id,
            field,
            reason: "text longer than its fixed field",
        });
    }
    out.extend_from_slice(&b);
    out.resize(out.len() + n - b.len(), 0);
    Ok(())
}

/// The result of a general reply (0x0001 / 0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyResult {
    /// 0: success / confirmed.
    Ok,
    /// 1: failure.
    Fail,
    /// 2: message error.
    MessageError,
    /// 3: not supported.
    Unsupported,
    /// 4: alarm handling confirmed (platform reply only).
    AlarmConfirm,
    /// Any other value.
    Other(u8),
}

impl ReplyResult {
    /// From the wire byte.
    pub fn from_u8(v: u8) -> ReplyResult {
        match v {
            0 => ReplyResult::Ok,
            1 => ReplyResult::Fail,
            2 => ReplyResult::MessageError,
            3 => ReplyResult::Unsupported,
            4 => ReplyResult::AlarmConfirm,
            o => ReplyResult::Other(o),
        }
    }

    /// To the wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ReplyResult::Ok => 0,
            ReplyResult::Fail => 1,
            ReplyResult::MessageError => 2,
            ReplyResult::Unsupported => 3,
            ReplyResult::AlarmConfirm => 4,
            ReplyResult::Other(o) => o,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ReplyResult::Ok => "ok",
            ReplyResult::Fail => "fail",
            ReplyResult::MessageError => "message_error",
            ReplyResult::Unsupported => "unsupported",
            ReplyResult::AlarmConfirm => "alarm_confirm",
            ReplyResult::Other(_) => "other",
        }
    }
}

impl serde::Serialize for ReplyResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ReplyResult", 2)?;
        st.serialize_field("code", &self.to_u8())?;
        st.serialize_field("name", self.name())?;
        st.end()
    }
}

/// A general reply (0x0001 from the terminal, 0x8001 from the platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GeneralReply {
    /// Serial of the message replied to.
    pub reply_serial: u16,
    /// Id of the message replied to.
    pub reply_id: u16,
    /// The result.
    pub result: ReplyResult,
}

/// Terminal registration (0x0100).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Register {
    /// Province id (GB/T 2260 first two digits).
    pub province: u16,
    /// City/county id.
    pub city: u16,
    /// Manufacturer id (5 bytes in 2013, 11 in 2019).
    pub maker: String,
    /// Terminal model (20 bytes in 2013, 30 in 2019).
    pub model: String,
    /// Terminal id (7 bytes in 2013, 30 in 2019).
    pub terminal_id: String,
    /// Plate colour (JT/T 697.7; 0 = not registered, plate then holds the VIN).
    pub plate_color: u8,
    /// Plate number (GBK), or the VIN when `plate_color` is 0.
    pub plate: String,
}

impl Register {
    fn widths(v: Version) -> (usize, usize, usize) {
        if v.is_2019() {
            (11, 30, 30)
        } else {
            (5, 20, 7)
        }
    }
}

/// Registration reply results (0x8100).
pub mod register_result {
    /// Registered.
    pub const OK: u8 = 0;
    /// The vehicle is already registered.
    pub const VEHICLE_REGISTERED: u8 = 1;
    /// No such vehicle in the database.
    pub const NO_VEHICLE: u8 = 2;
    /// The terminal is already registered.
    pub const TERMINAL_REGISTERED: u8 = 3;
    /// No such terminal in the database.
    pub const NO_TERMINAL: u8 = 4;
}

/// Registration reply (0x8100).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegisterReply {
    /// Serial of the registration replied to.
    pub reply_serial: u16,
    /// Result, see [`register_result`].
    pub result: u8,
    /// Authentication code (sent only with result 0).
    pub auth_code: String,
}

/// Terminal authentication (0x0102).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Authenticate {
    /// The authentication code the platform issued.
    pub code: String,
    /// IMEI (2019 only, 15 bytes).
    pub imei: Option<String>,
    /// Software version (2019 only, 20 bytes).
    pub software_version: Option<String>,
}

/// A terminal parameter value, typed for the common ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A DWORD.
    Dword(u32),
    /// A WORD.
    Word(u16),
    /// A BYTE.
    Byte(u8),
    /// GBK text.
    Str(String),
    /// Any other value, as sent.
    Raw(Vec<u8>),
}

/// The wire type of a parameter id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// 4 bytes.
    Dword,
    /// 2 bytes.
    Word,
    /// 1 byte.
    Byte,
    /// GBK text.
    Str,
    /// Unknown: raw bytes.
    Raw,
}

/// Parameter ids with a well-known meaning.
pub mod param {
    /// Heartbeat interval, s (DWORD).
    pub const HEARTBEAT_INTERVAL: u32 = 0x0001;
    /// TCP reply timeout, s (DWORD).
    pub const TCP_REPLY_TIMEOUT: u32 = 0x0002;
    /// Main server address (STRING).
    pub const MAIN_SERVER: u32 = 0x0013;
    /// Default time-based report interval, s (DWORD).
    pub const DEFAULT_REPORT_INTERVAL: u32 = 0x0029;
    /// Maximum speed, km/h (DWORD).
    pub const MAX_SPEED: u32 = 0x0055;
    /// Over-speed duration, s (DWORD).
    pub const OVERSPEED_DURATION: u32 = 0x0056;
    /// Province id (WORD).
    pub const PROVINCE: u32 = 0x0081;
    /// City id (WORD).
    pub const CITY: u32 = 0x0082;
    /// Plate number (STRING).
    pub const PLATE: u32 = 0x0083;
    /// Plate colour (BYTE).
    pub const PLATE_COLOR: u32 = 0x0084;
}

/// The wire type of a parameter id (Raw for ids this codec does not type).
pub fn param_kind(id: u32) -> ParamKind {
    match id {
        0x0001..=0x0007
        | 0x0018
        | 0x0019
        | 0x001B
        | 0x001C
        | 0x0020..=0x0022
        | 0x0027..=0x0030
        | 0x0050..=0x005A
        | 0x0070..=0x0074
        | 0x0080 => ParamKind::Dword,
        0x0031 | 0x005B..=0x005E | 0x0081 | 0x0082 => ParamKind::Word,
        0x0084 | 0x0090..=0x0092 | 0x0094 => ParamKind::Byte,
        0x0010..=0x0017 | 0x001A | 0x001D | 0x0040..=0x0049 | 0x0083 => ParamKind::Str,
        _ => ParamKind::Raw,
    }
}

/// One terminal parameter (id, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter id.
    pub id: u32,
    /// Value.
    pub value: ParamValue,
}

impl Param {
    fn read(r: &mut Reader<'_>) -> Result<Param, DecodeError> {
        let id = r.u32("parameter id")?;
        let len = r.u8("parameter length")? as usize;
        let v = r.bytes(len, "parameter value")?;
        let value = match (param_kind(id), len) {
            (ParamKind::Dword, 4) => {
                ParamValue::Dword(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            }
            (ParamKind::Word, 2) => ParamValue::Word(u16::from_be_bytes([v[0], v[1]])),
            (ParamKind::Byte, 1) => ParamValue::Byte(v[0]),
            (ParamKind::Str, _) => {
                gbk_exact(v).map_or_else(|| ParamValue::Raw(v.to_vec()), ParamValue::Str)
            }
            _ => ParamValue::Raw(v.to_vec()),
        };
        Ok(Param { id, value })
    }

    fn write(&self, msg_id: u16, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.id.to_be_bytes());
        let bytes: Cow<'_, [u8]> = match &self.value {
            ParamValue::Dword(v) => Cow::Owned(v.to_be_bytes().to_vec()),
            ParamValue::Word(v) => Cow::Owned(v.to_be_bytes().to_vec()),
            ParamValue::Byte(v) => Cow::Owned(vec![*v]),
            ParamValue::Str(s) => gbk_encode(s, msg_id, "parameter value")?,
            ParamValue::Raw(b) => Cow::Borrowed(b.as_slice()),
        };
        if bytes.len() > 255 {
            return Err(EncodeError::Field {
                msg_id,
                field: "parameter value",
                reason: "longer than 255 bytes",
            });
        }
        out.push(bytes.len() as u8);
        out.extend_from_slice(&bytes);
        Ok(())
    }
}

impl serde::Serialize for Param {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Param", 3)?;
        st.serialize_field("id", &format_args!("0x{:04X}", self.id))?;
        match &self.value {
            ParamValue::Dword(v) => {
                st.serialize_field("type", "dword")?;
                st.serialize_field("value", v)?;
            }
            ParamValue::Word(v) => {
                st.serialize_field("type", "word")?;
                st.serialize_field("value", v)?;
            }
            ParamValue::Byte(v) => {
                st.serialize_field("type", "byte")?;
                st.serialize_field("value", v)?;
            }
            ParamValue::Str(v) => {
                st.serialize_field("type", "string")?;
                st.serialize_field("value", v)?;
            }
            ParamValue::Raw(v) => {
                st.serialize_field("type", "raw")?;
                st.serialize_field("value", &to_hex(v))?;
            }
        }
        st.end()
    }
}

fn read_params(r: &mut Reader<'_>) -> Result<Vec<Param>, DecodeError> {
    let n = r.u8("parameter count")?;
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Param::read(r)?);
    }
    Ok(v)
}

fn write_params(params: &[Param], msg_id: u16, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if params.len() > 255 {
        return Err(EncodeError::Field {
            msg_id,
            field: "parameter count",
            reason: "more than 255 parameters",
        });
    }
    out.push(params.len() as u8);
    for p in params {
        p.write(msg_id, out)?;
    }
    Ok(())
}

/// Reply to a parameter query (0x0104).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamsReply {
    /// Serial of the query replied to.
    pub reply_serial: u16,
    /// The parameters.
    pub params: Vec<Param>,
}

/// Batch location upload (0x0704).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchLocation {
    /// 0 normal batch, 1 blind-area re-send.
    pub kind: u8,
    /// The reports.
    pub items: Vec<Location>,
}

/// Temporary location tracking control (0x8202).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TempTracking {
    /// Report interval, s (0 stops tracking).
    pub interval_s: u16,
    /// How long tracking lasts, s.
    pub validity_s: u32,
}

/// A message body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "fields", rename_all = "snake_case")]
pub enum Body {
    /// 0x0001 terminal general reply.
    TerminalReply(GeneralReply),
    /// 0x0002 heartbeat.
    Heartbeat,
    /// 0x0003 deregistration.
    Deregister,
    /// 0x0100 registration.
    Register(Register),
    /// 0x0102 authentication.
    Authenticate(Authenticate),
    /// 0x0104 parameter query reply.
    ParamsReply(ParamsReply),
    /// 0x0200 location report.
    Location(Location),
    /// 0x0704 batch location upload.
    BatchLocation(BatchLocation),
    /// 0x8001 platform general reply.
    PlatformReply(GeneralReply),
    /// 0x8100 registration reply.
    RegisterReply(RegisterReply),
    /// 0x8103 set parameters.
    SetParams(Vec<Param>),
    /// 0x8104 query all parameters.
    QueryParams,
    /// 0x8202 temporary location tracking.
    TempTracking(TempTracking),
    /// Any other message, body kept raw.
    Other {
        /// Message id.
        msg_id: u16,
        /// Body bytes.
        #[serde(serialize_with = "ser_hex")]
        data: Vec<u8>,
    },
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(v))
}

impl Body {
    /// The message id of this body.
    pub fn msg_id(&self) -> u16 {
        match self {
            Body::TerminalReply(_) => id::TERMINAL_REPLY,
            Body::Heartbeat => id::HEARTBEAT,
            Body::Deregister => id::DEREGISTER,
            Body::Register(_) => id::REGISTER,
            Body::Authenticate(_) => id::AUTHENTICATE,
            Body::ParamsReply(_) => id::PARAMS_REPLY,
            Body::Location(_) => id::LOCATION,
            Body::BatchLocation(_) => id::BATCH_LOCATION,
            Body::PlatformReply(_) => id::PLATFORM_REPLY,
            Body::RegisterReply(_) => id::REGISTER_REPLY,
            Body::SetParams(_) => id::SET_PARAMS,
            Body::QueryParams => id::QUERY_PARAMS,
            Body::TempTracking(_) => id::TEMP_TRACKING,
            Body::Other { msg_id, .. } => *msg_id,
        }
    }

    /// Decodes the body of message `msg_id`; `base` is the body's offset in the frame (for errors).
    #[inline]
    pub fn decode(
        msg_id: u16,
        version: Version,
        body: &[u8],
        base: usize,
    ) -> Result<Body, DecodeError> {
        let mut r = Reader::new(body, base, msg_id);
        let reply = |r: &mut Reader<'_>| -> Result<GeneralReply, DecodeError> {
            Ok(GeneralReply {
                reply_serial: r.u16("reply serial")?,
                reply_id: r.u16("reply id")?,
                result: ReplyResult::from_u8(r.u8("result")?),
            })
        };
        let b = match msg_id {
            id::LOCATION => Body::Location(Location::read(&mut r)?),
            id::TERMINAL_REPLY => Body::TerminalReply(reply(&mut r)?),
            id::PLATFORM_REPLY => Body::PlatformReply(reply(&mut r)?),
            id::HEARTBEAT => Body::Heartbeat,
            id::DEREGISTER => Body::Deregister,
            id::QUERY_PARAMS => Body::QueryParams,
            id::REGISTER => {
                let (mw, dw, tw) = Register::widths(version);
                Body::Register(Register {
                    province: r.u16("province")?,
                    city: r.u16("city")?,
                    maker: read_fixed_str(&mut r, mw, "maker id")?,
                    model: read_fixed_str(&mut r, dw, "terminal model")?,
                    terminal_id: read_fixed_str(&mut r, tw, "terminal id")?,
                    plate_color: r.u8("plate colour")?,
                    plate: gbk_decode(r.rest()),
                })
            }
            id::REGISTER_REPLY => Body::RegisterReply(RegisterReply {
                reply_serial: r.u16("reply serial")?,
                result: r.u8("result")?,
                auth_code: gbk_decode(r.rest()),
            }),
            id::AUTHENTICATE => Body::Authenticate(if version.is_2019() {
                let n = r.u8("auth code length")? as usize;
                let code = gbk_decode(r.bytes(n, "auth code")?);
                Authenticate {
                    code,
                    imei: Some(read_fixed_str(&mut r, 15, "imei")?),
                    software_version: Some(read_fixed_str(&mut r, 20, "software version")?),
                }
            } else {
                Authenticate {
                    code: gbk_decode(r.rest()),
                    imei: None,
                    software_version: None,
                }
            }),
            id::PARAMS_REPLY => Body::ParamsReply(ParamsReply {
                reply_serial: r.u16("reply serial")?,
                params: read_params(&mut r)?,
            }),
            id::SET_PARAMS => Body::SetParams(read_params(&mut r)?),
            id::BATCH_LOCATION => {
                let n = r.u16("item count")?;
                let kind = r.u8("location data type")?;
                let mut items = Vec::new();
                for _ in 0..n {
                    let len = r.u16("item length")? as usize;
                    let at = r.offset();
                    let item = r.bytes(len, "location item")?;
                    items.push(Location::read(&mut Reader::new(item, at, msg_id))?);
                }
                Body::BatchLocation(BatchLocation { kind, items })
            }
            id::TEMP_TRACKING => Body::TempTracking(TempTracking {
                interval_s: r.u16("interval")?,
                validity_s: r.u32("validity")?,
            }),
            _ => Body::Other {
                msg_id,
                data: r.rest().to_vec(),
            },
        };
        r.finish()?;
        Ok(b)
    }

    /// Appends the encoded body for a frame of `version`.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let msg_id = self.msg_id();
        match self {
            Body::TerminalReply(g) | Body::PlatformReply(g) => {
                out.extend_from_slice(&g.reply_serial.to_be_bytes());
                out.extend_from_slice(&g.reply_id.to_be_bytes());
                out.push(g.result.to_u8());
            }
            Body::Heartbeat | Body::Deregister | Body::QueryParams => {}
            Body::Register(g) => {
                let (mw, dw, tw) = Register::widths(version);
                out.extend_from_slice(&g.province.to_be_bytes());
                out.extend_from_slice(&g.city.to_be_bytes());
                write_fixed_str(&g.maker, mw, msg_id, "maker id", out)?;
                write_fixed_str(&g.model, dw, msg_id, "terminal model", out)?;
                write_fixed_str(&g.terminal_id, tw, msg_id, "terminal id", out)?;
                out.push(g.plate_color);
                out.extend_from_slice(&gbk_encode(&g.plate, msg_id, "plate")?);
            }
            Body::RegisterReply(g) => {
                out.extend_from_slice(&g.reply_serial.to_be_bytes());
                out.push(g.result);
                out.extend_from_slice(&gbk_encode(&g.auth_code, msg_id, "auth code")?);
            }
            Body::Authenticate(a) => {
                let code = gbk_encode(&a.code, msg_id, "auth code")?;
                if version.is_2019() {
                    if code.len() > 255 {
                        return Err(EncodeError::Field {
                            msg_id,
                            field: "auth code",
                            reason: "longer than 255 bytes",
                        });
                    }
                    out.push(code.len() as u8);
                    out.extend_from_slice(&code);
                    write_fixed_str(a.imei.as_deref().unwrap_or(""), 15, msg_id, "imei", out)?;
                    write_fixed_str(
                        a.software_version.as_deref().unwrap_or(""),
                        20,
                        msg_id,
                        "software version",
                        out,
                    )?;
                } else {
                    out.extend_from_slice(&code);
                }
            }
            Body::ParamsReply(p) => {
                out.extend_from_slice(&p.reply_serial.to_be_bytes());
                write_params(&p.params, msg_id, out)?;
            }
            Body::SetParams(p) => write_params(p, msg_id, out)?,
            Body::Location(l) => l.write(out)?,
            Body::BatchLocation(b) => {
                let n = u16::try_from(b.items.len()).map_err(|_| EncodeError::Field {
                    msg_id,
                    field: "item count",
                    reason: "more than 65535 items",
                })?;
                out.extend_from_slice(&n.to_be_bytes());
                out.push(b.kind);
                for item in &b.items {
                    let at = out.len();
                    out.extend_from_slice(&[0, 0]);
                    item.write(out)?;
                    let len =
                        u16::try_from(out.len() - at - 2).map_err(|_| EncodeError::Field {
                            msg_id,
                            field: "location item",
                            reason: "longer than 65535 bytes",
                        })?;
                    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
                }
            }
            Body::TempTracking(t) => {
                out.extend_from_slice(&t.interval_s.to_be_bytes());
                out.extend_from_slice(&t.validity_s.to_be_bytes());
            }
            Body::Other { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}
