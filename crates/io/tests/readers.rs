//! Tests of the streaming CSV readers (OBS, WEATHER, POS, CAM) against the
//! replay contract v1: bad-row accounting by kind, line and column; header
//! handling; tolerance of extra/reordered columns; no panics on any input;
//! constant-memory streaming.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::rc::Rc;

use proptest::prelude::*;
use zhilu_core::{CameraKind, Obs, SurfaceState, VehicleClass};
use zhilu_io::badrows::{KEEP_FIRST, Place};
use zhilu_io::{
    BadRowKind, BadRows, CameraReader, IoError, ObsReader, PositionReader, Row, WeatherReader,
    parse_time,
};
use zhilu_road::{Direction, RoadBook};

// ---------------------------------------------------------------- fixtures

/// A small road: D1 has 3 lanes, D2 has 2; two weather stations; 0–25 km.
const ROAD: &str = r#"
[road]
id = "T1"
name = "test road"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.3200, 39.8500], [25000, 116.2000, 39.6400]]
lanes = 3
speed_limit_kmh = 120

[[detector]]
id = "D1"
direction = "up"
stake_m = 12000
lanes = 3

[[detector]]
id = "D2"
direction = "up"
stake_m = 14000
lanes = 2

[[weather]]
id = "W1"
stake_m = 12500

[[weather]]
id = "W2"
stake_m = 20000
"#;

const OBS_H: &str = "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct";
const WEATHER_H: &str =
    "time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state";
const POS_H: &str = "time,vehicle,class,lat,lon,speed_kmh,heading_deg";
const CAM_H: &str = "time,camera,kind,direction,stake_m,lane,confidence";

/// 2026-11-23T06:00:00+08:00 in epoch seconds.
const BASE_S: i64 = 1_795_384_800;

fn road() -> RoadBook {
    RoadBook::from_toml(ROAD, "ROAD.toml").expect("test road parses")
}

/// RFC 3339 text for BASE + `secs`, in +08:00.
fn t(secs: i64) -> String {
    zhilu_io::jsonl::format_time((BASE_S + secs) * 1000, 8 * 3600)
}

fn ms(text: &str) -> i64 {
    parse_time(text.as_bytes()).expect("valid test time")
}

/// Header line + data lines, `\n`-terminated.
fn file(header: &str, rows: &[&str]) -> String {
    let mut s = format!("{header}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Pulls every row out of a reader (in-memory input never gives an I/O error).
fn drain<T>(mut next: impl FnMut() -> Result<Option<Row<T>>, IoError>) -> Vec<Row<T>> {
    let mut out = Vec::new();
    while let Some(r) = next().expect("no fatal error on in-memory input") {
        out.push(r);
    }
    out
}

fn read_obs(csv: &str) -> (Vec<Row<Obs>>, BadRows, u64) {
    let road = road();
    let mut r = ObsReader::new(csv.as_bytes(), "OBS.csv", &road).expect("header ok");
    let rows = drain(|| r.next_row());
    (rows, r.bad().clone(), r.rows())
}

/// Expected bad row: kind, line, column.
type Bad = Option<(BadRowKind, u64, &'static str)>;

/// Asserts a log holds exactly the one expected bad row (or none).
fn check_bad(case: &str, bad: &BadRows, expect: Bad) {
    match expect {
        None => assert_eq!(bad.total(), 0, "{case}: unexpected bad rows: {bad}"),
        Some((kind, line, col)) => {
            assert_eq!(bad.total(), 1, "{case}: want one bad row: {bad}");
            assert_eq!(bad.count(kind), 1, "{case}: want {kind:?}: {bad}");
            let first: Vec<Place> = bad.first(kind).collect();
            assert_eq!(
                first,
                vec![Place {
                    line,
                    column: Some(col)
                }],
                "{case}: place"
            );
        }
    }
}

// ---------------------------------------------------------------- OBS.csv

/// One table row: data lines (the header is line 1, so data start at line
/// 2), the bad row expected, and the rows returned as (line, valid).
struct ObsCase {
    name: &'static str,
    rows: &'static [&'static str],
    bad: Bad,
    out: &'static [(u64, bool)],
}

use BadRowKind::*;

const OBS_CASES: &[ObsCase] = &[
    // ---- good rows
    ObsCase {
        name: "plain valid row",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,80.5,5"],
        bad: None,
        out: &[(2, true)],
    },
    ObsCase {
        name: "speed empty with volume 0 is fine",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,0,,0"],
        bad: None,
        out: &[(2, true)],
    },
    ObsCase {
        name: "boundaries: speed 250, occupancy 100, lane 3, interval 3600",
        rows: &["2026-11-23T06:00:20+08:00,D1,3,3600,0,250,100"],
        bad: None,
        out: &[(2, true)],
    },
    ObsCase {
        name: "Z offset and spaces around fields are accepted",
        rows: &[" 2026-11-22T22:00:20Z , D2 , 2 , 20 , 7 , 99 , 12.5 "],
        bad: None,
        out: &[(2, true)],
    },
    // ---- real lane and time, garbage values: returned with valid = false
    ObsCase {
        name: "speed empty with volume > 0",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,,5"],
        bad: Some((MissingField, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "speed > 250",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,250.1,5"],
        bad: Some((OutOfRange, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "negative speed",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,-1,5"],
        bad: Some((OutOfRange, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "speed not a number",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,fast,5"],
        bad: Some((BadNumber, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "speed NaN is not a number",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,NaN,5"],
        bad: Some((BadNumber, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "occupancy > 100",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,80,100.5"],
        bad: Some((OutOfRange, 2, "occupancy_pct")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "occupancy empty",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,80,"],
        bad: Some((MissingField, 2, "occupancy_pct")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "occupancy not a number",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,80,x"],
        bad: Some((BadNumber, 2, "occupancy_pct")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "negative volume",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,-1,80,5"],
        bad: Some((OutOfRange, 2, "volume")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "volume above u16",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,70000,80,5"],
        bad: Some((OutOfRange, 2, "volume")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "fractional volume",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3.5,80,5"],
        bad: Some((BadNumber, 2, "volume")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "volume empty",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,,80,5"],
        bad: Some((MissingField, 2, "volume")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "several bad values in one row count once (the first)",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,-1,300,200"],
        bad: Some((OutOfRange, 2, "volume")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "short row (no speed, no occupancy)",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3"],
        bad: Some((MissingField, 2, "speed_kmh")),
        out: &[(2, false)],
    },
    ObsCase {
        name: "short row with volume 0 misses occupancy",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,0"],
        bad: Some((MissingField, 2, "occupancy_pct")),
        out: &[(2, false)],
    },
    // ---- no lane or time to attribute the row to: skipped
    ObsCase {
        name: "time empty",
        rows: &[",D1,1,20,3,80,5"],
        bad: Some((MissingField, 2, "time")),
        out: &[],
    },
    ObsCase {
        name: "time without offset",
        rows: &["2026-11-23T06:00:20,D1,1,20,3,80,5"],
        bad: Some((BadTime, 2, "time")),
        out: &[],
    },
    ObsCase {
        name: "time with a space separator",
        rows: &["2026-11-23 06:00:20+08:00,D1,1,20,3,80,5"],
        bad: Some((BadTime, 2, "time")),
        out: &[],
    },
    ObsCase {
        name: "impossible date",
        rows: &["2026-02-30T06:00:20+08:00,D1,1,20,3,80,5"],
        bad: Some((BadTime, 2, "time")),
        out: &[],
    },
    ObsCase {
        name: "detector empty",
        rows: &["2026-11-23T06:00:20+08:00,,1,20,3,80,5"],
        bad: Some((MissingField, 2, "detector")),
        out: &[],
    },
    ObsCase {
        name: "unknown detector",
        rows: &["2026-11-23T06:00:20+08:00,D9,1,20,3,80,5"],
        bad: Some((UnknownDevice, 2, "detector")),
        out: &[],
    },
    ObsCase {
        name: "detector ids are case-sensitive",
        rows: &["2026-11-23T06:00:20+08:00,d1,1,20,3,80,5"],
        bad: Some((UnknownDevice, 2, "detector")),
        out: &[],
    },
    ObsCase {
        name: "short row (time only)",
        rows: &["2026-11-23T06:00:20+08:00,D1"],
        bad: Some((MissingField, 2, "lane")),
        out: &[],
    },
    ObsCase {
        name: "lane 0",
        rows: &["2026-11-23T06:00:20+08:00,D1,0,20,3,80,5"],
        bad: Some((UnknownLane, 2, "lane")),
        out: &[],
    },
    ObsCase {
        name: "lane beyond the detector's lanes",
        rows: &["2026-11-23T06:00:20+08:00,D1,4,20,3,80,5"],
        bad: Some((UnknownLane, 2, "lane")),
        out: &[],
    },
    ObsCase {
        name: "lane count is per detector (D2 has 2), also after a cached D1 row",
        rows: &[
            "2026-11-23T06:00:20+08:00,D1,3,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D2,3,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D1,3,20,3,80,5",
        ],
        bad: Some((UnknownLane, 3, "lane")),
        out: &[(2, true), (4, true)],
    },
    ObsCase {
        name: "lane not a number",
        rows: &["2026-11-23T06:00:20+08:00,D1,one,20,3,80,5"],
        bad: Some((BadNumber, 2, "lane")),
        out: &[],
    },
    ObsCase {
        name: "lane empty",
        rows: &["2026-11-23T06:00:20+08:00,D1,,20,3,80,5"],
        bad: Some((MissingField, 2, "lane")),
        out: &[],
    },
    ObsCase {
        name: "interval 0",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,0,3,80,5"],
        bad: Some((OutOfRange, 2, "interval_s")),
        out: &[],
    },
    ObsCase {
        name: "interval over an hour",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,3601,3,80,5"],
        bad: Some((OutOfRange, 2, "interval_s")),
        out: &[],
    },
    ObsCase {
        name: "interval not a number",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20s,3,80,5"],
        bad: Some((BadNumber, 2, "interval_s")),
        out: &[],
    },
    ObsCase {
        name: "interval empty",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,,3,80,5"],
        bad: Some((MissingField, 2, "interval_s")),
        out: &[],
    },
    // ---- order in time
    ObsCase {
        name: "older than the max by exactly its interval is accepted, by more is not",
        rows: &[
            "2026-11-23T06:01:00+08:00,D1,1,20,3,80,5",
            "2026-11-23T06:00:40+08:00,D1,2,20,3,80,5", // 20 s older: ok
            "2026-11-23T06:00:39+08:00,D1,3,20,3,80,5", // 21 s older: backwards
            "2026-11-23T06:00:00+08:00,D2,1,60,3,80,5", // 60 s older, interval 60: ok
        ],
        bad: Some((TimeBackwards, 4, "time")),
        out: &[(2, true), (3, true), (5, true)],
    },
    ObsCase {
        name: "an hour-old row is skipped and the stream goes on",
        rows: &[
            "2026-11-23T06:01:00+08:00,D1,1,20,3,80,5",
            "2026-11-23T05:00:00+08:00,D1,1,20,3,80,5",
            "2026-11-23T06:01:20+08:00,D1,1,20,3,80,5",
        ],
        bad: Some((TimeBackwards, 3, "time")),
        out: &[(2, true), (4, true)],
    },
    // ---- CSV quirks
    ObsCase {
        name: "fields wrapped in double quotes are unwrapped",
        rows: &["\"2026-11-23T06:00:20+08:00\",\"D1\",1,20,3,\"80\",5"],
        bad: None,
        out: &[(2, true)],
    },
    ObsCase {
        name: "a stray quote is field content (bad number), not Malformed",
        rows: &["2026-11-23T06:00:20+08:00,D1,1,20,3,8\"0,5"],
        bad: Some((BadNumber, 2, "speed_kmh")),
        out: &[(2, false)],
    },
];

#[test]
fn obs_table() {
    let mut kinds_seen = BTreeSet::new();
    for case in OBS_CASES {
        let (rows, bad, _) = read_obs(&file(OBS_H, case.rows));
        check_bad(case.name, &bad, case.bad);
        let got: Vec<(u64, bool)> = rows.iter().map(|r| (r.line, r.value.valid)).collect();
        assert_eq!(got, case.out, "{}: rows returned", case.name);
        kinds_seen.extend(BadRowKind::ALL.into_iter().filter(|&k| bad.count(k) > 0));
    }
    // Every kind the ObsReader can produce is covered by the table. Malformed
    // cannot happen: the CSV layer is flexible and byte-based, so only I/O
    // errors fail a record, and those are fatal (see `obs_io_error_is_fatal`).
    // Duplicate/Stale are added later by the pipeline, BadValue is not used.
    let want: BTreeSet<_> = [
        MissingField,
        BadNumber,
        OutOfRange,
        BadTime,
        UnknownDevice,
        UnknownLane,
        TimeBackwards,
    ]
    .into();
    assert_eq!(kinds_seen, want);
}

#[test]
fn obs_values_are_parsed() {
    let (rows, bad, n) = read_obs(&file(
        OBS_H,
        &[
            "2026-11-23T06:00:20+08:00,D1,2,20,12,80.5,5.25",
            "2026-11-23T06:00:20+08:00,D2,1,30,0,,0",
            "2026-11-23T06:00:40+08:00,D1,3,20,3,,5",
        ],
    ));
    assert_eq!(bad.total(), 1);
    assert_eq!(n, 3);
    let ts = 1_795_384_820_000;
    assert_eq!(
        rows[0],
        Row {
            value: Obs {
                ts_ms: ts,
                detector: 0,
                lane: 2,
                interval_s: 20,
                volume: 12,
                speed_kmh: Some(80.5),
                occupancy_pct: 5.25,
                valid: true,
            },
            line: 2,
        }
    );
    // Detector index follows the road book; no vehicles → no speed.
    let o = rows[1].value;
    assert_eq!((o.detector, o.lane, o.interval_s), (1, 1, 30));
    assert_eq!(
        (o.volume, o.speed_kmh, o.occupancy_pct, o.valid),
        (0, None, 0.0, true)
    );
    // An invalid row still carries its lane and time (the lane talked garbage).
    let o = rows[2].value;
    assert_eq!(
        (o.ts_ms, o.detector, o.lane, o.valid),
        (ts + 20_000, 0, 3, false)
    );
}

#[test]
fn obs_first_places_keep_line_order_and_counts_go_on() {
    // Seven unknown detectors: all counted, the first five places kept.
    let rows: Vec<String> = (0..7)
        .map(|i| format!("{},X{i},1,20,3,80,5", t(20)))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (out, bad, n) = read_obs(&file(OBS_H, &refs));
    assert!(out.is_empty());
    assert_eq!(n, 7);
    assert_eq!(bad.count(UnknownDevice), 7);
    let lines: Vec<u64> = bad.first(UnknownDevice).map(|p| p.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    assert_eq!(lines.len(), KEEP_FIRST);
}

#[test]
fn obs_extra_and_reordered_columns_are_accepted() {
    let csv = "note,occupancy_pct,speed_kmh,volume,interval_s,lane,detector,time,extra\n\
               hello,5,80,3,20,2,D1,2026-11-23T06:00:20+08:00,x\n\
               ,7,,0,20,1,D2,2026-11-23T06:00:20+08:00,\n";
    let (rows, bad, _) = read_obs(csv);
    assert_eq!(bad.total(), 0, "{bad}");
    assert_eq!(rows.len(), 2);
    let o = rows[0].value;
    assert_eq!((o.detector, o.lane, o.volume), (0, 2, 3));
    assert_eq!((o.speed_kmh, o.occupancy_pct), (Some(80.0), 5.0));
    let o = rows[1].value;
    assert_eq!((o.detector, o.lane, o.volume, o.speed_kmh), (1, 1, 0, None));
    assert_eq!(o.occupancy_pct, 7.0);
}

#[test]
fn obs_header_variants_are_accepted() {
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    for header in [
        format!("\u{feff}{OBS_H}"),                  // UTF-8 BOM
        format!("\u{feff}\"time\",{}", &OBS_H[5..]), // BOM + quoted name
        OBS_H.replace(',', " , "),                   // padded names
        format!("{OBS_H},extra1,extra2"),            // extra columns
        format!("{OBS_H},time"),                     // duplicate name: first wins
    ] {
        let (rows, bad, _) = read_obs(&format!("{header}\n{row}\n"));
        assert_eq!(bad.total(), 0, "{header:?}: {bad}");
        assert_eq!(rows.len(), 1, "{header:?}");
        assert!(rows[0].value.valid, "{header:?}");
        assert_eq!(rows[0].line, 2, "{header:?}");
    }
}

#[test]
fn obs_header_missing_a_column_is_fatal_and_named() {
    let road = road();
    for (i, missing) in OBS_H.split(',').enumerate() {
        let header: Vec<&str> = OBS_H.split(',').filter(|c| *c != missing).collect();
        let csv = format!("{}\n", header.join(","));
        let Err(e) = ObsReader::new(csv.as_bytes(), "OBS.csv", &road) else {
            panic!("header without {missing} accepted");
        };
        let IoError::Header { file, message } = &e else {
            panic!("want IoError::Header, got {e:?}");
        };
        assert_eq!(file, "OBS.csv");
        assert!(message.contains(&format!("`{missing}`")), "{i}: {message}");
        assert!(message.contains("line 1"), "{message}");
        let text = e.to_string();
        assert!(text.starts_with("OBS.csv: "), "{text}");
    }
    // A misspelt column is a missing one.
    let csv = OBS_H.replace("speed_kmh", "speed_kph");
    let Err(e) = ObsReader::new(csv.as_bytes(), "OBS.csv", &road) else {
        panic!("misspelt header accepted");
    };
    assert!(e.to_string().contains("`speed_kmh`"), "{e}");
}

#[test]
fn obs_empty_file_is_an_error() {
    let road = road();
    for input in ["", "\n", "\n\n\n"] {
        let r = ObsReader::new(input.as_bytes(), "OBS.csv", &road);
        assert!(
            matches!(&r, Err(IoError::Header { file, .. }) if file == "OBS.csv"),
            "{input:?} must be a header error"
        );
    }
}

#[test]
fn obs_header_only_has_no_rows() {
    let (rows, bad, n) = read_obs(&format!("{OBS_H}\n"));
    assert!(rows.is_empty());
    assert_eq!((bad.total(), n), (0, 0));
    let (rows, _, _) = read_obs(OBS_H); // no trailing newline either
    assert!(rows.is_empty());
}

#[test]
fn obs_blank_lines_are_skipped() {
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    let csv = format!("{OBS_H}\n\n{row}\n\n\n{row}\n\n");
    let (rows, bad, n) = read_obs(&csv);
    assert_eq!(bad.total(), 0, "{bad}");
    assert_eq!(rows.len(), 2);
    assert_eq!(n, 2, "blank lines are not data rows");
    assert!(rows.iter().all(|r| r.value.valid));
    // Line numbers after blank lines are not asserted: they are currently
    // wrong (csv reports where the blank run starts), a known bug.
}

#[test]
fn obs_crlf_and_missing_final_newline_are_accepted() {
    // Values only: with CRLF the reported lines are currently one too small
    // (known bug), so they are not asserted here.
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    for csv in [
        format!("{OBS_H}\r\n{row}\r\n{row}\r\n"),
        format!("{OBS_H}\n{row}\n{row}"),
    ] {
        let (rows, bad, n) = read_obs(&csv);
        assert_eq!(bad.total(), 0, "{csv:?}: {bad}");
        assert_eq!((rows.len(), n), (2, 2), "{csv:?}");
        assert_eq!(
            rows[1].value.occupancy_pct, 5.0,
            "the \\r is not part of the value"
        );
    }
}

#[test]
fn obs_stray_quote_does_not_swallow_the_file() {
    // Quoting is off: an unbalanced quote in an extra column stays on its
    // line, and the following rows read normally.
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    let csv = format!("{OBS_H},note\n{row},\"unterminated\n{row},x\n{row},\"\n");
    let (rows, bad, _) = read_obs(&csv);
    assert_eq!(bad.total(), 0, "{bad}");
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 3, 4]);
}

#[test]
fn obs_line_numbers_count_good_and_bad_rows() {
    let csv = file(
        OBS_H,
        &[
            "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D9,1,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D1,2,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D1,3,20,3,300,5",
        ],
    );
    let (rows, bad, n) = read_obs(&csv);
    assert_eq!(n, 4);
    let got: Vec<(u64, bool)> = rows.iter().map(|r| (r.line, r.value.valid)).collect();
    assert_eq!(got, vec![(2, true), (4, true), (5, false)]);
    assert_eq!(bad.first(UnknownDevice).next().unwrap().line, 3);
    assert_eq!(bad.first(OutOfRange).next().unwrap().line, 5);
}

/// A reader that gives some bytes, then fails.
struct Failing {
    data: &'static [u8],
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn obs_io_error_is_fatal() {
    let road = road();
    let data = b"time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n\
                 2026-11-23T06:00:20+08:00,D1,1,20,3,80,5\n";
    let mut r = ObsReader::new(Failing { data }, "OBS.csv", &road).unwrap();
    let first = r.next_row().unwrap().expect("first row");
    assert!(first.value.valid);
    match r.next_row() {
        Err(IoError::Read { file, message, .. }) => {
            assert_eq!(file, "OBS.csv");
            assert!(message.contains("disk on fire"), "{message}");
        }
        other => panic!("want a fatal read error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(r.bad().count(Malformed), 0, "an I/O error is not a bad row");
}

#[test]
fn bad_rows_display_names_file_kinds_lines_and_columns() {
    let csv = file(
        OBS_H,
        &[
            "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5",
            "2026-11-23T06:00:20+08:00,D1,1,20,3,300,5",
            "2026-11-23T06:00:20+08:00,D1,2,20,3,80,101",
            "2026-11-23T06:00:20+08:00,D4,1,20,3,80,5",
        ],
    );
    let (_, bad, _) = read_obs(&csv);
    assert_eq!(
        bad.to_string(),
        "OBS.csv: 3 bad rows — out_of_range 2 (line 3 speed_kmh, line 4 occupancy_pct); \
         unknown_device 1 (line 5 detector)"
    );
    // No bad rows.
    let (_, bad, _) = read_obs(&file(OBS_H, &["2026-11-23T06:00:20+08:00,D1,1,20,3,80,5"]));
    assert_eq!(bad.to_string(), "OBS.csv: 0 bad rows");
    // More than KEEP_FIRST places end with an ellipsis; no column, no name.
    let mut b = BadRows::new("X.csv");
    for line in 2..9 {
        b.add(MissingField, line, Some("time"));
    }
    b.add(Malformed, 12, None);
    assert_eq!(
        b.to_string(),
        "X.csv: 8 bad rows — malformed 1 (line 12); missing_field 7 (line 2 time, \
         line 3 time, line 4 time, line 5 time, line 6 time, …)"
    );
}

// ---------------------------------------------------------------- WEATHER.csv

fn read_weather(csv: &str) -> (Vec<Row<zhilu_core::WeatherObs>>, BadRows) {
    let road = road();
    let mut r = WeatherReader::new(csv.as_bytes(), "WEATHER.csv", &road).expect("header ok");
    let rows = drain(|| r.next_row());
    (rows, r.bad().clone())
}

#[test]
fn weather_table() {
    // (name, row, bad, lines returned)
    let cases: &[(&str, &str, Bad, &[u64])] = &[
        (
            "all measurements",
            "2026-11-23T06:00:20+08:00,W1,150,-2.5,1,95,ice",
            None,
            &[2],
        ),
        (
            "empty numbers and state are not bad",
            "2026-11-23T06:00:20+08:00,W1,,,,,",
            None,
            &[2],
        ),
        (
            "short row: missing fields are not measured",
            "2026-11-23T06:00:20+08:00,W2",
            None,
            &[2],
        ),
        (
            "visibility out of range",
            "2026-11-23T06:00:20+08:00,W1,200000,1,1,50,dry",
            Some((OutOfRange, 2, "visibility_m")),
            &[2],
        ),
        (
            "negative visibility",
            "2026-11-23T06:00:20+08:00,W1,-1,1,1,50,dry",
            Some((OutOfRange, 2, "visibility_m")),
            &[2],
        ),
        (
            "surface temperature out of range",
            "2026-11-23T06:00:20+08:00,W1,100,95,1,50,dry",
            Some((OutOfRange, 2, "surface_temp_c")),
            &[2],
        ),
        (
            "air temperature out of range",
            "2026-11-23T06:00:20+08:00,W1,100,1,-61,50,dry",
            Some((OutOfRange, 2, "air_temp_c")),
            &[2],
        ),
        (
            "humidity out of range",
            "2026-11-23T06:00:20+08:00,W1,100,1,1,101,dry",
            Some((OutOfRange, 2, "humidity_pct")),
            &[2],
        ),
        (
            "humidity not a number",
            "2026-11-23T06:00:20+08:00,W1,100,1,1,wet,dry",
            Some((BadNumber, 2, "humidity_pct")),
            &[2],
        ),
        (
            "bad surface state",
            "2026-11-23T06:00:20+08:00,W1,100,1,1,50,slush",
            Some((BadValue, 2, "surface_state")),
            &[2],
        ),
        (
            "surface state is case-sensitive",
            "2026-11-23T06:00:20+08:00,W1,100,1,1,50,ICE",
            Some((BadValue, 2, "surface_state")),
            &[2],
        ),
        (
            "unknown station",
            "2026-11-23T06:00:20+08:00,W9,100,1,1,50,dry",
            Some((UnknownDevice, 2, "station")),
            &[],
        ),
        (
            "station empty",
            "2026-11-23T06:00:20+08:00,,100,1,1,50,dry",
            Some((MissingField, 2, "station")),
            &[],
        ),
        (
            "time empty",
            ",W1,100,1,1,50,dry",
            Some((MissingField, 2, "time")),
            &[],
        ),
        (
            "bad time",
            "06:00:20,W1,100,1,1,50,dry",
            Some((BadTime, 2, "time")),
            &[],
        ),
    ];
    for &(name, row, bad_want, lines) in cases {
        let (rows, bad) = read_weather(&file(WEATHER_H, &[row]));
        check_bad(name, &bad, bad_want);
        let got: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(got, lines, "{name}");
    }
}

#[test]
fn weather_values_and_dropped_fields() {
    let (rows, bad) = read_weather(&file(
        WEATHER_H,
        &[
            "2026-11-23T06:00:20+08:00,W1,150,-2.5,1,95,ice",
            "2026-11-23T06:00:20+08:00,W2,,,,,",
            "2026-11-23T06:00:40+08:00,W1,200000,-3,x,80,snow",
            "2026-11-23T06:01:00+08:00,W1,50,,,,slush",
        ],
    ));
    let w = rows[0].value;
    assert_eq!(w.ts_ms, 1_795_384_820_000);
    assert_eq!(w.station, 0);
    assert_eq!(
        (
            w.visibility_m,
            w.surface_temp_c,
            w.air_temp_c,
            w.humidity_pct
        ),
        (Some(150.0), Some(-2.5), Some(1.0), Some(95.0))
    );
    assert_eq!(w.surface_state, SurfaceState::Ice);
    // Empty = not measured.
    let w = rows[1].value;
    assert_eq!(w.station, 1);
    assert_eq!(
        (
            w.visibility_m,
            w.surface_temp_c,
            w.air_temp_c,
            w.humidity_pct
        ),
        (None, None, None, None)
    );
    assert_eq!(w.surface_state, SurfaceState::Unknown);
    // Impossible and garbage fields are dropped, the rest kept; the row is
    // counted once (first bad field).
    let w = rows[2].value;
    assert_eq!((w.visibility_m, w.surface_temp_c), (None, Some(-3.0)));
    assert_eq!((w.air_temp_c, w.humidity_pct), (None, Some(80.0)));
    assert_eq!(w.surface_state, SurfaceState::Snow);
    // A bad state becomes Unknown.
    assert_eq!(rows[3].value.surface_state, SurfaceState::Unknown);
    assert_eq!(rows[3].value.visibility_m, Some(50.0));
    assert_eq!(bad.count(OutOfRange), 1);
    assert_eq!(bad.count(BadValue), 1);
    assert_eq!(bad.total(), 2, "{bad}");
}

#[test]
fn weather_time_backwards_tolerance() {
    let (rows, bad) = read_weather(&file(
        WEATHER_H,
        &[
            "2026-11-23T06:02:00+08:00,W1,100,,,,",
            "2026-11-23T06:01:00+08:00,W1,100,,,,", // 60 s late: tolerated
            "2026-11-23T06:00:59+08:00,W1,100,,,,", // 61 s late: backwards
        ],
    ));
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);
    check_bad("weather backwards", &bad, Some((TimeBackwards, 4, "time")));
}

#[test]
fn weather_header_missing_column_is_fatal() {
    let road = road();
    let csv = WEATHER_H.replace(",surface_state", "");
    let Err(e) = WeatherReader::new(csv.as_bytes(), "WEATHER.csv", &road) else {
        panic!("accepted");
    };
    let text = e.to_string();
    assert!(
        text.contains("WEATHER.csv") && text.contains("`surface_state`") && text.contains("line 1"),
        "{text}"
    );
}

// ---------------------------------------------------------------- POS.csv

/// Rows, bad rows and the vehicle interner of a POS file.
fn read_pos(
    csv: &str,
) -> (
    Vec<Row<zhilu_core::PositionObs>>,
    BadRows,
    zhilu_io::Interner,
) {
    let mut r = PositionReader::new(csv.as_bytes(), "POS.csv").expect("header ok");
    let rows = drain(|| r.next_row());
    (rows, r.bad().clone(), r.vehicles.clone())
}

#[test]
fn pos_table() {
    let cases: &[(&str, &str, Bad, &[u64])] = &[
        (
            "valid",
            "2026-11-23T06:00:20+08:00,京A12345,hazmat,39.7,116.25,80,90",
            None,
            &[2],
        ),
        (
            "bad class",
            "2026-11-23T06:00:20+08:00,京A12345,tank,39.7,116.25,80,90",
            Some((BadValue, 2, "class")),
            &[],
        ),
        (
            "lat out of range",
            "2026-11-23T06:00:20+08:00,京A12345,car,91,116.25,80,90",
            Some((OutOfRange, 2, "lat")),
            &[],
        ),
        (
            "lon out of range",
            "2026-11-23T06:00:20+08:00,京A12345,car,39.7,-181,80,90",
            Some((OutOfRange, 2, "lon")),
            &[],
        ),
        (
            "lon not a number",
            "2026-11-23T06:00:20+08:00,京A12345,car,39.7,east,80,90",
            Some((BadNumber, 2, "lon")),
            &[],
        ),
        (
            "speed out of range",
            "2026-11-23T06:00:20+08:00,京A12345,car,39.7,116.25,300,90",
            Some((OutOfRange, 2, "speed_kmh")),
            &[],
        ),
        (
            "heading out of range",
            "2026-11-23T06:00:20+08:00,京A12345,car,39.7,116.25,80,361",
            Some((OutOfRange, 2, "heading_deg")),
            &[],
        ),
        (
            "missing vehicle",
            "2026-11-23T06:00:20+08:00,,car,39.7,116.25,80,90",
            Some((MissingField, 2, "vehicle")),
            &[],
        ),
        (
            "short row",
            "2026-11-23T06:00:20+08:00,京A12345,car,39.7,116.25,80",
            Some((MissingField, 2, "heading_deg")),
            &[],
        ),
        (
            "bad time",
            "2026-11-23T06:00:20,京A12345,car,39.7,116.25,80,90",
            Some((BadTime, 2, "time")),
            &[],
        ),
    ];
    for &(name, row, bad_want, lines) in cases {
        let (rows, bad, _) = read_pos(&file(POS_H, &[row]));
        check_bad(name, &bad, bad_want);
        let got: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(got, lines, "{name}");
    }
}

#[test]
fn pos_values_and_vehicle_interning() {
    let (rows, bad, vehicles) = read_pos(&file(
        POS_H,
        &[
            "2026-11-23T06:00:20+08:00,京A12345,hazmat,39.7,116.25,80,90",
            "2026-11-23T06:00:20+08:00,13800138000,truck,39.71,116.24,60.5,360",
            "2026-11-23T06:00:20+08:00,冀B99999,tank,39.7,116.25,80,90", // bad: not interned
            "2026-11-23T06:00:21+08:00,京A12345,hazmat,39.69,116.26,81,91",
        ],
    ));
    assert_eq!(bad.total(), 1);
    assert_eq!(rows.len(), 3);
    let p = rows[0].value;
    assert_eq!(
        (p.ts_ms, p.class, p.lat, p.lon),
        (1_795_384_820_000, VehicleClass::Hazmat, 39.7, 116.25)
    );
    assert_eq!((p.speed_kmh, p.heading_deg), (80.0, 90.0));
    assert_eq!(rows[1].value.class, VehicleClass::Truck);
    assert_eq!(rows[1].value.heading_deg, 0.0, "360° is north");
    // Same plate → same number; different plate → another one.
    assert_eq!(rows[0].value.vehicle, rows[2].value.vehicle);
    assert_ne!(rows[0].value.vehicle, rows[1].value.vehicle);
    assert_eq!(vehicles.len(), 2, "rejected rows are not interned");
    assert_eq!(vehicles.name(rows[0].value.vehicle), "京A12345");
    assert_eq!(vehicles.name(rows[1].value.vehicle), "13800138000");
}

#[test]
fn pos_time_backwards_tolerance() {
    let (rows, bad, _) = read_pos(&file(
        POS_H,
        &[
            "2026-11-23T06:01:00+08:00,A,car,39.7,116.25,80,90",
            "2026-11-23T06:00:30+08:00,B,car,39.7,116.25,80,90", // 30 s late: tolerated
            "2026-11-23T06:00:29+08:00,C,car,39.7,116.25,80,90", // 31 s late: backwards
        ],
    ));
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);
    check_bad("pos backwards", &bad, Some((TimeBackwards, 4, "time")));
}

// ---------------------------------------------------------------- CAM.csv

fn read_cam(csv: &str) -> (Vec<Row<zhilu_core::CameraObs>>, BadRows) {
    let road = road();
    let mut r = CameraReader::new(csv.as_bytes(), "CAM.csv", &road).expect("header ok");
    let rows = drain(|| r.next_row());
    (rows, r.bad().clone())
}

#[test]
fn cam_table() {
    let cases: &[(&str, &str, Bad, &[u64])] = &[
        (
            "valid numeric stake",
            "2026-11-23T06:00:20+08:00,C1,debris,down,12000.5,2,0.9",
            None,
            &[2],
        ),
        (
            "K-form stake",
            "2026-11-23T06:00:20+08:00,C1,fire,up,K12+345,1,0.5",
            None,
            &[2],
        ),
        (
            "empty lane is fine",
            "2026-11-23T06:00:20+08:00,C1,smoke,up,K0+000,,1",
            None,
            &[2],
        ),
        (
            "road end is inside",
            "2026-11-23T06:00:20+08:00,C1,smoke,up,25000,,0",
            None,
            &[2],
        ),
        (
            "bad kind",
            "2026-11-23T06:00:20+08:00,C1,ufo,up,12000,1,0.9",
            Some((BadValue, 2, "kind")),
            &[],
        ),
        (
            "bad direction",
            "2026-11-23T06:00:20+08:00,C1,debris,left,12000,1,0.9",
            Some((BadValue, 2, "direction")),
            &[],
        ),
        (
            "stake beyond the road (K form)",
            "2026-11-23T06:00:20+08:00,C1,debris,up,K30+000,1,0.9",
            Some((OutOfRange, 2, "stake_m")),
            &[],
        ),
        (
            "stake beyond the road (numeric)",
            "2026-11-23T06:00:20+08:00,C1,debris,up,25000.5,1,0.9",
            Some((OutOfRange, 2, "stake_m")),
            &[],
        ),
        (
            "K-form metres ≥ 1000",
            "2026-11-23T06:00:20+08:00,C1,debris,up,K12+1345,1,0.9",
            Some((BadNumber, 2, "stake_m")),
            &[],
        ),
        (
            "stake garbage",
            "2026-11-23T06:00:20+08:00,C1,debris,up,here,1,0.9",
            Some((BadNumber, 2, "stake_m")),
            &[],
        ),
        (
            "confidence > 1",
            "2026-11-23T06:00:20+08:00,C1,debris,up,12000,1,1.2",
            Some((OutOfRange, 2, "confidence")),
            &[],
        ),
        (
            "confidence missing",
            "2026-11-23T06:00:20+08:00,C1,debris,up,12000,1,",
            Some((MissingField, 2, "confidence")),
            &[],
        ),
        (
            "lane 0",
            "2026-11-23T06:00:20+08:00,C1,debris,up,12000,0,0.5",
            Some((UnknownLane, 2, "lane")),
            &[],
        ),
        (
            "lane not a number",
            "2026-11-23T06:00:20+08:00,C1,debris,up,12000,x,0.5",
            Some((BadNumber, 2, "lane")),
            &[],
        ),
        (
            "camera missing",
            "2026-11-23T06:00:20+08:00,,debris,up,12000,1,0.5",
            Some((MissingField, 2, "camera")),
            &[],
        ),
        (
            "bad time",
            "2026-11-23T25:00:20+08:00,C1,debris,up,12000,1,0.5",
            Some((BadTime, 2, "time")),
            &[],
        ),
    ];
    for &(name, row, bad_want, lines) in cases {
        let (rows, bad) = read_cam(&file(CAM_H, &[row]));
        check_bad(name, &bad, bad_want);
        let got: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(got, lines, "{name}");
    }
}

#[test]
fn cam_values() {
    let (rows, bad) = read_cam(&file(
        CAM_H,
        &[
            "2026-11-23T06:00:20+08:00,C1,stopped_vehicle,up,K12+345,2,0.9",
            "2026-11-23T06:00:25+08:00,C2,wrong_way,down,8000,,1",
            "2026-11-23T06:00:30+08:00,C1,pavement_distress,up,K0+500.5,8,0",
        ],
    ));
    assert_eq!(bad.total(), 0, "{bad}");
    let c = rows[0].value;
    assert_eq!(
        (c.ts_ms, c.kind, c.direction),
        (1_795_384_820_000, CameraKind::StoppedVehicle, Direction::Up)
    );
    assert_eq!((c.stake_m, c.lane, c.confidence), (12345.0, Some(2), 0.9));
    let c = rows[1].value;
    assert_eq!(
        (c.kind, c.direction, c.stake_m, c.lane),
        (CameraKind::WrongWay, Direction::Down, 8000.0, None)
    );
    assert_ne!(rows[0].value.camera, rows[1].value.camera);
    assert_eq!(
        rows[0].value.camera, rows[2].value.camera,
        "camera ids are interned"
    );
    assert_eq!(rows[2].value.stake_m, 500.5);
}

// ---------------------------------------------------------------- properties

/// Lines of a text, counting `\n`, `\r\n` and a lone `\r` as one break each
/// (the CSV layer accepts all three).
fn count_lines(b: &[u8]) -> u64 {
    let mut n = 1;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}

/// What one reader made of an input.
#[derive(Debug)]
struct Stats {
    returned: u64,
    valid: u64,
    bad: u64,
    rows: u64,
    lines: Vec<u64>,
}

/// Feeds an input to a reader built by `$new`; `None` if the header is refused.
macro_rules! stats {
    ($new:expr, $valid:expr) => {{
        match $new {
            Err(_) => None,
            Ok(mut r) => {
                let mut s = Stats {
                    returned: 0,
                    valid: 0,
                    bad: 0,
                    rows: 0,
                    lines: vec![],
                };
                while let Some(row) = r.next_row().expect("no fatal error on in-memory input") {
                    s.returned += 1;
                    s.valid += $valid(&row.value) as u64;
                    s.lines.push(row.line);
                }
                s.bad = r.bad().total();
                s.rows = r.rows();
                Some(s)
            }
        }
    }};
}

/// Runs all four readers over `input` and checks the accounting:
/// - every data row is either returned valid, or counted bad exactly once
///   (OBS invalid rows are returned *and* counted; WEATHER rows may be
///   returned with one dropped, counted field);
/// - data rows never exceed the lines of the input (minus the header);
/// - reported lines are ascending and inside the input.
fn check_all_readers(input: &[u8]) {
    let road = road();
    let lines = count_lines(input);
    let nl_lines = input.iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    let check = |name: &str, s: &Stats, exact: bool| {
        assert!(s.rows < lines, "{name}: {} rows from {lines} lines", s.rows);
        assert!(s.returned <= s.rows, "{name}: {s:?}");
        assert!(s.bad <= s.rows, "{name}: {s:?}");
        if exact {
            assert_eq!(s.valid + s.bad, s.rows, "{name}: {s:?}");
        } else {
            assert!(
                s.returned + s.bad >= s.rows,
                "{name}: a row vanished: {s:?}"
            );
        }
        assert!(s.lines.windows(2).all(|w| w[0] <= w[1]), "{name}: {s:?}");
        assert!(
            s.lines.iter().all(|&l| l >= 1 && l <= nl_lines),
            "{name}: {s:?}"
        );
    };
    if let Some(s) = stats!(ObsReader::new(input, "OBS.csv", &road), |o: &Obs| o.valid) {
        check("obs", &s, true);
    }
    if let Some(s) = stats!(WeatherReader::new(input, "WEATHER.csv", &road), |_| true) {
        check("weather", &s, false);
    }
    if let Some(s) = stats!(PositionReader::new(input, "POS.csv"), |_| true) {
        check("pos", &s, true);
    }
    if let Some(s) = stats!(CameraReader::new(input, "CAM.csv", &road), |_| true) {
        check("cam", &s, true);
    }
}

/// Bytes that matter to CSV and to these files, mixed with anything.
fn csvish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(b",,,\"\n\r 0123456789.-+eKTZ:D1W1C1up".to_vec());
    prop::collection::vec(prop_oneof![any::<u8>(), interesting], 0..400)
}

/// One valid OBS row spec: (detector, lane pick, interval, volume, speed
/// tenths, occupancy hundredths, ticks later, omit speed when volume is 0).
type RowSpec = (u32, u8, u16, u16, u32, u32, i64, bool);

fn row_spec() -> impl Strategy<Value = RowSpec> {
    (
        0u32..2,
        0u8..3,
        prop::sample::select(vec![20u16, 30, 60, 300]),
        prop_oneof![Just(0u16), 0u16..=3000, Just(u16::MAX)],
        0u32..=2500,
        0u32..=10_000,
        0i64..3,
        any::<bool>(),
    )
}

/// Builds a valid OBS file (columns in `cols` order, plus maybe an extra
/// column) and the readings it must yield.
fn valid_obs(specs: &[RowSpec], cols: &[&str], extra: bool) -> (String, Vec<Obs>) {
    let mut text = cols.join(",");
    if extra {
        text.push_str(",comment");
    }
    text.push('\n');
    let mut want = Vec::new();
    let mut secs = 20;
    for &(det, lane_pick, iv, vol, spd, occ, later, omit) in specs {
        secs += later * 20;
        let lanes = [3u8, 2][det as usize];
        let lane = 1 + lane_pick % lanes;
        let speed = (vol > 0 || !omit).then(|| spd as f64 / 10.0);
        let time = t(secs);
        let field = |c: &str| match c {
            "time" => time.clone(),
            "detector" => format!("D{}", det + 1),
            "lane" => lane.to_string(),
            "interval_s" => iv.to_string(),
            "volume" => vol.to_string(),
            "speed_kmh" => speed.map_or(String::new(), |s| format!("{s}")),
            "occupancy_pct" => format!("{}.{:02}", occ / 100, occ % 100),
            _ => unreachable!(),
        };
        let mut row: Vec<String> = cols.iter().map(|c| field(c)).collect();
        if extra {
            row.push("\"free, text\"".into());
        }
        text.push_str(&row.join(","));
        text.push('\n');
        want.push(Obs {
            ts_ms: (BASE_S + secs) * 1000,
            detector: det,
            lane,
            interval_s: iv,
            volume: vol,
            speed_kmh: speed.map(|s| s as f32),
            occupancy_pct: (occ as f64 / 100.0) as f32,
            valid: true,
        });
    }
    (text, want)
}

/// A change to a file: flip a byte, insert a CSV-significant byte, delete
/// a byte, or cut the file short.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(b",\"\n\r \t-.".to_vec());
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), special).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Insert(i, b) => {
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, *b);
        }
        _ if bytes.is_empty() => {}
        Mutation::Flip(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes, with or without a valid header in front: no panic, sane counts.
    #[test]
    fn arbitrary_bytes_never_panic(body in csvish_bytes(), header in 0usize..5) {
        let mut input = Vec::new();
        if let Some(h) = [OBS_H, WEATHER_H, POS_H, CAM_H].get(header) {
            input.extend_from_slice(h.as_bytes());
            input.push(b'\n');
        }
        input.extend_from_slice(&body);
        check_all_readers(&input);
    }

    /// A valid OBS file, then damaged: no panic, sane counts.
    #[test]
    fn mutated_obs_never_panics(
        specs in prop::collection::vec(row_spec(), 1..30),
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        let cols: Vec<&str> = OBS_H.split(',').collect();
        let (text, _) = valid_obs(&specs, &cols, false);
        let mut bytes = text.into_bytes();
        for m in &muts {
            apply(&mut bytes, m);
        }
        check_all_readers(&bytes);
    }

    /// A valid OBS file (any column order, maybe an extra column) yields
    /// exactly its rows, on their lines, with no bad rows.
    #[test]
    fn valid_obs_reads_back_exactly(
        specs in prop::collection::vec(row_spec(), 0..40),
        cols in Just(OBS_H.split(',').collect::<Vec<&str>>()).prop_shuffle(),
        extra in any::<bool>(),
    ) {
        let (text, want) = valid_obs(&specs, &cols, extra);
        let (rows, bad, n) = read_obs(&text);
        prop_assert_eq!(bad.total(), 0, "{}\n{}", bad, text);
        prop_assert_eq!(n, want.len() as u64);
        prop_assert_eq!(rows.len(), want.len());
        for (i, (got, want)) in rows.iter().zip(&want).enumerate() {
            prop_assert_eq!(got.line, i as u64 + 2);
            let g = got.value;
            prop_assert_eq!(
                (g.ts_ms, g.detector, g.lane, g.interval_s, g.volume, g.valid),
                (want.ts_ms, want.detector, want.lane, want.interval_s, want.volume, true)
            );
            prop_assert_eq!(g.speed_kmh.is_some(), want.speed_kmh.is_some());
            if let (Some(a), Some(b)) = (g.speed_kmh, want.speed_kmh) {
                prop_assert!((a - b).abs() < 1e-3, "speed {} vs {}", a, b);
            }
            prop_assert!((g.occupancy_pct - want.occupancy_pct).abs() < 1e-3);
        }
    }

    /// A valid POS file yields all its rows; vehicle numbers are equal
    /// exactly when plates are.
    #[test]
    fn valid_pos_reads_back_and_interns(
        specs in prop::collection::vec((0usize..5, 0usize..4, -90_000i32..=90_000, -180_000i32..=180_000, 0u32..=250, 0u32..3600, 0i64..20), 0..40),
    ) {
        const PLATES: [&str; 5] = ["京A12345", "冀B6789", "粤C0001", "13800138000", "沪D5"];
        const CLASSES: [&str; 4] = ["car", "bus", "truck", "hazmat"];
        let mut text = format!("{POS_H}\n");
        let mut secs = 0;
        for &(p, c, lat, lon, spd, hd, later) in &specs {
            secs += later;
            text.push_str(&format!(
                "{},{},{},{}.{:03},{}.{:03},{spd},{}.{}\n",
                t(secs), PLATES[p], CLASSES[c],
                if lat < 0 { format!("-{}", -lat / 1000) } else { (lat / 1000).to_string() }, lat.abs() % 1000,
                if lon < 0 { format!("-{}", -lon / 1000) } else { (lon / 1000).to_string() }, lon.abs() % 1000,
                hd / 10, hd % 10,
            ));
        }
        let (rows, bad, vehicles) = read_pos(&text);
        prop_assert_eq!(bad.total(), 0, "{}\n{}", bad, text);
        prop_assert_eq!(rows.len(), specs.len());
        let mut seen: HashMap<usize, u32> = HashMap::new();
        for (row, &(p, c, lat, lon, _, _, _)) in rows.iter().zip(&specs) {
            let v = row.value;
            prop_assert_eq!(*seen.entry(p).or_insert(v.vehicle), v.vehicle);
            prop_assert_eq!(vehicles.name(v.vehicle), PLATES[p]);
            prop_assert_eq!(Some(v.class), VehicleClass::parse(CLASSES[c]));
            prop_assert!((v.lat - lat as f64 / 1000.0).abs() < 1e-9);
            prop_assert!((v.lon - lon as f64 / 1000.0).abs() < 1e-9);
        }
        prop_assert_eq!(vehicles.len(), seen.len());
    }

    /// Stakes parse the same in numeric and `K12+345` form.
    #[test]
    fn cam_stake_forms_agree(m in 0u32..=25_000, lane in prop::option::of(1u8..=8)) {
        let lane = lane.map_or(String::new(), |l| l.to_string());
        let k = format!("K{}+{:03}", m / 1000, m % 1000);
        let csv = format!("{CAM_H}\n{0},C1,fire,up,{m},{lane},0.5\n{0},C1,fire,up,{k},{lane},0.5\n", t(0));
        let (rows, bad) = read_cam(&csv);
        prop_assert_eq!(bad.total(), 0, "{}", bad);
        prop_assert_eq!(rows.len(), 2);
        prop_assert_eq!(rows[0].value.stake_m, m as f64);
        prop_assert_eq!(rows[1].value.stake_m, m as f64);
    }
}

// ---------------------------------------------------------------- streaming

/// An OBS file generated on the fly: header, then `total` rows cycling
/// over D1 lanes 1–3 and D2 lanes 1–2, the clock stepping 20 s every 5 rows.
/// Counts the bytes handed out, so the test can see how far the reader pulled.
struct GenObs {
    total: u64,
    next: u64,
    buf: Vec<u8>,
    pos: usize,
    pulled: Rc<Cell<u64>>,
    time: (i64, String),
}

const PER_TICK: [(&str, u8); 5] = [("D1", 1), ("D1", 2), ("D1", 3), ("D2", 1), ("D2", 2)];

impl GenObs {
    fn new(total: u64, pulled: Rc<Cell<u64>>) -> GenObs {
        GenObs {
            total,
            next: 0,
            buf: format!("{OBS_H}\n").into_bytes(),
            pos: 0,
            pulled,
            time: (-1, String::new()),
        }
    }

    fn tick_secs(row: u64) -> i64 {
        20 * (row / PER_TICK.len() as u64) as i64 + 20
    }
}

impl Read for GenObs {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next == self.total {
                return Ok(0);
            }
            let i = self.next;
            self.next += 1;
            let secs = Self::tick_secs(i);
            if self.time.0 != secs {
                self.time = (secs, t(secs));
            }
            let (det, lane) = PER_TICK[(i % PER_TICK.len() as u64) as usize];
            let volume = i % 17;
            let speed = if volume == 0 {
                String::new()
            } else {
                format!("{}.5", 60 + i % 50)
            };
            self.buf.clear();
            self.pos = 0;
            use std::io::Write;
            writeln!(
                self.buf,
                "{},{det},{lane},20,{volume},{speed},{}",
                self.time.1,
                i % 100
            )
            .unwrap();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.pulled.set(self.pulled.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn obs_streams_200k_rows() {
    const N: u64 = 200_000;
    let road = road();
    let pulled = Rc::new(Cell::new(0));
    let mut r = ObsReader::new(GenObs::new(N, pulled.clone()), "OBS.csv", &road).unwrap();

    // The reader pulls a bounded window, not the whole file.
    let first = r.next_row().unwrap().expect("first row");
    assert_eq!((first.line, first.value.ts_ms), (2, (BASE_S + 20) * 1000));
    assert!(
        pulled.get() < 1 << 17,
        "pulled {} bytes for one row",
        pulled.get()
    );

    let mut count = 1u64;
    let mut last = first;
    while let Some(row) = r.next_row().unwrap() {
        assert!(row.value.valid, "line {}", row.line);
        assert!(row.value.ts_ms >= last.value.ts_ms);
        count += 1;
        last = row;
    }
    assert_eq!(count, N);
    assert_eq!(r.rows(), N);
    assert_eq!(r.bad().total(), 0, "{}", r.bad());
    assert_eq!(last.line, N + 1);
    let i = N - 1;
    assert_eq!(last.value.ts_ms, (BASE_S + GenObs::tick_secs(i)) * 1000);
    assert_eq!(last.value.volume as u64, i % 17);
    assert_eq!((last.value.detector, last.value.lane), (1, 2));
    // Several days of data crossed midnight and still parsed (~9 MB streamed).
    assert!(GenObs::tick_secs(i) > 3 * 86_400);
    assert!(pulled.get() > 8_000_000, "{}", pulled.get());
}

#[test]
fn time_helper_matches_the_contract_example() {
    // Guards the fixtures: t(20) is the contract's example time.
    assert_eq!(t(20), "2026-11-23T06:00:20+08:00");
    assert_eq!(ms(&t(20)), 1_795_384_820_000);
}

// ---- Line numbers are exact whatever the line endings (found by review) ----

#[test]
fn line_numbers_after_blank_lines() {
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    let bad = "2026-11-23T06:00:20+08:00,D9,1,20,3,80,5";
    let csv = format!("{OBS_H}\n{row}\n\n\n{bad}\n\n{row}\n");
    let (rows, bad, _) = read_obs(&csv);
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(
        bad.first(UnknownDevice).next().map(|p| p.line),
        Some(5),
        "{bad}"
    );
    assert_eq!(lines, vec![2, 7]);
}

#[test]
fn line_numbers_with_crlf() {
    let row = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    let bad = "2026-11-23T06:00:20+08:00,D1,1,20,3,300,5";
    let csv = format!("{OBS_H}\r\n{row}\r\n{bad}\r\n{row}\r\n");
    let (rows, bad, _) = read_obs(&csv);
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(
        bad.to_string(),
        "OBS.csv: 1 bad rows — out_of_range 1 (line 3 speed_kmh)"
    );
    assert_eq!(lines, vec![2, 3, 4]);
}

#[test]
fn empty_file_says_so() {
    let road = road();
    let Err(e) = ObsReader::new(&b""[..], "OBS.csv", &road) else {
        panic!("an empty file must be an error")
    };
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn a_line_that_is_not_text_is_malformed() {
    let road = road();
    let mut csv = format!("{OBS_H}\n").into_bytes();
    csv.extend_from_slice(b"2026-11-23T06:00:20+08:00,D\xff\xfe,1,20,3,80,5\n");
    csv.extend_from_slice(b"2026-11-23T06:00:20+08:00,D1,1,20,3,80,5\n");
    let mut r = ObsReader::new(csv.as_slice(), "OBS.csv", &road).unwrap();
    let rows = drain(|| r.next_row());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].line, 3);
    assert_eq!(
        r.bad().first(Malformed).next(),
        Some(Place {
            line: 2,
            column: None
        })
    );
}

#[test]
fn one_far_future_time_does_not_poison_the_rest() {
    // A typo'd year on one row: that row is `time_jump`; the rows after it
    // are read normally.
    let ok = |s: i64| format!("{},D1,1,20,3,80,5", t(s));
    let typo = "2062-11-23T06:00:40+08:00,D1,1,20,3,80,5".to_string();
    let csv = file(OBS_H, &[&ok(20), &typo, &ok(40), &ok(60)]);
    let (rows, bad, _) = read_obs(&csv);
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    assert_eq!(bad.count(TimeJump), 1);
    assert_eq!(bad.count(TimeBackwards), 0, "{bad}");
}

#[test]
fn data_resuming_after_a_long_outage_is_believed() {
    // A 10-hour gap: the first two rows after it are held as `time_jump`,
    // the third confirms the jump and reading goes on from there.
    let row = |s: i64, lane: u8| format!("{},D1,{lane},20,3,80,5", t(s));
    let later = 10 * 3600;
    let csv = file(
        OBS_H,
        &[
            &row(20, 1),
            &row(later, 1),
            &row(later, 2),
            &row(later, 3),
            &row(later + 20, 1),
        ],
    );
    let (rows, bad, _) = read_obs(&csv);
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 5, 6]
    );
    assert_eq!(bad.count(TimeJump), 2, "{bad}");
}
