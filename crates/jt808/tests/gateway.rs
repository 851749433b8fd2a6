//! The real gateway on loopback, driven by simulated terminals.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use zhilu_jt808::gateway::{Gateway, GatewayConfig, GatewayEvent, GatewayHandle, MemoryRegistry};
use zhilu_jt808::location::AlarmFlags;
use zhilu_jt808::sim::{FleetConfig, Terminal, location_at, run_fleet};
use zhilu_jt808::*;

const T: Duration = Duration::from_secs(5);
/// 2024-05-01T08:00:00+08:00
const TIME_MS: i64 = 1_714_521_600_000;

async fn start(
    cfg: GatewayConfig,
) -> (
    GatewayHandle,
    Arc<MemoryRegistry>,
    mpsc::Receiver<GatewayEvent>,
) {
    let registry = Arc::new(MemoryRegistry::new());
    let (tx, rx) = mpsc::channel(10_000);
    let (h, _task) = Gateway::start(cfg, registry.clone(), tx)
        .await
        .expect("gateway starts");
    (h, registry, rx)
}

/// The next event that `pick` accepts (others skipped), or a panic after 5 s.
async fn next<R>(
    rx: &mut mpsc::Receiver<GatewayEvent>,
    mut pick: impl FnMut(GatewayEvent) -> Option<R>,
) -> R {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(r) = pick(ev) {
                    return r;
                }
            }
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no matching event within {T:?}"),
        }
    }
}

async fn authenticated(addr: std::net::SocketAddr, phone: &str, version: Version) -> Terminal {
    let mut t = Terminal::connect(addr, Phone::new(phone).unwrap(), version)
        .await
        .unwrap();
    let code = t.register("冀A12345", "T000001", T).await.unwrap();
    assert_eq!(t.authenticate(&code, T).await.unwrap(), ReplyResult::Ok);
    t
}

#[tokio::test]
async fn register_auth_location_event_arrives() {
    let (h, registry, mut rx) = start(GatewayConfig::default()).await;
    let mut t = Terminal::connect(
        h.local_addr(),
        Phone::new("13800138000").unwrap(),
        Version::V2019_1,
    )
    .await
    .unwrap();
    let code = t.register("冀A12345", "T000001", T).await.unwrap();
    assert_eq!(registry.auth_code("13800138000"), Some(code.clone()));
    let (phone, plate, tid) = next(&mut rx, |e| match e {
        GatewayEvent::Registered {
            phone,
            plate,
            terminal_id,
        } => Some((phone, plate, terminal_id)),
        _ => None,
    })
    .await;
    assert_eq!(
        (phone.as_str(), plate.as_str(), tid.as_str()),
        ("13800138000", "冀A12345", "T000001")
    );
    assert_eq!(t.authenticate(&code, T).await.unwrap(), ReplyResult::Ok);
    next(&mut rx, |e| {
        matches!(e, GatewayEvent::Authenticated { .. }).then_some(())
    })
    .await;
    assert_eq!(t.heartbeat(T).await.unwrap(), ReplyResult::Ok);

    let loc = location_at(38.123456, -115.5, 88.4, 271.0, TIME_MS, 0);
    assert_eq!(t.report(loc, T).await.unwrap(), ReplyResult::Ok);
    let ev = next(&mut rx, |e| {
        matches!(e, GatewayEvent::Position { .. }).then_some(e)
    })
    .await;
    let GatewayEvent::Position {
        phone,
        plate,
        time_ms,
        lat,
        lon,
        speed_kmh,
        heading_deg,
        alarm_bits,
        status_bits,
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(
        (phone.as_str(), plate.as_str(), time_ms),
        ("13800138000", "冀A12345", TIME_MS)
    );
    assert!(
        (lat - 38.123456).abs() < 1e-9 && (lon + 115.5).abs() < 1e-9,
        "{lat} {lon}"
    );
    assert!((speed_kmh - 88.4).abs() < 1e-9 && heading_deg == 271.0);
    assert_eq!(alarm_bits, 0);
    assert!(StatusFlags(status_bits).contains(StatusFlags::POSITIONED | StatusFlags::WEST));

    // Emergency button and over-speed raise an alarm; the next report clears one.
    let loc = location_at(
        38.2,
        115.5,
        130.0,
        0.0,
        TIME_MS + 1000,
        AlarmFlags::EMERGENCY | AlarmFlags::OVERSPEED,
    );
    assert_eq!(t.report(loc, T).await.unwrap(), ReplyResult::Ok);
    let (bits, raised, cleared) = next(&mut rx, |e| match e {
        GatewayEvent::Alarm {
            alarm_bits,
            raised,
            cleared,
            ..
        } => Some((alarm_bits, raised, cleared)),
        _ => None,
    })
    .await;
    assert_eq!((bits, raised, cleared), (3, 3, 0));
    let loc = location_at(
        38.3,
        115.5,
        100.0,
        0.0,
        TIME_MS + 2000,
        AlarmFlags::EMERGENCY,
    );
    assert_eq!(t.report(loc, T).await.unwrap(), ReplyResult::Ok);
    let (bits, raised, cleared) = next(&mut rx, |e| match e {
        GatewayEvent::Alarm {
            alarm_bits,
            raised,
            cleared,
            ..
        } => Some((alarm_bits, raised, cleared)),
        _ => None,
    })
    .await;
    assert_eq!((bits, raised, cleared), (1, 0, 2));
    assert_eq!(h.stats().positions, 3);
    h.shutdown();
}

#[tokio::test]
async fn location_before_auth_fails_and_unknown_is_unsupported() {
    let (h, _registry, mut rx) = start(GatewayConfig::default()).await;
    let mut t = Terminal::connect(
        h.local_addr(),
        Phone::new("13900000001").unwrap(),
        Version::V2013,
    )
    .await
    .unwrap();
    let loc = location_at(39.0, 116.0, 10.0, 0.0, TIME_MS, 0);
    assert_eq!(t.report(loc, T).await.unwrap(), ReplyResult::Fail);
    let serial = t
        .send(Body::Other {
            msg_id: 0x0900,
            data: vec![1, 2, 3],
        })
        .await
        .unwrap();
    let Body::PlatformReply(r) = t.reply_to(serial, T).await.unwrap() else {
        panic!()
    };
    assert_eq!((r.reply_id, r.result), (0x0900, ReplyResult::Unsupported));
    drop(t);
    let ev = next(&mut rx, |e| match e {
        GatewayEvent::Position { .. } => panic!("position forwarded before auth"),
        GatewayEvent::Disconnected { phone, reason } => Some((phone, reason)),
        _ => None,
    })
    .await;
    assert_eq!(ev, (None, "closed".to_string()));
}

#[tokio::test]
async fn bad_auth_n_times_is_refused() {
    let cfg = GatewayConfig {
        auth_failures: 3,
        auth_lockout: Duration::from_secs(60),
        ..Default::default()
    };
    let (h, _registry, mut rx) = start(cfg).await;
    let phone = Phone::new("13700000007").unwrap();
    let mut t = Terminal::connect(h.local_addr(), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register("京B00007", "T7", T).await.unwrap();
    for n in 1..=3u32 {
        assert_eq!(t.authenticate("wrong", T).await.unwrap(), ReplyResult::Fail);
        let (failures, locked) = next(&mut rx, |e| match e {
            GatewayEvent::AuthFailed {
                failures, locked, ..
            } => Some((failures, locked)),
            _ => None,
        })
        .await;
        assert_eq!((failures, locked), (n, n == 3));
    }
    assert!(
        t.wait_closed(T).await,
        "connection closed after the lock-out"
    );
    // Even the right code is refused now, on a new connection.
    let mut t = Terminal::connect(h.local_addr(), phone, Version::V2013)
        .await
        .unwrap();
    assert_eq!(t.authenticate(&code, T).await.unwrap(), ReplyResult::Fail);
    assert!(t.wait_closed(T).await);
    // Another phone is not affected.
    let mut other = authenticated(h.local_addr(), "13700000008", Version::V2013).await;
    assert_eq!(other.heartbeat(T).await.unwrap(), ReplyResult::Ok);
}

#[tokio::test]
async fn lockout_expires() {
    let cfg = GatewayConfig {
        auth_failures: 1,
        auth_lockout: Duration::from_millis(300),
        ..Default::default()
    };
    let (h, _registry, _rx) = start(cfg).await;
    let phone = Phone::new("13700000009").unwrap();
    let mut t = Terminal::connect(h.local_addr(), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register("京B00009", "T9", T).await.unwrap();
    assert_eq!(t.authenticate("wrong", T).await.unwrap(), ReplyResult::Fail);
    assert!(t.wait_closed(T).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut t = Terminal::connect(h.local_addr(), phone, Version::V2013)
        .await
        .unwrap();
    assert_eq!(t.authenticate(&code, T).await.unwrap(), ReplyResult::Ok);
}

#[tokio::test]
async fn garbage_between_frames_gets_message_error_and_later_frames_work() {
    let (h, _registry, mut rx) = start(GatewayConfig::default()).await;
    let mut t = authenticated(h.local_addr(), "13600000001", Version::V2013).await;
    // A good report whose checksum we break, with its serial.
    let phone = t.phone;
    let bad = Message::new(
        Version::V2013,
        phone,
        500,
        Body::Location(location_at(39.0, 116.0, 1.0, 0.0, TIME_MS, 0)),
    );
    let mut bad = bad.to_bytes().unwrap();
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    if bad[n - 2] == 0x7e || bad[n - 2] == 0x7d {
        bad[n - 2] ^= 0x03;
    }
    let good = Message::new(
        Version::V2013,
        phone,
        501,
        Body::Location(location_at(39.5, 116.5, 1.0, 0.0, TIME_MS, 0)),
    );
    let mut stream = b"\x01\x02 noise \xff".to_vec();
    stream.extend_from_slice(&bad);
    stream.extend_from_slice(b"\x7e\x7d\x05junk\x7e");
    stream.extend_from_slice(&good.to_bytes().unwrap());
    t.send_raw(&stream).await.unwrap();
    let Body::PlatformReply(r) = t.reply_to(500, T).await.unwrap() else {
        panic!()
    };
    assert_eq!((r.reply_id, r.result), (0x0200, ReplyResult::MessageError));
    let Body::PlatformReply(r) = t.reply_to(501, T).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.result, ReplyResult::Ok);
    let lat = next(&mut rx, |e| match e {
        GatewayEvent::Position { lat, .. } => Some(lat),
        _ => None,
    })
    .await;
    assert!((lat - 39.5).abs() < 1e-9);
    assert!(h.stats().bad_frames >= 2, "{:?}", h.stats());
    // The connection still works.
    assert_eq!(t.heartbeat(T).await.unwrap(), ReplyResult::Ok);
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let cfg = GatewayConfig {
        idle_timeout: Duration::from_millis(1000),
        ..Default::default()
    };
    let (h, _registry, mut rx) = start(cfg).await;
    let mut t = authenticated(h.local_addr(), "13500000001", Version::V2013).await;
    assert!(t.wait_closed(T).await);
    let (phone, reason) = next(&mut rx, |e| match e {
        GatewayEvent::Disconnected { phone, reason } => Some((phone, reason)),
        _ => None,
    })
    .await;
    assert_eq!(
        (phone.as_deref(), reason.as_str()),
        (Some("13500000001"), "idle")
    );
    assert_eq!(h.stats().active, 0);
}

#[tokio::test]
async fn sub_packaged_batch_upload() {
    let (h, _registry, mut rx) = start(GatewayConfig::default()).await;
    let mut t = authenticated(h.local_addr(), "13400000001", Version::V2019_1).await;
    let items: Vec<Location> = (0..40)
        .map(|i| {
            location_at(
                39.0 + f64::from(i) * 0.001,
                116.0,
                60.0,
                0.0,
                TIME_MS + i64::from(i) * 1000,
                0,
            )
        })
        .collect();
    let serials = t
        .send_packets(Body::BatchLocation(BatchLocation { kind: 1, items }), 300)
        .await
        .unwrap();
    assert!(serials.len() > 3, "{} packets", serials.len());
    for s in serials {
        let Body::PlatformReply(r) = t.reply_to(s, T).await.unwrap() else {
            panic!()
        };
        assert_eq!((r.reply_id, r.result), (0x0704, ReplyResult::Ok));
    }
    let mut times = Vec::new();
    while times.len() < 40 {
        times.push(
            next(&mut rx, |e| match e {
                GatewayEvent::Position { time_ms, .. } => Some(time_ms),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        times,
        (0..40).map(|i| TIME_MS + i * 1000).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn connection_limit() {
    let cfg = GatewayConfig {
        max_connections: 2,
        ..Default::default()
    };
    let (h, _registry, _rx) = start(cfg).await;
    let mut a = authenticated(h.local_addr(), "13300000001", Version::V2013).await;
    let _b = authenticated(h.local_addr(), "13300000002", Version::V2013).await;
    let mut c = Terminal::connect(
        h.local_addr(),
        Phone::new("13300000003").unwrap(),
        Version::V2013,
    )
    .await
    .unwrap();
    assert!(c.wait_closed(T).await, "third connection closed");
    assert_eq!(h.stats().refused, 1);
    assert_eq!(a.heartbeat(T).await.unwrap(), ReplyResult::Ok);
}

#[tokio::test]
async fn fleet_along_points() {
    let (h, registry, mut rx) = start(GatewayConfig::default()).await;
    let cfg = FleetConfig {
        addr: h.local_addr(),
        terminals: 25,
        period: Duration::from_millis(50),
        reports: 4,
        points: vec![(39.00, 116.0), (39.001, 116.0), (39.002, 116.001)],
        ramp_up: Duration::from_millis(100),
        ..Default::default()
    };
    let rep = run_fleet(cfg).await;
    assert_eq!(rep.errors, Vec::<String>::new());
    assert_eq!((rep.authenticated, rep.reports, rep.ok), (25, 100, 100));
    assert_eq!(rep.latencies_us.len(), 100);
    assert!(rep.latency_quantile_us(0.99).is_some());
    assert_eq!(registry.len(), 25);
    let mut positions = 0;
    while positions < 100 {
        next(&mut rx, |e| {
            matches!(e, GatewayEvent::Position { .. }).then_some(())
        })
        .await;
        positions += 1;
    }
}

#[tokio::test]
async fn commands_reach_the_terminal_and_return_its_answer() {
    use zhilu_jt808::body::{ParamValue, param};
    use zhilu_jt808::gateway::CommandError;
    let (h, _registry, _rx) = start(GatewayConfig::default()).await;
    assert_eq!(
        h.command("13200000001", Body::QueryParams, T).await,
        Err(CommandError::NotConnected("13200000001".into()))
    );
    let mut t = authenticated(h.local_addr(), "13200000001", Version::V2019_1).await;
    let handle = h.clone();
    let track = tokio::spawn(async move {
        handle
            .command(
                "013200000001",
                Body::TempTracking(TempTracking {
                    interval_s: 5,
                    validity_s: 600,
                }),
                T,
            )
            .await
    });
    // The terminal sees the 0x8202 and answers it.
    let m = t.recv(T).await.unwrap();
    assert_eq!(
        m.body,
        Body::TempTracking(TempTracking {
            interval_s: 5,
            validity_s: 600
        })
    );
    assert_eq!(m.header.version, Version::V2019_1);
    let reply = GeneralReply {
        reply_serial: m.header.serial,
        reply_id: 0x8202,
        result: ReplyResult::Ok,
    };
    t.send(Body::TerminalReply(reply)).await.unwrap();
    assert_eq!(track.await.unwrap(), Ok(Body::TerminalReply(reply)));

    // A parameter query is answered with 0x0104.
    let handle = h.clone();
    let query =
        tokio::spawn(async move { handle.command("13200000001", Body::QueryParams, T).await });
    let m = t.recv(T).await.unwrap();
    assert_eq!(m.body, Body::QueryParams);
    let params = vec![Param {
        id: param::HEARTBEAT_INTERVAL,
        value: ParamValue::Dword(30),
    }];
    let answer = Body::ParamsReply(ParamsReply {
        reply_serial: m.header.serial,
        params,
    });
    t.send(answer.clone()).await.unwrap();
    assert_eq!(query.await.unwrap(), Ok(answer));

    // No answer: a timeout; the connection keeps working.
    let r = h
        .command("13200000001", Body::QueryParams, Duration::from_millis(200))
        .await;
    assert!(matches!(r, Err(CommandError::Timeout { .. })), "{r:?}");
    assert_eq!(t.heartbeat(T).await.unwrap(), ReplyResult::Ok);
    // After the terminal leaves, it is not connected.
    drop(t);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        h.command("13200000001", Body::QueryParams, T).await,
        Err(CommandError::NotConnected(_))
    ));
}

/// One address cannot take every slot (issue 19): past `max_per_ip` its
/// connections are closed at once, while another address is served.
#[tokio::test]
async fn per_address_limit() {
    let cfg = GatewayConfig {
        max_per_ip: 2,
        ..Default::default()
    };
    let (h, _registry, _rx) = start(cfg).await;
    let mut a = authenticated(h.local_addr(), "13300000011", Version::V2013).await;
    let _b = authenticated(h.local_addr(), "13300000012", Version::V2013).await;
    let mut c = Terminal::connect(
        h.local_addr(),
        Phone::new("13300000013").unwrap(),
        Version::V2013,
    )
    .await
    .unwrap();
    assert!(
        c.wait_closed(T).await,
        "third connection from one address closed"
    );
    assert_eq!(h.stats().refused, 1);
    assert_eq!(a.heartbeat(T).await.unwrap(), ReplyResult::Ok);
    // From another loopback address: served.
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let other = s.connect(h.local_addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.stats().refused, 1);
    drop(other);
}

/// A connection that never authenticates is closed after `auth_timeout`,
/// even though it keeps talking (heartbeats reset only the idle timer).
#[tokio::test]
async fn unauthenticated_connection_is_closed() {
    let cfg = GatewayConfig {
        auth_timeout: Duration::from_millis(600),
        ..Default::default()
    };
    let (h, _registry, mut rx) = start(cfg).await;
    let mut t = Terminal::connect(
        h.local_addr(),
        Phone::new("13300000021").unwrap(),
        Version::V2013,
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let _ = t.heartbeat(Duration::from_millis(300)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(t.wait_closed(T).await);
    let reason = next(&mut rx, |e| match e {
        GatewayEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, "not authenticated in time");
}
