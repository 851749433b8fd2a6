//! `write_day` writes replay-contract files; random scenarios fit the road.

mod common;

use zhilu_traffic::{
    CAM_HEADER, OBS_HEADER, POS_HEADER, Scenario, Sim, SimConfig, SimError, WEATHER_HEADER,
    write_day, write_day_with,
};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("zhilu-traffic-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_written_morning_follows_the_contract() {
    let road = common::demo_road();
    let dir = tmp("morning");
    let config = SimConfig {
        tunnel_cameras: true,
        ..SimConfig::default()
    };
    let from = common::at(&road, 5, 50);
    let s = write_day_with(
        &road,
        &Scenario::demo_morning(&road),
        config,
        from,
        0.75,
        3,
        &dir,
    )
    .expect("written");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect(f);
    let obs = read("OBS.csv");
    let mut lines = obs.lines();
    assert_eq!(lines.next(), Some(OBS_HEADER));
    let first = lines.next().expect("a reading");
    assert!(
        first.starts_with("2026-11-23T05:50:20+08:00,D001U,1,20,"),
        "{first}"
    );
    for l in obs.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 7, "{l}");
        let vol: u32 = f[4].parse().expect("volume");
        assert_eq!(f[5].is_empty(), vol == 0, "{l}");
        let occ: f64 = f[6].parse().expect("occupancy");
        assert!((0.0..=100.0).contains(&occ));
    }
    assert_eq!(obs.lines().count() as u64, s.obs_rows + 1);
    // 135 intervals × 346 lanes.
    assert_eq!(s.obs_rows, 135 * u64::from(road.total_lanes()));
    let wx = read("WEATHER.csv");
    assert_eq!(wx.lines().next(), Some(WEATHER_HEADER));
    assert_eq!(s.weather_rows, 45 * 6);
    assert!(
        wx.lines()
            .any(|l| l.contains(",W05,") && l.ends_with(",ice"))
    );
    let pos = read("POS.csv");
    assert_eq!(pos.lines().next(), Some(POS_HEADER));
    for l in pos.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 7, "{l}");
        assert!(["car", "bus", "truck", "hazmat"].contains(&f[2]));
        let (lat, lon): (f64, f64) = (f[3].parse().expect("lat"), f[4].parse().expect("lon"));
        assert!(
            (39.30..39.81).contains(&lat) && (116.04..116.36).contains(&lon),
            "{l}"
        );
        // Map-matchable: the position matches back onto the road.
        let m = road.geometry().locate(lon, lat);
        assert!(m.offset_m.abs() < 10.0, "{l}: {m:?}");
    }
    let cam = read("CAM.csv");
    assert_eq!(cam.lines().next(), Some(CAM_HEADER));
    assert!(
        cam.lines()
            .any(|l| l.contains(",TN1-CAM,stopped_vehicle,up,42000,"))
    );
    let truth = read("TRUTH.jsonl");
    let kinds: Vec<&str> = truth
        .lines()
        .map(|l| l.split('"').nth(3).expect("kind"))
        .collect();
    for k in ["fog", "ice", "hazmat_stopped", "hazmat_restricted_zone"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(!kinds.contains(&"incident"), "07:40 is outside the window");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_cameras_cam_csv_is_just_its_header_and_errors_name_the_file() {
    let road = common::demo_road();
    let dir = tmp("plain");
    let from = common::at(&road, 6, 0);
    let s = write_day(&road, &Scenario::demo_morning(&road), from, 0.5, 3, &dir).expect("written");
    assert_eq!(s.camera_rows, 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("CAM.csv")).expect("CAM.csv"),
        format!("{CAM_HEADER}\n")
    );
    // A file where the directory should be.
    let file = dir.join("OBS.csv");
    let e = write_day(&road, &Scenario::quiet(), from, 0.1, 3, &file).expect_err("not a directory");
    assert!(matches!(e, SimError::Io { .. }), "{e}");
    assert!(e.to_string().contains("OBS.csv"), "{e}");
    assert!(write_day(&road, &Scenario::quiet(), from, 0.0, 3, &dir).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_scenarios_fit_the_road_and_differ() {
    let road = common::demo_road();
    let a = Scenario::random(&road, 1);
    assert_eq!(a, Scenario::random(&road, 1));
    assert_ne!(a, Scenario::random(&road, 2));
    for seed in 0..6 {
        let s = Scenario::random(&road, seed);
        s.validate(&road).expect("valid");
        assert!(!s.episodes.is_empty());
        let from = common::at(&road, 7, 0);
        let mut sim = Sim::new(&road, &s, SimConfig::default(), from, seed).expect("sim");
        let mut n = 0;
        sim.run_until(from + 30 * 60_000, |o| n += o.obs().len());
        assert!(n > 0);
    }
}
