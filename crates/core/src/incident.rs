//! Automatic incident detection (交通事件检测): a lane blocked by a stopped
//! vehicle or a crash, located between two detector stations.
//!
//! For each pair of consecutive stations (upstream `u`, downstream `d`) on a
//! carriageway, every tick, on occupancy and speed averaged over the last
//! minute and flow over the last 90 s, [`IncidentWatch::close_tick`] runs one
//! small function per test; each test's thresholds are one group of
//! [`IncidentConfig`] (its `enabled` switch turns the test off, so each can
//! be measured alone). `docs/EVENTS.md` tells the story of every rule.
//!
//! | test | function | thresholds |
//! |---|---|---|
//! | a stationary queue upstream, free flow downstream (the California family's spatial test) | `queue_test` | [`QueueConfig`] |
//! | a wave that came from downstream is not a queue (California #8) | `wave_test` | [`WaveConfig`] |
//! | the station below starves while the one above carries its flow | `starvation_test` | [`StarvationConfig`] |
//! | vehicles vanishing between the stations (off by default) | `imbalance_test` | [`ImbalanceConfig`] |
//! | the upstream station slowed well below its normal speed while not dense, the one below at its normal (a speed discontinuity in free flow) | `slowed_test` | [`SlowedConfig`] |
//! | a lane's share of its station's vehicles fell (bounded CUSUM) | `IncidentWatch::lane_test` | [`LaneConfig`] |
//! | a lane standing still over its loop, or emptied at it, while the others move | `IncidentWatch::stopped_lanes`, `pair_tick` | [`StoppedConfig`] |
//! | a lane standing still over (or emptied at) the last station's loop: a block past the corridor's last station | `IncidentWatch::tail_tick` | [`StoppedConfig`] (`last_station`) |
//! | a lane deficit at the first station: a block before it | `IncidentWatch::head_tick` | [`LaneConfig`] (`first_station`) |
//! | how long a pair must be anomalous | `persisted` | [`PersistConfig`] |
//! | when an incident ends (the road no longer blocked: `still_blocked`), hold-off, learned jams, the zone covering the site | `IncidentWatch::pair_tick` | [`ClearingConfig`] |
//! | trucks held up where the road runs free | `IncidentWatch::probes_tick` | [`ProbeConfig`] |
//! | camera sightings | `IncidentWatch::cameras_tick` | [`CameraConfig`] |
//!
//! What is shared: when a station counts as free or congested and how its
//! normals are learnt ([`NormalConfig`]), and the speed limits in force
//! ([`LimitConfig`]): drivers obeying a plan's limit are not a queue.
//! Normals are frozen while a pair is anomalous, so an incident never
//! becomes the normal. The estimated start is where the evidence began,
//! less one interval.

use std::collections::HashMap;

use zhilu_road::{Direction, RoadBook};

use crate::event::{Event, EventDetail, EventKind};
use crate::reading::{CameraKind, CameraObs};
use crate::state::{CorridorState, DirectionState};

/// What free flow, congestion and normal mean at a station (shared by the tests).
#[derive(Debug, Clone, PartialEq)]
pub struct NormalConfig {
    /// A station at least this fast (km/h) runs free.
    pub free_kmh: f32,
    /// A station slower than this (km/h; under a lowered limit, the limit
    /// less `LimitConfig::margin_kmh` when that is lower) …
    pub congested_kmh: f32,
    /// … or denser than this (occupancy %) counts as congested.
    pub congested_occ_pct: f32,
    /// Time constant of the stations' normal flows (s).
    pub normal_s: f32,
    /// Ticks of normals needed before alarms are allowed …
    pub warmup_ticks: u32,
    /// … or this much data (s), whichever comes first: a 60-s count holds
    /// the vehicles of two 30-s ones, and 20 of them took 20 min (issue 15:
    /// a block 12 min into a 2-km / 60-s day went unseen).
    pub warmup_s: u32,
}

/// The speed limits in force (drivers obeying a plan's limit are not a queue).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitConfig {
    /// A station is slow only this much below the limit in force there (km/h).
    pub margin_kmh: f32,
    /// A limit raised counts for this long (s) as the one traffic obeys:
    /// the platoon it held takes minutes to speed up.
    pub memory_s: u32,
    /// A plan's lowered limit (not an open incident's own) is a known cause
    /// where traffic under it has been congested within `memory_s`: a
    /// queue there needs the station below to starve, and a lane shift
    /// there is not a blocked lane unless it does (the fog plan's 20 km/h
    /// builds a queue; drivers change lanes in and out of it).
    pub plans_are_causes: bool,
    /// An open incident's own plan lowers the limits this far upstream of
    /// it (m): there a lowered limit is not another plan's.
    pub own_plan_m: f64,
}

/// Test 1: a stationary queue upstream, free flow downstream.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// Spatial occupancy difference (percentage points).
    pub occ_diff_pct: f32,
    /// Relative spatial occupancy difference.
    pub occ_rel_diff: f32,
    /// A speed discontinuity: where the speed falls by at least this
    /// (km/h) from the station below to the one above, the occupancy
    /// difference needs only `drop_occ_diff_pct` (drivers slowing in all
    /// lanes past a site, rubbernecking, before a dense queue builds); 0 = off.
    pub speed_drop_kmh: f32,
    /// … the occupancy difference then needed (percentage points).
    pub drop_occ_diff_pct: f32,
    /// Upstream slower than this (km/h; under a lowered limit also
    /// `LimitConfig::margin_kmh` below it).
    pub up_slow_kmh: f32,
    /// … or denser than this (occupancy %, the station's lanes averaged;
    /// 0 = off): half the cross-section standing over its loops is a
    /// stationary queue even while the lane left open runs at speed (the
    /// station's speed is that of the vehicles counted, and a lane standing
    /// still counts none; issue 15: two lanes standing 31 m before a block,
    /// the third at 100 km/h).
    pub standing_occ_pct: f32,
    /// Where the stretch jams daily (a merge, a portal, a lane drop, a
    /// weather zone, a learned jam), the downstream flow (90 s) must be at
    /// most this share of its normal …
    pub cause_starve_ratio: f32,
    /// … and short of it by this many standard deviations of the counts.
    pub cause_sigma: f32,
    /// A queue with the station below at most this share of its normal
    /// flow is raised at its first tick; 0 = off.
    pub strong_starve_ratio: f32,
}

/// California #8's compression-wave test: a downstream station slow
/// recently means the slow traffic upstream came from downstream.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// A downstream station congested this recently (s) marks a wave.
    pub memory_s: u32,
    /// … unless its flow is now at most this share of its normal (a wave
    /// that passed leaves it discharging near capacity); 0 = off.
    pub starve_ratio: f32,
}

/// Test 2: the station below starves while the one above carries its flow.
#[derive(Debug, Clone, PartialEq)]
pub struct StarvationConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// Downstream flow (90 s) at most this share of its normal …
    pub fast_ratio: f32,
    /// … short of the upstream flow (beyond the pair's normal imbalance) by
    /// at least this share of it …
    pub imbalance_share: f32,
    /// … while the upstream flow holds at least this share of its normal.
    pub up_hold: f32,
    /// Least upstream flow for the test (veh/h, all lanes).
    pub min_flow_vph: f32,
    /// Seconds in a row before starvation alone raises an alarm.
    pub persist_s: u32,
    /// The missing vehicles must exceed this many standard deviations of
    /// the counts (Poisson, or the pair's own calm-time noise when larger).
    pub sigma: f32,
    /// Not when the station below counted no vehicle at all in this many
    /// intervals in a row (a whole station dead: data quality's business;
    /// a block closing every lane builds a queue); 0 = off.
    pub dead_ticks: u32,
    /// Not while the upstream station was congested this recently (s): a
    /// queue dissolving upstream leaves the station below falling back
    /// from capacity to demand.
    pub up_queue_memory_s: u32,
}

/// A speed discontinuity in free flow (速度突变): the upstream station runs
/// well below its own normal speed while it stays sparse, and the station
/// below runs at its normal speed. In free flow speed does not depend on
/// the flow, so a station slowed without growing dense has drivers braking
/// to merge out of a lane blocked just past its loop; with light demand
/// no queue forms and the lane's vehicles reach the station below in the
/// other lanes (issue 15: light one-lane blocks at 500 m / 20 s took
/// 200–350 s). Its persistence is `PersistConfig`'s time of data.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowedConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// The upstream station's speed in the interval (the space-mean speed
    /// of its vehicles) at least this far (km/h) below its own normal speed
    /// (learnt, frozen while anomalous), in every interval over
    /// `PersistConfig::seconds` of data and two intervals at least (each
    /// interval's own speed: one crawling vehicle moves a minute's mean for
    /// a minute) …
    pub deficit_kmh: f32,
    /// … while its occupancy (over the last minute) stays below this (%;
    /// free flow runs up to about 25 %: slow traffic grown dense is a
    /// queue, the queue test's, or a queue for an off-ramp) …
    pub max_occ_pct: f32,
    /// … and the station below runs free and within this much (km/h) of its
    /// own normal speed (slow all along the road is the weather or demand) …
    pub below_within_kmh: f32,
    /// … with at least this flow upstream (veh/h, all lanes: the mean of a
    /// few vehicles is one truck's speed).
    pub min_flow_vph: f32,
}

/// The older flow-imbalance test (vehicles vanishing between the stations).
#[derive(Debug, Clone, PartialEq)]
pub struct ImbalanceConfig {
    /// Whether the test runs (off by default: at 1-km spacing the count
    /// imbalance swings by the section's contents, ±30 vehicles, and it
    /// raised tens of false alarms a day on the SUMO suite; the starvation
    /// test replaces it).
    pub enabled: bool,
    /// Imbalance beyond normal: share of the upstream flow …
    pub share: f32,
    /// … and at least this (veh/h).
    pub min_vph: f32,
    /// Upstream flow below which the test is not used (veh/h, all lanes).
    pub min_flow_vph: f32,
}

/// Test 3: a lane's share of its station's vehicles fell.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// Over the intervals that make the evidence, the lane's share is at
    /// most this fraction of its normal share.
    pub share_ratio: f32,
    /// The station's total flow at least this share of its neighbours' and
    /// at most its inverse (the vehicles moved to other lanes; a dead loop
    /// would lose them, a chattering one invent them).
    pub total_ratio: f32,
    /// Least station flow for the test (veh/h).
    pub min_flow_vph: f32,
    /// The blocked lane's share is taken to fall to this fraction of its
    /// normal share (the CUSUM's alternative hypothesis).
    pub cusum_ratio: f32,
    /// Log-likelihood ratio at which a lane counts as emptied.
    pub cusum_h: f32,
    /// … where probe vehicles cover the carriageway (`probe_density_per_km`),
    /// in or near a weather zone, and while lane use settles: the probes
    /// find a blocked lane sooner, so this test can be surer.
    pub cusum_h_probed: f32,
    /// Probe vehicles reporting (within a minute) per km of carriageway at
    /// which it counts as covered by probes.
    pub probe_density_per_km: f32,
    /// Least vehicles counted at the station in an interval for it to count.
    pub min_count: f32,
    /// Time constant of the lanes' normal shares (s).
    pub normal_s: f32,
    /// Evidence is summed over at most this long (s; at most 16 intervals).
    pub window_s: u32,
    /// Most evidence one interval may add, per 30 s of data (scaled with
    /// the interval: a 60-s count holds twice the vehicles of a 30-s one,
    /// so one interval may add twice as much; at 20 s, two thirds).
    pub llr_cap: f32,
    /// Normal shares below this (or above 1 − this) carry no evidence.
    pub min_share: f32,
    /// Shares are learnt only while every lane's evidence is below this
    /// fraction of the threshold.
    pub calm_fraction: f32,
    /// The block is placed above the first station, going upstream, whose
    /// same lane shows at least this fraction of the threshold.
    pub place_fraction: f32,
    /// After the limits in force at a station change, or a fog or ice zone
    /// there ends, the higher threshold holds this long (s).
    pub settle_s: u32,
    /// A lane deficit placed at a carriageway's first station is a block
    /// before it (no station above can show it; issue 15's generator puts
    /// blocks from 1.3 km, before the first station at 2-km spacing).
    pub first_station: bool,
}

/// A lane standing still over its loop while the others move (a queue in
/// that lane behind a block just past the loop; issue 15).
#[derive(Debug, Clone, PartialEq)]
pub struct StoppedConfig {
    /// Whether the test runs.
    pub enabled: bool,
    /// A lane counting no vehicle at this occupancy (%) or more stands still.
    pub occ_pct: f32,
    /// … for this long (s).
    pub persist_s: u32,
    /// The other lanes there at least this much slower (km/h) than the
    /// station below and than their own normal speed (drivers merging out
    /// of the stopped lane), unless the lane test is building at the
    /// station below.
    pub slower_kmh: f32,
    /// Where the stretch has a daily-jam cause, the station below must
    /// starve — unless the other lanes still move at least this fast
    /// (km/h): a jam slows every lane, a block stops one dead.
    pub moving_kmh: f32,
    /// A lane of the upstream station that went silent (counting nothing
    /// for two ticks while the others count) with the station below free
    /// but starved: the lane emptied at the loop, a block just past it
    /// (dead loops do not starve the station below).
    pub emptied: bool,
    /// … a lane that normally counts at least this many vehicles per
    /// interval …
    pub emptied_min_count: f32,
    /// … silent for this long (s) …
    pub emptied_silent_s: u32,
    /// … and the station below at most this share of its normal flow
    /// (the lanes' vehicles are missing there too: a dead loop's are not) …
    pub emptied_starve_ratio: f32,
    /// … while the demand holds: the station above the upstream one still
    /// carries at least this share of its normal flow …
    pub emptied_up_hold: f32,
    /// … or the upstream station runs slower than this (km/h; a queue or
    /// merging traffic). A fall in demand starves the station below
    /// against its lagging normal (issue 15: a `gen-day` loop that died as
    /// demand fell was raised as a block; a first guard, the upstream
    /// station carrying its own flow, also refused a light two-lane block
    /// 270 m before a loop on issue 15's 2-km test day).
    pub emptied_free_kmh: f32,
    /// A lane standing still over the loop of a carriageway's last station
    /// (no station below to compare it with) while the station's other
    /// lanes move (at least `moving_kmh`) at least `slower_kmh` below the
    /// station's own normal speed (drivers merging out of it; a loop stuck
    /// on slows nobody) is a block just past that station
    /// (`incident.lane_stopped`; issue 15: a block 17 m past the corridor's
    /// last station on test16's 1-km day was missed, and the lane standing
    /// over the loop flagged `locked_on`).
    pub last_station: bool,
    /// … or (with the station below free) the station below starves beyond
    /// the counts' noise (`QueueConfig::cause_starve_ratio`, `cause_sigma`):
    /// a loop stuck on loses no vehicle below, a block caps the flow (issue
    /// 15: two lanes standing 31 m before a block left the third lane
    /// running at its normal speed, so the moving lanes were not slower).
    pub starved_below: bool,
    /// The lane's standing still for `persist_s` is the test's persistence:
    /// no run of the pair's on top (the pair's run made a block over a loop
    /// wait 120 s, and data quality flagged the standing lane `locked_on`
    /// at the tick the incident was raised).
    pub own_persistence: bool,
}

/// How long a pair must be anomalous before an alarm: a time of data, so
/// the number of ticks follows from the interval (at 20-s data three ticks,
/// at 30 s two, at 60 s one: a 60-s count holds the evidence of two 30-s ones).
#[derive(Debug, Clone, PartialEq)]
pub struct PersistConfig {
    /// At least this many ticks in a row …
    pub ticks: u32,
    /// … covering at least this many seconds of data.
    pub seconds: u32,
}

/// When a detector-raised incident ends, and what its end teaches.
#[derive(Debug, Clone, PartialEq)]
pub struct ClearingConfig {
    /// Calm data in a row (s) before an incident ends (at least
    /// `calm_min_ticks` ticks): at 30-s data six ticks, at 20 s nine, at
    /// 60 s three.
    pub calm_s: u32,
    /// … and at least this many calm ticks.
    pub calm_min_ticks: u32,
    /// An incident raised on the speed discontinuity ([`SlowedConfig`])
    /// ends only after this long calm (s): in light traffic drivers brake
    /// only when the lane they merge into is busy, minutes apart, and the
    /// lane test needs its window (`LaneConfig::window_s`) to take over.
    pub slowed_calm_s: u32,
    /// An open incident's zone reaches up over at most this many stations
    /// above its pair that run free but starved (the block is above them).
    pub zone_up_max: usize,
    /// … and, above a station slowed but not dense (drivers slowing past
    /// the site), this far (m).
    pub slowed_reach_m: f64,
    /// An alarm on a pair whose zone the open incident of the pair below
    /// already covers is that incident, moved up (one incident, one event).
    pub merge_covered: bool,
    /// A lane-blocked incident's zone reaches this far (m) past the last
    /// station whose lane is short (drivers leave a blocked lane before
    /// they reach the block).
    pub lane_ahead_m: f64,
    /// A tick is not calm while the station below still starves: it carries
    /// at most this share of its normal flow …
    pub starved_ratio: f32,
    /// … and the upstream station carries more than it beyond this many
    /// standard deviations of the counts (a demand drop starves both).
    pub starved_sigma: f32,
    /// A tick is not calm while a lane at the station below still shows at
    /// least this fraction of the lane test's threshold.
    pub lane_fraction: f32,
    /// An open incident's pair is not calm under its own plan's limits
    /// while the upstream station is still slow and denser (the queue
    /// test's thresholds) and the station below carries at most this share
    /// of its normal flow; 0 = off.
    pub mask_flow_ratio: f32,
    /// No new alarm on a pair for this long (s) after an incident on it or
    /// next to it cleared (a queue dissolves front first and looks like a
    /// new one).
    pub holdoff_s: u32,
    /// A queue that ended with the station below discharging it in full
    /// all along makes its stretch count as a daily jam for this long (s),
    /// given …
    pub learned_jam_s: u32,
    /// … a discharge of at least this (veh/h per lane at the station
    /// below): in light traffic a block's queue passes in full too.
    pub jam_discharge_vph_lane: f32,
    /// An incident raised only by a camera or by probes ends this long (s)
    /// after its last sighting.
    pub spot_quiet_s: u32,
}

/// Test 4: trucks' position reports as probes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Whether slow probe vehicles raise incidents.
    pub enabled: bool,
    /// A report slower than this (km/h) where the stations around it run
    /// free is a vehicle held up between them.
    pub slow_kmh: f32,
    /// Both stations free and not congested within this long (s).
    pub calm_s: u32,
    /// Distinct vehicles held up near each other before an alarm.
    pub vehicles: u32,
    /// A vehicle held up for one or two reports that then drives on past
    /// the spot at least this fast (km/h) counts twice; 0 = off.
    pub moved_on_kmh: f32,
    /// Vehicles needed in an on-ramp's merge, before a lane drop or a
    /// portal, or in a weather zone …
    pub merge_vehicles: u32,
    /// … where the merge zone begins this far upstream of an interchange (m) …
    pub merge_before_m: f64,
    /// … and the station below must also starve (`QueueConfig::cause_starve_ratio`).
    pub merge_starve: bool,
    /// Within this long (s) …
    pub window_s: u32,
    /// … and this far apart (m).
    pub radius_m: f64,
    /// Reports this close to a service area are not used (m).
    pub service_area_m: f64,
    /// A report further from the centre line than the lanes (3.75 m each)
    /// plus this (m) is on a ramp or a parallel road.
    pub lateral_margin_m: f64,
    /// A report at least this much slower (km/h) than the same vehicle's
    /// report before it (≤ 45 s earlier, at cruising speed) is held up
    /// too: a dip; 0 = off.
    pub dip_kmh: f32,
    /// … when the slower report is below this (km/h) …
    pub dip_below_kmh: f32,
    /// … and the one before was at least this (km/h).
    pub dip_cruise_kmh: f32,
    /// A dip counts only once the vehicle's next report is at least this
    /// much faster again (km/h: it got past); 0 = at once.
    pub dip_recover_kmh: f32,
    /// Dips count only where the station above carries at most this
    /// (veh/h per lane).
    pub dip_max_vph_lane: f32,
    /// In thin traffic an on-ramp's merge zone begins only this far before
    /// the nose (m).
    pub thin_merge_before_m: f64,
}

/// Camera sightings.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    /// Whether cameras raise and confirm incidents.
    pub enabled: bool,
    /// Minimum confidence.
    pub confidence: f32,
    /// A sighting this close (m) to an incident confirms it.
    pub confirm_radius_m: f64,
}

/// Thresholds of incident detection, one group per test.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentConfig {
    /// Free flow, congestion, normals.
    pub normal: NormalConfig,
    /// Limits in force.
    pub limits: LimitConfig,
    /// Test 1: a stationary queue.
    pub queue: QueueConfig,
    /// The compression-wave test.
    pub wave: WaveConfig,
    /// Test 2: starvation.
    pub starvation: StarvationConfig,
    /// The flow-imbalance test (off).
    pub imbalance: ImbalanceConfig,
    /// A speed discontinuity in free flow.
    pub slowed: SlowedConfig,
    /// Test 3: a lane emptied.
    pub lane: LaneConfig,
    /// A lane standing still over its loop.
    pub stopped: StoppedConfig,
    /// Persistence of the queue, starvation and imbalance tests.
    pub persist: PersistConfig,
    /// Clearing, hold-off, learned jams.
    pub clearing: ClearingConfig,
    /// Test 4: probe vehicles.
    pub probes: ProbeConfig,
    /// Cameras.
    pub cameras: CameraConfig,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            normal: NormalConfig {
                free_kmh: 70.0,
                congested_kmh: 60.0,
                congested_occ_pct: 25.0,
                normal_s: 300.0,
                warmup_ticks: 20,
                warmup_s: 600,
            },
            limits: LimitConfig {
                margin_kmh: 15.0,
                memory_s: 300,
                plans_are_causes: true,
                own_plan_m: 10_000.0,
            },
            queue: QueueConfig {
                enabled: true,
                occ_diff_pct: 8.0,
                occ_rel_diff: 0.4,
                speed_drop_kmh: 40.0,
                drop_occ_diff_pct: 4.0,
                up_slow_kmh: 50.0,
                standing_occ_pct: 50.0,
                cause_starve_ratio: 0.75,
                cause_sigma: 3.0,
                strong_starve_ratio: 0.6,
            },
            wave: WaveConfig {
                enabled: true,
                memory_s: 300,
                starve_ratio: 0.6,
            },
            starvation: StarvationConfig {
                enabled: true,
                fast_ratio: 0.6,
                imbalance_share: 0.32,
                up_hold: 0.85,
                min_flow_vph: 3000.0,
                persist_s: 120,
                sigma: 4.0,
                up_queue_memory_s: 600,
                dead_ticks: 2,
            },
            imbalance: ImbalanceConfig {
                enabled: false,
                share: 0.2,
                min_vph: 500.0,
                min_flow_vph: 900.0,
            },
            slowed: SlowedConfig {
                enabled: true,
                deficit_kmh: 25.0,
                max_occ_pct: 15.0,
                below_within_kmh: 12.5,
                min_flow_vph: 600.0,
            },
            lane: LaneConfig {
                enabled: true,
                share_ratio: 0.7,
                total_ratio: 0.85,
                min_flow_vph: 1000.0,
                cusum_ratio: 0.55,
                cusum_h: 12.0,
                cusum_h_probed: 16.0,
                probe_density_per_km: 0.5,
                min_count: 4.0,
                normal_s: 600.0,
                window_s: 300,
                llr_cap: 3.0,
                min_share: 0.08,
                calm_fraction: 0.25,
                place_fraction: 0.5,
                settle_s: 900,
                first_station: true,
            },
            stopped: StoppedConfig {
                enabled: true,
                occ_pct: 90.0,
                persist_s: 60,
                slower_kmh: 10.0,
                moving_kmh: 30.0,
                emptied: true,
                emptied_min_count: 6.0,
                emptied_silent_s: 90,
                emptied_starve_ratio: 0.6,
                emptied_up_hold: 0.85,
                emptied_free_kmh: 95.0,
                last_station: true,
                starved_below: true,
                own_persistence: true,
            },
            persist: PersistConfig {
                ticks: 1,
                seconds: 60,
            },
            clearing: ClearingConfig {
                calm_s: 180,
                calm_min_ticks: 2,
                slowed_calm_s: 300,
                zone_up_max: 2,
                slowed_reach_m: 500.0,
                merge_covered: true,
                lane_ahead_m: 300.0,
                starved_ratio: 0.85,
                starved_sigma: 2.0,
                lane_fraction: 0.5,
                mask_flow_ratio: 0.85,
                holdoff_s: 900,
                learned_jam_s: 86_400,
                jam_discharge_vph_lane: 1400.0,
                spot_quiet_s: 600,
            },
            probes: ProbeConfig {
                enabled: true,
                slow_kmh: 40.0,
                calm_s: 300,
                vehicles: 2,
                moved_on_kmh: 60.0,
                merge_vehicles: 3,
                merge_before_m: 300.0,
                merge_starve: true,
                window_s: 180,
                radius_m: 400.0,
                service_area_m: 150.0,
                lateral_margin_m: 8.0,
                dip_kmh: 20.0,
                dip_below_kmh: 80.0,
                dip_cruise_kmh: 80.0,
                dip_recover_kmh: 8.0,
                dip_max_vph_lane: 800.0,
                thin_merge_before_m: 100.0,
            },
            cameras: CameraConfig {
                enabled: true,
                confidence: 0.7,
                confirm_radius_m: 500.0,
            },
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
    /// Last tick the station looked congested (`NormalConfig`).
    last_congested: i64,
    /// Recent valid samples (tick, occ, speed, flow), newest last, at most 8.
    recent: Vec<(i64, f32, f32, f32)>,
    /// Flow smoothed over about 90 s (short counts are noisy).
    short_flow: f32,
    normal_flow: f32,
    /// Normal speed (km/h; learnt with the normal flow; 0 before any).
    normal_kmh: f32,
    /// Normal flow over ~15 min: a station that starved minutes ago has
    /// pulled `normal_flow` down already, not this one.
    slow_flow: f32,
    n_normal: u32,
    /// The limit in force here last tick (km/h; ∞ before any).
    limit_last: f32,
    /// The lowest limit in force within the last `LimitConfig::memory_s`
    /// (the one traffic still obeys), and until when it counts (ms).
    limit_low: f32,
    limit_low_until: i64,
    /// Until when lane use counts as unsettled (ms): after the limit here
    /// changed, or while a weather zone is here.
    lane_unsettled_until: i64,
    /// The highest limit ever in force on the carriageway (km/h): the
    /// posted one. Below it a plan has lowered the limit.
    limit_posted: f32,
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
    /// Ticks in a row the speed-discontinuity test held.
    slowed_run: u32,
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

/// The clock of one tick.
#[derive(Debug, Clone, Copy)]
struct Tick {
    /// Data time (epoch ms).
    now: i64,
    /// Since the last tick (ms; the data interval).
    step: i64,
    /// Weight of this tick in the stations' normals.
    alpha: f32,
}

impl Tick {
    /// Hours covered by the flow window (90 s, at least two intervals).
    fn flow_h(&self) -> f32 {
        (90_000.max(self.step * 2)) as f32 / 3_600_000.0
    }
}

/// A station's recent means: occupancy and speed over ~60 s, flow over ~90 s.
#[derive(Debug, Clone, Copy)]
struct Smoothed {
    occ: f32,
    kmh: f32,
    flow: f32,
}

/// Occupancy and speed over the last ~60 s, flow over ~90 s: counts of
/// 20–30 s intervals are noisy (±√n), so flows need the longer window.
/// `None` when the station had no valid sample this tick.
fn smooth(m: &StationMem, t: Tick) -> Option<Smoothed> {
    if m.last_flow.is_nan() {
        return None;
    }
    let occ_win = t.step.max(60_000 - t.step + 1);
    let flow_win = 90_000.max(t.step * 2);
    // One pass: each mean adds its samples in the same order.
    let (mut occ, mut kmh, mut n_occ) = (0.0f32, 0.0f32, 0u32);
    let (mut flow, mut n_flow) = (0.0f32, 0u32);
    for r in &m.recent {
        if t.now - r.0 < occ_win {
            occ += r.1;
            kmh += r.2;
            n_occ += 1;
        }
        if t.now - r.0 < flow_win {
            flow += r.3;
            n_flow += 1;
        }
    }
    Some(Smoothed {
        occ: occ / n_occ.max(1) as f32,
        kmh: kmh / n_occ.max(1) as f32,
        flow: flow / n_flow.max(1) as f32,
    })
}

/// What a pair's tests read this tick.
#[derive(Debug, Clone, Copy)]
struct PairSignals {
    u: Smoothed,
    dn: Smoothed,
    /// `u.occ − dn.occ`.
    occ_diff: f32,
    /// The downstream station's normals warmed up.
    warm: bool,
    /// The upstream station is slow below this (km/h): the queue test's
    /// speed, lowered under a lowered limit.
    up_slow_kmh: f32,
    /// The stretch has a reason to jam daily (road book, learned, or a
    /// plan's lowered limit).
    has_cause: bool,
    /// A plan's lowered limit is in force at either station, and traffic
    /// there has been congested since.
    plan_cause: bool,
    /// A fog or ice zone at or near the upstream station.
    weather: bool,
    /// The downstream station's normal flow (the larger of 5 and 15 min).
    dn_normal: f32,
    /// The downstream station carries at most `cause_starve_ratio` of it …
    short_below: bool,
    /// … and that beyond the counts' noise (`cause_sigma`).
    starved_below: bool,
    /// The slow traffic upstream is a wave from downstream.
    wave: bool,
}

/// Test 1: a stationary queue upstream with free flow below it. Where the
/// road itself makes a bottleneck (a merge, a portal, a lane drop) or the
/// weather slows traffic, the downstream flow must also starve; elsewhere a
/// stationary queue needs no further proof — unless it is a wave that came
/// from downstream. A station below with a lane gone silent (`silent_below`)
/// is short by that lane's vehicles: its shortfall is no starvation (a loop
/// that died below a merge's daily queue raised the merge as an incident).
fn queue_test(cfg: &IncidentConfig, s: &PairSignals, silent_below: bool) -> bool {
    let q = &cfg.queue;
    let drop = q.speed_drop_kmh > 0.0 && s.dn.kmh - s.u.kmh >= q.speed_drop_kmh;
    let occ_diff = if drop {
        q.drop_occ_diff_pct
    } else {
        q.occ_diff_pct
    };
    q.enabled
        && s.occ_diff >= occ_diff
        && s.occ_diff / s.u.occ.max(1e-3) >= q.occ_rel_diff
        && (s.u.kmh < s.up_slow_kmh || (q.standing_occ_pct > 0.0 && s.u.occ >= q.standing_occ_pct))
        && s.dn.kmh >= cfg.normal.free_kmh
        && s.warm
        && !s.wave
        && (!(s.has_cause || s.weather) || (s.starved_below && !silent_below))
}

/// The speed-discontinuity test ([`SlowedConfig`]): the upstream station
/// slowed below its own normal speed while sparse, the station below at its
/// normal speed and free. Not under a plan's lowered limit (drivers obey
/// it), in or near the weather, behind a wave from downstream, or below an
/// incident upstream (its displaced drivers still change lanes). A stretch
/// that jams daily needs no more: its queue is dense, and merging traffic
/// slows the station past the merge, not the sparse one above it.
fn slowed_test(
    cfg: &IncidentConfig,
    s: &PairSignals,
    mu: &StationMem,
    md: &StationMem,
    explained: bool,
    t_now: i64,
    step: i64,
) -> bool {
    let c = &cfg.slowed;
    c.enabled
        && s.warm
        && mu.n_normal >= warm_ticks(&cfg.normal, step)
        && mu.normal_kmh > 0.0
        && md.normal_kmh > 0.0
        && s.u.flow >= c.min_flow_vph
        && s.u.occ < c.max_occ_pct
        && mu
            .recent
            .last()
            .is_some_and(|r| r.0 == t_now && r.2 <= mu.normal_kmh - c.deficit_kmh)
        && s.dn.kmh >= cfg.normal.free_kmh
        && s.dn.kmh >= md.normal_kmh - c.below_within_kmh
        && !lowered(mu)
        && !lowered(md)
        && !s.weather
        && !s.wave
        && !explained
}

/// California #8's compression wave: the downstream station was congested
/// within `memory_s`, so the slow traffic upstream came from there — unless
/// it now runs free with a fraction of its flow (a wave passed on leaves it
/// discharging near capacity; a block starves it).
fn wave_test(cfg: &WaveConfig, md: &StationMem, dn: Smoothed, dn_normal: f32, now: i64) -> bool {
    let starving_hard = cfg.starve_ratio > 0.0 && dn.flow <= cfg.starve_ratio * dn_normal;
    cfg.enabled
        && md.last_congested != 0
        && now - md.last_congested <= cfg.memory_s as i64 * 1000
        && !starving_hard
}

/// The older flow-imbalance test: the imbalance between the stations,
/// smoothed over about two minutes (counts in short intervals are noisy),
/// beyond its normal. Updates the pair's smoothed residual whether or not
/// the test is enabled (the normal imbalance is learnt only while it is low).
fn imbalance_test(
    cfg: &IncidentConfig,
    pair: &mut PairMem,
    md: &StationMem,
    s: &PairSignals,
    step: i64,
) -> (bool, f32) {
    let c = &cfg.imbalance;
    let imbalance = s.u.flow - s.dn.flow;
    let beta = (step as f32 / 120_000.0).min(1.0);
    pair.residual += beta * ((imbalance - pair.normal_imbalance) - pair.residual);
    let vanish_level = (c.share * s.u.flow).max(c.min_vph);
    let vanishing = c.enabled
        && pair.n_normal >= warm_ticks(&cfg.normal, step)
        && s.u.flow >= c.min_flow_vph
        && pair.residual >= vanish_level
        && md.short_flow <= 0.85 * md.normal_flow
        && s.dn.kmh >= cfg.normal.free_kmh
        && !s.wave
        && (!s.has_cause || s.dn.flow <= cfg.queue.cause_starve_ratio * md.normal_flow);
    (vanishing, vanish_level)
}

/// Test 2: the downstream station starves while the upstream one still
/// carries its normal flow: capacity vanished between them. Seen at the
/// downstream station within a minute or two of a block that caps the
/// flow, long before the queue reaches the upstream station. A demand drop
/// starves both; a block further up starves the upstream station first
/// (`explained`); a merge that jams discharges at capacity; a queue that
/// dissolved upstream leaves the station below falling back from capacity
/// to demand.
#[allow(clippy::too_many_arguments)]
fn starvation_test(
    cfg: &IncidentConfig,
    pair: &PairMem,
    mu: &StationMem,
    md: &StationMem,
    s: &PairSignals,
    explained: bool,
    silent_below: bool,
    t: Tick,
) -> bool {
    let c = &cfg.starvation;
    let (u, dn) = (s.u, s.dn);
    let imbalance = u.flow - dn.flow;
    let flow_h = t.flow_h();
    let up_queued =
        mu.last_congested != 0 && t.now - mu.last_congested <= c.up_queue_memory_s as i64 * 1000;
    // A station below that counted nothing at all in its last two
    // intervals is dead (a whole-station fault: data quality's business);
    // a block that closes every lane builds a queue the queue test finds.
    let n = c.dead_ticks as usize;
    let dead_below =
        n > 0 && md.recent.len() >= n && md.recent.iter().rev().take(n).all(|r| r.3 == 0.0);
    c.enabled
        && !dead_below
        && !explained
        && !silent_below
        && s.warm
        && mu.n_normal >= warm_ticks(&cfg.normal, t.step)
        && u.flow >= c.min_flow_vph
        && u.flow >= c.up_hold * mu.normal_flow
        && dn.flow <= c.fast_ratio * md.normal_flow.max(md.slow_flow)
        && imbalance - pair.normal_imbalance >= c.imbalance_share * u.flow
        // … and beyond the counts' noise over the 90 s the flows cover:
        // Poisson, or what this pair has shown in calm times when that is
        // more (platoons, a ramp's bursts).
        && (imbalance - pair.normal_imbalance) * flow_h
            >= c.sigma
                * ((u.flow + dn.flow) * flow_h)
                    .max(pair.imbalance_var)
                    .max(1.0)
                    .sqrt()
        && dn.kmh >= cfg.normal.free_kmh
        && !s.wave
        && !up_queued
}

/// `stopped.emptied`'s traffic around a lane emptied at the upstream
/// station: the station below starves (`emptied_starve_ratio`) while the
/// demand holds — the station above the upstream one (the upstream one
/// itself at the corridor's start) carries `emptied_up_hold` of its own
/// normal (`above`: its 90-s flow and the larger of its 5- and 15-min
/// normals) — or the upstream station runs slow (`emptied_free_kmh`). Dead
/// loops do not starve the station below; a fall in demand starves it
/// against its lagging normal, and the station above falls first.
fn emptied_shows_upstream(c: &StoppedConfig, s: &PairSignals, above: (f32, f32)) -> bool {
    s.dn.flow <= c.emptied_starve_ratio * s.dn_normal
        && (above.0 >= c.emptied_up_hold * above.1 || s.u.kmh < c.emptied_free_kmh)
}

/// Whether a pair's run of anomalous ticks is long enough to raise an
/// alarm. The lane CUSUM carries its own persistence; starvation alone must
/// last `StarvationConfig::persist_s` (a block that caps the flow keeps
/// starving the station below, a lull between platoons does not); a queue
/// above and a station starved below at once are two independent signs and
/// need no run; the speed discontinuity needs [`slowed_ticks`] of its own.
fn persisted(
    cfg: &IncidentConfig,
    pair: &PairMem,
    fired: &Fired,
    s: &PairSignals,
    step: i64,
) -> bool {
    (pair.run >= cfg.persist.ticks
        && (pair.run as i64) * step >= cfg.persist.seconds as i64 * 1000
        && (fired.queue
            || fired.vanishing
            || (pair.starve_run as i64) * step >= cfg.starvation.persist_s as i64 * 1000))
        || (pair.run >= cfg.persist.ticks && pair.slowed_run >= slowed_ticks(cfg, step))
        || (fired.stopped && cfg.stopped.own_persistence)
        || fired.lane_since.is_some()
        || (fired.queue
            && cfg.queue.strong_starve_ratio > 0.0
            && s.dn.flow <= cfg.queue.strong_starve_ratio * s.dn_normal)
}

/// Ticks in a row the speed-discontinuity test must hold: it reads each
/// interval's own speed (a minute's mean would carry one crawling
/// vehicle's interval for a minute), over `PersistConfig::seconds` of data
/// and in two intervals at least — at 30-s data two ticks, at 20 s three,
/// at 60 s two.
fn slowed_ticks(cfg: &IncidentConfig, step: i64) -> u32 {
    let persist_ticks = (cfg.persist.seconds as i64 * 1000 + step - 1) / step;
    persist_ticks.max(2).max(cfg.persist.ticks as i64) as u32
}

/// The rule of an incident raised on the speed discontinuity.
const SLOWED_RULE: &str = "incident.slowed";

/// Calm data (s) before an open incident ends: `ClearingConfig::calm_s`, and
/// for one raised on the speed discontinuity alone at least
/// `ClearingConfig::slowed_calm_s`.
fn calm_needed_s(cfg: &IncidentConfig, open: Option<&Event>) -> i64 {
    let c = &cfg.clearing;
    if open.is_some_and(|e| e.rule == SLOWED_RULE) {
        c.calm_s.max(c.slowed_calm_s) as i64
    } else {
        c.calm_s as i64
    }
}

/// Which tests fired on a pair this tick.
#[derive(Debug, Clone, Copy, Default)]
struct Fired {
    queue: bool,
    vanishing: bool,
    starved: bool,
    /// The speed-discontinuity test ([`SlowedConfig`]).
    slowed: bool,
    /// A lane standing still over the upstream loop ([`StoppedConfig`]; it
    /// counts as the queue test, with its own persistence).
    stopped: bool,
    /// The lane test: when its evidence began.
    lane_since: Option<i64>,
}

impl Fired {
    fn any(&self) -> bool {
        self.queue || self.vanishing || self.starved || self.slowed || self.lane_since.is_some()
    }

    /// The rule an incident raised now is reported under.
    fn rule(&self) -> &'static str {
        if self.queue {
            "incident.queue_starvation"
        } else if self.starved {
            "incident.starvation"
        } else if self.lane_since.is_some() {
            "incident.lane_blocked"
        } else if self.slowed {
            SLOWED_RULE
        } else {
            "incident.vehicles_vanishing"
        }
    }
}

/// Ticks of normals needed before alarms: `NormalConfig::warmup_ticks`, or
/// `warmup_s` of data at this interval when that is fewer.
fn warm_ticks(cfg: &NormalConfig, step: i64) -> u32 {
    let by_time = (cfg.warmup_s as i64 * 1000 + step - 1) / step.max(1);
    cfg.warmup_ticks.min(by_time.max(1) as u32)
}

/// Station normals, frozen where something is wrong (`anomalous`).
fn learn_station_normals(mems: &mut [StationMem], anomalous: &[bool], cfg: &NormalConfig, t: Tick) {
    for (k, m) in mems.iter_mut().enumerate() {
        let f = m.last_flow;
        if f.is_finite() && !anomalous[k] {
            let w = t.alpha.max(1.0 / (m.n_normal + 1) as f32);
            m.normal_flow += w * (f - m.normal_flow);
            let ws = (t.alpha * cfg.normal_s / 900.0).max(1.0 / (m.n_normal + 1) as f32);
            m.slow_flow += ws * (f - m.slow_flow);
            if let Some(r) = m.recent.last().filter(|r| r.0 == t.now) {
                m.normal_kmh += w * (r.2 - m.normal_kmh);
            }
            m.n_normal += 1;
        }
    }
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
    /// `ProbeConfig::window_s`.
    held_up: Vec<ProbeObs>,
    last_tick_ms: i64,
    /// Per corridor lane.
    lanes: Vec<LaneMem>,
    /// Per direction, per pair: when its last incident cleared.
    closed_at: Vec<Vec<i64>>,
    /// Per corridor lane: the last raw reading (time, vehicles, occupancy
    /// %) whatever data quality thinks of it; empty when not told.
    lane_raw: Vec<(i64, u16, f32)>,
    /// Per corridor lane: since when it has stood still over its loop
    /// (counting nothing at full occupancy), 0 when it does not.
    stopped_since: Vec<i64>,
    /// Per direction: the incident of a lane standing still over the last
    /// station's loop (`StoppedConfig::last_station`), and its calm ticks.
    tail: Vec<(Option<Event>, u32)>,
    /// Per direction: the incident of a lane deficit at the first station
    /// (`LaneConfig::first_station`), and its calm ticks.
    head: Vec<(Option<Event>, u32)>,
    /// Scratch for one carriageway's tick: each station's recent means
    /// ([`smooth`]), computed once and read by `block_above` and the pairs.
    smoothed: Vec<Option<Smoothed>>,
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
            lane_raw: Vec::new(),
            stopped_since: Vec::new(),
            tail: Vec::new(),
            head: Vec::new(),
            smoothed: Vec::new(),
        }
    }

    /// Each lane's last raw reading (time, vehicles, occupancy %), before
    /// data quality judges it: a lane whose loop sees a queue standing
    /// still counts nothing at full occupancy, which data quality may take
    /// for a loop stuck on.
    pub fn set_lane_raw(&mut self, raw: &[(i64, u16, f32)]) {
        self.lane_raw.clear();
        self.lane_raw.extend_from_slice(raw);
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
        if self.cfg.cameras.enabled && relevant && c.confidence >= self.cfg.cameras.confidence {
            self.pending_cameras.push(*c);
        }
    }

    /// A position report matched to a carriageway (used at the next tick;
    /// only slow ones matter).
    pub fn probe(&mut self, p: &ProbeObs) {
        let cfg = &self.cfg.probes;
        if !cfg.enabled {
            return;
        }
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
        let dip = cfg.dip_kmh > 0.0
            && follows
            && seen.last_kmh >= cfg.dip_cruise_kmh
            && p.speed_kmh <= seen.last_kmh - cfg.dip_kmh
            && p.speed_kmh < cfg.dip_below_kmh;
        if let Some(d) = seen.dip.take()
            && follows
            && p.speed_kmh >= d.speed_kmh + cfg.dip_recover_kmh
            && p.direction.travel_m(p.stake_m) > p.direction.travel_m(d.stake_m)
        {
            self.pending_probes.push(d);
        }
        seen.direction = p.direction;
        seen.ts_ms = p.ts_ms;
        seen.last_kmh = p.speed_kmh;
        if dip && p.speed_kmh >= cfg.slow_kmh {
            if cfg.dip_recover_kmh > 0.0 {
                seen.dip = Some(*p);
            } else {
                self.pending_probes.push(*p);
            }
        }
        if p.speed_kmh < cfg.slow_kmh {
            seen.slow_run = seen.slow_run.saturating_add(1);
            seen.last_slow = Some(*p);
            self.pending_probes.push(*p);
        } else {
            // Held up for a report or two, then on its way past the spot:
            // something held it up (a parked or broken-down vehicle stays).
            // It counts as a second vehicle held up there.
            if cfg.moved_on_kmh > 0.0
                && p.speed_kmh >= cfg.moved_on_kmh
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
            .chain(self.tail.iter().filter_map(|(e, _)| e.as_ref()))
            .chain(self.head.iter().filter_map(|(e, _)| e.as_ref()))
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
        self.size_for(state);
        let step = if self.last_tick_ms == i64::MIN {
            30_000
        } else {
            (now - self.last_tick_ms).clamp(1_000, 300_000)
        };
        self.last_tick_ms = now;
        let alpha = (step as f32 / 1000.0 / self.cfg.normal.normal_s).min(1.0);
        let t = Tick { now, step, alpha };
        let probes_now = self.probe_coverage(now);
        for (di, d) in state.directions.iter().enumerate() {
            let lane_h = self.lane_threshold(road, d, &probes_now);
            self.update_stations(road, di, d, t);
            self.smoothed.clear();
            self.smoothed
                .extend(self.stations[di].iter().map(|m| smooth(m, t)));
            if self.lanes.len() != lane_flow.len() {
                self.lanes = vec![LaneMem::default(); lane_flow.len()];
            }
            let lane_anom = self.lane_test(road, di, d, lane_flow, lane_h, t);
            let mut lane_at = self.place_lane_deficit(road, d, &lane_anom, lane_h);
            // A station with a dead loop: its missing vehicles are not a
            // starvation or lane signal (data quality deals with it).
            let silent_lane = self.silent_lanes(road, d, t);
            for (a, silent) in lane_at.iter_mut().zip(&silent_lane) {
                if *silent {
                    *a = None;
                }
            }
            // Per station: a lane still showing a share deficit (an open
            // incident does not clear while it does).
            let lane_evidence = self.lane_evidence(road, d, lane_h);
            // Per station: the block is above it (free and starved).
            let block_above = self.block_above(di, t);
            let stopped_lane = self.stopped_lanes(road, d, lane_flow, t);
            let mut anomalous_station = vec![false; d.samples.len()];
            // Whether a pair upstream of the one at hand holds an incident, open
            // or cleared within the hold-off (kept as the pairs go by, in order).
            let mut upstream_active = false;
            for p in 0..self.pairs[di].len() {
                self.pair_tick(
                    road,
                    di,
                    d,
                    p,
                    PairContext {
                        lane_at: &lane_at,
                        silent_lane: &silent_lane,
                        lane_evidence: &lane_evidence,
                        stopped_lane: &stopped_lane,
                        block_above: &block_above,
                        upstream_active: &mut upstream_active,
                        anomalous_station: &mut anomalous_station,
                    },
                    t,
                    next_seq,
                    closed,
                );
            }
            self.tail_tick(
                road,
                di,
                d,
                &stopped_lane,
                &silent_lane,
                t,
                next_seq,
                closed,
            );
            self.head_tick(road, di, d, &lane_at, &lane_evidence, t, next_seq, closed);
            learn_station_normals(
                &mut self.stations[di],
                &anomalous_station,
                &self.cfg.normal,
                t,
            );
        }
        self.probes_tick(road, state, now, step, next_seq);
        self.cameras_tick(now, next_seq);
        crate::event::end_quiet_alarms(
            &mut self.spot,
            now,
            self.cfg.clearing.spot_quiet_s as i64 * 1000,
            closed,
        );
    }

    /// Sizes the per-station and per-pair memories to the state (once).
    fn size_for(&mut self, state: &CorridorState) {
        if self.stations.len() == state.directions.len() {
            return;
        }
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
        self.tail = vec![(None, 0); state.directions.len()];
        self.head = vec![(None, 0); state.directions.len()];
    }

    /// Probe vehicles reporting within the last minute, per carriageway
    /// (vehicles silent for 10 min are forgotten).
    fn probe_coverage(&mut self, now: i64) -> [u32; 2] {
        self.probes_seen.retain(|_, s| now - s.ts_ms <= 600_000);
        let mut probes_now = [0u32; 2];
        for s in self.probes_seen.values() {
            if now - s.ts_ms <= 60_000 {
                probes_now[s.direction as usize] += 1;
            }
        }
        probes_now
    }

    /// The lane test's threshold on a carriageway: higher where probes
    /// cover it (they find a blocked lane sooner).
    fn lane_threshold(&self, road: &RoadBook, d: &DirectionState, probes_now: &[u32; 2]) -> f32 {
        let cfg = &self.cfg;
        let length_km = match (d.station_ids.first(), d.station_ids.last()) {
            (Some(&a), Some(&b)) => {
                (road.detectors()[a as usize].stake_m - road.detectors()[b as usize].stake_m).abs()
                    / 1000.0
            }
            _ => 0.0,
        }
        .max(1.0);
        let probed = cfg.probes.enabled
            && probes_now[d.direction as usize] as f64
                >= cfg.lane.probe_density_per_km as f64 * length_km;
        if probed {
            cfg.lane.cusum_h_probed
        } else {
            cfg.lane.cusum_h
        }
    }

    /// Per station: this tick's flow, the limit traffic obeys, whether it
    /// is congested, its recent samples and short flow, and whether lane use
    /// is unsettled (the limits changed, or the weather is here).
    fn update_stations(&mut self, road: &RoadBook, di: usize, d: &DirectionState, t: Tick) {
        let cfg = &self.cfg;
        let mems = &mut self.stations[di];
        let limits = self.limits.get(di);
        // The road has one posted limit: the highest in force anywhere.
        let posted = limits
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(0.0, f32::max)
            })
            .unwrap_or(0.0);
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
                m.lane_unsettled_until = t.now + cfg.lane.settle_s as i64 * 1000;
            }
            m.limit_last = cur;
            m.limit_posted = m.limit_posted.max(posted);
            if cur <= m.limit_low || t.now > m.limit_low_until {
                m.limit_low = cur;
                m.limit_low_until = t.now + cfg.limits.memory_s as i64 * 1000;
            }
            // Under a lowered limit, traffic obeying it is not congested.
            let slow_kmh = cfg
                .normal
                .congested_kmh
                .min(m.limit_low - cfg.limits.margin_kmh);
            if s.valid {
                if s.speed_kmh < slow_kmh || s.occupancy_pct > cfg.normal.congested_occ_pct {
                    m.last_congested = t.now;
                }
                m.recent
                    .push((t.now, s.occupancy_pct, s.speed_kmh, s.flow_vph));
                if m.recent.len() > 8 {
                    m.recent.remove(0);
                }
                let g = (t.step as f32 / 120_000.0).min(1.0);
                m.short_flow = if m.short_flow == 0.0 {
                    s.flow_vph
                } else {
                    m.short_flow + g * (s.flow_vph - m.short_flow)
                };
            }
        }
    }

    /// Test 3, per station: a lane emptied while its station's traffic goes
    /// on in the other lanes. Each interval adds the log-likelihood ratio
    /// of "the lane's share fell to `cusum_ratio` of normal" against "it is
    /// normal" (capped); the evidence is the largest sum over the last
    /// `window_s`. Gives per station the lane (0-based) that fired and when
    /// its evidence began.
    fn lane_test(
        &mut self,
        road: &RoadBook,
        di: usize,
        d: &DirectionState,
        lane_flow: &[f32],
        lane_h: f32,
        t: Tick,
    ) -> Vec<Option<(i64, usize)>> {
        let cfg = &self.cfg;
        let lc = &cfg.lane;
        let (now, step) = (t.now, t.step);
        let mems = &self.stations[di];
        let g_short = (step as f32 / 120_000.0).min(1.0);
        let step_h = step as f32 / 3_600_000.0;
        let w_lane = (step as f32 / 1000.0 / lc.normal_s).min(1.0);
        let llr_cap = lc.llr_cap * step as f32 / 30_000.0;
        let lanes = &mut self.lanes;
        d.station_ids
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
                // test asks for more (`update_stations` marked it).
                let lane_h = if now <= mems[k].lane_unsettled_until {
                    lane_h.max(lc.cusum_h_probed)
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
                            && let Some(m) = lanes.get_mut(l)
                        {
                            *m = LaneMem::default();
                        }
                    }
                    return None;
                }
                for l in range.clone() {
                    let m = &mut lanes[l];
                    if lane_flow[l] > 0.0 {
                        m.last_count = now;
                    }
                    m.short = if m.short.is_nan() {
                        lane_flow[l]
                    } else {
                        m.short + g_short * (lane_flow[l] - m.short)
                    };
                }
                let total: f32 = range.clone().map(|l| lanes[l].short).sum();
                // Compare with the neighbours now (not with a lagging normal):
                // a dead loop loses its lane's vehicles, a blocked lane moves them.
                // (The mean of the one or two neighbours that carry traffic,
                // without collecting them: 0 + a = a exactly for a > 0.)
                let (mut nb_sum, mut nb_n) = (0.0f32, 0u32);
                for m in [k.checked_sub(1), Some(k + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|j| mems.get(j))
                {
                    if m.short_flow > 0.0 {
                        nb_sum += m.short_flow;
                        nb_n += 1;
                    }
                }
                let normal_total = if nb_n == 0 {
                    mems[k].normal_flow
                } else {
                    nb_sum / nb_n as f32
                };
                // Lane shares mean something only in free flow at the station
                // (in a queue every lane crawls, and lanes swap vehicles).
                let s = &d.samples[k];
                let free = s.valid && s.speed_kmh >= cfg.normal.free_kmh;
                let warm = range
                    .clone()
                    .all(|l| lanes[l].n >= warm_ticks(&cfg.normal, step));
                let counts_total: f32 = range.clone().map(|l| lane_flow[l] * step_h).sum();
                let normal_sum: f32 = range.clone().map(|l| lanes[l].normal).sum();
                let window = ((lc.window_s as i64 * 1000 / step).max(1) as usize).min(LANE_WINDOW);
                if free && warm && counts_total >= lc.min_count && normal_sum > 0.0 {
                    // CUSUM of the log-likelihood ratio "the lane's share fell to
                    // `cusum_ratio` of normal" against "it is normal", with the
                    // station's vehicles split binomially among its lanes.
                    let r = lc.cusum_ratio;
                    for l in range.clone() {
                        let p0 = lanes[l].normal / normal_sum;
                        let p1 = r * p0;
                        let n = lane_flow[l] * step_h;
                        // One odd interval (a platoon, a burst) must not carry the
                        // test: each interval's evidence is capped.
                        let llr = if (lc.min_share..=1.0 - lc.min_share).contains(&p0) {
                            (n * r.ln() + (counts_total - n) * ((1.0 - p1) / (1.0 - p0)).ln())
                                .min(llr_cap)
                        } else {
                            0.0
                        };
                        let m = &mut lanes[l];
                        m.head = (m.head + 1) % LANE_WINDOW;
                        m.llr[m.head] = llr;
                        m.cnt[m.head] = (n, counts_total);
                    }
                    // The largest sum of the newest j intervals, j ≤ window:
                    // four lanes side by side (each lane's sum adds its own
                    // intervals in order; the lanes' sums run at once).
                    for chunk in lanes[range.clone()].chunks_mut(4) {
                        let mut run = [(0.0f32, 0.0f32, 0usize); 4]; // sum, best, best_j
                        for j in 0..window {
                            for (m, (sum, best, best_j)) in chunk.iter().zip(run.iter_mut()) {
                                *sum += m.llr[(m.head + LANE_WINDOW - j) % LANE_WINDOW];
                                if *sum > *best {
                                    (*best, *best_j) = (*sum, j);
                                }
                            }
                        }
                        for (m, &(_, best, best_j)) in chunk.iter_mut().zip(run.iter()) {
                            m.cusum = best;
                            m.since = now - best_j as i64 * step;
                            // The share seen matters only once the evidence is there.
                            if best < lane_h {
                                m.share_seen = 1.0;
                                continue;
                            }
                            let p0 = m.normal / normal_sum;
                            let (mut a, mut b) = (0.0f32, 0.0f32);
                            for j in 0..=best_j {
                                let (x, y) = m.cnt[(m.head + LANE_WINDOW - j) % LANE_WINDOW];
                                a += x;
                                b += y;
                            }
                            m.share_seen = if p0 > 0.0 && b > 0.0 { a / b / p0 } else { 1.0 };
                        }
                    }
                }
                // A dead loop counts nothing at all, a chattering one invents
                // vehicles (the other lanes' shares fall). A blocked lane 1 km
                // upstream still sees a few vehicles come back into it before
                // the loop, and its vehicles move to the other lanes: the
                // station's total holds against its neighbours (or falls, when
                // the block also starves the station) — it does not jump.
                let kept = total >= lc.total_ratio * normal_total
                    && total <= normal_total / lc.total_ratio;
                let fired = range
                    .clone()
                    .filter(|&l| {
                        lanes[l].cusum >= lane_h
                            && lanes[l].share_seen <= lc.share_ratio
                            && lanes[l].last_count >= lanes[l].since
                            // When the station's total fell, the lane must
                            // still count something after the evidence
                            // began: a loop that died counts nothing, a
                            // blocked lane 1 km up sees a few come back.
                            && (kept
                                || (total < normal_total && lanes[l].last_count > lanes[l].since))
                    })
                    .map(|l| (lanes[l].since, l - dd.first_lane as usize))
                    .min();
                let calm = range
                    .clone()
                    .all(|l| lanes[l].cusum < lc.calm_fraction * lane_h);
                if free && calm && counts_total >= lc.min_count {
                    for l in range.clone() {
                        let m = &mut lanes[l];
                        let w = w_lane.max(1.0 / (m.n + 1) as f32);
                        m.normal += w * (lane_flow[l] * step_h - m.normal);
                        m.n += 1;
                    }
                }
                fired.filter(|_| lc.enabled && warm && total >= lc.min_flow_vph)
            })
            .collect()
    }

    /// The lane deficit must be placed where it begins: vehicles that moved
    /// over stay over for kilometres, so if the stations upstream show the
    /// same lane short too (if less clearly), the block is above the first
    /// of them. Per station: when the evidence of a block just above it began.
    fn place_lane_deficit(
        &self,
        road: &RoadBook,
        d: &DirectionState,
        lane_anom: &[Option<(i64, usize)>],
        lane_h: f32,
    ) -> Vec<Option<i64>> {
        let mut lane_at: Vec<Option<i64>> = vec![None; lane_anom.len()];
        for (k, a) in lane_anom.iter().enumerate() {
            let Some((since, off)) = *a else { continue };
            let lanes_k = road.detectors()[d.station_ids[k] as usize].lanes;
            let mut j = k;
            while j > 0 {
                let du = &road.detectors()[d.station_ids[j - 1] as usize];
                let lu = du.first_lane as usize + off;
                if du.lanes == lanes_k
                    && self
                        .lanes
                        .get(lu)
                        .is_some_and(|m| m.cusum >= self.cfg.lane.place_fraction * lane_h)
                {
                    j -= 1;
                } else {
                    break;
                }
            }
            lane_at[j] = Some(lane_at[j].map_or(since, |s: i64| s.min(since)));
        }
        lane_at
    }

    /// Per station: a lane that has counted nothing for two ticks while the
    /// others count — a loop that died (or a lane closed at the loop itself).
    fn silent_lanes(&self, road: &RoadBook, d: &DirectionState, t: Tick) -> Vec<bool> {
        (0..d.samples.len())
            .map(|k| {
                let dd = &road.detectors()[d.station_ids[k] as usize];
                let first = dd.first_lane as usize;
                let lanes = first..first + dd.lanes as usize;
                dd.lanes > 1
                    && lanes.clone().any(|l| {
                        self.lanes
                            .get(l)
                            .is_some_and(|m| m.n > 0 && t.now - m.last_count >= 2 * t.step)
                    })
                    && lanes
                        .clone()
                        .any(|l| self.lanes.get(l).is_some_and(|m| m.last_count == t.now))
            })
            .collect()
    }

    /// Per station: one lane has stood still over its loop (no vehicle at
    /// ≥ `StoppedConfig::occ_pct` occupancy) for `StoppedConfig::persist_s`
    /// while another lane there counts vehicles: a queue in that lane
    /// behind a block just past the loop.
    fn stopped_lanes(
        &mut self,
        road: &RoadBook,
        d: &DirectionState,
        lane_flow: &[f32],
        t: Tick,
    ) -> Vec<bool> {
        let c = &self.cfg.stopped;
        if self.stopped_since.len() != self.lane_raw.len() {
            self.stopped_since = vec![0; self.lane_raw.len()];
        }
        let this_tick = |r: &(i64, u16, f32)| r.0 > t.now - t.step;
        d.station_ids
            .iter()
            .map(|&det| {
                let dd = &road.detectors()[det as usize];
                let first = dd.first_lane as usize;
                let lanes = first..first + dd.lanes as usize;
                if !c.enabled || dd.lanes < 2 || lanes.end > self.lane_raw.len() {
                    return false;
                }
                let mut stopped = false;
                for l in lanes.clone() {
                    let r = self.lane_raw[l];
                    // (A lane data quality already found faulty is its
                    // business: a loop stuck on, not a lane newly standing.)
                    let trusted = lane_flow.get(l).is_some_and(|f| f.is_finite());
                    if this_tick(&r) && r.1 == 0 && r.2 >= c.occ_pct && trusted {
                        if self.stopped_since[l] == 0 {
                            self.stopped_since[l] = t.now - t.step;
                        }
                        stopped |= t.now - self.stopped_since[l] >= c.persist_s as i64 * 1000;
                    } else {
                        self.stopped_since[l] = 0;
                    }
                }
                let others_move = lanes.clone().any(|l| {
                    let r = self.lane_raw[l];
                    this_tick(&r) && r.1 > 0
                });
                stopped && others_move
            })
            .collect()
    }

    /// A lane standing still over the loop of the carriageway's last
    /// station, past which no station can starve
    /// (`StoppedConfig::last_station`): raises `incident.lane_stopped` from
    /// that station to `ClearingConfig::lane_ahead_m` past it, and clears it
    /// after `ClearingConfig::calm_s` of data with no lane there standing
    /// or silent.
    #[allow(clippy::too_many_arguments)]
    fn tail_tick(
        &mut self,
        road: &RoadBook,
        di: usize,
        d: &DirectionState,
        stopped_lane: &[bool],
        silent_lane: &[bool],
        t: Tick,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let cfg = &self.cfg;
        let c = &cfg.stopped;
        let Some(k) = d.samples.len().checked_sub(1) else {
            return;
        };
        if !(c.enabled && c.last_station) {
            return;
        }
        let det = d.station_ids[k];
        let dir = d.direction;
        let stake = road.detectors()[det as usize].stake_m;
        let m = &self.stations[di][k];
        let slowed = self.smoothed[k].is_some_and(|x| {
            m.n_normal >= warm_ticks(&cfg.normal, t.step)
                && m.normal_kmh > 0.0
                && x.kmh >= c.moving_kmh
                && x.kmh <= m.normal_kmh - c.slower_kmh
        });
        let weather = in_weather(&self.weather, dir, stake);
        // The last pair's incident already holds the station.
        let covered = k > 0
            && self.pairs[di][k - 1]
                .open
                .as_ref()
                .is_some_and(|e| e.from_m <= stake && e.to_m >= stake);
        // Standing over the loop, or emptied at it (a lane that normally
        // counts `emptied_min_count` an interval silent for
        // `emptied_silent_s`: the block stands just past the loop and the
        // lane's queue stops short of it).
        let first = road.detectors()[det as usize].first_lane as usize;
        let lanes = road.detectors()[det as usize].lanes as usize;
        let emptied = c.emptied
            && silent_lane[k]
            && self.lanes.get(first..first + lanes).is_some_and(|ls| {
                ls.iter().any(|m| {
                    m.normal >= c.emptied_min_count
                        && t.now - m.last_count
                            >= (c.emptied_silent_s as i64 * 1000).max(2 * t.step)
                })
            });
        let standing = stopped_lane[k] || emptied;
        let (open, calm) = &mut self.tail[di];
        if open.is_none() {
            if standing && slowed && !weather && !lowered(m) && !covered {
                let since = self.stopped_since[first..first + lanes]
                    .iter()
                    .copied()
                    .filter(|&x| x != 0)
                    .min()
                    .unwrap_or(t.now);
                let ahead = dir.travel_m(dir.travel_m(stake) + cfg.clearing.lane_ahead_m);
                *open = Some(Event {
                    seq: *next_seq,
                    kind: EventKind::Incident,
                    direction: Some(dir),
                    from_m: stake.min(ahead),
                    to_m: stake.max(ahead),
                    start_ms: since - t.step,
                    detected_ms: t.now,
                    end_ms: None,
                    severity: 3,
                    rule: "incident.lane_stopped",
                    detectors: vec![det],
                    detail: EventDetail::None,
                });
                *next_seq += 1;
                *calm = 0;
            }
        } else if standing || silent_lane[k] {
            *calm = 0;
        } else {
            *calm += 1;
            if *calm >= cfg.clearing.calm_min_ticks
                && *calm as i64 * t.step >= cfg.clearing.calm_s as i64 * 1000
                && let Some(mut e) = open.take()
            {
                e.end_ms = Some(t.now - (*calm as i64 - 1) * t.step);
                closed.push(e);
            }
        }
    }

    /// A lane deficit placed at the carriageway's first station, above
    /// which no station can show it (`LaneConfig::first_station`): raises
    /// `incident.lane_blocked` from one station spacing above it to
    /// `ClearingConfig::lane_ahead_m` past it (unless the first pair's
    /// incident already holds the station), and clears it after
    /// `ClearingConfig::calm_s` of data without lane evidence there.
    #[allow(clippy::too_many_arguments)]
    fn head_tick(
        &mut self,
        road: &RoadBook,
        di: usize,
        d: &DirectionState,
        lane_at: &[Option<i64>],
        lane_evidence: &[bool],
        t: Tick,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let cfg = &self.cfg;
        if !(cfg.lane.enabled && cfg.lane.first_station) || d.station_ids.len() < 2 {
            return;
        }
        let dir = d.direction;
        let stake = |k: usize| road.detectors()[d.station_ids[k] as usize].stake_m;
        let (s0, s1) = (stake(0), stake(1));
        let m = &self.stations[di][0];
        let weather = in_weather(&self.weather, dir, s0);
        // The first pair's incident already holds the station.
        let covered = self.pairs[di][0]
            .open
            .as_ref()
            .is_some_and(|e| e.from_m <= s0 && e.to_m >= s0);
        let (open, calm) = &mut self.head[di];
        if open.is_none() {
            if let Some(since) = lane_at[0]
                && !weather
                && !lowered(m)
                && !covered
            {
                let above = dir.travel_m(dir.travel_m(s0) - (s1 - s0).abs());
                let ahead = dir.travel_m(dir.travel_m(s0) + cfg.clearing.lane_ahead_m);
                *open = Some(Event {
                    seq: *next_seq,
                    kind: EventKind::Incident,
                    direction: Some(dir),
                    from_m: above.min(ahead),
                    to_m: above.max(ahead),
                    start_ms: since - t.step,
                    detected_ms: t.now,
                    end_ms: None,
                    severity: 3,
                    rule: "incident.lane_blocked",
                    detectors: vec![d.station_ids[0]],
                    detail: EventDetail::None,
                });
                *next_seq += 1;
                *calm = 0;
            }
        } else if lane_evidence[0] || lane_at[0].is_some() {
            *calm = 0;
        } else {
            *calm += 1;
            if *calm >= cfg.clearing.calm_min_ticks
                && *calm as i64 * t.step >= cfg.clearing.calm_s as i64 * 1000
                && let Some(mut e) = open.take()
            {
                e.end_ms = Some(t.now - (*calm as i64 - 1) * t.step);
                closed.push(e);
            }
        }
    }

    /// Per station: a lane still shows at least `ClearingConfig::lane_fraction`
    /// of the lane test's threshold, at a station running free (elsewhere
    /// the lane test does not learn, and its evidence is stale).
    fn lane_evidence(&self, road: &RoadBook, d: &DirectionState, lane_h: f32) -> Vec<bool> {
        let level = self.cfg.clearing.lane_fraction * lane_h;
        d.station_ids
            .iter()
            .zip(&d.samples)
            .map(|(&det, s)| {
                if !(s.valid && s.speed_kmh >= self.cfg.normal.free_kmh) {
                    return false;
                }
                let dd = &road.detectors()[det as usize];
                let first = dd.first_lane as usize;
                (first..first + dd.lanes as usize)
                    .any(|l| self.lanes.get(l).is_some_and(|m| m.cusum >= level))
            })
            .collect()
    }

    /// Per station: the block is above it — it runs free while its flow
    /// starves beyond the counts' noise (`QueueConfig::cause_starve_ratio`,
    /// `cause_sigma`), or it is slow but not dense (below
    /// `NormalConfig::congested_occ_pct`: drivers slowing past the site in
    /// all lanes, not a queue standing behind it). (A lane gone silent is
    /// no sign: a queue standing over the loop counts nothing either.)
    fn block_above(&self, di: usize, t: Tick) -> Vec<Above> {
        let cfg = &self.cfg;
        let flow_h = t.flow_h();
        self.stations[di]
            .iter()
            .zip(&self.smoothed)
            .map(|(m, x)| {
                let Some(x) = *x else {
                    return Above::No;
                };
                if m.n_normal < warm_ticks(&cfg.normal, t.step) {
                    return Above::No;
                }
                if x.kmh < cfg.normal.free_kmh {
                    // Slow but not dense: drivers slowing to look at the
                    // site (rubbernecking, all lanes), not a queue standing
                    // behind a block — the site may lie just above.
                    return if x.occ < cfg.normal.congested_occ_pct {
                        Above::Slowed
                    } else {
                        Above::No
                    };
                }
                let normal = m.normal_flow.max(m.slow_flow);
                let starved = x.flow <= cfg.queue.cause_starve_ratio * normal
                    && (normal - x.flow) * flow_h
                        >= cfg.queue.cause_sigma * (normal * flow_h).max(1.0).sqrt();
                if starved { Above::Starved } else { Above::No }
            })
            .collect()
    }

    /// Whether an open incident on carriageway `di` lies at or downstream of
    /// pair `p`'s upstream station within `LimitConfig::own_plan_m`: a
    /// lowered limit there may be its own plan's.
    fn own_plan_near(&self, road: &RoadBook, di: usize, d: &DirectionState, p: usize) -> bool {
        let dir = d.direction;
        let x = dir.travel_m(road.detectors()[d.station_ids[p] as usize].stake_m);
        let reach = self.cfg.limits.own_plan_m;
        self.pairs[di]
            .iter()
            .filter_map(|q| q.open.as_ref())
            .chain(self.spot.iter().map(|(e, _)| e))
            .filter(|e| e.direction == Some(dir))
            .any(|e| {
                let (a, b) = (dir.travel_m(e.from_m), dir.travel_m(e.to_m));
                a.max(b) >= x - 1000.0 && a.min(b) <= x + reach
            })
    }

    /// What pair `p`'s tests read this tick (`None` when a station has no
    /// valid sample).
    fn pair_signals(
        &mut self,
        road: &RoadBook,
        di: usize,
        d: &DirectionState,
        p: usize,
        t: Tick,
    ) -> Option<PairSignals> {
        let cfg = &self.cfg;
        let (mu, md) = (&self.stations[di][p], &self.stations[di][p + 1]);
        let (u, dn) = (self.smoothed[p]?, self.smoothed[p + 1]?);
        let warm = md.n_normal >= warm_ticks(&cfg.normal, t.step);
        // Under a lowered limit drivers go slow on purpose: the upstream
        // station is queued only well below that limit.
        let up_slow_kmh = cfg
            .queue
            .up_slow_kmh
            .min(mu.limit_low - cfg.limits.margin_kmh);
        let (ids, dir) = (&d.station_ids, d.direction);
        // A plan (not an open incident's own) lowered the limit here and
        // traffic here has been slow since: its queue is a known cause (a
        // fog plan's 20 km/h builds one).
        let recent = |m: &StationMem| {
            m.last_congested != 0 && t.now - m.last_congested <= cfg.limits.memory_s as i64 * 1000
        };
        let plan_cause = cfg.limits.plans_are_causes
            && (lowered(mu) || lowered(md))
            && (recent(mu) || recent(md))
            && !self.own_plan_near(road, di, d, p);
        let pair = &mut self.pairs[di][p];
        let has_cause = *pair
            .has_cause
            .get_or_insert_with(|| bottleneck_cause(road, dir, ids[p], ids[p + 1]))
            || t.now < pair.learned_jam_until
            || plan_cause;
        let dn_normal = md.normal_flow.max(md.slow_flow);
        let wave = wave_test(&cfg.wave, md, dn, dn_normal, t.now);
        // In fog or on ice drivers slow down (and obey the lowered limits):
        // slow traffic upstream and free traffic past the zone's end is the
        // weather, not a queue behind a block — unless the downstream flow
        // starves, as below a merge.
        let weather = in_weather(
            &self.weather,
            dir,
            road.detectors()[ids[p] as usize].stake_m,
        );
        // Below a daily jam the station discharges at capacity, its counts
        // swinging by their noise; below a block it starves beyond that noise.
        let flow_h = t.flow_h();
        let short_below = dn.flow <= cfg.queue.cause_starve_ratio * dn_normal;
        let starved_below = short_below
            && (dn_normal - dn.flow) * flow_h
                >= cfg.queue.cause_sigma * (dn_normal * flow_h).max(1.0).sqrt();
        Some(PairSignals {
            u,
            dn,
            plan_cause,
            occ_diff: u.occ - dn.occ,
            warm,
            up_slow_kmh,
            has_cause,
            weather,
            dn_normal,
            short_below,
            starved_below,
            wave,
        })
    }

    /// Runs every test on pair `p` and raises, keeps or clears its incident.
    #[allow(clippy::too_many_arguments)]
    fn pair_tick(
        &mut self,
        road: &RoadBook,
        di: usize,
        d: &DirectionState,
        p: usize,
        ctx: PairContext<'_>,
        t: Tick,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let Some(s) = self.pair_signals(road, di, d, p, t) else {
            return;
        };
        let (now, step) = (t.now, t.step);
        let explained = *ctx.upstream_active;
        let cfg = &self.cfg;
        let (mu, md) = (&self.stations[di][p], &self.stations[di][p + 1]);
        let pair = &mut self.pairs[di][p];
        // A lane standing still over the upstream loop while the others move
        // there more slowly than below (drivers merging out of it; a loop
        // stuck on slows nobody), or the lane test building below: a queue
        // in that lane behind a block just past the loop.
        let stopped = ctx.stopped_lane[p]
            && s.warm
            && !s.wave
            && s.dn.kmh >= cfg.normal.free_kmh
            && (s.u.kmh <= s.dn.kmh.min(self.stations[di][p].normal_kmh) - cfg.stopped.slower_kmh
                || ctx.lane_evidence[p + 1]
                || (cfg.stopped.starved_below && s.starved_below))
            // A daily jam (a merge below) slows every lane; a block stops
            // one lane dead while the others still move.
            && (!s.has_cause || s.starved_below || s.u.kmh >= cfg.stopped.moving_kmh);
        // (A lane that normally counts at least `emptied_min_count` per
        // interval and has counted nothing for `emptied_silent_s`: by
        // chance once in e^(count × intervals).)
        let emptied_lane = || {
            let dd = &road.detectors()[d.station_ids[p] as usize];
            let first = dd.first_lane as usize;
            (first..first + dd.lanes as usize).any(|l| {
                self.lanes.get(l).is_some_and(|m| {
                    m.normal >= cfg.stopped.emptied_min_count
                        && now - m.last_count
                            >= (cfg.stopped.emptied_silent_s as i64 * 1000).max(2 * step)
                })
            })
        };
        let above = match p
            .checked_sub(1)
            .and_then(|a| self.smoothed[a].map(|x| (a, x)))
        {
            Some((a, x)) => {
                let m = &self.stations[di][a];
                (x.flow, m.normal_flow.max(m.slow_flow))
            }
            None => (s.u.flow, mu.normal_flow.max(mu.slow_flow)),
        };
        let emptied = cfg.stopped.emptied
            && ctx.silent_lane[p]
            && emptied_lane()
            && ctx.block_above[p + 1] == Above::Starved
            && emptied_shows_upstream(&cfg.stopped, &s, above)
            && s.warm
            && !s.wave
            && !explained;
        let queue = queue_test(cfg, &s, ctx.silent_lane[p + 1]) || stopped || emptied;
        let (vanishing, vanish_level) = imbalance_test(cfg, pair, md, &s, step);
        let starved = starvation_test(cfg, pair, mu, md, &s, explained, ctx.silent_lane[p + 1], t);
        let slowed = slowed_test(cfg, &s, mu, md, explained, now, step);
        // A lane emptied at the downstream station: the block is upstream of
        // it — unless an incident upstream explains it (its displaced
        // vehicles keep their lanes for kilometres downstream).
        let fired = Fired {
            queue,
            vanishing,
            starved,
            slowed,
            stopped,
            lane_since: ctx.lane_at[p + 1]
                .filter(|_| !explained && (!s.plan_cause || s.starved_below)),
        };
        let flow_h = t.flow_h();
        let imbalance = s.u.flow - s.dn.flow;
        if fired.any() {
            if pair.run == 0 {
                // The first anomalous tick averages two intervals: start one before it.
                pair.run_start = now - 2 * step;
            }
            pair.run += 1;
            pair.calm = 0;
            ctx.anomalous_station[p] = true;
            ctx.anomalous_station[p + 1] = true;
        } else {
            if pair.open.is_some() {
                ctx.anomalous_station[p] = true;
                ctx.anomalous_station[p + 1] = true;
            }
            pair.run = 0;
            // A lane still standing over the upstream loop, or silent there
            // while the others count, is the block's too.
            let lane_held = cfg.stopped.enabled && (ctx.stopped_lane[p] || ctx.silent_lane[p]);
            // Raised on the speed discontinuity at the upstream station: a
            // lane there still short of its share is the block's (drivers
            // leave it before the loop when the block stands just past it).
            let slowed_open = pair.open.as_ref().is_some_and(|e| e.rule == SLOWED_RULE);
            let held = masked_by_own_plan(cfg, pair, &s)
                || still_blocked(cfg, pair, &s, ctx.lane_evidence[p + 1], t)
                || (pair.open.is_some() && lane_held)
                || (slowed_open && ctx.lane_evidence[p]);
            if !held {
                pair.calm += 1;
            } else {
                pair.calm = 0;
            }
            // Learn the pair's normal imbalance only in calm times (not
            // while an imbalance is building up towards the threshold).
            let building = pair.residual > 0.3 * vanish_level;
            if pair.open.is_none() && !building {
                // A plain mean while warming up, then an exponential one.
                let w = t.alpha.max(1.0 / (pair.n_normal + 1) as f32);
                let dev = (imbalance - pair.normal_imbalance) * flow_h;
                pair.normal_imbalance += w * (imbalance - pair.normal_imbalance);
                let wv =
                    (t.alpha * cfg.normal.normal_s / 900.0).max(1.0 / (pair.n_normal + 1) as f32);
                pair.imbalance_var += wv * (dev * dev - pair.imbalance_var);
                pair.n_normal += 1;
            }
        }
        let (su, sd) = (
            road.detectors()[d.station_ids[p] as usize].stake_m,
            road.detectors()[d.station_ids[p + 1] as usize].stake_m,
        );
        pair.starve_run = if starved { pair.starve_run + 1 } else { 0 };
        pair.slowed_run = if slowed { pair.slowed_run + 1 } else { 0 };
        let persisted = persisted(cfg, pair, &fired, &s, step);
        // Start: where the evidence began, less the travel from the block
        // to the downstream station (about one interval).
        if let Some(since) = fired.lane_since {
            pair.run_start = pair.run_start.min(since - step);
        }
        // After an incident here or next door clears, its queue dissolves
        // front first and looks like a new one for a while: hold off.
        let held = held_off(&self.closed_at[di], p, now, cfg.clearing.holdoff_s);
        let raise = pair.open.is_none() && persisted && !held;
        // A queue discharging in full: near capacity below, not short.
        let lanes_dn = road.detectors()[d.station_ids[p + 1] as usize].lanes as f32;
        // (`dn` is a mean of valid samples: never NaN.)
        let not_discharging =
            s.short_below || s.dn.flow < cfg.clearing.jam_discharge_vph_lane * lanes_dn;
        pair.short_while_open = (pair.open.is_some() && pair.short_while_open) || not_discharging;
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
                rule: fired.rule(),
                detectors: vec![d.station_ids[p], d.station_ids[p + 1]],
                detail: EventDetail::None,
            });
            // A camera saw it first: one incident, one event — the camera's
            // number and times, the detectors' extent and evidence.
            let r = cfg.cameras.confirm_radius_m;
            let (lo, hi) = (su.min(sd) - r, su.max(sd) + r);
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
            && pair.calm >= cfg.clearing.calm_min_ticks
            && pair.calm as i64 * step >= calm_needed_s(cfg, pair.open.as_ref()) * 1000
            && let Some(mut e) = pair.open.take()
        {
            e.end_ms = Some(now - (pair.calm as i64 - 1) * step);
            self.closed_at[di][p] = now;
            // A queue with the flow below never short, unconfirmed: this
            // stretch jams by itself.
            if e.rule == "incident.queue_starvation" && e.severity < 4 && !pair.short_while_open {
                pair.learned_jam_until = now + cfg.clearing.learned_jam_s as i64 * 1000;
            }
            closed.push(e);
        }
        // The lane test raised it one pair further down a tick or two ago,
        // before the deficit upstream was clear — or the incident of the
        // pair below already reaches up over this one (its zone covers the
        // site): the same incident, now placed better (one incident, one
        // event).
        let lane_only = fired.lane_since.is_some() && !queue && !starved;
        let (lo, hi) = (su.min(sd), su.max(sd));
        if raise
            && let Some(old) = self.pairs[di].get_mut(p + 1).and_then(|q| {
                q.open.take_if(|e| {
                    (lane_only && (e.rule == "incident.lane_blocked" || e.rule == SLOWED_RULE))
                        || (cfg.clearing.merge_covered && e.from_m <= lo && e.to_m >= hi)
                })
            })
            && let Some(e) = self.pairs[di][p].open.as_mut()
        {
            if e.seq + 1 == *next_seq {
                *next_seq -= 1;
            }
            e.seq = old.seq;
            e.detected_ms = old.detected_ms;
            e.start_ms = e.start_ms.min(old.start_ms);
            e.severity = e.severity.max(old.severity);
            if old.from_m <= lo && old.to_m >= hi {
                e.from_m = e.from_m.min(old.from_m);
                e.to_m = e.to_m.max(old.to_m);
                for id in old.detectors {
                    if !e.detectors.contains(&id) {
                        e.detectors.push(id);
                    }
                }
            }
        }
        // The zone covers the site: the block lies between the last slow
        // and the first starved station, so while the stations above the
        // pair run free but starved (or with a lane gone silent), the block
        // is above them and the zone reaches up to the next one.
        if let Some(e) = self.pairs[di][p].open.as_mut() {
            let stake = |j: usize| road.detectors()[d.station_ids[j] as usize].stake_m;
            // Drivers leave a blocked lane before they reach the block: a
            // lane short at a station may be blocked a little past it.
            if e.rule == "incident.lane_blocked" {
                let dir = d.direction;
                let x = dir.travel_m(dir.travel_m(stake(p + 1)) + self.cfg.clearing.lane_ahead_m);
                e.from_m = e.from_m.min(x);
                e.to_m = e.to_m.max(x);
            }
            let mut j = p;
            while j > 0
                && p - j < self.cfg.clearing.zone_up_max
                && ctx.block_above[j] == Above::Starved
            {
                j -= 1;
            }
            if j < p {
                let id = d.station_ids[j];
                e.from_m = e.from_m.min(stake(j));
                e.to_m = e.to_m.max(stake(j));
                if !e.detectors.contains(&id) {
                    e.detectors.insert(0, id);
                }
            } else if ctx.block_above[p] == Above::Slowed && self.cfg.clearing.zone_up_max > 0 {
                // Slowed past the site: it lies a little above.
                let dir = d.direction;
                let x = dir.travel_m(dir.travel_m(stake(p)) - self.cfg.clearing.slowed_reach_m);
                e.from_m = e.from_m.min(x);
                e.to_m = e.to_m.max(x);
            }
        }
        *ctx.upstream_active |= self.pairs[di][p].open.is_some()
            || now - self.closed_at[di][p] < self.cfg.clearing.holdoff_s as i64 * 1000;
    }

    /// Cameras: a sighting confirms an open incident nearby, or raises one.
    fn cameras_tick(&mut self, now: i64, next_seq: &mut u64) {
        let radius = self.cfg.cameras.confirm_radius_m;
        for c in std::mem::take(&mut self.pending_cameras) {
            let near = |e: &Event| {
                e.direction == Some(c.direction)
                    && c.stake_m >= e.from_m - radius
                    && c.stake_m <= e.to_m + radius
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
    }
}

/// Where a station says the block of an incident below it lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Above {
    /// Nothing to say.
    No,
    /// It runs free but starved: the block is above it.
    Starved,
    /// It is slow but not dense: drivers slowing past the site, which may
    /// lie a little above.
    Slowed,
}

/// Whether a plan has lowered the limit traffic obeys at a station.
fn lowered(m: &StationMem) -> bool {
    m.limit_low < m.limit_posted
}

/// Clearing: the road is still blocked while the station below starves
/// (it carries at most `starved_ratio` of its normal flow and the station
/// above carries more than it, beyond the counts' noise: a demand drop
/// starves both) or a lane there still shows its share deficit. A queue
/// upstream holds the incident open through [`masked_by_own_plan`].
fn still_blocked(
    cfg: &IncidentConfig,
    pair: &PairMem,
    s: &PairSignals,
    lane_evidence_below: bool,
    t: Tick,
) -> bool {
    let c = &cfg.clearing;
    if pair.open.is_none() {
        return false;
    }
    let flow_h = t.flow_h();
    let excess = (s.u.flow - s.dn.flow - pair.normal_imbalance) * flow_h;
    let starved = s.dn.flow <= c.starved_ratio * s.dn_normal
        && excess >= c.starved_sigma * ((s.u.flow + s.dn.flow) * flow_h).max(1.0).sqrt();
    starved || lane_evidence_below
}

/// What `pair_tick` shares with the other pairs of its carriageway.
struct PairContext<'a> {
    /// Per station: a lane block just above it, since when.
    lane_at: &'a [Option<i64>],
    /// Per station: a lane whose loop went silent.
    silent_lane: &'a [bool],
    /// Per station: a lane still shows a share deficit.
    lane_evidence: &'a [bool],
    /// Per station: a lane stands still over its loop while others move.
    stopped_lane: &'a [bool],
    /// Per station: whether the block is above it.
    block_above: &'a [Above],
    /// Whether a pair upstream holds an incident (open or held off).
    upstream_active: &'a mut bool,
    /// Per station: part of an anomalous pair (its normals freeze).
    anomalous_station: &'a mut [bool],
}

/// Clearing: an open incident's plan lowers the limits around it, and a
/// queue then looks like traffic obeying them. While the upstream station
/// is slow only by the lowered standard and still clearly denser than the
/// one below (which the limits make denser too), the pair is not calm —
/// unless the station below discharges the queue in full (a queue not held
/// by a block may clear).
fn masked_by_own_plan(cfg: &IncidentConfig, pair: &PairMem, s: &PairSignals) -> bool {
    cfg.clearing.mask_flow_ratio > 0.0
        && pair.open.is_some()
        && s.u.kmh < cfg.queue.up_slow_kmh
        && s.occ_diff >= cfg.queue.occ_diff_pct
        && s.dn.flow <= cfg.clearing.mask_flow_ratio * s.dn_normal
}

impl IncidentWatch {
    /// Test 4, vehicles held up where the road runs free: slow probe reports
    /// between two stations that both flow freely (and have for
    /// `ProbeConfig::calm_s`). Vehicles behind a stopped car must slow, queue for
    /// a gap and merge — within a minute, long before a queue (if any)
    /// reaches a loop; the free stations around them say it is not a jam.
    /// `ProbeConfig::vehicles` distinct vehicles within `radius_m` and
    /// `window_s` raise an incident just past the furthest of them.
    fn probes_tick(
        &mut self,
        road: &RoadBook,
        state: &CorridorState,
        now: i64,
        step: i64,
        next_seq: &mut u64,
    ) {
        let all = &self.cfg;
        let cfg = &all.probes;
        let window = cfg.window_s as i64 * 1000;
        let wave = cfg.calm_s as i64 * 1000;
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
            let dip = p.speed_kmh >= cfg.slow_kmh;
            // A vehicle that braked and then drove on was not turning into
            // the service area (nor leaving it: that one speeds up).
            let passed_dip = dip && cfg.dip_recover_kmh > 0.0;
            if !passed_dip
                && road
                    .service_areas()
                    .iter()
                    .any(|s| (s.stake_m - p.stake_m).abs() <= cfg.service_area_m)
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
            if p.offset_m.abs() > lanes as f64 * 3.75 + cfg.lateral_margin_m {
                continue;
            }
            let mems = &self.stations[di];
            let free = |m: &StationMem| {
                m.n_normal >= warm_ticks(&all.normal, step)
                    && m.recent
                        .last()
                        .is_some_and(|r| now - r.0 <= 2 * step && r.2 >= all.normal.free_kmh)
                    && now - m.last_congested > wave
            };
            if !free(&mems[k]) || !free(&mems[k + 1]) {
                continue;
            }
            // Under a lowered limit (a fog plan's 20 km/h kept for a while
            // past the fog), a truck keeping to it is not held up: it must
            // be well below the lowest limit around, as in the queue test.
            let limit = mems[k].limit_low.min(mems[k + 1].limit_low);
            if p.speed_kmh >= limit - all.limits.margin_kmh {
                continue;
            }
            // A dip means something only where traffic is thin.
            let thin = mems[k].short_flow <= cfg.dip_max_vph_lane * lanes as f32;
            if dip && !thin {
                continue;
            }
            if held_off(&self.closed_at[di], k, now, all.clearing.holdoff_s) {
                continue;
            }
            self.held_up.push(p);
            let near: Vec<&ProbeObs> = self
                .held_up
                .iter()
                .filter(|q| q.direction == dir && (q.stake_m - p.stake_m).abs() <= cfg.radius_m)
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
                cfg.thin_merge_before_m
            } else {
                cfg.merge_before_m
            };
            let merge =
                road.interchanges().iter().any(|i| {
                    let xi = dir.travel_m(i.stake_m);
                    i.directions.contains(&dir) && x >= xi - before && x <= xi + 500.0
                }) || lane_drop_or_portal(road, dir, d.station_ids[k], d.station_ids[k + 1])
                    || in_weather(&self.weather, dir, p.stake_m);
            let md = &mems[k + 1];
            let starving =
                md.short_flow <= all.queue.cause_starve_ratio * md.normal_flow.max(md.slow_flow);
            let enough = if merge {
                vehicles.len() as u32 >= cfg.merge_vehicles && (starving || !cfg.merge_starve)
            } else {
                vehicles.len() as u32 >= cfg.vehicles
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
            self.held_up
                .retain(|q| !(q.direction == dir && (q.stake_m - p.stake_m).abs() <= cfg.radius_m));
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
