//! Stored rows → the domain core's readings. The brain is always fed from
//! the stored form, live and when it is brought back after a restart, so
//! both see exactly the same input.

use std::collections::HashMap;

use zhilu_core::{CameraKind, CameraObs, Obs, PositionObs, SurfaceState, VehicleClass, WeatherObs};
use zhilu_io::Interner;
use zhilu_road::{Direction, RoadBook};
use zhilu_store::{CameraRow, ObsRow, PositionRow, Reading, WeatherRow};

/// Id → index maps for one road book, and interners for ids it does not list.
#[derive(Debug, Default)]
pub struct Ids {
    detectors: HashMap<String, (u32, u8)>,
    weather: HashMap<String, u32>,
    /// Vehicles seen.
    pub vehicles: Interner,
    /// Cameras seen.
    pub cameras: Interner,
}

impl Ids {
    /// Maps for a road book.
    pub fn new(road: &RoadBook) -> Ids {
        Ids {
            detectors: road
                .detectors()
                .iter()
                .enumerate()
                .map(|(i, d)| (d.id.clone(), (i as u32, d.lanes)))
                .collect(),
            weather: road
                .weather()
                .iter()
                .enumerate()
                .map(|(i, w)| (w.id.clone(), i as u32))
                .collect(),
            ..Ids::default()
        }
    }

    /// A detector row, or `None` if its detector or lane is not in the road
    /// book (possible only if the road book changed since it was stored).
    pub fn obs(&self, r: &ObsRow) -> Option<Obs> {
        let &(detector, lanes) = self.detectors.get(&r.detector)?;
        if r.lane < 1 || r.lane > lanes as i16 {
            return None;
        }
        let occupancy = r.occupancy_pct;
        let valid = occupancy.is_some() && (r.volume == 0 || r.speed_kmh.is_some());
        Some(Obs {
            ts_ms: r.ts_ms,
            detector,
            lane: r.lane as u8,
            interval_s: r.interval_s.clamp(1, u16::MAX as i32) as u16,
            volume: r.volume.clamp(0, u16::MAX as i32) as u16,
            speed_kmh: r.speed_kmh.map(|s| s as f32),
            occupancy_pct: occupancy.unwrap_or(0.0) as f32,
            valid,
        })
    }

    /// A weather row.
    pub fn weather(&self, r: &WeatherRow) -> Option<WeatherObs> {
        Some(WeatherObs {
            ts_ms: r.ts_ms,
            station: *self.weather.get(&r.station)?,
            visibility_m: r.visibility_m.map(|v| v as f32),
            surface_temp_c: r.surface_temp_c.map(|v| v as f32),
            air_temp_c: r.air_temp_c.map(|v| v as f32),
            humidity_pct: r.humidity_pct.map(|v| v as f32),
            surface_state: SurfaceState::parse(&r.surface_state).unwrap_or(SurfaceState::Unknown),
        })
    }

    /// A position row.
    pub fn position(&mut self, r: &PositionRow) -> Option<PositionObs> {
        Some(PositionObs {
            ts_ms: r.ts_ms,
            class: VehicleClass::parse(&r.class)?,
            vehicle: self.vehicles.intern(r.vehicle.as_bytes()),
            lat: r.lat,
            lon: r.lon,
            speed_kmh: r.speed_kmh.unwrap_or(0.0) as f32,
            heading_deg: r.heading_deg.unwrap_or(0.0) as f32,
        })
    }

    /// A camera row.
    pub fn camera(&mut self, r: &CameraRow) -> Option<CameraObs> {
        Some(CameraObs {
            ts_ms: r.ts_ms,
            kind: CameraKind::parse(&r.kind)?,
            direction: Direction::parse(&r.direction)?,
            camera: self.cameras.intern(r.camera.as_bytes()),
            stake_m: r.stake_m,
            lane: r.lane.and_then(|l| u8::try_from(l).ok()),
            confidence: r.confidence as f32,
        })
    }
}

/// A stored row, borrowed.
#[derive(Clone, Copy)]
pub enum RowRef<'a> {
    /// Detector.
    Obs(&'a zhilu_store::ObsRow),
    /// Weather.
    Weather(&'a zhilu_store::WeatherRow),
    /// Position.
    Position(&'a zhilu_store::PositionRow),
    /// Camera.
    Camera(&'a zhilu_store::CameraRow),
}

impl<'a> RowRef<'a> {
    /// A stored reading, borrowed.
    pub fn of(r: &'a Reading) -> RowRef<'a> {
        match r {
            Reading::Obs(o) => RowRef::Obs(o),
            Reading::Weather(o) => RowRef::Weather(o),
            Reading::Position(o) => RowRef::Position(o),
            Reading::Camera(o) => RowRef::Camera(o),
        }
    }
}
