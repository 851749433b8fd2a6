//! Why a device was commanded, as a code with parameters (理由代码).
//!
//! The core writes an action's reason as one line of text (Chinese, with
//! the rule, the evidence and the legal basis; `ACTIONS.jsonl` keeps it
//! byte for byte). The live API and stream carry beside that text a typed
//! [`Reason`] — a [`ReasonCode`] and its parameters (visibility, band,
//! limit basis, stations, extent, rule …) — so that a console renders it in
//! its own language. [`Reason::parse`] reads the core's texts; a text it
//! does not know gives `None` (the caller shows the text as it is).
//!
//! The texts read here are written by `zhilu-core` (`plans.rs`: fog, ice,
//! congestion, incident and tunnel plans; `decide.rs`: releases).

use std::fmt;

spelled! {
    /// What kind of reason (the `code` of a reason in the API).
    pub enum ReasonCode {
        /// 团雾: the fog plan of a visibility band.
        FogBand = "fog_band",
        /// 路面结冰风险: ice predicted (de-icers on, warnings, 80 km/h).
        IceRisk = "ice_risk",
        /// 路面结冰: ice observed.
        IceObserved = "ice_observed",
        /// 拥堵: queue warnings upstream of a jam.
        Congestion = "congestion",
        /// 交通事件: the incident plan.
        Incident = "incident",
        /// 隧道应急预案: the tunnel emergency plan.
        Tunnel = "tunnel",
        /// 解除: no plan asks for the device any more; back to its default.
        Released = "released",
    }
}

spelled! {
    /// The legal or regulatory basis a reason cites (依据).
    pub enum LegalBasis {
        /// 《道路交通安全法实施条例》第八十一条: visibility < 200 m → ≤ 60 km/h, 100 m gap.
        Art81Below200 = "art81_200",
        /// Art. 81: visibility < 100 m → ≤ 40 km/h, 50 m gap.
        Art81Below100 = "art81_100",
        /// Art. 81: visibility < 50 m → ≤ 20 km/h, leave at the next exit.
        Art81Below50 = "art81_50",
        /// Visibility < 500 m: 80 km/h, 150 m gap (common practice).
        FogPractice500 = "fog_practice_500",
        /// Surface at or below freezing + 1 °C and wet/humid: spray ahead (de-icing practice).
        DeicingPractice = "deicing_practice",
    }
}

spelled! {
    /// Why the centre reports itself `degraded` (`/api/health` `codes`).
    pub enum HealthCode {
        /// Rows arrive but no tick closed for `seconds`.
        TicksStalled = "ticks_stalled",
        /// Commits failing (`error`: the last storage error).
        CommitsFailing = "commits_failing",
        /// `rows` of unwritten ticks wait in memory.
        TicksWaiting = "ticks_waiting",
        /// `rows` of unwritten ticks' history dropped to bound memory.
        HistoryDropped = "history_dropped",
        /// `free_mb` left on the database's disk (ingest stops below `min_mb`).
        DiskLow = "disk_low",
        /// The device broker cannot be reached.
        BrokerDown = "broker_down",
        /// The clocks of `sources` are off.
        SourceClocksOff = "source_clocks_off",
    }
}

/// A reason as a code with its parameters. Absent parameters are `None`
/// (or empty / false).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reason {
    /// What kind of reason; `None` only in a default value.
    pub code: Option<ReasonCode>,
    /// Fog band (1–5).
    pub band: Option<u8>,
    /// Lowest visibility now (m).
    pub visibility_m: Option<f64>,
    /// Surface temperature now (°C).
    pub surface_temp_c: Option<f64>,
    /// Weather stations behind it (road-book ids).
    pub stations: Vec<String>,
    /// The control profile of the plan (`national`, `jiangsu`).
    pub profile: Option<String>,
    /// The legal or regulatory basis.
    pub basis: Option<LegalBasis>,
    /// Extent of the event (stakes, m).
    pub from_m: Option<f64>,
    /// Extent of the event (stakes, m).
    pub to_m: Option<f64>,
    /// The rule that raised the event (`incident.queue`).
    pub rule: Option<String>,
    /// The tunnel (road-book id).
    pub tunnel: Option<String>,
    /// A tunnel plan for fire or smoke (not a traffic incident).
    pub fire: bool,
    /// Ice under the Jiangsu scheme: partial icing, 40 km/h.
    pub jiangsu: bool,
    /// A sign upstream of the zone: the approach taper (at most 20 km/h
    /// lower per sign).
    pub taper: bool,
}

const TAPER: &str = "; 上游渐变限速 (每块标志降幅不超过20公里/小时)";
const RELEASED: &str = "released: no plan asks for this device any more";
const JIANGSU_ICE: &str = "; 江苏方案: 部分路段结冰, 限速40公里/小时";

/// The text between `open` and the next `close` after it, and the rest.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<(&'a str, &'a str)> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some((&s[a..b], &s[b + close.len()..]))
}

fn stations(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `12000–15000 米` → (12000, 15000).
fn extent(s: &str) -> Option<(f64, f64)> {
    let s = s.trim().strip_suffix('米')?.trim();
    let (a, b) = s.split_once('–')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

impl Reason {
    /// Reads one of the core's reason texts; `None` for any other text.
    pub fn parse(text: &str) -> Option<Reason> {
        if text == RELEASED {
            return Some(Reason {
                code: Some(ReasonCode::Released),
                ..Reason::default()
            });
        }
        let (text, taper) = match text.strip_suffix(TAPER) {
            Some(t) => (t, true),
            None => (text, false),
        };
        let mut r = Reason {
            taper,
            ..Reason::default()
        };
        if let Some(rest) = text.strip_prefix("团雾") {
            // 团雾{band}级: 能见度{vis}米 ({stations}) [规则 weather.fog_band, 预案 {profile}]; 依据: {basis}
            let (band, rest) = rest.split_once("级: 能见度")?;
            let (vis, rest) = rest.split_once("米 (")?;
            let (st, rest) = rest.split_once(") [规则 weather.fog_band, 预案 ")?;
            let (profile, basis) = rest.split_once("]; 依据: ")?;
            r.code = Some(ReasonCode::FogBand);
            r.band = Some(band.parse().ok()?);
            r.visibility_m = Some(vis.parse().ok()?);
            r.stations = stations(st);
            r.profile = Some(profile.to_string());
            r.basis = Some(if basis.contains("第八十一条") {
                if basis.contains("能见度小于200米") {
                    LegalBasis::Art81Below200
                } else if basis.contains("能见度小于100米") {
                    LegalBasis::Art81Below100
                } else if basis.contains("能见度小于50米") {
                    LegalBasis::Art81Below50
                } else {
                    return None;
                }
            } else if basis.starts_with("能见度小于500米") {
                LegalBasis::FogPractice500
            } else {
                return None;
            });
            return Some(r);
        }
        for (prefix, code) in [
            ("路面结冰风险: 路面温度", ReasonCode::IceRisk),
            ("路面结冰: 路面温度", ReasonCode::IceObserved),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                // {t}°C ({stations}) [规则 weather.ice_risk]; 依据: …{; 江苏方案 …}
                let (temp, rest) = rest.split_once("°C (")?;
                let (st, rest) = rest.split_once(") [规则 weather.ice_risk]; 依据: ")?;
                r.code = Some(code);
                r.surface_temp_c = Some(temp.parse().ok()?);
                r.stations = stations(st);
                r.basis = Some(LegalBasis::DeicingPractice);
                r.jiangsu = rest.ends_with(JIANGSU_ICE);
                return Some(r);
            }
        }
        if let Some(rest) = text.strip_prefix("拥堵: ") {
            // 拥堵: {from}–{to} 米 [规则 state.congestion]
            let (ext, _) = rest.split_once(" [规则 state.congestion]")?;
            let (a, b) = extent(ext)?;
            r.code = Some(ReasonCode::Congestion);
            (r.from_m, r.to_m) = (Some(a), Some(b));
            r.rule = Some("state.congestion".into());
            return Some(r);
        }
        if let Some(rest) = text.strip_prefix("交通事件: ") {
            // 交通事件: {from}–{to} 米 [规则 {rule}]; 上游限速渐变、情报板预警
            let (ext, rest) = rest.split_once(" [规则 ")?;
            let (rule, _) = rest.split_once(']')?;
            let (a, b) = extent(ext)?;
            r.code = Some(ReasonCode::Incident);
            (r.from_m, r.to_m) = (Some(a), Some(b));
            r.rule = Some(rule.to_string());
            return Some(r);
        }
        if let Some(rest) = text.strip_prefix("隧道") {
            // 隧道{id}: {火灾/烟雾|交通事件} [规则 {rule}]; 隧道应急预案: …
            let (id, rest) = rest.split_once(": ")?;
            let (what, rest) = rest.split_once(" [规则 ")?;
            let (rule, _) = between(rest, "", "]")?;
            r.code = Some(ReasonCode::Tunnel);
            r.tunnel = Some(id.to_string());
            r.fire = what == "火灾/烟雾";
            r.rule = Some(rule.to_string());
            return Some(r);
        }
        None
    }
}

impl fmt::Display for Reason {
    /// A short form for logs: `fog_band band=4 visibility_m=49 …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.map_or("", ReasonCode::as_str))?;
        if let Some(b) = self.band {
            write!(f, " band={b}")?;
        }
        if let Some(v) = self.visibility_m {
            write!(f, " visibility_m={v}")?;
        }
        if let Some(t) = self.surface_temp_c {
            write!(f, " surface_temp_c={t}")?;
        }
        if let Some(b) = self.basis {
            write!(f, " basis={b}")?;
        }
        if let (Some(a), Some(b)) = (self.from_m, self.to_m) {
            write!(f, " from_m={a} to_m={b}")?;
        }
        if let Some(r) = &self.rule {
            write!(f, " rule={r}")?;
        }
        if let Some(t) = &self.tunnel {
            write!(f, " tunnel={t}")?;
        }
        if self.taper {
            f.write_str(" taper")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ART81_50: &str = "《道路交通安全法实施条例》第八十一条: 能见度小于50米时车速不得超过每小时20公里, 并从最近的出口尽快驶离高速公路";

    /// The core's texts (as `plans.rs` and `decide.rs` write them) and what
    /// each reads as.
    #[test]
    fn the_cores_texts_read_as_codes() {
        let fog = format!(
            "团雾4级: 能见度49米 (W10,W20) [规则 weather.fog_band, 预案 national]; 依据: {ART81_50}"
        );
        let r = Reason::parse(&fog).expect("fog");
        assert_eq!(r.code, Some(ReasonCode::FogBand));
        assert_eq!(r.band, Some(4));
        assert_eq!(r.visibility_m, Some(49.0));
        assert_eq!(r.stations, ["W10", "W20"]);
        assert_eq!(r.profile.as_deref(), Some("national"));
        assert_eq!(r.basis, Some(LegalBasis::Art81Below50));
        assert!(!r.taper);
        let r = Reason::parse(&format!("{fog}{TAPER}")).expect("fog taper");
        assert!(r.taper);
        assert_eq!(r.band, Some(4));

        let cases: &[(&str, ReasonCode, Option<LegalBasis>)] = &[
            (
                "团雾2级: 能见度150米 (W1) [规则 weather.fog_band, 预案 jiangsu]; 依据: 《道路交通安全法实施条例》第八十一条: 能见度小于200米时车速不得超过每小时60公里, 与同车道前车保持100米以上距离",
                ReasonCode::FogBand,
                Some(LegalBasis::Art81Below200),
            ),
            (
                "团雾3级: 能见度80米 (W1) [规则 weather.fog_band, 预案 national]; 依据: 《道路交通安全法实施条例》第八十一条: 能见度小于100米时车速不得超过每小时40公里, 与同车道前车保持50米以上距离",
                ReasonCode::FogBand,
                Some(LegalBasis::Art81Below100),
            ),
            (
                "团雾1级: 能见度400米 (W1) [规则 weather.fog_band, 预案 national]; 依据: 能见度小于500米: 限速80公里/小时、车距150米 (通行做法)",
                ReasonCode::FogBand,
                Some(LegalBasis::FogPractice500),
            ),
            (
                "路面结冰风险: 路面温度0.4°C (W20) [规则 weather.ice_risk]; 依据: 路面温度不高于冰点+1°C且路面潮湿/湿度≥90%/接近露点时预防性喷洒 (自动喷洒系统通行做法)",
                ReasonCode::IceRisk,
                Some(LegalBasis::DeicingPractice),
            ),
            (
                "路面结冰: 路面温度-1.5°C (W20) [规则 weather.ice_risk]; 依据: 路面温度不高于冰点+1°C且路面潮湿/湿度≥90%/接近露点时预防性喷洒 (自动喷洒系统通行做法); 江苏方案: 部分路段结冰, 限速40公里/小时",
                ReasonCode::IceObserved,
                Some(LegalBasis::DeicingPractice),
            ),
            (
                "拥堵: 12000–15500 米 [规则 state.congestion]",
                ReasonCode::Congestion,
                None,
            ),
            (
                "交通事件: 45200–46000 米 [规则 incident.queue]; 上游限速渐变、情报板预警; 上游渐变限速 (每块标志降幅不超过20公里/小时)",
                ReasonCode::Incident,
                None,
            ),
            (
                "隧道TN1: 火灾/烟雾 [规则 incident.camera_fire]; 隧道应急预案: 关闭入口、车道指示器红叉、情报板、通风与全亮照明",
                ReasonCode::Tunnel,
                None,
            ),
            (
                "released: no plan asks for this device any more",
                ReasonCode::Released,
                None,
            ),
        ];
        for (text, code, basis) in cases {
            let r = Reason::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(r.code, Some(*code), "{text}");
            assert_eq!(r.basis, *basis, "{text}");
        }
        let r = Reason::parse(cases[4].0).unwrap();
        assert_eq!(r.surface_temp_c, Some(-1.5));
        assert!(r.jiangsu);
        let r = Reason::parse(cases[5].0).unwrap();
        assert_eq!((r.from_m, r.to_m), (Some(12000.0), Some(15500.0)));
        let r = Reason::parse(cases[6].0).unwrap();
        assert_eq!(r.rule.as_deref(), Some("incident.queue"));
        assert!(r.taper);
        let r = Reason::parse(cases[7].0).unwrap();
        assert_eq!(r.tunnel.as_deref(), Some("TN1"));
        assert!(r.fire);
        assert_eq!(r.rule.as_deref(), Some("incident.camera_fire"));
    }

    #[test]
    fn other_texts_are_not_guessed() {
        for t in [
            "",
            "operator's note",
            "团雾x级: 能见度49米 (W1) [规则 weather.fog_band, 预案 national]; 依据: x",
            "团雾4级: 能见度49米 (W1) [规则 weather.fog_band, 预案 national]; 依据: 别的依据",
            "拥堵: somewhere [规则 state.congestion]",
        ] {
            assert_eq!(Reason::parse(t), None, "{t}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for c in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(c.as_str()), Some(c));
        }
        for b in LegalBasis::ALL {
            assert_eq!(LegalBasis::parse(b.as_str()), Some(b));
        }
    }
}
