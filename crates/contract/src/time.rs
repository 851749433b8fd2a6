//! Times at the doors: RFC 3339 with an offset, as the contract writes them
//! (`2026-11-23T06:00:20+08:00`); inside, epoch milliseconds.

use std::fmt::Write as _;

/// Appends `ms` as RFC 3339 at the UTC offset `offset_s` (whole minutes):
/// `2026-11-23T06:00:20+08:00`, with the fraction of a second only when it
/// is not whole (`…:20.5+08:00`), and `+00:00` at offset zero.
pub fn format_time(ms: i64, offset_s: i32, out: &mut String) {
    write_local(ms + i64::from(offset_s) * 1000, out);
    let sign = if offset_s < 0 { '-' } else { '+' };
    let a = offset_s.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
}

/// Appends `ms` as RFC 3339 in UTC with `Z` (`2026-11-22T22:00:20Z`), the
/// fraction as in [`format_time`]: the store's archives, dated in UTC.
pub fn format_time_utc(ms: i64, out: &mut String) {
    write_local(ms, out);
    out.push('Z');
}

/// The calendar date of `ms` at the UTC offset `offset_s` (`2026-11-23`).
pub fn date_string(ms: i64, offset_s: i32) -> String {
    let days = (ms + i64::from(offset_s) * 1000).div_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// Appends the date and time of day of local epoch ms (no offset).
fn write_local(local: i64, out: &mut String) {
    let secs = local.div_euclid(1000);
    let frac = local.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
        while out.ends_with('0') {
            out.pop();
        }
    }
}

/// [`format_time`] into a new string.
pub fn time_string(ms: i64, offset_s: i32) -> String {
    let mut s = String::with_capacity(25);
    format_time(ms, offset_s, &mut s);
    s
}

/// Parses RFC 3339 with an offset (`2026-11-23T06:00:20+08:00`, `…Z`,
/// fractions of a second) into epoch ms; `None` for anything else (a bare
/// date, a space for `T`, no offset, an impossible date).
pub fn parse_time(b: &[u8]) -> Option<i64> {
    // Require the date-time shape RFC 3339 gives; jiff also accepts other
    // forms (a bare date, a space separator) that the contract does not.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let ts: jiff::Timestamp = s.parse().ok()?;
    Some(ts.as_millisecond())
}

/// [`parse_time`] with a one-entry cache: rows of one interval share their
/// time text, so most rows cost one comparison.
#[derive(Debug, Clone)]
pub struct TimeCache {
    last: Vec<u8>,
    ts_ms: i64,
}

impl Default for TimeCache {
    fn default() -> Self {
        TimeCache::new()
    }
}

impl TimeCache {
    /// An empty cache.
    pub fn new() -> TimeCache {
        TimeCache {
            last: Vec::with_capacity(40),
            ts_ms: 0,
        }
    }

    /// Epoch ms, or `None` when the text is not RFC 3339 with an offset.
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        if b == self.last.as_slice() && !b.is_empty() {
            return Some(self.ts_ms);
        }
        let ts = parse_time(b)?;
        self.last.clear();
        self.last.extend_from_slice(b);
        self.ts_ms = ts;
        Some(ts)
    }
}

/// Epoch ms of a local wall-clock time at a fixed UTC offset (s).
pub fn local_time_ms(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    offset_s: i32,
) -> i64 {
    let days = days_from_civil(i64::from(year), month, day);
    (days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 - i64::from(offset_s)) * 1000
}

/// Epoch ms of local midnight of `date` (`YYYY-MM-DD`) at the UTC offset
/// `offset_s`, or why the date is not one.
pub fn midnight_ms(date: &str, offset_s: i32) -> Result<i64, String> {
    let d: jiff::civil::Date = date.parse().map_err(|e| format!("date `{date}`: {e}"))?;
    let offset = jiff::tz::Offset::from_seconds(offset_s).map_err(|e| e.to_string())?;
    Ok(offset
        .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
        .map_err(|e| e.to_string())?
        .as_millisecond())
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jiff_text(ms: i64, offset_s: i32) -> String {
        let off = jiff::tz::Offset::from_seconds(offset_s).unwrap();
        jiff::Timestamp::from_millisecond(ms)
            .unwrap()
            .display_with_offset(off)
            .to_string()
    }

    #[test]
    fn formats_like_the_files() {
        let ms = local_time_ms(2026, 11, 23, 6, 0, 8 * 3600) + 20_000;
        assert_eq!(time_string(ms, 8 * 3600), "2026-11-23T06:00:20+08:00");
        assert_eq!(time_string(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            time_string(ms + 500, 8 * 3600),
            "2026-11-23T06:00:20.5+08:00"
        );
        assert_eq!(
            time_string(ms + 120, 8 * 3600),
            "2026-11-23T06:00:20.12+08:00"
        );
        assert_eq!(
            time_string(local_time_ms(2024, 2, 29, 23, 59, -5 * 3600), -5 * 3600),
            "2024-02-29T23:59:00-05:00"
        );
        assert_eq!(
            midnight_ms("2026-11-23", 8 * 3600),
            Ok(ms - 6 * 3_600_000 - 20_000)
        );
        assert!(
            midnight_ms("2026-02-30", 0)
                .unwrap_err()
                .starts_with("date `2026-02-30`: ")
        );
    }

    #[test]
    fn parses_the_contract_shape_only() {
        assert_eq!(
            parse_time(b"2026-11-23T06:00:20+08:00"),
            Some(1_795_384_820_000)
        );
        assert_eq!(parse_time(b"2026-11-22T22:00:20Z"), Some(1_795_384_820_000));
        assert_eq!(
            parse_time(b"2026-11-22T22:00:20.5Z"),
            Some(1_795_384_820_500)
        );
        for bad in [
            "2026-11-23T06:00:20",
            "2026-11-23 06:00:20+08:00",
            "2026-13-23T06:00:20+08:00",
            "yesterday",
            "",
            "2026-02-30T00:00:00Z",
        ] {
            assert_eq!(parse_time(bad.as_bytes()), None, "{bad}");
        }
        let mut c = TimeCache::new();
        assert_eq!(
            c.parse(b"2026-11-23T06:00:20+08:00"),
            Some(1_795_384_820_000)
        );
        assert_eq!(
            c.parse(b"2026-11-23T06:00:20+08:00"),
            Some(1_795_384_820_000)
        );
        assert_eq!(
            c.parse(b"2026-11-23T06:00:40+08:00"),
            Some(1_795_384_840_000)
        );
        assert_eq!(c.parse(b""), None);
    }

    proptest! {
        /// The text is jiff's RFC 3339 display, and reads back to the same instant.
        #[test]
        fn formats_as_jiff_and_round_trips(
            ms in -62_000_000_000_000i64..250_000_000_000_000,
            offset_min in -1439i32..=1439,
        ) {
            let offset_s = offset_min * 60;
            let text = time_string(ms, offset_s);
            prop_assert_eq!(&text, &jiff_text(ms, offset_s));
            prop_assert_eq!(parse_time(text.as_bytes()), Some(ms));
            let mut utc = String::new();
            format_time_utc(ms, &mut utc);
            prop_assert_eq!(&utc, &jiff::Timestamp::from_millisecond(ms).unwrap().to_string());
            let date = jiff::tz::Offset::from_seconds(offset_s)
                .unwrap()
                .to_datetime(jiff::Timestamp::from_millisecond(ms).unwrap())
                .date()
                .to_string();
            prop_assert_eq!(date_string(ms, offset_s), date);
        }

        #[test]
        fn parser_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_time(&b);
        }
    }
}
