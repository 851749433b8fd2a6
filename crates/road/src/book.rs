//! Loading and validating `ROAD.toml` (replay contract v1).
//!
//! The serde shapes here mirror the file exactly and stay private: they are
//! converted into the model in [`crate::RoadBook`] after validation, so a
//! change to the model never silently changes the file format.

use serde::Deserialize;
use toml::Spanned;

use crate::geometry::{GeoPoint, Geometry};
use crate::stake::{check_metres, parse_stake};
use crate::{
    Detector, DeviceKind, DeviceRef, Direction, Exit, Interchange, RoadBook, ServiceArea, Sign,
    Tunnel, WeatherStation, Zone,
};

/// A road-book error: names the file, the line and column, and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: `{key}`: {message}")]
pub struct RoadError {
    /// The file (as given by the caller).
    pub file: String,
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based.
    pub column: usize,
    /// The key at fault (`detector.stake_m`, `road.geometry` …).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    road: Spanned<RawRoad>,
    #[serde(default)]
    detector: Vec<Spanned<RawDetector>>,
    #[serde(default)]
    weather: Vec<Spanned<RawPoint>>,
    #[serde(default)]
    vsl: Vec<Spanned<RawSign>>,
    #[serde(default)]
    vms: Vec<Spanned<RawSign>>,
    #[serde(default)]
    fog_lights: Vec<Spanned<RawZone>>,
    #[serde(default)]
    deicer: Vec<Spanned<RawZone>>,
    #[serde(default)]
    interchange: Vec<Spanned<RawInterchange>>,
    #[serde(default)]
    tunnel: Vec<Spanned<RawTunnel>>,
    #[serde(default)]
    service_area: Vec<Spanned<RawServiceArea>>,
    /// zhilu extension: off-ramps (the contract's interchanges are entries;
    /// an exit has the same keys).
    #[serde(default)]
    exit: Vec<Spanned<RawInterchange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoad {
    id: Spanned<String>,
    #[serde(default)]
    name: String,
    tz: Spanned<String>,
    directions: Spanned<Vec<Spanned<String>>>,
    geometry: Spanned<Vec<Spanned<Vec<f64>>>>,
    lanes: Spanned<i64>,
    speed_limit_kmh: Spanned<i64>,
    /// zhilu extension: the control profile (`national`, default, or `jiangsu`).
    profile: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStake {
    Number(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    id: Spanned<String>,
    direction: Spanned<String>,
    stake_m: Spanned<RawStake>,
    lanes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    id: Spanned<String>,
    stake_m: Spanned<RawStake>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSign {
    id: Spanned<String>,
    direction: Spanned<String>,
    stake_m: Spanned<RawStake>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    id: Spanned<String>,
    from_m: Spanned<RawStake>,
    to_m: Spanned<RawStake>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterchange {
    id: Spanned<String>,
    #[serde(default)]
    name: String,
    stake_m: Spanned<RawStake>,
    directions: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    id: Spanned<String>,
    from_m: Spanned<RawStake>,
    to_m: Spanned<RawStake>,
    hazmat: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceArea {
    id: Spanned<String>,
    #[serde(default)]
    name: String,
    stake_m: Spanned<RawStake>,
    #[serde(default)]
    chargers: Option<Spanned<i64>>,
    /// Extension: the extent along the road (both or neither).
    #[serde(default)]
    from_m: Option<Spanned<RawStake>>,
    #[serde(default)]
    to_m: Option<Spanned<RawStake>>,
    /// Extension: the carriageways it serves (default: every one).
    #[serde(default)]
    directions: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Validation context: turns byte spans into file:line:column errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> RoadError {
        let (line, column) = line_col(self.text, span.start);
        RoadError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn stake(&self, s: &Spanned<RawStake>, key: &str) -> Result<f64, RoadError> {
        match s.get_ref() {
            RawStake::Number(v) => {
                check_metres(*v).map_err(|m| self.err(s.span(), key, format!("stake {m}")))
            }
            RawStake::Text(t) => parse_stake(t).map_err(|e| self.err(s.span(), key, e.to_string())),
        }
    }

    /// A list of directions, each counted once however often it is named.
    fn direction_set(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
        key: &str,
        allowed: &[Direction],
    ) -> Result<Vec<Direction>, RoadError> {
        let mut dirs = Vec::new();
        for d in list.get_ref() {
            let dir = self.direction(d, key, allowed)?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }

    fn direction(
        &self,
        s: &Spanned<String>,
        key: &str,
        allowed: &[Direction],
    ) -> Result<Direction, RoadError> {
        let d = Direction::parse(s.get_ref()).ok_or_else(|| {
            self.err(
                s.span(),
                key,
                format!(
                    "unknown direction `{}` (expected `up` or `down`)",
                    s.get_ref()
                ),
            )
        })?;
        if !allowed.contains(&d) {
            return Err(self.err(
                s.span(),
                key,
                format!("direction `{}` is not in road.directions", d.as_str()),
            ));
        }
        Ok(d)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = text
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count())
        + 1;
    (line, column)
}

/// Parses a fixed UTC offset `+08:00`, `-05:30`, `Z` or `UTC` into seconds.
fn parse_offset(tz: &str) -> Option<i32> {
    if tz == "Z" || tz.eq_ignore_ascii_case("UTC") {
        return Some(0);
    }
    let b = tz.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = tz.get(1..3)?.parse().ok()?;
    let m: i32 = tz.get(4..6)?.parse().ok()?;
    if !(0..=18).contains(&h)
        || !(0..60).contains(&m)
        || !tz[1..3].bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

pub(crate) fn load(text: &str, file: &str) -> Result<RoadBook, RoadError> {
    let ctx = Ctx { file, text };
    let raw: RawBook = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().to_string();
        let key = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
            .unwrap_or("")
            .to_string();
        let key = if key.is_empty() {
            text.get(span.clone())
                .unwrap_or("")
                .chars()
                .take(40)
                .collect()
        } else {
            key
        };
        ctx.err(span, &key, msg)
    })?;

    let road = raw.road.get_ref();
    if road.id.get_ref().trim().is_empty() {
        return Err(ctx.err(road.id.span(), "road.id", "must not be empty"));
    }
    let tz_offset_s = parse_offset(road.tz.get_ref()).ok_or_else(|| {
        ctx.err(
            road.tz.span(),
            "road.tz",
            format!(
                "`{}` is not a UTC offset such as `+08:00`",
                road.tz.get_ref()
            ),
        )
    })?;

    let mut directions = Vec::new();
    for d in road.directions.get_ref() {
        let dir = ctx.direction(d, "road.directions", &[Direction::Up, Direction::Down])?;
        if directions.contains(&dir) {
            return Err(ctx.err(
                d.span(),
                "road.directions",
                format!("`{}` is listed twice", dir.as_str()),
            ));
        }
        directions.push(dir);
    }
    if directions.is_empty() {
        return Err(ctx.err(
            road.directions.span(),
            "road.directions",
            "at least one direction is needed",
        ));
    }

    let mut points: Vec<GeoPoint> = Vec::new();
    for p in road.geometry.get_ref() {
        let v = p.get_ref();
        if v.len() != 3 {
            return Err(ctx.err(
                p.span(),
                "road.geometry",
                "each point is [stake_m, lon, lat]",
            ));
        }
        let (stake_m, lon, lat) = (v[0], v[1], v[2]);
        if !stake_m.is_finite() || stake_m < 0.0 {
            return Err(ctx.err(
                p.span(),
                "road.geometry",
                "stake must be a finite number ≥ 0",
            ));
        }
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(ctx.err(
                p.span(),
                "road.geometry",
                format!("lon {lon} / lat {lat} out of range (lon −180…180, lat −90…90)"),
            ));
        }
        if let Some(prev) = points.last()
            && stake_m <= prev.stake_m
        {
            return Err(ctx.err(
                p.span(),
                "road.geometry",
                format!("stakes must increase: {stake_m} after {}", prev.stake_m),
            ));
        }
        points.push(GeoPoint { stake_m, lon, lat });
    }
    if points.len() < 2 {
        return Err(ctx.err(
            road.geometry.span(),
            "road.geometry",
            "at least two points are needed",
        ));
    }
    let geometry = Geometry::new(points);

    let lanes = *road.lanes.get_ref();
    if !(1..=8).contains(&lanes) {
        return Err(ctx.err(
            road.lanes.span(),
            "road.lanes",
            format!("{lanes} lanes is out of range 1…8"),
        ));
    }
    let speed_limit = *road.speed_limit_kmh.get_ref();
    if !(20..=160).contains(&speed_limit) {
        return Err(ctx.err(
            road.speed_limit_kmh.span(),
            "road.speed_limit_kmh",
            format!("{speed_limit} km/h is out of range 20…160"),
        ));
    }

    let profile = match &road.profile {
        None => crate::ControlProfile::National,
        Some(p) => crate::ControlProfile::parse(p.get_ref()).ok_or_else(|| {
            ctx.err(
                p.span(),
                "road.profile",
                format!(
                    "unknown profile `{}` (expected `national` or `jiangsu`)",
                    p.get_ref()
                ),
            )
        })?,
    };
    let mut book = RoadBook {
        profile,
        id: road.id.get_ref().clone(),
        name: road.name.clone(),
        tz_offset_s,
        directions: directions.clone(),
        geometry,
        lanes: lanes as u8,
        speed_limit_kmh: speed_limit as u16,
        detectors: Vec::new(),
        weather: Vec::new(),
        vsl: Vec::new(),
        vms: Vec::new(),
        fog_lights: Vec::new(),
        deicers: Vec::new(),
        interchanges: Vec::new(),
        exits: Vec::new(),
        tunnels: Vec::new(),
        service_areas: Vec::new(),
        index: Default::default(),
        stations: [Vec::new(), Vec::new()],
        total_lanes: 0,
    };

    let inside = |s: f64, span: std::ops::Range<usize>, key: &str, g: &Geometry| {
        if g.contains(s) {
            Ok(s)
        } else {
            Err(ctx.err(
                span,
                key,
                format!(
                    "stake {s} m is outside the geometry ({}…{} m)",
                    g.start_m(),
                    g.end_m()
                ),
            ))
        }
    };
    let register = |book: &mut RoadBook, id: &Spanned<String>, key: &str, r: DeviceRef| {
        let name = id.get_ref().trim();
        if name.is_empty() {
            return Err(ctx.err(id.span(), key, "must not be empty"));
        }
        if book.index.insert(name.to_string(), r).is_some() {
            return Err(ctx.err(
                id.span(),
                key,
                format!("id `{name}` is used twice (ids are unique across all devices)"),
            ));
        }
        Ok(name.to_string())
    };

    // Detectors, with the ordering check per direction.
    let mut last_by_dir: [Option<(f64, String, i8)>; 2] = [None, None];
    let mut lane_base = 0u32;
    for (i, d) in raw.detector.iter().enumerate() {
        let d = d.get_ref();
        let id = register(
            &mut book,
            &d.id,
            "detector.id",
            DeviceRef {
                kind: DeviceKind::Detector,
                index: i as u32,
            },
        )?;
        let direction = ctx.direction(&d.direction, "detector.direction", &directions)?;
        let stake_m = inside(
            ctx.stake(&d.stake_m, "detector.stake_m")?,
            d.stake_m.span(),
            "detector.stake_m",
            &book.geometry,
        )?;
        let lanes = match &d.lanes {
            Some(l) if !(1..=8).contains(l.get_ref()) => {
                return Err(ctx.err(
                    l.span(),
                    "detector.lanes",
                    format!("{} lanes is out of range 1…8", l.get_ref()),
                ));
            }
            Some(l) => *l.get_ref() as u8,
            None => book.lanes,
        };
        let slot = &mut last_by_dir[direction.index()];
        if let Some((prev_stake, prev_id, order)) = slot.as_mut() {
            let step = stake_m - *prev_stake;
            if step == 0.0 {
                return Err(ctx.err(
                    d.stake_m.span(),
                    "detector.stake_m",
                    format!(
                        "`{id}` is at the same stake as `{prev_id}` in direction {}",
                        direction.as_str()
                    ),
                ));
            }
            let this_order = if step > 0.0 { 1 } else { -1 };
            if *order == 0 {
                *order = this_order;
            } else if *order != this_order {
                return Err(ctx.err(
                    d.stake_m.span(),
                    "detector.stake_m",
                    format!(
                        "detectors of direction {} must be listed in stake order; `{id}` at {stake_m} m breaks the order after `{prev_id}` at {prev_stake} m",
                        direction.as_str()
                    ),
                ));
            }
            *prev_stake = stake_m;
            *prev_id = id.clone();
        } else {
            *slot = Some((stake_m, id.clone(), 0));
        }
        book.detectors.push(Detector {
            id,
            direction,
            stake_m,
            lanes,
            first_lane: lane_base,
        });
        lane_base += lanes as u32;
    }
    book.total_lanes = lane_base;

    for (i, w) in raw.weather.iter().enumerate() {
        let w = w.get_ref();
        let id = register(
            &mut book,
            &w.id,
            "weather.id",
            DeviceRef {
                kind: DeviceKind::Weather,
                index: i as u32,
            },
        )?;
        let stake_m = inside(
            ctx.stake(&w.stake_m, "weather.stake_m")?,
            w.stake_m.span(),
            "weather.stake_m",
            &book.geometry,
        )?;
        book.weather.push(WeatherStation { id, stake_m });
    }
    for (kind, list, table) in [
        (DeviceKind::Vsl, &raw.vsl, "vsl"),
        (DeviceKind::Vms, &raw.vms, "vms"),
    ] {
        for (i, s) in list.iter().enumerate() {
            let s = s.get_ref();
            let id = register(
                &mut book,
                &s.id,
                &format!("{table}.id"),
                DeviceRef {
                    kind,
                    index: i as u32,
                },
            )?;
            let direction =
                ctx.direction(&s.direction, &format!("{table}.direction"), &directions)?;
            let key = format!("{table}.stake_m");
            let stake_m = inside(
                ctx.stake(&s.stake_m, &key)?,
                s.stake_m.span(),
                &key,
                &book.geometry,
            )?;
            let sign = Sign {
                id,
                direction,
                stake_m,
            };
            if kind == DeviceKind::Vsl {
                book.vsl.push(sign)
            } else {
                book.vms.push(sign)
            }
        }
    }
    for (kind, list, table) in [
        (DeviceKind::FogLights, &raw.fog_lights, "fog_lights"),
        (DeviceKind::Deicer, &raw.deicer, "deicer"),
    ] {
        for (i, z) in list.iter().enumerate() {
            let z = z.get_ref();
            let id = register(
                &mut book,
                &z.id,
                &format!("{table}.id"),
                DeviceRef {
                    kind,
                    index: i as u32,
                },
            )?;
            let (from_m, to_m) = zone(&ctx, &book.geometry, &z.from_m, &z.to_m, table)?;
            let zone = Zone { id, from_m, to_m };
            if kind == DeviceKind::FogLights {
                book.fog_lights.push(zone)
            } else {
                book.deicers.push(zone)
            }
        }
    }
    for (i, x) in raw.interchange.iter().enumerate() {
        let x = x.get_ref();
        let id = register(
            &mut book,
            &x.id,
            "interchange.id",
            DeviceRef {
                kind: DeviceKind::Interchange,
                index: i as u32,
            },
        )?;
        let stake_m = inside(
            ctx.stake(&x.stake_m, "interchange.stake_m")?,
            x.stake_m.span(),
            "interchange.stake_m",
            &book.geometry,
        )?;
        let dirs = ctx.direction_set(&x.directions, "interchange.directions", &directions)?;
        book.interchanges.push(Interchange {
            id,
            name: x.name.clone(),
            stake_m,
            directions: dirs,
        });
    }
    for (i, t) in raw.tunnel.iter().enumerate() {
        let t = t.get_ref();
        let id = register(
            &mut book,
            &t.id,
            "tunnel.id",
            DeviceRef {
                kind: DeviceKind::Tunnel,
                index: i as u32,
            },
        )?;
        let (from_m, to_m) = zone(&ctx, &book.geometry, &t.from_m, &t.to_m, "tunnel")?;
        let hazmat_forbidden = match &t.hazmat {
            None => false,
            Some(h) => match h.get_ref().as_str() {
                "allowed" => false,
                "forbidden" => true,
                other => {
                    return Err(ctx.err(
                        h.span(),
                        "tunnel.hazmat",
                        format!("`{other}` is not `allowed` or `forbidden`"),
                    ));
                }
            },
        };
        book.tunnels.push(Tunnel {
            id,
            from_m,
            to_m,
            hazmat_forbidden,
        });
    }
    for (i, s) in raw.service_area.iter().enumerate() {
        let s = s.get_ref();
        let id = register(
            &mut book,
            &s.id,
            "service_area.id",
            DeviceRef {
                kind: DeviceKind::ServiceArea,
                index: i as u32,
            },
        )?;
        let stake_m = inside(
            ctx.stake(&s.stake_m, "service_area.stake_m")?,
            s.stake_m.span(),
            "service_area.stake_m",
            &book.geometry,
        )?;
        let chargers = match &s.chargers {
            None => 0,
            Some(c) if !(0..=10_000).contains(c.get_ref()) => {
                return Err(ctx.err(
                    c.span(),
                    "service_area.chargers",
                    format!("{} is out of range 0…10000", c.get_ref()),
                ));
            }
            Some(c) => *c.get_ref() as u32,
        };
        let (from_m, to_m) = match (&s.from_m, &s.to_m) {
            (None, None) => (
                (stake_m - ServiceArea::DEFAULT_HALF_EXTENT_M).max(book.geometry.start_m()),
                (stake_m + ServiceArea::DEFAULT_HALF_EXTENT_M).min(book.geometry.end_m()),
            ),
            (Some(f), Some(t)) => {
                let (from_m, to_m) = zone(&ctx, &book.geometry, f, t, "service_area")?;
                if stake_m < from_m || stake_m > to_m {
                    return Err(ctx.err(
                        s.stake_m.span(),
                        "service_area.stake_m",
                        format!("stake {stake_m} m is outside the extent {from_m}…{to_m} m"),
                    ));
                }
                (from_m, to_m)
            }
            (Some(f), None) => {
                return Err(ctx.err(
                    f.span(),
                    "service_area.to_m",
                    "from_m needs to_m (give both or neither)",
                ));
            }
            (None, Some(t)) => {
                return Err(ctx.err(
                    t.span(),
                    "service_area.from_m",
                    "to_m needs from_m (give both or neither)",
                ));
            }
        };
        let dirs = match &s.directions {
            None => directions.clone(),
            Some(list) => {
                let dirs = ctx.direction_set(list, "service_area.directions", &directions)?;
                if dirs.is_empty() {
                    return Err(ctx.err(
                        list.span(),
                        "service_area.directions",
                        "must name at least one direction",
                    ));
                }
                dirs
            }
        };
        book.service_areas.push(ServiceArea {
            id,
            name: s.name.clone(),
            stake_m,
            chargers,
            from_m,
            to_m,
            directions: dirs,
        });
    }

    let mut exit_ids = std::collections::HashSet::new();
    for x in &raw.exit {
        let x = x.get_ref();
        let id = x.id.get_ref().trim();
        if id.is_empty() {
            return Err(ctx.err(x.id.span(), "exit.id", "must not be empty"));
        }
        if !exit_ids.insert(id.to_string()) {
            return Err(ctx.err(x.id.span(), "exit.id", format!("id `{id}` is used twice")));
        }
        let stake_m = inside(
            ctx.stake(&x.stake_m, "exit.stake_m")?,
            x.stake_m.span(),
            "exit.stake_m",
            &book.geometry,
        )?;
        let dirs = ctx.direction_set(&x.directions, "exit.directions", &directions)?;
        book.exits.push(Exit {
            id: id.to_string(),
            name: x.name.clone(),
            stake_m,
            directions: dirs,
        });
    }

    book.build_indexes();
    Ok(book)
}

fn zone(
    ctx: &Ctx<'_>,
    g: &Geometry,
    from: &Spanned<RawStake>,
    to: &Spanned<RawStake>,
    table: &str,
) -> Result<(f64, f64), RoadError> {
    let fk = format!("{table}.from_m");
    let tk = format!("{table}.to_m");
    let from_m = ctx.stake(from, &fk)?;
    let to_m = ctx.stake(to, &tk)?;
    for (v, s, k) in [(from_m, from, &fk), (to_m, to, &tk)] {
        if !g.contains(v) {
            return Err(ctx.err(
                s.span(),
                k,
                format!(
                    "stake {v} m is outside the geometry ({}…{} m)",
                    g.start_m(),
                    g.end_m()
                ),
            ));
        }
    }
    if to_m <= from_m {
        return Err(ctx.err(
            to.span(),
            &tk,
            format!("to_m ({to_m}) must be greater than from_m ({from_m})"),
        ));
    }
    Ok((from_m, to_m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), Some(28_800));
        assert_eq!(parse_offset("-05:30"), Some(-19_800));
        assert_eq!(parse_offset("Z"), Some(0));
        assert_eq!(parse_offset("08:00"), None);
        assert_eq!(parse_offset("+8:00"), None);
        assert_eq!(parse_offset("+25:00"), None);
        assert_eq!(parse_offset("Asia/Shanghai"), None);
    }

    #[test]
    fn line_and_column() {
        let t = "ab\ncd\nef";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(line_col(t, 6), (3, 1));
    }
}
