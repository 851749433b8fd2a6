//! Tuning harness for incident detection (not part of the platform): replays
//! the loop data (and optionally camera events) of scenario folders through
//! `Brain` and writes each folder's incident events as contract JSON lines,
//! for `scenarios/score.py`. Only the columns the detector needs are read.
//!
//! `cargo run --release -p zhilu-core --example incident_sweep -- OUTNAME [--cam] [--pos] DIR...`
//! writes `DIR/OUTNAME/EVENTS.jsonl` (incident events only, the same as
//! `zhilu replay` writes for them; it builds in seconds, where the CLI
//! takes minutes). Environment overrides of `IncidentConfig` fields:
//! `ZI_<FIELD>=value` (see `apply_env`), e.g. `ZI_lane_cusum_h=10`. Score with
//! `scenarios/table.py --events OUTNAME/EVENTS.jsonl DIR...`.

use std::fs;
use std::sync::Arc;

use zhilu_core::road::{Direction, RoadBook};
use zhilu_core::{
    Brain, BrainConfig, CameraKind, CameraObs, EventKind, Obs, PositionObs, VehicleClass,
};

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// "2026-11-23T06:15:30+08:00" → epoch ms.
fn parse_ts(s: &str) -> Option<i64> {
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0, 4)?,
        n(5, 7)?,
        n(8, 10)?,
        n(11, 13)?,
        n(14, 16)?,
        n(17, 19)?,
    );
    let rest = s.get(19..)?;
    let off = if rest == "Z" {
        0
    } else {
        let sign = if rest.starts_with('-') { -1 } else { 1 };
        sign * (rest.get(1..3)?.parse::<i64>().ok()? * 3600
            + rest.get(4..6)?.parse::<i64>().ok()? * 60)
    };
    Some(((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) - off) * 1000)
}

fn iso(ms: i64, off_s: i64) -> String {
    let t = ms.div_euclid(1000) + off_s;
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        if off_s < 0 { '-' } else { '+' },
        off_s.abs() / 3600,
        off_s.abs() / 60 % 60
    )
}

fn apply_env(c: &mut zhilu_core::incident::IncidentConfig) -> Result<(), String> {
    macro_rules! f {
        ($($name:ident),*) => {$(
            if let Ok(v) = std::env::var(concat!("ZI_", stringify!($name))) {
                c.$name = v
                    .parse()
                    .map_err(|_| format!("ZI_{}: cannot parse {v:?}", stringify!($name)))?;
            }
        )*};
    }
    f!(
        occ_diff_pct,
        occ_rel_diff,
        up_slow_kmh,
        down_free_kmh,
        starve_ratio,
        persist_ticks,
        persist_s,
        clear_ticks,
        lane_share_ratio,
        lane_total_ratio,
        lane_min_flow_vph,
        wave_memory_s,
        holdoff_s,
        use_imbalance,
        imbalance_share,
        imbalance_min_vph,
        imbalance_min_flow_vph,
        lane_cusum_ratio,
        lane_cusum_h,
        lane_cusum_h_probed,
        probe_density_per_km,
        lane_min_count,
        lane_normal_s,
        lane_window_s,
        use_starvation,
        starve_fast_ratio,
        starve_up_hold,
        starve_min_flow_vph,
        starve_persist_s,
        starve_sigma,
        lane_llr_cap,
        use_probes,
        probe_slow_kmh,
        probe_vehicles,
        probe_moved_on_kmh,
        probe_merge_vehicles,
        probe_merge_before_m,
        probe_merge_starve,
        probe_window_s,
        probe_radius_m,
        probe_service_area_m,
        probe_lateral_margin_m
    );
    Ok(())
}

enum Row {
    O(Obs),
    C(CameraObs),
    P(PositionObs),
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first().cloned() else {
        return Err("usage: incident_sweep OUTNAME [--cam] [--pos] DIR...".into());
    };
    let cam = args.iter().any(|a| a == "--cam");
    let pos = args.iter().any(|a| a == "--pos");
    let mut cfg = BrainConfig::default();
    apply_env(&mut cfg.incident)?;
    for dir in args[1..].iter().filter(|a| !a.starts_with("--")) {
        let road_text = fs::read_to_string(format!("{dir}/ROAD.toml"))
            .map_err(|e| format!("{dir}/ROAD.toml: {e}"))?;
        let road = Arc::new(
            RoadBook::from_toml(&road_text, "ROAD.toml").map_err(|e| format!("{dir}: {e}"))?,
        );
        let mut rows: Vec<(i64, Row)> = Vec::new();
        let mut off_s = 8 * 3600;
        let obs = fs::read_to_string(format!("{dir}/OBS.csv"))
            .map_err(|e| format!("{dir}/OBS.csv: {e}"))?;
        for line in obs.lines().skip(1) {
            let c: Vec<&str> = line.split(',').collect();
            if c.len() < 7 {
                continue;
            }
            let Some(ts) = parse_ts(c[0]) else { continue };
            if let Some(o) = c[0].get(19..)
                && o.len() == 6
            {
                off_s = (if o.starts_with('-') { -1 } else { 1 })
                    * (o[1..3].parse::<i64>().unwrap_or(8) * 3600
                        + o[4..6].parse::<i64>().unwrap_or(0) * 60);
            }
            let Some(det) = road.detector_index(c[1]) else {
                continue;
            };
            let speed = c[5].parse::<f32>().ok();
            rows.push((
                ts,
                Row::O(Obs {
                    ts_ms: ts,
                    detector: det,
                    lane: c[2].parse().unwrap_or(1),
                    interval_s: c[3].parse().unwrap_or(30),
                    volume: c[4].parse().unwrap_or(0),
                    speed_kmh: speed,
                    occupancy_pct: c[6].parse().unwrap_or(0.0),
                    valid: !c[4].is_empty() && !c[6].is_empty(),
                }),
            ));
        }
        if cam && let Ok(text) = fs::read_to_string(format!("{dir}/CAM.csv")) {
            for line in text.lines().skip(1) {
                let c: Vec<&str> = line.split(',').collect();
                if c.len() < 7 {
                    continue;
                }
                let (Some(ts), Some(kind), Some(direction)) = (
                    parse_ts(c[0]),
                    CameraKind::parse(c[2]),
                    Direction::parse(c[3]),
                ) else {
                    continue;
                };
                rows.push((
                    ts,
                    Row::C(CameraObs {
                        ts_ms: ts,
                        camera: 0,
                        kind,
                        direction,
                        stake_m: c[4].parse().unwrap_or(0.0),
                        lane: c[5].parse().ok(),
                        confidence: c[6].parse().unwrap_or(0.0),
                    }),
                ));
            }
        }
        if pos && let Ok(text) = fs::read_to_string(format!("{dir}/POS.csv")) {
            let mut plates: std::collections::HashMap<String, u32> = Default::default();
            for line in text.lines().skip(1) {
                let c: Vec<&str> = line.split(',').collect();
                if c.len() < 7 {
                    continue;
                }
                let Some(ts) = parse_ts(c[0]) else { continue };
                let n = plates.len() as u32;
                let vehicle = *plates.entry(c[1].to_string()).or_insert(n);
                rows.push((
                    ts,
                    Row::P(PositionObs {
                        ts_ms: ts,
                        vehicle,
                        class: if c[2] == "hazmat" {
                            VehicleClass::Hazmat
                        } else {
                            VehicleClass::Truck
                        },
                        lat: c[3].parse().unwrap_or(0.0),
                        lon: c[4].parse().unwrap_or(0.0),
                        speed_kmh: c[5].parse().unwrap_or(0.0),
                        heading_deg: c[6].parse().unwrap_or(0.0),
                    }),
                ));
            }
        }
        rows.sort_by_key(|r| r.0);
        let mut brain = Brain::new(road.clone(), cfg.clone());
        let mut events = Vec::new();
        for (_, r) in &rows {
            match r {
                Row::O(o) => {
                    brain.observe(o);
                }
                Row::C(c) => brain.camera(c),
                Row::P(p) => brain.position(p),
            }
            if brain.has_output() {
                events.extend(brain.drain().events);
            }
        }
        brain.finish();
        events.extend(brain.drain().events);
        let mut out = String::new();
        for e in events.iter().filter(|e| e.kind == EventKind::Incident) {
            out += &format!(
                "{{\"id\":\"E{}\",\"kind\":\"incident\",\"direction\":\"{}\",\"from_m\":{:.0},\"to_m\":{:.0},\"start\":\"{}\",\"detected_at\":\"{}\",\"rule\":\"{}\"}}\n",
                e.seq,
                e.direction.map(|d| d.as_str()).unwrap_or("up"),
                e.from_m,
                e.to_m,
                iso(e.start_ms, off_s),
                iso(e.detected_ms, off_s),
                e.rule
            );
        }
        fs::create_dir_all(format!("{dir}/{name}")).map_err(|e| format!("{dir}/{name}: {e}"))?;
        fs::write(format!("{dir}/{name}/EVENTS.jsonl"), out)
            .map_err(|e| format!("{dir}/{name}: {e}"))?;
    }
    Ok(())
}
