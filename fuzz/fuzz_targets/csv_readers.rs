//! Any bytes as OBS, WEATHER, POS and CAM files: rows or counted bad rows,
//! never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhilu_io::{CameraReader, ObsReader, PositionReader, WeatherReader};

const ROAD: &str = r#"
[road]
id = "F"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.0, 39.0], [10000, 116.0, 39.09]]
lanes = 3
speed_limit_kmh = 120

[[detector]]
id = "D1"
direction = "up"
stake_m = 1000

[[weather]]
id = "W1"
stake_m = 2000
"#;

fuzz_target!(|data: &[u8]| {
    let road = zhilu_road::RoadBook::from_toml(ROAD, "ROAD.toml").unwrap();
    // Prefix valid headers so the fuzzer reaches the row parsers quickly.
    let obs = [b"time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n".as_slice(), data].concat();
    if let Ok(mut r) = ObsReader::new(obs.as_slice(), "OBS.csv", &road) {
        while let Ok(Some(_)) = r.next_row() {}
    }
    let w = [b"time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state\n".as_slice(), data].concat();
    if let Ok(mut r) = WeatherReader::new(w.as_slice(), "WEATHER.csv", &road) {
        while let Ok(Some(_)) = r.next_row() {}
    }
    let p = [b"time,vehicle,class,lat,lon,speed_kmh,heading_deg\n".as_slice(), data].concat();
    if let Ok(mut r) = PositionReader::new(p.as_slice(), "POS.csv") {
        while let Ok(Some(_)) = r.next_row() {}
    }
    let c = [b"time,camera,kind,direction,stake_m,lane,confidence\n".as_slice(), data].concat();
    if let Ok(mut r) = CameraReader::new(c.as_slice(), "CAM.csv", &road) {
        while let Ok(Some(_)) = r.next_row() {}
    }
    // And raw, headers included.
    if let Ok(mut r) = ObsReader::new(data, "OBS.csv", &road) {
        while let Ok(Some(_)) = r.next_row() {}
    }
});
