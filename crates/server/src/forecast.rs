//! Live forecasts at the door (issue 8, 交通预测): the task that feeds
//! `zhilu_core::forecast::ForecastService` and the answer of
//! `GET /api/forecast`.
//!
//! What is forecast, how, and the band: the core's service
//! (`crates/core/src/forecast/service.rs`, `docs/FORECAST.md`). Here:
//!
//! - [`run`] — the task: waits for the engine's first closed tick (a
//!   `watch` of the last closed tick's data time, sent by the engine), loads
//!   the stored 5-minute station history and trains in `spawn_blocking`,
//!   then at each closed tick reads the buckets completed since and
//!   observes them, publishing the [`ForecastSnapshot`]; retrains in the
//!   background every [`ForecastSection::retrain_hours`] of data time
//!   (every [`ForecastSection::fallback_retrain_hours`] on a fallback), and
//!   after the clock went back.
//! - [`snapshot`] — the service's forecasts as the API shows them (km/h to
//!   0.1, `null` for none).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;
use zhilu_core::forecast::service::{HORIZONS, STEP_MS};
use zhilu_core::forecast::{self as core_fc, ForecastService, StationSpeed};
use zhilu_road::RoadBook;
use zhilu_store::{StationBucket, Store};

use crate::config::ForecastSection;

/// Which forecaster the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The trained `zhilu_core::forecast` model.
    Model,
    /// Time-of-day profile plus a decaying current departure.
    Profile,
    /// The last reading.
    Persistence,
}

impl From<core_fc::Method> for Method {
    fn from(m: core_fc::Method) -> Method {
        match m {
            core_fc::Method::Model => Method::Model,
            core_fc::Method::Profile => Method::Profile,
            core_fc::Method::Persistence => Method::Persistence,
        }
    }
}

/// One station's forecast. Speeds in km/h, rounded to 0.1; `null` where
/// there is none (a station never heard, or no band yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StationForecast {
    /// Detector station id.
    pub detector: String,
    /// `up` / `down`.
    pub direction: String,
    /// Stake (m).
    pub stake_m: f64,
    /// Speed of the last observed bucket (`null`: no reading in it).
    pub last_speed_kmh: Option<f64>,
    /// Forecast per horizon (5, 10, … 60 minutes).
    pub speed_kmh: Vec<Option<f64>>,
    /// Band's lower edge per horizon.
    pub lower_kmh: Vec<Option<f64>>,
    /// Band's upper edge per horizon.
    pub upper_kmh: Vec<Option<f64>>,
}

/// The forecast for the segment between two consecutive stations of a
/// direction: the harmonic mean of its end stations' forecasts (equal halves
/// travelled at each speed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentForecast {
    /// `up` / `down`.
    pub direction: String,
    /// Upstream station id.
    pub from: String,
    /// Downstream station id.
    pub to: String,
    /// Stake of the upstream station (m).
    pub from_stake_m: f64,
    /// Stake of the downstream station (m).
    pub to_stake_m: f64,
    /// Forecast per horizon (km/h).
    pub speed_kmh: Vec<Option<f64>>,
}

/// Everything `GET /api/forecast` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastSnapshot {
    /// End of the last observed 5-minute bucket (data time, epoch ms); the
    /// forecast at horizon `m` minutes is the mean speed over the 5 minutes
    /// ending at `issued_ms + m·60 000`. `null` before any bucket.
    pub issued_ms: Option<i64>,
    /// Length of one forecast interval (300 s).
    pub step_s: u32,
    /// Horizons (minutes): 5, 10, … 60.
    pub horizons: Vec<u32>,
    /// `model`, `profile` or `persistence`.
    pub method: Method,
    /// The history used ended here (data time, epoch ms).
    pub trained_until_ms: i64,
    /// Days of the history that had readings.
    pub history_days: f64,
    /// Lower quantile of the errors behind `lower_kmh`.
    pub band_lower_q: f64,
    /// Upper quantile of the errors behind `upper_kmh`.
    pub band_upper_q: f64,
    /// Every detector station of the road book, in its order.
    pub stations: Vec<StationForecast>,
    /// Segments between consecutive stations of each direction, upstream
    /// first.
    pub segments: Vec<SegmentForecast>,
}

/// The service's forecasts as `GET /api/forecast` shows them.
pub fn snapshot(svc: &ForecastService) -> ForecastSnapshot {
    let kmh = |v: f32| v.is_finite().then(|| (f64::from(v) * 10.0).round() / 10.0);
    let st = svc.stations();
    let stations = st
        .iter()
        .enumerate()
        .map(|(s, station)| {
            let (mut sp, mut lo, mut hi) = (
                Vec::with_capacity(HORIZONS),
                Vec::with_capacity(HORIZONS),
                Vec::with_capacity(HORIZONS),
            );
            for h in 1..=HORIZONS {
                let (f, l, u) = svc.forecast(s, h);
                sp.push(kmh(f));
                lo.push(kmh(l));
                hi.push(kmh(u));
            }
            StationForecast {
                detector: station.id.clone(),
                direction: station.direction.as_str().to_string(),
                stake_m: station.stake_m,
                last_speed_kmh: kmh(svc.last_reading(s)),
                speed_kmh: sp,
                lower_kmh: lo,
                upper_kmh: hi,
            }
        })
        .collect();
    let segments = svc
        .segments()
        .iter()
        .enumerate()
        .map(|(g, &(a, b))| SegmentForecast {
            direction: st[a].direction.as_str().to_string(),
            from: st[a].id.clone(),
            to: st[b].id.clone(),
            from_stake_m: st[a].stake_m,
            to_stake_m: st[b].stake_m,
            speed_kmh: (1..=HORIZONS)
                .map(|h| kmh(svc.segment_forecast(g, h)))
                .collect(),
        })
        .collect();
    let (band_lower_q, band_upper_q) = svc.band_quantiles();
    ForecastSnapshot {
        issued_ms: svc.next_bucket_ms(),
        step_s: (STEP_MS / 1000) as u32,
        horizons: (1..=HORIZONS as u32).map(|h| h * 5).collect(),
        method: svc.method().into(),
        trained_until_ms: svc.trained_until_ms(),
        history_days: (svc.history_days() * 100.0).round() / 100.0,
        band_lower_q,
        band_upper_q,
        stations,
        segments,
    }
}

/// The store's station buckets as the service takes them.
fn speeds(rows: &[StationBucket]) -> Vec<StationSpeed> {
    rows.iter()
        .map(|b| StationSpeed {
            bucket_ms: b.bucket_ms,
            detector: b.detector.clone(),
            speed_kmh: b.speed_kmh,
        })
        .collect()
}

fn publish(out: &RwLock<Option<ForecastSnapshot>>, snap: ForecastSnapshot) {
    match out.write() {
        Ok(mut g) => *g = Some(snap),
        Err(p) => *p.into_inner() = Some(snap),
    }
}

/// Logs what the service says of itself: training's outcome, or the
/// model's last update failure.
fn report(svc: &mut ForecastService) {
    if let Some(e) = svc.take_update_error() {
        tracing::warn!(error = %e, "forecast: model update failed");
    }
}

/// End of the buckets complete at data time `tick_ms` (a bucket boundary).
fn complete_until(tick_ms: i64, grace_ms: i64) -> i64 {
    (tick_ms - grace_ms).div_euclid(STEP_MS) * STEP_MS
}

/// A service trained, with the wall time training took (ms).
struct Trained {
    svc: ForecastService,
    wall_ms: u64,
}

/// Loads the history before `until_ms` and trains (in `spawn_blocking`).
/// A failed read trains on nothing (persistence), logged.
async fn load_and_train(
    store: &Store,
    road: Arc<RoadBook>,
    until_ms: i64,
    cfg: &ForecastSection,
) -> Trained {
    let from = until_ms - (cfg.history_days.max(0.0) * 86_400_000.0) as i64;
    let history = match store.station_history(from, until_ms, STEP_MS).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "forecast: reading the station history failed");
            Vec::new()
        }
    };
    let c = cfg.service();
    let r = road.clone();
    let job = move || {
        let started = Instant::now();
        let svc = ForecastService::train(&r, &speeds(&history), until_ms, &c);
        let wall_ms = started.elapsed().as_millis() as u64;
        Trained { svc, wall_ms }
    };
    let mut t = match tokio::task::spawn_blocking(job).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "forecast: training task failed, using persistence");
            Trained {
                svc: ForecastService::train(&road, &[], until_ms, &cfg.service()),
                wall_ms: 0,
            }
        }
    };
    let tr = t.svc.training();
    if let Some(e) = &tr.invalid_settings {
        tracing::warn!(error = %e, "forecast: invalid settings, using the defaults");
    }
    if let Some(e) = &tr.model_failed {
        tracing::warn!(error = %e, "forecast: training failed, using the profile");
    }
    if t.svc.method() == core_fc::Method::Model {
        tracing::info!(
            stations = t.svc.stations().len(),
            days = t.svc.history_days(),
            train_rows = tr.model_rows,
            stride = tr.stride,
            "forecast: model trained"
        );
    }
    report(&mut t.svc);
    t
}

/// Feeds `svc` every bucket complete before `until_ms` it has not seen
/// (at most `max_catchup` of the latest), one store read for all of them.
async fn catch_up(
    store: &Store,
    svc: &mut ForecastService,
    until_ms: i64,
    max_catchup: usize,
) -> bool {
    let latest = until_ms - STEP_MS * max_catchup.max(1) as i64;
    let from = svc
        .next_bucket_ms()
        .unwrap_or(until_ms - STEP_MS)
        .max(latest);
    if from >= until_ms {
        return false;
    }
    let rows = match store.station_history(from, until_ms, STEP_MS).await {
        Ok(r) => speeds(&r),
        Err(e) => {
            tracing::warn!(error = %e, "forecast: reading buckets failed");
            return false;
        }
    };
    let mut i = 0;
    let mut b = from;
    while b < until_ms {
        let j = i + rows[i..].iter().take_while(|r| r.bucket_ms <= b).count();
        if let Err(e) = svc.observe(b, &rows[i..j]) {
            tracing::warn!(error = %e, "forecast: bucket refused");
        }
        i = j;
        b += STEP_MS;
    }
    report(svc);
    true
}

/// The forecast task: trains from the stored history once the first tick
/// closed, then follows the closed ticks (`ticks`, sent by the engine),
/// observing each completed 5-minute bucket and publishing the snapshot
/// into `out`; retrains every [`ForecastSection::retrain_hours`] of data
/// time (every [`ForecastSection::fallback_retrain_hours`] while on a
/// fallback method) in the background, the old service serving meanwhile,
/// and swaps the new one in as soon as it is ready. Ends when the engine
/// drops its sender (or the task is aborted); never panics on data, logs
/// failures.
pub async fn run(
    store: Store,
    road: Arc<RoadBook>,
    mut ticks: watch::Receiver<Option<i64>>,
    out: Arc<RwLock<Option<ForecastSnapshot>>>,
    cfg: ForecastSection,
) {
    let cfg = match cfg.validate() {
        Ok(()) => cfg,
        Err(e) => {
            tracing::warn!(error = %e, "forecast: invalid settings, using the defaults");
            ForecastSection::default()
        }
    };
    let grace_ms = (cfg.grace_s * 1000.0) as i64;
    let tick = loop {
        if let Some(t) = *ticks.borrow_and_update() {
            break t;
        }
        if ticks.changed().await.is_err() {
            return;
        }
    };
    let first = load_and_train(&store, road.clone(), complete_until(tick, grace_ms), &cfg).await;
    tracing::info!(
        method = first.svc.method().as_str(),
        train_ms = first.wall_ms,
        "forecast: running"
    );
    let mut svc = first.svc;
    publish(&out, snapshot(&svc));
    let mut retraining: Option<tokio::task::JoinHandle<Trained>> = None;
    loop {
        let mut changed = false;
        tokio::select! {
            r = ticks.changed() => if r.is_err() {
                return;
            },
            r = async { retraining.as_mut().expect("guarded by the condition").await },
                if retraining.is_some() =>
            {
                retraining = None;
                match r {
                    Ok(new) => {
                        tracing::info!(
                            method = new.svc.method().as_str(),
                            train_ms = new.wall_ms,
                            "forecast: retrained"
                        );
                        svc = new.svc;
                        changed = true;
                    }
                    Err(e) => tracing::error!(error = %e, "forecast: retraining failed"),
                }
            }
        }
        let Some(tick) = *ticks.borrow_and_update() else {
            continue;
        };
        let until = complete_until(tick, grace_ms);
        // The clock went back more than an hour (a new run on the store):
        // start over from the history.
        let went_back = svc
            .next_bucket_ms()
            .is_some_and(|n| until < n - HORIZONS as i64 * STEP_MS);
        changed |= catch_up(&store, &mut svc, until, cfg.max_catchup_buckets).await;
        if changed {
            publish(&out, snapshot(&svc));
        }
        let every_h = if svc.method() == core_fc::Method::Model {
            cfg.retrain_hours
        } else {
            cfg.fallback_retrain_hours
        };
        let due = every_h > 0.0 && (until - svc.trained_until_ms()) as f64 >= every_h * 3_600_000.0;
        if retraining.is_none() && (due || went_back) {
            let (st, rd, c) = (store.clone(), road.clone(), cfg.clone());
            retraining = Some(tokio::spawn(async move {
                load_and_train(&st, rd, until, &c).await
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use zhilu_store::{ObsRow, ReadingBatch};

    /// Local midnight (UTC+8) of 1 Jan 2026, epoch ms.
    const T0: i64 = 1_767_225_600_000 - 8 * 3_600_000;
    const DAY: i64 = 86_400_000;

    /// The example day's corridor: six stations each way, UTC+8.
    fn road() -> RoadBook {
        RoadBook::from_toml(include_str!("../../../examples/day/ROAD.toml"), "day")
            .expect("example road book")
    }

    fn quick() -> ForecastSection {
        ForecastSection {
            trees: 0,
            ..ForecastSection::default()
        }
    }

    /// Every station at `speed(bucket)` km/h for the buckets `from..to`.
    fn buckets(
        road: &RoadBook,
        from: i64,
        to: i64,
        speed: impl Fn(i64) -> f64,
    ) -> Vec<StationBucket> {
        let mut out = Vec::new();
        let mut b = from;
        while b < to {
            for d in road.detectors() {
                out.push(StationBucket {
                    bucket_ms: b,
                    detector: d.id.clone(),
                    volume: 50,
                    speed_kmh: Some(speed(b)),
                    occupancy_pct: None,
                    samples: 1,
                });
            }
            b += STEP_MS;
        }
        out
    }

    /// Stores buckets as one raw reading each, `offset_ms` into the bucket,
    /// with sequence numbers from `seq0`.
    async fn append(store: &Store, buckets: &[StationBucket], offset_ms: i64, seq0: i64) {
        for (k, chunk) in buckets.chunks(5000).enumerate() {
            let obs = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| ObsRow {
                    seq: seq0 + (k * 5000 + i) as i64,
                    ts_ms: b.bucket_ms + offset_ms,
                    detector: b.detector.clone(),
                    lane: 1,
                    interval_s: 300,
                    volume: b.volume as i32,
                    speed_kmh: b.speed_kmh,
                    occupancy_pct: None,
                })
                .collect();
            let batch = ReadingBatch {
                obs,
                ..ReadingBatch::default()
            };
            store.append_readings(&batch).await.expect("append");
        }
    }

    async fn store_with(buckets: &[StationBucket]) -> Store {
        let store = Store::open("sqlite::memory:")
            .await
            .expect("in-memory store");
        append(&store, buckets, STEP_MS / 2, 1).await;
        store
    }

    /// Waits for a snapshot that `want` accepts.
    async fn wait_for(
        out: &RwLock<Option<ForecastSnapshot>>,
        what: &str,
        want: impl Fn(&ForecastSnapshot) -> bool,
    ) -> ForecastSnapshot {
        for _ in 0..6000 {
            let got = out.read().ok().and_then(|o| o.clone());
            if let Some(s) = got
                && want(&s)
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no snapshot {what}");
    }

    #[test]
    fn the_snapshot_shows_the_service_in_km_h_to_a_tenth() {
        let road = road();
        let hist: Vec<StationSpeed> = speeds(&buckets(&road, T0, T0 + DAY, |_| 80.0));
        let mut svc = ForecastService::train(&road, &hist, T0 + DAY, &quick().service());
        // The second station silent, the last implausible, the others at 81.26 km/h.
        let (second, last) = (
            road.detectors()[1].id.clone(),
            road.detectors()[11].id.clone(),
        );
        let mut rows = speeds(&buckets(&road, T0 + DAY, T0 + DAY + STEP_MS, |_| 81.26));
        rows.retain(|r| r.detector != second);
        rows.iter_mut()
            .filter(|r| r.detector == last)
            .for_each(|r| r.speed_kmh = Some(900.0));
        svc.observe(T0 + DAY, &rows).expect("in order");
        let snap = snapshot(&svc);
        assert_eq!(snap.issued_ms, Some(T0 + DAY + STEP_MS));
        assert_eq!(snap.method, Method::Profile);
        assert_eq!(snap.stations.len(), 12);
        assert_eq!(snap.stations[0].last_speed_kmh, Some(81.3));
        assert_eq!(snap.stations[1].last_speed_kmh, None);
        assert_eq!(snap.stations[11].last_speed_kmh, None);
        let (f, lo, hi) = svc.forecast(0, 1);
        assert_eq!(
            snap.stations[0].speed_kmh[0],
            Some((f64::from(f) * 10.0).round() / 10.0)
        );
        assert!(lo <= f && f <= hi);
        assert_eq!(snap.segments.len(), 10);
        let (a, b) = svc.segments()[6];
        let g = &snap.segments[6];
        assert_eq!(
            (g.from.as_str(), g.to.as_str()),
            (
                snap.stations[a].detector.as_str(),
                snap.stations[b].detector.as_str()
            )
        );
        assert_eq!(
            (g.direction.as_str(), g.from_stake_m),
            ("down", snap.stations[a].stake_m)
        );
        assert_eq!(
            g.speed_kmh[0],
            Some((f64::from(svc.segment_forecast(6, 1)) * 10.0).round() / 10.0)
        );
        let json = serde_json::to_value(&snap).expect("json");
        let back: ForecastSnapshot = serde_json::from_value(json.clone()).expect("read back");
        assert_eq!(back, snap);
        assert_eq!(json["method"], "profile");
        assert_eq!(json["step_s"], 300);
        assert_eq!(json["horizons"][11], 60);
        assert_eq!(
            json["stations"][1]["last_speed_kmh"],
            serde_json::Value::Null
        );
        assert_eq!(json["stations"][0]["direction"], "up");
        assert_eq!(json["band_lower_q"], 0.1);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(ForecastSection::default().validate(), Ok(()));
        assert_eq!(
            ForecastSection::default().service(),
            zhilu_core::forecast::ServiceConfig::default()
        );
        let bad = ForecastSection {
            band_lower: 0.9,
            band_upper: 0.1,
            ..ForecastSection::default()
        };
        assert_eq!(
            bad.validate(),
            Err(core_fc::ServiceError::Config(
                "band_upper must be above band_lower and at most 1"
            ))
        );
        let bad = ForecastSection {
            grace_s: -1.0,
            ..ForecastSection::default()
        };
        assert_eq!(
            bad.validate(),
            Err(core_fc::ServiceError::Config(
                "grace_s must not be negative"
            ))
        );
        // As a TOML section of the server configuration would give it.
        let from_toml: ForecastSection =
            toml::from_str("history_days = 7\nband_lower = 0.05\nenabled = false\npoll_ms = 5")
                .expect("toml");
        assert_eq!(from_toml.history_days, 7.0);
        assert_eq!(from_toml.min_model_days, 3.0);
        assert!(!from_toml.enabled);
        assert!(toml::from_str::<ForecastSection>("bogus = 1").is_err());
    }

    #[tokio::test]
    async fn run_publishes_when_a_closed_tick_passes_a_bucket() {
        let road = Arc::new(road());
        let end = T0 + DAY;
        let store = store_with(&buckets(&road, T0, end, |_| 90.0)).await;
        let (clock, ticks) = watch::channel(None);
        let out = Arc::new(RwLock::new(None));
        let task = tokio::spawn(run(
            store.clone(),
            road.clone(),
            ticks,
            out.clone(),
            quick(),
        ));
        // Nothing before the first tick closes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(out.read().map(|o| o.is_none()).unwrap_or(false));
        clock.send_replace(Some(end + 20_000)); // inside the grace: the last bucket is not complete
        let snap = wait_for(&out, "issued at the last complete bucket", |s| {
            s.issued_ms == Some(end - STEP_MS)
        })
        .await;
        assert_eq!(snap.method, Method::Profile);
        // A new bucket arrives, then a tick closes past it: observed.
        let fresh = buckets(&road, end, end + STEP_MS, |_| 33.0);
        append(&store, &fresh, 240_000, 1_000_000).await;
        clock.send_replace(Some(end + STEP_MS + 31_000));
        let snap = wait_for(&out, "with the new bucket", |s| {
            s.issued_ms == Some(end + STEP_MS)
        })
        .await;
        assert_eq!(snap.stations[0].last_speed_kmh, Some(33.0));
        // The engine gone: the task ends.
        drop(clock);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task ends with the engine")
            .expect("no panic");
    }

    #[tokio::test]
    async fn run_retrains_in_the_background_and_after_the_clock_went_back() {
        let road = Arc::new(road());
        let end = T0 + DAY;
        let later = end + 4 * STEP_MS;
        let store = store_with(&buckets(&road, T0, end, |_| 90.0)).await;
        let (clock, ticks) = watch::channel(None);
        let out: Arc<RwLock<Option<ForecastSnapshot>>> = Arc::new(RwLock::new(None));
        let cfg = ForecastSection {
            fallback_retrain_hours: 0.25,
            ..quick()
        };
        let task = tokio::spawn(run(store.clone(), road.clone(), ticks, out.clone(), cfg));
        let trained = |issued: i64, trained: i64| {
            move |s: &ForecastSnapshot| s.issued_ms == Some(issued) && s.trained_until_ms == trained
        };
        clock.send_replace(Some(end + 31_000));
        wait_for(&out, "trained at the end", trained(end, end)).await;
        // 20 minutes more data: observed at once, and past the 15-minute
        // fallback interval a retrain on the longer history is swapped in
        // without another tick.
        append(
            &store,
            &buckets(&road, end, later, |_| 70.0),
            STEP_MS / 2,
            1_000_000,
        )
        .await;
        clock.send_replace(Some(later + 31_000));
        let snap = wait_for(&out, "retrained later", trained(later, later)).await;
        assert_eq!(snap.method, Method::Profile);
        // The clock goes back half a day (a new run on the same store):
        // retrained on the history before it.
        let back = T0 + DAY / 2;
        clock.send_replace(Some(back + 31_000));
        let snap = wait_for(&out, "retrained back", trained(back, back)).await;
        assert!(snap.history_days < 0.6, "{}", snap.history_days);
        task.abort();
    }

    /// Cost on the demo corridor (119 stations): store read, training and
    /// one update, for 3, 7 and 14 days of history. Run in release:
    /// `cargo test --release -p zhilu-server --lib forecast::tests::cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "measurement; run in release"]
    async fn cost_on_the_demo_corridor() {
        let road = RoadBook::from_toml(include_str!("../../../examples/demo/ROAD.toml"), "demo")
            .expect("demo road book");
        let n = road.detectors().len();
        for days in [3usize, 7, 14] {
            // Free flow with a daily dip and station-dependent noise.
            let speed = |b: i64| {
                let slot = (b - T0).rem_euclid(DAY) / STEP_MS;
                let dip = if (84..102).contains(&slot) { 45.0 } else { 0.0 };
                100.0 - dip + ((b / STEP_MS) % 7) as f64
            };
            let split = T0 + days as i64 * DAY;
            let train = buckets(&road, T0, split, speed);
            let test = buckets(&road, split, split + DAY, speed);
            let store = store_with(&train).await;
            let t = Instant::now();
            let history = store
                .station_history(split - 14 * DAY, split, STEP_MS)
                .await
                .expect("history");
            let read_ms = t.elapsed().as_secs_f64() * 1e3;
            let (t, cpu) = (Instant::now(), thread_cpu_ms());
            let mut svc = ForecastService::train(
                &road,
                &speeds(&history),
                split,
                &ForecastSection::default().service(),
            );
            let train_s = t.elapsed().as_secs_f64();
            let train_cpu_s = (thread_cpu_ms() - cpu) / 1e3;
            // Per call: wall time (the scheduler's run time is only updated
            // at ticks, so on-CPU is taken over the whole loop: a mean).
            let rows = speeds(&test);
            let buckets: Vec<&[StationSpeed]> = rows.chunks(n).collect();
            let (mut obs, mut snap) = (Vec::new(), Vec::new());
            let cpu = thread_cpu_ms();
            for b in &buckets {
                let t = Instant::now();
                svc.observe(b[0].bucket_ms, b).expect("in order");
                obs.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let _ = snapshot(&svc);
                snap.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let loop_cpu = (thread_cpu_ms() - cpu) / buckets.len() as f64;
            // The model's own update, without the band.
            let mut push = Vec::new();
            let mut push_cpu = f64::NAN;
            if let Some(live) = svc.live_model() {
                let mut live = live.clone();
                let cpu = thread_cpu_ms();
                for (i, b) in buckets.iter().enumerate() {
                    let v: Vec<f32> = b
                        .iter()
                        .map(|r| r.speed_kmh.unwrap_or(f64::NAN) as f32)
                        .collect();
                    let t = Instant::now();
                    live.push(i % 288, &v).expect("push");
                    push.push(t.elapsed().as_secs_f64() * 1e3);
                }
                push_cpu = (thread_cpu_ms() - cpu) / buckets.len() as f64;
            }
            push.sort_by(f64::total_cmp);
            obs.sort_by(f64::total_cmp);
            snap.sort_by(f64::total_cmp);
            eprintln!(
                "observe median {:.2} ms wall, max {:.2} ms; observe + snapshot mean {loop_cpu:.2} ms \
                 on-CPU; the model's update alone median {:.3} ms wall, mean {push_cpu:.3} ms on-CPU",
                obs[obs.len() / 2],
                obs[obs.len() - 1],
                push.get(push.len() / 2).copied().unwrap_or(f64::NAN),
            );
            let json = serde_json::to_string(&snapshot(&svc)).expect("json");
            eprintln!(
                "{n} stations, {days} days ({} buckets read in {read_ms:.0} ms): method {}, \
                 training {train_s:.1} s wall, {train_cpu_s:.1} s on-CPU; snapshot median \
                 {:.2} ms, JSON {} bytes",
                history.len(),
                svc.method().as_str(),
                snap[snap.len() / 2],
                json.len()
            );
        }
    }

    /// Time this thread has run (ms), from the Linux scheduler's
    /// statistics; 0 where they are not available.
    fn thread_cpu_ms() -> f64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |ns| ns / 1e6)
    }
}
