//! Duration strings: `"500ms"`, `"90s"`, `"15m"`, `"2h"`, `"1h30m"`, `"2d"`.
//!
//! Grammar: one or more `<digits><unit>` groups, no spaces, units `d`, `h`,
//! `m`, `s`, `ms`, each used at most once and from largest to smallest
//! (`"1h30m"` is fine, `"30m1h"` and `"1m30m"` are rejected as likely typos).
//! A bare number (`"30"`) is rejected: the unit is never guessed.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (write e.g. \"90s\", \"15m\", \"1h30m\", \"500ms\"; units d, h, m, s, ms)"
)]
pub struct DurationError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a duration string (see the module docs for the grammar).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(err("empty"));
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut total_ms: u64 = 0;
    // Rank of the last unit seen; units must strictly decrease.
    let mut last_rank = u8::MAX;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(err("expected a number"));
        }
        let number: u64 = input[start..pos].parse().map_err(|_| err("number too large"))?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let (rank, ms_per_unit) = match &input[unit_start..pos] {
            "d" => (4, 86_400_000),
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1_000),
            "ms" => (0, 1),
            "" if pos < bytes.len() => return Err(err("unexpected character")),
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        if rank >= last_rank {
            return Err(err("units must go from largest to smallest, each at most once"));
        }
        last_rank = rank;
        total_ms = number
            .checked_mul(ms_per_unit)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| err("too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the canonical form accepted by [`parse_duration`]
/// (largest unit `h`; sub-millisecond precision is dropped): `0s`, `500ms`,
/// `90s` → `1m30s`, `48h`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_examples() {
        let cases = [
            ("0s", 0),
            ("90s", 90_000),
            ("15m", 900_000),
            ("60m", 3_600_000),
            ("2h", 7_200_000),
            ("48h", 172_800_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1m30s250ms", 90_250),
            ("2d", 172_800_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_bad_ones() {
        for bad in [
            "",
            "15",
            "m",
            "15 m",
            " 15m",
            "15min",
            "1.5h",
            "-5m",
            "30m1h",
            "1m30m",
            "15M",
            "99999999999999999999s",
            "999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = parse_duration("15x").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid duration \"15x\": unknown unit"),
            "{e}"
        );
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "500ms", "1m30s", "15m", "48h", "1h30m", "2h0m5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(48 * 3600)), "48h");
    }
}
