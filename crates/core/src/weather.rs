//! Road weather (路况气象): fog (团雾) and ice risk (结冰) from the weather
//! stations, as zones along the road with a hysteresis that keeps them from
//! flapping.
//!
//! **Fog.** Visibility bands at 500 / 200 / 100 / 50 / 30 m (band 1 … 5; the
//! edges of GB/T 31445-2015 and Art. 81 of the Road Traffic Safety Law
//! Implementing Regulation, plus the 30 m closure level of the Jiangsu
//! scheme). A station's band worsens at once, on the first reading; it
//! improves only after visibility has stayed above the better band's edge
//! × 1.1 (the hysteresis: visibility hovering about an edge does not
//! flap the limits) for `fog_release_s` (0 by default: the first reading
//! past the margin releases; the fog plan releases each sign when the
//! stations it governs are clear — `docs/EVENTS.md`).
//!
//! **Ice.** The surface is *moist* when its state is moist/wet/snow/ice, or
//! relative humidity ≥ 90 %, or the surface is within 1 °C of the dew point
//! (frost). Ice is *observed* when the state is ice or snow, or the surface
//! is ≤ 0 °C and moist. Ice is *predicted* — before it forms — when the
//! surface is moist and ≤ 1 °C (the freeze margin practised by automated
//! spray systems, which trigger "in anticipation"), or when, from ≤ 2 °C,
//! the station's own course over 30 min (a parabola followed to where it
//! levels off) reaches 0 °C within the next hour. Risk ends after
//! `ice_release_s` (30 min) without either. Defaults and sources:
//! `docs/EVENTS.md`.
//!
//! Each station covers the road up to halfway to its neighbours (at most
//! 5 km each side); adjacent stations in the same state form one zone, and
//! each zone is one event.

use zhilu_road::RoadBook;

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::{SurfaceState, WeatherObs};

/// Thresholds of fog and ice detection.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherConfig {
    /// Band edges (m), worsening order: < 500 → band 1 … < 30 → band 5.
    pub fog_bands_m: [f32; 5],
    /// A better band counts only above its edge × this factor (default
    /// 1.1; 1.2 until issue 15: on the validation fog days the thinning
    /// bank's signs then held a band low for 1–3 min at each edge, 2.6 % of
    /// the clear station-minutes under a fog limit, 0.8 % at 1.1 with the
    /// same number of sign changes; the law's floor is untouched, a
    /// worsening band applies at the first reading).
    pub fog_hysteresis: f32,
    /// Seconds a better band (past the hysteresis margin) must hold before
    /// the station relaxes (default 0: on the issue-15 validation fog days
    /// a 10-min hold kept 12 % of the clear station-minutes under a fog
    /// limit, 2 min 8 %, none 5 %, most of it a sign that governs a clear
    /// station and a foggy one).
    pub fog_release_s: u32,
    /// Furthest a station's cover reaches each side (m).
    pub cover_max_m: f64,
    /// Relative humidity that makes a surface moist (%).
    pub ice_humidity_pct: f32,
    /// Surface within this of the dew point is moist (°C).
    pub ice_dew_margin_c: f32,
    /// Moist surface at or below this is at risk (°C).
    pub ice_margin_c: f32,
    /// Trend: window (s) and horizon (s), and the warmest start (°C).
    pub ice_trend_window_s: u32,
    /// How far ahead the trend is projected (s).
    pub ice_horizon_s: u32,
    /// Warmest surface from which a falling trend counts (°C, default 2: on
    /// the issue-15 validation ice night the bridge went from 2 °C to
    /// freezing in 48 min, and a station that levelled off at 2.5 °C had
    /// raised ice from 3.5 °C with the former 4).
    pub ice_trend_max_c: f32,
    /// Seconds without risk before the zone clears.
    pub ice_release_s: u32,
}

impl Default for WeatherConfig {
    fn default() -> Self {
        WeatherConfig {
            fog_bands_m: [500.0, 200.0, 100.0, 50.0, 30.0],
            fog_hysteresis: 1.1,
            fog_release_s: 0,
            cover_max_m: 5000.0,
            ice_humidity_pct: 90.0,
            ice_dew_margin_c: 1.0,
            ice_margin_c: 1.0,
            ice_trend_window_s: 1800,
            ice_horizon_s: 3600,
            ice_trend_max_c: 2.0,
            ice_release_s: 1800,
        }
    }
}

const NEVER: i64 = i64::MIN / 4;

/// Dew point (°C) by the Magnus formula (b = 17.62, c = 243.12 °C).
pub fn dew_point_c(air_c: f32, rh_pct: f32) -> f32 {
    let (b, c) = (17.62f32, 243.12f32);
    let g = (rh_pct.clamp(1.0, 100.0) / 100.0).ln() + b * air_c / (c + air_c);
    c * g / (b - g)
}

#[derive(Debug, Clone)]
struct StationWx {
    // Fog.
    band: u8,
    improve_since: i64,
    fog_start: i64,
    vis_now: f32,
    // Ice.
    temps: [(i64, f32); 32],
    n_temps: usize,
    ice_level: u8,
    ice_clear_since: i64,
    ice_start: i64,
    surface_now: f32,
}

impl StationWx {
    fn new() -> StationWx {
        StationWx {
            band: 0,
            improve_since: NEVER,
            fog_start: NEVER,
            vis_now: f32::NAN,
            temps: [(NEVER, 0.0); 32],
            n_temps: 0,
            ice_level: 0,
            ice_clear_since: NEVER,
            ice_start: NEVER,
            surface_now: f32::NAN,
        }
    }
}

/// An active weather zone (one open event).
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherZone {
    /// The event.
    pub event: Event,
    /// Current level: fog band 1–5, or ice 1 (predicted) / 2 (observed).
    pub level: u8,
    /// Current worst value: visibility (m) or surface temperature (°C).
    pub value_now: f32,
    /// Weather-station indices in the zone.
    pub stations: Vec<u32>,
    /// Per station in the zone (same order as `stations`): its own level
    /// and the stretch of road its reading covers (halfway to its
    /// neighbours, at most `cover_max_m` each side). The fog plan sets each
    /// sign from the stations it governs, not from the zone's worst.
    pub parts: Vec<ZonePart>,
}

/// One weather station's share of a zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZonePart {
    /// Weather-station index.
    pub station: u32,
    /// Its stake (m).
    pub stake_m: f64,
    /// Its own level (fog band, or ice 1/2).
    pub level: u8,
    /// Where its cover begins (m).
    pub from_m: f64,
    /// Where its cover ends (m).
    pub to_m: f64,
}

/// Fog and ice watch over all weather stations.
#[derive(Debug, Clone)]
pub struct WeatherWatch {
    cfg: WeatherConfig,
    /// Station indices by stake.
    order: Vec<u32>,
    /// Cover of each station (by station index).
    cover: Vec<(f64, f64)>,
    /// Stake of each station (by station index).
    stake: Vec<f64>,
    st: Vec<StationWx>,
    fog: Vec<WeatherZone>,
    ice: Vec<WeatherZone>,
}

fn band_of(bands: &[f32; 5], vis: f32) -> u8 {
    bands.iter().filter(|&&edge| vis < edge).count() as u8
}

impl WeatherWatch {
    /// A watch over the road book's weather stations.
    pub fn new(road: &RoadBook, cfg: WeatherConfig) -> WeatherWatch {
        let ws = road.weather();
        let mut order: Vec<u32> = (0..ws.len() as u32).collect();
        order.sort_by(|&a, &b| ws[a as usize].stake_m.total_cmp(&ws[b as usize].stake_m));
        let g = road.geometry();
        let mut cover = vec![(0.0, 0.0); ws.len()];
        for (k, &i) in order.iter().enumerate() {
            let s = ws[i as usize].stake_m;
            let lo = if k > 0 {
                (ws[order[k - 1] as usize].stake_m + s) / 2.0
            } else {
                g.start_m()
            };
            let hi = if k + 1 < order.len() {
                (ws[order[k + 1] as usize].stake_m + s) / 2.0
            } else {
                g.end_m()
            };
            cover[i as usize] = (lo.max(s - cfg.cover_max_m), hi.min(s + cfg.cover_max_m));
        }
        WeatherWatch {
            cfg,
            order,
            cover,
            stake: ws.iter().map(|w| w.stake_m).collect(),
            st: vec![StationWx::new(); ws.len()],
            fog: Vec::new(),
            ice: Vec::new(),
        }
    }

    /// One reading: updates the station at once (fog worsens immediately).
    /// Returns whether the station's fog band changed (a lower limit is
    /// due now, not at the end of the tick; a released one too).
    pub fn observe(&mut self, w: &WeatherObs) -> bool {
        let cfg = &self.cfg;
        let Some(s) = self.st.get_mut(w.station as usize) else {
            return false;
        };
        let mut band_changed = false;
        let t = w.ts_ms;
        if let Some(vis) = w.visibility_m {
            s.vis_now = vis;
            let now_band = band_of(&cfg.fog_bands_m, vis);
            if now_band > s.band {
                if s.band == 0 {
                    s.fog_start = t;
                }
                s.band = now_band;
                band_changed = true;
                s.improve_since = NEVER;
            } else {
                let relaxed = band_of(&cfg.fog_bands_m, vis / cfg.fog_hysteresis);
                if relaxed < s.band {
                    if s.improve_since == NEVER {
                        s.improve_since = t;
                    }
                    if t - s.improve_since >= cfg.fog_release_s as i64 * 1000 {
                        s.band = relaxed;
                        band_changed = true;
                        s.improve_since = if relaxed > 0 { t } else { NEVER };
                    }
                } else {
                    s.improve_since = NEVER;
                }
            }
        }
        if let Some(surf) = w.surface_temp_c {
            s.surface_now = surf;
            // Trend samples, at most one a minute.
            let last = if s.n_temps > 0 {
                s.temps[(s.n_temps - 1) % 32].0
            } else {
                NEVER
            };
            if t - last >= 60_000 {
                s.temps[s.n_temps % 32] = (t, surf);
                s.n_temps += 1;
            }
            let moist = matches!(
                w.surface_state,
                SurfaceState::Moist | SurfaceState::Wet | SurfaceState::Snow | SurfaceState::Ice
            ) || w.humidity_pct.is_some_and(|h| h >= cfg.ice_humidity_pct)
                || matches!((w.air_temp_c, w.humidity_pct), (Some(a), Some(h)) if surf - dew_point_c(a, h) <= cfg.ice_dew_margin_c);
            let observed = matches!(w.surface_state, SurfaceState::Ice | SurfaceState::Snow)
                || (surf <= 0.0 && moist);
            let lowest = projected_low(
                &s.temps[..s.n_temps.min(32)],
                t,
                cfg.ice_trend_window_s as i64 * 1000,
                cfg.ice_horizon_s as f64,
            );
            let predicted = moist
                && (surf <= cfg.ice_margin_c
                    || (surf <= cfg.ice_trend_max_c && lowest.is_some_and(|v| v <= 0.0)));
            let level = if observed {
                2
            } else if predicted {
                1
            } else {
                0
            };
            if level > 0 {
                if s.ice_level == 0 {
                    s.ice_start = t;
                }
                s.ice_level = s.ice_level.max(level);
                if level == 2 {
                    s.ice_level = 2;
                }
                s.ice_clear_since = NEVER;
            } else if s.ice_level > 0 {
                if s.ice_clear_since == NEVER {
                    s.ice_clear_since = t;
                }
                if t - s.ice_clear_since >= cfg.ice_release_s as i64 * 1000 {
                    s.ice_level = 0;
                    s.ice_clear_since = NEVER;
                }
            }
        }
        band_changed
    }

    /// Current fog zones.
    pub fn fog_zones(&self) -> &[WeatherZone] {
        &self.fog
    }

    /// Current ice zones.
    pub fn ice_zones(&self) -> &[WeatherZone] {
        &self.ice
    }

    /// Open events (for the end of a replay).
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.fog.iter().chain(self.ice.iter()).map(|z| &z.event)
    }

    /// Rebuilds the zones at the end of a tick: opens, grows, merges and
    /// closes events.
    pub fn close_tick(&mut self, now_ms: i64, next_seq: &mut u64, closed: &mut Vec<Event>) {
        let fog_clusters = self.clusters(|s| s.band, |s| s.vis_now, |s| s.fog_start, f32::min);
        let ice_clusters = self.clusters(
            |s| s.ice_level,
            |s| s.surface_now,
            |s| s.ice_start,
            f32::min,
        );
        update_zones(
            &mut self.fog,
            fog_clusters,
            EventKind::Fog,
            now_ms,
            next_seq,
            closed,
        );
        update_zones(
            &mut self.ice,
            ice_clusters,
            EventKind::Ice,
            now_ms,
            next_seq,
            closed,
        );
    }

    fn clusters(
        &self,
        level: impl Fn(&StationWx) -> u8,
        value: impl Fn(&StationWx) -> f32,
        start: impl Fn(&StationWx) -> i64,
        worst: impl Fn(f32, f32) -> f32,
    ) -> Vec<Cluster> {
        let mut out: Vec<Cluster> = Vec::new();
        let mut prev_in = false;
        for &i in &self.order {
            let s = &self.st[i as usize];
            let lv = level(s);
            if lv == 0 {
                prev_in = false;
                continue;
            }
            let (lo, hi) = self.cover[i as usize];
            let v = value(s);
            let part = ZonePart {
                station: i,
                stake_m: self.stake[i as usize],
                level: lv,
                from_m: lo,
                to_m: hi,
            };
            match out.last_mut() {
                Some(c) if prev_in && lo <= c.to_m + 1.0 => {
                    c.to_m = hi;
                    c.level = c.level.max(lv);
                    c.value = if v.is_finite() {
                        if c.value.is_finite() {
                            worst(c.value, v)
                        } else {
                            v
                        }
                    } else {
                        c.value
                    };
                    c.start = c.start.min(start(s));
                    c.stations.push(i);
                    c.parts.push(part);
                }
                _ => out.push(Cluster {
                    from_m: lo,
                    to_m: hi,
                    level: lv,
                    value: v,
                    start: start(s),
                    stations: vec![i],
                    parts: vec![part],
                }),
            }
            prev_in = true;
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Cluster {
    from_m: f64,
    to_m: f64,
    level: u8,
    value: f32,
    start: i64,
    stations: Vec<u32>,
    parts: Vec<ZonePart>,
}

/// The lowest surface temperature the station's own recent course reaches
/// within `horizon_s`: a least-squares parabola through the samples of the
/// window ending at `now`, followed to where it levels off (its vertex) or
/// to the horizon. A surface cooling under a clear sky falls fast and then
/// levels off; a straight line through the fast part (the rule before)
/// froze stations that levelled off at 2–3 °C (the issue-15 validation ice
/// night raised ice 74 min early at a station that never went below
/// 2.5 °C). `None` while falling is not established (fewer than 10
/// samples, or not falling now).
fn projected_low(samples: &[(i64, f32)], now: i64, window_ms: i64, horizon_s: f64) -> Option<f32> {
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(t, _)| *t > NEVER && now - *t <= window_ms)
        .map(|(t, v)| ((*t - now) as f64 / 1000.0, *v as f64))
        .collect();
    if pts.len() < 10 {
        return None;
    }
    // Normal equations of y = a + b·x + c·x², x in hours (well scaled).
    let mut m = [[0.0f64; 3]; 3];
    let mut r = [0.0f64; 3];
    for &(x, y) in &pts {
        let x = x / 3600.0;
        let p = [1.0, x, x * x];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += p[i] * p[j];
            }
            r[i] += p[i] * y;
        }
    }
    let [a, b, c] = solve3(m, r)?;
    if b >= 0.0 {
        return None; // not falling now
    }
    let h = horizon_s / 3600.0;
    let q = |x: f64| a + b * x + c * x * x;
    let low = if c <= 0.0 {
        // Still speeding up (the onset of the fall): no more than a line.
        a + b * h
    } else if -b / (2.0 * c) < h {
        q(-b / (2.0 * c))
    } else {
        q(h)
    };
    Some(low as f32)
}

/// Solves a 3×3 linear system (Cramer's rule); `None` if singular.
fn solve3(m: [[f64; 3]; 3], r: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    if d.abs() < 1e-12 {
        return None;
    }
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut mk = m;
        for i in 0..3 {
            mk[i][k] = r[i];
        }
        *o = det(&mk) / d;
    }
    Some(out)
}

fn update_zones(
    zones: &mut Vec<WeatherZone>,
    clusters: Vec<Cluster>,
    kind: EventKind,
    now_ms: i64,
    next_seq: &mut u64,
    closed: &mut Vec<Event>,
) {
    let mut taken = vec![false; zones.len()];
    let mut next: Vec<WeatherZone> = Vec::new();
    for c in clusters {
        // The oldest open zone that overlaps continues; others it touches merge into it.
        let mut keep: Option<usize> = None;
        for (zi, z) in zones.iter().enumerate() {
            if taken[zi] || z.event.to_m < c.from_m || z.event.from_m > c.to_m {
                continue;
            }
            if keep.is_none() {
                keep = Some(zi);
            } else {
                // Merged away: the zone ends here, inside the continuing one.
                let mut e = z.event.clone();
                e.end_ms = Some(now_ms);
                closed.push(e);
            }
            taken[zi] = true;
        }
        let mut zone = match keep {
            Some(zi) => zones[zi].clone(),
            None => {
                let seq = *next_seq;
                *next_seq += 1;
                let detail = match kind {
                    EventKind::Fog => EventDetail::Fog {
                        visibility_m: c.value,
                        band: c.level,
                    },
                    _ => EventDetail::Ice {
                        surface_temp_c: c.value,
                        observed: c.level >= 2,
                    },
                };
                WeatherZone {
                    event: Event {
                        seq,
                        kind,
                        direction: None,
                        from_m: c.from_m,
                        to_m: c.to_m,
                        start_ms: c.start.min(now_ms),
                        detected_ms: now_ms,
                        end_ms: None,
                        severity: 1,
                        rule: if kind == EventKind::Fog {
                            "weather.fog_band"
                        } else {
                            "weather.ice_risk"
                        },
                        detectors: Vec::new(),
                        detail,
                    },
                    level: c.level,
                    value_now: c.value,
                    stations: Vec::new(),
                    parts: Vec::new(),
                }
            }
        };
        zone.event.from_m = c.from_m;
        zone.event.to_m = c.to_m;
        zone.level = c.level;
        zone.value_now = c.value;
        zone.stations = c.stations;
        zone.parts = c.parts;
        match &mut zone.event.detail {
            EventDetail::Fog { visibility_m, band } => {
                if c.value.is_finite() {
                    *visibility_m = if visibility_m.is_finite() {
                        visibility_m.min(c.value)
                    } else {
                        c.value
                    };
                }
                *band = (*band).max(c.level);
                zone.event.severity = (*band).min(5);
            }
            EventDetail::Ice {
                surface_temp_c,
                observed,
            } => {
                if c.value.is_finite() {
                    *surface_temp_c = if surface_temp_c.is_finite() {
                        surface_temp_c.min(c.value)
                    } else {
                        c.value
                    };
                }
                *observed |= c.level >= 2;
                zone.event.severity = if *observed { 4 } else { 2 };
            }
            _ => {}
        }
        next.push(zone);
    }
    for (zi, z) in zones.iter().enumerate() {
        if !taken[zi] {
            let mut e = z.event.clone();
            e.end_ms = Some(now_ms);
            closed.push(e);
        }
    }
    *zones = next;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dew_point_matches_tables() {
        // 20 °C at 50 % → 9.3 °C; 0 °C at 100 % → 0 °C.
        assert!((dew_point_c(20.0, 50.0) - 9.3).abs() < 0.2);
        assert!(dew_point_c(0.0, 100.0).abs() < 0.05);
    }

    #[test]
    fn bands() {
        let b = WeatherConfig::default().fog_bands_m;
        let cases = [
            (10_000.0, 0),
            (500.0, 0),
            (499.0, 1),
            (199.0, 2),
            (99.0, 3),
            (49.0, 4),
            (29.0, 5),
            (0.0, 5),
        ];
        for (v, want) in cases {
            assert_eq!(band_of(&b, v), want, "{v}");
        }
    }

    #[test]
    fn projected_low_levels_off() {
        // A steady fall of 3 °C/h from 2 °C reaches 0 within the hour.
        let fall: Vec<(i64, f32)> = (0..30)
            .map(|k| (k * 60_000, 3.5 - 0.05 * k as f32))
            .collect();
        let low = projected_low(&fall, 29 * 60_000, 1_800_000, 3600.0).unwrap();
        assert!(low < -0.5, "{low}");
        // The same fall levelling off towards 2.4 °C does not.
        let level: Vec<(i64, f32)> = (0..30)
            .map(|k| (k * 60_000, 2.4 + 1.6 * (-(k as f32) / 12.0).exp()))
            .collect();
        let low = projected_low(&level, 29 * 60_000, 1_800_000, 3600.0);
        assert!(low.is_none_or(|v| v > 1.5), "{low:?}");
        // Halfway down the same curve it is still falling, and levels off
        // above freezing.
        let low = projected_low(&level[..20], 19 * 60_000, 1_800_000, 3600.0);
        assert!(low.is_some_and(|v| v > 1.0), "{low:?}");
    }
}
