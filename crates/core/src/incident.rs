//! Automatic incident detection (交通事件检测): a lane blocked by a stopped
//! vehicle or a crash, located between two detector stations.
//!
//! For each pair of consecutive stations (upstream `u`, downstream `d`) on a
//! carriageway, every tick, on occupancy and speed averaged over the last
//! minute and flow over the last 90 s:
//!
//! 1. **A stationary queue** — the California family's spatial occupancy
//!    difference (`occ_u − occ_d ≥ 8 %` and `(occ_u − occ_d)/occ_u ≥ 0.4`), a
//!    slow upstream (`v_u < 50 km/h`) and a free downstream (`v_d ≥ 70`) that
//!    has not itself been slow in the last 5 min (else it is a stop-and-go
//!    wave that came from downstream — California #8's compression test).
//!    Where the road book gives the stretch a reason to jam every day
//!    ([`bottleneck_cause`]: a merge, a tunnel entrance, a lane drop), the
//!    downstream flow (over the last 90 s) must also be at most 75 % of its
//!    own normal: below a merge that jams every peak the downstream station
//!    discharges at capacity; below a blocked lane it starves.
//! 2. **Starvation** — the downstream station's flow falls to ≤ 60 % of its
//!    normal while the upstream one still carries its own, by more than 4 σ
//!    of the counts, with the downstream station free and no queue upstream in
//!    the last 10 min: capacity vanished between them. Seen a minute or two
//!    after a block that caps the flow, long before its queue reaches `u`.
//!    (The older **vehicles vanishing** test on the smoothed imbalance is
//!    still here, off by default.)
//! 3. **A lane emptied** — at the downstream station, a bounded-window CUSUM
//!    of the log-likelihood ratio "this lane's share of the station's
//!    vehicles fell to 55 % of normal" (binomial split) reaches its threshold
//!    while the lane still counts some vehicles and the station's total holds
//!    against its neighbours (a dead or chattering loop is data quality's
//!    business). The block is placed above the first station, going
//!    upstream, whose same lane shows the deficit too.
//! 4. **Vehicles held up** — trucks' position reports ([`ProbeObs`]) slower
//!    than 40 km/h on the carriageway between two stations that both run
//!    free: two distinct vehicles within 400 m and 3 min (in an on-ramp's
//!    merge three, and the station below must starve) raise an incident
//!    just past the furthest of them; a vehicle held up briefly that then
//!    drives on past the spot counts twice. In thin traffic (≤ 800 veh/h per
//!    lane at the station above) a **dip** counts as held up too: a report
//!    20 km/h or more below the same vehicle's previous one (cruising at
//!    ≥ 80 km/h), below 80 km/h, followed by a report at least 8 km/h faster
//!    further on — it braked for something and got past. On a thin road
//!    nobody brakes like that for other traffic; in dense traffic everybody
//!    does, so there dips are not used. Thin traffic does not queue back
//!    past an on-ramp's nose, so there the merge zone begins 100 m before
//!    it (300 m otherwise). See [`IncidentWatch::probe`].
//!
//! The queue and starvation tests need two ticks and 60 s in a row; a queue
//! with the station below at ≤ 60 % of its normal flow at the same tick
//! needs no run (two independent signs). A queue whose downstream station
//! was congested within `wave_memory_s` is taken for a wave that passed —
//! unless that station now runs free at ≤ 60 % of its normal flow (a wave
//! leaves it discharging near capacity). Under a lowered limit a station
//! counts as congested only below the limit less 15 km/h, and while an
//! open incident's upstream station is still below 50 km/h and 8 points
//! denser than the one below, its pair is not calm (its own plan's limits
//! would otherwise make the queue look like obedient traffic). The lane
//! test carries its own persistence. The estimated start is where the
//! evidence began, less one interval. Normals (exponential averages) are
//! frozen while a pair is anomalous, so an incident never becomes the normal.
//! A camera report of a stopped vehicle, debris, fire, smoke or a pedestrian
//! with confidence ≥ 0.7 on the carriageway raises or confirms an incident at
//! once, at the camera's stake. An incident ends when its pair has looked
//! normal for `clear_ticks` ticks (or the camera or the probes have been
//! silent for 10 min where only they raised it); for `holdoff_s` after, neither its pair
//! nor the next ones raise a new alarm (the queue dissolves front first), and
//! while it is open or held, no pair downstream raises a starvation or lane
//! alarm (its starved flow and displaced vehicles travel on).

use std::collections::HashMap;

use zhilu_road::{Direction, RoadBook};

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::{CameraKind, CameraObs};
use crate::state::CorridorState;

/// Thresholds of incident detection.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentConfig {
    /// Spatial occupancy difference (percentage points).
    pub occ_diff_pct: f32,
    /// Relative spatial occupancy difference.
    pub occ_rel_diff: f32,
    /// Upstream slower than this (km/h) …
    pub up_slow_kmh: f32,
    /// … and this much below the speed limit in force there (km/h), where
    /// a plan lowered it (drivers in a fog zone obey 40 km/h).
    pub limit_margin_kmh: f32,
    /// Downstream at least this fast (km/h).
    pub down_free_kmh: f32,
    /// Downstream flow at most this share of its normal.
    pub starve_ratio: f32,
    /// Flow imbalance beyond normal: share of upstream flow.
    pub imbalance_share: f32,
    /// Flow imbalance beyond normal: at least this (veh/h).
    pub imbalance_min_vph: f32,
    /// Upstream flow below which the imbalance test is not used (veh/h, all lanes).
    pub imbalance_min_flow_vph: f32,
    /// Whether the flow-imbalance test runs (off by default: at 1-km spacing
    /// the count imbalance swings by the section's contents, ±30 vehicles,
    /// and it raised tens of false alarms a day on the SUMO suite; the
    /// starvation test replaces it).
    pub use_imbalance: bool,
    /// Ticks in a row before an alarm (at least `persist_s` of data).
    pub persist_ticks: u32,
    /// Seconds of consecutive anomaly before an alarm.
    pub persist_s: u32,
    /// Normal ticks in a row before an incident ends.
    pub clear_ticks: u32,
    /// Time constant of the normals (s).
    pub normal_s: f32,
    /// Ticks of normals needed before alarms are allowed.
    pub warmup_ticks: u32,
    /// Minimum camera confidence.
    pub camera_confidence: f32,
    /// Lane path: over the intervals that make the evidence, the lane's share
    /// of its station's vehicles is at most this fraction of its normal share.
    pub lane_share_ratio: f32,
    /// Lane path: the station's total flow at least this share of its
    /// neighbours' and at most its inverse (the vehicles moved to other lanes;
    /// a dead loop would lose them, a chattering one invent them).
    pub lane_total_ratio: f32,
    /// Lane path: least station flow for the test (veh/h).
    pub lane_min_flow_vph: f32,
    /// A downstream station congested this recently (s) means the slow
    /// traffic upstream is a wave that came from downstream, not an incident.
    pub wave_memory_s: u32,
    /// No new alarm on a pair for this long (s) after an incident on it or
    /// next to it cleared.
    pub holdoff_s: u32,
    /// Lane CUSUM: the blocked lane's share is taken to fall to this
    /// fraction of its normal share (the alternative hypothesis).
    pub lane_cusum_ratio: f32,
    /// Lane CUSUM: log-likelihood ratio at which a lane counts as emptied.
    pub lane_cusum_h: f32,
    /// Lane CUSUM: the threshold where probe vehicles cover the carriageway
    /// (`probe_density_per_km`): the probes find a blocked lane sooner, so
    /// the lane test, whose lane splits swing at 1-km spacing, can be surer.
    pub lane_cusum_h_probed: f32,
    /// Probe vehicles reporting (within a minute) per km of carriageway at
    /// which it counts as covered by probes.
    pub probe_density_per_km: f32,
    /// Lane CUSUM: least vehicles counted at the station in an interval
    /// for the interval to count.
    pub lane_min_count: f32,
    /// Time constant of the lanes' normal shares (s).
    pub lane_normal_s: f32,
    /// Lane test: evidence is summed over at most this long (s; at most 16 intervals).
    pub lane_window_s: u32,
    /// Lane test: most evidence one interval may add.
    pub lane_llr_cap: f32,
    /// Whether the starvation test runs.
    pub use_starvation: bool,
    /// Starvation: downstream flow (90 s) at most this share of its normal…
    pub starve_fast_ratio: f32,
    /// … while the upstream flow holds at least this share of its normal.
    pub starve_up_hold: f32,
    /// Starvation: least upstream flow for the test (veh/h, all lanes).
    pub starve_min_flow_vph: f32,
    /// Starvation alone: seconds in a row before an alarm.
    pub starve_persist_s: u32,
    /// Starvation: the missing vehicles must exceed this many standard
    /// deviations of the counts (Poisson).
    pub starve_sigma: f32,
    /// Whether slow probe vehicles (trucks' position reports) raise incidents.
    pub use_probes: bool,
    /// Probes: a report slower than this (km/h) where the stations around
    /// it run free is a vehicle held up between them.
    pub probe_slow_kmh: f32,
    /// Probes: distinct vehicles held up near each other before an alarm.
    pub probe_vehicles: u32,
    /// Probes: a vehicle held up for one or two reports that then drives on
    /// past the spot at least this fast (km/h) counts twice; 0 = off.
    pub probe_moved_on_kmh: f32,
    /// Probes: … in an on-ramp's merge (from 100 m before an interchange
    /// to 500 m past it), where vehicles forcing in slow the outer lane
    /// every busy hour.
    pub probe_merge_vehicles: u32,
    /// Probes: how far upstream of an interchange its merge zone begins (m).
    pub probe_merge_before_m: f64,
    /// Probes: in a merge, the station below must also starve.
    pub probe_merge_starve: bool,
    /// Probes: … within this long (s) …
    pub probe_window_s: u32,
    /// Probes: … and this far apart (m).
    pub probe_radius_m: f64,
    /// Probes: reports this close to a service area are not used (m): its
    /// entering and leaving traffic slows on the carriageway's edge.
    pub probe_service_area_m: f64,
    /// Probes: a report further from the centre line than the lanes
    /// (3.75 m each) plus this (m: half a median, a hard shoulder and GPS
    /// error) is on a ramp or a parallel road, not on the carriageway.
    pub probe_lateral_margin_m: f64,
    /// Probes: a report at least this much slower (km/h) than the same
    /// vehicle's report before it (≤ 45 s earlier, at cruising speed) is
    /// held up too, though not below `probe_slow_kmh`: a vehicle that had
    /// to brake for something in its lane; 0 = off.
    pub probe_dip_kmh: f32,
    /// Probes: … when the slower report is below this (km/h) …
    pub probe_dip_below_kmh: f32,
    /// Probes: … and the one before was at least this (km/h).
    pub probe_dip_cruise_kmh: f32,
    /// Probes: a dip counts only once the vehicle's next report is at
    /// least this much faster again (km/h: it got past); 0 = at once.
    pub probe_dip_recover_kmh: f32,
    /// Probes: dips count only where the station above carries at most
    /// this (veh/h per lane): in dense traffic vehicles brake for each
    /// other everywhere.
    pub probe_dip_max_vph_lane: f32,
    /// Probes: in thin traffic (see `probe_dip_max_vph_lane`) no queue
    /// backs up past an on-ramp's nose: there its merge zone begins only this
    /// far before the nose (m).
    pub probe_thin_merge_before_m: f64,
    /// A station below that was congested within `wave_memory_s` does not
    /// mark a wave if its flow is now at most this share of normal; 0 = off.
    pub wave_starve_ratio: f32,
    /// A queue with the station below at most this share of its normal flow
    /// is raised at its first tick; 0 = off.
    pub strong_starve_ratio: f32,
    /// A limit raised counts for this long (s) as the one traffic obeys:
    /// the platoon it held takes minutes to speed up.
    pub limit_memory_s: u32,
    /// Where a stretch jams daily, the starvation that tells an incident
    /// must also exceed this many standard deviations of the counts.
    pub cause_starve_sigma: f32,
    /// After the limits in force at a station change, or a fog or ice zone
    /// there ends, the lane test keeps the higher threshold this long (s).
    pub lane_settle_s: u32,
    /// An open incident's pair is not calm under its own plan's limits
    /// only while the station below carries at most this share of its
    /// normal flow.
    pub mask_flow_ratio: f32,
    /// A queue that ended with the station below discharging it in full
    /// all along makes its stretch count as a daily jam for this long (s),
    /// given …
    pub learned_jam_s: u32,
    /// … a discharge of at least this (veh/h per lane at the station
    /// below): in light traffic a block's queue passes in full too.
    pub jam_discharge_vph_lane: f32,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            occ_diff_pct: 8.0,
            occ_rel_diff: 0.4,
            up_slow_kmh: 50.0,
            limit_margin_kmh: 15.0,
            down_free_kmh: 70.0,
            starve_ratio: 0.75,
            imbalance_share: 0.2,
            imbalance_min_vph: 500.0,
            imbalance_min_flow_vph: 900.0,
            use_imbalance: false,
            persist_ticks: 2,
            persist_s: 60,
            clear_ticks: 6,
            normal_s: 300.0,
            warmup_ticks: 20,
            camera_confidence: 0.7,
            lane_share_ratio: 0.7,
            lane_total_ratio: 0.85,
            lane_min_flow_vph: 1000.0,
            wave_memory_s: 300,
            holdoff_s: 900,
            lane_cusum_ratio: 0.55,
            lane_cusum_h: 12.0,
            lane_cusum_h_probed: 16.0,
            probe_density_per_km: 0.5,
            lane_min_count: 4.0,
            lane_normal_s: 600.0,
            lane_window_s: 300,
            lane_llr_cap: 3.0,
            use_starvation: true,
            starve_fast_ratio: 0.6,
            starve_up_hold: 0.85,
            starve_min_flow_vph: 3000.0,
            starve_persist_s: 120,
            starve_sigma: 4.0,
            use_probes: true,
            probe_slow_kmh: 40.0,
            probe_vehicles: 2,
            probe_moved_on_kmh: 60.0,
            probe_merge_vehicles: 3,
            probe_merge_before_m: 300.0,
            probe_merge_starve: true,
            probe_window_s: 180,
            probe_radius_m: 400.0,
            probe_service_area_m: 150.0,
            probe_lateral_margin_m: 8.0,
            probe_dip_kmh: 20.0,
            probe_dip_below_kmh: 80.0,
            probe_dip_cruise_kmh: 80.0,
            probe_dip_recover_kmh: 8.0,
            probe_dip_max_vph_lane: 800.0,
            probe_thin_merge_before_m: 100.0,
            wave_starve_ratio: 0.6,
            strong_starve_ratio: 0.6,
            limit_memory_s: 300,
            cause_starve_sigma: 3.0,
            lane_settle_s: 900,
            mask_flow_ratio: 0.85,
            learned_jam_s: 86_400,
            jam_discharge_vph_lane: 1400.0,
        }
    }
}

/// What the detector keeps of one probe vehicle.
#[derive(Debug, Clone, Copy)]
struct Seen {
    direction: Direction,
    ts_ms: i64,
    /// Slow reports in a row, up to now.
    slow_run: u8,
    /// The last slow report.
    last_slow: Option<ProbeObs>,
    /// Speed of the last report (km/h).
    last_kmh: f32,
    /// A dip waiting for the vehicle to speed up again.
    dip: Option<ProbeObs>,
}

/// A position report matched to a carriageway: a probe vehicle (a truck's
/// JT/T 808 terminal reports every 30 s or so).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeObs {
    /// Time (epoch ms).
    pub ts_ms: i64,
    /// Vehicle, interned by the adapter.
    pub vehicle: u32,
    /// Carriageway it drives on.
    pub direction: Direction,
    /// Where (m).
    pub stake_m: f64,
    /// How far right of the road's centre line (m; negative: left).
    pub offset_m: f64,
    /// Speed reported (km/h).
    pub speed_kmh: f32,
}

#[derive(Debug, Clone, Default)]
struct StationMem {
    /// This tick's flow (veh/h), NaN when the station had no valid sample.
    last_flow: f32,
    /// Last tick the station looked congested (speed < 60 km/h, or under a
    /// lowered limit < the limit − `limit_margin_kmh`; or occupancy > 25 %).
    last_congested: i64,
    /// Recent valid samples (tick, occ, speed, flow), newest last, at most 8.
    recent: Vec<(i64, f32, f32, f32)>,
    /// Flow smoothed over about 90 s (short counts are noisy).
    short_flow: f32,
    normal_flow: f32,
    /// Normal flow over ~15 min: a station that starved minutes ago has
    /// pulled `normal_flow` down already, not this one.
    slow_flow: f32,
    n_normal: u32,
    /// The limit in force here last tick (km/h; ∞ before any).
    limit_last: f32,
    /// The lowest limit in force within the last `limit_memory_s` (the one
    /// traffic still obeys), and until when it counts (ms).
    limit_low: f32,
    limit_low_until: i64,
    /// Until when lane use counts as unsettled (ms): after the limit here
    /// changed, or while a weather zone is here.
    lane_unsettled_until: i64,
}

/// Most intervals the lane test sums over.
const LANE_WINDOW: usize = 16;

#[derive(Debug, Clone, Copy)]
struct LaneMem {
    /// Flow over ~2 min (veh/h), NaN before the first sample.
    short: f32,
    /// Normal count per interval (exponential average in free flow).
    normal: f32,
    /// Intervals in the normal.
    n: u32,
    /// Evidence that the lane lost its share of the station's flow: the
    /// largest sum of the last intervals' log-likelihood ratios (a CUSUM
    /// over a bounded window, so a slow drift of the shares cannot creep
    /// up to the threshold).
    cusum: f32,
    /// The last intervals' log-likelihood ratios, newest at `head`.
    llr: [f32; LANE_WINDOW],
    /// The last intervals' counts of the lane and of its station, newest at `head`.
    cnt: [(f32, f32); LANE_WINDOW],
    /// The lane's share of its station's vehicles over the intervals that
    /// make up `cusum`.
    share_seen: f32,

    head: usize,
    /// When that CUSUM last rose from zero.
    since: i64,
    /// Last tick the lane counted a vehicle.
    last_count: i64,
}

impl Default for LaneMem {
    fn default() -> Self {
        LaneMem {
            short: f32::NAN,
            normal: 0.0,
            n: 0,
            cusum: 0.0,
            llr: [0.0; LANE_WINDOW],
            cnt: [(0.0, 0.0); LANE_WINDOW],
            share_seen: 1.0,
            head: 0,
            since: 0,
            last_count: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PairMem {
    /// Imbalance smoothed over about two minutes, minus its normal.
    residual: f32,
    /// Normal imbalance (veh/h): ramps and travel-time lag.
    normal_imbalance: f32,
    /// Variance of the imbalance over the flows' window (vehicles²), in
    /// calm times (about 15 min).
    imbalance_var: f32,
    n_normal: u32,

    run: u32,
    run_start: i64,
    /// Ticks in a row the starvation test held.
    starve_run: u32,
    calm: u32,
    open: Option<Event>,
    /// Whether the road gives this stretch a reason to jam every day: an
    /// on-ramp merge, a tunnel portal or fewer lanes downstream.
    has_cause: Option<bool>,
    /// Whether the station below fell short of its flow, or carried less
    /// than a queue's discharge, while the open incident lasted.
    short_while_open: bool,
    /// A queue raised here ended with the station below discharging it in
    /// full all along: a jam this stretch makes (the road book does not
    /// say so); until then (ms) it counts as having a cause.
    learned_jam_until: i64,
}

/// The incident detector of a corridor.
#[derive(Debug, Clone)]
pub struct IncidentWatch {
    cfg: IncidentConfig,
    /// Per direction (as in the state): stations, pairs.
    stations: Vec<Vec<StationMem>>,
    pairs: Vec<Vec<PairMem>>,
    /// Incidents raised by a camera or by probe vehicles alone (a spot, no
    /// detector pair yet): (event, last sighting).
    spot: Vec<(Event, i64)>,
    pending_cameras: Vec<CameraObs>,
    /// Slow probe reports since the last tick.
    pending_probes: Vec<ProbeObs>,
    /// Every probe vehicle's carriageway and last report (forgotten after
    /// 10 min of silence): how well probes cover each carriageway.
    probes_seen: HashMap<u32, Seen>,
    /// Fog and ice zones in force: (carriageway or both, from, to).
    weather: Vec<(Option<Direction>, f64, f64)>,
    /// The speed limit in force at each station (km/h), per direction as
    /// in the state; empty when not told.
    limits: Vec<Vec<f32>>,
    /// Slow probe reports in free-flowing surroundings, newest last, within
    /// `probe_window_s`.
    held_up: Vec<ProbeObs>,
    last_tick_ms: i64,
    /// Per corridor lane.
    lanes: Vec<LaneMem>,
    /// Per direction, per pair: when its last incident cleared.
    closed_at: Vec<Vec<i64>>,
}

impl IncidentWatch {
    /// A detector with the given thresholds.
    pub fn new(cfg: IncidentConfig) -> IncidentWatch {
        IncidentWatch {
            cfg,
            stations: Vec::new(),
            pairs: Vec::new(),
            spot: Vec::new(),
            pending_cameras: Vec::new(),
            pending_probes: Vec::new(),
            probes_seen: HashMap::new(),
            weather: Vec::new(),
            limits: Vec::new(),
            held_up: Vec::new(),
            last_tick_ms: i64::MIN,
            lanes: Vec::new(),
            closed_at: Vec::new(),
        }
    }

    /// A camera report (used at the next tick).
    pub fn camera(&mut self, c: &CameraObs) {
        let relevant = matches!(
            c.kind,
            CameraKind::StoppedVehicle
                | CameraKind::Debris
                | CameraKind::Fire
                | CameraKind::Smoke
                | CameraKind::Pedestrian
        );
        if relevant && c.confidence >= self.cfg.camera_confidence {
            self.pending_cameras.push(*c);
        }
    }

    /// A position report matched to a carriageway (used at the next tick;
    /// only slow ones matter).
    pub fn probe(&mut self, p: &ProbeObs) {
        if !self.cfg.use_probes {
            return;
        }
        let cfg = &self.cfg;
        let seen = self.probes_seen.entry(p.vehicle).or_insert(Seen {
            direction: p.direction,
            ts_ms: p.ts_ms,
            slow_run: 0,
            last_slow: None,
            last_kmh: f32::NAN,
            dip: None,
        });
        if p.ts_ms < seen.ts_ms {
            return; // older than one already used
        }
        let follows = seen.direction == p.direction && p.ts_ms - seen.ts_ms <= 45_000;
        let dip = cfg.probe_dip_kmh > 0.0
            && follows
            && seen.last_kmh >= cfg.probe_dip_cruise_kmh
            && p.speed_kmh <= seen.last_kmh - cfg.probe_dip_kmh
            && p.speed_kmh < cfg.probe_dip_below_kmh;
        if let Some(d) = seen.dip.take()
            && follows
            && p.speed_kmh >= d.speed_kmh + cfg.probe_dip_recover_kmh
            && p.direction.travel_m(p.stake_m) > p.direction.travel_m(d.stake_m)
        {
            self.pending_probes.push(d);
        }
        seen.direction = p.direction;
        seen.ts_ms = p.ts_ms;
        seen.last_kmh = p.speed_kmh;
        if dip && p.speed_kmh >= cfg.probe_slow_kmh {
            if cfg.probe_dip_recover_kmh > 0.0 {
                seen.dip = Some(*p);
            } else {
                self.pending_probes.push(*p);
            }
        }
        if p.speed_kmh < cfg.probe_slow_kmh {
            seen.slow_run = seen.slow_run.saturating_add(1);
            seen.last_slow = Some(*p);
            self.pending_probes.push(*p);
        } else {
            // Held up for a report or two, then on its way past the spot:
            // something held it up (a parked or broken-down vehicle stays).
            // It counts as a second vehicle held up there.
            if cfg.probe_moved_on_kmh > 0.0
                && p.speed_kmh >= cfg.probe_moved_on_kmh
                && (1..=2).contains(&seen.slow_run)
                && let Some(s) = seen.last_slow
                && s.direction == p.direction
                && p.ts_ms - s.ts_ms <= 90_000
                && p.direction.travel_m(p.stake_m) > p.direction.travel_m(s.stake_m)
            {
                self.pending_probes.push(ProbeObs {
                    vehicle: u32::MAX - s.vehicle,
                    ..s
                });
            }
            seen.slow_run = 0;
        }
    }

    /// The fog and ice zones in force (their events): slow traffic in and
    /// just past them is the weather's, so there the queue and probe tests
    /// need the downstream station to starve, as at a merge.
    pub fn set_weather<'a>(&mut self, zones: impl Iterator<Item = &'a Event>) {
        self.weather.clear();
        self.weather
            .extend(zones.map(|e| (e.direction, e.from_m, e.to_m)));
    }

    /// The speed limit in force at each station (km/h; per direction and
    /// station as in the state): the posted one, or what a plan put on the
    /// nearest sign upstream.
    pub fn set_limits(&mut self, limits: &[Vec<f32>]) {
        self.limits.resize_with(limits.len(), Vec::new);
        for (mine, theirs) in self.limits.iter_mut().zip(limits) {
            mine.clone_from(theirs);
        }
    }

    /// Incidents open now.
    pub fn open(&self) -> impl Iterator<Item = &Event> {
        self.pairs
            .iter()
            .flatten()
            .filter_map(|p| p.open.as_ref())
            .chain(self.spot.iter().map(|(e, _)| e))
    }

    /// Runs detection on this tick's state. `lane_flow` gives each corridor
    /// lane's flow this tick (veh/h; NaN where the lane is not usable).
    pub fn close_tick(
        &mut self,
        road: &RoadBook,
        state: &CorridorState,
        lane_flow: &[f32],
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let now = state.ts_ms;
        let cfg = self.cfg.clone();
        if self.stations.len() != state.directions.len() {
            self.stations = state
                .directions
                .iter()
                .map(|d| {
                    let m = StationMem {
                        limit_last: f32::INFINITY,
                        limit_low: f32::INFINITY,
                        ..StationMem::default()
                    };
                    vec![m; d.samples.len()]
                })
                .collect();
            self.pairs = state
                .directions
                .iter()
                .map(|d| vec![PairMem::default(); d.samples.len().saturating_sub(1)])
                .collect();
            self.closed_at = state
                .directions
                .iter()
                .map(|d| vec![i64::MIN / 4; d.samples.len().saturating_sub(1)])
                .collect();
        }
        let step = if self.last_tick_ms == i64::MIN {
            30_000
        } else {
            (now - self.last_tick_ms).clamp(1_000, 300_000)
        };
        self.last_tick_ms = now;
        let alpha = (step as f32 / 1000.0 / cfg.normal_s).min(1.0);
        // Probe vehicles per km on each carriageway (reporting within a minute).
        self.probes_seen.retain(|_, s| now - s.ts_ms <= 600_000);
        let mut probes_now = [0u32; 2];
        for s in self.probes_seen.values() {
            if now - s.ts_ms <= 60_000 {
                probes_now[s.direction as usize] += 1;
            }
        }
        for (di, d) in state.directions.iter().enumerate() {
            let length_km = match (d.station_ids.first(), d.station_ids.last()) {
                (Some(&a), Some(&b)) => {
                    (road.detectors()[a as usize].stake_m - road.detectors()[b as usize].stake_m)
                        .abs()
                        / 1000.0
                }
                _ => 0.0,
            }
            .max(1.0);
            let probed = cfg.use_probes
                && probes_now[d.direction as usize] as f64
                    >= cfg.probe_density_per_km as f64 * length_km;
            let lane_h = if probed {
                cfg.lane_cusum_h_probed
            } else {
                cfg.lane_cusum_h
            };
            let mems = &mut self.stations[di];
            let limits = self.limits.get(di);
            for (k, s) in d.samples.iter().enumerate() {
                let m = &mut mems[k];
                m.last_flow = if s.valid { s.flow_vph } else { f32::NAN };
                // The limit traffic still obeys: a limit raised a minute ago
                // has not yet sped up the platoon it held.
                let cur = limits
                    .and_then(|l| l.get(k))
                    .copied()
                    .unwrap_or(f32::INFINITY);
                // Lane use shifts when the limits change or the weather
                // comes or goes, and takes a while to settle.
                let weather = in_weather(
                    &self.weather,
                    d.direction,
                    road.detectors()[d.station_ids[k] as usize].stake_m,
                );
                if (cur != m.limit_last && m.limit_last.is_finite()) || weather {
                    m.lane_unsettled_until = now + cfg.lane_settle_s as i64 * 1000;
                }
                m.limit_last = cur;
                if cur <= m.limit_low || now > m.limit_low_until {
                    m.limit_low = cur;
                    m.limit_low_until = now + cfg.limit_memory_s as i64 * 1000;
                }
                // Under a lowered limit, traffic obeying it is not congested.
                let slow_kmh = 60.0f32.min(m.limit_low - cfg.limit_margin_kmh);
                if s.valid {
                    if s.speed_kmh < slow_kmh || s.occupancy_pct > 25.0 {
                        m.last_congested = now;
                    }
                    m.recent
                        .push((now, s.occupancy_pct, s.speed_kmh, s.flow_vph));
                    if m.recent.len() > 8 {
                        m.recent.remove(0);
                    }
                    let g = (step as f32 / 120_000.0).min(1.0);
                    m.short_flow = if m.short_flow == 0.0 {
                        s.flow_vph
                    } else {
                        m.short_flow + g * (s.flow_vph - m.short_flow)
                    };
                }
            }
            // Occupancy and speed over the last ~60 s, flow over ~90 s: counts
            // of 20–30 s intervals are noisy (±√n), so flows need the longer window.
            let smooth = |m: &StationMem| -> Option<(f32, f32, f32)> {
                if m.last_flow.is_nan() {
                    return None;
                }
                let mean = |win: i64, f: fn(&(i64, f32, f32, f32)) -> f32| {
                    let (mut sum, mut n) = (0.0f32, 0u32);
                    for r in m.recent.iter().filter(|r| now - r.0 < win) {
                        sum += f(r);
                        n += 1;
                    }
                    sum / n.max(1) as f32
                };
                let occ_win = step.max(60_000 - step + 1);
                Some((
                    mean(occ_win, |r| r.1),
                    mean(occ_win, |r| r.2),
                    mean(90_000.max(step * 2), |r| r.3),
                ))
            };
            let mut anomalous_station = vec![false; mems.len()];
            // 3. A lane emptied while its station's traffic goes on in the other lanes.
            if self.lanes.len() != lane_flow.len() {
                self.lanes = vec![LaneMem::default(); lane_flow.len()];
            }
            let g_short = (step as f32 / 120_000.0).min(1.0);
            let step_h = step as f32 / 3_600_000.0;
            let w_lane = (step as f32 / 1000.0 / cfg.lane_normal_s).min(1.0);
            let lane_anom: Vec<Option<(i64, usize)>> = d
                .station_ids
                .iter()
                .enumerate()
                .map(|(k, &det)| {
                    let dd = &road.detectors()[det as usize];
                    let range = dd.first_lane as usize..(dd.first_lane + dd.lanes as u32) as usize;
                    if dd.lanes < 2 {
                        return None;
                    }
                    // In fog or on ice drivers' lane use changes with the
                    // weather, and for a while after the limits change: the
                    // test asks for more (the station loop above marked it).
                    let lane_h = if now <= mems[k].lane_unsettled_until {
                        lane_h.max(cfg.lane_cusum_h_probed)
                    } else {
                        lane_h
                    };
                    if range
                        .clone()
                        .any(|l| !lane_flow.get(l).is_some_and(|f| f.is_finite()))
                    {
                        // A lane data quality does not trust (or that sent nothing):
                        // what was learnt about it may be stale when it comes back
                        // (a fault starts before it is recognised), so it learns anew.
                        for l in range {
                            if !lane_flow.get(l).is_some_and(|f| f.is_finite())
                                && let Some(m) = self.lanes.get_mut(l)
                            {
                                *m = LaneMem::default();
                            }
                        }
                        return None;
                    }
                    for l in range.clone() {
                        let m = &mut self.lanes[l];
                        if lane_flow[l] > 0.0 {
                            m.last_count = now;
                        }
                        m.short = if m.short.is_nan() {
                            lane_flow[l]
                        } else {
                            m.short + g_short * (lane_flow[l] - m.short)
                        };
                    }
                    let total: f32 = range.clone().map(|l| self.lanes[l].short).sum();
                    // Compare with the neighbours now (not with a lagging normal):
                    // a dead loop loses its lane's vehicles, a blocked lane moves them.
                    let nb: Vec<f32> = [k.checked_sub(1), Some(k + 1)]
                        .into_iter()
                        .flatten()
                        .filter_map(|j| mems.get(j))
                        .map(|m| m.short_flow)
                        .filter(|f| *f > 0.0)
                        .collect();
                    let normal_total = if nb.is_empty() {
                        mems[k].normal_flow
                    } else {
                        nb.iter().sum::<f32>() / nb.len() as f32
                    };
                    // Lane shares mean something only in free flow at the station
                    // (in a queue every lane crawls, and lanes swap vehicles).
                    let s = &d.samples[k];
                    let free = s.valid && s.speed_kmh >= cfg.down_free_kmh;
                    let warm = range.clone().all(|l| self.lanes[l].n >= cfg.warmup_ticks);
                    let counts_total: f32 = range.clone().map(|l| lane_flow[l] * step_h).sum();
                    let normal_sum: f32 = range.clone().map(|l| self.lanes[l].normal).sum();
                    let window =
                        ((cfg.lane_window_s as i64 * 1000 / step).max(1) as usize).min(LANE_WINDOW);
                    if free && warm && counts_total >= cfg.lane_min_count && normal_sum > 0.0 {
                        // CUSUM of the log-likelihood ratio "the lane's share fell to
                        // `lane_cusum_ratio` of normal" against "it is normal", with
                        // the station's vehicles split binomially among its lanes.
                        let r = cfg.lane_cusum_ratio;
                        for l in range.clone() {
                            let p0 = self.lanes[l].normal / normal_sum;
                            let p1 = r * p0;
                            let n = lane_flow[l] * step_h;
                            // One odd interval (a platoon, a burst) must not carry the
                            // test: each interval's evidence is capped.
                            let llr = if (0.08..=0.92).contains(&p0) {
                                (n * r.ln() + (counts_total - n) * ((1.0 - p1) / (1.0 - p0)).ln())
                                    .min(cfg.lane_llr_cap)
                            } else {
                                0.0
                            };
                            let m = &mut self.lanes[l];
                            m.head = (m.head + 1) % LANE_WINDOW;
                            m.llr[m.head] = llr;
                            m.cnt[m.head] = (n, counts_total);
                            // The largest sum of the newest j intervals, j ≤ window.
                            let (mut sum, mut best, mut best_j) = (0.0f32, 0.0f32, 0usize);
                            for j in 0..window {
                                sum += m.llr[(m.head + LANE_WINDOW - j) % LANE_WINDOW];
                                if sum > best {
                                    (best, best_j) = (sum, j);
                                }
                            }
                            m.cusum = best;
                            m.since = now - best_j as i64 * step;
                            // The share seen matters only once the evidence is there.
                            if best < lane_h {
                                m.share_seen = 1.0;
                                continue;
                            }
                            let (mut a, mut b) = (0.0f32, 0.0f32);
                            for j in 0..=best_j {
                                let (x, y) = m.cnt[(m.head + LANE_WINDOW - j) % LANE_WINDOW];
                                a += x;
                                b += y;
                            }
                            m.share_seen = if p0 > 0.0 && b > 0.0 { a / b / p0 } else { 1.0 };
                        }
                    }
                    // A dead loop counts nothing at all, a chattering one invents
                    // vehicles (the other lanes' shares fall). A blocked lane 1 km
                    // upstream still sees a few vehicles come back into it before
                    // the loop, and its vehicles move to the other lanes: the
                    // station's total holds against its neighbours (or falls, when
                    // the block also starves the station) — it does not jump.
                    let kept = total >= cfg.lane_total_ratio * normal_total
                        && total <= normal_total / cfg.lane_total_ratio;
                    let fired = range
                        .clone()
                        .filter(|&l| {
                            self.lanes[l].cusum >= lane_h
                                && self.lanes[l].share_seen <= cfg.lane_share_ratio
                                && self.lanes[l].last_count >= self.lanes[l].since
                                // When the station's total fell, the lane must
                                // still count something after the evidence
                                // began: a loop that died counts nothing, a
                                // blocked lane 1 km up sees a few come back.
                                && (kept
                                    || (total < normal_total
                                        && self.lanes[l].last_count > self.lanes[l].since))
                        })
                        .map(|l| (self.lanes[l].since, l - dd.first_lane as usize))
                        .min();
                    let calm = range.clone().all(|l| self.lanes[l].cusum < 0.25 * lane_h);
                    if free && calm && counts_total >= cfg.lane_min_count {
                        for l in range.clone() {
                            let m = &mut self.lanes[l];
                            let w = w_lane.max(1.0 / (m.n + 1) as f32);
                            m.normal += w * (lane_flow[l] * step_h - m.normal);
                            m.n += 1;
                        }
                    }
                    fired.filter(|_| warm && total >= cfg.lane_min_flow_vph)
                })
                .collect();
            // The deficit must be placed where it begins: vehicles that moved
            // over stay over for kilometres, so if the stations upstream show
            // the same lane short too (if less clearly), the block is above the
            // first of them.
            let mut lane_at: Vec<Option<i64>> = vec![None; lane_anom.len()];
            for (k, a) in lane_anom.iter().enumerate() {
                let Some((since, off)) = *a else { continue };
                let lanes_k = road.detectors()[d.station_ids[k] as usize].lanes;
                let mut j = k;
                while j > 0 {
                    let du = &road.detectors()[d.station_ids[j - 1] as usize];
                    let lu = du.first_lane as usize + off;
                    if du.lanes == lanes_k
                        && self.lanes.get(lu).is_some_and(|m| m.cusum >= 0.5 * lane_h)
                    {
                        j -= 1;
                    } else {
                        break;
                    }
                }
                lane_at[j] = Some(lane_at[j].map_or(since, |s: i64| s.min(since)));
            }
            // A station with a lane that has counted nothing for two ticks
            // while the others count: a loop that died (or a lane closed at
            // the loop itself). Its missing vehicles are not a starvation or
            // lane signal; the data-quality rules deal with it.
            let silent_lane: Vec<bool> = (0..d.samples.len())
                .map(|k| {
                    let dd = &road.detectors()[d.station_ids[k] as usize];
                    let first = dd.first_lane as usize;
                    let lanes = first..first + dd.lanes as usize;
                    dd.lanes > 1
                        && lanes.clone().any(|l| {
                            self.lanes
                                .get(l)
                                .is_some_and(|m| m.n > 0 && now - m.last_count >= 2 * step)
                        })
                        && lanes
                            .clone()
                            .any(|l| self.lanes.get(l).is_some_and(|m| m.last_count == now))
                })
                .collect();
            for (a, silent) in lane_at.iter_mut().zip(&silent_lane) {
                if *silent {
                    *a = None;
                }
            }
            // Whether a pair upstream of the one at hand holds an incident, open
            // or cleared within the hold-off (kept as the pairs go by, in order).
            let mut upstream_active = false;
            for p in 0..self.pairs[di].len() {
                let (mu, md) = (&mems[p], &mems[p + 1]);
                let (Some(u), Some(dn)) = (smooth(mu), smooth(md)) else {
                    continue;
                };
                let warm = md.n_normal >= cfg.warmup_ticks;
                // Under a lowered limit drivers go slow on purpose: the
                // upstream station is queued only well below that limit.
                let up_slow = cfg
                    .up_slow_kmh
                    .min(mems[p].limit_low - cfg.limit_margin_kmh);
                let pair = &mut self.pairs[di][p];
                // 1. Queue upstream, starvation downstream.
                let occ_diff = u.0 - dn.0;
                // Where the road itself makes a bottleneck (a merge, a portal, a
                // lane drop), a queue with free flow below it is the daily jam
                // unless the downstream flow starves; elsewhere a stationary
                // queue needs no further proof — unless it is a wave that came
                // from downstream (the downstream station was slow minutes ago).
                let (ids, dir) = (&d.station_ids, d.direction);
                let has_cause = *pair
                    .has_cause
                    .get_or_insert_with(|| bottleneck_cause(road, dir, ids[p], ids[p + 1]))
                    || now < pair.learned_jam_until;
                // A wave passed on leaves the station below discharging near
                // capacity; a station below that runs free with a fraction of
                // its flow is starved, whatever it saw minutes ago.
                let dn_normal = md.normal_flow.max(md.slow_flow);
                let starving_hard =
                    cfg.wave_starve_ratio > 0.0 && dn.2 <= cfg.wave_starve_ratio * dn_normal;
                let wave = md.last_congested != 0
                    && now - md.last_congested <= cfg.wave_memory_s as i64 * 1000
                    && !starving_hard;
                // In fog or on ice drivers slow down (and obey the lowered
                // limits): slow traffic upstream and free traffic past the
                // zone's end is the weather, not a queue behind a block —
                // unless the downstream flow starves, as below a merge.
                let weather = in_weather(
                    &self.weather,
                    dir,
                    road.detectors()[ids[p] as usize].stake_m,
                );
                // Below a daily jam the station discharges at capacity, its
                // counts swinging by their noise; below a block it starves
                // beyond that noise.
                let flow_h = (90_000.max(step * 2)) as f32 / 3_600_000.0;
                let short_below = dn.2 <= cfg.starve_ratio * dn_normal;
                let starved_below = short_below
                    && (dn_normal - dn.2) * flow_h
                        >= cfg.cause_starve_sigma * (dn_normal * flow_h).max(1.0).sqrt();
                let queue = occ_diff >= cfg.occ_diff_pct
                    && occ_diff / u.0.max(1e-3) >= cfg.occ_rel_diff
                    && u.1 < up_slow
                    && dn.1 >= cfg.down_free_kmh
                    && warm
                    && !wave
                    && (!(has_cause || weather) || starved_below);
                // 2. Vehicles vanishing between the stations.
                // Counts in short intervals are noisy (±√n, and platoons): the
                // imbalance is smoothed over about two minutes before it is trusted.
                let imbalance = u.2 - dn.2;
                let beta = (step as f32 / 120_000.0).min(1.0);
                pair.residual += beta * ((imbalance - pair.normal_imbalance) - pair.residual);
                let vanish_level = (cfg.imbalance_share * u.2).max(cfg.imbalance_min_vph);
                let vanishing = cfg.use_imbalance
                    && pair.n_normal >= cfg.warmup_ticks
                    && u.2 >= cfg.imbalance_min_flow_vph
                    && pair.residual >= vanish_level
                    && md.short_flow <= 0.85 * md.normal_flow
                    && dn.1 >= cfg.down_free_kmh
                    && !wave
                    && (!has_cause || dn.2 <= cfg.starve_ratio * md.normal_flow);
                // 2b. The downstream station starves while the upstream one still
                // carries its normal flow: capacity vanished between them. Seen at
                // the downstream station within a minute or two of a block that
                // caps the flow, long before the queue reaches the upstream station.
                // A demand drop starves both; a block further up starves the
                // upstream station first; a merge that jams discharges at capacity.
                let explained = upstream_active;
                let pair = &mut self.pairs[di][p];
                // A queue that just dissolved upstream: the downstream station,
                // which was discharging it at capacity, falls back to demand.
                let up_queued = mu.last_congested != 0
                    && now - mu.last_congested <= 2 * cfg.wave_memory_s as i64 * 1000;
                let starved = cfg.use_starvation
                    && !explained
                    && !silent_lane[p + 1]
                    && warm
                    && mu.n_normal >= cfg.warmup_ticks
                    && u.2 >= cfg.starve_min_flow_vph
                    && u.2 >= cfg.starve_up_hold * mu.normal_flow
                    && dn.2 <= cfg.starve_fast_ratio * md.normal_flow.max(md.slow_flow)
                    && imbalance - pair.normal_imbalance
                        >= (1.0 - cfg.starve_fast_ratio) * 0.8 * u.2
                    // … and beyond the counts' noise over the 90 s the flows
                    // cover: Poisson, or what this pair has shown in calm
                    // times when that is more (platoons, a ramp's bursts).
                    && (imbalance - pair.normal_imbalance) * flow_h
                        >= cfg.starve_sigma
                            * ((u.2 + dn.2) * flow_h).max(pair.imbalance_var).max(1.0).sqrt()
                    && dn.1 >= cfg.down_free_kmh
                    && !wave
                    && !up_queued;
                // A lane emptied at the downstream station: the block is upstream of it.
                // ... unless an incident upstream explains it (its displaced
                // vehicles keep their lanes for kilometres downstream).
                let lane_since = lane_at[p + 1].filter(|_| !explained);
                let lane_blocked = lane_since.is_some();
                let anomaly = queue || vanishing || starved || lane_blocked;
                if anomaly {
                    if pair.run == 0 {
                        // The first anomalous tick averages two intervals: start one before it.
                        pair.run_start = now - 2 * step;
                    }
                    pair.run += 1;
                    pair.calm = 0;
                    anomalous_station[p] = true;
                    anomalous_station[p + 1] = true;
                } else {
                    if pair.open.is_some() {
                        anomalous_station[p] = true;
                        anomalous_station[p + 1] = true;
                    }
                    pair.run = 0;
                    // An open incident's plan lowers the limits around it:
                    // a queue then looks like traffic obeying them. While the
                    // upstream station is slow only by the lowered standard
                    // and still clearly denser than the one below (which the
                    // limits make denser too), it is not calm.
                    // (A queue that the station below discharges in full is
                    // not held by a block: that one may clear.)
                    let masked = pair.open.is_some()
                        && u.1 < cfg.up_slow_kmh
                        && occ_diff >= cfg.occ_diff_pct
                        && dn.2 <= cfg.mask_flow_ratio * dn_normal;
                    if !masked {
                        pair.calm += 1;
                    }
                    // Learn the pair's normal imbalance only in calm times (not
                    // while an imbalance is building up towards the threshold).
                    let building = pair.residual > 0.3 * vanish_level;
                    if pair.open.is_none() && !building {
                        // A plain mean while warming up, then an exponential one.
                        let w = alpha.max(1.0 / (pair.n_normal + 1) as f32);
                        let dev = (imbalance - pair.normal_imbalance) * flow_h;
                        pair.normal_imbalance += w * (imbalance - pair.normal_imbalance);
                        let wv =
                            (alpha * cfg.normal_s / 900.0).max(1.0 / (pair.n_normal + 1) as f32);
                        pair.imbalance_var += wv * (dev * dev - pair.imbalance_var);
                        pair.n_normal += 1;
                    }
                }
                let (su, sd) = (
                    road.detectors()[d.station_ids[p] as usize].stake_m,
                    road.detectors()[d.station_ids[p + 1] as usize].stake_m,
                );
                // The lane CUSUM carries its own persistence; the other tests need a run.
                // Starvation alone must last longer: a block that caps the
                // flow keeps starving the station below, a lull between
                // platoons does not.
                pair.starve_run = if starved { pair.starve_run + 1 } else { 0 };
                let persisted = (pair.run >= cfg.persist_ticks
                    && (pair.run as i64) * step >= cfg.persist_s as i64 * 1000
                    && (queue
                        || vanishing
                        || (pair.starve_run as i64) * step >= cfg.starve_persist_s as i64 * 1000))
                    || lane_blocked
                    // A queue above and a station starved below at once: two
                    // independent signs need no further run.
                    || (queue
                        && cfg.strong_starve_ratio > 0.0
                        && dn.2 <= cfg.strong_starve_ratio * dn_normal);
                // Start: where the evidence began, less the travel from the block
                // to the downstream station (about one interval).
                if let Some(t) = lane_since {
                    pair.run_start = pair.run_start.min(t - step);
                }
                // After an incident here or next door clears, its queue dissolves
                // front first and looks like a new one for a while: hold off.
                let held = held_off(&self.closed_at[di], p, now, cfg.holdoff_s);
                let raise = pair.open.is_none() && persisted && !held;
                // A queue discharging in full: near capacity below, not short.
                let lanes_dn = road.detectors()[d.station_ids[p + 1] as usize].lanes as f32;
                // (`dn` is a mean of valid samples: never NaN.)
                let not_discharging = short_below || dn.2 < cfg.jam_discharge_vph_lane * lanes_dn;
                pair.short_while_open =
                    (pair.open.is_some() && pair.short_while_open) || not_discharging;
                if raise {
                    let seq = *next_seq;
                    *next_seq += 1;
                    pair.open = Some(Event {
                        seq,
                        kind: EventKind::Incident,
                        direction: Some(d.direction),
                        from_m: su.min(sd),
                        to_m: su.max(sd),
                        start_ms: pair.run_start,
                        detected_ms: now,
                        end_ms: None,
                        severity: 3,
                        rule: if queue {
                            "incident.queue_starvation"
                        } else if starved {
                            "incident.starvation"
                        } else if lane_blocked {
                            "incident.lane_blocked"
                        } else {
                            "incident.vehicles_vanishing"
                        },
                        detectors: vec![d.station_ids[p], d.station_ids[p + 1]],
                        detail: EventDetail::None,
                    });
                    // A camera saw it first: one incident, one event — the camera's
                    // number and times, the detectors' extent and evidence.
                    let (lo, hi) = (su.min(sd) - 500.0, su.max(sd) + 500.0);
                    if let Some(k) = self.spot.iter().position(|(e, _)| {
                        e.direction == Some(d.direction) && e.from_m >= lo && e.to_m <= hi
                    }) && let Some(e) = pair.open.as_mut()
                    {
                        let (cam, _) = self.spot.remove(k);
                        *next_seq -= 1;
                        e.seq = cam.seq;
                        e.start_ms = e.start_ms.min(cam.start_ms);
                        e.detected_ms = cam.detected_ms;
                        e.severity = e.severity.max(cam.severity);
                    }
                } else if pair.open.is_some()
                    && pair.calm >= cfg.clear_ticks
                    && let Some(mut e) = pair.open.take()
                {
                    e.end_ms = Some(now - (cfg.clear_ticks as i64 - 1) * step);
                    self.closed_at[di][p] = now;
                    // A queue with the flow below never short, unconfirmed:
                    // this stretch jams by itself.
                    if e.rule == "incident.queue_starvation"
                        && e.severity < 4
                        && !pair.short_while_open
                    {
                        pair.learned_jam_until = now + cfg.learned_jam_s as i64 * 1000;
                    }
                    closed.push(e);
                }
                // The lane test raised it one pair further down a tick or two ago,
                // before the deficit upstream was clear: the same incident, now
                // placed better (one incident, one event).
                if raise
                    && lane_blocked
                    && !queue
                    && !starved
                    && let Some(old) = self.pairs[di]
                        .get_mut(p + 1)
                        .and_then(|q| q.open.take_if(|e| e.rule == "incident.lane_blocked"))
                    && let Some(e) = self.pairs[di][p].open.as_mut()
                {
                    if e.seq + 1 == *next_seq {
                        *next_seq -= 1;
                    }
                    e.seq = old.seq;
                    e.detected_ms = old.detected_ms;
                    e.start_ms = e.start_ms.min(old.start_ms);
                    e.severity = e.severity.max(old.severity);
                }
                upstream_active |= self.pairs[di][p].open.is_some()
                    || now - self.closed_at[di][p] < cfg.holdoff_s as i64 * 1000;
            }
            // Station normals, frozen where something is wrong.
            for (k, m) in mems.iter_mut().enumerate() {
                let f = m.last_flow;
                if f.is_finite() && !anomalous_station[k] {
                    let w = alpha.max(1.0 / (m.n_normal + 1) as f32);
                    m.normal_flow += w * (f - m.normal_flow);
                    let ws = (alpha * cfg.normal_s / 900.0).max(1.0 / (m.n_normal + 1) as f32);
                    m.slow_flow += ws * (f - m.slow_flow);
                    m.n_normal += 1;
                }
            }
        }
        self.probes_tick(road, state, now, step, next_seq);
        // Cameras: confirm an open incident nearby, or raise one.
        for c in std::mem::take(&mut self.pending_cameras) {
            let near = |e: &Event| {
                e.direction == Some(c.direction)
                    && c.stake_m >= e.from_m - 500.0
                    && c.stake_m <= e.to_m + 500.0
            };
            let mut confirmed = false;
            for p in self.pairs.iter_mut().flatten() {
                if let Some(e) = p.open.as_mut().filter(|e| near(e)) {
                    e.severity = e.severity.max(4);
                    confirmed = true;
                }
            }
            if let Some((e, last)) = self.spot.iter_mut().find(|(e, _)| near(e)) {
                e.from_m = e.from_m.min(c.stake_m);
                e.to_m = e.to_m.max(c.stake_m);
                *last = c.ts_ms;
                confirmed = true;
            }
            if !confirmed {
                let seq = *next_seq;
                *next_seq += 1;
                let fire = matches!(c.kind, CameraKind::Fire | CameraKind::Smoke);
                self.spot.push((
                    Event {
                        seq,
                        kind: EventKind::Incident,
                        direction: Some(c.direction),
                        from_m: c.stake_m,
                        to_m: c.stake_m,
                        start_ms: c.ts_ms,
                        detected_ms: now.max(c.ts_ms),
                        end_ms: None,
                        severity: if fire { 5 } else { 4 },
                        rule: if fire {
                            "incident.camera_fire"
                        } else {
                            "incident.camera"
                        },
                        detectors: Vec::new(),
                        detail: EventDetail::None,
                    },
                    c.ts_ms,
                ));
            }
        }
        crate::event::end_quiet_alarms(&mut self.spot, now, 600_000, closed);
    }
}

impl IncidentWatch {
    /// Test 4, vehicles held up where the road runs free: slow probe reports
    /// between two stations that both flow freely (and have for
    /// `wave_memory_s`). Vehicles behind a stopped car must slow, queue for
    /// a gap and merge — within a minute, long before a queue (if any)
    /// reaches a loop; the free stations around them say it is not a jam.
    /// `probe_vehicles` distinct vehicles within `probe_radius_m` and
    /// `probe_window_s` raise an incident just past the furthest of them.
    fn probes_tick(
        &mut self,
        road: &RoadBook,
        state: &CorridorState,
        now: i64,
        step: i64,
        next_seq: &mut u64,
    ) {
        let cfg = &self.cfg;
        let window = cfg.probe_window_s as i64 * 1000;
        let wave = cfg.wave_memory_s as i64 * 1000;
        self.held_up.retain(|p| now - p.ts_ms <= window);
        for p in std::mem::take(&mut self.pending_probes) {
            let Some(di) = state
                .directions
                .iter()
                .position(|d| d.direction == p.direction)
            else {
                continue;
            };
            let d = &state.directions[di];
            let dir = d.direction;
            let x = dir.travel_m(p.stake_m);
            // The vehicles behind a block already raised keep it open.
            let travel_extent = |e: &Event| {
                let (a, b) = (dir.travel_m(e.from_m), dir.travel_m(e.to_m));
                (a.min(b), a.max(b))
            };
            if let Some((_, last)) = self.spot.iter_mut().find(|(e, _)| {
                let (a, b) = travel_extent(e);
                e.direction == Some(dir) && x >= a - 1000.0 && x <= b + 200.0
            }) {
                *last = (*last).max(p.ts_ms);
                continue;
            }
            if self.pairs[di].iter().any(|q| {
                q.open.as_ref().is_some_and(|e| {
                    let (a, b) = travel_extent(e);
                    x >= a - 500.0 && x <= b + 500.0
                })
            }) {
                continue;
            }
            // A report not slow but only slower than the vehicle's last: a dip.
            let dip = p.speed_kmh >= cfg.probe_slow_kmh;
            // A vehicle that braked and then drove on was not turning into
            // the service area (nor leaving it: that one speeds up).
            let passed_dip = dip && cfg.probe_dip_recover_kmh > 0.0;
            if !passed_dip
                && road
                    .service_areas()
                    .iter()
                    .any(|s| (s.stake_m - p.stake_m).abs() <= cfg.probe_service_area_m)
            {
                continue;
            }
            let xs = |k: usize| dir.travel_m(road.detectors()[d.station_ids[k] as usize].stake_m);
            let Some(k) =
                (0..d.station_ids.len().saturating_sub(1)).find(|&k| xs(k) <= x && x < xs(k + 1))
            else {
                continue;
            };
            let lanes = road.detectors()[d.station_ids[k] as usize]
                .lanes
                .max(road.detectors()[d.station_ids[k + 1] as usize].lanes);
            if p.offset_m.abs() > lanes as f64 * 3.75 + cfg.probe_lateral_margin_m {
                continue;
            }
            let mems = &self.stations[di];
            let free = |m: &StationMem| {
                m.n_normal >= cfg.warmup_ticks
                    && m.recent
                        .last()
                        .is_some_and(|r| now - r.0 <= 2 * step && r.2 >= cfg.down_free_kmh)
                    && now - m.last_congested > wave
            };
            if !free(&mems[k]) || !free(&mems[k + 1]) {
                continue;
            }
            // Under a lowered limit (a fog plan's 20 km/h kept for a while
            // past the fog), a truck keeping to it is not held up: it must
            // be well below the lowest limit around, as in the queue test.
            let limit = mems[k].limit_low.min(mems[k + 1].limit_low);
            if p.speed_kmh >= limit - cfg.limit_margin_kmh {
                continue;
            }
            // A dip means something only where traffic is thin.
            let thin = mems[k].short_flow <= cfg.probe_dip_max_vph_lane * lanes as f32;
            if dip && !thin {
                continue;
            }
            if held_off(&self.closed_at[di], k, now, cfg.holdoff_s) {
                continue;
            }
            self.held_up.push(p);
            let near: Vec<&ProbeObs> = self
                .held_up
                .iter()
                .filter(|q| {
                    q.direction == dir && (q.stake_m - p.stake_m).abs() <= cfg.probe_radius_m
                })
                .collect();
            let mut vehicles: Vec<u32> = near.iter().map(|q| q.vehicle).collect();
            vehicles.sort_unstable();
            vehicles.dedup();
            // In a merge (or before a lane drop or a tunnel portal, or in
            // fog or on ice), vehicles held up are the daily jam (the
            // weather) unless the station below starves (as for the queue
            // test).
            // Thin traffic does not queue back past an on-ramp's nose.
            let before = if thin {
                cfg.probe_thin_merge_before_m
            } else {
                cfg.probe_merge_before_m
            };
            let merge =
                road.interchanges().iter().any(|i| {
                    let xi = dir.travel_m(i.stake_m);
                    i.directions.contains(&dir) && x >= xi - before && x <= xi + 500.0
                }) || lane_drop_or_portal(road, dir, d.station_ids[k], d.station_ids[k + 1])
                    || in_weather(&self.weather, dir, p.stake_m);
            let md = &mems[k + 1];
            let starving = md.short_flow <= cfg.starve_ratio * md.normal_flow.max(md.slow_flow);
            let enough = if merge {
                vehicles.len() as u32 >= cfg.probe_merge_vehicles
                    && (starving || !cfg.probe_merge_starve)
            } else {
                vehicles.len() as u32 >= cfg.probe_vehicles
            };
            if !enough {
                continue;
            }
            // The block is just past the furthest vehicle held up.
            let (mut lo, mut hi, mut first) = (f64::INFINITY, f64::NEG_INFINITY, now);
            for q in &near {
                let xq = dir.travel_m(q.stake_m);
                lo = lo.min(xq);
                hi = hi.max(xq);
                first = first.min(q.ts_ms);
            }
            // (Travel position and stake map onto each other both ways.)
            let (a, b) = (dir.travel_m(lo), dir.travel_m(hi + 100.0));
            let seq = *next_seq;
            *next_seq += 1;
            self.spot.push((
                Event {
                    seq,
                    kind: EventKind::Incident,
                    direction: Some(dir),
                    from_m: a.min(b),
                    to_m: a.max(b),
                    // The first vehicle slowed before it reported.
                    start_ms: first - step,
                    detected_ms: now,
                    end_ms: None,
                    severity: 3,
                    rule: "incident.probe_slowdown",
                    detectors: vec![d.station_ids[k], d.station_ids[k + 1]],
                    detail: EventDetail::None,
                },
                p.ts_ms,
            ));
            self.held_up.retain(|q| {
                !(q.direction == dir && (q.stake_m - p.stake_m).abs() <= cfg.probe_radius_m)
            });
        }
    }
}

/// Whether the stretch from detector `a` to detector `b` (in the direction
/// of travel) has a reason for a daily bottleneck: an interchange (on-ramp
/// merge) from 300 m before `a` to 500 m past `b`, a tunnel entrance after `a`
/// and up to 500 m past `b`, or fewer
/// lanes at `b` than at `a`.
pub fn bottleneck_cause(road: &RoadBook, dir: Direction, a: u32, b: u32) -> bool {
    let (da, db) = (&road.detectors()[a as usize], &road.detectors()[b as usize]);
    // An on-ramp at a station merges downstream of it: look from 300 m before
    // the upstream station to 500 m past the downstream one.
    let (xa, xb) = (
        dir.travel_m(da.stake_m) - 300.0,
        dir.travel_m(db.stake_m) + 500.0,
    );
    lane_drop_or_portal(road, dir, a, b)
        || road.interchanges().iter().any(|i| {
            let x = dir.travel_m(i.stake_m);
            i.directions.contains(&dir) && x > xa && x <= xb
        })
}

/// Whether the stretch from detector `a` to detector `b` loses a lane or
/// enters a tunnel (the part of [`bottleneck_cause`] that is not a merge).
pub fn lane_drop_or_portal(road: &RoadBook, dir: Direction, a: u32, b: u32) -> bool {
    let (da, db) = (&road.detectors()[a as usize], &road.detectors()[b as usize]);
    let (xa, xb) = (dir.travel_m(da.stake_m), dir.travel_m(db.stake_m) + 500.0);
    db.lanes < da.lanes
        || road.tunnels().iter().any(|t| {
            // Only the entrance portal in the direction of travel slows traffic,
            // and only one downstream of the upstream station (a portal at the
            // station queues traffic into the stretch before it).
            let portal = dir.travel_m(if dir == Direction::Up {
                t.from_m
            } else {
                t.to_m
            });
            portal > xa && portal <= xb
        })
}

/// Whether pair `p` is held off: an incident on it or on a pair next to it
/// cleared less than `holdoff_s` ago (`closed_at`: per pair, when).
fn held_off(closed_at: &[i64], p: usize, now: i64, holdoff_s: u32) -> bool {
    let last = closed_at.len().saturating_sub(1);
    closed_at[p.saturating_sub(1)..=(p + 1).min(last)]
        .iter()
        .any(|&t| now - t < holdoff_s as i64 * 1000)
}

/// Whether `stake_m` lies in one of `zones` on carriageway `dir`, or within
/// 1 km of it (weather stations are kilometres apart; a zone's edge is
/// only known to the nearest one).
fn in_weather(zones: &[(Option<Direction>, f64, f64)], dir: Direction, stake_m: f64) -> bool {
    zones.iter().any(|&(d, from, to)| {
        d.is_none_or(|d| d == dir) && stake_m >= from - 1000.0 && stake_m <= to + 1000.0
    })
}

/// Whether an incident lies in a tunnel: the tunnel index.
pub fn tunnel_of(road: &RoadBook, e: &Event) -> Option<usize> {
    road.tunnels()
        .iter()
        .position(|t| e.from_m <= t.to_m && e.to_m >= t.from_m)
}

/// Direction helper for plans.
pub fn upstream_edge(dir: Direction, e: &Event) -> f64 {
    match dir {
        Direction::Up => e.from_m,
        Direction::Down => e.to_m,
    }
}
