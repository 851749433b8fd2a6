//! JT/T 808 terminals reporting straight to the centre: registration and
//! authentication against the database (the auth code survives a restart),
//! location reports stored as positions through the ingest writer and read
//! by the hazmat rules, the emergency button raising a `terminal_alarm`
//! event that ends when it is released, a wrong code refused.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use zhilu_jt808::sim::{Terminal, location_at};
use zhilu_jt808::{Phone, ReplyResult, Version};

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_report_straight_to_the_centre() {
    let mut s = TestServer::start("sqlite", |c| c.jt808.listen = "127.0.0.1:0".into())
        .await
        .unwrap();
    let addr = s.jt808_addr().unwrap();
    let phone = Phone::new("13912345678").unwrap();
    let mut term = Terminal::connect(addr, phone, Version::V2019_1)
        .await
        .unwrap();
    let code = term.register("冀F12345", "T0001", T).await.unwrap();
    assert_eq!(term.authenticate(&code, T).await.unwrap(), ReplyResult::Ok);

    // Drive along the road book's centre line: 05:40, a report every 30 s.
    let g = s.road.geometry();
    let t0 = 1_795_383_600_000i64; // 2026-11-23T05:40:00+08:00
    for i in 0..20 {
        let stake = g.start_m() + 1000.0 + i as f64 * 600.0;
        let (lon, lat) = g.lonlat(stake);
        let alarm = if (8..12).contains(&i) { 1 } else { 0 }; // emergency button held
        let r = term
            .report(location_at(lat, lon, 72.0, 90.0, t0 + i * 30_000, alarm), T)
            .await
            .unwrap();
        assert_eq!(r, ReplyResult::Ok);
    }
    // Positions are stored, as the plate, with the configured class.
    let store = zhilu_store::Store::open(&s.cfg.storage.url).await.unwrap();
    let t = Instant::now();
    loop {
        if store.count_readings().await.unwrap().positions == 20 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "positions not stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = store.readings_after(0, i64::MIN, 100).await.unwrap();
    let p = rows.iter().find_map(|r| match r {
        zhilu_store::Reading::Position(p) => Some(p.clone()),
        _ => None,
    });
    let p = p.unwrap();
    assert_eq!(p.vehicle, "冀F12345");
    assert_eq!(p.class, "hazmat");
    assert!((p.speed_kmh.unwrap() - 72.0).abs() < 0.2);

    // The emergency button: one event, opened then ended.
    let viewer = s.login("viewer").await;
    let ev = s
        .wait_for(&viewer, "/api/events?kind=terminal_alarm", 10, |v| {
            v.as_array().unwrap().iter().any(|e| !e["end"].is_null())
        })
        .await;
    let ev = ev.as_array().unwrap();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["vehicle"], "冀F12345");
    assert_eq!(ev[0]["evidence"]["rule"], "jt808.emergency");
    assert!(
        ev[0]["start"].as_str().unwrap().contains("05:44:00"),
        "{}",
        ev[0]
    );
    assert!(
        ev[0]["end"].as_str().unwrap().contains("05:46:00"),
        "{}",
        ev[0]
    );

    // A wrong code is refused; the right one still works after a restart
    // (codes are kept in the database, as hashes).
    drop(term);
    let mut bad = Terminal::connect(addr, phone, Version::V2019_1)
        .await
        .unwrap();
    assert_ne!(
        bad.authenticate("not-the-code", T).await.unwrap(),
        ReplyResult::Ok
    );
    drop(bad);
    let stored = store.terminal("13912345678").await.unwrap().unwrap();
    assert_ne!(stored.auth_hash, code);
    s.restart().await;
    let addr = s.jt808_addr().unwrap();
    let mut again = Terminal::connect(addr, phone, Version::V2019_1)
        .await
        .unwrap();
    assert_eq!(again.authenticate(&code, T).await.unwrap(), ReplyResult::Ok);
    store.close().await;
}
