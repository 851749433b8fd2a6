//! Stakes (桩号): linear references along the road in metres.
//!
//! `K12+345` means 12 km + 345 m = 12345 m. Both that form and a plain number
//! (`12345`, `12345.5`) parse.

use std::fmt;

/// Why a stake text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stake `{text}`: {reason} (expected metres such as `12345` or the form `K12+345`)")]
pub struct StakeError {
    /// The text as given.
    pub text: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// Parses a stake in metres from `12345`, `12345.6`, `K12+345` or `K12+345.6`.
///
/// Negative stakes and non-finite values are rejected. In the `K` form the
/// metre part must be below 1000 (`K12+1345` is a typo, not 13.345 km).
pub fn parse_stake(text: &str) -> Result<f64, StakeError> {
    let t = text.trim();
    let err = |reason| StakeError {
        text: text.to_string(),
        reason,
    };
    if t.is_empty() {
        return Err(err("empty"));
    }
    let first = t.as_bytes()[0];
    if first == b'K' || first == b'k' {
        let rest = &t[1..];
        let (km, m) = rest
            .split_once('+')
            .ok_or_else(|| err("missing `+` after the kilometre part"))?;
        if km.is_empty() || !km.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the kilometre part must be digits"));
        }
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(err("the metre part must be a number"));
        }
        let km: f64 = km
            .parse()
            .map_err(|_| err("the kilometre part must be digits"))?;
        let m: f64 = m
            .parse()
            .map_err(|_| err("the metre part must be a number"))?;
        if m >= 1000.0 {
            return Err(err("the metre part must be below 1000"));
        }
        Ok(km * 1000.0 + m)
    } else {
        if !t.bytes().all(|b| {
            b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E'
        }) {
            return Err(err("not a number"));
        }
        let v: f64 = t.parse().map_err(|_| err("not a number"))?;
        check_metres(v).map_err(err)
    }
}

/// Checks a numeric stake: finite and not negative.
pub fn check_metres(v: f64) -> Result<f64, &'static str> {
    if !v.is_finite() {
        Err("not a finite number")
    } else if v < 0.0 {
        Err("negative")
    } else {
        Ok(v)
    }
}

/// Displays a stake in metres as `K12+345` (rounded to the metre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stake(pub f64);

impl fmt::Display for Stake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0.round().max(0.0) as u64;
        write!(f, "K{}+{:03}", m / 1000, m % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_forms() {
        let cases: &[(&str, f64)] = &[
            ("12345", 12345.0),
            ("K12+345", 12345.0),
            ("k0+005", 5.0),
            ("K12+345.5", 12345.5),
            ("0", 0.0),
            ("  K3+000 ", 3000.0),
            ("1.5e3", 1500.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stake(text).unwrap(), *want, "{text}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "", "K12", "K12+", "K+345", "K12+1345", "Kx+1", "-5", "abc", "K12-345", "NaN", "inf",
        ] {
            assert!(parse_stake(text).is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn displays_k_form() {
        assert_eq!(Stake(12345.0).to_string(), "K12+345");
        assert_eq!(Stake(5.0).to_string(), "K0+005");
    }

    proptest! {
        #[test]
        fn k_form_round_trips(m in 0u64..10_000_000) {
            let text = Stake(m as f64).to_string();
            prop_assert_eq!(parse_stake(&text).unwrap(), m as f64);
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_stake(&s);
        }
    }
}
