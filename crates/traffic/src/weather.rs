//! Weather fields (气象场): visibility, temperatures, humidity and surface
//! state along the road and over time, from the climate and the fog and ice
//! episodes; de-icing changes the surface state.

use crate::scenario::{Climate, FogBank, IceSpell};

pub use zhilu_contract::SurfaceState;

/// The weather at one place and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherSample {
    /// Visibility (m).
    pub visibility_m: f64,
    /// Road surface temperature (°C).
    pub surface_temp_c: f64,
    /// Air temperature (°C).
    pub air_temp_c: f64,
    /// Relative humidity (%).
    pub humidity_pct: f64,
    /// Surface state.
    pub surface_state: SurfaceState,
}

/// A fog bank or ice spell in absolute time.
#[derive(Debug, Clone)]
pub(crate) struct Timed<T> {
    pub start_ms: i64,
    pub end_ms: i64,
    pub ep: T,
}

/// The weather model of one run.
#[derive(Debug, Clone)]
pub(crate) struct WeatherField {
    pub climate: Climate,
    pub midnight_ms: i64,
    pub fog: Vec<Timed<FogBank>>,
    pub ice: Vec<Timed<IceSpell>>,
    /// Bridge decks (de-icer zones): (from, to).
    pub bridges: Vec<(f64, f64)>,
}

/// Rises from 0 to 1 over `ramp_ms` after `start`, falls back over `ramp_ms` before `end`.
fn envelope(t: i64, start: i64, end: i64, ramp_ms: i64) -> f64 {
    if t <= start || t >= end {
        return 0.0;
    }
    let ramp = ramp_ms.max(1) as f64;
    let up = (t - start) as f64 / ramp;
    let down = (end - t) as f64 / ramp;
    up.min(down).min(1.0)
}

/// 1 inside `[from, to]`, falling linearly to 0 over `taper` outside.
fn plateau(x: f64, from: f64, to: f64, taper: f64) -> f64 {
    let d = if x < from {
        from - x
    } else if x > to {
        x - to
    } else {
        0.0
    };
    if d == 0.0 {
        1.0
    } else if taper <= 0.0 {
        0.0
    } else {
        (1.0 - d / taper).max(0.0)
    }
}

impl WeatherField {
    /// Local hour of day (0–24).
    fn hour(&self, t_ms: i64) -> f64 {
        (t_ms - self.midnight_ms).rem_euclid(86_400_000) as f64 / 3_600_000.0
    }

    /// Air temperature: minimum at 06:30, maximum at 14:30.
    fn air(&self, h: f64) -> f64 {
        let (lo, hi) = (self.climate.air_min_c, self.climate.air_max_c);
        let x = if (6.5..14.5).contains(&h) {
            (1.0 - (std::f64::consts::PI * (h - 6.5) / 8.0).cos()) / 2.0
        } else {
            let u = (h - 14.5).rem_euclid(24.0) / 16.0;
            1.0 - (1.0 - (std::f64::consts::PI * u).cos()) / 2.0
        };
        lo + (hi - lo) * x
    }

    /// Strength of the sun on the surface, 0 at night.
    fn sun(h: f64) -> f64 {
        if (7.0..17.0).contains(&h) {
            (std::f64::consts::PI * (h - 7.0) / 10.0).sin()
        } else {
            0.0
        }
    }

    /// The weather at `stake_m` at `t_ms`; `deiced` tells whether a de-icer sprays there.
    pub fn sample(&self, stake_m: f64, t_ms: i64, deiced: bool) -> WeatherSample {
        let c = &self.climate;
        let h = self.hour(t_ms);
        let air = self.air(h);
        let span = (c.air_max_c - c.air_min_c).max(0.1);
        let mut hum = c.humidity_min_pct
            + (c.humidity_max_pct - c.humidity_min_pct) * (c.air_max_c - air) / span;
        let sun = Self::sun(h);
        let mut surface = air - 0.8 + 5.0 * sun;
        if self
            .bridges
            .iter()
            .any(|&(a, b)| stake_m >= a && stake_m <= b)
        {
            surface -= c.bridge_chill_c * (1.0 - sun);
        }
        let haze = ((hum - 70.0) / 30.0).clamp(0.0, 1.0);
        let clear = c.clear_visibility_m * (1.0 - 0.5 * haze);
        let mut severity: f64 = 0.0;
        let mut min_vis = clear;
        for f in &self.fog {
            let e = envelope(t_ms, f.start_ms, f.end_ms, f.ep.roll_s as i64 * 1000)
                * plateau(stake_m, f.ep.from_m, f.ep.to_m, f.ep.taper_m);
            if e > severity {
                severity = e;
                min_vis = f.ep.min_visibility_m.min(clear);
            }
        }
        let visibility = if severity > 0.0 {
            hum = hum.max(88.0 + 12.0 * severity);
            clear.powf(1.0 - severity) * min_vis.powf(severity)
        } else {
            clear
        };
        for i in &self.ice {
            let e = envelope(t_ms, i.start_ms, i.end_ms, 20 * 60_000)
                * plateau(stake_m, i.ep.from_m, i.ep.to_m, 300.0);
            if e > 0.0 {
                let cold = surface + (i.ep.min_surface_c - surface) * e;
                surface = surface.min(cold);
                hum = hum.max(90.0 + 7.0 * e);
            }
        }
        let hum = hum.clamp(5.0, 100.0);
        let state = if deiced && surface < 3.0 {
            SurfaceState::Wet
        } else if hum >= 92.0 {
            if surface < -0.3 {
                SurfaceState::Ice
            } else {
                SurfaceState::Moist
            }
        } else {
            SurfaceState::Dry
        };
        WeatherSample {
            visibility_m: visibility,
            surface_temp_c: surface,
            air_temp_c: air,
            humidity_pct: hum,
            surface_state: state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_plateau() {
        assert_eq!(envelope(0, 10, 100, 10), 0.0);
        assert_eq!(envelope(15, 10, 100, 10), 0.5);
        assert_eq!(envelope(50, 10, 100, 10), 1.0);
        assert_eq!(plateau(5.0, 0.0, 10.0, 2.0), 1.0);
        assert_eq!(plateau(11.0, 0.0, 10.0, 2.0), 0.5);
        assert_eq!(plateau(13.0, 0.0, 10.0, 2.0), 0.0);
    }

    #[test]
    fn dawn_is_coldest_and_clear_days_stay_dry() {
        let w = WeatherField {
            climate: Climate::default(),
            midnight_ms: 0,
            fog: vec![],
            ice: vec![],
            bridges: vec![(1000.0, 2000.0)],
        };
        let dawn = w.sample(500.0, 6 * 3_600_000 + 1_800_000, false);
        let noon = w.sample(500.0, 13 * 3_600_000, false);
        assert!(dawn.air_temp_c < noon.air_temp_c);
        assert!(dawn.surface_temp_c > 0.0);
        assert_eq!(dawn.surface_state, SurfaceState::Dry);
        let bridge = w.sample(1500.0, 6 * 3_600_000 + 1_800_000, false);
        assert!(bridge.surface_temp_c < dawn.surface_temp_c);
    }
}
