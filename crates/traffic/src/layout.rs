//! How a carriageway is cut into cells (元胞划分), shared by the simulator
//! and the twin: equal cells along the road, each with the lanes of the
//! nearest detector station, the speed-limit sign governing it (the last
//! sign upstream within `vsl_reach_m`) and its tunnel; an exit 400 m before
//! and an entry 400 m after each interchange serving the carriageway.

use zhilu_road::{Direction, RoadBook};

/// One carriageway's cells and ramps.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Carriageway.
    pub dir: Direction,
    /// Travel position of the first cell's upstream end (m).
    pub travel0: f64,
    /// Cell length (m).
    pub cell_m: f64,
    /// Lanes per cell.
    pub lanes: Vec<u8>,
    /// Index of the speed-limit sign governing each cell.
    pub sign: Vec<Option<u32>>,
    /// Index of the tunnel each cell's centre lies in.
    pub tunnel: Vec<Option<u32>>,
    /// Share of the passing traffic leaving at boundary `b` (before cell `b`).
    pub off_split: Vec<f64>,
    /// Entry at boundary `b`: index into `ramp_ic` / `ramp_b`.
    pub on_ramp: Vec<Option<usize>>,
    /// Interchange index of each entry, in the road book's order.
    pub ramp_ic: Vec<u32>,
    /// Boundary of each entry.
    pub ramp_b: Vec<usize>,
}

impl Layout {
    /// Cuts carriageway `dir` of the road from stake `a` to `b` into `n`
    /// cells; exits take `off_share` of the passing traffic.
    pub fn build(
        road: &RoadBook,
        dir: Direction,
        (a, b): (f64, f64),
        n: usize,
        vsl_reach_m: f64,
        off_share: f64,
    ) -> Layout {
        let cell_m = (b - a) / n as f64;
        let travel0 = dir.travel_m(a).min(dir.travel_m(b));
        let mut signs: Vec<(f64, u32)> = road
            .vsl()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.direction == dir)
            .map(|(i, s)| (dir.travel_m(s.stake_m), i as u32))
            .collect();
        signs.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut lay = Layout {
            dir,
            travel0,
            cell_m,
            lanes: Vec::with_capacity(n),
            sign: Vec::with_capacity(n),
            tunnel: Vec::with_capacity(n),
            off_split: vec![0.0; n + 1],
            on_ramp: vec![None; n + 1],
            ramp_ic: Vec::new(),
            ramp_b: Vec::new(),
        };
        for k in 0..n {
            let ct = travel0 + (k as f64 + 0.5) * cell_m;
            let centre_m = dir.sign() * ct;
            let lanes = road
                .detectors()
                .iter()
                .filter(|d| d.direction == dir)
                .min_by(|x, y| {
                    (x.stake_m - centre_m)
                        .abs()
                        .total_cmp(&(y.stake_m - centre_m).abs())
                })
                .map_or(road.lanes(), |d| d.lanes);
            lay.lanes.push(lanes.max(1));
            lay.sign.push(
                signs
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= ct)
                    .filter(|(t, _)| ct - t <= vsl_reach_m)
                    .map(|(_, i)| *i),
            );
            lay.tunnel.push(
                road.tunnels()
                    .iter()
                    .position(|t| centre_m >= t.from_m && centre_m <= t.to_m)
                    .map(|i| i as u32),
            );
        }
        if n >= 2 {
            let to_b = |t: f64| -> usize {
                (((t - travel0) / cell_m).round().max(1.0) as usize).min(n - 1)
            };
            for (ii, ic) in road.interchanges().iter().enumerate() {
                if !ic.directions.contains(&dir) {
                    continue;
                }
                let t = dir.travel_m(ic.stake_m);
                if off_share > 0.0 {
                    let bo = to_b(t - 400.0);
                    lay.off_split[bo] = 1.0 - (1.0 - lay.off_split[bo]) * (1.0 - off_share);
                }
                let mut bi = to_b(t + 400.0);
                while bi < n - 1 && lay.on_ramp[bi].is_some() {
                    bi += 1;
                }
                if lay.on_ramp[bi].is_none() {
                    lay.on_ramp[bi] = Some(lay.ramp_ic.len());
                    lay.ramp_ic.push(ii as u32);
                    lay.ramp_b.push(bi);
                }
            }
        }
        lay
    }

    /// Cells.
    pub fn n(&self) -> usize {
        self.lanes.len()
    }

    /// Stake of a cell's centre (m).
    pub fn centre_m(&self, k: usize) -> f64 {
        self.dir.sign() * (self.travel0 + (k as f64 + 0.5) * self.cell_m)
    }
}
