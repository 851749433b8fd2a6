//! Frames as JSON for people: the tool behind `zhilu jt808 decode HEX`.

use crate::codec::Decoder;
use crate::error::DecodeError;
use crate::header::{Header, Version};
use crate::wire::{parse_hex, to_hex};
use serde_json::{Value, json};

/// The protocol's name of a message id, when known.
pub fn msg_name(msg_id: u16) -> Option<&'static str> {
    Some(match msg_id {
        0x0001 => "terminal general reply",
        0x0002 => "heartbeat",
        0x0003 => "deregister",
        0x0100 => "register",
        0x0102 => "authenticate",
        0x0104 => "query parameters reply",
        0x0200 => "location report",
        0x0704 => "batch location upload",
        0x8001 => "platform general reply",
        0x8100 => "register reply",
        0x8103 => "set parameters",
        0x8104 => "query parameters",
        0x8202 => "temporary location tracking",
        _ => return None,
    })
}

fn header_json(h: &Header, body_len: usize) -> Value {
    let mut v = json!({
        "msg_id": format!("0x{:04X}", h.msg_id),
        "msg_name": msg_name(h.msg_id),
        "version": match h.version { Version::V2013 => "2013", Version::V2019 { .. } => "2019" },
        "phone": h.phone.as_str(),
        "serial": h.serial,
        "body_len": body_len,
        "encryption": h.encryption,
    });
    if let Version::V2019 { protocol } = h.version {
        v["protocol_version"] = json!(protocol);
    }
    if let Some(p) = h.package {
        v["package"] = json!({ "total": p.total, "index": p.index });
    }
    v
}

/// Decodes one frame given as hex (spaces allowed, `0x7e` delimiters optional) to JSON:
/// header, body fields with named alarm and status bits, and the additional items.
pub fn frame_to_json(hex: &str) -> Result<Value, DecodeError> {
    let bytes = parse_hex(hex)?;
    let mut dec = Decoder::new();
    let f = dec.frame(&bytes)?;
    let mut out = json!({ "header": header_json(&f.header, f.body.len()) });
    if f.header.package.is_some() {
        out["fragment"] = json!(to_hex(f.body));
        return Ok(out);
    }
    let body = f.decode_body()?;
    out["body"] = serde_json::to_value(&body).unwrap_or(Value::Null);
    Ok(out)
}
