//! The road's centre line: stake (m) ↔ WGS84 lon/lat along a polyline.
//!
//! Stakes are chainage, not geometric length: the polyline's vertices carry
//! their stakes, and positions between vertices are interpolated linearly in
//! stake. Distances use a local equirectangular projection, which is accurate
//! to well under a metre over the few kilometres of one polyline segment.

/// Metres per degree of latitude on a sphere of the WGS84 mean radius.
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// One vertex of the centre line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Stake of the vertex (m).
    pub stake_m: f64,
    /// Longitude (degrees, WGS84).
    pub lon: f64,
    /// Latitude (degrees, WGS84).
    pub lat: f64,
}

/// A position matched onto the centre line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matched {
    /// Stake of the nearest point on the centre line (m).
    pub stake_m: f64,
    /// Distance from the centre line (m); positive to the right of the
    /// direction of increasing stake (the `up` carriageway in right-hand traffic).
    pub offset_m: f64,
    /// Bearing of the centre line at that point, direction of increasing stake
    /// (degrees clockwise from north, 0–360).
    pub bearing_deg: f64,
}

/// The centre-line polyline, stake increasing, at least two vertices.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    points: Vec<GeoPoint>,
}

impl Geometry {
    /// Builds a geometry; the caller has checked ≥ 2 points and increasing stakes.
    pub(crate) fn new(points: Vec<GeoPoint>) -> Self {
        debug_assert!(points.len() >= 2);
        Geometry { points }
    }

    /// The vertices.
    pub fn points(&self) -> &[GeoPoint] {
        &self.points
    }

    /// First stake of the geometry (m).
    pub fn start_m(&self) -> f64 {
        self.points[0].stake_m
    }

    /// Last stake of the geometry (m).
    pub fn end_m(&self) -> f64 {
        self.points[self.points.len() - 1].stake_m
    }

    /// Whether a stake lies on the geometry (inclusive).
    pub fn contains(&self, stake_m: f64) -> bool {
        stake_m >= self.start_m() && stake_m <= self.end_m()
    }

    /// Lon/lat of a stake, interpolated between vertices; stakes outside the
    /// geometry are clamped to its ends.
    pub fn lonlat(&self, stake_m: f64) -> (f64, f64) {
        let p = &self.points;
        if stake_m <= p[0].stake_m {
            return (p[0].lon, p[0].lat);
        }
        let last = p[p.len() - 1];
        if stake_m >= last.stake_m {
            return (last.lon, last.lat);
        }
        // First vertex with stake > stake_m; it exists and is at index ≥ 1.
        let i = p.partition_point(|q| q.stake_m <= stake_m);
        let (a, b) = (p[i - 1], p[i]);
        let f = (stake_m - a.stake_m) / (b.stake_m - a.stake_m);
        (a.lon + f * (b.lon - a.lon), a.lat + f * (b.lat - a.lat))
    }

    /// Matches a lon/lat onto the nearest point of the centre line.
    pub fn locate(&self, lon: f64, lat: f64) -> Matched {
        let mut best: Option<(f64, Matched)> = None;
        for w in self.points.windows(2) {
            let (a, b) = (w[0], w[1]);
            let kx = M_PER_DEG * a.lat.to_radians().cos();
            let (bx, by) = ((b.lon - a.lon) * kx, (b.lat - a.lat) * M_PER_DEG);
            let (px, py) = ((lon - a.lon) * kx, (lat - a.lat) * M_PER_DEG);
            let len2 = bx * bx + by * by;
            let f = if len2 > 0.0 {
                ((px * bx + py * by) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (dx, dy) = (px - f * bx, py - f * by);
            let d2 = dx * dx + dy * dy;
            if best.as_ref().is_none_or(|(bd, _)| d2 < *bd) {
                // Cross product sign: positive when the point is right of a→b.
                let cross = bx * py - by * px;
                let offset = d2.sqrt() * if cross > 0.0 { -1.0 } else { 1.0 };
                let bearing = bx.atan2(by).to_degrees().rem_euclid(360.0);
                best = Some((
                    d2,
                    Matched {
                        stake_m: a.stake_m + f * (b.stake_m - a.stake_m),
                        offset_m: offset,
                        bearing_deg: bearing,
                    },
                ));
            }
        }
        // The geometry has at least one segment, so `best` is set.
        best.map(|(_, m)| m).unwrap_or(Matched {
            stake_m: self.start_m(),
            offset_m: 0.0,
            bearing_deg: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Geometry {
        Geometry::new(vec![
            GeoPoint {
                stake_m: 0.0,
                lon: 116.0,
                lat: 39.0,
            },
            GeoPoint {
                stake_m: 10_000.0,
                lon: 116.0,
                lat: 39.0 + 10_000.0 / M_PER_DEG,
            },
            GeoPoint {
                stake_m: 20_000.0,
                lon: 116.0 + 10_000.0 / (M_PER_DEG * 39.0f64.to_radians().cos()),
                lat: 39.0 + 10_000.0 / M_PER_DEG,
            },
        ])
    }

    #[test]
    fn stake_to_lonlat_and_back() {
        let g = line();
        for s in [0.0, 1234.0, 9999.0, 10_000.0, 15_500.0, 20_000.0] {
            let (lon, lat) = g.lonlat(s);
            let m = g.locate(lon, lat);
            assert!(
                (m.stake_m - s).abs() < 1.0,
                "stake {s} came back as {}",
                m.stake_m
            );
            assert!(m.offset_m.abs() < 1.0);
        }
    }

    #[test]
    fn offset_sign_and_bearing() {
        let g = line();
        // First leg runs north; a point east of it is to the right.
        let (lon, lat) = g.lonlat(5000.0);
        let east = lon + 50.0 / (M_PER_DEG * lat.to_radians().cos());
        let m = g.locate(east, lat);
        assert!((m.offset_m - 50.0).abs() < 1.0, "{m:?}");
        assert!(m.bearing_deg < 1.0 || m.bearing_deg > 359.0);
        // Second leg runs east; bearing ≈ 90°.
        let (lon, lat) = g.lonlat(15_000.0);
        let m = g.locate(lon, lat);
        assert!((m.bearing_deg - 90.0).abs() < 1.0, "{m:?}");
    }

    #[test]
    fn clamps_outside() {
        let g = line();
        assert_eq!(g.lonlat(-5.0), g.lonlat(0.0));
        assert_eq!(g.lonlat(99_999.0), g.lonlat(20_000.0));
    }
}
