//! Tuning harness for incident detection (not part of the platform): replays
//! scenario folders exactly as `zhilu replay` does (`replay_files`: the same
//! readers and `Brain`), with `IncidentConfig` fields overridden from the
//! environment, and writes `DIR/OUTNAME/{EVENTS,ACTIONS}.jsonl` for
//! `scenarios/table.py`. It builds in seconds, where the CLI takes minutes.
//!
//! `cargo run --release -p zhilu-io --example incident_sweep -- OUTNAME [--cam] [--pos] DIR...`
//! reads `OBS.csv` (and `WEATHER.csv` when there), `CAM.csv` with `--cam`
//! and `POS.csv` with `--pos`. Overrides: `ZI_<group>_<field>=value` (see
//! `apply_env`), e.g. `ZI_lane_cusum_h=10` or `ZI_queue_enabled=false` to
//! measure the other tests without the queue test. Score with
//! `scenarios/table.py --events OUTNAME/EVENTS.jsonl DIR...`.

use std::path::Path;

use zhilu_core::BrainConfig;
use zhilu_core::incident::IncidentConfig;
use zhilu_io::{ReplayPaths, replay_files};

fn apply_env(c: &mut IncidentConfig) -> Result<(), String> {
    // `ZI_<group>_<field>`: e.g. `ZI_lane_cusum_h` sets `c.lane.cusum_h`.
    macro_rules! f {
        ($($group:ident . $name:ident),* $(,)?) => {$(
            let key = concat!("ZI_", stringify!($group), "_", stringify!($name));
            if let Ok(v) = std::env::var(key) {
                c.$group.$name = v.parse().map_err(|_| format!("{key}: cannot parse {v:?}"))?;
            }
        )*};
    }
    f!(
        normal.free_kmh,
        normal.congested_kmh,
        normal.congested_occ_pct,
        normal.normal_s,
        normal.warmup_ticks,
        normal.warmup_s,
        limits.margin_kmh,
        limits.memory_s,
        queue.enabled,
        queue.occ_diff_pct,
        queue.occ_rel_diff,
        queue.speed_drop_kmh,
        queue.drop_occ_diff_pct,
        queue.up_slow_kmh,
        queue.standing_occ_pct,
        queue.cause_starve_ratio,
        queue.cause_sigma,
        queue.strong_starve_ratio,
        wave.enabled,
        wave.memory_s,
        wave.starve_ratio,
        starvation.enabled,
        starvation.fast_ratio,
        starvation.imbalance_share,
        starvation.up_hold,
        starvation.min_flow_vph,
        starvation.persist_s,
        starvation.sigma,
        starvation.up_queue_memory_s,
        starvation.dead_ticks,
        imbalance.enabled,
        imbalance.share,
        imbalance.min_vph,
        imbalance.min_flow_vph,
        slowed.enabled,
        slowed.deficit_kmh,
        slowed.max_occ_pct,
        slowed.below_within_kmh,
        slowed.min_flow_vph,
        lane.enabled,
        lane.share_ratio,
        lane.total_ratio,
        lane.min_flow_vph,
        lane.cusum_ratio,
        lane.cusum_h,
        lane.cusum_h_probed,
        lane.probe_density_per_km,
        lane.min_count,
        lane.normal_s,
        lane.window_s,
        lane.llr_cap,
        lane.min_share,
        lane.calm_fraction,
        lane.place_fraction,
        lane.settle_s,
        lane.first_station,
        stopped.enabled,
        stopped.occ_pct,
        stopped.persist_s,
        stopped.slower_kmh,
        stopped.moving_kmh,
        stopped.emptied,
        stopped.emptied_min_count,
        stopped.emptied_silent_s,
        stopped.emptied_starve_ratio,
        stopped.emptied_up_hold,
        stopped.emptied_free_kmh,
        stopped.last_station,
        stopped.starved_below,
        stopped.own_persistence,
        persist.ticks,
        persist.seconds,
        clearing.calm_s,
        clearing.calm_min_ticks,
        clearing.starved_ratio,
        clearing.starved_sigma,
        clearing.lane_fraction,
        clearing.zone_up_max,
        clearing.slowed_reach_m,
        clearing.slowed_calm_s,
        clearing.merge_covered,
        clearing.lane_ahead_m,
        limits.plans_are_causes,
        limits.own_plan_m,
        clearing.mask_flow_ratio,
        clearing.holdoff_s,
        clearing.learned_jam_s,
        clearing.jam_discharge_vph_lane,
        clearing.spot_quiet_s,
        probes.enabled,
        probes.slow_kmh,
        probes.calm_s,
        probes.vehicles,
        probes.moved_on_kmh,
        probes.merge_vehicles,
        probes.merge_before_m,
        probes.merge_starve,
        probes.window_s,
        probes.radius_m,
        probes.service_area_m,
        probes.lateral_margin_m,
        probes.dip_kmh,
        probes.dip_below_kmh,
        probes.dip_cruise_kmh,
        probes.dip_recover_kmh,
        probes.dip_max_vph_lane,
        probes.thin_merge_before_m,
        cameras.enabled,
        cameras.confidence,
        cameras.confirm_radius_m,
    );
    Ok(())
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
        let dir = Path::new(dir);
        let out = dir.join(&name);
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let present = |file: &str, wanted: bool| {
            let p = dir.join(file);
            (wanted && p.exists()).then_some(p)
        };
        let paths = ReplayPaths {
            road: dir.join("ROAD.toml"),
            observations: dir.join("OBS.csv"),
            weather: present("WEATHER.csv", true),
            positions: present("POS.csv", pos),
            camera_events: present("CAM.csv", cam),
            events_out: out.join("EVENTS.jsonl"),
            actions_out: out.join("ACTIONS.jsonl"),
            state_out: None,
        };
        replay_files(&paths, cfg.clone()).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}
