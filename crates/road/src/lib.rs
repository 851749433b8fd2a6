//! # zhilu-road — the road book (路书)
//!
//! Owns the one model of the corridor that every other part shares
//! (一套模型、一套数据): the centre line with its stakes, the carriageway
//! directions, lanes, and every roadside device (detectors, weather stations,
//! speed-limit and message signs, fog lights, de-icers, interchanges, tunnels,
//! service areas). It parses and validates `ROAD.toml` exactly as the replay
//! contract describes, converts stakes to and from lon/lat, and answers
//! questions such as "which devices are upstream of K12+345 on the up side".
//!
//! Must not: read files, touch the network or the clock, or know about
//! readings, events and decisions. Callers pass the file's text in.

#![forbid(unsafe_code)]

mod book;
mod geometry;
mod stake;

use std::collections::HashMap;

pub use book::RoadError;
pub use geometry::{GeoPoint, Geometry, Matched};
pub use stake::{Stake, StakeError, parse_stake};

/// A carriageway direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// 上行: traffic runs toward increasing stake.
    Up,
    /// 下行: traffic runs toward decreasing stake.
    Down,
}

impl Direction {
    /// Both directions, `Up` first.
    pub const ALL: [Direction; 2] = [Direction::Up, Direction::Down];

    /// Parses `up` / `down`.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// 0 for up, 1 for down.
    pub fn index(self) -> usize {
        self as usize
    }

    /// +1 when traffic runs toward increasing stake, −1 otherwise.
    pub fn sign(self) -> f64 {
        match self {
            Direction::Up => 1.0,
            Direction::Down => -1.0,
        }
    }

    /// Position along the direction of travel (m): grows downstream.
    pub fn travel_m(self, stake_m: f64) -> f64 {
        self.sign() * stake_m
    }
}

/// Which control profile the corridor runs (`[road] profile`, a zhilu
/// extension of the contract's road book): the national rules, or a
/// provincial scheme that adds measures on top of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControlProfile {
    /// 全国: Art. 81 of the Road Traffic Safety Law Implementing Regulation and common practice.
    #[default]
    National,
    /// 江苏: the Jiangsu graded scheme for bad weather (class bans at entries, closure below 30 m).
    Jiangsu,
}

impl ControlProfile {
    /// Parses `national` / `jiangsu`.
    pub fn parse(s: &str) -> Option<ControlProfile> {
        match s {
            "national" => Some(ControlProfile::National),
            "jiangsu" => Some(ControlProfile::Jiangsu),
            _ => None,
        }
    }

    /// The spelling in the road book.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlProfile::National => "national",
            ControlProfile::Jiangsu => "jiangsu",
        }
    }
}

/// A traffic detector station (loop or radar) on one carriageway.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    /// Unique id, e.g. `D012`.
    pub id: String,
    /// Carriageway.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
    /// Lanes covered, lane 1 = innermost (fast) lane.
    pub lanes: u8,
    /// Index of this station's lane 1 in the corridor-wide lane numbering
    /// (`0..RoadBook::total_lanes()`), so per-lane state fits in flat arrays.
    pub first_lane: u32,
}

/// A road-weather station (visibility, surface state).
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherStation {
    /// Unique id.
    pub id: String,
    /// Stake (m).
    pub stake_m: f64,
}

/// A sign gantry on one carriageway (variable speed limit or message sign).
#[derive(Debug, Clone, PartialEq)]
pub struct Sign {
    /// Unique id.
    pub id: String,
    /// Carriageway it faces.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
}

/// A stretch of road equipped as one zone (fog lights, de-icing sprayers).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Unique id.
    pub id: String,
    /// First stake (m).
    pub from_m: f64,
    /// Last stake (m), greater than `from_m`.
    pub to_m: f64,
}

/// A toll station / on-ramp whose entries can be metered or closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Interchange {
    /// Unique id.
    pub id: String,
    /// Name (e.g. 固安).
    pub name: String,
    /// Stake (m).
    pub stake_m: f64,
    /// The carriageways its entries feed.
    pub directions: Vec<Direction>,
}

/// An off-ramp (出口匝道; zhilu's road-book extension `[[exit]]`: the
/// contract's `[[interchange]]` is an entry). Not a device. The server's
/// road JSON lists exits for the map; the incident detector does not use
/// them (treating the approach like a merge delayed real incidents there
/// more than it saved false alarms: `docs/BENCHMARKS.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// Unique among exits.
    pub id: String,
    /// Name (e.g. 南河出口).
    pub name: String,
    /// Stake of the diverge nose (m).
    pub stake_m: f64,
    /// The carriageways it leaves.
    pub directions: Vec<Direction>,
}

/// A tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct Tunnel {
    /// Unique id.
    pub id: String,
    /// Portal at the lower stake (m).
    pub from_m: f64,
    /// Portal at the higher stake (m).
    pub to_m: f64,
    /// Closed to hazardous goods (`hazmat = "forbidden"`).
    pub hazmat_forbidden: bool,
}

/// A service area (服务区).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceArea {
    /// Unique id.
    pub id: String,
    /// Name (e.g. 永清服务区).
    pub name: String,
    /// Stake (m).
    pub stake_m: f64,
    /// EV chargers.
    pub chargers: u32,
    /// Where it begins along the road (m; extension `from_m`, default the
    /// stake − 250 m): the deceleration lane, the car park and the
    /// acceleration lane lie within `from_m…to_m`.
    pub from_m: f64,
    /// Where it ends along the road (m; extension `to_m`, default the
    /// stake + 250 m).
    pub to_m: f64,
    /// The carriageways it serves (extension `directions`, default every
    /// one of the road).
    pub directions: Vec<Direction>,
}

impl ServiceArea {
    /// Half the extent assumed when the road book gives only the stake (m).
    pub const DEFAULT_HALF_EXTENT_M: f64 = 250.0;

    /// Whether a stake on carriageway `dir` (None: unknown, any) lies
    /// within the service area's extent.
    pub fn covers(&self, dir: Option<Direction>, stake_m: f64) -> bool {
        stake_m >= self.from_m
            && stake_m <= self.to_m
            && dir.is_none_or(|d| self.directions.contains(&d))
    }
}

/// The kind of a device in the road book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `[[detector]]`
    Detector,
    /// `[[weather]]`
    Weather,
    /// `[[vsl]]`
    Vsl,
    /// `[[vms]]`
    Vms,
    /// `[[fog_lights]]`
    FogLights,
    /// `[[deicer]]`
    Deicer,
    /// `[[interchange]]`
    Interchange,
    /// `[[tunnel]]`
    Tunnel,
    /// `[[service_area]]`
    ServiceArea,
}

/// A device: its kind and its index in that kind's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRef {
    /// Which list.
    pub kind: DeviceKind,
    /// Index in that list.
    pub index: u32,
}

/// A device found upstream of a point, with its distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Upstream {
    /// The device.
    pub device: DeviceRef,
    /// Distance upstream (m) along the direction of travel; 0 for a zone
    /// that covers the point.
    pub distance_m: f64,
}

/// The validated road book of one corridor.
#[derive(Debug, Clone)]
pub struct RoadBook {
    profile: ControlProfile,
    id: String,
    name: String,
    tz_offset_s: i32,
    directions: Vec<Direction>,
    geometry: Geometry,
    lanes: u8,
    speed_limit_kmh: u16,
    detectors: Vec<Detector>,
    weather: Vec<WeatherStation>,
    vsl: Vec<Sign>,
    vms: Vec<Sign>,
    fog_lights: Vec<Zone>,
    deicers: Vec<Zone>,
    interchanges: Vec<Interchange>,
    exits: Vec<Exit>,
    tunnels: Vec<Tunnel>,
    service_areas: Vec<ServiceArea>,
    index: HashMap<String, DeviceRef>,
    /// Detector indices per direction, in the direction of travel.
    stations: [Vec<u32>; 2],
    total_lanes: u32,
}

impl RoadBook {
    /// Parses and validates a road book. `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<RoadBook, RoadError> {
        book::load(text, file)
    }

    fn build_indexes(&mut self) {
        for dir in Direction::ALL {
            let mut v: Vec<u32> = (0..self.detectors.len() as u32)
                .filter(|&i| self.detectors[i as usize].direction == dir)
                .collect();
            v.sort_by(|&a, &b| {
                let (a, b) = (&self.detectors[a as usize], &self.detectors[b as usize]);
                dir.travel_m(a.stake_m).total_cmp(&dir.travel_m(b.stake_m))
            });
            self.stations[dir.index()] = v;
        }
    }

    /// The control profile.
    pub fn profile(&self) -> ControlProfile {
        self.profile
    }

    /// Road id (e.g. `G0401`).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Road name (e.g. 京雄高速).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Local time offset from UTC (s).
    pub fn tz_offset_s(&self) -> i32 {
        self.tz_offset_s
    }
    /// Directions present.
    pub fn directions(&self) -> &[Direction] {
        &self.directions
    }
    /// Centre line.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }
    /// Default lanes per direction.
    pub fn lanes(&self) -> u8 {
        self.lanes
    }
    /// Posted speed limit (km/h).
    pub fn speed_limit_kmh(&self) -> u16 {
        self.speed_limit_kmh
    }
    /// Detector stations, in file order.
    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }
    /// Weather stations.
    pub fn weather(&self) -> &[WeatherStation] {
        &self.weather
    }
    /// Variable speed-limit signs.
    pub fn vsl(&self) -> &[Sign] {
        &self.vsl
    }
    /// Variable message signs.
    pub fn vms(&self) -> &[Sign] {
        &self.vms
    }
    /// Fog-light zones.
    pub fn fog_lights(&self) -> &[Zone] {
        &self.fog_lights
    }
    /// De-icer zones.
    pub fn deicers(&self) -> &[Zone] {
        &self.deicers
    }
    /// Interchanges / toll entries.
    pub fn interchanges(&self) -> &[Interchange] {
        &self.interchanges
    }
    /// Off-ramps (the `[[exit]]` extension).
    pub fn exits(&self) -> &[Exit] {
        &self.exits
    }
    /// Tunnels.
    pub fn tunnels(&self) -> &[Tunnel] {
        &self.tunnels
    }
    /// Service areas.
    pub fn service_areas(&self) -> &[ServiceArea] {
        &self.service_areas
    }
    /// Number of detector lanes on the whole corridor.
    pub fn total_lanes(&self) -> u32 {
        self.total_lanes
    }

    /// Detector indices of one direction, ordered in the direction of travel
    /// (upstream first).
    pub fn stations(&self, dir: Direction) -> &[u32] {
        &self.stations[dir.index()]
    }

    /// Looks a device up by id.
    pub fn device(&self, id: &str) -> Option<DeviceRef> {
        self.index.get(id).copied()
    }

    /// Index of a detector by id.
    pub fn detector_index(&self, id: &str) -> Option<u32> {
        match self.index.get(id) {
            Some(DeviceRef {
                kind: DeviceKind::Detector,
                index,
            }) => Some(*index),
            _ => None,
        }
    }

    /// The id of a device.
    pub fn device_id(&self, d: DeviceRef) -> &str {
        let i = d.index as usize;
        match d.kind {
            DeviceKind::Detector => &self.detectors[i].id,
            DeviceKind::Weather => &self.weather[i].id,
            DeviceKind::Vsl => &self.vsl[i].id,
            DeviceKind::Vms => &self.vms[i].id,
            DeviceKind::FogLights => &self.fog_lights[i].id,
            DeviceKind::Deicer => &self.deicers[i].id,
            DeviceKind::Interchange => &self.interchanges[i].id,
            DeviceKind::Tunnel => &self.tunnels[i].id,
            DeviceKind::ServiceArea => &self.service_areas[i].id,
        }
    }

    /// Where a device sits: `(from_m, to_m)` (equal for point devices) and the
    /// directions it serves (empty = both / not directional).
    fn placement(&self, d: DeviceRef) -> (f64, f64, &[Direction]) {
        let i = d.index as usize;
        match d.kind {
            DeviceKind::Detector => {
                let x = &self.detectors[i];
                (x.stake_m, x.stake_m, std::slice::from_ref(&x.direction))
            }
            DeviceKind::Weather => (self.weather[i].stake_m, self.weather[i].stake_m, &[]),
            DeviceKind::Vsl => {
                let x = &self.vsl[i];
                (x.stake_m, x.stake_m, std::slice::from_ref(&x.direction))
            }
            DeviceKind::Vms => {
                let x = &self.vms[i];
                (x.stake_m, x.stake_m, std::slice::from_ref(&x.direction))
            }
            DeviceKind::FogLights => (self.fog_lights[i].from_m, self.fog_lights[i].to_m, &[]),
            DeviceKind::Deicer => (self.deicers[i].from_m, self.deicers[i].to_m, &[]),
            DeviceKind::Interchange => {
                let x = &self.interchanges[i];
                (x.stake_m, x.stake_m, &x.directions)
            }
            DeviceKind::Tunnel => (self.tunnels[i].from_m, self.tunnels[i].to_m, &[]),
            DeviceKind::ServiceArea => (
                self.service_areas[i].stake_m,
                self.service_areas[i].stake_m,
                &[],
            ),
        }
    }

    /// All devices, as references.
    pub fn devices(&self) -> impl Iterator<Item = DeviceRef> + '_ {
        let lists = [
            (DeviceKind::Detector, self.detectors.len()),
            (DeviceKind::Weather, self.weather.len()),
            (DeviceKind::Vsl, self.vsl.len()),
            (DeviceKind::Vms, self.vms.len()),
            (DeviceKind::FogLights, self.fog_lights.len()),
            (DeviceKind::Deicer, self.deicers.len()),
            (DeviceKind::Interchange, self.interchanges.len()),
            (DeviceKind::Tunnel, self.tunnels.len()),
            (DeviceKind::ServiceArea, self.service_areas.len()),
        ];
        lists
            .into_iter()
            .flat_map(|(kind, n)| (0..n as u32).map(move |index| DeviceRef { kind, index }))
    }

    /// Devices of the given kinds that lie upstream of `stake_m` in direction
    /// `dir`, no farther than `within_m`, nearest first.
    ///
    /// A point device exactly at `stake_m` counts as upstream (distance 0); a
    /// zone counts when any part of it is upstream, with distance 0 when it
    /// covers the point. Directional devices must serve `dir`.
    pub fn upstream(
        &self,
        dir: Direction,
        stake_m: f64,
        within_m: f64,
        kinds: &[DeviceKind],
    ) -> Vec<Upstream> {
        let here = dir.travel_m(stake_m);
        let mut out: Vec<Upstream> = self
            .devices()
            .filter(|d| kinds.contains(&d.kind))
            .filter_map(|d| {
                let (a, b, dirs) = self.placement(d);
                if !dirs.is_empty() && !dirs.contains(&dir) {
                    return None;
                }
                // Upstream end of the device along the direction of travel.
                let start = dir.travel_m(a).min(dir.travel_m(b));
                let end = dir.travel_m(a).max(dir.travel_m(b));
                if start > here {
                    return None;
                }
                let distance_m = if end >= here { 0.0 } else { here - end };
                (distance_m <= within_m).then_some(Upstream {
                    device: d,
                    distance_m,
                })
            })
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        out
    }
}

#[cfg(test)]
mod tests;
