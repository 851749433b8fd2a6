//! What happens on the simulated road: demand, climate and scripted episodes
//! (情景脚本). Times are seconds after local midnight of the simulation's
//! first day.

use zhilu_road::{Direction, RoadBook};

/// Travel demand: a daily profile of the mainline inflow and the ramps' shares.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandProfile {
    /// Knots `(hour of day, veh/h per lane)` of the mainline inflow at each
    /// carriageway's upstream end, linear in between, wrapping at 24 h.
    pub mainline_vph_lane: Vec<(f64, f64)>,
    /// Multiplier per direction (`[up, down]`).
    pub direction_factor: [f64; 2],
    /// Demand of each on-ramp as a share of the mainline inflow.
    pub on_ramp_share: f64,
    /// Share of the passing traffic that leaves at each off-ramp (分流比).
    pub off_ramp_share: f64,
    /// Standard deviation of the slow (≈ 5 min) multiplicative noise on each source.
    pub noise: f64,
}

impl DemandProfile {
    /// A weekday: quiet night, a morning peak around 08:00 and an evening peak around 18:00.
    pub fn weekday() -> DemandProfile {
        DemandProfile {
            mainline_vph_lane: vec![
                (0.0, 170.0),
                (3.0, 110.0),
                (5.0, 230.0),
                (6.0, 600.0),
                (7.0, 1050.0),
                (8.0, 1200.0),
                (9.0, 980.0),
                (10.0, 800.0),
                (12.0, 760.0),
                (14.0, 800.0),
                (16.0, 900.0),
                (17.0, 1080.0),
                (18.0, 1120.0),
                (19.0, 900.0),
                (21.0, 560.0),
                (23.0, 280.0),
            ],
            direction_factor: [1.0, 0.95],
            on_ramp_share: 0.11,
            off_ramp_share: 0.10,
            noise: 0.06,
        }
    }

    /// A demand held at `vph_lane` around the clock (tests).
    pub fn constant(vph_lane: f64) -> DemandProfile {
        DemandProfile {
            mainline_vph_lane: vec![(0.0, vph_lane)],
            direction_factor: [1.0, 1.0],
            on_ramp_share: 0.0,
            off_ramp_share: 0.0,
            noise: 0.0,
        }
    }

    /// Mainline inflow per lane at `hour` (local, 0–24) for `dir` (veh/h).
    pub fn mainline_at(&self, dir: Direction, hour: f64) -> f64 {
        let k = &self.mainline_vph_lane;
        let f = self.direction_factor[dir.index()];
        let Some(first) = k.first() else {
            return 0.0;
        };
        if k.len() == 1 {
            return first.1 * f;
        }
        let h = hour.rem_euclid(24.0);
        // Knots are sorted by hour (checked by `Scenario::validate`).
        let i = k.partition_point(|p| p.0 <= h);
        let (a, b) = if i == 0 {
            let last = k[k.len() - 1];
            ((last.0 - 24.0, last.1), k[0])
        } else if i == k.len() {
            (k[k.len() - 1], (k[0].0 + 24.0, k[0].1))
        } else {
            (k[i - 1], k[i])
        };
        let t = if b.0 > a.0 {
            (h - a.0) / (b.0 - a.0)
        } else {
            0.0
        };
        (a.1 + t * (b.1 - a.1)).max(0.0) * f
    }
}

/// The day's weather apart from episodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Climate {
    /// Lowest air temperature, reached at 06:30 (°C).
    pub air_min_c: f64,
    /// Highest air temperature, reached at 14:30 (°C).
    pub air_max_c: f64,
    /// Relative humidity in the afternoon (%).
    pub humidity_min_pct: f64,
    /// Relative humidity at dawn (%).
    pub humidity_max_pct: f64,
    /// Visibility in clear air (m).
    pub clear_visibility_m: f64,
    /// How much colder a bridge deck (a de-icer zone) gets at night (°C).
    pub bridge_chill_c: f64,
}

impl Default for Climate {
    fn default() -> Self {
        Climate {
            air_min_c: 3.5,
            air_max_c: 11.0,
            humidity_min_pct: 45.0,
            humidity_max_pct: 80.0,
            clear_visibility_m: 12_000.0,
            bridge_chill_c: 1.0,
        }
    }
}

/// An incident (事故): lanes blocked at a stake for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Start (s after the first local midnight).
    pub start_s: u32,
    /// Duration (s).
    pub duration_s: u32,
    /// Carriageway.
    pub direction: Direction,
    /// Stake (m).
    pub stake_m: f64,
    /// Lanes blocked, counted from the outer lane.
    pub lanes_blocked: u8,
}

/// A fog bank (团雾): visibility falls over a stretch, rolls in and clears.
#[derive(Debug, Clone, PartialEq)]
pub struct FogBank {
    /// Start of the roll-in (s after the first local midnight).
    pub start_s: u32,
    /// Duration including roll-in and clearing (s).
    pub duration_s: u32,
    /// Lower stake of the core (m).
    pub from_m: f64,
    /// Upper stake of the core (m).
    pub to_m: f64,
    /// Width over which the fog thins out beyond the core (m).
    pub taper_m: f64,
    /// Visibility in the core at full strength (m).
    pub min_visibility_m: f64,
    /// Time to roll in, and to clear (s).
    pub roll_s: u32,
}

/// An ice spell (路面结冰): the surface falls below 0 °C with moisture.
#[derive(Debug, Clone, PartialEq)]
pub struct IceSpell {
    /// Start (s after the first local midnight).
    pub start_s: u32,
    /// Duration (s).
    pub duration_s: u32,
    /// Lower stake (m).
    pub from_m: f64,
    /// Upper stake (m).
    pub to_m: f64,
    /// Coldest surface temperature (°C).
    pub min_surface_c: f64,
}

/// A hazmat truck (危化品车) that stops on the carriageway, e.g. inside a tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct HazmatStop {
    /// When it should stop (s after the first local midnight); it is sent
    /// on its way early enough to get there at free speed.
    pub start_s: u32,
    /// How long it stands (s).
    pub duration_s: u32,
    /// Carriageway.
    pub direction: Direction,
    /// Where it stops (m).
    pub stake_m: f64,
}

/// A hazmat truck driving above its limit (80 km/h).
#[derive(Debug, Clone, PartialEq)]
pub struct HazmatSpeeding {
    /// When it enters the road (s after the first local midnight).
    pub start_s: u32,
    /// Carriageway.
    pub direction: Direction,
    /// The speed it wants to drive (km/h).
    pub speed_kmh: f64,
}

/// How a detector misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Repeats its last reading (rule `stuck`).
    Stuck,
    /// Sends nothing (rule `missing`).
    Silent,
    /// Counts phantom vehicles while its occupancy says nobody passed (rule `inconsistent`).
    Chattering,
    /// Counts nothing while traffic flows (rule `zero_flow`).
    Dead,
    /// Reports full occupancy and no vehicles (rule `locked_on`).
    LockedOn,
}

impl FaultKind {
    /// The data-quality rule that should catch it (`docs/QUALITY.md`).
    pub fn rule(self) -> zhilu_contract::FaultRule {
        use zhilu_contract::FaultRule;
        match self {
            FaultKind::Stuck => FaultRule::Stuck,
            FaultKind::Silent => FaultRule::Missing,
            FaultKind::Chattering => FaultRule::Inconsistent,
            FaultKind::Dead => FaultRule::ZeroFlow,
            FaultKind::LockedOn => FaultRule::LockedOn,
        }
    }
}

/// A detector fault (检测器故障).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorFault {
    /// Start (s after the first local midnight).
    pub start_s: u32,
    /// Duration (s).
    pub duration_s: u32,
    /// Detector id in the road book.
    pub detector: String,
    /// Lane (1 = innermost), or `None` for the whole station.
    pub lane: Option<u8>,
    /// What goes wrong.
    pub kind: FaultKind,
}

/// One scripted episode.
#[derive(Debug, Clone, PartialEq)]
pub enum Episode {
    /// Lanes blocked.
    Incident(Incident),
    /// Fog bank.
    FogBank(FogBank),
    /// Ice spell.
    Ice(IceSpell),
    /// Hazmat truck stopping.
    HazmatStop(HazmatStop),
    /// Hazmat truck speeding.
    HazmatSpeeding(HazmatSpeeding),
    /// Detector fault.
    DetectorFault(DetectorFault),
}

/// A scenario: demand, climate and the episodes of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name (goes nowhere but logs).
    pub name: String,
    /// Travel demand.
    pub demand: DemandProfile,
    /// Background weather.
    pub climate: Climate,
    /// Scripted episodes.
    pub episodes: Vec<Episode>,
}

const H: u32 = 3600;
const MIN: u32 = 60;

/// A stake at a share of the road's length, rounded to 100 m.
fn at_share(road: &RoadBook, share: f64) -> f64 {
    let g = road.geometry();
    ((g.start_m() + share * (g.end_m() - g.start_m())) / 100.0).round() * 100.0
}

fn main_direction(road: &RoadBook) -> Direction {
    if road.directions().contains(&Direction::Up) {
        Direction::Up
    } else {
        Direction::Down
    }
}

/// Detector of `dir` nearest to `stake_m`.
fn detector_near(road: &RoadBook, dir: Direction, stake_m: f64) -> Option<&str> {
    road.detectors()
        .iter()
        .filter(|d| d.direction == dir)
        .min_by(|a, b| {
            (a.stake_m - stake_m)
                .abs()
                .total_cmp(&(b.stake_m - stake_m).abs())
        })
        .map(|d| d.id.as_str())
}

fn tunnel_for_hazmat(road: &RoadBook) -> Option<&zhilu_road::Tunnel> {
    road.tunnels()
        .iter()
        .find(|t| t.hazmat_forbidden)
        .or_else(|| road.tunnels().first())
}

impl Scenario {
    /// A quiet day: weekday demand, default climate, no episodes.
    pub fn quiet() -> Scenario {
        Scenario {
            name: "quiet".into(),
            demand: DemandProfile::weekday(),
            climate: Climate::default(),
            episodes: Vec::new(),
        }
    }

    /// The demo morning (演示早高峰): a fog bank 05:30–07:30 over the
    /// second sixth of the road (K20–K30 on the 60-km demo) thinning to
    /// < 50 m in its core; ice on the first de-icer zone (the bridge)
    /// 05:00–06:30; a hazmat truck stopping for 10 min in the tunnel closed
    /// to hazmat at 06:15; an incident blocking one lane at 58 % of the road
    /// (K35) up for 25 min from 07:40; a stuck and a silent detector lane.
    /// Places scale with the road; episodes whose place the road lacks are left out.
    pub fn demo_morning(road: &RoadBook) -> Scenario {
        let dir = main_direction(road);
        let mut episodes = vec![Episode::FogBank(FogBank {
            start_s: 5 * H + 30 * MIN,
            duration_s: 2 * H,
            from_m: at_share(road, 22.0 / 60.0),
            to_m: at_share(road, 28.0 / 60.0),
            taper_m: at_share(road, 3.0 / 60.0) - at_share(road, 0.0),
            min_visibility_m: 30.0,
            roll_s: 30 * MIN,
        })];
        if let Some(z) = road.deicers().first() {
            episodes.push(Episode::Ice(IceSpell {
                start_s: 5 * H,
                duration_s: 90 * MIN,
                from_m: z.from_m,
                to_m: z.to_m,
                min_surface_c: -2.5,
            }));
        }
        if let Some(t) = tunnel_for_hazmat(road) {
            episodes.push(Episode::HazmatStop(HazmatStop {
                start_s: 6 * H + 15 * MIN,
                duration_s: 10 * MIN,
                direction: dir,
                stake_m: ((t.from_m + t.to_m) / 2.0).round(),
            }));
        }
        episodes.push(Episode::Incident(Incident {
            start_s: 7 * H + 40 * MIN,
            duration_s: 25 * MIN,
            direction: dir,
            stake_m: at_share(road, 35.3 / 60.0),
            lanes_blocked: 1,
        }));
        if let Some(d) = detector_near(road, dir, at_share(road, 20.0 / 60.0)) {
            episodes.push(Episode::DetectorFault(DetectorFault {
                start_s: 8 * H + 30 * MIN,
                duration_s: 40 * MIN,
                detector: d.to_string(),
                lane: Some(2),
                kind: FaultKind::Stuck,
            }));
        }
        let other = if road.directions().contains(&Direction::Down) {
            Direction::Down
        } else {
            dir
        };
        if let Some(d) = detector_near(road, other, at_share(road, 12.0 / 60.0)) {
            episodes.push(Episode::DetectorFault(DetectorFault {
                start_s: 9 * H + 10 * MIN,
                duration_s: 30 * MIN,
                detector: d.to_string(),
                lane: None,
                kind: FaultKind::Silent,
            }));
        }
        Scenario {
            name: "demo-morning".into(),
            demand: DemandProfile::weekday(),
            climate: Climate::default(),
            episodes,
        }
    }

    /// A random day on `road` for variety: weather, 0–1 fog bank, maybe ice,
    /// 1–2 incidents, hazmat violations and 1–3 detector faults.
    pub fn random(road: &RoadBook, seed: u64) -> Scenario {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5CE7_A210);
        let g = road.geometry();
        let (a, b) = (g.start_m(), g.end_m());
        let len = b - a;
        let stake = |rng: &mut fastrand::Rng, lo: f64, hi: f64| -> f64 {
            ((a + len * (lo + (hi - lo) * rng.f64())) / 100.0).round() * 100.0
        };
        let dirs = road.directions();
        let pick_dir = |rng: &mut fastrand::Rng| dirs[rng.usize(0..dirs.len())];
        let cold = rng.f64() < 0.5;
        let climate = Climate {
            air_min_c: if cold {
                -4.0 + 4.0 * rng.f64()
            } else {
                2.0 + 6.0 * rng.f64()
            },
            air_max_c: 8.0 + 10.0 * rng.f64(),
            humidity_max_pct: 72.0 + 12.0 * rng.f64(),
            ..Climate::default()
        };
        let mut demand = DemandProfile::weekday();
        let scale = 0.85 + 0.25 * rng.f64();
        for k in &mut demand.mainline_vph_lane {
            k.1 *= scale;
        }
        let mut episodes = Vec::new();
        if rng.f64() < 0.7 {
            let from = stake(&mut rng, 0.1, 0.8);
            let core = len * (0.03 + 0.1 * rng.f64());
            episodes.push(Episode::FogBank(FogBank {
                start_s: 4 * H + rng.u32(0..3 * H),
                duration_s: H + rng.u32(0..2 * H),
                from_m: from,
                to_m: (from + core).min(b),
                taper_m: len * 0.05,
                min_visibility_m: 25.0 + 150.0 * rng.f64(),
                roll_s: 20 * MIN + rng.u32(0..20 * MIN),
            }));
        }
        if cold || rng.f64() < 0.3 {
            let (from, to) = match road.deicers().first() {
                Some(z) if rng.bool() => (z.from_m, z.to_m),
                _ => {
                    let s = stake(&mut rng, 0.05, 0.9);
                    (s, (s + 1500.0).min(b))
                }
            };
            if to > from {
                episodes.push(Episode::Ice(IceSpell {
                    start_s: 4 * H + rng.u32(0..2 * H),
                    duration_s: H + rng.u32(0..H),
                    from_m: from,
                    to_m: to,
                    min_surface_c: -1.0 - 3.0 * rng.f64(),
                }));
            }
        }
        for _ in 0..1 + rng.usize(0..2) {
            episodes.push(Episode::Incident(Incident {
                start_s: 6 * H + rng.u32(0..14 * H),
                duration_s: 15 * MIN + rng.u32(0..30 * MIN),
                direction: pick_dir(&mut rng),
                stake_m: stake(&mut rng, 0.1, 0.95),
                lanes_blocked: 1 + rng.u8(0..2),
            }));
        }
        if let Some(t) = tunnel_for_hazmat(road)
            && rng.f64() < 0.5
        {
            episodes.push(Episode::HazmatStop(HazmatStop {
                start_s: 6 * H + rng.u32(0..12 * H),
                duration_s: 5 * MIN + rng.u32(0..15 * MIN),
                direction: pick_dir(&mut rng),
                stake_m: ((t.from_m + t.to_m) / 2.0).round(),
            }));
        }
        if rng.f64() < 0.6 {
            episodes.push(Episode::HazmatSpeeding(HazmatSpeeding {
                start_s: 6 * H + rng.u32(0..14 * H),
                direction: pick_dir(&mut rng),
                speed_kmh: 90.0 + 15.0 * rng.f64(),
            }));
        }
        let dets = road.detectors();
        if !dets.is_empty() {
            let kinds = [
                FaultKind::Stuck,
                FaultKind::Silent,
                FaultKind::Chattering,
                FaultKind::Dead,
                FaultKind::LockedOn,
            ];
            for _ in 0..1 + rng.usize(0..3) {
                let d = &dets[rng.usize(0..dets.len())];
                let kind = kinds[rng.usize(0..kinds.len())];
                episodes.push(Episode::DetectorFault(DetectorFault {
                    start_s: 7 * H + rng.u32(0..12 * H),
                    duration_s: 20 * MIN + rng.u32(0..40 * MIN),
                    detector: d.id.clone(),
                    lane: (kind != FaultKind::Silent).then(|| 1 + rng.u8(0..d.lanes)),
                    kind,
                }));
            }
        }
        Scenario {
            name: format!("random-{seed}"),
            demand,
            climate,
            episodes,
        }
    }

    /// Checks the scenario against the road: known detectors, stakes on the
    /// road, directions the road has, sorted demand knots.
    pub fn validate(&self, road: &RoadBook) -> Result<(), String> {
        let k = &self.demand.mainline_vph_lane;
        if k.is_empty() {
            return Err("demand: at least one knot is needed".into());
        }
        if k.windows(2).any(|w| w[1].0 <= w[0].0)
            || k.iter()
                .any(|p| !(0.0..24.0).contains(&p.0) || !p.1.is_finite() || p.1 < 0.0)
        {
            return Err("demand: knots must be sorted hours in 0…24 with flows ≥ 0".into());
        }
        let d = &self.demand;
        if !(0.0..=1.0).contains(&d.on_ramp_share)
            || !(0.0..0.9).contains(&d.off_ramp_share)
            || !(0.0..0.5).contains(&d.noise)
            || d.direction_factor
                .iter()
                .any(|f| !f.is_finite() || *f < 0.0)
        {
            return Err("demand: shares or noise out of range".into());
        }
        let g = road.geometry();
        let on_road = |s: f64| s.is_finite() && g.contains(s);
        let has_dir = |dir: Direction| road.directions().contains(&dir);
        for (i, e) in self.episodes.iter().enumerate() {
            let bad = |m: &str| Err(format!("episode {}: {m}", i + 1));
            match e {
                Episode::Incident(x) => {
                    if !on_road(x.stake_m) || !has_dir(x.direction) || x.lanes_blocked == 0 {
                        return bad(
                            "incident needs a stake on the road, a direction of the road and ≥ 1 lane",
                        );
                    }
                }
                Episode::FogBank(x) => {
                    if !(x.to_m >= x.from_m
                        && x.from_m.is_finite()
                        && x.to_m.is_finite()
                        && x.min_visibility_m > 0.0
                        && x.taper_m >= 0.0)
                    {
                        return bad(
                            "fog bank needs from_m ≤ to_m, a positive visibility and taper ≥ 0",
                        );
                    }
                }
                Episode::Ice(x) => {
                    if !(x.to_m >= x.from_m && x.from_m.is_finite() && x.min_surface_c.is_finite())
                    {
                        return bad("ice spell needs from_m ≤ to_m and a finite temperature");
                    }
                }
                Episode::HazmatStop(x) => {
                    if !on_road(x.stake_m) || !has_dir(x.direction) {
                        return bad(
                            "hazmat stop needs a stake on the road and a direction of the road",
                        );
                    }
                }
                Episode::HazmatSpeeding(x) => {
                    if !(has_dir(x.direction) && x.speed_kmh > 0.0 && x.speed_kmh < 250.0) {
                        return bad(
                            "hazmat speeding needs a direction of the road and a speed in 0…250",
                        );
                    }
                }
                Episode::DetectorFault(x) => {
                    let Some(di) = road.detector_index(&x.detector) else {
                        return bad(&format!("unknown detector `{}`", x.detector));
                    };
                    let det = &road.detectors()[di as usize];
                    if x.lane.is_some_and(|l| l == 0 || l > det.lanes) {
                        return bad(&format!("detector `{}` has no such lane", x.detector));
                    }
                }
            }
        }
        Ok(())
    }
}
