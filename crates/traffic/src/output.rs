//! What the simulated road emits each step — plain records in reusable
//! buffers — and their replay-contract CSV / JSON lines.

use std::fmt::Write as _;

use zhilu_road::{Direction, RoadBook};

use crate::weather::SurfaceState;

pub use zhilu_contract::{
    CAM_HEADER, CameraKind, OBS_HEADER, POS_HEADER, VehicleClass, WEATHER_HEADER, format_time,
    local_time_ms,
};

/// One detector lane reading (a row of OBS.csv).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObsReading {
    /// End of the interval (epoch ms).
    pub time_ms: i64,
    /// Index into `RoadBook::detectors()`.
    pub detector: u32,
    /// Lane, 1 = innermost.
    pub lane: u8,
    /// Interval length (s).
    pub interval_s: u16,
    /// Vehicles counted.
    pub volume: u32,
    /// Mean speed of the counted vehicles (km/h); `None` when none passed.
    pub speed_kmh: Option<f32>,
    /// Occupancy (%).
    pub occupancy_pct: f32,
}

/// One road-weather station reading (a row of WEATHER.csv).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherReading {
    /// Time (epoch ms).
    pub time_ms: i64,
    /// Index into `RoadBook::weather()`.
    pub station: u32,
    /// Visibility (m).
    pub visibility_m: f32,
    /// Surface temperature (°C).
    pub surface_temp_c: f32,
    /// Air temperature (°C).
    pub air_temp_c: f32,
    /// Relative humidity (%).
    pub humidity_pct: f32,
    /// Surface state.
    pub surface_state: SurfaceState,
}

/// A plate-like stable vehicle id (`京A00017`), unique per vehicle number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plate(pub u32, pub VehicleClass);

impl std::fmt::Display for Plate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = match self.1 {
            VehicleClass::Car => "京A",
            VehicleClass::Bus => "京B",
            VehicleClass::Truck => "冀F",
            VehicleClass::Hazmat => "冀H",
        };
        write!(f, "{prefix}{:05}", self.0)
    }
}

/// One probe vehicle position (a row of POS.csv before map projection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VehiclePosition {
    /// Time (epoch ms).
    pub time_ms: i64,
    /// Vehicle number (stable for the run); see [`Plate`].
    pub vehicle: u32,
    /// Class.
    pub class: VehicleClass,
    /// Carriageway it drives on.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
    /// Speed (km/h).
    pub speed_kmh: f32,
}

/// A video-analytics event (a row of CAM.csv); cameras are the tunnels' (`<tunnel id>-CAM`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraEvent {
    /// Time (epoch ms).
    pub time_ms: i64,
    /// Index into `RoadBook::tunnels()` of the tunnel whose camera saw it.
    pub tunnel: u32,
    /// What it saw.
    pub kind: CameraKind,
    /// Carriageway.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
    /// Lane, if known.
    pub lane: Option<u8>,
    /// Confidence 0–1.
    pub confidence: f32,
}

/// The readings that became due in one step (buffers reused from step to step).
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub(crate) obs: Vec<ObsReading>,
    pub(crate) weather: Vec<WeatherReading>,
    pub(crate) positions: Vec<VehiclePosition>,
    pub(crate) cameras: Vec<CameraEvent>,
}

impl Output {
    /// Detector readings of intervals that ended this step.
    pub fn obs(&self) -> &[ObsReading] {
        &self.obs
    }
    /// Weather station readings taken this step.
    pub fn weather(&self) -> &[WeatherReading] {
        &self.weather
    }
    /// Probe positions reported this step.
    pub fn positions(&self) -> &[VehiclePosition] {
        &self.positions
    }
    /// Camera events raised this step.
    pub fn cameras(&self) -> &[CameraEvent] {
        &self.cameras
    }
    pub(crate) fn clear(&mut self) {
        self.obs.clear();
        self.weather.clear();
        self.positions.clear();
        self.cameras.clear();
    }
}

/// Formats records as the replay contract's CSV lines, caching the time text.
#[derive(Debug)]
pub struct CsvFormatter<'r> {
    road: &'r RoadBook,
    time_ms: i64,
    time: String,
}

impl<'r> CsvFormatter<'r> {
    /// A formatter for readings of `road` (times in the road's offset).
    pub fn new(road: &'r RoadBook) -> CsvFormatter<'r> {
        CsvFormatter {
            road,
            time_ms: i64::MIN,
            time: String::new(),
        }
    }

    fn time(&mut self, ms: i64) -> &str {
        if ms != self.time_ms {
            self.time.clear();
            format_time(ms, self.road.tz_offset_s(), &mut self.time);
            self.time_ms = ms;
        }
        &self.time
    }

    /// Appends one OBS.csv line (with newline).
    pub fn obs(&mut self, r: &ObsReading, out: &mut String) {
        let road = self.road;
        let id = road
            .detectors()
            .get(r.detector as usize)
            .map_or("", |d| d.id.as_str());
        out.push_str(self.time(r.time_ms));
        let _ = write!(out, ",{id},{},{},{},", r.lane, r.interval_s, r.volume);
        if let Some(v) = r.speed_kmh {
            let _ = write!(out, "{v:.1}");
        }
        let _ = writeln!(out, ",{:.1}", r.occupancy_pct);
    }

    /// Appends one WEATHER.csv line (with newline).
    pub fn weather(&mut self, r: &WeatherReading, out: &mut String) {
        let road = self.road;
        let id = road
            .weather()
            .get(r.station as usize)
            .map_or("", |w| w.id.as_str());
        out.push_str(self.time(r.time_ms));
        let _ = writeln!(
            out,
            ",{id},{:.0},{:.1},{:.1},{:.0},{}",
            r.visibility_m,
            r.surface_temp_c,
            r.air_temp_c,
            r.humidity_pct,
            r.surface_state.as_str()
        );
    }

    /// Appends one POS.csv line (with newline): the position is put 7.5 m
    /// right of the centre line in the direction of travel, heading along it.
    pub fn position(&mut self, r: &VehiclePosition, out: &mut String) {
        let g = self.road.geometry();
        let s = r.stake_m.clamp(g.start_m(), g.end_m());
        let (lon, lat) = g.lonlat(s);
        let (lon2, lat2) = g.lonlat((s + 10.0).min(g.end_m()));
        let (lon0, lat0) = g.lonlat((s - 10.0).max(g.start_m()));
        const M_PER_DEG: f64 = 111_195.0;
        let kx = M_PER_DEG * lat.to_radians().cos();
        let (ex, ny) = ((lon2 - lon0) * kx, (lat2 - lat0) * M_PER_DEG);
        let norm = (ex * ex + ny * ny).sqrt().max(1e-9);
        let side = 7.5 * r.direction.sign();
        let (rx, ry) = (ny / norm, -ex / norm);
        let (plon, plat) = (lon + side * rx / kx, lat + side * ry / M_PER_DEG);
        let bearing = ex.atan2(ny).to_degrees();
        let heading = (bearing
            + if r.direction == Direction::Up {
                0.0
            } else {
                180.0
            })
        .rem_euclid(360.0);
        out.push_str(self.time(r.time_ms));
        let _ = writeln!(
            out,
            ",{},{},{plat:.6},{plon:.6},{:.0},{heading:.0}",
            Plate(r.vehicle, r.class),
            r.class.as_str(),
            r.speed_kmh
        );
    }

    /// Appends one CAM.csv line (with newline).
    pub fn camera(&mut self, r: &CameraEvent, out: &mut String) {
        let road = self.road;
        let id = road
            .tunnels()
            .get(r.tunnel as usize)
            .map_or("", |t| t.id.as_str());
        out.push_str(self.time(r.time_ms));
        let _ = write!(
            out,
            ",{id}-CAM,{},{},{:.0},",
            r.kind.as_str(),
            r.direction.as_str(),
            r.stake_m
        );
        if let Some(l) = r.lane {
            let _ = write!(out, "{l}");
        }
        let _ = writeln!(out, ",{:.2}", r.confidence);
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_are_stable() {
        assert_eq!(Plate(17, VehicleClass::Hazmat).to_string(), "冀H00017");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str("a\"b\\c\n", &mut s);
        assert_eq!(s, r#""a\"b\\c\u000a""#);
    }
}
