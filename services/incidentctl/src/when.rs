//! Dates on the command line: a day (`2026-12-31`, UTC), an instant
//! (`2026-12-31T17:00:00Z`, `...+02:00`) or a span from now (`7d`, `36h`,
//! the config's duration syntax). What a day or a span means depends on the
//! flag: a due date is the end of its day and lies ahead; `--since` is the
//! start of its day and lies back; `--until` includes its day.

use incidentd_domain::Timestamp;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Days since 1970-01-01.
    Day(i64),
    At(Timestamp),
    Span(Duration),
}

impl When {
    pub fn parse(s: &str) -> Result<When, String> {
        let t = s.trim();
        let bad = || format!("{s:?} is not a date (2026-12-31), a time (2026-12-31T17:00:00Z) or a span (7d, 12h)");
        if t.len() >= 10 && t.as_bytes()[4] == b'-' {
            let day = parse_day(&t[..10]).ok_or_else(bad)?;
            if t.len() == 10 {
                return Ok(When::Day(day));
            }
            let rest = t[10..].strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
            let ms = parse_time(rest).ok_or_else(bad)?;
            return Ok(When::At(Timestamp(day * DAY_MS + ms)));
        }
        incidentd_config::parse_duration(t).map(When::Span).map_err(|_| bad())
    }

    /// A due date: the end of the day (23:59:59 UTC), or `now` plus the span.
    pub fn ahead(self, now: Timestamp) -> Timestamp {
        match self {
            When::Day(d) => Timestamp((d + 1) * DAY_MS - 1000),
            When::At(t) => t,
            When::Span(d) => now.plus(d),
        }
    }

    /// A start: the start of the day, or `now` minus the span.
    pub fn back(self, now: Timestamp) -> Timestamp {
        match self {
            When::Day(d) => Timestamp(d * DAY_MS),
            When::At(t) => t,
            When::Span(d) => Timestamp(now.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
        }
    }

    /// An end: the day included (the next day's start), or `now` minus the span.
    pub fn until(self, now: Timestamp) -> Timestamp {
        match self {
            When::Day(d) => Timestamp((d + 1) * DAY_MS),
            other => other.back(now),
        }
    }
}

pub fn proto(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.0.div_euclid(1000),
        nanos: (t.0.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// `YYYY-MM-DD` → days since the epoch.
fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] || y < 1970 {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:MM[:SS]` then `Z` or `±HH:MM` → milliseconds since the day's start, in UTC.
fn parse_time(s: &str) -> Option<i64> {
    let (clock, offset) = match s.find(['Z', 'z', '+', '-']) {
        Some(i) => (&s[..i], &s[i..]),
        None => return None,
    };
    let parts: Vec<i64> = clock
        .split(':')
        .map(|p| {
            (p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (*h, *m, 0),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let shift = match offset {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(((h * 3600 + m * 60 + sec) - shift) * 1000)
}

/// Proleptic Gregorian date → days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_times_and_spans() {
        let now = Timestamp(1_795_729_200_000); // 2026-11-26T21:40:00Z
        let due = When::parse("2026-12-31").unwrap().ahead(now);
        assert_eq!(due.to_string(), "2026-12-31T23:59:59Z");
        let since = When::parse("2026-11-01").unwrap().back(now);
        assert_eq!(since.to_string(), "2026-11-01T00:00:00Z");
        let until = When::parse("2026-11-30").unwrap().until(now);
        assert_eq!(until.to_string(), "2026-12-01T00:00:00Z");
        let at = When::parse("2026-12-31T17:00:00Z").unwrap().ahead(now);
        assert_eq!(at.to_string(), "2026-12-31T17:00:00Z");
        let off = When::parse("2026-12-31T17:00+02:00").unwrap().ahead(now);
        assert_eq!(off.to_string(), "2026-12-31T15:00:00Z");
        assert_eq!(
            When::parse("7d").unwrap().ahead(now).to_string(),
            "2026-12-03T21:40:00Z"
        );
        assert_eq!(
            When::parse("30d").unwrap().back(now).to_string(),
            "2026-10-27T21:40:00Z"
        );
        assert_eq!(
            When::parse("2000-02-29").unwrap().back(now).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(proto(Timestamp(1_500)).seconds, 1);
    }

    #[test]
    fn nonsense_is_refused() {
        for s in [
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "tomorrow",
            "2026-12-31T25:00Z",
            "2026-12-31T17:00",
            "",
        ] {
            assert!(When::parse(s).is_err(), "{s}");
        }
        assert!(When::parse("soon").unwrap_err().contains("2026-12-31"));
    }
}
