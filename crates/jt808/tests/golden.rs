//! Golden frames: every vector of `shared/contracts/jt808-vectors.md` (from the
//! MIT-licensed SmallChi/JT808 project's README and tests), plus frames from
//! other public sources, each test naming where its frame comes from.
//! Each frame is decoded, checked field by field, and re-encoded byte for byte
//! where the source orders its additional items by id.

use zhilu_jt808::body::{ParamValue, register_result};
use zhilu_jt808::wire::parse_hex;
use zhilu_jt808::*;

fn decode(hex: &str) -> (Vec<u8>, Message) {
    let wire = parse_hex(hex).expect("hex");
    let msg = Decoder::new()
        .decode(&wire)
        .unwrap_or_else(|e| panic!("decode failed: {e}"));
    (wire, msg)
}

/// Re-encoding gives the same bytes on the wire.
fn assert_reencodes(wire: &[u8], msg: &Message) {
    let again = msg.to_bytes().expect("encode");
    assert_eq!(
        wire::to_hex(&again),
        wire::to_hex(wire),
        "re-encoded frame differs"
    );
}

/// Re-encoding gives a frame that decodes to the same message.
fn assert_round_trips(msg: &Message) {
    let again = msg.to_bytes().expect("encode");
    assert_eq!(&Decoder::new().decode(&again).expect("decode again"), msg);
}

fn location(msg: &Message) -> &Location {
    match &msg.body {
        Body::Location(l) => l,
        other => panic!("not a location: {other:?}"),
    }
}

// ---- shared/contracts/jt808-vectors.md (SmallChi/JT808 README and tests) ----

/// Contract vector 1: 0x0200, 2013 header, escaped serial and escaped item value.
#[test]
fn contract_1_location_2013_with_escapes() {
    let hex = "7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E";
    let (wire, msg) = decode(hex);
    let h = msg.header;
    assert_eq!(h.msg_id, 0x0200);
    assert_eq!(h.version, Version::V2013);
    assert_eq!(h.phone.as_str(), "123456789012");
    assert_eq!(h.serial, 126);
    assert_eq!(h.package, None);
    let l = location(&msg);
    assert_eq!(l.alarm.0, 1);
    assert!(l.alarm.contains(AlarmFlags::EMERGENCY));
    assert_eq!(l.alarm.names().collect::<Vec<_>>(), ["emergency"]);
    assert_eq!(l.status.0, 2);
    assert_eq!(l.status.names().collect::<Vec<_>>(), ["positioned"]);
    assert_eq!(l.lat, 12_222_222);
    assert_eq!(l.lon, 132_444_444);
    assert!((l.lat_deg() - 12.222222).abs() < 1e-9);
    assert!((l.lon_deg() - 132.444444).abs() < 1e-9);
    assert_eq!(l.altitude, 40);
    assert_eq!(l.speed, 60);
    assert!((l.speed_kmh() - 6.0).abs() < 1e-9);
    assert_eq!(l.direction, 0);
    assert_eq!(
        l.time,
        BcdTime {
            year: 18,
            month: 10,
            day: 15,
            hour: 10,
            minute: 10,
            second: 10
        }
    );
    // 2018-10-15 10:10:10 +08:00 = 02:10:10Z
    assert_eq!(l.time.epoch_ms(), Some(1_539_569_410_000));
    assert_eq!(l.extras.mileage, Some(100));
    assert_eq!(l.extras.fuel, Some(125));
    assert!(l.extras.unknown.is_empty());
    assert_reencodes(&wire, &msg);
    // The escaped checksum case: the frame's own checksum (0x13) is plain; check that a frame
    // whose checksum is 0x7e / 0x7d is sent escaped and decodes.
    let mut m2 = msg.clone();
    for serial in 0..=u16::MAX {
        m2.header.serial = serial;
        let b = m2.to_bytes().unwrap();
        if b[b.len() - 3..b.len() - 1] == [0x7d, 0x02] {
            assert_eq!(Decoder::new().decode(&b).unwrap(), m2);
            return;
        }
    }
    panic!("no serial gives checksum 0x7e");
}

/// Contract vector 2: 0x0100 registration, 2013.
#[test]
fn contract_2_register_2013() {
    let hex = "7E0100002D000123456789000A002800323132333400736D616C6C6368693132330000000000000000004348493132330001D4C14131323334358A7E";
    let (wire, msg) = decode(hex);
    assert_eq!(msg.header.phone.as_str(), "000123456789");
    assert_eq!(msg.header.serial, 10);
    assert_eq!(
        msg.body,
        Body::Register(Register {
            province: 40,
            city: 50,
            maker: "1234".into(),
            model: "smallchi123".into(),
            terminal_id: "CHI123".into(),
            plate_color: 1,
            plate: "粤A12345".into(),
        })
    );
    assert_reencodes(&wire, &msg);
}

/// Contract vector 3: 0x0100 registration, 2019 (protocol version 1, 10-byte phone, wider fields).
#[test]
fn contract_3_register_2019() {
    let hex = "7E010040540100000000000123456789000A002800323132333400000000000000736D616C6C6368693132330000000000000000000000000000000000000043484931323300000000000000000000000000000000000000000000000001D4C1413132333435B27E";
    let (wire, msg) = decode(hex);
    assert_eq!(msg.header.version, Version::V2019 { protocol: 1 });
    assert_eq!(msg.header.phone.as_str(), "00000000000123456789");
    assert_eq!(msg.header.phone.trimmed(), "123456789");
    let Body::Register(r) = &msg.body else {
        panic!("{:?}", msg.body)
    };
    assert_eq!((r.province, r.city), (40, 50));
    assert_eq!(
        (r.maker.as_str(), r.model.as_str(), r.terminal_id.as_str()),
        ("1234", "smallchi123", "CHI123")
    );
    assert_eq!((r.plate_color, r.plate.as_str()), (1, "粤A12345"));
    assert_reencodes(&wire, &msg);
}

/// Contract vector 4: 0x8100 registration reply with auth code.
#[test]
fn contract_4_register_reply() {
    let (wire, msg) = decode("7E81000009012345678900000A006400313233343536687E");
    assert_eq!(
        msg.body,
        Body::RegisterReply(RegisterReply {
            reply_serial: 100,
            result: register_result::OK,
            auth_code: "123456".into()
        })
    );
    assert_eq!(msg.header.serial, 10);
    assert_reencodes(&wire, &msg);
}

/// Contract vector 5: 0x0102 authentication, 2013.
#[test]
fn contract_5_authenticate_2013() {
    let (wire, msg) = decode("7E010200090123456789003039343536313231313131BE7E");
    assert_eq!(msg.header.serial, 12345);
    assert_eq!(
        msg.body,
        Body::Authenticate(Authenticate {
            code: "456121111".into(),
            imei: None,
            software_version: None
        })
    );
    assert_reencodes(&wire, &msg);
}

/// Contract vector 6: 0x8001 platform general reply.
#[test]
fn contract_6_platform_reply() {
    let (wire, msg) = decode("7E80010005012345678900000A0064020000617E");
    assert_eq!(
        msg.body,
        Body::PlatformReply(GeneralReply {
            reply_serial: 100,
            reply_id: 0x0200,
            result: ReplyResult::Ok
        })
    );
    assert_reencodes(&wire, &msg);
}

/// Contract vector 7: 0x0001 terminal general reply.
#[test]
fn contract_7_terminal_reply() {
    let (wire, msg) = decode("7E0001000501234567890004B303E8000200D37E");
    assert_eq!(msg.header.serial, 1203);
    assert_eq!(
        msg.body,
        Body::TerminalReply(GeneralReply {
            reply_serial: 1000,
            reply_id: 0x0002,
            result: ReplyResult::Ok
        })
    );
    assert_reencodes(&wire, &msg);
}

/// Contract vector 8: 0x0704 batch location upload, two items.
#[test]
fn contract_8_batch_location() {
    let hex = "7E0704005311223344556622B80002000026000000010000000200BA7F0E07E4F11C0028003C0000180715101010010400000064020200370026000000020000000100CB735507E6A32300290036007818071510103001040000006002020042D47E";
    let (wire, msg) = decode(hex);
    assert_eq!(msg.header.phone.as_str(), "112233445566");
    assert_eq!(msg.header.serial, 8888);
    let Body::BatchLocation(b) = &msg.body else {
        panic!("{:?}", msg.body)
    };
    assert_eq!((b.kind, b.items.len()), (0, 2));
    let i2 = &b.items[1];
    assert_eq!(
        (i2.lat, i2.lon, i2.speed, i2.direction),
        (13_333_333, 132_555_555, 54, 120)
    );
    assert_eq!(
        i2.time,
        BcdTime {
            year: 18,
            month: 7,
            day: 15,
            hour: 10,
            minute: 10,
            second: 30
        }
    );
    assert_eq!(i2.alarm.0, 2);
    assert_eq!(b.items[0].extras.mileage, Some(100));
    assert_reencodes(&wire, &msg);
}

// ---- Huabao Telematics blog, "JT808 common message parsing of GPS electronic lock" (huabaotelematics.com) ----

/// 0x0200 2013 with 0x01, 0x03, 0x25, 0x30, 0x31 and two vendor items (0xE3, 0xD5) kept raw.
#[test]
fn huabao_location_with_vendor_items() {
    let hex = "7E 02 00 00 52 00 20 02 60 43 23 00 A4 00 02 00
               00 00 0C 00 02 01 58 B9 1B 06 CB 70 61 00 46 00
               00 00 59 21 09 22 16 37 58 01 04 00 00 00 01 03
               02 00 00 25 04 00 00 00 01 30 01 11 31 01 10 E3
               01 00 D5 1B 02 20 02 60 43 23 27 95 93 78 61 60
               00 12 20 00 00 12 34 27 95 93 78 61 58 00 12 86 7E";
    let (wire, msg) = decode(hex);
    assert_eq!(msg.header.phone.as_str(), "002002604323");
    assert_eq!(msg.header.serial, 0xA4);
    let l = location(&msg);
    assert_eq!(l.alarm.0, 0x0002_0000);
    assert_eq!(l.status.0, 0x000C_0002);
    assert_eq!(
        l.status.names().collect::<Vec<_>>(),
        ["positioned", "gps_used", "beidou_used"]
    );
    assert_eq!(
        (l.lat, l.lon, l.altitude, l.speed, l.direction),
        (0x0158_B91B, 0x06CB_7061, 0x46, 0, 0x59)
    );
    assert_eq!(
        l.time,
        BcdTime {
            year: 21,
            month: 9,
            day: 22,
            hour: 16,
            minute: 37,
            second: 58
        }
    );
    let x = &l.extras;
    assert_eq!((x.mileage, x.recorder_speed), (Some(1), Some(0)));
    assert_eq!(x.vehicle_signals.map(|s| s.0), Some(1));
    assert_eq!((x.signal_strength, x.satellites), (Some(0x11), Some(0x10)));
    assert_eq!(x.unknown.len(), 2);
    assert_eq!(
        (x.unknown[0].id, x.unknown[0].data.as_slice()),
        (0xE3, &[0u8][..])
    );
    assert_eq!((x.unknown[1].id, x.unknown[1].data.len()), (0xD5, 0x1B));
    assert_reencodes(&wire, &msg);
}

/// 0x0102 2013 authentication and the platform's 0x8001 reply to a 0x0200.
#[test]
fn huabao_auth_and_reply() {
    let (wire, msg) = decode(
        "7E 01 02 00 0D 00 20 02 60 43 25 00 01 38 33 30 30 32 30 30 32 36 30 34 33 32 13 7E",
    );
    assert_eq!(
        msg.body,
        Body::Authenticate(Authenticate {
            code: "8300200260432".into(),
            imei: None,
            software_version: None
        })
    );
    assert_reencodes(&wire, &msg);
    let (wire, msg) = decode("7E 80 01 00 05 00 20 02 60 43 23 00 09 00 EE 02 00 00 43 7E");
    assert_eq!(
        msg.body,
        Body::PlatformReply(GeneralReply {
            reply_serial: 0xEE,
            reply_id: 0x0200,
            result: ReplyResult::Ok
        })
    );
    assert_reencodes(&wire, &msg);
}

// ---- makeclan/xtream-codec on GitHub, debug UI codec mock data (codec-utils.ts), 2019 frames ----

/// 0x0200 2019 whose items come in the order 0x02, 0x01 (re-encoded in id order).
#[test]
fn xtream_location_2019() {
    let hex = "7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b004200032501292233440202006401040000000c417e";
    let (_, msg) = decode(hex);
    assert_eq!(msg.header.version, Version::V2019_1);
    assert_eq!(msg.header.phone.as_str(), "00000000013912344329");
    let l = location(&msg);
    assert_eq!((l.alarm.0, l.status.0), (111, 22));
    assert_eq!(
        (l.lat, l.lon, l.altitude, l.speed, l.direction),
        (31_234_567, 121_987_654, 123, 66, 3)
    );
    assert_eq!(l.time.to_string(), "2025-01-29T22:33:44+08:00");
    assert_eq!((l.extras.mileage, l.extras.fuel), (Some(12), Some(100)));
    assert_round_trips(&msg);
}

/// 0x0200 2019 with 0x01–0x04, 0x25, 0x30, 0x12, 0x13, 0x31 and an ADAS item (0x64) kept raw.
#[test]
fn xtream_location_2019_many_items() {
    let hex = "7e0200407c010000000001391234432900000000007b000000de01d907f2073d336c029a004e000014102119510901040000006f020200de0302029a0402014d2504000003093001211206010000000001130700000001000000310137642f000000dedf6f03420b0c0d0e0f04d201d907f2073d336c1410211951090001313233343536371410211951090101008e7e";
    let (_, msg) = decode(hex);
    let l = location(&msg);
    let x = &l.extras;
    assert_eq!(
        (x.mileage, x.fuel, x.recorder_speed, x.alarm_event_id),
        (Some(111), Some(222), Some(666), Some(333))
    );
    assert_eq!(x.vehicle_signals.map(|s| s.0), Some(0x309));
    assert_eq!(x.signal_strength, Some(0x21));
    assert_eq!(
        x.area_route,
        Some(location::AreaRouteExtra {
            location_type: 1,
            id: 0,
            direction: 1
        })
    );
    assert_eq!(
        x.route_time,
        Some(location::RouteTimeExtra {
            segment_id: 1,
            time_s: 0,
            result: 0
        })
    );
    assert_eq!(x.satellites, Some(0x37));
    assert_eq!(x.unknown.len(), 1);
    assert_eq!((x.unknown[0].id, x.unknown[0].data.len()), (0x64, 0x2f));
    assert_round_trips(&msg);
}

/// 0x0704 2019, two items without additional information.
#[test]
fn xtream_batch_2019() {
    let hex = "7e0704403f01000000000139123443290000000200001c000000010000000101d907f2073d336c029a00210059241029213903001c000000010000000101d907f3073d336d03090043005a241029213903f87e";
    let (wire, msg) = decode(hex);
    let Body::BatchLocation(b) = &msg.body else {
        panic!("{:?}", msg.body)
    };
    assert_eq!(b.items.len(), 2);
    assert_eq!(
        (b.items[0].lat, b.items[0].lon, b.items[0].altitude),
        (31_000_562, 121_451_372, 666)
    );
    assert_eq!((b.items[1].speed, b.items[1].direction), (67, 90));
    assert_eq!(b.items[1].time.to_string(), "2024-10-29T21:39:03+08:00");
    assert_reencodes(&wire, &msg);
}

/// 0x8001, 0x8100, 0x8104 and 0x8202 in 2019 headers.
#[test]
fn xtream_platform_messages_2019() {
    let (wire, msg) = decode("7e8001400501000000000139123443290000006f020000dc7e");
    assert_eq!(
        msg.body,
        Body::PlatformReply(GeneralReply {
            reply_serial: 111,
            reply_id: 0x0200,
            result: ReplyResult::Ok
        })
    );
    assert_reencodes(&wire, &msg);
    let (wire, msg) = decode("7e8100400d01000000000139123443290000006f006f6b2e2e6f6b2e2e6f6bd27e");
    assert_eq!(
        msg.body,
        Body::RegisterReply(RegisterReply {
            reply_serial: 111,
            result: 0,
            auth_code: "ok..ok..ok".into()
        })
    );
    assert_reencodes(&wire, &msg);
    let (wire, msg) = decode("7e8104400001000000000139123443290000b07e");
    assert_eq!(msg.body, Body::QueryParams);
    assert_reencodes(&wire, &msg);
    let (wire, msg) = decode("7e8202400601000000000139123443290000001e000003e8467e");
    assert_eq!(
        msg.body,
        Body::TempTracking(TempTracking {
            interval_s: 30,
            validity_s: 1000
        })
    );
    assert_reencodes(&wire, &msg);
}

/// 0x8300 (text message, not typed here) decodes as raw body bytes and re-encodes.
#[test]
fn xtream_unknown_message_kept_raw() {
    let (wire, msg) =
        decode("7e8300001901391234432300000148656c6c6f576f726c6420babad7d62047424b20b1e0c2ebf27e");
    let Body::Other { msg_id, data } = &msg.body else {
        panic!("{:?}", msg.body)
    };
    assert_eq!(*msg_id, 0x8300);
    assert_eq!(body::gbk_decode(&data[1..]), "HelloWorld 汉字 GBK 编码");
    assert_reencodes(&wire, &msg);
}

// ---- built here from the standard's tables (JT/T 808-2019 §8.8, table 12) ----

/// 0x8103 set parameters with typed DWORD/WORD/BYTE/STRING values and an untyped one,
/// and the 0x0104 reply carrying them back.
#[test]
fn params_set_and_reply() {
    let params = vec![
        Param {
            id: body::param::HEARTBEAT_INTERVAL,
            value: ParamValue::Dword(30),
        },
        Param {
            id: body::param::DEFAULT_REPORT_INTERVAL,
            value: ParamValue::Dword(10),
        },
        Param {
            id: body::param::MAX_SPEED,
            value: ParamValue::Dword(100),
        },
        Param {
            id: body::param::PROVINCE,
            value: ParamValue::Word(13),
        },
        Param {
            id: body::param::PLATE_COLOR,
            value: ParamValue::Byte(2),
        },
        Param {
            id: body::param::PLATE,
            value: ParamValue::Str("冀A12345".into()),
        },
        Param {
            id: 0xF001,
            value: ParamValue::Raw(vec![1, 2, 3]),
        },
    ];
    let phone = Phone::new("13800138000").unwrap();
    let set = Message::new(Version::V2013, phone, 7, Body::SetParams(params.clone()));
    let wire = set.to_bytes().unwrap();
    // Hand-checked prefix: id 8103, count 7, first item 00000001 len 4 value 0000001E.
    let hex = wire::to_hex(&wire);
    assert!(hex.starts_with("7E8103"), "{hex}");
    assert!(hex.contains("0700000001040000001E"), "{hex}");
    assert_eq!(Decoder::new().decode(&wire).unwrap(), set);
    let reply = Message::new(
        Version::V2019_1,
        phone,
        8,
        Body::ParamsReply(ParamsReply {
            reply_serial: 7,
            params: params.clone(),
        }),
    );
    assert_round_trips(&reply);
    // A typed id with the wrong length is kept raw rather than rejected.
    let odd = Message::new(
        Version::V2013,
        phone,
        9,
        Body::SetParams(vec![Param {
            id: 0x0001,
            value: ParamValue::Raw(vec![0, 30]),
        }]),
    );
    assert_round_trips(&odd);
}

/// `frame_to_json` on contract vector 1: header, body fields, named bits, items.
#[test]
fn json_of_contract_1() {
    let v = frame_to_json(
        "02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13",
    )
    .unwrap();
    assert_eq!(v["header"]["msg_id"], "0x0200");
    assert_eq!(v["header"]["msg_name"], "location report");
    assert_eq!(v["header"]["phone"], "123456789012");
    assert_eq!(v["header"]["serial"], 126);
    assert_eq!(v["header"]["version"], "2013");
    let f = &v["body"]["fields"];
    assert_eq!(v["body"]["type"], "location");
    assert_eq!(f["alarm"]["set"][0], "emergency");
    assert_eq!(f["status"]["set"][0], "positioned");
    assert_eq!(f["lat_deg"], 12.222222);
    assert_eq!(f["speed_kmh"], 6.0);
    assert_eq!(f["time"], "2018-10-15T10:10:10+08:00");
    assert_eq!(f["extras"]["mileage"], 100);
    assert_eq!(f["extras"]["fuel"], 125);
    let v = frame_to_json("7E 02 00 00 52 00 20 02 60 43 23 00 A4 00 02 00 00 00 0C 00 02 01 58 B9 1B 06 CB 70 61 00 46 00 00 00 59 21 09 22 16 37 58 01 04 00 00 00 01 03 02 00 00 25 04 00 00 00 01 30 01 11 31 01 10 E3 01 00 D5 1B 02 20 02 60 43 23 27 95 93 78 61 60 00 12 20 00 00 12 34 27 95 93 78 61 58 00 12 86 7E").unwrap();
    let x = &v["body"]["fields"]["extras"];
    assert_eq!(x["vehicle_signals"]["set"][0], "low_beam");
    assert_eq!(x["unknown"][0]["id"], "0xE3");
    assert_eq!(x["unknown"][0]["hex"], "00");
    assert!(matches!(
        frame_to_json("7E 02 00 zz"),
        Err(DecodeError::Hex { .. })
    ));
}
