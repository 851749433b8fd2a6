//! Road-book tests: the contract's example loads; every kind of error names
//! the file, the line and the key.

use super::*;

const EXAMPLE: &str = include_str!("example_road.toml");

fn load(text: &str) -> Result<RoadBook, RoadError> {
    RoadBook::from_toml(text, "ROAD.toml")
}

#[test]
fn contract_example_loads() {
    let b = load(EXAMPLE).unwrap();
    assert_eq!(b.id(), "G0401");
    assert_eq!(b.name(), "京雄高速");
    assert_eq!(b.tz_offset_s(), 8 * 3600);
    assert_eq!(b.detectors().len(), 4);
    assert_eq!(b.detectors()[1].stake_m, 14_000.0);
    assert_eq!(b.detectors()[1].lanes, 3, "lanes default to road.lanes");
    assert_eq!(b.total_lanes(), 12);
    assert_eq!(b.detectors()[3].first_lane, 9);
    assert!(b.tunnels()[0].hazmat_forbidden);
    assert_eq!(b.service_areas()[0].chargers, 8);
    assert_eq!(b.detector_index("D014"), Some(1));
    assert_eq!(b.detector_index("W03"), None);
    assert_eq!(b.stations(Direction::Up), &[0, 1, 2]);
    assert_eq!(b.stations(Direction::Down), &[3]);
}

#[test]
fn empty_lists_are_fine() {
    let text = "[road]\nid='x'\ntz='Z'\ndirections=['up']\ngeometry=[[0,1,1],[10,1,1.001]]\nlanes=2\nspeed_limit_kmh=100\n";
    let b = load(text).unwrap();
    assert!(b.detectors().is_empty());
    assert_eq!(b.devices().count(), 0);
}

/// Replaces the first occurrence of `from` in the example with `to`, loads,
/// and returns the error.
fn broken(from: &str, to: &str) -> RoadError {
    assert!(EXAMPLE.contains(from), "fixture lacks {from:?}");
    let text = EXAMPLE.replacen(from, to, 1);
    match load(&text) {
        Ok(_) => panic!("{from:?} → {to:?} should fail"),
        Err(e) => e,
    }
}

fn line_of(needle: &str, text: &str) -> usize {
    line_of_after(needle, text, 0)
}

/// Line (1-based) of the first occurrence of `needle` at or after byte `from`.
fn line_of_after(needle: &str, text: &str, from: usize) -> usize {
    let at = text[from..].find(needle).map(|i| i + from).unwrap();
    text[..at].matches('\n').count() + 1
}

#[test]
fn each_error_names_file_line_and_key() {
    // (replace this, with this, expected key, a line that must be reported, message fragment)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "stake_m = 12500",
            "stak_m = 12500",
            "stak_m",
            "stak_m = 12500",
            "unknown field",
        ),
        (
            "lanes = 3\n\n[[detector]]",
            "lanes = 3\nlane_count = 2\n\n[[detector]]",
            "lane_count",
            "lane_count",
            "unknown field",
        ),
        (
            "hazmat = \"forbidden\"",
            "hazmat = \"sometimes\"",
            "tunnel.hazmat",
            "hazmat = \"sometimes\"",
            "not `allowed`",
        ),
        (
            "id = \"D014\"",
            "id = \"D012\"",
            "detector.id",
            "id = \"D012\"",
            "used twice",
        ),
        (
            "stake_m = \"K14+000\"",
            "stake_m = \"K14+0x0\"",
            "detector.stake_m",
            "K14+0x0",
            "invalid stake",
        ),
        (
            "stake_m = \"K14+000\"",
            "stake_m = \"K34+000\"",
            "detector.stake_m",
            "K34+000",
            "outside the geometry",
        ),
        (
            "stake_m = \"K14+000\"",
            "stake_m = \"K11+000\"",
            "detector.stake_m",
            "stake_m = 16000",
            "stake order",
        ),
        (
            "stake_m = \"K14+000\"",
            "stake_m = 12000",
            "detector.stake_m",
            "stake_m = 12000",
            "same stake",
        ),
        (
            "direction = \"down\"",
            "direction = \"dn\"",
            "detector.direction",
            "direction = \"dn\"",
            "unknown direction",
        ),
        (
            "tz = \"+08:00\"",
            "tz = \"Beijing\"",
            "road.tz",
            "tz = \"Beijing\"",
            "UTC offset",
        ),
        (
            "lanes = 3\nspeed",
            "lanes = 0\nspeed",
            "road.lanes",
            "lanes = 0",
            "out of range",
        ),
        (
            "speed_limit_kmh = 120",
            "speed_limit_kmh = 500",
            "road.speed_limit_kmh",
            "speed_limit_kmh = 500",
            "out of range",
        ),
        (
            "[25000, 116.2000, 39.6400]",
            "[0, 116.2000, 39.6400]",
            "road.geometry",
            "geometry",
            "must increase",
        ),
        (
            "[25000, 116.2000, 39.6400]",
            "[25000, 216.2, 39.64]",
            "road.geometry",
            "geometry",
            "out of range",
        ),
        (
            "to_m = 19000",
            "to_m = 17000",
            "deicer.to_m",
            "to_m = 17000",
            "greater than from_m",
        ),
        (
            "id = \"SA1\"",
            "id = \"\"",
            "service_area.id",
            "id = \"\"",
            "must not be empty",
        ),
        (
            "chargers = 8",
            "chargers = -1",
            "service_area.chargers",
            "chargers = -1",
            "out of range",
        ),
        (
            "directions = [\"up\", \"down\"]\n",
            "directions = [\"up\"]\n",
            "detector.direction",
            "direction = \"down\"",
            "not in road.directions",
        ),
        (
            "speed_limit_kmh = 120",
            "speed_limit_kmh = \"fast\"",
            "speed_limit_kmh = \"fast\"",
            "speed_limit_kmh",
            "invalid type",
        ),
    ];
    for (from, to, key, line_text, fragment) in cases {
        let e = broken(from, to);
        let text = EXAMPLE.replacen(from, to, 1);
        let first_line = line_text.lines().next().unwrap();
        let at = EXAMPLE.find(from).unwrap();
        let at = EXAMPLE[..at].rfind('\n').map_or(0, |i| i + 1);
        let want_line = if *key == "detector.direction" {
            line_of(first_line, &text)
        } else {
            line_of_after(first_line, &text, at)
        };
        assert_eq!(e.file, "ROAD.toml");
        assert!(
            e.key.contains(key) || key.contains(e.key.as_str()) && !e.key.is_empty(),
            "{from:?}: key {:?} should name {key:?} ({e})",
            e.key
        );
        assert_eq!(e.line, want_line, "{from:?}: wrong line in {e}");
        assert!(
            e.message.contains(fragment),
            "{from:?}: message {:?} lacks {fragment:?}",
            e.message
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("ROAD.toml:{want_line}:")),
            "{shown}"
        );
    }
}

#[test]
fn missing_required_key_is_named() {
    let text = EXAMPLE.replacen("stake_m = 12500\n", "", 1);
    let e = load(&text).unwrap_err();
    assert_eq!(e.key, "stake_m", "{e}");
    assert!(e.message.contains("missing field"), "{e}");
    // The table that lacks it starts at the [[weather]] header.
    assert!(
        e.line >= line_of("[[weather]]", &text) && e.line <= line_of("[[weather]]", &text) + 2,
        "{e}"
    );
}

#[test]
fn down_detectors_may_be_listed_in_travel_order() {
    let text = EXAMPLE.replacen(
        "[[weather]]",
        "[[detector]]\nid = \"D010D\"\ndirection = \"down\"\nstake_m = 10000\n\n[[detector]]\nid = \"D008D\"\ndirection = \"down\"\nstake_m = 8000\n\n[[weather]]",
        1,
    );
    let b = load(&text).unwrap();
    let ids: Vec<&str> = b
        .stations(Direction::Down)
        .iter()
        .map(|&i| b.detectors()[i as usize].id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["D012D", "D010D", "D008D"],
        "down stations in travel order"
    );
}

#[test]
fn upstream_lookup() {
    let b = load(EXAMPLE).unwrap();
    let all = [
        DeviceKind::Vsl,
        DeviceKind::Vms,
        DeviceKind::Interchange,
        DeviceKind::FogLights,
        DeviceKind::Detector,
    ];
    let up: Vec<(&str, f64)> = b
        .upstream(Direction::Up, 12_000.0, 5_000.0, &all)
        .iter()
        .map(|u| (b.device_id(u.device), u.distance_m))
        .collect();
    assert_eq!(
        up,
        [
            ("D012", 0.0),
            ("L1", 0.0),
            ("S012U", 500.0),
            ("M010U", 2000.0),
            ("T_GUAN", 3000.0)
        ]
    );
    // Down direction: upstream means higher stakes; up-facing signs are excluded.
    let down: Vec<(&str, f64)> = b
        .upstream(Direction::Down, 12_000.0, 5_000.0, &all)
        .iter()
        .map(|u| (b.device_id(u.device), u.distance_m))
        .collect();
    assert_eq!(down, [("D012D", 0.0), ("L1", 0.0), ("M013D", 1000.0)]);
    // Range limit.
    let near = b.upstream(Direction::Up, 12_000.0, 1_000.0, &[DeviceKind::Vms]);
    assert!(near.is_empty());
}

#[test]
fn stake_lonlat_round_trip_on_the_example() {
    let b = load(EXAMPLE).unwrap();
    let g = b.geometry();
    let (lon, lat) = g.lonlat(12_500.0);
    assert!((lon - 116.26).abs() < 1e-9 && (lat - 39.745).abs() < 1e-9);
    let m = g.locate(lon, lat);
    assert!((m.stake_m - 12_500.0).abs() < 0.5, "{m:?}");
}

#[test]
fn profile_key() {
    assert_eq!(load(EXAMPLE).unwrap().profile(), ControlProfile::National);
    let text = EXAMPLE.replacen("lanes = 3\n", "lanes = 3\nprofile = \"jiangsu\"\n", 1);
    assert_eq!(load(&text).unwrap().profile(), ControlProfile::Jiangsu);
    let text = EXAMPLE.replacen("lanes = 3\n", "lanes = 3\nprofile = \"hebei\"\n", 1);
    let e = load(&text).unwrap_err();
    assert_eq!(e.key, "road.profile");
    assert!(e.message.contains("unknown profile"), "{e}");
}

#[test]
fn exit_tables() {
    assert!(load(EXAMPLE).unwrap().exits().is_empty(), "optional");
    let exit = "[[exit]]\nid = \"X1\"\nname = \"南出口\"\nstake_m = \"K13+200\"\ndirections = [\"up\", \"up\"]\n\n[[tunnel]]";
    let text = EXAMPLE.replacen("[[tunnel]]", exit, 1);
    let b = load(&text).unwrap();
    assert_eq!(b.exits().len(), 1);
    let x = &b.exits()[0];
    assert_eq!(
        (x.id.as_str(), x.name.as_str(), x.stake_m),
        ("X1", "南出口", 13_200.0)
    );
    assert_eq!(
        x.directions,
        vec![Direction::Up],
        "a direction named twice counts once"
    );
    assert_eq!(
        b.devices().count(),
        load(EXAMPLE).unwrap().devices().count(),
        "not a device"
    );
    // Each mistake names its key and line.
    let cases: &[(&str, &str, &str)] = &[
        ("stake_m = \"K13+200\"", "stake = 13200", "stake"),
        ("stake_m = \"K13+200\"", "stake_m = 999999", "exit.stake_m"),
        (
            "directions = [\"up\", \"up\"]",
            "directions = [\"north\"]",
            "exit.directions",
        ),
        ("id = \"X1\"", "id = \" \"", "exit.id"),
    ];
    for (from, to, key) in cases {
        let bad = text.replacen(from, to, 1);
        let e = load(&bad).unwrap_err();
        assert_eq!(e.key, *key, "{to}: {e}");
        let at = bad.find("[[exit]]").unwrap();
        assert_eq!(e.line, line_of_after(to, &bad, at), "{to}: {e}");
    }
    let twice = text.replacen(
        "[[tunnel]]",
        "[[exit]]\nid = \"X1\"\nstake_m = 13500\ndirections = [\"up\"]\n\n[[tunnel]]",
        1,
    );
    let e = load(&twice).unwrap_err();
    assert_eq!(e.key, "exit.id");
    assert!(e.message.contains("twice"), "{e}");
}

/// The service area's extent and carriageways (zhilu extension): the stake
/// alone means ±250 m on every carriageway; `from_m`/`to_m` come together
/// and contain the stake; `directions` names carriageways of the road.
#[test]
fn service_area_extent() {
    let b = load(EXAMPLE).unwrap();
    let sa = &b.service_areas()[0];
    assert_eq!((sa.from_m, sa.to_m), (14_750.0, 15_250.0));
    assert_eq!(sa.directions, [Direction::Up, Direction::Down]);
    assert!(sa.covers(Some(Direction::Down), 15_240.0));
    assert!(!sa.covers(Some(Direction::Up), 15_260.0));

    let with = |keys: &str| EXAMPLE.replacen("chargers = 8\n", &format!("chargers = 8\n{keys}"), 1);
    let b = load(&with(
        "from_m = \"K14+900\"\nto_m = 15600\ndirections = [\"up\"]\n",
    ))
    .unwrap();
    let sa = &b.service_areas()[0];
    assert_eq!((sa.from_m, sa.to_m), (14_900.0, 15_600.0));
    assert!(sa.covers(Some(Direction::Up), 15_550.0));
    assert!(
        !sa.covers(Some(Direction::Down), 15_550.0),
        "serves up only"
    );
    assert!(sa.covers(None, 15_550.0), "unknown carriageway: any");

    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "from_m = 14900\n",
            "service_area.to_m",
            "from_m = 14900",
            "both or neither",
        ),
        (
            "to_m = 15600\n",
            "service_area.from_m",
            "to_m = 15600",
            "both or neither",
        ),
        (
            "from_m = 15100\nto_m = 15600\n",
            "service_area.stake_m",
            "stake_m = 15000",
            "outside the extent",
        ),
        (
            "from_m = 15600\nto_m = 14900\n",
            "service_area.to_m",
            "to_m = 14900",
            "greater than from_m",
        ),
        (
            "directions = [\"north\"]\n",
            "service_area.directions",
            "directions = [\"north\"]",
            "unknown direction",
        ),
        (
            "directions = []\n",
            "service_area.directions",
            "directions = []",
            "at least one",
        ),
        (
            "side = \"left\"\n",
            "side",
            "side = \"left\"",
            "unknown field",
        ),
    ];
    for (keys, key, line_text, fragment) in cases {
        let text = with(keys);
        let e = load(&text).unwrap_err();
        let sa_at = text.find("[[service_area]]").unwrap();
        assert_eq!(e.key, *key, "{keys:?}: {e}");
        assert_eq!(
            e.line,
            line_of_after(line_text, &text, sa_at),
            "{keys:?}: {e}"
        );
        assert!(e.message.contains(fragment), "{keys:?}: {e}");
    }
}
