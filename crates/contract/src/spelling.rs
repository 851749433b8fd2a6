//! The spelling of every enum that appears in a contract field: each value
//! and its text on one line, `parse` and `as_str` generated from that line.

use std::fmt;

/// Declares an enum whose values are spelled in the contract: each variant
/// is written `Variant = "text"`, and `ALL` (declaration order), `as_str`,
/// `parse` (exact; with `empty = Variant`, the empty field parses too) and
/// `Display` come from that one list.
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $(; empty = $empty:ident)? {
            $($(#[$vmeta:meta])* $var:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $var,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$var),+];

            /// The contract's spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $text,)+
                }
            }

            /// Parses the contract's spelling (exact, case-sensitive).
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$var),)+
                    $("" => Some($name::$empty),)?
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled! {
    /// Road-surface state reported by a weather station (WEATHER.csv
    /// `surface_state`; an empty field is `Unknown`).
    pub enum SurfaceState; empty = Unknown {
        /// 干燥
        Dry = "dry",
        /// 潮湿
        Moist = "moist",
        /// 湿 (also after de-icing brine)
        Wet = "wet",
        /// 结冰
        Ice = "ice",
        /// 积雪
        Snow = "snow",
        /// Not reported.
        Unknown = "unknown",
    }
}

spelled! {
    /// Vehicle class (POS.csv `class`).
    pub enum VehicleClass {
        /// 小客车
        Car = "car",
        /// 客车
        Bus = "bus",
        /// 货车
        Truck = "truck",
        /// 危险货物运输车 (两客一危's 危).
        Hazmat = "hazmat",
    }
}

spelled! {
    /// What a roadside video-analytics camera reports (CAM.csv `kind`).
    pub enum CameraKind {
        /// 停驶车辆
        StoppedVehicle = "stopped_vehicle",
        /// 行人
        Pedestrian = "pedestrian",
        /// 抛洒物
        Debris = "debris",
        /// 逆行
        WrongWay = "wrong_way",
        /// 拥堵
        Congestion = "congestion",
        /// 火灾
        Fire = "fire",
        /// 烟雾
        Smoke = "smoke",
        /// 路面病害
        PavementDistress = "pavement_distress",
    }
}

spelled! {
    /// What kind of event (EVENTS.jsonl `kind`).
    pub enum EventKind {
        /// 交通事件: a lane blocked by a stopped vehicle, a crash.
        Incident = "incident",
        /// 拥堵
        Congestion = "congestion",
        /// 团雾 / 低能见度
        Fog = "fog",
        /// 路面结冰风险
        Ice = "ice",
        /// 危化品车超速
        HazmatSpeeding = "hazmat_speeding",
        /// 危化品车违停
        HazmatStopped = "hazmat_stopped",
        /// 危化品车驶入禁行区
        HazmatRestrictedZone = "hazmat_restricted_zone",
        /// 危化品车连续驾驶超时 (> 4 h without a 20-min rest)
        HazmatDrivingTime = "hazmat_driving_time",
        /// 逆行
        WrongWay = "wrong_way",
        /// 检测器故障
        DetectorFault = "detector_fault",
    }
}

spelled! {
    /// How urgent an event is for the duty operator (事件等级), most severe
    /// first, so that sorting ascending puts the worst on top. This is the
    /// platform's operational priority, judged from the event's own facts
    /// (the core's `event::SeverityTable`); it is not the police response
    /// level I–IV of 公通字〔2008〕54号, which depends on how long and how far
    /// traffic is interrupted and is decided by people.
    pub enum Severity {
        /// 特别重大 / 重大: life at risk now — fog below 50 m (Art. 81: leave
        /// the expressway), wrong-way driver, fire, every lane blocked, an
        /// incident in a tunnel, a hazardous-goods vehicle where it is banned.
        Critical = "critical",
        /// 较大: a lane blocked, fog below 100 m, ice observed, hazardous
        /// goods speeding or stopped, a long queue.
        Major = "major",
        /// 一般: fog below 200 m, ice predicted, a queue, a station-level
        /// detector fault, a driving-time breach.
        Minor = "minor",
        /// 提示: worth knowing, nothing to do at once (light fog, a short
        /// queue, one faulty lane).
        Info = "info",
    }
}

spelled! {
    /// A data-quality rule that finds a faulty detector (a `detector_fault`
    /// event's `evidence.rule`/`rules`; the core's `quality` owns what each
    /// rule tests).
    pub enum FaultRule {
        /// 数据缺失: the lane (or station) stopped reporting.
        Missing = "missing",
        /// 数据冻结: the same non-zero values repeated.
        Stuck = "stuck",
        /// 零流量: a lane counts nothing while its neighbours carry traffic.
        ZeroFlow = "zero_flow",
        /// 占有率锁定: occupancy pinned at 100 %.
        LockedOn = "locked_on",
        /// 量速占不一致: values impossible together.
        Inconsistent = "inconsistent",
        /// 整站零流量: every lane of a station counts nothing while the
        /// stations on either side carry the traffic through it.
        StationZero = "station_zero",
    }
}

impl FaultRule {
    /// The rule as the `rule` of the event it raises (`quality.stuck`).
    pub const fn event_rule(self) -> &'static str {
        match self {
            FaultRule::Missing => "quality.missing",
            FaultRule::Stuck => "quality.stuck",
            FaultRule::ZeroFlow => "quality.zero_flow",
            FaultRule::LockedOn => "quality.locked_on",
            FaultRule::Inconsistent => "quality.inconsistent",
            FaultRule::StationZero => "quality.station_zero",
        }
    }
}

spelled! {
    /// The kind of a device command (ACTIONS.jsonl `action`, the server's
    /// `[decisions.modes]` keys).
    pub enum CommandKind {
        /// Variable speed limit.
        SpeedLimit = "speed_limit",
        /// Message-sign text.
        Message = "message",
        /// Fog guidance lights.
        FogLights = "fog_lights",
        /// Toll entry / on-ramp open, metered, closed.
        Entry = "entry",
        /// De-icing sprayers.
        Deicing = "deicing",
        /// Tunnel emergency plan.
        TunnelPlan = "tunnel_plan",
    }
}

spelled! {
    /// Fog-light mode (雾区诱导灯; ACTIONS.jsonl `mode`), least conspicuous first.
    pub enum FogLightMode {
        /// Dark.
        Off = "off",
        /// 道路轮廓强化: steady contour lights.
        Guidance = "guidance",
        /// 行车主动诱导 / 尾迹: a red trail behind each vehicle.
        TailMarking = "tail_marking",
        /// 防止追尾警示: warning flash.
        WarningFlash = "warning_flash",
    }
}

spelled! {
    /// State of a toll entry / on-ramp (ACTIONS.jsonl `entry` value), least
    /// restrictive first.
    pub enum EntryState {
        /// 正常放行
        Open = "open",
        /// 间隔放行 (and, when a profile says so, some vehicle classes turned away)
        Metered = "metered",
        /// 关闭
        Closed = "closed",
    }
}

/// The `direction` of an event on both carriageways (fog, ice) in
/// EVENTS.jsonl; one carriageway is the road book's `up` or `down`.
pub const BOTH_DIRECTIONS: &str = "both";

/// Vehicle classes a toll entry may turn away (ACTIONS.jsonl `banned`),
/// in the order fog plans add them: hazardous goods, then oversize, then heavy.
pub const BANNABLE_CLASSES: [&str; 3] = ["hazmat", "oversize", "heavy"];

/// The static spelling of a bannable vehicle class, if it is one.
pub fn bannable_class(s: &str) -> Option<&'static str> {
    BANNABLE_CLASSES.into_iter().find(|c| *c == s)
}

spelled! {
    /// Why a reading row was flagged (the replay summary and the live
    /// ingest's answers), in report order.
    pub enum BadRowKind {
        /// Not a line of text (invalid UTF-8).
        Malformed = "malformed",
        /// A required field is absent or empty.
        MissingField = "missing_field",
        /// A field that must be a number is not one.
        BadNumber = "bad_number",
        /// A number outside what is physically possible (speed > 250, occupancy > 100, …).
        OutOfRange = "out_of_range",
        /// A time that is not RFC 3339 with an offset.
        BadTime = "bad_time",
        /// A detector or station id not in the road book.
        UnknownDevice = "unknown_device",
        /// A lane the detector does not have.
        UnknownLane = "unknown_lane",
        /// A word outside the allowed set (class, kind, direction, surface state).
        BadValue = "bad_value",
        /// Older than the previous row by more than its interval.
        TimeBackwards = "time_backwards",
        /// Far ahead of the previous rows (more than 6 h) and not confirmed by the rows after it.
        TimeJump = "time_jump",
        /// A second row for the same detector lane and time.
        Duplicate = "duplicate",
        /// Older than the lane's latest reading.
        Stale = "stale",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value parses back from its spelling, and spellings are unique.
    fn round_trips<T: Copy + PartialEq + fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        let mut seen = std::collections::HashSet::new();
        for &v in all {
            assert_eq!(parse(as_str(v)), Some(v), "{v:?}");
            assert!(seen.insert(as_str(v)), "{} twice", as_str(v));
            assert_eq!(
                parse(&as_str(v).to_uppercase()),
                None,
                "{v:?} is case-sensitive"
            );
        }
        assert_eq!(parse("nonsense"), None);
    }

    #[test]
    fn every_spelling_round_trips() {
        round_trips(
            &SurfaceState::ALL,
            SurfaceState::as_str,
            SurfaceState::parse,
        );
        round_trips(
            &VehicleClass::ALL,
            VehicleClass::as_str,
            VehicleClass::parse,
        );
        round_trips(&CameraKind::ALL, CameraKind::as_str, CameraKind::parse);
        round_trips(&EventKind::ALL, EventKind::as_str, EventKind::parse);
        round_trips(&FaultRule::ALL, FaultRule::as_str, FaultRule::parse);
        round_trips(&CommandKind::ALL, CommandKind::as_str, CommandKind::parse);
        round_trips(
            &FogLightMode::ALL,
            FogLightMode::as_str,
            FogLightMode::parse,
        );
        round_trips(&EntryState::ALL, EntryState::as_str, EntryState::parse);
        round_trips(&BadRowKind::ALL, BadRowKind::as_str, BadRowKind::parse);
        round_trips(&Severity::ALL, Severity::as_str, Severity::parse);
        for r in FaultRule::ALL {
            assert_eq!(r.event_rule(), format!("quality.{}", r.as_str()));
        }
    }

    #[test]
    fn the_contract_lists_are_complete() {
        // replay-v1.md's lists, word for word.
        let words = |all: &[&str]| all.join(",");
        let surface: Vec<_> = SurfaceState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words(&surface), "dry,moist,wet,ice,snow,unknown");
        let class: Vec<_> = VehicleClass::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words(&class), "car,bus,truck,hazmat");
        let cam: Vec<_> = CameraKind::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            words(&cam),
            "stopped_vehicle,pedestrian,debris,wrong_way,congestion,fire,smoke,pavement_distress"
        );
        let modes: Vec<_> = FogLightMode::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words(&modes), "off,guidance,tail_marking,warning_flash");
        let entry: Vec<_> = EntryState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words(&entry), "open,metered,closed");
        let sev: Vec<_> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words(&sev), "critical,major,minor,info");
        assert!(Severity::Critical < Severity::Info, "the worst sorts first");
    }

    #[test]
    fn an_empty_surface_state_is_unknown_and_only_there() {
        assert_eq!(SurfaceState::parse(""), Some(SurfaceState::Unknown));
        assert_eq!(VehicleClass::parse(""), None);
        assert_eq!(EntryState::parse(""), None);
        assert_eq!(SurfaceState::Ice.to_string(), "ice");
    }
}
