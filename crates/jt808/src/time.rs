//! `BCD[6]` times `YYMMDDhhmmss` in UTC+8 (Beijing time), as the protocol sends them.

use crate::error::DecodeError;
use crate::wire::Reader;

/// Offset of the protocol's clock from UTC.
pub const UTC_OFFSET_MS: i64 = 8 * 3_600_000;

/// A BCD time as sent: two-digit year (20YY), month, day, hour, minute, second, UTC+8.
///
/// Terminals without a fix send all zeros; any decimal digits decode, and
/// [`BcdTime::epoch_ms`] says whether they form a real date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BcdTime {
    /// Year within the century (0–99 → 2000–2099).
    pub year: u8,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl BcdTime {
    /// Epoch milliseconds, or `None` when the fields are not a real date and time.
    pub fn epoch_ms(&self) -> Option<i64> {
        let y = 2000 + i64::from(self.year);
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(y, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        let days = days_from_civil(y, i64::from(self.month), i64::from(self.day));
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        Some(secs * 1000 - UTC_OFFSET_MS)
    }

    /// The protocol time of an epoch instant (seconds truncated); `None` outside 2000–2099.
    pub fn from_epoch_ms(ms: i64) -> Option<BcdTime> {
        let local = (ms + UTC_OFFSET_MS).div_euclid(1000);
        let (days, sod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        if !(2000..=2099).contains(&y) {
            return None;
        }
        Some(BcdTime {
            year: (y - 2000) as u8,
            month: m as u8,
            day: d as u8,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
        })
    }

    /// Reads six BCD bytes.
    #[inline]
    pub fn read(r: &mut Reader<'_>) -> Result<BcdTime, DecodeError> {
        let at = r.offset();
        let b: [u8; 6] = r.array("time")?;
        let mut v = [0u8; 6];
        for (o, &x) in v.iter_mut().zip(b.iter()) {
            let (h, l) = (x >> 4, x & 15);
            if h > 9 || l > 9 {
                return Err(DecodeError::Invalid {
                    msg_id: r.msg_id(),
                    field: "time",
                    offset: at,
                    reason: "not BCD digits",
                });
            }
            *o = h * 10 + l;
        }
        Ok(BcdTime {
            year: v[0],
            month: v[1],
            day: v[2],
            hour: v[3],
            minute: v[4],
            second: v[5],
        })
    }

    /// Appends six BCD bytes (fields above 99 are clamped to 99).
    pub fn write(&self, out: &mut Vec<u8>) {
        for v in [
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ] {
            let v = v.min(99);
            out.push((v / 10) << 4 | (v % 10));
        }
    }
}

impl std::fmt::Display for BcdTime {
    /// `2018-10-15T10:10:10+08:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl serde::Serialize for BcdTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_round_trip() {
        let t = BcdTime {
            year: 18,
            month: 10,
            day: 15,
            hour: 10,
            minute: 10,
            second: 10,
        };
        // 2018-10-15T02:10:10Z
        assert_eq!(t.epoch_ms(), Some(1_539_569_410_000));
        assert_eq!(BcdTime::from_epoch_ms(1_539_569_410_999), Some(t));
        assert_eq!(BcdTime::default().epoch_ms(), None);
        let feb29 = BcdTime {
            year: 24,
            month: 2,
            day: 29,
            ..BcdTime::default()
        };
        assert!(feb29.epoch_ms().is_some());
        let feb29 = BcdTime {
            year: 23,
            month: 2,
            day: 29,
            ..BcdTime::default()
        };
        assert!(feb29.epoch_ms().is_none());
        for ms in [946_656_000_000i64, 1_700_000_000_123, 4_102_415_999_000] {
            let t = BcdTime::from_epoch_ms(ms).unwrap();
            assert_eq!(t.epoch_ms(), Some(ms / 1000 * 1000), "{t}");
        }
    }
}
