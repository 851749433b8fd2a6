//! The bulk day generator (`zhilu gen-day`, 大规模合成日): a synthetic
//! corridor of any size — a contract-conformant `ROAD.toml` and the OBS,
//! WEATHER, POS and CAM files (1,000 stations × 3 lanes × 20 s for a day is
//! 13 million observation rows) — from closed-form truth rather than the
//! cell transmission model of [`crate::Sim`]: a daily traffic profile, a
//! recurrent bottleneck whose queue grows and dissolves as a shockwave, a
//! morning fog bank, trucks (some carrying hazardous goods) and injected
//! detector faults whose ground truth goes to `TRUTH.jsonl`. It is what the
//! replay benchmarks and the big-day tests read; [`crate::write_day`] is the
//! simulated road for a given road book.
//!
//! Must not: hold a day in memory — every file is written as it is
//! generated. It shares the crate's contract vocabulary, random draws
//! ([`crate::sim`]'s Poisson) and clock (`zhilu-contract`'s times).

use std::io::{self, Write};

use zhilu_contract::{
    CAM_HEADER, CameraKind, EventKind, FaultRule, OBS_HEADER, POS_HEADER, SurfaceState,
    VehicleClass, WEATHER_HEADER, midnight_ms, time_string,
};
use zhilu_road::{Direction, Stake};

use crate::sim::poisson;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DayConfig {
    /// Detector stations in total (split over the two directions).
    pub stations: u32,
    /// Lanes per direction.
    pub lanes: u8,
    /// Detector interval (s).
    pub interval_s: u16,
    /// Distance between stations (m).
    pub spacing_m: f64,
    /// Days to generate.
    pub days: u32,
    /// First hour of each day generated (local time).
    pub from_hour: u32,
    /// Hours generated per day (≤ 24).
    pub hours: u32,
    /// First local date, `YYYY-MM-DD`.
    pub date: String,
    /// Seed of the random numbers.
    pub seed: u64,
    /// Inject detector faults (and write their ground truth).
    pub faults: bool,
    /// Vehicles reporting positions.
    pub vehicles: u32,
}

impl Default for DayConfig {
    fn default() -> Self {
        DayConfig {
            stations: 1000,
            lanes: 3,
            interval_s: 20,
            spacing_m: 1000.0,
            days: 1,
            from_hour: 0,
            hours: 24,
            date: "2026-11-23".into(),
            seed: 1,
            faults: true,
            vehicles: 200,
        }
    }
}

/// UTC offset of generated days (China Standard Time).
pub const TZ_OFFSET_S: i32 = 8 * 3600;

/// A detector fault injected into the day.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedFault {
    /// Rule it should trigger (`stuck`, `zero_flow`, `locked_on`, `missing`, `inconsistent`).
    pub rule: &'static str,
    /// Station index (into the generated detector list).
    pub station: u32,
    /// Lane (1-based), or 0 for the whole station.
    pub lane: u8,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// End (epoch ms).
    pub end_ms: i64,
}

/// A generated corridor: station layout and time range.
#[derive(Debug, Clone)]
pub struct Day {
    cfg: DayConfig,
    /// Stations: (id, direction, stake_m).
    pub stations: Vec<(String, Direction, f64)>,
    /// Road length (m).
    pub length_m: f64,
    /// Start of the first day (local midnight, epoch ms).
    pub midnight_ms: i64,
    /// Injected faults.
    pub faults: Vec<InjectedFault>,
}

fn fmt_time(ts_ms: i64) -> String {
    time_string(ts_ms, TZ_OFFSET_S)
}

impl Day {
    /// Lays out the corridor. Fails on an unparsable date or empty sizes.
    pub fn new(cfg: DayConfig) -> Result<Day, String> {
        if cfg.stations == 0
            || cfg.lanes == 0
            || cfg.lanes > 8
            || cfg.interval_s == 0
            || cfg.days == 0
        {
            return Err("stations, lanes (1–8), interval and days must be positive".into());
        }
        if cfg.hours == 0 || cfg.hours > 24 || cfg.from_hour > 23 {
            return Err("hours must be 1–24 and from-hour 0–23".into());
        }
        if cfg.spacing_m < 100.0 {
            return Err("spacing must be at least 100 m".into());
        }
        let midnight_ms = midnight_ms(&cfg.date, TZ_OFFSET_S)?;
        let up = cfg.stations.div_ceil(2);
        let down = cfg.stations - up;
        let length_m = (up.max(down) as f64 + 1.0) * cfg.spacing_m;
        let mut stations = Vec::new();
        for i in 0..up {
            let s = (i as f64 + 1.0) * cfg.spacing_m;
            stations.push((format!("D{:05}U", i + 1), Direction::Up, s));
        }
        for i in 0..down {
            // Down stations sit a little off the up ones so ids and stakes differ.
            let s = (i as f64 + 1.0) * cfg.spacing_m + cfg.spacing_m / 2.0;
            stations.push((
                format!("D{:05}D", i + 1),
                Direction::Down,
                s.min(length_m - 1.0),
            ));
        }
        let mut day = Day {
            cfg,
            stations,
            length_m,
            midnight_ms,
            faults: Vec::new(),
        };
        if day.cfg.faults {
            day.plan_faults();
        }
        Ok(day)
    }

    /// The configuration.
    pub fn config(&self) -> &DayConfig {
        &self.cfg
    }

    fn plan_faults(&mut self) {
        let mut rng = fastrand::Rng::with_seed(self.cfg.seed ^ 0xFA17);
        let n = self.stations.len() as u32;
        let per_rule = 1 + n / 200;
        let day_start = self.midnight_ms + self.cfg.from_hour as i64 * 3_600_000;
        let mut used = std::collections::HashSet::new();
        for rule in [
            FaultRule::Stuck,
            FaultRule::ZeroFlow,
            FaultRule::LockedOn,
            FaultRule::Missing,
            FaultRule::Inconsistent,
        ]
        .map(FaultRule::as_str)
        {
            for _ in 0..per_rule {
                if used.len() as u32 >= n / 2 {
                    break;
                }
                // Not next to another faulty one, so neighbours are healthy. Stop when
                // no such station is left: drawing on would never end (10 stations
                // did that). The draw itself is unchanged, so days stay as they were.
                let free = |s: u32| {
                    !used.contains(&s)
                        && !used.contains(&(s + 1))
                        && !used.contains(&s.wrapping_sub(1))
                };
                if !(0..n).any(free) {
                    break;
                }
                let station = loop {
                    let s = rng.u32(0..n);
                    if free(s) {
                        break s;
                    }
                };
                used.insert(station);
                // Faults in busy hours (07:00–20:00 where generated), 20–60 min long.
                let len = rng.i64(20..=60) * 60_000;
                let day = rng.i64(0..self.cfg.days as i64);
                let (h0, h1) = (
                    self.cfg.from_hour as i64,
                    (self.cfg.from_hour + self.cfg.hours) as i64,
                );
                let (lo_h, hi_h) = if h0.max(7) < h1.min(20) {
                    (h0.max(7), h1.min(20))
                } else {
                    (h0, h1)
                };
                let lo = day * 86_400_000 + (lo_h - h0) * 3_600_000;
                let hi = (day * 86_400_000 + (hi_h - h0) * 3_600_000 - len).max(lo + 60_000);
                let start = day_start + rng.i64(lo..hi) / 60_000 * 60_000;
                let lane = if rule == FaultRule::Missing.as_str() {
                    0
                } else {
                    rng.u8(1..=self.cfg.lanes)
                };
                self.faults.push(InjectedFault {
                    rule,
                    station,
                    lane,
                    start_ms: start,
                    end_ms: start + len,
                });
            }
        }
    }

    /// Writes ROAD.toml.
    pub fn write_road(&self, w: &mut dyn Write) -> io::Result<()> {
        let c = &self.cfg;
        let len = self.length_m;
        writeln!(
            w,
            "# Generated by `zhilu gen-day` (seed {}): {} stations, {} lanes, {} m spacing.",
            c.seed, c.stations, c.lanes, c.spacing_m
        )?;
        writeln!(
            w,
            "[road]\nid = \"SIM{}\"\nname = \"仿真走廊\"\ntz = \"+08:00\"\ndirections = [\"up\", \"down\"]",
            c.seed
        )?;
        // A gently winding line heading south-west from Beijing, a vertex every 5 km.
        write!(w, "geometry = [")?;
        let step = 5000.0f64;
        let n = (len / step).ceil() as u64;
        let (mut lon, mut lat) = (116.32f64, 39.85f64);
        for k in 0..=n {
            let s = (k as f64 * step).min(len);
            if k > 0 {
                let bearing = (200.0 + 15.0 * (k as f64 * 0.7).sin()).to_radians();
                let d = s - ((k - 1) as f64 * step).min(len);
                lat += d * bearing.cos() / 111_195.0;
                lon += d * bearing.sin() / (111_195.0 * lat.to_radians().cos());
                write!(w, ", ")?;
            }
            write!(w, "[{s}, {lon:.6}, {lat:.6}]")?;
        }
        writeln!(w, "]\nlanes = {}\nspeed_limit_kmh = 120\n", c.lanes)?;
        for (id, dir, s) in &self.stations {
            writeln!(
                w,
                "[[detector]]\nid = \"{id}\"\ndirection = \"{}\"\nstake_m = \"{}\"\n",
                dir.as_str(),
                Stake(*s)
            )?;
        }
        for (i, k) in self.weather_stakes().into_iter().enumerate() {
            writeln!(w, "[[weather]]\nid = \"W{:03}\"\nstake_m = {k}\n", i + 1)?;
        }
        for (dir, tag) in [(Direction::Up, 'U'), (Direction::Down, 'D')] {
            let mut s = 1500.0;
            while s < len {
                writeln!(
                    w,
                    "[[vsl]]\nid = \"S{:05}{tag}\"\ndirection = \"{}\"\nstake_m = {s}\n",
                    (s / 100.0) as u64,
                    dir.as_str()
                )?;
                s += 2000.0;
            }
            let mut s = 3000.0;
            while s < len {
                writeln!(
                    w,
                    "[[vms]]\nid = \"M{:05}{tag}\"\ndirection = \"{}\"\nstake_m = {s}\n",
                    (s / 100.0) as u64,
                    dir.as_str()
                )?;
                s += 5000.0;
            }
        }
        let fog = self.fog_centre_m();
        writeln!(
            w,
            "[[fog_lights]]\nid = \"L1\"\nfrom_m = {}\nto_m = {}\n",
            (fog - 3000.0).max(0.0),
            (fog + 3000.0).min(len)
        )?;
        writeln!(
            w,
            "[[deicer]]\nid = \"I1\"\nfrom_m = {}\nto_m = {}\n",
            len * 0.8,
            (len * 0.8 + 1000.0).min(len)
        )?;
        let mut s = 7000.0;
        let mut i = 1;
        while s < len {
            writeln!(
                w,
                "[[interchange]]\nid = \"T{i:03}\"\nname = \"收费站{i}\"\nstake_m = {s}\ndirections = [\"up\", \"down\"]\n"
            )?;
            s += 15_000.0;
            i += 1;
        }
        // The recurrent bottlenecks are on-ramp merges: the road book says so.
        for (dir, tag) in [(Direction::Up, "U"), (Direction::Down, "D")] {
            let merge = dir.travel_m(self.bottleneck_m(dir)) - dir.sign() * 200.0;
            writeln!(
                w,
                "[[interchange]]\nid = \"TM{tag}\"\nname = \"汇入匝道{tag}\"\nstake_m = {}\ndirections = [\"{}\"]\n",
                merge.clamp(0.0, len).round(),
                dir.as_str()
            )?;
        }
        if len > 6000.0 {
            writeln!(
                w,
                "[[tunnel]]\nid = \"TN1\"\nfrom_m = {}\nto_m = {}\nhazmat = \"forbidden\"\n",
                (len * 0.6).round(),
                (len * 0.6 + 1200.0).round().min(len)
            )?;
        }
        let mut s = 20_000.0f64.min(len / 2.0);
        let mut i = 1;
        while s < len {
            writeln!(
                w,
                "[[service_area]]\nid = \"SA{i}\"\nname = \"服务区{i}\"\nstake_m = {s}\nchargers = 8\n"
            )?;
            s += 50_000.0;
            i += 1;
        }
        Ok(())
    }

    /// Weather stations: every 10 km, or three on a short road.
    fn weather_stakes(&self) -> Vec<f64> {
        let step = (self.length_m / 3.0).min(10_000.0).round().max(1.0);
        let mut out = Vec::new();
        let mut k = step;
        while k < self.length_m {
            out.push(k);
            k += step;
        }
        out
    }

    fn fog_centre_m(&self) -> f64 {
        (self.length_m * 0.3).max(1000.0).min(self.length_m - 1.0)
    }

    /// The bottleneck of each direction, as a travel position fraction.
    fn bottleneck_m(&self, dir: Direction) -> f64 {
        match dir {
            Direction::Up => self.length_m * 0.7,
            Direction::Down => -self.length_m * 0.4,
        }
    }

    /// Writes OBS.csv, streaming, and returns the rows written.
    pub fn write_obs(&self, w: &mut dyn Write) -> io::Result<u64> {
        let c = &self.cfg;
        let mut rng = fastrand::Rng::with_seed(c.seed);
        writeln!(w, "{OBS_HEADER}")?;
        let step = c.interval_s as i64 * 1000;
        let lanes = c.lanes as usize;
        // Per lane: the last row written (for stuck values).
        let mut last: Vec<(u32, f32, f32)> = vec![(0, 0.0, 0.0); self.stations.len() * lanes];
        let mut rows = 0u64;
        let mut line = String::with_capacity(96);
        for d in 0..c.days as i64 {
            let t0 = self.midnight_ms + d * 86_400_000 + c.from_hour as i64 * 3_600_000;
            let ticks = c.hours as i64 * 3_600_000 / step;
            for k in 1..=ticks {
                let ts = t0 + k * step;
                let time = fmt_time(ts);
                let tod_h = ((ts - self.midnight_ms).rem_euclid(86_400_000)) as f64 / 3_600_000.0;
                for (si, (id, dir, stake)) in self.stations.iter().enumerate() {
                    let truth = self.truth(*dir, *stake, ts);
                    let station_fault = self.fault_at(si as u32, 0, ts);
                    if station_fault == Some(FaultRule::Missing) {
                        continue;
                    }
                    for lane in 1..=c.lanes {
                        let share = lane_share(lane, c.lanes);
                        let q = truth.flow_vph_lane * share * c.lanes as f64 / c.lanes as f64;
                        let mean = q * c.interval_s as f64 / 3600.0;
                        let mut vol = poisson(&mut rng, mean);
                        let v_lane = (truth.speed_kmh
                            + lane_speed_offset(lane, c.lanes) * (truth.speed_kmh / 110.0))
                            .max(3.0);
                        let mut speed = (v_lane + rng.f64() * 6.0 - 3.0).max(2.0) as f32;
                        let len_m = 5.5 + rng.f64() * 2.0 + if lane == c.lanes { 3.0 } else { 0.0 };
                        let mut occ = if vol == 0 {
                            if truth.speed_kmh < 10.0 {
                                (60.0 + rng.f64() * 30.0) as f32
                            } else {
                                0.0
                            }
                        } else {
                            let flow = vol as f64 * 3600.0 / c.interval_s as f64;
                            ((flow / speed as f64 * len_m / 10.0).min(100.0)) as f32
                        };
                        let li = si * lanes + lane as usize - 1;
                        match self.fault_at(si as u32, lane, ts) {
                            Some(FaultRule::Stuck) => (vol, speed, occ) = last[li],
                            Some(FaultRule::ZeroFlow) => (vol, occ) = (0, 0.0),
                            Some(FaultRule::LockedOn) => (vol, occ) = (0, 100.0),
                            Some(FaultRule::Inconsistent) => {
                                // Counts chatter while occupancy says nobody passed.
                                vol = vol * 3 + 20;
                                occ = 0.0;
                            }
                            _ => last[li] = (vol, speed, occ),
                        }
                        if vol == 0 {
                            speed = f32::NAN;
                        }
                        line.clear();
                        use std::fmt::Write as _;
                        let _ = write!(line, "{time},{id},{lane},{},{vol},", c.interval_s);
                        if speed.is_finite() {
                            let _ = write!(line, "{speed:.1}");
                        }
                        let _ = writeln!(line, ",{occ:.1}");
                        w.write_all(line.as_bytes())?;
                        rows += 1;
                    }
                }
                let _ = tod_h;
            }
        }
        Ok(rows)
    }

    fn fault_at(&self, station: u32, lane: u8, ts: i64) -> Option<FaultRule> {
        self.faults
            .iter()
            .find(|f| f.station == station && f.lane == lane && ts > f.start_ms && ts <= f.end_ms)
            .and_then(|f| FaultRule::parse(f.rule))
    }

    /// The true traffic state at a place and time.
    pub fn truth(&self, dir: Direction, stake_m: f64, ts_ms: i64) -> Truth {
        let tod_h = ((ts_ms - self.midnight_ms).rem_euclid(86_400_000)) as f64 / 3_600_000.0;
        let q = demand_vph_lane(tod_h);
        let x = dir.travel_m(stake_m);
        let xb = self.bottleneck_m(dir);
        let queue = queue_length_m(tod_h);
        if queue > 0.0 && x <= xb && x >= xb - queue {
            // Inside the queue: slow, with stop-and-go waves travelling upstream at 15 km/h.
            let phase = (x / 1000.0 + 15.0 * tod_h) * std::f64::consts::TAU / 3.0;
            let v = 25.0 + 12.0 * phase.sin();
            // Congested branch of a triangular fundamental diagram:
            // k = k_jam · w / (w + v), q = v · k (k_jam 140 veh/km/lane, w 15 km/h).
            let k = 140.0 * 15.0 / (15.0 + v);
            Truth {
                speed_kmh: v,
                flow_vph_lane: v * k,
            }
        } else {
            // Downstream of an active bottleneck the merge discharges at its
            // capacity (main line plus ramp), whatever the demand upstream.
            let q = if queue > 0.0 && x > xb {
                q.max(1_900.0)
            } else {
                q
            };
            let v = 112.0 - 22.0 * (q / 2000.0).powi(2);
            Truth {
                speed_kmh: v,
                flow_vph_lane: q,
            }
        }
    }

    /// Writes WEATHER.csv (one reading per station per minute) and returns rows.
    pub fn write_weather(&self, w: &mut dyn Write) -> io::Result<u64> {
        let c = &self.cfg;
        let mut rng = fastrand::Rng::with_seed(c.seed ^ 0x3EA7);
        writeln!(w, "{WEATHER_HEADER}")?;
        let mut rows = 0;
        let fog = self.fog_centre_m();
        for d in 0..c.days as i64 {
            let t0 = self.midnight_ms + d * 86_400_000 + c.from_hour as i64 * 3_600_000;
            for k in 1..=(c.hours as i64 * 60) {
                let ts = t0 + k * 60_000;
                let time = fmt_time(ts);
                let h = ((ts - self.midnight_ms).rem_euclid(86_400_000)) as f64 / 3_600_000.0;
                for (i, s) in self.weather_stakes().into_iter().enumerate() {
                    let i = i + 1;
                    // A fog bank 05:00–08:00, thickest at 06:30, 6 km wide.
                    let depth = if (5.0..8.0).contains(&h) {
                        1.0 - ((h - 6.5) / 1.5).abs()
                    } else {
                        0.0
                    };
                    let near = (1.0 - ((s - fog) / 6000.0).abs()).max(0.0);
                    // Visibility falls exponentially with the fog's severity: 15 km in
                    // clear air, ~450 m at half severity, ~30 m in the core.
                    let severity = depth * near;
                    let vis =
                        (15_000.0 * (-7.0 * severity).exp()).max(20.0) * (0.95 + rng.f64() * 0.1);
                    let air = 2.0 + 6.0 * ((h - 14.0) / 24.0 * std::f64::consts::TAU).cos();
                    let surf = air - 1.5;
                    let hum = 70.0 + 25.0 * depth * near;
                    // The surface gets moist first and freezes later, colder and wetter.
                    let state = if surf < -0.5 && hum > 92.0 {
                        SurfaceState::Ice
                    } else if hum > 85.0 {
                        SurfaceState::Moist
                    } else {
                        SurfaceState::Dry
                    };
                    writeln!(
                        w,
                        "{time},W{i:03},{vis:.0},{surf:.1},{air:.1},{hum:.0},{state}"
                    )?;
                    rows += 1;
                }
            }
        }
        Ok(rows)
    }

    /// Writes POS.csv (each vehicle every 30 s while on the road) and
    /// returns the rows and the ground truth of the vehicle violations it
    /// staged (JSON lines): every hazmat truck above 80 km/h, every hazmat
    /// report inside the tunnel closed to hazmat, one hazmat truck stopped
    /// on the carriageway for 10 min, and one car driving the wrong way.
    pub fn write_positions(
        &self,
        w: &mut dyn Write,
        geometry: &zhilu_road::Geometry,
    ) -> io::Result<(u64, Vec<String>)> {
        let c = &self.cfg;
        let mut rng = fastrand::Rng::with_seed(c.seed ^ 0x9051);
        writeln!(w, "{POS_HEADER}")?;
        let span_ms = c.hours as i64 * 3_600_000;
        let len = self.length_m;
        let tunnel =
            (len > 6000.0).then(|| ((len * 0.6).round(), (len * 0.6 + 1200.0).round().min(len)));
        let near_service = |s: f64| {
            let mut k = 20_000.0f64.min(len / 2.0);
            while k < len {
                if (s - k).abs() < 1500.0 {
                    return true;
                }
                k += 50_000.0;
            }
            false
        };
        struct Veh {
            plate: String,
            class: VehicleClass,
            dir: Direction,
            entry: i64,
            s0: f64,
            v: f64,
            /// (stake, stop from, stop until) relative to the day's start.
            stop: Option<(f64, i64, i64)>,
            wrong_way: bool,
        }
        let mut vehicles: Vec<Veh> = (0..c.vehicles)
            .map(|i| {
                let class = match i % 10 {
                    0 => VehicleClass::Hazmat,
                    1..=3 => VehicleClass::Truck,
                    4 => VehicleClass::Bus,
                    _ => VehicleClass::Car,
                };
                let dir = if rng.bool() {
                    Direction::Up
                } else {
                    Direction::Down
                };
                let v = match class {
                    VehicleClass::Hazmat if i % 20 == 0 => 92.0, // speeding
                    VehicleClass::Hazmat | VehicleClass::Truck => 70.0 + rng.f64() * 9.0,
                    _ => 90.0 + rng.f64() * 25.0,
                };
                Veh {
                    plate: format!("京A{:05}", 10_000 + i),
                    class,
                    dir,
                    entry: rng.i64(0..span_ms.max(1)),
                    s0: rng.f64() * len,
                    v,
                    stop: None,
                    wrong_way: false,
                }
            })
            .collect();
        if c.vehicles >= 2 && len > 4000.0 {
            // A hazmat truck that stops on the carriageway for 10 min, away from service areas.
            let mut s_stop = len * 0.45;
            while near_service(s_stop) {
                s_stop += 2000.0;
            }
            let entry = span_ms / 3;
            vehicles.push(Veh {
                plate: "冀B90001".into(),
                class: VehicleClass::Hazmat,
                dir: Direction::Up,
                entry,
                s0: (s_stop - 3000.0).max(0.0),
                v: 75.0,
                stop: Some((
                    s_stop,
                    entry + (3000.0f64.min(s_stop) / (75.0 / 3.6) * 1000.0) as i64,
                    0,
                )),
                wrong_way: false,
            });
            // A car on the up carriageway driving towards decreasing stake.
            vehicles.push(Veh {
                plate: "京N66666".into(),
                class: VehicleClass::Car,
                dir: Direction::Down,
                entry: span_ms / 2,
                s0: len * 0.5,
                v: 60.0,
                stop: None,
                wrong_way: true,
            });
        }
        for v in vehicles.iter_mut() {
            if let Some((s, from, _)) = v.stop {
                v.stop = Some((s, from, from + 600_000));
            }
        }
        let mut truth = Vec::new();
        let mut rows = 0;
        for d in 0..c.days as i64 {
            let t0 = self.midnight_ms + d * 86_400_000 + c.from_hour as i64 * 3_600_000;
            // Per vehicle: first over-limit report, first report in the tunnel, wrong-way reports, last report.
            let mut first_fast: Vec<Option<i64>> = vec![None; vehicles.len()];
            let mut in_tunnel: Vec<Option<i64>> = vec![None; vehicles.len()];
            let mut wrong: Vec<(u32, Option<i64>)> = vec![(0, None); vehicles.len()];
            let mut last: Vec<i64> = vec![0; vehicles.len()];
            for k in 1..=(span_ms / 30_000) {
                let ts = t0 + k * 30_000;
                let time = fmt_time(ts);
                for (vi, veh) in vehicles.iter().enumerate() {
                    let dt = ts - t0 - veh.entry;
                    if dt < 0 {
                        continue;
                    }
                    let rel = ts - t0;
                    let (s, speed) = match veh.stop {
                        Some((stake, from, until)) if rel >= from && rel < until => (stake, 0.0),
                        Some((stake, _, until)) if rel >= until => (
                            stake + veh.dir.sign() * veh.v / 3.6 * (rel - until) as f64 / 1000.0,
                            veh.v,
                        ),
                        Some((_, from, _)) if rel < from => (
                            veh.s0 + veh.dir.sign() * veh.v / 3.6 * dt as f64 / 1000.0,
                            veh.v,
                        ),
                        _ => (
                            veh.s0 + veh.dir.sign() * veh.v / 3.6 * dt as f64 / 1000.0,
                            veh.v,
                        ),
                    };
                    if !(0.0..=len).contains(&s) {
                        continue;
                    }
                    // On its carriageway: 7.5 m right of the centre line in its direction
                    // of travel — or, driving the wrong way, on the other side.
                    let (lon, lat) = geometry.lonlat(s);
                    let (lon2, lat2) = geometry.lonlat((s + 10.0).clamp(0.0, len));
                    let (lon0, lat0) = geometry.lonlat((s - 10.0).clamp(0.0, len));
                    let kx = 111_195.0 * lat.to_radians().cos();
                    let (ex, ny) = ((lon2 - lon0) * kx, (lat2 - lat0) * 111_195.0);
                    let norm = (ex * ex + ny * ny).sqrt().max(1e-9);
                    let side = match (veh.dir, veh.wrong_way) {
                        (Direction::Up, false) | (Direction::Down, true) => 7.5,
                        _ => -7.5,
                    };
                    // Right-hand normal of the increasing-stake direction.
                    let (rx, ry) = (ny / norm, -ex / norm);
                    let (plon, plat) = (lon + side * rx / kx, lat + side * ry / 111_195.0);
                    let bearing = ex.atan2(ny).to_degrees();
                    let heading = (bearing + if veh.dir == Direction::Up { 0.0 } else { 180.0 })
                        .rem_euclid(360.0);
                    writeln!(
                        w,
                        "{time},{},{},{plat:.6},{plon:.6},{speed:.0},{heading:.0}",
                        veh.plate,
                        veh.class.as_str()
                    )?;
                    rows += 1;
                    last[vi] = ts;
                    if veh.class == VehicleClass::Hazmat && speed > 80.0 && first_fast[vi].is_none()
                    {
                        first_fast[vi] = Some(ts);
                    }
                    if veh.class == VehicleClass::Hazmat
                        && tunnel.is_some_and(|(a, b)| s >= a && s <= b)
                        && in_tunnel[vi].is_none()
                    {
                        in_tunnel[vi] = Some(ts);
                    }
                    if veh.wrong_way && speed >= 20.0 {
                        wrong[vi].0 += 1;
                        if wrong[vi].0 == 2 {
                            wrong[vi].1 = Some(ts);
                        }
                    }
                }
            }
            for (vi, veh) in vehicles.iter().enumerate() {
                let line = |kind: EventKind, start: i64, end: i64| {
                    format!(
                        "{{\"kind\":\"{kind}\",\"vehicle\":\"{}\",\"direction\":\"{}\",\"start\":\"{}\",\"end\":\"{}\"}}",
                        veh.plate,
                        veh.dir.as_str(),
                        fmt_time(start),
                        fmt_time(end)
                    )
                };
                if let Some(t) = first_fast[vi]
                    && last[vi] >= t + 60_000
                {
                    truth.push(line(EventKind::HazmatSpeeding, t + 60_000, last[vi]));
                }
                if let Some(t) = in_tunnel[vi] {
                    truth.push(line(EventKind::HazmatRestrictedZone, t, t));
                }
                if let Some((_, from, until)) = veh.stop
                    && last[vi] >= t0 + from + 300_000
                {
                    truth.push(line(
                        EventKind::HazmatStopped,
                        t0 + from + 300_000,
                        t0 + until,
                    ));
                }
                if let (_, Some(t)) = wrong[vi] {
                    truth.push(line(EventKind::WrongWay, t, last[vi]));
                }
            }
        }
        Ok((rows, truth))
    }

    /// Writes CAM.csv: congestion seen at the bottlenecks during the peak.
    pub fn write_cameras(&self, w: &mut dyn Write) -> io::Result<u64> {
        writeln!(w, "{CAM_HEADER}")?;
        let mut rows = 0;
        for d in 0..self.cfg.days as i64 {
            for (dir, tag) in [(Direction::Up, "U"), (Direction::Down, "D")] {
                let t = self.midnight_ms + d * 86_400_000 + 8 * 3_600_000;
                let h0 = self.cfg.from_hour as i64;
                if 8 >= h0 && 8 < h0 + self.cfg.hours as i64 {
                    let s = dir.travel_m(self.bottleneck_m(dir)) - dir.sign() * 500.0;
                    writeln!(
                        w,
                        "{},C{tag}1,{},{},{},,0.9",
                        fmt_time(t),
                        CameraKind::Congestion.as_str(),
                        dir.as_str(),
                        Stake(s.clamp(0.0, self.length_m))
                    )?;
                    rows += 1;
                }
            }
        }
        Ok(rows)
    }

    /// Writes the injected faults as JSON lines.
    pub fn write_truth(&self, w: &mut dyn Write) -> io::Result<()> {
        for f in &self.faults {
            let (id, dir, stake) = &self.stations[f.station as usize];
            writeln!(
                w,
                "{{\"kind\":\"{}\",\"rule\":\"{}\",\"detector\":\"{id}\",\"direction\":\"{}\",\"stake_m\":{stake},\"lane\":{},\"start\":\"{}\",\"end\":\"{}\"}}",
                EventKind::DetectorFault.as_str(),
                f.rule,
                dir.as_str(),
                f.lane,
                fmt_time(f.start_ms),
                fmt_time(f.end_ms)
            )?;
        }
        Ok(())
    }
}

/// True state at one place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    /// Speed (km/h).
    pub speed_kmh: f64,
    /// Flow per lane (veh/h).
    pub flow_vph_lane: f64,
}

/// Demand per lane by local hour: quiet nights, a morning and an evening peak.
pub fn demand_vph_lane(h: f64) -> f64 {
    let g = |c: f64, w: f64| (-((h - c) / w).powi(2)).exp();
    150.0
        + 900.0
            * (1.0 / (1.0 + (-(h - 6.5) * 2.0).exp()))
            * (1.0 / (1.0 + ((h - 21.0) * 1.5).exp()))
        + 700.0 * g(8.0, 0.9)
        + 550.0 * g(18.0, 1.0)
}

/// Queue behind the bottleneck (m): grows at 12 km/h from 07:15, shrinks at
/// 9 km/h from 08:45 (the recurrent morning jam).
pub fn queue_length_m(h: f64) -> f64 {
    let grow = (h.min(8.75) - 7.25).max(0.0) * 12_000.0;
    let shrink = (h - 8.75).max(0.0) * 9_000.0;
    (grow - shrink).max(0.0)
}

fn lane_share(lane: u8, lanes: u8) -> f64 {
    if lanes == 1 {
        return 1.0;
    }
    // Inner lanes carry a little more than the outer (truck) lane.
    let x = (lane as f64 - 1.0) / (lanes as f64 - 1.0);
    1.1 - 0.2 * x
}

fn lane_speed_offset(lane: u8, lanes: u8) -> f64 {
    if lanes == 1 {
        return 0.0;
    }
    let x = (lane as f64 - 1.0) / (lanes as f64 - 1.0);
    8.0 - 18.0 * x
}

/// Formats epoch ms in the generated days' offset.
pub fn format_time(ts_ms: i64) -> String {
    fmt_time(ts_ms)
}
