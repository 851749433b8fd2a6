//! Request bodies → validated rows. The contract's CSV goes through the
//! same streaming readers as `zhilu replay` (so a row is judged the same
//! way live and on a recorded day); JSON rows are laid out as the same CSV
//! first. Every problem is answered with its kind, row and column.

use serde::Serialize;
use zhilu_io::{
    BadRowKind, BadRows, CameraReader, IoError, ObsReader, PositionReader, WeatherReader,
};
use zhilu_road::RoadBook;
use zhilu_store::{CameraRow, ObsRow, PositionRow, ReadingBatch, WeatherRow};

/// The four kinds of reading (their columns and API names are the contract's).
pub use zhilu_contract::ReadingKind;

/// Body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The contract's CSV (header line first).
    Csv,
    /// A JSON array of row objects (or `{"rows": [...]}`), keys = the CSV columns.
    Json,
}

/// One kind of problem in a body, with its first places.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `out_of_range`, `unknown_device`, `bad_time`, …
    pub kind: String,
    /// Rows with this problem.
    pub count: u64,
    /// First places: `line 7 (speed_kmh)` for CSV, `row 6 (speed_kmh)` for JSON.
    pub first: Vec<String>,
}

/// A body parsed into rows.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows to store (valid, or flagged invalid detector rows that name a
    /// real lane and time: the lane reported garbage, which quality needs
    /// to know).
    pub batch: ReadingBatch,
    /// Rows skipped because they cannot be attributed (unknown device,
    /// bad time, …).
    pub rejected: u64,
    /// Rows stored but flagged as not trustworthy.
    pub flagged: u64,
    /// What was wrong, by kind.
    pub problems: Vec<Problem>,
}

impl Format {
    /// The format of a body that came without a content type: JSON when it
    /// starts with `[` or `{`, else CSV.
    pub fn sniff(body: &[u8]) -> Format {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') | Some(b'{') => Format::Json,
            _ => Format::Csv,
        }
    }
}

/// A body that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// CSV header or encoding problem.
    #[error("{0}")]
    Csv(#[from] IoError),
    /// JSON not an array of objects.
    #[error("JSON body: {0}")]
    Json(String),
}

/// Parses a request body of `kind`.
pub fn parse(
    kind: ReadingKind,
    format: Format,
    body: &[u8],
    road: &RoadBook,
) -> Result<Parsed, BodyError> {
    match format {
        Format::Csv => parse_csv(kind, body, road, false),
        Format::Json => {
            let csv = json_to_csv(kind, body)?;
            parse_csv(kind, csv.as_bytes(), road, true)
        }
    }
}

fn parse_csv(
    kind: ReadingKind,
    body: &[u8],
    road: &RoadBook,
    json: bool,
) -> Result<Parsed, BodyError> {
    let name = if json {
        "request body (JSON)"
    } else {
        "request body"
    };
    let mut p = Parsed::default();
    let bad = match kind {
        ReadingKind::Obs => {
            let mut r = ObsReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let o = row.value;
                let d = &road.detectors()[o.detector as usize];
                if !o.valid {
                    p.flagged += 1;
                }
                p.batch.obs.push(ObsRow {
                    seq: 0,
                    ts_ms: o.ts_ms,
                    detector: d.id.clone(),
                    lane: o.lane as i16,
                    interval_s: o.interval_s as i32,
                    volume: o.volume as i32,
                    speed_kmh: o.speed_kmh.map(f64::from),
                    // An untrustworthy row is stored without its occupancy,
                    // which is how it is recognised again on replay.
                    occupancy_pct: o.valid.then_some(o.occupancy_pct as f64),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Weather => {
            let mut r = WeatherReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let w = row.value;
                p.batch.weather.push(WeatherRow {
                    seq: 0,
                    ts_ms: w.ts_ms,
                    station: road.weather()[w.station as usize].id.clone(),
                    visibility_m: w.visibility_m.map(f64::from),
                    surface_temp_c: w.surface_temp_c.map(f64::from),
                    air_temp_c: w.air_temp_c.map(f64::from),
                    humidity_pct: w.humidity_pct.map(f64::from),
                    surface_state: stored_surface(w.surface_state).into(),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Positions => {
            let mut r = PositionReader::new(body, name)?;
            while let Some(row) = r.next_row()? {
                let v = row.value;
                p.batch.positions.push(PositionRow {
                    seq: 0,
                    ts_ms: v.ts_ms,
                    vehicle: r.vehicles.name(v.vehicle).to_string(),
                    class: v.class.as_str().into(),
                    lat: v.lat,
                    lon: v.lon,
                    speed_kmh: Some(v.speed_kmh as f64),
                    heading_deg: Some(v.heading_deg as f64),
                });
            }
            r.bad().clone()
        }
        ReadingKind::Camera => {
            let mut r = CameraReader::new(body, name, road)?;
            while let Some(row) = r.next_row()? {
                let c = row.value;
                p.batch.camera.push(CameraRow {
                    seq: 0,
                    ts_ms: c.ts_ms,
                    camera: r.cameras.name(c.camera).to_string(),
                    kind: c.kind.as_str().into(),
                    direction: c.direction.as_str().into(),
                    stake_m: c.stake_m,
                    lane: c.lane.map(i16::from),
                    confidence: c.confidence as f64,
                });
            }
            r.bad().clone()
        }
    };
    p.rejected = bad.total() - p.flagged;
    p.problems = problems(&bad, json);
    Ok(p)
}

fn problems(bad: &BadRows, json: bool) -> Vec<Problem> {
    BadRowKind::ALL
        .into_iter()
        .filter(|&k| bad.count(k) > 0)
        .map(|k| Problem {
            kind: k.as_str().to_string(),
            count: bad.count(k),
            first: bad
                .first(k)
                .map(|pl| {
                    let at = if json {
                        format!("row {}", pl.line.saturating_sub(1))
                    } else {
                        format!("line {}", pl.line)
                    };
                    match pl.column {
                        Some(c) => format!("{at} ({c})"),
                        None => at,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Lays JSON rows out as the contract's CSV. A value that cannot be a CSV
/// field (a comma, quote or line break in it; an object) fails the body,
/// naming the row and key; a key the contract does not have is an error too.
///
/// The body is read as a stream of rows (no tree of the whole document is
/// built): memory is the CSV text plus one row, whatever the body's size.
pub fn json_to_csv(kind: ReadingKind, body: &[u8]) -> Result<String, BodyError> {
    use serde::de::DeserializeSeed;
    let cols = kind.columns();
    let mut out = String::with_capacity(body.len() / 2 + 80);
    out.push_str(&cols.join(","));
    out.push('\n');
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut sink = RowSink {
        cols,
        out: &mut out,
        n: 0,
        fields: vec![None; cols.len()],
    };
    Document(&mut sink)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| BodyError::Json(e.to_string()))?;
    Ok(out)
}

/// Where rows go as they are read.
struct RowSink<'a> {
    cols: &'static [&'static str],
    out: &'a mut String,
    /// Rows so far.
    n: usize,
    /// The current row's fields, by column (reused).
    fields: Vec<Option<String>>,
}

const SHAPE: &str = "expected an array of rows or {\"rows\": [...]}";

/// The whole body: `[rows…]` or `{"rows": [rows…]}`.
struct Document<'s, 'a>(&'s mut RowSink<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(SHAPE)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Rows(self.0).visit_seq(seq)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if k != "rows" || seen {
                return Err(serde::de::Error::custom(SHAPE));
            }
            seen = true;
            map.next_value_seed(Rows(&mut *self.0))?;
        }
        if !seen {
            return Err(serde::de::Error::custom(SHAPE));
        }
        Ok(())
    }
}

/// `[rows…]` inside `{"rows": …}`.
struct Rows<'s, 'a>(&'s mut RowSink<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for Rows<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Rows<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(SHAPE)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Row(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One row object, written out as a CSV line.
struct Row<'s, 'a>(&'s mut RowSink<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for Row<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Row<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let sink = self.0;
        sink.n += 1;
        let n = sink.n;
        for f in &mut sink.fields {
            *f = None;
        }
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(j) = sink.cols.iter().position(|c| *c == k) else {
                return Err(serde::de::Error::custom(format!(
                    "row {n}: unknown key {k:?} (expected {})",
                    sink.cols.join(", ")
                )));
            };
            let v = map.next_value::<Field>()?;
            let text = match v {
                Field::Null => None,
                Field::Text(s) => {
                    if s.contains([',', '"', '\n', '\r']) {
                        return Err(serde::de::Error::custom(format!(
                            "row {n}: {}: a comma, quote or line break is not allowed in a value",
                            sink.cols[j]
                        )));
                    }
                    Some(s)
                }
                Field::Other => {
                    return Err(serde::de::Error::custom(format!(
                        "row {n}: {}: expected a string or number",
                        sink.cols[j]
                    )));
                }
            };
            sink.fields[j] = text;
        }
        for (j, f) in sink.fields.iter().enumerate() {
            if j > 0 {
                sink.out.push(',');
            }
            if let Some(t) = f {
                sink.out.push_str(t);
            }
        }
        sink.out.push('\n');
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(format!(
            "row {}: not an object",
            self.0.n + 1
        )))
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(format!("row {}: not an object", self.0.n + 1)))
    }
}

/// A field's value: text as the CSV will hold it, null, or something a
/// CSV field cannot be.
enum Field {
    Null,
    Text(String),
    Other,
}

impl<'de> serde::Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(Field::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
                Ok(Field::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
                Ok(Field::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
                Ok(Field::Text(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
                Ok(Field::Text(if v { "true" } else { "false" }.into()))
            }
            fn visit_unit<E>(self) -> Result<Field, E> {
                Ok(Field::Null)
            }
            fn visit_none<E>(self) -> Result<Field, E> {
                Ok(Field::Null)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A surface state as stored: the contract's spelling, empty when not reported.
fn stored_surface(s: zhilu_core::SurfaceState) -> &'static str {
    match s {
        zhilu_core::SurfaceState::Unknown => "",
        s => s.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_become_csv_lines_or_a_precise_error() {
        let k = ReadingKind::Weather;
        let head = k.columns().join(",");
        let ok = json_to_csv(
            k,
            br#"[{"time": "2026-11-23T05:00:00+08:00", "station": "W1", "visibility_m": 80.5}]"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            format!("{head}\n2026-11-23T05:00:00+08:00,W1,80.5,,,,\n")
        );
        let wrapped =
            json_to_csv(k, br#"{"rows": [{"station": "W2", "visibility_m": 12}]}"#).unwrap();
        assert!(wrapped.ends_with("\n,W2,12,,,,\n"), "{wrapped}");
        assert_eq!(json_to_csv(k, b"[]").unwrap(), format!("{head}\n"));
        for (body, want) in [
            (
                &br#"[{"station": "W1", "wind": 3}]"#[..],
                "row 1: unknown key \"wind\"",
            ),
            (
                br#"[{"station": "W1"}, {"station": "a,b"}]"#,
                "row 2: station: a comma",
            ),
            (
                br#"[{"station": {"id": 1}}]"#,
                "row 1: station: expected a string or number",
            ),
            (br#"[{"station": "W1"}, 7]"#, "row 2: not an object"),
            (br#"{"data": []}"#, "expected an array of rows"),
            (br#"42"#, "expected an array of rows"),
            (br#"[{"station": "W1"}"#, "EOF"),
            (br#"[] []"#, "trailing"),
        ] {
            let e = json_to_csv(k, body).unwrap_err().to_string();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
