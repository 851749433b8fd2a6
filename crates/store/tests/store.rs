//! Every store behaviour, against real databases: SQLite always, PostgreSQL
//! when `ZHILU_TEST_PG_URL` is set (see `common`).

mod common;

use common::TestDb;
use zhilu_store::{
    AccountSummary, ActionRow, AuditEntry, CameraRow, DeviceStateRow, EventChangeRow, EventQuery,
    EventRow, ObsRow, PlanRow, PositionRow, ProposalDecision, ProposalRow, Reading, ReadingBatch,
    ReadingCounts, SessionRow, Store, StoreError, TickCommit, UserRow, WeatherRow,
};

both!(
    plans_group_steps_and_list_while_pending,
    reopen_keeps_data,
    batch_round_trip,
    duplicate_seq_is_skipped,
    a_reading_is_stored_once,
    big_batch_is_chunked,
    readings_after_merges_kinds_in_seq_order,
    commit_tick_round_trip,
    commit_tick_is_atomic,
    decide_proposal_only_once,
    concurrent_decisions_have_one_winner,
    pending_expired_lists_only_pending,
    audit_is_append_only,
    users,
    sessions,
    accounts_with_last_login,
    accounts_generation_and_user_sessions,
    open_existing_refuses_a_missing_file,
    device_states,
    terminals,
    source_clocks,
    last_sent_actions,
    meta_and_snapshots,
    max_ids,
    retention_rolls_up_obs,
    retention_rolls_up_weather,
    retention_archives_positions_and_camera,
    retention_without_archive_deletes,
    station_history_merges_raw_and_rolled_up,
    station_rollup_follows_batches_retries_and_retention,
);

// ---------------------------------------------------------------- builders

fn obs(seq: i64, ts_ms: i64, det: &str, lane: i16, volume: i32, speed: Option<f64>) -> ObsRow {
    ObsRow {
        seq,
        ts_ms,
        detector: det.into(),
        lane,
        interval_s: 30,
        volume,
        speed_kmh: speed,
        occupancy_pct: speed.map(|s| s / 10.0),
    }
}

fn weather(seq: i64, ts_ms: i64) -> WeatherRow {
    WeatherRow {
        seq,
        ts_ms,
        station: "W1".into(),
        visibility_m: None,
        surface_temp_c: None,
        air_temp_c: None,
        humidity_pct: None,
        surface_state: String::new(),
    }
}

fn position(seq: i64, ts_ms: i64, vehicle: &str) -> PositionRow {
    PositionRow {
        seq,
        ts_ms,
        vehicle: vehicle.into(),
        class: "car".into(),
        lat: 30.25,
        lon: 120.125,
        speed_kmh: Some(95.5),
        heading_deg: None,
    }
}

fn camera(seq: i64, ts_ms: i64) -> CameraRow {
    CameraRow {
        seq,
        ts_ms,
        camera: "C1".into(),
        kind: "congestion".into(),
        direction: String::new(),
        stake_m: 12_345.5,
        lane: None,
        confidence: 0.9,
    }
}

fn event(id: &str, kind: &str, detected_ms: i64, end_ms: Option<i64>) -> EventRow {
    EventRow {
        id: id.into(),
        kind: kind.into(),
        direction: "up".into(),
        from_m: 1000.0,
        to_m: 2500.5,
        start_ms: detected_ms - 60_000,
        detected_ms,
        end_ms,
        severity: 2,
        rule: format!("{kind}.rule"),
        key: format!("{kind}:up:1000"),
        json: format!("{{\"id\":\"{id}\",\"end\":{}}}", end_ms.is_some()),
        updated_wall_ms: 9_000_000 + detected_ms,
    }
}

fn change(event_id: &str, change: &str, at_ms: i64) -> EventChangeRow {
    EventChangeRow {
        event_id: event_id.into(),
        change: change.into(),
        at_ms,
        wall_ms: at_ms + 5,
        json: format!("{{\"{change}\":{at_ms}}}"),
    }
}

fn action(id: i64, wall_ms: i64, event_id: Option<&str>, proposal_id: Option<i64>) -> ActionRow {
    ActionRow {
        id,
        at_ms: wall_ms - 1000,
        wall_ms,
        device: format!("VSL-{id}"),
        kind: "speed_limit".into(),
        json: format!("{{\"action\":{id}}}"),
        event_id: event_id.map(str::to_string),
        reason: "fog".into(),
        mode: if proposal_id.is_some() {
            "confirm"
        } else {
            "auto"
        }
        .into(),
        proposal_id,
    }
}

fn proposal(id: i64, expires_wall_ms: i64) -> ProposalRow {
    ProposalRow {
        id,
        created_wall_ms: expires_wall_ms - 300_000,
        expires_wall_ms,
        at_ms: 1_000,
        device: format!("VMS-{id}"),
        kind: "vms".into(),
        json: format!("{{\"proposal\":{id}}}"),
        event_id: None,
        reason: "ice".into(),
        status: "pending".into(),
        decided_by: None,
        decided_wall_ms: None,
        decision_reason: None,
        final_json: None,
        plan_id: None,
    }
}

fn audit_entry(actor: &str, action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        wall_ms: 42,
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: "{\"why\":\"test\"}".into(),
    }
}

fn decision(status: &str, by: &str) -> ProposalDecision {
    ProposalDecision {
        status: status.into(),
        by: by.into(),
        wall_ms: 77_000,
        reason: Some(format!("{by} says {status}")),
        final_json: Some("{\"final\":true}".into()),
    }
}

fn user(name: &str, role: &str) -> UserRow {
    UserRow {
        name: name.into(),
        role: role.into(),
        pw_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${name}"),
        created_wall_ms: 1_000,
        disabled: false,
    }
}

fn session(token_hash: &str, user: &str, expires_wall_ms: i64) -> SessionRow {
    SessionRow {
        token_hash: token_hash.into(),
        user: user.into(),
        role: "ignored".into(),
        created_wall_ms: 10,
        expires_wall_ms,
    }
}

/// Epoch ms of an RFC 3339 time.
fn ms(t: &str) -> i64 {
    t.parse::<jiff::Timestamp>().expect("time").as_millisecond()
}

/// A 5-minute bucket boundary (2025-11-24T16:00:00Z).
const T0: i64 = 1_764_000_000_000;

async fn all_readings(s: &Store) -> Vec<Reading> {
    s.readings_after(i64::MIN, i64::MIN, u32::MAX)
        .await
        .expect("readings_after")
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

// ---------------------------------------------------------------- readings

async fn reopen_keeps_data(db: &TestDb) {
    let b = ReadingBatch {
        obs: vec![obs(1, 1000, "D1", 1, 5, Some(80.0))],
        ..Default::default()
    };
    db.store.append_readings(&b).await.unwrap();
    // A second store on the same database: migrations already applied, data there.
    let again = Store::open(&db.url).await.unwrap();
    assert_eq!(again.backend(), db.store.backend());
    assert_eq!(again.count_readings().await.unwrap().obs, 1);
    again.close().await;
}

async fn batch_round_trip(db: &TestDb) {
    let mut o2 = obs(5, 2000, "D2", 3, 0, None);
    o2.occupancy_pct = None;
    let mut w2 = weather(6, 2500);
    w2.visibility_m = Some(150.0);
    w2.surface_temp_c = Some(-2.5);
    w2.air_temp_c = Some(1.25);
    w2.humidity_pct = Some(97.0);
    w2.surface_state = "ice".into();
    let mut p = position(3, 1500, "ZJ-A123");
    p.speed_kmh = None;
    p.heading_deg = Some(271.5);
    let mut c2 = camera(7, 3000);
    c2.lane = Some(2);
    c2.direction = "down".into();
    let b = ReadingBatch {
        obs: vec![obs(1, 1000, "D1", 1, 12, Some(88.5)), o2.clone()],
        weather: vec![weather(2, 1000), w2.clone()],
        positions: vec![p.clone()],
        camera: vec![camera(4, 1800), c2.clone()],
    };
    db.store.append_readings(&b).await.unwrap();
    db.store
        .append_readings(&ReadingBatch::default())
        .await
        .unwrap();

    let got = all_readings(&db.store).await;
    let want = vec![
        Reading::Obs(b.obs[0].clone()),
        Reading::Weather(b.weather[0].clone()),
        Reading::Position(p),
        Reading::Camera(b.camera[0].clone()),
        Reading::Obs(o2),
        Reading::Weather(w2),
        Reading::Camera(c2),
    ];
    assert_eq!(got, want);
    assert_eq!(
        db.store.count_readings().await.unwrap(),
        ReadingCounts {
            obs: 2,
            weather: 2,
            positions: 1,
            camera: 2
        }
    );
    assert_eq!(db.store.max_ids().await.unwrap().reading_seq, 7);
}

async fn duplicate_seq_is_skipped(db: &TestDb) {
    let b = ReadingBatch {
        obs: vec![obs(1, 1000, "D1", 1, 12, Some(88.5))],
        positions: vec![position(2, 1000, "V1")],
        ..Default::default()
    };
    db.store.append_readings(&b).await.unwrap();
    // The same batch retried: no error, no second copy.
    db.store.append_readings(&b).await.unwrap();
    // A batch mixing a stored seq (different values) and a new one.
    let mixed = ReadingBatch {
        obs: vec![
            obs(1, 9999, "CHANGED", 2, 1, None),
            obs(3, 3000, "D1", 1, 4, Some(70.0)),
        ],
        ..Default::default()
    };
    db.store.append_readings(&mixed).await.unwrap();
    let got = all_readings(&db.store).await;
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        Reading::Obs(b.obs[0].clone()),
        "the first write wins"
    );
    assert_eq!(got[2], Reading::Obs(mixed.obs[1].clone()));
    let c = db.store.count_readings().await.unwrap();
    assert_eq!((c.obs, c.positions), (2, 1));
}

async fn a_reading_is_stored_once(db: &TestDb) {
    // A batch stored, then sent again under new seqs (its ack was lost) and
    // mixed with new rows: only the new rows are stored, the copies are
    // named, and the first stored copy stays.
    let mut c_lane = camera(4, 1800);
    c_lane.lane = Some(2);
    let first = ReadingBatch {
        obs: vec![
            obs(1, 1000, "D1", 1, 12, Some(88.5)),
            obs(2, 1000, "D1", 2, 9, Some(80.0)),
        ],
        weather: vec![weather(3, 1000)],
        positions: vec![position(5, 1000, "V1")],
        camera: vec![camera(6, 1800), c_lane],
    };
    let a = db.store.append_readings(&first).await.unwrap();
    assert!(a.duplicates.is_empty(), "{a:?}");
    let mut changed = obs(11, 1000, "D1", 1, 99, None);
    changed.interval_s = 60;
    let mut c_other_lane = camera(17, 1800);
    c_other_lane.lane = Some(3);
    let again = ReadingBatch {
        obs: vec![
            changed,
            obs(12, 1000, "D1", 2, 9, Some(80.0)),
            obs(13, 1030, "D1", 1, 7, Some(85.0)),
            // The same reading twice in one batch.
            obs(14, 1060, "D1", 1, 7, Some(85.0)),
            obs(15, 1060, "D1", 1, 7, Some(85.0)),
        ],
        weather: vec![weather(16, 1000), weather(18, 1030)],
        positions: vec![position(19, 1000, "V1"), position(20, 1000, "V2")],
        camera: vec![camera(21, 1800), c_other_lane, {
            let mut c = camera(22, 1800);
            c.lane = Some(2);
            c
        }],
    };
    let a = db.store.append_readings(&again).await.unwrap();
    assert_eq!(a.duplicates, vec![11, 12, 15, 16, 19, 21, 22]);
    let c = db.store.count_readings().await.unwrap();
    assert_eq!((c.obs, c.weather, c.positions, c.camera), (4, 2, 2, 3));
    let got = all_readings(&db.store).await;
    assert_eq!(
        got[0],
        Reading::Obs(first.obs[0].clone()),
        "the first copy stays"
    );
    // The very same batch retried (same seqs: its commit was in doubt) is
    // no duplicate and stores nothing twice.
    let a = db.store.append_readings(&again).await.unwrap();
    assert_eq!(a.duplicates, vec![11, 12, 15, 16, 19, 21, 22]);
    assert_eq!(db.store.count_readings().await.unwrap(), c);
}

async fn big_batch_is_chunked(db: &TestDb) {
    // 9000 rows × 8 columns = 72,000 parameters: over both backends' limits.
    let n = 9000;
    let b = ReadingBatch {
        obs: (0..n)
            .map(|i| obs(2 * i + 1, i, "D1", 1, 10, Some(90.0)))
            .collect(),
        positions: (0..n).map(|i| position(2 * i + 2, i, "V1")).collect(),
        ..Default::default()
    };
    db.store.append_readings(&b).await.unwrap();
    let c = db.store.count_readings().await.unwrap();
    assert_eq!((c.obs, c.positions), (n, n));
    // limit 0 means the default page.
    assert_eq!(db.store.readings_after(0, 0, 0).await.unwrap().len(), 1000);
    let mut after = 0;
    let mut seen = 0;
    loop {
        let page = db.store.readings_after(after, 0, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        for (i, r) in page.iter().enumerate() {
            assert_eq!(r.seq(), after + 1 + i as i64, "dense seq order");
        }
        after = last.seq();
        seen += page.len();
    }
    assert_eq!(seen as i64, 2 * n);
}

async fn readings_after_merges_kinds_in_seq_order(db: &TestDb) {
    // seq 1..=40 spread over the kinds; ts decreasing for a few rows so ts
    // order and seq order differ.
    let mut b = ReadingBatch::default();
    let ts_of = |seq: i64| {
        if seq % 5 == 0 {
            1000 * (41 - seq)
        } else {
            1000 * seq
        }
    };
    for seq in 1..=40 {
        let ts = ts_of(seq);
        match seq % 4 {
            0 => b.obs.push(obs(seq, ts, "D1", 1, 1, None)),
            1 => b.weather.push(weather(seq, ts)),
            2 => b.positions.push(position(seq, ts, "V")),
            _ => b.camera.push(camera(seq, ts)),
        }
    }
    // Stored in two batches, the second holding lower seqs.
    let late = ReadingBatch {
        obs: b.obs.split_off(5),
        weather: b.weather.split_off(5),
        positions: b.positions.split_off(5),
        camera: b.camera.split_off(5),
    };
    db.store.append_readings(&late).await.unwrap();
    db.store.append_readings(&b).await.unwrap();

    for from_ts in [i64::MIN, 20_000] {
        let want: Vec<i64> = (1..=40).filter(|&s| ts_of(s) >= from_ts).collect();
        let mut got = Vec::new();
        let mut after = 0;
        loop {
            let page = db.store.readings_after(after, from_ts, 7).await.unwrap();
            assert!(page.len() <= 7);
            let Some(last) = page.last() else { break };
            after = last.seq();
            got.extend(page.iter().map(Reading::seq));
        }
        assert_eq!(got, want, "from_ts {from_ts}");
    }
    // Kinds come back as what they were.
    let first = db.store.readings_after(0, i64::MIN, 4).await.unwrap();
    assert!(matches!(
        first.as_slice(),
        [
            Reading::Weather(_),
            Reading::Position(_),
            Reading::Camera(_),
            Reading::Obs(_)
        ]
    ));
}

// ---------------------------------------------------------------- ticks

fn first_tick() -> TickCommit {
    TickCommit {
        tick_ms: 60_000,
        events: vec![
            event("E1", "fog", 1000, None),
            event("E2", "ice", 2000, None),
        ],
        changes: vec![change("E1", "opened", 1000), change("E2", "opened", 2000)],
        actions: vec![
            action(1, 10_000, Some("E1"), None),
            action(2, 20_000, None, Some(1)),
        ],
        proposals: vec![proposal(1, 500_000)],
        audit: vec![
            audit_entry("system", "action.auto", "VSL-1"),
            audit_entry("system", "proposal.create", "P1"),
        ],
        state_json: Some("{\"state\":1}".into()),
        plans: vec![],
    }
}

async fn commit_tick_round_trip(db: &TestDb) {
    let s = &db.store;
    let t1 = first_tick();
    s.commit_tick(&t1).await.unwrap();

    assert_eq!(s.event("E1").await.unwrap(), Some(t1.events[0].clone()));
    assert_eq!(s.event("E404").await.unwrap(), None);
    assert_eq!(s.active_events().await.unwrap(), t1.events);
    assert_eq!(
        s.event_changes("E1").await.unwrap(),
        vec![t1.changes[0].clone()]
    );
    let acts = s.actions(None, 0).await.unwrap();
    assert_eq!(
        acts,
        vec![t1.actions[1].clone(), t1.actions[0].clone()],
        "newest first"
    );
    assert_eq!(
        s.actions(Some(15_000), 10).await.unwrap(),
        vec![t1.actions[1].clone()]
    );
    assert_eq!(s.actions(None, 1).await.unwrap().len(), 1);
    assert_eq!(s.proposals(None).await.unwrap(), t1.proposals);
    assert_eq!(s.proposals(Some("pending")).await.unwrap(), t1.proposals);
    assert!(s.proposals(Some("approved")).await.unwrap().is_empty());
    assert_eq!(s.proposal(1).await.unwrap(), Some(t1.proposals[0].clone()));
    let audit = s.audit(0, 0).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit[0].seq > 0 && audit[1].seq > audit[0].seq);
    assert_eq!(
        AuditEntry {
            seq: 0,
            ..audit[1].clone()
        },
        t1.audit[1]
    );
    assert_eq!(
        s.get_meta("last_tick_ms").await.unwrap().as_deref(),
        Some("60000")
    );
    assert_eq!(
        s.latest_state_snapshot().await.unwrap(),
        Some((60_000, "{\"state\":1}".to_string()))
    );

    // Next tick: E1 ends (upsert replaces every column), E1 listed twice
    // (the last form wins), no snapshot.
    let mut e1_mid = event("E1", "fog", 1000, None);
    e1_mid.severity = 3;
    let mut e1_end = event("E1", "fog", 1000, Some(5000));
    e1_end.to_m = 3000.0;
    e1_end.json = "{\"ended\":true}".into();
    let t2 = TickCommit {
        tick_ms: 120_000,
        events: vec![e1_mid, e1_end.clone()],
        changes: vec![change("E1", "updated", 3000), change("E1", "ended", 5000)],
        ..Default::default()
    };
    s.commit_tick(&t2).await.unwrap();
    assert_eq!(s.event("E1").await.unwrap(), Some(e1_end.clone()));
    assert_eq!(s.active_events().await.unwrap(), vec![t1.events[1].clone()]);
    let changes: Vec<String> = s
        .event_changes("E1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(changes, ["opened", "updated", "ended"]);
    assert_eq!(
        s.get_meta("last_tick_ms").await.unwrap().as_deref(),
        Some("120000")
    );
    assert_eq!(
        s.latest_state_snapshot().await.unwrap().map(|x| x.0),
        Some(60_000)
    );

    // Queries.
    let ids = |v: Vec<EventRow>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let q = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(s.events(&EventQuery::default()).await.unwrap()),
        ["E2", "E1"]
    );
    assert_eq!(
        ids(s.events(&q(|q| q.active_only = true)).await.unwrap()),
        ["E2"]
    );
    assert_eq!(
        ids(s.events(&q(|q| q.kind = Some("fog".into()))).await.unwrap()),
        ["E1"]
    );
    assert_eq!(ids(s.events(&q(|q| q.limit = 1)).await.unwrap()), ["E2"]);
    // E1 ran until 5000: still there since 4000, gone since 6000; E2 is open.
    assert_eq!(
        ids(s.events(&q(|q| q.since_ms = Some(4000))).await.unwrap()),
        ["E2", "E1"]
    );
    assert_eq!(
        ids(s.events(&q(|q| q.since_ms = Some(6000))).await.unwrap()),
        ["E2"]
    );
    // Same detection time: E10 is newer than E9 (numeric, not text, order).
    let t3 = TickCommit {
        tick_ms: 180_000,
        events: vec![
            event("E9", "queue", 7000, None),
            event("E10", "queue", 7000, None),
        ],
        ..Default::default()
    };
    s.commit_tick(&t3).await.unwrap();
    assert_eq!(
        ids(s
            .events(&q(|q| q.kind = Some("queue".into())))
            .await
            .unwrap()),
        ["E10", "E9"]
    );
    assert_eq!(ids(s.active_events().await.unwrap()), ["E2", "E9", "E10"]);
}

async fn commit_tick_is_atomic(db: &TestDb) {
    let s = &db.store;
    s.commit_tick(&first_tick()).await.unwrap();
    let audit_before = s.audit(0, 0).await.unwrap();

    // Everything valid except the last action, whose id is already stored.
    let bad = TickCommit {
        tick_ms: 180_000,
        events: vec![event("E3", "incident", 9000, None)],
        changes: vec![change("E3", "opened", 9000)],
        actions: vec![
            action(3, 30_000, Some("E3"), None),
            action(1, 30_000, None, None),
        ],
        proposals: vec![proposal(2, 900_000)],
        audit: vec![audit_entry("system", "action.auto", "VSL-3")],
        state_json: Some("{\"state\":3}".into()),
        plans: vec![],
    };
    let err = s.commit_tick(&bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Db {
                op: "commit_tick",
                table: "actions",
                ..
            }
        ),
        "{err}"
    );
    // Nothing of the failed tick is left.
    let nothing_left = async |what: &str| {
        assert_eq!(s.event("E3").await.unwrap(), None, "{what}");
        assert!(s.event_changes("E3").await.unwrap().is_empty(), "{what}");
        assert_eq!(s.actions(None, 0).await.unwrap().len(), 2, "{what}");
        assert_eq!(s.proposal(2).await.unwrap(), None, "{what}");
        assert_eq!(s.audit(0, 0).await.unwrap(), audit_before, "{what}");
        assert_eq!(
            s.get_meta("last_tick_ms").await.unwrap().as_deref(),
            Some("60000")
        );
        assert_eq!(
            s.latest_state_snapshot().await.unwrap().map(|x| x.0),
            Some(60_000)
        );
    };
    nothing_left("duplicate action").await;

    // A change for an event that does not exist fails after the events were upserted.
    let bad = TickCommit {
        tick_ms: 240_000,
        events: vec![event("E3", "incident", 9000, None)],
        changes: vec![change("E404", "opened", 9000)],
        ..Default::default()
    };
    let err = s.commit_tick(&bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Db {
                table: "event_changes",
                ..
            }
        ),
        "{err}"
    );
    nothing_left("unknown event").await;

    // The store is still usable and the good version of the tick commits.
    let good = TickCommit {
        actions: vec![action(3, 30_000, Some("E3"), None)],
        ..bad_fixed()
    };
    s.commit_tick(&good).await.unwrap();
    assert!(s.event("E3").await.unwrap().is_some());
    assert_eq!(s.actions(None, 0).await.unwrap().len(), 3);
}

fn bad_fixed() -> TickCommit {
    TickCommit {
        tick_ms: 300_000,
        events: vec![event("E3", "incident", 9000, None)],
        changes: vec![change("E3", "opened", 9000)],
        ..Default::default()
    }
}

// ---------------------------------------------------------------- proposals

async fn decide_proposal_only_once(db: &TestDb) {
    let s = &db.store;
    let t = TickCommit {
        tick_ms: 1,
        proposals: vec![proposal(7, 10_000)],
        ..Default::default()
    };
    s.commit_tick(&t).await.unwrap();
    let d = decision("approved", "ops1");
    let row = s
        .decide_proposal(7, &d, &audit_entry("ops1", "proposal.approve", "P7"))
        .await
        .unwrap()
        .expect("pending proposal is decided");
    let want = ProposalRow {
        status: "approved".into(),
        decided_by: Some("ops1".into()),
        decided_wall_ms: Some(77_000),
        decision_reason: Some("ops1 says approved".into()),
        final_json: Some("{\"final\":true}".into()),
        ..proposal(7, 10_000)
    };
    assert_eq!(row, want);
    assert_eq!(s.proposal(7).await.unwrap(), Some(want.clone()));
    let audit = s.audit(0, 0).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].target.as_str()),
        ("ops1", "P7")
    );

    // Second decision: refused, nothing recorded.
    let again = s
        .decide_proposal(
            7,
            &decision("rejected", "ops2"),
            &audit_entry("ops2", "proposal.reject", "P7"),
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(s.proposal(7).await.unwrap(), Some(want.clone()));
    assert_eq!(s.audit(0, 0).await.unwrap().len(), 1);
    // Unknown proposal: None.
    assert_eq!(
        s.decide_proposal(99, &d, &audit_entry("ops1", "proposal.approve", "P99"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.audit(0, 0).await.unwrap().len(), 1);

    // A later tick cannot overwrite the decision (but may rewrite a pending one).
    let mut superseded = proposal(7, 10_000);
    superseded.status = "superseded".into();
    let mut p8 = proposal(8, 10_000);
    s.commit_tick(&TickCommit {
        tick_ms: 2,
        proposals: vec![superseded, p8.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.proposal(7).await.unwrap(), Some(want));
    p8.status = "superseded".into();
    s.commit_tick(&TickCommit {
        tick_ms: 3,
        proposals: vec![p8.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.proposal(8).await.unwrap(), Some(p8));
}

async fn concurrent_decisions_have_one_winner(db: &TestDb) {
    let s = &db.store;
    for round in 1..=3_i64 {
        s.commit_tick(&TickCommit {
            tick_ms: round,
            proposals: vec![proposal(round, 10_000)],
            ..Default::default()
        })
        .await
        .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let by = format!("ops{i}");
                    let target = format!("P{round}");
                    s.decide_proposal(
                        round,
                        &decision(if i % 2 == 0 { "approved" } else { "rejected" }, &by),
                        &audit_entry(&by, "proposal.decide", &target),
                    )
                    .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            if let Some(row) = t.await.unwrap().unwrap() {
                winners.push(row);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one decision wins");
        let stored = s.proposal(round).await.unwrap().unwrap();
        assert_eq!(stored, winners[0]);
        let target = format!("P{round}");
        let audits: Vec<AuditEntry> = s
            .audit(0, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.target == target)
            .collect();
        assert_eq!(audits.len(), 1);
        assert_eq!(Some(&audits[0].actor), stored.decided_by.as_ref());
    }
}

async fn pending_expired_lists_only_pending(db: &TestDb) {
    let s = &db.store;
    s.commit_tick(&TickCommit {
        tick_ms: 1,
        proposals: vec![proposal(1, 5_000), proposal(2, 10_000), proposal(3, 20_000)],
        ..Default::default()
    })
    .await
    .unwrap();
    s.decide_proposal(
        1,
        &decision("rejected", "ops1"),
        &audit_entry("ops1", "x", "P1"),
    )
    .await
    .unwrap()
    .unwrap();
    let ids: Vec<i64> = s
        .pending_expired(10_000)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [2]);
    assert!(s.pending_expired(4_999).await.unwrap().is_empty());
    let newest_first: Vec<i64> = s
        .proposals(None)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(newest_first, [3, 2, 1]);
}

// ---------------------------------------------------------------- audit

async fn audit_is_append_only(db: &TestDb) {
    let s = &db.store;
    let mut seqs = Vec::new();
    for i in 0..3 {
        let mut e = audit_entry("admin", "user.create", &format!("u{i}"));
        e.seq = 999; // ignored
        seqs.push(s.append_audit(&e).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    let all = s.audit(0, 0).await.unwrap();
    assert_eq!(all.iter().map(|a| a.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[2].target, "u2");
    let page = s.audit(seqs[0], 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, seqs[1]);

    // The database itself refuses to change or remove entries.
    for sql in [
        "UPDATE audit SET actor = 'mallory'",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE seq = (SELECT MIN(seq) FROM audit)",
    ] {
        let err = db.raw(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if s.backend() == "postgres" {
        let err = db.raw("TRUNCATE audit").await.expect_err("truncate");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(s.audit(0, 0).await.unwrap(), all);

    // Search: newest first, case-insensitive, wildcards taken literally,
    // paged with `before`.
    let mut e = audit_entry("值班员Li", "proposal.approved", "P7");
    e.detail = r#"{"reason":"团雾 100%"}"#.into();
    let p7 = s.append_audit(&e).await.unwrap();
    let hits = s.audit_search("USER.create", None, 0).await.unwrap();
    assert_eq!(
        hits.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [seqs[2], seqs[1], seqs[0]]
    );
    let page = s
        .audit_search("user.create", Some(seqs[2]), 1)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|a| a.seq).collect::<Vec<_>>(), [seqs[1]]);
    assert_eq!(s.audit_search("团雾", None, 0).await.unwrap()[0].seq, p7);
    assert_eq!(
        s.audit_search("值班员li", None, 0).await.unwrap()[0].seq,
        p7
    );
    assert_eq!(s.audit_search("100%", None, 0).await.unwrap().len(), 1);
    assert!(s.audit_search("10%x", None, 0).await.unwrap().is_empty());
    assert!(s.audit_search("u_", None, 0).await.unwrap().is_empty());
    assert_eq!(s.audit_search("", None, 0).await.unwrap().len(), 4);
}

// ---------------------------------------------------------------- accounts

async fn users(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.user_count().await.unwrap(), 0);
    assert_eq!(s.user("ops1").await.unwrap(), None);
    let ops = user("ops1", "operator");
    let mut admin = user("admin", "admin");
    admin.disabled = true;
    s.create_user(&ops).await.unwrap();
    s.create_user(&admin).await.unwrap();
    let err = s.create_user(&user("ops1", "viewer")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("\"ops1\""), "{err}");
    assert_eq!(s.user("ops1").await.unwrap(), Some(ops.clone()));
    assert_eq!(s.users().await.unwrap(), vec![admin, ops]);
    assert_eq!(s.user_count().await.unwrap(), 2);

    s.set_password("ops1", "$argon2id$new").await.unwrap();
    assert_eq!(
        s.user("ops1").await.unwrap().unwrap().pw_hash,
        "$argon2id$new"
    );
    let err = s.set_password("ghost", "x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    s.set_user_disabled("admin", false).await.unwrap();
    assert!(!s.user("admin").await.unwrap().unwrap().disabled);
}

async fn sessions(db: &TestDb) {
    let s = &db.store;
    s.create_user(&user("ops1", "operator")).await.unwrap();
    s.create_session(&session("h1", "ops1", 1_000))
        .await
        .unwrap();
    let got = s.session("h1").await.unwrap().expect("session");
    assert_eq!(
        got,
        SessionRow {
            role: "operator".into(),
            ..session("h1", "ops1", 1_000)
        }
    );
    assert_eq!(s.session("nope").await.unwrap(), None);
    // A session needs an account.
    assert!(
        s.create_session(&session("h9", "ghost", 1_000))
            .await
            .is_err()
    );

    s.set_user_disabled("ops1", true).await.unwrap();
    assert_eq!(
        s.session("h1").await.unwrap(),
        None,
        "disabled user: no session"
    );
    s.set_user_disabled("ops1", false).await.unwrap();
    assert!(s.session("h1").await.unwrap().is_some());

    s.delete_session("h1").await.unwrap();
    assert_eq!(s.session("h1").await.unwrap(), None);
    s.delete_session("h1").await.unwrap();

    for (h, exp) in [("a", 100), ("b", 200), ("c", 300)] {
        s.create_session(&session(h, "ops1", exp)).await.unwrap();
    }
    assert_eq!(s.purge_sessions(200).await.unwrap(), 2);
    assert_eq!(s.purge_sessions(200).await.unwrap(), 0);
    assert!(s.session("c").await.unwrap().is_some());
    assert!(s.session("b").await.unwrap().is_none());
}

async fn accounts_with_last_login(db: &TestDb) {
    let s = &db.store;
    s.create_user(&user("ops1", "operator")).await.unwrap();
    s.create_user(&user("admin", "admin")).await.unwrap();
    for (wall, actor, action) in [
        (100, "ops1", "login"),
        (300, "ops1", "login"),
        (500, "ops1", "login.failed"),
        (400, "admin", "user.add"),
    ] {
        let mut e = audit_entry(actor, action, "127.0.0.1");
        e.wall_ms = wall;
        s.append_audit(&e).await.unwrap();
    }
    s.set_user_disabled("ops1", true).await.unwrap();
    assert_eq!(
        s.accounts().await.unwrap(),
        vec![
            AccountSummary {
                name: "admin".into(),
                role: "admin".into(),
                created_wall_ms: 1_000,
                disabled: false,
                last_login_wall_ms: None,
            },
            AccountSummary {
                name: "ops1".into(),
                role: "operator".into(),
                created_wall_ms: 1_000,
                disabled: true,
                last_login_wall_ms: Some(300),
            },
        ]
    );
}

async fn accounts_generation_and_user_sessions(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.accounts_generation().await.unwrap(), 0);
    s.create_user(&user("ops1", "operator")).await.unwrap();
    s.create_user(&user("ops2", "operator")).await.unwrap();
    assert_eq!(s.accounts_generation().await.unwrap(), 0, "a new account");
    for (h, u) in [("a", "ops1"), ("b", "ops1"), ("c", "ops2")] {
        s.create_session(&session(h, u, 1_000)).await.unwrap();
    }
    assert_eq!(s.accounts_generation().await.unwrap(), 0, "a login");
    s.set_user_disabled("ops1", true).await.unwrap();
    assert_eq!(s.accounts_generation().await.unwrap(), 1);
    s.set_user_role("ops2", "viewer").await.unwrap();
    assert_eq!(s.accounts_generation().await.unwrap(), 2);
    s.set_password("ops2", "$argon2id$new").await.unwrap();
    assert_eq!(s.accounts_generation().await.unwrap(), 3);
    assert_eq!(s.delete_user_sessions("ops1").await.unwrap(), 2);
    assert_eq!(s.accounts_generation().await.unwrap(), 4);
    assert_eq!(s.delete_user_sessions("ops1").await.unwrap(), 0);
    assert_eq!(s.accounts_generation().await.unwrap(), 4, "nothing ended");
    assert!(s.set_user_disabled("ghost", true).await.is_err());
    assert_eq!(s.accounts_generation().await.unwrap(), 4, "no such user");
    // Enabled again, the old tokens stay dead; the other user's live on.
    s.set_user_disabled("ops1", false).await.unwrap();
    assert_eq!(s.session("a").await.unwrap(), None);
    assert!(s.session("c").await.unwrap().is_some());
}

async fn open_existing_refuses_a_missing_file(db: &TestDb) {
    // The database under test exists: it opens.
    Store::open_existing(&db.url).await.unwrap().close().await;
    let missing = db.path().join("nope").join("z.db");
    let url = format!("sqlite://{}", missing.display());
    let err = Store::open_existing(&url).await.unwrap_err();
    assert!(err.to_string().contains("no such database file"), "{err}");
    assert!(!missing.parent().unwrap().exists(), "nothing created");
}

// ---------------------------------------------------------------- state

async fn source_clocks(db: &TestDb) {
    let s = &db.store;
    assert!(s.source_clocks().await.unwrap().is_empty());
    let row = |src: &str, ev: Option<&str>| zhilu_store::SourceClockRow {
        source: src.into(),
        why: "ahead of the server clock".into(),
        ahead_ms: Some(31_536_000_000),
        first_bad_wall_ms: 10,
        last_bad_wall_ms: 20,
        event_id: ev.map(str::to_string),
    };
    let set = vec![row("D1", Some("E3")), row("W1", None)];
    s.save_source_clocks(&set).await.unwrap();
    assert_eq!(s.source_clocks().await.unwrap(), set);
    // The set is replaced as a whole.
    s.save_source_clocks(&set[1..]).await.unwrap();
    assert_eq!(s.source_clocks().await.unwrap(), set[1..]);
    s.save_source_clocks(&[]).await.unwrap();
    assert!(s.source_clocks().await.unwrap().is_empty());
}

async fn last_sent_actions(db: &TestDb) {
    let s = &db.store;
    let a = |id: i64, device: &str, mode: &str| ActionRow {
        id,
        at_ms: id,
        wall_ms: id,
        device: device.into(),
        kind: "speed_limit".into(),
        json: format!("{{\"n\":{id}}}"),
        event_id: None,
        reason: "r".into(),
        mode: mode.into(),
        proposal_id: None,
    };
    let commit = TickCommit {
        tick_ms: 1,
        actions: vec![
            a(1, "S1", "auto"),
            a(2, "S1", "reconcile"),
            a(3, "S1", "confirm"),
            a(4, "S2", "confirmed"),
            a(5, "S3", "confirm"),
        ],
        ..TickCommit::default()
    };
    s.commit_tick(&commit).await.unwrap();
    let last: Vec<(i64, String)> = s
        .last_sent_actions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.device))
        .collect();
    // A proposal (`confirm`) was never to be sent.
    assert_eq!(last, [(2, "S1".to_string()), (4, "S2".to_string())]);
}

async fn terminals(db: &TestDb) {
    let s = &db.store;
    let t = zhilu_store::TerminalRow {
        phone: "13800000001".into(),
        plate: "冀A12345".into(),
        terminal_id: "T1".into(),
        auth_hash: "h1".into(),
        registered_wall_ms: 5,
    };
    assert_eq!(s.terminal("13800000001").await.unwrap(), None);
    s.upsert_terminal(&t).await.unwrap();
    assert_eq!(s.terminal("13800000001").await.unwrap().as_ref(), Some(&t));
    // Re-registering replaces the code.
    let t2 = zhilu_store::TerminalRow {
        auth_hash: "h2".into(),
        registered_wall_ms: 9,
        ..t.clone()
    };
    s.upsert_terminal(&t2).await.unwrap();
    assert_eq!(
        s.terminal("13800000001").await.unwrap().unwrap().auth_hash,
        "h2"
    );
    assert_eq!(s.terminals().await.unwrap().len(), 1);
    s.delete_terminal("13800000001").await.unwrap();
    assert!(s.terminals().await.unwrap().is_empty());
}

async fn device_states(db: &TestDb) {
    let s = &db.store;
    let b = DeviceStateRow {
        device: "VSL-B".into(),
        state_json: "null".into(),
        confirmed_wall_ms: None,
        online: false,
        last_seen_wall_ms: None,
        pending_json: None,
        updated_wall_ms: 1,
    };
    let a1 = DeviceStateRow {
        device: "VMS-A".into(),
        state_json: "{\"text\":\"FOG\"}".into(),
        confirmed_wall_ms: Some(5),
        online: true,
        last_seen_wall_ms: Some(6),
        pending_json: Some("{\"text\":\"ICE\"}".into()),
        updated_wall_ms: 7,
    };
    s.upsert_device_state(&b).await.unwrap();
    s.upsert_device_state(&a1).await.unwrap();
    let a2 = DeviceStateRow {
        state_json: "{\"text\":\"ICE\"}".into(),
        confirmed_wall_ms: Some(9),
        online: false,
        pending_json: None,
        updated_wall_ms: 10,
        ..a1.clone()
    };
    s.upsert_device_state(&a2).await.unwrap();
    assert_eq!(s.device_states().await.unwrap(), vec![a2, b]);
}

async fn meta_and_snapshots(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.get_meta("k").await.unwrap(), None);
    s.set_meta("k", "v1").await.unwrap();
    s.set_meta("k", "v2").await.unwrap();
    assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(s.latest_state_snapshot().await.unwrap(), None);
    for ts in [100, 300, 200] {
        s.commit_tick(&TickCommit {
            tick_ms: ts,
            state_json: Some(format!("{{\"t\":{ts}}}")),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    assert_eq!(
        s.latest_state_snapshot().await.unwrap(),
        Some((300, "{\"t\":300}".into()))
    );
    assert_eq!(
        s.get_meta("last_tick_ms").await.unwrap().as_deref(),
        Some("200")
    );
}

async fn max_ids(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.max_ids().await.unwrap(), zhilu_store::MaxIds::default());
    s.commit_tick(&TickCommit {
        tick_ms: 1,
        events: vec![
            event("E9", "fog", 1, None),
            event("E10", "fog", 2, None),
            event("E2", "fog", 3, None),
        ],
        actions: vec![action(7, 1, None, None), action(3, 1, None, None)],
        proposals: vec![proposal(4, 10)],
        ..Default::default()
    })
    .await
    .unwrap();
    s.append_readings(&ReadingBatch {
        obs: vec![obs(11, T0 - 1, "D1", 1, 1, None)],
        camera: vec![camera(17, T0 - 1)],
        ..Default::default()
    })
    .await
    .unwrap();
    let ids = s.max_ids().await.unwrap();
    assert_eq!(
        (
            ids.reading_seq,
            ids.event_num,
            ids.action_id,
            ids.proposal_id
        ),
        (17, 10, 7, 4)
    );
    // Retention empties the raw tables: the seq must not go back.
    s.apply_retention(T0, None).await.unwrap();
    assert_eq!(s.count_readings().await.unwrap(), ReadingCounts::default());
    assert_eq!(s.max_ids().await.unwrap(), ids);
    // … and a later, lower high-water mark does not lower it.
    s.append_readings(&ReadingBatch {
        weather: vec![weather(12, T0 - 1)],
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply_retention(T0, None).await.unwrap();
    assert_eq!(s.max_ids().await.unwrap().reading_seq, 17);
}

// ---------------------------------------------------------------- retention

async fn retention_rolls_up_obs(db: &TestDb) {
    let s = &db.store;
    let b1 = T0 + 300_000; // bucket (T0, T0 + 5 min]
    let mut rows = vec![
        obs(1, T0 + 30_000, "D1", 1, 10, Some(100.0)),
        obs(2, T0 + 60_000, "D1", 1, 30, Some(60.0)),
        obs(3, T0 + 90_000, "D1", 1, 5, None), // no speed: volume counts, no weight
        obs(4, T0 + 100_000, "D1", 2, 8, Some(90.0)),
        obs(5, T0 + 300_000, "D1", 1, 20, Some(40.0)), // the bucket's end belongs to it
        obs(6, T0 + 330_000, "D1", 1, 4, Some(80.0)),  // next bucket
        obs(7, T0 + 900_000, "D1", 1, 4, Some(80.0)),  // stays raw
    ];
    rows[0].occupancy_pct = Some(10.0);
    rows[1].occupancy_pct = Some(20.0);
    rows[4].occupancy_pct = Some(30.0);
    s.append_readings(&ReadingBatch {
        obs: rows,
        ..Default::default()
    })
    .await
    .unwrap();

    // Pass 1: rows 1–4.
    let r = s.apply_retention(T0 + 200_000, None).await.unwrap();
    assert_eq!(r.obs_rolled_up, 4);
    let got = s.obs_5min(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(got.len(), 2);
    let l1 = &got[0];
    assert_eq!((l1.bucket_ms, l1.detector.as_str(), l1.lane), (b1, "D1", 1));
    assert_eq!(
        (l1.volume, l1.speed_weight, l1.occupancy_n, l1.samples),
        (45, 40, 2, 3)
    );
    assert!(
        close(l1.speed_kmh, (100.0 * 10.0 + 60.0 * 30.0) / 40.0),
        "{l1:?}"
    ); // 70
    assert!(close(l1.occupancy_pct, 15.0), "{l1:?}");
    assert_eq!((got[1].lane, got[1].volume, got[1].samples), (2, 8, 1));
    assert!(close(got[1].speed_kmh, 90.0));

    // A late row for the same bucket arrives, then pass 2 merges rows 5, 6
    // and the late one into the existing bucket.
    s.append_readings(&ReadingBatch {
        obs: vec![obs(8, T0 + 150_000, "D1", 1, 10, Some(100.0))],
        ..Default::default()
    })
    .await
    .unwrap();
    let r = s.apply_retention(T0 + 400_000, None).await.unwrap();
    assert_eq!(r.obs_rolled_up, 3);
    let got = s.obs_5min(b1, b1 + 1).await.unwrap();
    let l1 = &got[0];
    assert_eq!(l1.lane, 1);
    assert_eq!((l1.volume, l1.speed_weight, l1.samples), (75, 70, 5));
    // (100·10 + 60·30 + 40·20 + 100·10) / 70
    assert!(close(l1.speed_kmh, 4600.0 / 70.0), "{l1:?}");
    // occupancies 10, 20, 30 (the late row's 10.0 is speed/10 = 10)
    assert_eq!(l1.occupancy_n, 4);
    assert!(close(l1.occupancy_pct, 70.0 / 4.0), "{l1:?}");
    let next = s.obs_5min(b1 + 1, i64::MAX).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].bucket_ms, next[0].volume, next[0].samples),
        (b1 + 300_000, 4, 1)
    );
    assert_eq!(s.count_readings().await.unwrap().obs, 1);
    assert_eq!(
        all_readings(s)
            .await
            .iter()
            .map(Reading::seq)
            .collect::<Vec<_>>(),
        [7]
    );
}

async fn retention_rolls_up_weather(db: &TestDb) {
    let s = &db.store;
    let w = |seq,
             ts,
             vis: Option<f64>,
             surf: Option<f64>,
             air: Option<f64>,
             hum: Option<f64>,
             st: &str| {
        WeatherRow {
            visibility_m: vis,
            surface_temp_c: surf,
            air_temp_c: air,
            humidity_pct: hum,
            surface_state: st.into(),
            ..weather(seq, ts)
        }
    };
    s.append_readings(&ReadingBatch {
        weather: vec![
            w(
                1,
                T0 + 60_000,
                Some(500.0),
                Some(-1.0),
                Some(2.0),
                Some(90.0),
                "wet",
            ),
            w(2, T0 + 120_000, Some(200.0), None, Some(4.0), None, "ice"),
            w(3, T0 + 180_000, None, Some(-3.0), None, Some(80.0), ""),
            w(
                4,
                T0 + 240_000,
                Some(300.0),
                Some(-5.0),
                Some(6.0),
                None,
                "dry",
            ),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let r = s.apply_retention(T0 + 200_000, None).await.unwrap();
    assert_eq!(r.weather_rolled_up, 3);
    let got = s.weather_5min(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(
        (g.bucket_ms, g.station.as_str(), g.samples),
        (T0 + 300_000, "W1", 3)
    );
    assert_eq!(
        (g.visibility_min_m, g.surface_temp_min_c),
        (Some(200.0), Some(-3.0))
    );
    assert!(close(g.air_temp_mean_c, 3.0) && g.air_temp_n == 2, "{g:?}");
    assert!(
        close(g.humidity_mean_pct, 85.0) && g.humidity_n == 2,
        "{g:?}"
    );
    assert_eq!(
        (g.surface_state.as_str(), g.surface_state_ms),
        ("ice", Some(T0 + 120_000))
    );

    let r = s.apply_retention(T0 + 300_001, None).await.unwrap();
    assert_eq!(r.weather_rolled_up, 1);
    let g = &s.weather_5min(i64::MIN, i64::MAX).await.unwrap()[0];
    assert_eq!(
        (g.visibility_min_m, g.surface_temp_min_c, g.samples),
        (Some(200.0), Some(-5.0), 4)
    );
    assert!(close(g.air_temp_mean_c, 4.0) && g.air_temp_n == 3, "{g:?}");
    assert!(
        close(g.humidity_mean_pct, 85.0) && g.humidity_n == 2,
        "{g:?}"
    );
    assert_eq!(g.surface_state, "dry");

    // A late, older state does not replace the newer one; an empty bucket
    // side keeps what it had.
    s.append_readings(&ReadingBatch {
        weather: vec![w(5, T0 + 100_000, None, None, None, None, "snow")],
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply_retention(T0 + 300_001, None).await.unwrap();
    let g = &s.weather_5min(i64::MIN, i64::MAX).await.unwrap()[0];
    assert_eq!((g.surface_state.as_str(), g.samples), ("dry", 5));
    assert_eq!(
        (g.visibility_min_m, g.surface_temp_min_c),
        (Some(200.0), Some(-5.0))
    );
}

async fn retention_archives_positions_and_camera(db: &TestDb) {
    let s = &db.store;
    s.commit_tick(&first_tick()).await.unwrap();
    let mut p1 = position(1, ms("2026-11-24T06:00:20Z"), "ZJ-A123");
    p1.class = "hazmat".into();
    p1.lat = 30.123456;
    p1.lon = 120.5;
    p1.speed_kmh = Some(82.5);
    let mut p2 = position(2, ms("2026-11-24T23:59:59Z"), "ZJ-B9");
    p2.speed_kmh = None;
    p2.heading_deg = Some(90.0);
    let p3 = position(3, ms("2026-11-25T00:00:10Z"), "ZJ-C7");
    let mut c1 = camera(4, ms("2026-11-24T07:00:00.5Z"));
    c1.direction = "up".into();
    let mut c2 = camera(5, ms("2026-11-24T08:00:00Z"));
    c2.lane = Some(2);
    c2.confidence = 0.75;
    s.append_readings(&ReadingBatch {
        // Stored out of time order: the archive is in time order.
        positions: vec![p2, p1, p3],
        camera: vec![c1, c2],
        ..Default::default()
    })
    .await
    .unwrap();

    let dir = db.path().join("archive");
    let r = s
        .apply_retention(ms("2026-11-25T00:00:00Z"), Some(&dir))
        .await
        .unwrap();
    assert_eq!((r.positions_archived, r.camera_archived), (2, 2));
    let pos_24 = dir.join("POS-2026-11-24.csv");
    let cam_24 = dir.join("CAM-2026-11-24.csv");
    assert_eq!(
        r.files,
        [pos_24.display().to_string(), cam_24.display().to_string()]
    );
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("archive file");
    assert_eq!(
        read(&pos_24),
        "time,vehicle,class,lat,lon,speed_kmh,heading_deg\n\
         2026-11-24T06:00:20Z,ZJ-A123,hazmat,30.123456,120.5,82.5,\n\
         2026-11-24T23:59:59Z,ZJ-B9,car,30.25,120.125,,90\n"
    );
    assert_eq!(
        read(&cam_24),
        "time,camera,kind,direction,stake_m,lane,confidence\n\
         2026-11-24T07:00:00.5Z,C1,congestion,up,12345.5,,0.9\n\
         2026-11-24T08:00:00Z,C1,congestion,,12345.5,2,0.75\n"
    );
    let left: Vec<i64> = all_readings(s).await.iter().map(Reading::seq).collect();
    assert_eq!(left, [3]);

    // A late row for the 24th and the 25th's row: appended to the existing
    // file without a second header, and a new file for the 25th.
    s.append_readings(&ReadingBatch {
        positions: vec![position(6, ms("2026-11-24T12:00:00Z"), "ZJ-LATE")],
        ..Default::default()
    })
    .await
    .unwrap();
    let r = s
        .apply_retention(ms("2026-11-26T00:00:00Z"), Some(&dir))
        .await
        .unwrap();
    assert_eq!((r.positions_archived, r.camera_archived), (2, 0));
    let pos = read(&pos_24);
    assert_eq!(pos.matches("time,vehicle").count(), 1);
    assert!(
        pos.ends_with("\n2026-11-24T12:00:00Z,ZJ-LATE,car,30.25,120.125,95.5,\n"),
        "{pos}"
    );
    assert_eq!(
        read(&dir.join("POS-2026-11-25.csv")),
        "time,vehicle,class,lat,lon,speed_kmh,heading_deg\n\
         2026-11-25T00:00:10Z,ZJ-C7,car,30.25,120.125,95.5,\n"
    );
    assert_eq!(s.count_readings().await.unwrap(), ReadingCounts::default());

    // Events, actions, proposals and the audit log are untouched.
    assert_eq!(s.active_events().await.unwrap().len(), 2);
    assert_eq!(s.actions(None, 0).await.unwrap().len(), 2);
    assert_eq!(s.proposals(None).await.unwrap().len(), 1);
    assert_eq!(s.audit(0, 0).await.unwrap().len(), 2);
    assert_eq!(s.max_ids().await.unwrap().reading_seq, 6);
}

async fn retention_without_archive_deletes(db: &TestDb) {
    let s = &db.store;
    s.append_readings(&ReadingBatch {
        positions: vec![position(1, 1000, "V1"), position(2, 5000, "V2")],
        camera: vec![camera(3, 1000)],
        ..Default::default()
    })
    .await
    .unwrap();
    let r = s.apply_retention(2000, None).await.unwrap();
    assert_eq!((r.positions_archived, r.camera_archived), (1, 1));
    assert!(r.files.is_empty());
    let left: Vec<i64> = all_readings(s).await.iter().map(Reading::seq).collect();
    assert_eq!(left, [2]);
    // Nothing to do: an empty pass.
    let r = s
        .apply_retention(2000, Some(&db.path().join("a")))
        .await
        .unwrap();
    assert_eq!(r, zhilu_store::RetentionReport::default());
}

// ---------------------------------------------------------------- open

#[tokio::test]
async fn open_rejects_unknown_urls() {
    let err = Store::open("mysql://x/y").await.unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err}");
    let err = Store::open("postgres://u:secret@127.0.0.1:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let s = Store::open("sqlite::memory:").await.unwrap();
    s.append_readings(&ReadingBatch {
        obs: vec![obs(1, 1, "D1", 1, 1, None)],
        ..Default::default()
    })
    .await
    .unwrap();
    // Every query sees the same (single-connection) database.
    for _ in 0..3 {
        assert_eq!(s.count_readings().await.unwrap().obs, 1);
    }
}

#[tokio::test]
async fn sqlite_file_and_directory_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/zhilu.db");
    let s = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.set_meta("a", "b").await.unwrap();
    s.close().await;
    assert!(path.exists());
    let s = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(s.get_meta("a").await.unwrap().as_deref(), Some("b"));
    s.close().await;
    // WAL journal: the -wal file appears beside the database while open.
    let s = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.set_meta("c", "d").await.unwrap();
    assert!(dir.path().join("nested/deeper/zhilu.db-wal").exists());
    s.close().await;
}

async fn station_history_merges_raw_and_rolled_up(db: &TestDb) {
    let s = &db.store;
    let step = 300_000;
    assert_eq!(T0 % step, 0);
    let late = T0 + 600_000; // a bucket that stays raw
    let rows = vec![
        obs(1, T0 + 30_000, "D1", 1, 10, Some(100.0)),
        obs(2, T0 + 30_000, "D1", 2, 30, Some(60.0)),
        obs(3, T0 + 60_000, "D2", 1, 4, None),
        obs(4, late + 30_000, "D1", 1, 20, Some(80.0)),
        obs(5, late + 60_000, "D1", 1, 0, Some(5.0)), // standing queue: weighs as one
        obs(6, late + 60_000, "D1", 2, 7, Some(900.0)), // implausible: volume only
    ];
    s.append_readings(&ReadingBatch {
        obs: rows,
        ..Default::default()
    })
    .await
    .unwrap();
    let before = s.station_history(T0, T0 + 900_000, step).await.unwrap();
    // Roll the first 5 minutes up; the history must not change.
    s.apply_retention(T0 + 400_000, None).await.unwrap();
    assert_eq!(s.obs_5min(i64::MIN, i64::MAX).await.unwrap().len(), 3);
    let after = s.station_history(T0, T0 + 900_000, step).await.unwrap();
    for got in [&before, &after] {
        let keys: Vec<_> = got
            .iter()
            .map(|b| (b.bucket_ms, b.detector.as_str()))
            .collect();
        assert_eq!(keys, [(T0, "D1"), (T0, "D2"), (late, "D1")], "{got:?}");
        assert_eq!((got[0].volume, got[0].samples), (40, 2));
        assert!(close(got[0].speed_kmh, (1000.0 + 1800.0) / 40.0), "{got:?}");
        assert_eq!((got[1].volume, got[1].speed_kmh), (4, None));
        assert_eq!((got[2].volume, got[2].samples), (27, 3));
        // (80·20 + 5·1) / 21: the zero-volume row counts once, 900 km/h not at all
        assert!(close(got[2].speed_kmh, 1605.0 / 21.0), "{got:?}");
    }
    // Finer steps split the raw bucket by time.
    let fine = s
        .station_history(late, late + 300_000, 60_000)
        .await
        .unwrap();
    assert_eq!(fine.len(), 2, "{fine:?}");
    assert!(close(fine[0].speed_kmh, 80.0));
    assert!(close(fine[1].speed_kmh, 5.0));
    // Out of range: nothing.
    assert!(
        s.station_history(T0 + 800_000, T0 + 900_000, step)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The station roll-up the time–space query reads is what grouping the raw
/// rows gives, whatever the batches: a station's lanes split over batches,
/// a batch sent twice (its rows skipped), rows late for their time, and a
/// retention pass in the middle.
async fn station_rollup_follows_batches_retries_and_retention(db: &TestDb) {
    let s = &db.store;
    let mut rng = fastrand::Rng::with_seed(17);
    let mut rows = Vec::new();
    let mut seq = 0;
    // 40 minutes, a reading every 20 s (7 s off the minute: none on a
    // 5-minute boundary), 5 stations × 3 lanes.
    for k in 0..120 {
        let ts = T0 + 7_000 + k * 20_000;
        for d in ["D1", "D2", "D3", "D4", "D5"] {
            for lane in 1..=3 {
                seq += 1;
                // Plausible speeds and at least one vehicle: retention's
                // 5-minute roll-up weighs these as the raw rows do (the
                // screening of the others is station_history_merges_…'s).
                let speed = match rng.u8(0..10) {
                    0 => None,
                    _ => Some(f64::from(rng.u8(5..130))),
                };
                rows.push(obs(seq, ts, d, lane, rng.i32(1..12), speed));
            }
        }
    }
    // Shuffled into batches of 1–40 rows; every fifth batch sent twice.
    let mut order = rows.clone();
    rng.shuffle(&mut order);
    let mut i = 0;
    let mut n_batch = 0;
    while i < order.len() {
        let n = rng.usize(1..=40).min(order.len() - i);
        let b = ReadingBatch {
            obs: order[i..i + n].to_vec(),
            ..Default::default()
        };
        s.append_readings(&b).await.unwrap();
        if n_batch % 5 == 0 {
            s.append_readings(&b).await.unwrap();
        }
        i += n;
        n_batch += 1;
    }
    // The reference: the raw rows grouped per (bucket, station).
    let reference = |step: i64, from: i64, to: i64| {
        let mut m: std::collections::BTreeMap<(i64, String), (i64, f64, i64, f64, i64, i64)> =
            Default::default();
        for r in rows.iter().filter(|r| r.ts_ms >= from && r.ts_ms < to) {
            let e = m
                .entry((r.ts_ms.div_euclid(step) * step, r.detector.clone()))
                .or_default();
            e.0 += i64::from(r.volume);
            if let Some(v) = r.speed_kmh.filter(|v| (0.0..=250.0).contains(v)) {
                let w = i64::from(r.volume.max(1));
                e.1 += v * w as f64;
                e.2 += w;
            }
            if let Some(o) = r.occupancy_pct {
                e.3 += o;
                e.4 += 1;
            }
            e.5 += 1;
        }
        m
    };
    let check =
        |got: Vec<zhilu_store::StationBucket>, step: i64, from: i64, to: i64, what: &str| {
            let want = reference(step, from, to);
            assert_eq!(got.len(), want.len(), "{what}: buckets");
            for (g, ((b, d), w)) in got.iter().zip(want.iter()) {
                assert_eq!((g.bucket_ms, &g.detector), (*b, d), "{what}");
                assert_eq!((g.volume, g.samples), (w.0, w.5), "{what} {b} {d}");
                let speed = (w.2 > 0).then(|| w.1 / w.2 as f64);
                assert!(
                    close(g.speed_kmh, speed.unwrap_or(f64::NAN))
                        || (g.speed_kmh.is_none() && speed.is_none()),
                    "{what} {b} {d}: {:?} vs {speed:?}",
                    g.speed_kmh
                );
                let occ = (w.4 > 0).then(|| w.3 / w.4 as f64);
                assert_eq!(
                    g.occupancy_pct.map(|o| (o * 1e6).round()),
                    occ.map(|o| (o * 1e6).round()),
                    "{what}"
                );
            }
        };
    let end = T0 + 2_400_000;
    for step in [20_000, 60_000, 300_000] {
        check(
            s.station_history(T0, end, step).await.unwrap(),
            step,
            T0,
            end,
            "raw",
        );
    }
    // A window inside the data.
    check(
        s.station_history(T0 + 600_000, T0 + 1_200_000, 60_000)
            .await
            .unwrap(),
        60_000,
        T0 + 600_000,
        T0 + 1_200_000,
        "window",
    );
    // Retention rolls the first 20 minutes up: the 5-minute view is unchanged.
    s.apply_retention(T0 + 1_200_000, None).await.unwrap();
    assert!(s.count_readings().await.unwrap().obs < rows.len() as i64);
    check(
        s.station_history(T0, end, 300_000).await.unwrap(),
        300_000,
        T0,
        end,
        "after retention",
    );
    // The raw part still has its 20-second detail.
    check(
        s.station_history(T0 + 1_200_000, end, 20_000)
            .await
            .unwrap(),
        20_000,
        T0 + 1_200_000,
        end,
        "raw after retention",
    );
    // A late row for a rolled-up time is counted once it is rolled up too.
    let late = obs(seq + 1, T0 + 7_000, "D1", 4, 5, Some(50.0));
    s.append_readings(&ReadingBatch {
        obs: vec![late.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply_retention(T0 + 1_200_000, None).await.unwrap();
    let mut rows2 = rows.clone();
    rows2.push(late);
    let got = s.station_history(T0, T0 + 300_000, 300_000).await.unwrap();
    let d1 = got.iter().find(|b| b.detector == "D1").unwrap();
    let want: i64 = rows2
        .iter()
        .filter(|r| r.detector == "D1" && r.ts_ms < T0 + 300_000)
        .map(|r| i64::from(r.volume))
        .sum();
    assert_eq!(d1.volume, want);
    // Nothing left in the roll-up for removed raw rows.
    assert_eq!(
        db.raw(&format!(
            "DELETE FROM obs_station WHERE ts_ms < {}",
            T0 + 1_200_000
        ))
        .await
        .unwrap(),
        0
    );
}

/// A plan is stored with its steps in one tick; it lists as pending while
/// a step is pending, keeps its name when a later step joins it, and its
/// steps come back in order.
async fn plans_group_steps_and_list_while_pending(db: &TestDb) {
    let s = &db.store;
    let plan = PlanRow {
        id: 3,
        created_wall_ms: 1_000,
        updated_wall_ms: 1_000,
        at_ms: 900,
        event_id: Some("E1".into()),
        cause: "E1".into(),
        name: "团雾 K1+000–K2+000 下行 处置预案".into(),
    };
    let step = |id| ProposalRow {
        plan_id: Some(3),
        ..proposal(id, 10_000)
    };
    let t = TickCommit {
        tick_ms: 900,
        plans: vec![plan.clone()],
        proposals: vec![step(3), step(4), proposal(5, 10_000)],
        ..TickCommit::default()
    };
    s.commit_tick(&t).await.unwrap();
    assert_eq!(s.plans(true, None, 0).await.unwrap(), vec![plan.clone()]);
    assert_eq!(
        s.plans(false, Some("E1"), 0).await.unwrap(),
        vec![plan.clone()]
    );
    assert!(s.plans(false, Some("E2"), 0).await.unwrap().is_empty());
    assert_eq!(s.plan(3).await.unwrap(), Some(plan.clone()));
    assert_eq!(s.plan(4).await.unwrap(), None);
    let ids: Vec<i64> = s
        .plan_steps(&[3])
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec![3, 4]);
    assert_eq!(s.proposal(4).await.unwrap().unwrap().plan_id, Some(3));
    // A later step joins: the name stays, the update time moves.
    let joined = PlanRow {
        updated_wall_ms: 2_000,
        name: "another name".into(),
        ..plan.clone()
    };
    let t = TickCommit {
        tick_ms: 1_900,
        plans: vec![joined],
        proposals: vec![step(6)],
        ..TickCommit::default()
    };
    s.commit_tick(&t).await.unwrap();
    let p = s.plan(3).await.unwrap().unwrap();
    assert_eq!(
        (p.name.as_str(), p.updated_wall_ms),
        (plan.name.as_str(), 2_000)
    );
    assert_eq!(s.plan_steps(&[3]).await.unwrap().len(), 3);
    // Decided steps: no longer pending, still listed among all plans.
    for id in [3, 4, 6] {
        s.decide_proposal(
            id,
            &decision("rejected", "ops1"),
            &audit_entry("ops1", "proposal.reject", "P"),
        )
        .await
        .unwrap()
        .unwrap();
    }
    assert!(s.plans(true, None, 0).await.unwrap().is_empty());
    assert_eq!(s.plans(false, None, 0).await.unwrap().len(), 1);
}
