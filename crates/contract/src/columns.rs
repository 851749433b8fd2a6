//! The record kinds of the replay contract and the live API, and their
//! column lists. Each list is written once; the header line is built from
//! it at compile time.

/// Declares a column list `$cols` and its CSV header line `$header`.
macro_rules! columns {
    ($(#[$meta:meta])* $cols:ident, $header:ident = [$first:literal $(, $rest:literal)* $(,)?]) => {
        $(#[$meta])*
        pub const $cols: [&str; [$first $(, $rest)*].len()] = [$first $(, $rest)*];
        #[doc = concat!("The header line of `", stringify!($cols), "` (no newline).")]
        pub const $header: &str = concat!($first $(, ",", $rest)*);
    };
}

columns! {
    /// OBS.csv: one row per detector, lane and interval (`time` = end of the interval).
    OBS_COLUMNS, OBS_HEADER = [
        "time", "detector", "lane", "interval_s", "volume", "speed_kmh", "occupancy_pct",
    ]
}

columns! {
    /// WEATHER.csv: one row per road-weather station reading.
    WEATHER_COLUMNS, WEATHER_HEADER = [
        "time", "station", "visibility_m", "surface_temp_c", "air_temp_c", "humidity_pct",
        "surface_state",
    ]
}

columns! {
    /// POS.csv: one row per vehicle position report (e.g. a JT/T 808 0x0200).
    POS_COLUMNS, POS_HEADER = [
        "time", "vehicle", "class", "lat", "lon", "speed_kmh", "heading_deg",
    ]
}

columns! {
    /// CAM.csv: one row per roadside video-analytics event.
    CAM_COLUMNS, CAM_HEADER = [
        "time", "camera", "kind", "direction", "stake_m", "lane", "confidence",
    ]
}

columns! {
    /// STATE.csv (zhilu's extension, `--state-out`): per tick, direction and
    /// cell (station or segment) of the estimated state.
    STATE_COLUMNS, STATE_HEADER = [
        "time", "direction", "cell", "from_m", "to_m", "speed_kmh", "flow_vph", "density_vpkm",
        "support",
    ]
}

/// The four kinds of reading a corridor sends, as files of a recorded day
/// and as bodies of the live ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadingKind {
    /// Detector observations (OBS.csv).
    Obs,
    /// Road-weather readings (WEATHER.csv).
    Weather,
    /// Vehicle positions (POS.csv).
    Positions,
    /// Camera events (CAM.csv).
    Camera,
}

impl ReadingKind {
    /// Every kind, in the contract's order.
    pub const ALL: [ReadingKind; 4] = [
        ReadingKind::Obs,
        ReadingKind::Weather,
        ReadingKind::Positions,
        ReadingKind::Camera,
    ];

    /// The contract's columns.
    pub const fn columns(self) -> &'static [&'static str] {
        match self {
            ReadingKind::Obs => &OBS_COLUMNS,
            ReadingKind::Weather => &WEATHER_COLUMNS,
            ReadingKind::Positions => &POS_COLUMNS,
            ReadingKind::Camera => &CAM_COLUMNS,
        }
    }

    /// The header line (no newline).
    pub const fn header(self) -> &'static str {
        match self {
            ReadingKind::Obs => OBS_HEADER,
            ReadingKind::Weather => WEATHER_HEADER,
            ReadingKind::Positions => POS_HEADER,
            ReadingKind::Camera => CAM_HEADER,
        }
    }

    /// The file of a recorded day (`OBS.csv`, …).
    pub const fn file_name(self) -> &'static str {
        match self {
            ReadingKind::Obs => "OBS.csv",
            ReadingKind::Weather => "WEATHER.csv",
            ReadingKind::Positions => "POS.csv",
            ReadingKind::Camera => "CAM.csv",
        }
    }

    /// The live API's name (`POST /api/ingest/{name}`, answers and metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            ReadingKind::Obs => "observations",
            ReadingKind::Weather => "weather",
            ReadingKind::Positions => "positions",
            ReadingKind::Camera => "camera-events",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_the_lists_joined() {
        for k in ReadingKind::ALL {
            assert_eq!(k.header(), k.columns().join(","), "{k:?}");
            assert_eq!(k.columns()[0], "time");
        }
        assert_eq!(STATE_HEADER, STATE_COLUMNS.join(","));
        assert_eq!(
            OBS_HEADER,
            "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct"
        );
    }
}
