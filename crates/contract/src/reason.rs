//! Why a device was commanded, as a code with parameters (理由代码).
//!
//! The core decides *why* it commands a device as a typed [`Reason`]: a
//! [`ReasonCode`] and its parameters (band, visibility, stations, legal
//! basis, extent, rule …), built where it decides (`zhilu-core`'s
//! `plans.rs` and `decide.rs`). The one line of text an operator reads in
//! `ACTIONS.jsonl` (Chinese, with the rule, the evidence and the legal
//! basis) is rendered from it at the doors by [`Reason::text`]; the live
//! API and stream carry the code and parameters beside that text, so that
//! a console says it in its own language.

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
        /// 校正: the device shows other than its plan requires; commanded again
        /// (the live server's, not the brain's).
        Reconcile = "reconcile",
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

impl LegalBasis {
    /// The basis in the words of `ACTIONS.jsonl`.
    pub const fn text(self) -> &'static str {
        match self {
            LegalBasis::Art81Below200 => {
                "《道路交通安全法实施条例》第八十一条: 能见度小于200米时车速不得超过每小时60公里, 与同车道前车保持100米以上距离"
            }
            LegalBasis::Art81Below100 => {
                "《道路交通安全法实施条例》第八十一条: 能见度小于100米时车速不得超过每小时40公里, 与同车道前车保持50米以上距离"
            }
            LegalBasis::Art81Below50 => {
                "《道路交通安全法实施条例》第八十一条: 能见度小于50米时车速不得超过每小时20公里, 并从最近的出口尽快驶离高速公路"
            }
            LegalBasis::FogPractice500 => "能见度小于500米: 限速80公里/小时、车距150米 (通行做法)",
            LegalBasis::DeicingPractice => {
                "路面温度不高于冰点+1°C且路面潮湿/湿度≥90%/接近露点时预防性喷洒 (自动喷洒系统通行做法)"
            }
        }
    }
}

/// Why a device was commanded: a code and its parameters. Parameters a
/// code does not use are `None` (or empty / false).
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// What kind of reason.
    pub code: ReasonCode,
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
    /// Reconcile: what the device shows (in words).
    pub shows: Option<String>,
    /// Reconcile: what its plan requires (in words).
    pub requires: Option<String>,
}

const TAPER: &str = "; 上游渐变限速 (每块标志降幅不超过20公里/小时)";
const JIANGSU_ICE: &str = "; 江苏方案: 部分路段结冰, 限速40公里/小时";

impl Reason {
    /// A reason of `code` without parameters yet.
    pub fn new(code: ReasonCode) -> Reason {
        Reason {
            code,
            band: None,
            visibility_m: None,
            surface_temp_c: None,
            stations: Vec::new(),
            profile: None,
            basis: None,
            from_m: None,
            to_m: None,
            rule: None,
            tunnel: None,
            fire: false,
            jiangsu: false,
            taper: false,
            shows: None,
            requires: None,
        }
    }

    /// The same reason for a sign upstream of the zone (the approach taper).
    pub fn tapered(&self) -> Reason {
        Reason {
            taper: true,
            ..self.clone()
        }
    }

    /// The reason in the words of `ACTIONS.jsonl` (one line, Chinese; the
    /// release and the reconcile in English), e.g. `团雾4级: 能见度49米
    /// (W03) [规则 weather.fog_band, 预案 national]; 依据: …`.
    pub fn text(&self) -> String {
        let stations = self.stations.join(",");
        let basis = self.basis.map_or("", LegalBasis::text);
        let rule = self.rule.as_deref().unwrap_or("");
        let from = self.from_m.unwrap_or(0.0).round();
        let to = self.to_m.unwrap_or(0.0).round();
        let mut s = match self.code {
            ReasonCode::FogBand => format!(
                "团雾{}级: 能见度{:.0}米 ({stations}) [规则 weather.fog_band, 预案 {}]; 依据: {basis}",
                self.band.unwrap_or(0),
                self.visibility_m.unwrap_or(0.0),
                self.profile.as_deref().unwrap_or(""),
            ),
            ReasonCode::IceRisk | ReasonCode::IceObserved => format!(
                "{}: 路面温度{:.1}°C ({stations}) [规则 weather.ice_risk]; 依据: {basis}{}",
                if self.code == ReasonCode::IceObserved {
                    "路面结冰"
                } else {
                    "路面结冰风险"
                },
                self.surface_temp_c.unwrap_or(0.0),
                if self.jiangsu { JIANGSU_ICE } else { "" },
            ),
            ReasonCode::Congestion => {
                format!("拥堵: {from}–{to} 米 [规则 state.congestion]")
            }
            ReasonCode::Incident => {
                format!("交通事件: {from}–{to} 米 [规则 {rule}]; 上游限速渐变、情报板预警")
            }
            ReasonCode::Tunnel => format!(
                "隧道{}: {} [规则 {rule}]; 隧道应急预案: 关闭入口、车道指示器红叉、情报板、通风与全亮照明",
                self.tunnel.as_deref().unwrap_or(""),
                if self.fire {
                    "火灾/烟雾"
                } else {
                    "交通事件"
                },
            ),
            ReasonCode::Released => "released: no plan asks for this device any more".to_string(),
            ReasonCode::Reconcile => format!(
                "reconcile: the device shows {}, its plan requires {}",
                self.shows.as_deref().unwrap_or(""),
                self.requires.as_deref().unwrap_or(""),
            ),
        };
        if self.taper {
            s.push_str(TAPER);
        }
        s
    }
}

impl fmt::Display for Reason {
    /// A short form for logs: `fog_band band=4 visibility_m=49 …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
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

    fn fog(band: u8, vis: f64, basis: LegalBasis) -> Reason {
        Reason {
            band: Some(band),
            visibility_m: Some(vis),
            stations: vec!["W10".into(), "W20".into()],
            profile: Some("national".into()),
            basis: Some(basis),
            ..Reason::new(ReasonCode::FogBand)
        }
    }

    /// Each code's text, word for word as `ACTIONS.jsonl` has always had it.
    #[test]
    fn each_code_reads_as_actions_jsonl_writes_it() {
        let ice = |code, t, jiangsu| Reason {
            surface_temp_c: Some(t),
            stations: vec!["W20".into()],
            basis: Some(LegalBasis::DeicingPractice),
            jiangsu,
            ..Reason::new(code)
        };
        let extent = |code, rule: &str| Reason {
            from_m: Some(45_199.6),
            to_m: Some(46_000.2),
            rule: Some(rule.into()),
            ..Reason::new(code)
        };
        let cases: Vec<(Reason, &str)> = vec![
            (
                fog(4, 49.4, LegalBasis::Art81Below50),
                "团雾4级: 能见度49米 (W10,W20) [规则 weather.fog_band, 预案 national]; 依据: 《道路交通安全法实施条例》第八十一条: 能见度小于50米时车速不得超过每小时20公里, 并从最近的出口尽快驶离高速公路",
            ),
            (
                fog(2, 150.0, LegalBasis::Art81Below200).tapered(),
                "团雾2级: 能见度150米 (W10,W20) [规则 weather.fog_band, 预案 national]; 依据: 《道路交通安全法实施条例》第八十一条: 能见度小于200米时车速不得超过每小时60公里, 与同车道前车保持100米以上距离; 上游渐变限速 (每块标志降幅不超过20公里/小时)",
            ),
            (
                fog(1, 400.0, LegalBasis::FogPractice500),
                "团雾1级: 能见度400米 (W10,W20) [规则 weather.fog_band, 预案 national]; 依据: 能见度小于500米: 限速80公里/小时、车距150米 (通行做法)",
            ),
            (
                ice(ReasonCode::IceRisk, 0.44, false),
                "路面结冰风险: 路面温度0.4°C (W20) [规则 weather.ice_risk]; 依据: 路面温度不高于冰点+1°C且路面潮湿/湿度≥90%/接近露点时预防性喷洒 (自动喷洒系统通行做法)",
            ),
            (
                ice(ReasonCode::IceObserved, -1.5, true),
                "路面结冰: 路面温度-1.5°C (W20) [规则 weather.ice_risk]; 依据: 路面温度不高于冰点+1°C且路面潮湿/湿度≥90%/接近露点时预防性喷洒 (自动喷洒系统通行做法); 江苏方案: 部分路段结冰, 限速40公里/小时",
            ),
            (
                extent(ReasonCode::Congestion, "state.congestion"),
                "拥堵: 45200–46000 米 [规则 state.congestion]",
            ),
            (
                extent(ReasonCode::Incident, "incident.queue").tapered(),
                "交通事件: 45200–46000 米 [规则 incident.queue]; 上游限速渐变、情报板预警; 上游渐变限速 (每块标志降幅不超过20公里/小时)",
            ),
            (
                Reason {
                    tunnel: Some("TN1".into()),
                    fire: true,
                    rule: Some("incident.camera_fire".into()),
                    ..Reason::new(ReasonCode::Tunnel)
                },
                "隧道TN1: 火灾/烟雾 [规则 incident.camera_fire]; 隧道应急预案: 关闭入口、车道指示器红叉、情报板、通风与全亮照明",
            ),
            (
                Reason::new(ReasonCode::Released),
                "released: no plan asks for this device any more",
            ),
            (
                Reason {
                    shows: Some("60 km/h".into()),
                    requires: Some("40 km/h".into()),
                    ..Reason::new(ReasonCode::Reconcile)
                },
                "reconcile: the device shows 60 km/h, its plan requires 40 km/h",
            ),
        ];
        for (r, text) in cases {
            assert_eq!(r.text(), text, "{r}");
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
        assert_eq!(
            fog(4, 49.0, LegalBasis::Art81Below50).to_string(),
            "fog_band band=4 visibility_m=49 basis=art81_50"
        );
    }
}
