//! Key figures at a glance (运行指标, `GET /api/kpi`) and their history
//! over a period (`GET /api/kpi/history`). The figures are computed by
//! `zhilu_core::kpi`; this module only gathers its inputs: the last
//! tick's state, the open events, the devices' health and the pending
//! proposals (now), or the stored station speeds (history).

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zhilu_core::kpi::{
    self, DeviceHealth, DirectionSpeeds, KpiConfig, LinkTime, Stretch, TrafficKpi,
};
use zhilu_core::road::{Direction, RoadBook};
use zhilu_store::EventQuery;

use crate::AppState;
use crate::engine::wall_ms;
use crate::views::StateView;

use super::{ApiError, ApiResult, Caller, ErrorBody};

/// Travel time between two consecutive interchanges in one direction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LinkView {
    /// Carriageway (`up` / `down`).
    pub direction: String,
    /// Upstream interchange id.
    pub from: String,
    /// Its name (e.g. 黄村).
    pub from_name: String,
    /// Its stake (m).
    pub from_m: f64,
    /// Downstream interchange id.
    pub to: String,
    /// Its name.
    pub to_name: String,
    /// Its stake (m).
    pub to_m: f64,
    /// Length (m).
    pub length_m: f64,
    /// Time at the posted limit (s, whole).
    pub free_flow_s: f64,
    /// Time at the current speeds (s, whole); null when no speed is known there.
    pub travel_s: Option<f64>,
    /// Travel time minus free-flow time, at least 0 (s, whole).
    pub delay_s: Option<f64>,
    /// Mean speed over the link (km/h, whole).
    pub speed_kmh: Option<f64>,
    /// Share of the link with a known speed (0–1, two decimals).
    pub coverage: f64,
}

/// Congestion mileage of one carriageway.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CongestionView {
    /// Carriageway (`up` / `down`).
    pub direction: String,
    /// Length slower than the congestion threshold (km, one decimal).
    pub congested_km: f64,
    /// Length with a known speed (km, one decimal).
    pub known_km: f64,
}

/// Open events by severity class.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
pub struct SeverityCounts {
    /// 特别重大/重大.
    pub critical: u32,
    /// 较大.
    pub major: u32,
    /// 一般.
    pub minor: u32,
    /// 提示.
    pub info: u32,
    /// All open events.
    pub total: u32,
}

/// Devices by health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
pub struct DeviceCountsView {
    /// Devices counted: the road book's commandable devices and detector stations.
    pub total: u32,
    /// Commandable devices heard of before and not reachable now.
    pub offline: u32,
    /// Commandable devices never heard of since the centre started.
    pub unheard: u32,
    /// Faulty: detector stations with an open `detector_fault`, devices
    /// with an open `device_out_of_plan`.
    pub faulty: u32,
}

/// Decisions waiting for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Default)]
pub struct PendingView {
    /// Proposals pending.
    pub proposals: u32,
}

/// The key figures now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiView {
    /// Data time of the state the traffic figures come from (epoch ms);
    /// null before the first tick (then there are no travel times).
    pub at_ms: Option<i64>,
    /// Posted limit the free-flow times use (km/h).
    pub limit_kmh: u16,
    /// Below this a stretch counts as congested (km/h).
    pub congested_below_kmh: f32,
    /// Travel times between consecutive interchanges, per direction in
    /// travel order (up first).
    pub links: Vec<LinkView>,
    /// Congestion mileage per direction.
    pub congestion: Vec<CongestionView>,
    /// Open events by severity.
    pub events: SeverityCounts,
    /// Devices by health.
    pub devices: DeviceCountsView,
    /// Pending decisions.
    pub pending: PendingView,
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn link_view(road: &RoadBook, l: &LinkTime) -> LinkView {
    let ics = road.interchanges();
    let (a, b) = (&ics[l.from], &ics[l.to]);
    LinkView {
        direction: l.direction.as_str().into(),
        from: a.id.clone(),
        from_name: a.name.clone(),
        from_m: a.stake_m,
        to: b.id.clone(),
        to_name: b.name.clone(),
        to_m: b.stake_m,
        length_m: round(l.length_m, 0),
        free_flow_s: round(l.free_flow_s, 0),
        travel_s: l.travel_s.map(|t| round(t, 0)),
        delay_s: l.delay_s.map(|t| round(t, 0)),
        speed_kmh: l.mean_speed_kmh().map(|v| round(v, 0)),
        coverage: round(l.coverage, 2),
    }
}

/// The live state's segments as speeds per direction.
fn speeds_of_state(state: &StateView) -> Vec<DirectionSpeeds> {
    state
        .directions
        .iter()
        .filter_map(|d| {
            let direction = Direction::parse(d.direction)?;
            let stretches = d
                .segments
                .iter()
                .filter(|g| g[2].is_finite())
                .map(|g| Stretch {
                    from_m: g[0].min(g[1]),
                    to_m: g[0].max(g[1]),
                    speed_kmh: g[2] as f32,
                })
                .collect();
            Some(DirectionSpeeds {
                direction,
                stretches,
            })
        })
        .collect()
}

/// The figures now: traffic from the last tick, events, devices, pending.
#[utoipa::path(get, path = "/api/kpi", tag = "zhilu", security(("bearer" = [])),
    responses((status = 200, body = KpiView), (status = 401, body = ErrorBody)))]
async fn kpi_now(State(st): State<AppState>, _c: Caller) -> ApiResult<Json<KpiView>> {
    let cfg = KpiConfig::default();
    let state = st.snapshot.read().ok().and_then(|s| s.state.clone());
    let at_ms = state.as_ref().map(|s| s.ts_ms);
    // Every carriageway of the road book, with the speeds the state has.
    let known = state.as_deref().map(speeds_of_state).unwrap_or_default();
    let speeds: Vec<DirectionSpeeds> = st
        .road
        .directions()
        .iter()
        .map(|&d| {
            known
                .iter()
                .find(|k| k.direction == d)
                .cloned()
                .unwrap_or(DirectionSpeeds {
                    direction: d,
                    stretches: Vec::new(),
                })
        })
        .collect();
    let traffic = kpi::traffic(&st.road, at_ms.unwrap_or(0), &speeds, &cfg);

    let open = st
        .store
        .events(&EventQuery {
            active_only: true,
            limit: 10_000,
            ..EventQuery::default()
        })
        .await?;
    let lines: Vec<Value> = open
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.json).ok())
        .collect();
    let sev = kpi::by_severity(lines.iter().map(|l| crate::flow::level(l, &st.road)));
    let mut faulty: HashSet<String> = HashSet::new();
    for l in &lines {
        match l["kind"].as_str() {
            Some("detector_fault") => {
                if let Some(d) = l["detector"].as_str() {
                    faulty.insert(d.to_string());
                }
            }
            Some("device_out_of_plan") => {
                if let Some(d) = l["device"].as_str() {
                    faulty.insert(d.to_string());
                }
            }
            _ => {}
        }
    }
    let rows = st.store.device_states().await?;
    let known: BTreeMap<&str, (bool, bool)> = rows
        .iter()
        .map(|r| (r.device.as_str(), (r.online, r.last_seen_wall_ms.is_some())))
        .collect();
    let road = &st.road;
    let health = road
        .devices()
        .filter(|d| {
            zhilu_devices::commandable(d.kind) || d.kind == zhilu_core::road::DeviceKind::Detector
        })
        .map(|d| {
            let id = road.device_id(d);
            if faulty.contains(id) {
                return DeviceHealth::Faulty;
            }
            if d.kind == zhilu_core::road::DeviceKind::Detector {
                return DeviceHealth::Ok;
            }
            match known.get(id) {
                Some((true, _)) => DeviceHealth::Ok,
                Some((false, true)) => DeviceHealth::Offline,
                _ => DeviceHealth::Unheard,
            }
        });
    let dc = kpi::device_counts(health);
    let pending = st.store.proposals(Some("pending")).await?.len() as u32;
    Ok(Json(view(road, &cfg, at_ms, &traffic, sev, dc, pending)))
}

fn view(
    road: &RoadBook,
    cfg: &KpiConfig,
    at_ms: Option<i64>,
    traffic: &TrafficKpi,
    sev: [u32; 4],
    dc: kpi::DeviceCounts,
    pending: u32,
) -> KpiView {
    KpiView {
        at_ms,
        limit_kmh: road.speed_limit_kmh(),
        congested_below_kmh: cfg.congested_below_kmh,
        links: traffic.links.iter().map(|l| link_view(road, l)).collect(),
        congestion: traffic
            .directions
            .iter()
            .map(|d| CongestionView {
                direction: d.direction.as_str().into(),
                congested_km: round(d.congested_km, 1),
                known_km: round(d.known_km, 1),
            })
            .collect(),
        events: SeverityCounts {
            critical: sev[0],
            major: sev[1],
            minor: sev[2],
            info: sev[3],
            total: sev.iter().sum(),
        },
        devices: DeviceCountsView {
            total: dc.total,
            offline: dc.offline,
            unheard: dc.unheard,
            faulty: dc.faulty,
        },
        pending: PendingView { proposals: pending },
    }
}

/// History window.
#[derive(Deserialize, IntoParams)]
pub struct KpiHistoryQuery {
    /// Start (epoch ms, data time); default: 3 hours before `to_ms`.
    pub from_ms: Option<i64>,
    /// End (epoch ms, exclusive); default: the last closed tick.
    pub to_ms: Option<i64>,
    /// Bucket (s), 60–3600; default: 5 minutes, more for long windows
    /// (at most 720 buckets).
    pub step_s: Option<u32>,
}

/// A link of the history (its times are in the buckets, in this order).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryLink {
    /// Carriageway.
    pub direction: String,
    /// Upstream interchange id.
    pub from: String,
    /// Its name.
    pub from_name: String,
    /// Downstream interchange id.
    pub to: String,
    /// Its name.
    pub to_name: String,
    /// Length (m).
    pub length_m: f64,
    /// Time at the posted limit (s).
    pub free_flow_s: f64,
}

/// The figures of one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiBucket {
    /// Start of the bucket (epoch ms).
    pub at_ms: i64,
    /// Travel time per link (s, whole), in the order of `links`; null where
    /// no station had a speed.
    pub travel_s: Vec<Option<f64>>,
    /// Congestion mileage per direction (km), in the order of `directions`.
    pub congested_km: Vec<f64>,
}

/// Travel times and congestion mileage over a period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiHistory {
    /// Start (epoch ms).
    pub from_ms: i64,
    /// End (epoch ms, exclusive).
    pub to_ms: i64,
    /// Bucket width (ms).
    pub step_ms: i64,
    /// The links, per direction in travel order.
    pub links: Vec<HistoryLink>,
    /// The carriageways of `congested_km`.
    pub directions: Vec<String>,
    /// One entry per bucket with stored readings, oldest first.
    pub buckets: Vec<KpiBucket>,
}

/// Travel times between interchanges and congestion mileage per time
/// bucket, from the stored station speeds (the time–space diagram's data:
/// between two stations pace varies linearly). At most 7 days and 720
/// buckets.
#[utoipa::path(get, path = "/api/kpi/history", tag = "zhilu", params(KpiHistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = KpiHistory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn kpi_history(
    State(st): State<AppState>,
    _c: Caller,
    Query(q): Query<KpiHistoryQuery>,
) -> ApiResult<Json<KpiHistory>> {
    let last = st.snapshot.read().ok().and_then(|s| s.last_tick_ms);
    let to = q.to_ms.or(last.map(|t| t + 1)).unwrap_or_else(wall_ms);
    let from = q.from_ms.unwrap_or(to.saturating_sub(3 * 3_600_000));
    let step_ms = window(from, to, q.step_s)?;
    let rows = st.store.station_history(from, to, step_ms).await?;
    Ok(Json(history(&st.road, from, to, step_ms, &rows)))
}

/// Checks a history window and picks its bucket width (ms).
fn window(from: i64, to: i64, step_s: Option<u32>) -> ApiResult<i64> {
    // Epoch ms between 1970 and 2200: anything else is not a data time.
    const LATEST_MS: i64 = 7_258_118_400_000;
    if !(0..=LATEST_MS).contains(&from) || !(0..=LATEST_MS).contains(&to) {
        return Err(ApiError::Unprocessable(
            "from_ms and to_ms must be epoch milliseconds between 1970 and 2200".into(),
        ));
    }
    let span = to - from;
    if span <= 0 || span > 7 * 86_400_000 {
        return Err(ApiError::Unprocessable(
            "from_ms must be before to_ms, at most 7 days apart".into(),
        ));
    }
    let step_ms = match step_s {
        Some(s) if (60..=3600).contains(&s) => i64::from(s) * 1000,
        Some(_) => return Err(ApiError::Unprocessable("step_s must be 60–3600".into())),
        None => ((span / 720).max(300_000) + 59_999) / 60_000 * 60_000,
    };
    if span / step_ms > 720 {
        return Err(ApiError::Unprocessable(
            "too many buckets: raise step_s (at most 720 per request)".into(),
        ));
    }
    Ok(step_ms)
}

fn history(
    road: &RoadBook,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    rows: &[zhilu_store::StationBucket],
) -> KpiHistory {
    let cfg = KpiConfig::default();
    let dirs = road.directions().to_vec();
    // Per bucket, per detector index: speed.
    let mut by_bucket: BTreeMap<i64, Vec<Option<f32>>> = BTreeMap::new();
    for r in rows {
        let Some(i) = road.detector_index(&r.detector) else {
            continue;
        };
        let speeds = by_bucket
            .entry(r.bucket_ms)
            .or_insert_with(|| vec![None; road.detectors().len()]);
        speeds[i as usize] = r.speed_kmh.map(|v| v as f32);
    }
    // The links (which do not depend on the speeds), then each bucket's times.
    let none: Vec<DirectionSpeeds> = dirs
        .iter()
        .map(|&d| DirectionSpeeds {
            direction: d,
            stretches: Vec::new(),
        })
        .collect();
    let links = kpi::link_times(road, &none, &cfg)
        .iter()
        .map(|l| {
            let v = link_view(road, l);
            HistoryLink {
                direction: v.direction,
                from: v.from,
                from_name: v.from_name,
                to: v.to,
                to_name: v.to_name,
                length_m: v.length_m,
                free_flow_s: v.free_flow_s,
            }
        })
        .collect();
    let mut buckets = Vec::new();
    for (at_ms, speeds) in by_bucket {
        let per_dir: Vec<DirectionSpeeds> = dirs
            .iter()
            .map(|&d| {
                let pts: Vec<(f64, Option<f32>)> = road
                    .stations(d)
                    .iter()
                    .map(|&i| (road.detectors()[i as usize].stake_m, speeds[i as usize]))
                    .collect();
                DirectionSpeeds::from_stations(d, &pts)
            })
            .collect();
        let t = kpi::traffic(road, at_ms, &per_dir, &cfg);
        buckets.push(KpiBucket {
            at_ms,
            travel_s: t
                .links
                .iter()
                .map(|l| l.travel_s.map(|x| round(x, 0)))
                .collect(),
            congested_km: t
                .directions
                .iter()
                .map(|d| round(d.congested_km, 1))
                .collect(),
        });
    }
    KpiHistory {
        from_ms,
        to_ms,
        step_ms,
        links,
        directions: dirs.iter().map(|d| d.as_str().to_string()).collect(),
        buckets,
    }
}

/// This module's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kpi_now))
        .routes(routes!(kpi_history))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn road() -> RoadBook {
        zhilu_core::road::RoadBook::from_toml(
            include_str!("../../../../examples/demo/ROAD.toml"),
            "demo ROAD.toml",
        )
        .expect("demo road")
    }

    #[test]
    fn the_live_state_gives_the_links_and_congestion() {
        let r = road();
        // Up: 120 km/h, but K17–K31 (礼贤–固安) at 30 km/h. Down: nothing.
        let state = StateView {
            columns: crate::views::STATE_SEGMENT_COLUMNS,
            directions: vec![
                crate::views::DirectionStateView {
                    direction: "up",
                    segments: vec![
                        [0.0, 17000.0, 120.0, 0.0, 0.0],
                        [17000.0, 31000.0, 30.0, 0.0, 0.0],
                        [31000.0, 60000.0, 120.0, 0.0, 0.0],
                    ],
                },
                crate::views::DirectionStateView {
                    direction: "down",
                    segments: vec![],
                },
            ],
            time: String::new(),
            ts_ms: 5,
        };
        let t = kpi::traffic(&r, 5, &speeds_of_state(&state), &KpiConfig::default());
        let v = view(
            &r,
            &KpiConfig::default(),
            Some(5),
            &t,
            [0; 4],
            Default::default(),
            0,
        );
        let up: Vec<_> = v.links.iter().filter(|l| l.direction == "up").collect();
        assert_eq!(
            up.iter()
                .map(|l| format!("{}→{}", l.from_name, l.to_name))
                .collect::<Vec<_>>(),
            ["黄村→礼贤", "礼贤→固安", "固安→牛驼"]
        );
        // 14 km at 30 km/h = 1,680 s; free flow 420 s.
        assert_eq!(up[1].travel_s, Some(1680.0));
        assert_eq!(up[1].free_flow_s, 420.0);
        assert_eq!(up[1].delay_s, Some(1260.0));
        assert_eq!(up[1].speed_kmh, Some(30.0));
        assert_eq!(up[0].delay_s, Some(0.0));
        assert_eq!(v.congestion[0].congested_km, 14.0);
        let down: Vec<_> = v.links.iter().filter(|l| l.direction == "down").collect();
        assert_eq!(down[0].from_name, "牛驼");
        assert!(down.iter().all(|l| l.travel_s.is_none()));
    }

    #[test]
    fn stored_lines_are_classed_by_the_core() {
        use zhilu_core::event::Severity;
        let r = road();
        let cases = [
            (
                json!({"kind": "fog", "from_m": 20000, "to_m": 30000, "severity": 4, "visibility_m": 45, "evidence": {"rule": "weather.fog"}}),
                Severity::Critical,
            ),
            (
                json!({"kind": "fog", "from_m": 20000, "to_m": 30000, "severity": 2, "visibility_m": 150, "evidence": {"rule": "weather.fog"}}),
                Severity::Minor,
            ),
            (
                json!({"kind": "congestion", "from_m": 20000, "to_m": 26000, "severity": 2, "evidence": {"rule": "congestion.zone"}}),
                Severity::Major,
            ),
            (
                json!({"kind": "device_out_of_plan", "from_m": 1, "to_m": 1, "severity": 4, "evidence": {"rule": "devices.out_of_plan"}}),
                Severity::Major,
            ),
            (
                json!({"kind": "source_clock", "from_m": 1, "to_m": 1, "severity": 2, "evidence": {"rule": "clock.checked"}}),
                Severity::Minor,
            ),
        ];
        for (i, (line, want)) in cases.iter().enumerate() {
            assert_eq!(crate::flow::level(line, &r), *want, "case {i}");
        }
    }

    #[test]
    fn history_buckets_from_station_speeds() {
        let r = road();
        let mut rows = Vec::new();
        for &i in r.stations(Direction::Up) {
            let d = &r.detectors()[i as usize];
            rows.push(zhilu_store::StationBucket {
                bucket_ms: 600_000,
                detector: d.id.clone(),
                volume: 10,
                speed_kmh: Some(if (17_000.0..=31_000.0).contains(&d.stake_m) {
                    30.0
                } else {
                    120.0
                }),
                occupancy_pct: None,
                samples: 1,
            });
        }
        let h = history(&r, 0, 900_000, 300_000, &rows);
        assert_eq!(h.buckets.len(), 1);
        assert_eq!(h.directions, ["up", "down"]);
        assert_eq!(h.links.len(), 6);
        let b = &h.buckets[0];
        assert_eq!(b.at_ms, 600_000);
        // 礼贤→固安 up: 14 km at 30 km/h.
        assert_eq!(b.travel_s[1], Some(1680.0));
        assert_eq!(b.congested_km[0], 14.0);
        // Nothing known downward.
        assert!(b.travel_s[3..].iter().all(Option::is_none));
        assert!(window(0, 10, Some(30)).is_err());
        assert!(window(10, 0, None).is_err());
        assert_eq!(window(0, 3 * 3_600_000, None).ok(), Some(300_000));
    }
}
