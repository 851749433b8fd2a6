//! The 0x0200 location report: alarm and status bits, position, time and the
//! additional-information items. Decoding allocates nothing unless the report
//! carries items this codec does not know.

use crate::error::{DecodeError, EncodeError};
use crate::time::BcdTime;
use crate::wire::{Reader, to_hex};
use serde::ser::{SerializeMap, SerializeStruct};

/// Names of the alarm bits (JT/T 808-2019 table 24; `reserved_N` where none).
pub const ALARM_NAMES: [&str; 32] = [
    "emergency",
    "overspeed",
    "fatigue_driving",
    "danger_warning",
    "gnss_module_fault",
    "gnss_antenna_disconnected",
    "gnss_antenna_short_circuit",
    "main_power_undervoltage",
    "main_power_off",
    "display_fault",
    "tts_fault",
    "camera_fault",
    "ic_card_module_fault",
    "overspeed_warning",
    "fatigue_warning",
    "violation_driving",
    "tire_pressure_warning",
    "right_turn_blind_zone",
    "driving_overtime_today",
    "parking_overtime",
    "area_in_out",
    "route_in_out",
    "route_driving_time_abnormal",
    "route_deviation",
    "vss_fault",
    "fuel_abnormal",
    "vehicle_stolen",
    "illegal_ignition",
    "illegal_displacement",
    "collision_warning",
    "rollover_warning",
    "illegal_door_open",
];

/// Names of the status bits; bits 8–9 (load) are reported as one state.
pub const STATUS_NAMES: [&str; 32] = [
    "acc_on",
    "positioned",
    "south_latitude",
    "west_longitude",
    "out_of_service",
    "coordinates_encrypted",
    "forward_collision_warning",
    "lane_departure_warning",
    "load_bit0",
    "load_bit1",
    "oil_circuit_cut",
    "power_circuit_cut",
    "doors_locked",
    "door1_open",
    "door2_open",
    "door3_open",
    "door4_open",
    "door5_open",
    "gps_used",
    "beidou_used",
    "glonass_used",
    "galileo_used",
    "moving",
    "reserved_23",
    "reserved_24",
    "reserved_25",
    "reserved_26",
    "reserved_27",
    "reserved_28",
    "reserved_29",
    "reserved_30",
    "reserved_31",
];

/// Names of the extended vehicle signal bits (item 0x25).
pub const SIGNAL_NAMES: [&str; 32] = [
    "low_beam",
    "high_beam",
    "right_turn_signal",
    "left_turn_signal",
    "braking",
    "reverse",
    "fog_lamp",
    "position_lamp",
    "horn",
    "air_conditioning",
    "neutral",
    "retarder",
    "abs",
    "heater",
    "clutch",
    "reserved_15",
    "reserved_16",
    "reserved_17",
    "reserved_18",
    "reserved_19",
    "reserved_20",
    "reserved_21",
    "reserved_22",
    "reserved_23",
    "reserved_24",
    "reserved_25",
    "reserved_26",
    "reserved_27",
    "reserved_28",
    "reserved_29",
    "reserved_30",
    "reserved_31",
];

fn set_names(bits: u32, names: &'static [&'static str; 32]) -> impl Iterator<Item = &'static str> {
    (0..32)
        .filter(move |i| bits & (1 << i) != 0)
        .map(move |i| names[i])
}

/// The alarm DWORD of a location report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlarmFlags(pub u32);

impl AlarmFlags {
    /// Bit 0: emergency button.
    pub const EMERGENCY: u32 = 1 << 0;
    /// Bit 1: over-speed.
    pub const OVERSPEED: u32 = 1 << 1;
    /// Bit 2: fatigue driving.
    pub const FATIGUE: u32 = 1 << 2;
    /// Bit 20: entering or leaving an area.
    pub const AREA: u32 = 1 << 20;
    /// Bit 21: entering or leaving a route.
    pub const ROUTE: u32 = 1 << 21;
    /// Bit 29: collision.
    pub const COLLISION: u32 = 1 << 29;
    /// Bit 30: rollover.
    pub const ROLLOVER: u32 = 1 << 30;

    /// Whether all bits of `mask` are set.
    pub fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// Names of the set bits, lowest first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        set_names(self.0, &ALARM_NAMES)
    }
}

/// The status DWORD of a location report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusFlags(pub u32);

/// Load state, status bits 8–9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// 00: empty.
    Empty,
    /// 01: half loaded.
    Half,
    /// 10: reserved.
    Reserved,
    /// 11: fully loaded.
    Full,
}

impl StatusFlags {
    /// Bit 0: ACC on.
    pub const ACC_ON: u32 = 1 << 0;
    /// Bit 1: positioned (has a fix).
    pub const POSITIONED: u32 = 1 << 1;
    /// Bit 2: south latitude.
    pub const SOUTH: u32 = 1 << 2;
    /// Bit 3: west longitude.
    pub const WEST: u32 = 1 << 3;

    /// Whether all bits of `mask` are set.
    pub fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// The load state (bits 8–9).
    pub fn load(self) -> Load {
        match (self.0 >> 8) & 3 {
            0 => Load::Empty,
            1 => Load::Half,
            2 => Load::Reserved,
            _ => Load::Full,
        }
    }

    /// Names of the set bits, lowest first, without the load bits.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        set_names(self.0 & !(3 << 8), &STATUS_NAMES)
    }
}

fn ser_flags<S: serde::Serializer>(
    s: S,
    raw: u32,
    names: impl Iterator<Item = &'static str>,
    load: Option<Load>,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("raw", &format_args!("0x{raw:08X}"))?;
    m.serialize_entry("set", &names.collect::<Vec<_>>())?;
    if let Some(l) = load {
        m.serialize_entry("load", &l)?;
    }
    m.end()
}

impl serde::Serialize for AlarmFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_flags(s, self.0, self.names(), None)
    }
}

impl serde::Serialize for StatusFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_flags(s, self.0, self.names(), Some(self.load()))
    }
}

/// Extended vehicle signal status (item 0x25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SignalFlags(pub u32);

impl serde::Serialize for SignalFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_flags(s, self.0, set_names(self.0, &SIGNAL_NAMES), None)
    }
}

/// Item 0x11: over-speed alarm extra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OverspeedExtra {
    /// 0 no specific place, 1 circle, 2 rectangle, 3 polygon, 4 route segment.
    pub location_type: u8,
    /// Area or segment id (absent when `location_type` is 0).
    pub area_id: Option<u32>,
}

/// Item 0x12: entering/leaving an area or route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AreaRouteExtra {
    /// 1 circle, 2 rectangle, 3 polygon, 4 route.
    pub location_type: u8,
    /// Area or route id.
    pub id: u32,
    /// 0 in, 1 out.
    pub direction: u8,
}

/// Item 0x13: route segment driving time too short or too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouteTimeExtra {
    /// Route segment id.
    pub segment_id: u32,
    /// Driving time on the segment, seconds.
    pub time_s: u16,
    /// 0 too short, 1 too long.
    pub result: u8,
}

/// An additional-information item this codec keeps as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    /// Item id.
    pub id: u8,
    /// Item value.
    pub data: Vec<u8>,
}

impl serde::Serialize for RawItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RawItem", 2)?;
        st.serialize_field("id", &format_args!("0x{:02X}", self.id))?;
        st.serialize_field("hex", &to_hex(&self.data))?;
        st.end()
    }
}

/// The additional-information items of a location report (known ones typed).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Extras {
    /// 0x01: odometer, 1/10 km.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mileage: Option<u32>,
    /// 0x02: fuel, 1/10 L.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u16>,
    /// 0x03: speed from the driving recorder, 1/10 km/h.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder_speed: Option<u16>,
    /// 0x04: id of an alarm event that needs manual confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_event_id: Option<u16>,
    /// 0x11: over-speed alarm extra.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overspeed: Option<OverspeedExtra>,
    /// 0x12: area/route in-out alarm extra.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_route: Option<AreaRouteExtra>,
    /// 0x13: route driving-time alarm extra.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_time: Option<RouteTimeExtra>,
    /// 0x25: extended vehicle signal status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vehicle_signals: Option<SignalFlags>,
    /// 0x2A: IO status bits (bit 0 deep sleep, bit 1 sleep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_status: Option<u16>,
    /// 0x2B: analog inputs (bits 0–15 AD0, 16–31 AD1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analog: Option<u32>,
    /// 0x30: wireless signal strength.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_strength: Option<u8>,
    /// 0x31: GNSS satellites in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satellites: Option<u8>,
    /// Items with other ids (or known ids with an unexpected length), in wire order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<RawItem>,
}

impl Extras {
    /// Decodes items until the reader is empty.
    #[inline]
    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        // Reset in place, keeping the unknown list's capacity.
        let mut unknown = std::mem::take(&mut self.unknown);
        unknown.clear();
        *self = Extras {
            unknown,
            ..Extras::default()
        };
        while r.remaining() > 0 {
            let id = r.u8("item id")?;
            let len = r.u8("item length")? as usize;
            let v = r.bytes(len, "item value")?;
            if !self.take_known(id, v) {
                self.unknown.push(RawItem {
                    id,
                    data: v.to_vec(),
                });
            }
        }
        Ok(())
    }

    #[inline]
    fn take_known(&mut self, id: u8, v: &[u8]) -> bool {
        let be16 = |v: &[u8]| u16::from_be_bytes([v[0], v[1]]);
        let be32 = |v: &[u8]| u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        match (id, v.len()) {
            (0x01, 4) => self.mileage = Some(be32(v)),
            (0x02, 2) => self.fuel = Some(be16(v)),
            (0x03, 2) => self.recorder_speed = Some(be16(v)),
            (0x04, 2) => self.alarm_event_id = Some(be16(v)),
            (0x11, 1) if v[0] == 0 => {
                self.overspeed = Some(OverspeedExtra {
                    location_type: 0,
                    area_id: None,
                })
            }
            (0x11, 5) if v[0] != 0 => {
                self.overspeed = Some(OverspeedExtra {
                    location_type: v[0],
                    area_id: Some(be32(&v[1..])),
                })
            }
            (0x12, 6) => {
                self.area_route = Some(AreaRouteExtra {
                    location_type: v[0],
                    id: be32(&v[1..]),
                    direction: v[5],
                })
            }
            (0x13, 7) => {
                self.route_time = Some(RouteTimeExtra {
                    segment_id: be32(v),
                    time_s: be16(&v[4..]),
                    result: v[6],
                })
            }
            (0x25, 4) => self.vehicle_signals = Some(SignalFlags(be32(v))),
            (0x2A, 2) => self.io_status = Some(be16(v)),
            (0x2B, 4) => self.analog = Some(be32(v)),
            (0x30, 1) => self.signal_strength = Some(v[0]),
            (0x31, 1) => self.satellites = Some(v[0]),
            _ => return false,
        }
        true
    }

    /// Appends the items, ordered by id (unknown items merged in by id, stable).
    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.unknown.iter().any(|u| u.data.len() > 255) {
            return Err(EncodeError::Field {
                msg_id: 0x0200,
                field: "additional item",
                reason: "longer than 255 bytes",
            });
        }
        let mut known: [(u8, [u8; 8], u8); 12] = [(0, [0; 8], 0); 12];
        let mut n = 0;
        let mut add = |id: u8, v: &[u8]| {
            let mut b = [0u8; 8];
            b[..v.len()].copy_from_slice(v);
            known[n] = (id, b, v.len() as u8);
            n += 1;
        };
        if let Some(v) = self.mileage {
            add(0x01, &v.to_be_bytes());
        }
        if let Some(v) = self.fuel {
            add(0x02, &v.to_be_bytes());
        }
        if let Some(v) = self.recorder_speed {
            add(0x03, &v.to_be_bytes());
        }
        if let Some(v) = self.alarm_event_id {
            add(0x04, &v.to_be_bytes());
        }
        if let Some(o) = self.overspeed {
            match o.area_id {
                Some(id) if o.location_type != 0 => {
                    let b = id.to_be_bytes();
                    add(0x11, &[o.location_type, b[0], b[1], b[2], b[3]]);
                }
                _ => add(0x11, &[0]),
            }
        }
        if let Some(a) = self.area_route {
            let b = a.id.to_be_bytes();
            add(
                0x12,
                &[a.location_type, b[0], b[1], b[2], b[3], a.direction],
            );
        }
        if let Some(t) = self.route_time {
            let b = t.segment_id.to_be_bytes();
            let s = t.time_s.to_be_bytes();
            add(0x13, &[b[0], b[1], b[2], b[3], s[0], s[1], t.result]);
        }
        if let Some(v) = self.vehicle_signals {
            add(0x25, &v.0.to_be_bytes());
        }
        if let Some(v) = self.io_status {
            add(0x2A, &v.to_be_bytes());
        }
        if let Some(v) = self.analog {
            add(0x2B, &v.to_be_bytes());
        }
        if let Some(v) = self.signal_strength {
            add(0x30, &[v]);
        }
        if let Some(v) = self.satellites {
            add(0x31, &[v]);
        }
        let known = &known[..n];
        let mut k = 0;
        let put = |out: &mut Vec<u8>, id: u8, v: &[u8]| {
            out.push(id);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        };
        for u in &self.unknown {
            while k < known.len() && known[k].0 <= u.id {
                put(out, known[k].0, &known[k].1[..known[k].2 as usize]);
                k += 1;
            }
            put(out, u.id, &u.data);
        }
        for (id, b, l) in &known[k..] {
            put(out, *id, &b[..*l as usize]);
        }
        Ok(())
    }
}

/// A location report body (0x0200, and each item of 0x0704).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Alarm bits.
    pub alarm: AlarmFlags,
    /// Status bits.
    pub status: StatusFlags,
    /// Latitude, 1e-6 degrees, unsigned (south when status bit 2 is set).
    pub lat: u32,
    /// Longitude, 1e-6 degrees, unsigned (west when status bit 3 is set).
    pub lon: u32,
    /// Altitude, metres.
    pub altitude: u16,
    /// Speed, 1/10 km/h.
    pub speed: u16,
    /// Heading, 0–359 degrees clockwise from north.
    pub direction: u16,
    /// Fix time (UTC+8).
    pub time: BcdTime,
    /// Additional-information items.
    pub extras: Extras,
}

/// Bytes of the fixed part of a location report.
pub const LOCATION_FIXED: usize = 28;

impl Location {
    /// Signed latitude in degrees.
    pub fn lat_deg(&self) -> f64 {
        let v = f64::from(self.lat) / 1e6;
        if self.status.contains(StatusFlags::SOUTH) {
            -v
        } else {
            v
        }
    }

    /// Signed longitude in degrees.
    pub fn lon_deg(&self) -> f64 {
        let v = f64::from(self.lon) / 1e6;
        if self.status.contains(StatusFlags::WEST) {
            -v
        } else {
            v
        }
    }

    /// Speed in km/h.
    pub fn speed_kmh(&self) -> f64 {
        f64::from(self.speed) / 10.0
    }

    /// Decodes a location body from a reader that ends where the body does.
    #[inline]
    pub fn read(r: &mut Reader<'_>) -> Result<Location, DecodeError> {
        let mut l = Location::default();
        l.read_into(r)?;
        Ok(l)
    }

    /// Decodes a location body over `self` in place (reusing its buffers);
    /// on error `self` holds a partly decoded report.
    #[inline]
    pub fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let fixed: [u8; LOCATION_FIXED - 6] = r.array("location fixed part")?;
        let be32 =
            |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        let be16 = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
        self.alarm = AlarmFlags(be32(0));
        self.status = StatusFlags(be32(4));
        self.lat = be32(8);
        self.lon = be32(12);
        self.altitude = be16(16);
        self.speed = be16(18);
        self.direction = be16(20);
        self.time = BcdTime::read(r)?;
        self.extras.read_into(r)
    }

    /// Appends the body.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.alarm.0.to_be_bytes());
        out.extend_from_slice(&self.status.0.to_be_bytes());
        out.extend_from_slice(&self.lat.to_be_bytes());
        out.extend_from_slice(&self.lon.to_be_bytes());
        out.extend_from_slice(&self.altitude.to_be_bytes());
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.direction.to_be_bytes());
        self.time.write(out);
        self.extras.write(out)
    }
}

impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("alarm", &self.alarm)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("lat_e6", &self.lat)?;
        m.serialize_entry("lon_e6", &self.lon)?;
        m.serialize_entry("lat_deg", &self.lat_deg())?;
        m.serialize_entry("lon_deg", &self.lon_deg())?;
        m.serialize_entry("altitude_m", &self.altitude)?;
        m.serialize_entry("speed_kmh", &self.speed_kmh())?;
        m.serialize_entry("direction_deg", &self.direction)?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("time_ms", &self.time.epoch_ms())?;
        m.serialize_entry("extras", &self.extras)?;
        m.end()
    }
}
