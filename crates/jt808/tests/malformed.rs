//! Malformed frames: each failure is a typed error naming what and where, and
//! the protocol's reply to it (0x8001, result 2) when the header is readable.

use zhilu_jt808::error::EscapeNext;
use zhilu_jt808::wire::parse_hex;
use zhilu_jt808::*;

fn phone() -> Phone {
    Phone::new("13800138000").unwrap()
}

/// A frame with a valid checksum and length around an arbitrary body.
fn frame_with_body(msg_id: u16, version: Version, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&Header::new(msg_id, version, phone(), 5), body, &mut out).unwrap();
    out
}

#[test]
fn bad_checksum_names_offset_and_reply_is_message_error() {
    let mut wire = parse_hex("7E0001000501234567890004B303E8000200D37E").unwrap();
    let n = wire.len();
    wire[n - 2] = 0xD4;
    let err = Decoder::new().decode(&wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Checksum {
            msg_id: 0x0001,
            offset: 17,
            found: 0xD4,
            computed: 0xD3
        }
    );
    assert_eq!(err.msg_id(), Some(0x0001));
    assert!(
        err.to_string().contains("0x0001") && err.to_string().contains("byte 17"),
        "{err}"
    );
    // A terminal reply gets no reply; a location report does.
    assert_eq!(error_reply(&wire, 1), None);
    let mut loc = parse_hex("7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E").unwrap();
    let n = loc.len();
    loc[n - 2] = 0x14;
    assert!(matches!(
        Decoder::new().decode(&loc),
        Err(DecodeError::Checksum { msg_id: 0x0200, .. })
    ));
    let reply = error_reply(&loc, 77).unwrap();
    assert_eq!(reply.header.phone.as_str(), "123456789012");
    assert_eq!(reply.header.serial, 77);
    assert_eq!(
        reply.body,
        Body::PlatformReply(GeneralReply {
            reply_serial: 126,
            reply_id: 0x0200,
            result: ReplyResult::MessageError
        })
    );
}

#[test]
fn bad_escape() {
    let err = Decoder::new()
        .decode(&[0x7e, 0x02, 0x00, 0x7d, 0x05, 0x7e])
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadEscape {
            offset: 2,
            next: EscapeNext::Byte(5)
        }
    );
    let err = Decoder::new().decode(&[0x02, 0x00, 0x7d]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadEscape {
            offset: 2,
            next: EscapeNext::End
        }
    );
}

#[test]
fn too_short_and_empty() {
    assert_eq!(
        Decoder::new().decode(&[0x7e, 0x7e]).unwrap_err(),
        DecodeError::Empty
    );
    assert!(matches!(
        Decoder::new().decode(&[0x00, 0x02, 0x00]),
        Err(DecodeError::TooShort { len: 3, .. })
    ));
    // 2019 flag set but only a 2013-sized header present.
    let err = Decoder::new()
        .decode(&parse_hex("0002 4000 013800138000 0001 00").unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooShort {
                need: 18,
                version: "2019",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn body_length_mismatch() {
    let mut raw = parse_hex("0002 0003 013800138000 0001 AA").unwrap();
    let cs = wire::checksum(&raw);
    raw.push(cs);
    assert_eq!(
        Decoder::new().decode(&raw).unwrap_err(),
        DecodeError::BodyLength {
            msg_id: 0x0002,
            declared: 3,
            actual: 1
        }
    );
}

#[test]
fn truncated_location_names_field_and_offset() {
    let wire = frame_with_body(0x0200, Version::V2013, &[0; 20]);
    let err = Decoder::new().decode(&wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            msg_id: 0x0200,
            field: "location fixed part",
            offset: 12,
            need: 22,
            have: 20
        }
    );
    // An item whose length runs past the body.
    let mut body = vec![0u8; 28];
    body.extend_from_slice(&[0x01, 0x04, 0, 0]);
    let err = Decoder::new()
        .decode(&frame_with_body(0x0200, Version::V2019_1, &body))
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            msg_id: 0x0200,
            field: "item value",
            offset: 17 + 30,
            need: 4,
            have: 2
        }
    );
    assert!(err.to_string().contains("item value at byte 47"), "{err}");
}

#[test]
fn bad_bcd_time_and_phone() {
    let mut body = vec![0u8; 28];
    body[24] = 0x1A;
    let err = Decoder::new()
        .decode(&frame_with_body(0x0200, Version::V2013, &body))
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            msg_id: 0x0200,
            field: "time",
            offset: 12 + 22,
            reason: "not BCD digits"
        }
    );
    let mut raw = parse_hex("0002 0000 0138001380F0 0001").unwrap();
    let cs = wire::checksum(&raw);
    raw.push(cs);
    let err = Decoder::new().decode(&raw).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Invalid {
            msg_id: 0x0002,
            field: "phone",
            offset: 4,
            reason: "not BCD digits"
        }
    );
}

#[test]
fn trailing_bytes_in_fixed_body() {
    let err = Decoder::new()
        .decode(&frame_with_body(0x0002, Version::V2013, &[1, 2]))
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Trailing {
            msg_id: 0x0002,
            offset: 12,
            extra: 2
        }
    );
    let err = Decoder::new()
        .decode(&frame_with_body(
            0x8001,
            Version::V2013,
            &[0, 1, 2, 0, 0, 9],
        ))
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Trailing {
            msg_id: 0x8001,
            offset: 17,
            extra: 1
        }
    );
}

#[test]
fn batch_item_longer_than_body() {
    let body = [0, 1, 0, 0x00, 0xFF, 1, 2, 3];
    let err = Decoder::new()
        .decode(&frame_with_body(0x0704, Version::V2013, &body))
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            msg_id: 0x0704,
            field: "location item",
            offset: 12 + 5,
            need: 255,
            have: 3
        }
    );
    // A count far larger than the items present fails without allocating for the count.
    let body = [0xFF, 0xFF, 0];
    let err = Decoder::new()
        .decode(&frame_with_body(0x0704, Version::V2013, &body))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "item length",
                ..
            }
        ),
        "{err}"
    );
    let err = Decoder::new()
        .decode(&frame_with_body(0x8103, Version::V2013, &[200]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "parameter id",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn fragment_and_encrypted_are_reported() {
    let mut h = Header::new(0x0704, Version::V2013, phone(), 1);
    h.package = Some(Package { total: 2, index: 1 });
    let mut wire = Vec::new();
    encode_frame(&h, &[0, 1], &mut wire).unwrap();
    assert_eq!(
        Decoder::new().decode(&wire).unwrap_err(),
        DecodeError::Fragment {
            msg_id: 0x0704,
            index: 1,
            total: 2
        }
    );
    let json = frame_to_json(&wire::to_hex(&wire)).unwrap();
    assert_eq!(json["header"]["package"]["total"], 2);
    assert_eq!(json["fragment"], "0001");
    // Packet number 0 or above the total is invalid.
    h.package = Some(Package { total: 2, index: 3 });
    wire.clear();
    encode_frame(&h, &[0], &mut wire).unwrap();
    assert!(matches!(
        Decoder::new().decode(&wire),
        Err(DecodeError::Invalid {
            field: "package",
            offset: 12,
            ..
        })
    ));
    let mut h = Header::new(0x0200, Version::V2013, phone(), 1);
    h.encryption = 1;
    wire.clear();
    encode_frame(&h, &[0; 28], &mut wire).unwrap();
    assert_eq!(
        Decoder::new().decode(&wire).unwrap_err(),
        DecodeError::Encrypted {
            msg_id: 0x0200,
            method: 1
        }
    );
}

#[test]
fn unreadable_header_gives_no_reply() {
    assert_eq!(error_reply(&[1, 2, 3], 1), None);
    assert_eq!(
        error_reply(&[0x7d, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1),
        None
    );
    assert_eq!(peek_header(&parse_hex("0200 0000 0138").unwrap()), None);
    // A readable header is enough, whatever follows.
    let h = peek_header(&parse_hex("7E 0200 0026 013800138000 0009").unwrap()).unwrap();
    assert_eq!((h.msg_id, h.serial), (0x0200, 9));
}

#[test]
fn encode_errors() {
    let m = Message::new(
        Version::V2013,
        phone(),
        1,
        Body::Other {
            msg_id: 0x0900,
            data: vec![0; 1024],
        },
    );
    assert_eq!(
        m.to_bytes().unwrap_err(),
        EncodeError::BodyTooLong {
            msg_id: 0x0900,
            len: 1024
        }
    );
    let mut out = Vec::new();
    assert_eq!(m.encode_packets(1023, &mut out).unwrap(), 2);
    let m = Message::new(
        Version::V2013,
        Phone::new("123456789012345").unwrap(),
        1,
        Body::Heartbeat,
    );
    assert!(matches!(
        m.to_bytes(),
        Err(EncodeError::Field { field: "phone", .. })
    ));
    let mut m = Message::new(Version::V2013, phone(), 1, Body::Heartbeat);
    m.header.msg_id = 3;
    assert_eq!(
        m.to_bytes().unwrap_err(),
        EncodeError::IdMismatch { header: 3, body: 2 }
    );
    let reg = Body::Register(Register {
        province: 0,
        city: 0,
        maker: "TOO-LONG".into(),
        model: String::new(),
        terminal_id: String::new(),
        plate_color: 0,
        plate: String::new(),
    });
    let m = Message::new(Version::V2013, phone(), 1, reg);
    assert!(matches!(
        m.to_bytes(),
        Err(EncodeError::Field {
            field: "maker id",
            ..
        })
    ));
}
