//! Property tests: every message the encoder writes decodes back to itself
//! (2013 and 2019 headers, escapes, sub-packages in any order), and no input
//! bytes make the framer, decoder or reassembler panic.

use proptest::collection::vec;
use proptest::prelude::*;
use zhilu_jt808::body::{ParamKind, param_kind};
use zhilu_jt808::location::{AreaRouteExtra, OverspeedExtra, RouteTimeExtra, SignalFlags};
use zhilu_jt808::wire::{Framer, escape_into, unescape_into};
use zhilu_jt808::*;

const KNOWN_ITEMS: [u8; 12] = [
    0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x25, 0x2A, 0x2B, 0x30, 0x31,
];
const KNOWN_IDS: [u16; 13] = [
    0x0001, 0x0002, 0x0003, 0x0100, 0x0102, 0x0104, 0x0200, 0x0704, 0x8001, 0x8100, 0x8103, 0x8104,
    0x8202,
];

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V2013),
        any::<u8>().prop_map(|protocol| Version::V2019 { protocol })
    ]
}

fn phone(v: Version) -> impl Strategy<Value = Phone> {
    let n = if v.is_2019() { 20 } else { 12 };
    proptest::string::string_regex(&format!("[0-9]{{1,{n}}}"))
        .unwrap()
        .prop_map(|s| Phone::new(&s).unwrap())
}

fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{0,{max}}}")).unwrap()
}

fn plate() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[京津冀晋蒙辽吉黑沪苏浙粤川渝]?[A-Z0-9]{0,7}(挂|学)?").unwrap()
}

fn time() -> impl Strategy<Value = BcdTime> {
    (0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100).prop_map(
        |(year, month, day, hour, minute, second)| BcdTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        },
    )
}

fn extras() -> impl Strategy<Value = Extras> {
    let known = (
        (
            any::<Option<u32>>(),
            any::<Option<u16>>(),
            any::<Option<u16>>(),
            any::<Option<u16>>(),
        ),
        proptest::option::of(
            (any::<u8>(), any::<u32>()).prop_map(|(t, id)| OverspeedExtra {
                location_type: t,
                area_id: (t != 0).then_some(id),
            }),
        ),
        proptest::option::of((any::<u8>(), any::<u32>(), any::<u8>()).prop_map(
            |(location_type, id, direction)| AreaRouteExtra {
                location_type,
                id,
                direction,
            },
        )),
        proptest::option::of((any::<u32>(), any::<u16>(), any::<u8>()).prop_map(
            |(segment_id, time_s, result)| RouteTimeExtra {
                segment_id,
                time_s,
                result,
            },
        )),
        (
            any::<Option<u32>>(),
            any::<Option<u16>>(),
            any::<Option<u32>>(),
            any::<Option<u8>>(),
            any::<Option<u8>>(),
        ),
    );
    let unknown = vec(
        (
            any::<u8>().prop_filter("unknown id", |id| !KNOWN_ITEMS.contains(id)),
            vec(any::<u8>(), 0..24),
        )
            .prop_map(|(id, data)| RawItem { id, data }),
        0..3,
    );
    (known, unknown).prop_map(
        |((a, overspeed, area_route, route_time, b), unknown)| Extras {
            mileage: a.0,
            fuel: a.1,
            recorder_speed: a.2,
            alarm_event_id: a.3,
            overspeed,
            area_route,
            route_time,
            vehicle_signals: b.0.map(SignalFlags),
            io_status: b.1,
            analog: b.2,
            signal_strength: b.3,
            satellites: b.4,
            unknown,
        },
    )
}

fn location() -> impl Strategy<Value = Location> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        time(),
        extras(),
    )
        .prop_map(
            |((alarm, status, lat, lon), (altitude, speed, direction), time, extras)| Location {
                alarm: AlarmFlags(alarm),
                status: StatusFlags(status),
                lat,
                lon,
                altitude,
                speed,
                direction,
                time,
                extras,
            },
        )
}

fn param() -> impl Strategy<Value = Param> {
    prop_oneof![
        prop_oneof![Just(0x0001u32), Just(0x0029), Just(0x0055), Just(0x0080)].prop_flat_map(
            |id| any::<u32>().prop_map(move |v| Param {
                id,
                value: ParamValue::Dword(v)
            })
        ),
        prop_oneof![Just(0x0031u32), Just(0x0081), Just(0x0082)].prop_flat_map(|id| any::<u16>()
            .prop_map(move |v| Param {
                id,
                value: ParamValue::Word(v)
            })),
        any::<u8>().prop_map(|v| Param {
            id: 0x0084,
            value: ParamValue::Byte(v)
        }),
        (prop_oneof![Just(0x0013u32), Just(0x0083)], plate()).prop_map(|(id, s)| Param {
            id,
            value: ParamValue::Str(s)
        }),
        (
            any::<u32>().prop_filter("untyped", |id| param_kind(*id) == ParamKind::Raw),
            vec(any::<u8>(), 0..16)
        )
            .prop_map(|(id, v)| Param {
                id,
                value: ParamValue::Raw(v)
            }),
    ]
}

fn body(v: Version) -> impl Strategy<Value = Body> {
    let reply =
        (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(reply_serial, reply_id, r)| {
            GeneralReply {
                reply_serial,
                reply_id,
                result: ReplyResult::from_u8(r),
            }
        });
    let (mw, dw, tw) = if v.is_2019() {
        (11, 30, 30)
    } else {
        (5, 20, 7)
    };
    let register = (
        any::<u16>(),
        any::<u16>(),
        ascii(mw),
        ascii(dw),
        ascii(tw),
        any::<u8>(),
        plate(),
    )
        .prop_map(
            |(province, city, maker, model, terminal_id, plate_color, plate)| {
                Body::Register(Register {
                    province,
                    city,
                    maker,
                    model,
                    terminal_id,
                    plate_color,
                    plate,
                })
            },
        );
    let is_2019 = v.is_2019();
    let auth = (
        ascii(40),
        proptest::string::string_regex("[0-9]{0,15}").unwrap(),
        ascii(20),
    )
        .prop_map(move |(code, imei, sw)| {
            Body::Authenticate(if is_2019 {
                Authenticate {
                    code,
                    imei: Some(imei),
                    software_version: Some(sw),
                }
            } else {
                Authenticate {
                    code,
                    imei: None,
                    software_version: None,
                }
            })
        });
    prop_oneof![
        reply.clone().prop_map(Body::TerminalReply),
        reply.prop_map(Body::PlatformReply),
        Just(Body::Heartbeat),
        Just(Body::Deregister),
        Just(Body::QueryParams),
        register,
        auth,
        (any::<u16>(), any::<u8>(), ascii(30)).prop_map(|(reply_serial, result, auth_code)| {
            Body::RegisterReply(RegisterReply {
                reply_serial,
                result,
                auth_code,
            })
        }),
        location().prop_map(Body::Location),
        (any::<u8>(), vec(location(), 0..4))
            .prop_map(|(kind, items)| Body::BatchLocation(BatchLocation { kind, items })),
        vec(param(), 0..8).prop_map(Body::SetParams),
        (any::<u16>(), vec(param(), 0..8)).prop_map(|(reply_serial, params)| Body::ParamsReply(
            ParamsReply {
                reply_serial,
                params
            }
        )),
        (any::<u16>(), any::<u32>()).prop_map(|(interval_s, validity_s)| Body::TempTracking(
            TempTracking {
                interval_s,
                validity_s
            }
        )),
        (
            any::<u16>().prop_filter("unknown id", |id| !KNOWN_IDS.contains(id)),
            vec(any::<u8>(), 0..64)
        )
            .prop_map(|(msg_id, data)| Body::Other { msg_id, data }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    version().prop_flat_map(|v| {
        (phone(v), any::<u16>(), body(v))
            .prop_map(move |(p, serial, b)| Message::new(v, p, serial, b))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(msg in message()) {
        let wire = match msg.to_bytes() {
            Ok(w) => w,
            Err(EncodeError::BodyTooLong { .. }) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        // Delimiters only at the ends; nothing in between needs them.
        prop_assert_eq!(wire[0], 0x7e);
        prop_assert_eq!(wire[wire.len() - 1], 0x7e);
        prop_assert!(!wire[1..wire.len() - 1].contains(&0x7e));
        let mut dec = Decoder::new();
        prop_assert_eq!(&dec.decode(&wire).unwrap(), &msg);
        // And with the delimiters stripped.
        prop_assert_eq!(&dec.decode(&wire[1..wire.len() - 1]).unwrap(), &msg);
        // Encoding is deterministic.
        prop_assert_eq!(dec.decode(&wire).unwrap().to_bytes().unwrap(), wire);
    }

    #[test]
    fn decode_into_a_reused_message_equals_decode(msgs in vec(message(), 1..6)) {
        let mut dec = Decoder::new();
        let mut reused = Message::new(Version::V2013, Phone::new("1").unwrap(), 0, Body::Heartbeat);
        for msg in msgs {
            let Ok(wire) = msg.to_bytes() else { continue };
            dec.decode_into(&wire, &mut reused).unwrap();
            prop_assert_eq!(&reused, &msg);
        }
    }

    #[test]
    fn packets_reassemble_in_any_order(
        msg in message(),
        max_body in 8usize..300,
        order in any::<u64>(),
    ) {
        let mut packets = Vec::new();
        let n = msg.encode_packets(max_body, &mut packets).unwrap();
        prop_assert_eq!(n as usize, packets.len());
        // A deterministic shuffle from `order`.
        let mut seed = order | 1;
        for i in (1..packets.len()).rev() {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            packets.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let mut dec = Decoder::new();
        let mut re = Reassembler::new(ReassemblyConfig::default());
        let mut done = None;
        for p in &packets {
            let f = dec.frame(p).unwrap();
            prop_assert!(done.is_none());
            done = re.push(&f, 0).unwrap();
        }
        let done = done.expect("complete");
        prop_assert_eq!(done.decode().unwrap(), msg);
        prop_assert_eq!(re.pending_bytes(), 0);
    }

    #[test]
    fn escape_round_trip(bytes in vec(any::<u8>(), 0..300)) {
        let mut esc = Vec::new();
        escape_into(&bytes, &mut esc);
        prop_assert!(!esc.contains(&0x7e));
        let mut back = Vec::new();
        unescape_into(&esc, &mut back).unwrap();
        prop_assert_eq!(back, bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..400), chunk in 1usize..64) {
        let mut framer = Framer::new(2048);
        let mut dec = Decoder::new();
        let mut re = Reassembler::new(ReassemblyConfig::default());
        for c in bytes.chunks(chunk) {
            framer.push(c);
            while let Some(seg) = framer.next_frame() {
                let Ok(seg) = seg else { continue };
                if let Ok(f) = dec.frame(seg) {
                    let _ = f.decode_body();
                    if let Ok(Some(m)) = re.push(&f, 0) {
                        let _ = m.decode();
                    }
                } else {
                    let _ = error_reply(seg, 1);
                }
            }
        }
        let _ = frame_to_json(&wire::to_hex(&bytes));
    }

    #[test]
    fn mutated_frames_fail_cleanly(msg in message(), at in any::<usize>(), to in any::<u8>(), cut in any::<usize>()) {
        let Ok(mut wire) = msg.to_bytes() else { return Ok(()) };
        let i = at % wire.len();
        wire[i] = to;
        let _ = Decoder::new().decode(&wire);
        let _ = error_reply(&wire, 0);
        wire.truncate(cut % (wire.len() + 1));
        let _ = Decoder::new().decode(&wire);
    }
}
