//! Congestion (拥堵): where the estimated state is slow, as zones along each
//! carriageway with onset, extent, trend and end.
//!
//! A place (station or segment of the state) is congested when its speed
//! falls below `enter_kmh` (40 km/h) and stays so until it rises above
//! `exit_kmh` (55 km/h). Contiguous congested places form a zone; a zone
//! becomes an event after `confirm_ticks` ticks (no event for one slow
//! reading) and ends when nothing of it has been congested for `release_s`.
//! The trend compares the zone's length with its length `trend_s` ago:
//! growing, stable or shrinking (±300 m).

use zhilu_road::Direction;

use crate::event::{Event, EventDetail, EventKind};
use crate::state::{Cell, CorridorState};

/// Thresholds of congestion detection.
#[derive(Debug, Clone, PartialEq)]
pub struct CongestionConfig {
    /// Below this a place becomes congested (km/h).
    pub enter_kmh: f32,
    /// Above this a congested place clears (km/h).
    pub exit_kmh: f32,
    /// Ticks a zone must persist before it is an event.
    pub confirm_ticks: u32,
    /// Seconds without congestion before the event ends.
    pub release_s: u32,
    /// Look-back for the trend (s).
    pub trend_s: u32,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        CongestionConfig {
            enter_kmh: 40.0,
            exit_kmh: 55.0,
            confirm_ticks: 3,
            release_s: 180,
            trend_s: 300,
        }
    }
}

/// One congestion zone being tracked.
#[derive(Debug, Clone, PartialEq)]
pub struct Jam {
    /// The event (its seq is 0 until confirmed).
    pub event: Event,
    /// Ticks seen.
    pub ticks: u32,
    /// Last tick it had congested places.
    pub last_seen_ms: i64,
    /// Lengths over the last minutes: (tick, length m).
    history: Vec<(i64, f64)>,
    /// The upstream end (queue tail) in travel terms (m): where warnings go.
    pub tail_travel_m: f64,
    /// Largest extent seen (lower, higher stake).
    pub max_extent: (f64, f64),
    /// Length shown on the message signs (km), changed only by ≥ 1.5 km.
    pub shown_km: f64,
}

impl Jam {
    /// Whether it has become an event.
    pub fn confirmed(&self) -> bool {
        self.event.seq != 0
    }
}

/// Congestion watch over both carriageways.
#[derive(Debug, Clone)]
pub struct CongestionWatch {
    cfg: CongestionConfig,
    /// Per direction (as in the state), per place: currently congested.
    flags: Vec<Vec<bool>>,
    jams: Vec<(Direction, Jam)>,
}

impl CongestionWatch {
    /// A watch with the given thresholds.
    pub fn new(cfg: CongestionConfig) -> CongestionWatch {
        CongestionWatch {
            cfg,
            flags: Vec::new(),
            jams: Vec::new(),
        }
    }

    /// Confirmed jams.
    pub fn jams(&self) -> impl Iterator<Item = (Direction, &Jam)> {
        self.jams
            .iter()
            .filter(|(_, j)| j.confirmed())
            .map(|(d, j)| (*d, j))
    }

    /// Open events.
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.jams().map(|(_, j)| &j.event)
    }

    /// Updates the zones from this tick's state.
    pub fn close_tick(
        &mut self,
        state: &CorridorState,
        next_seq: &mut u64,
        closed: &mut Vec<Event>,
    ) {
        let now = state.ts_ms;
        let cfg = self.cfg.clone();
        if self.flags.len() != state.directions.len() {
            self.flags = state
                .directions
                .iter()
                .map(|d| vec![false; d.stations.len() + d.segments.len()])
                .collect();
        }
        for (di, d) in state.directions.iter().enumerate() {
            // Places in travel order: s0, seg0, s1, seg1, …
            let n = d.stations.len();
            let place = |k: usize| -> &Cell {
                if k.is_multiple_of(2) {
                    &d.stations[k / 2]
                } else {
                    &d.segments[k / 2]
                }
            };
            let count = n + d.segments.len();
            let flags = &mut self.flags[di];
            let mut zones: Vec<(usize, usize, f32)> = Vec::new();
            for k in 0..count {
                let c = place(k);
                let f = &mut flags[k];
                if c.speed_kmh.is_finite() {
                    if c.speed_kmh < cfg.enter_kmh {
                        *f = true;
                    } else if c.speed_kmh > cfg.exit_kmh {
                        *f = false;
                    }
                }
                if *f {
                    match zones.last_mut() {
                        Some(z) if z.1 + 1 == k => {
                            z.1 = k;
                            z.2 = z.2.min(c.speed_kmh);
                        }
                        _ => zones.push((k, k, c.speed_kmh)),
                    }
                }
            }
            let dir = d.direction;
            let travel = |c: &Cell| dir.travel_m((c.from_m + c.to_m) / 2.0);
            let mut seen = vec![false; self.jams.len()];
            for (a, b, vmin) in zones {
                let (ca, cb) = (place(a), place(b));
                let from = ca.from_m.min(cb.from_m);
                let to = ca.to_m.max(cb.to_m);
                let tail = travel(ca).min(travel(cb));
                let hit = self.jams.iter().position(|(jd, j)| {
                    *jd == dir && j.event.from_m <= to + 1.0 && j.event.to_m >= from - 1.0
                });
                match hit {
                    Some(i) => {
                        seen[i] = true;
                        let j = &mut self.jams[i].1;
                        j.event.from_m = if j.last_seen_ms == now {
                            j.event.from_m.min(from)
                        } else {
                            from
                        };
                        j.event.to_m = if j.last_seen_ms == now {
                            j.event.to_m.max(to)
                        } else {
                            to
                        };
                        j.ticks += 1;
                        j.last_seen_ms = now;
                        j.max_extent = (
                            j.max_extent.0.min(j.event.from_m),
                            j.max_extent.1.max(j.event.to_m),
                        );
                        let km = (j.event.to_m - j.event.from_m) / 1000.0;
                        if (km - j.shown_km).abs() >= 1.5 {
                            j.shown_km = km.round();
                        }
                        j.tail_travel_m = tail;
                        if let EventDetail::Congestion { min_speed_kmh, .. } = &mut j.event.detail {
                            *min_speed_kmh = min_speed_kmh.min(vmin);
                        }
                    }
                    None => {
                        seen.push(true);
                        self.jams.push((
                            dir,
                            Jam {
                                event: Event {
                                    seq: 0,
                                    kind: EventKind::Congestion,
                                    direction: Some(dir),
                                    from_m: from,
                                    to_m: to,
                                    start_ms: now,
                                    detected_ms: now,
                                    end_ms: None,
                                    severity: 2,
                                    rule: "state.congestion",
                                    detectors: Vec::new(),
                                    detail: EventDetail::Congestion {
                                        trend: 1,
                                        min_speed_kmh: vmin,
                                    },
                                },
                                ticks: 1,
                                last_seen_ms: now,
                                history: Vec::new(),
                                tail_travel_m: tail,
                                max_extent: (from, to),
                                shown_km: ((to - from) / 1000.0).round(),
                            },
                        ));
                    }
                }
            }
        }
        // Confirm, update trends, and end.
        let release = cfg.release_s as i64 * 1000;
        let trend_ms = cfg.trend_s as i64 * 1000;
        self.jams.retain_mut(|(_, j)| {
            if j.last_seen_ms == now {
                let len = j.event.to_m - j.event.from_m;
                j.history.push((now, len));
                j.history.retain(|(t, _)| now - t <= trend_ms);
                let past = j.history.first().map_or(len, |h| h.1);
                let km = len / 1000.0;
                j.event.severity = j.event.severity.max(if km < 2.0 {
                    2
                } else if km < 5.0 {
                    3
                } else {
                    4
                });
                if let EventDetail::Congestion { trend, .. } = &mut j.event.detail {
                    *trend = if len > past + 300.0 {
                        1
                    } else if len < past - 300.0 {
                        -1
                    } else {
                        0
                    };
                }
                if !j.confirmed() && j.ticks >= cfg.confirm_ticks {
                    j.event.seq = *next_seq;
                    *next_seq += 1;
                    j.event.detected_ms = now;
                }
                true
            } else if now - j.last_seen_ms >= release {
                if j.confirmed() {
                    let mut e = j.event.clone();
                    e.end_ms = Some(j.last_seen_ms);
                    // The closed event reports the largest extent the queue reached.
                    (e.from_m, e.to_m) = j.max_extent;
                    closed.push(e);
                }
                false
            } else {
                j.confirmed() // an unconfirmed zone that vanished was noise
            }
        });
    }
}
