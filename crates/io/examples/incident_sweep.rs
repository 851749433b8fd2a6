//! Tuning harness for incident detection (not part of the platform): replays
//! scenario folders exactly as `zhilu replay` does (`replay_files`: the same
//! readers and `Brain`), with `IncidentConfig` fields overridden from the
//! environment, and writes `DIR/OUTNAME/{EVENTS,ACTIONS}.jsonl` for
//! `scenarios/table.py`. It builds in seconds, where the CLI takes minutes.
//!
//! `cargo run --release -p zhilu-io --example incident_sweep -- OUTNAME [--cam] [--pos] DIR...`
//! reads `OBS.csv` (and `WEATHER.csv` when there), `CAM.csv` with `--cam`
//! and `POS.csv` with `--pos`. Overrides: `ZI_<field>=value` (see
//! `apply_env`), e.g. `ZI_lane_cusum_h=10`. Score with
//! `scenarios/table.py --events OUTNAME/EVENTS.jsonl DIR...`.

use std::path::Path;

use zhilu_core::BrainConfig;
use zhilu_core::incident::IncidentConfig;
use zhilu_io::{ReplayPaths, replay_files};

fn apply_env(c: &mut IncidentConfig) -> Result<(), String> {
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
        limit_margin_kmh,
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
        probe_dip_kmh,
        probe_dip_below_kmh,
        probe_dip_cruise_kmh,
        probe_dip_recover_kmh,
        probe_dip_max_vph_lane,
        probe_thin_merge_before_m,
        limit_memory_s,
        cause_starve_sigma,
        lane_settle_s,
        mask_flow_ratio,
        learned_jam_s,
        jam_discharge_vph_lane,
        wave_starve_ratio,
        strong_starve_ratio,
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
