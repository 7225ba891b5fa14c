//! Calendar arithmetic for `llmux stats`: the UTC day of a timestamp (`--by day`) and the
//! start of a `--since` window (a duration back from now, or a date). Pure functions of their
//! inputs; the caller supplies "now".

use crate::calendar::{civil_from_days, days_from_civil};

/// Milliseconds in a day, for `--by day` and `--since DATE`.
pub const DAY_MS: u64 = 86_400_000;

/// `2026-11-22` for a Unix time in milliseconds (UTC).
pub fn day_of(unix_ms: u64) -> String {
    let (y, m, d) = civil_from_days((unix_ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Why a `--since` is not a window start; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    #[error("{0}: a date before 1970")]
    BeforeEpoch(String),
    #[error("{0}: not a date (YYYY-MM-DD)")]
    NotADate(String),
    #[error("{0}: expected a duration like 24h or 7d, or a date like 2026-11-01")]
    NoNumber(String),
    #[error("{0}: the unit must be m, h, d or w")]
    UnknownUnit(String),
}

/// Parses `--since`: a duration back from `now` (`30m`, `24h`, `7d`, `2w`) or a UTC date
/// (`2026-11-01`). Returns the Unix time in milliseconds it starts at.
pub fn parse_since(text: &str, now_unix_ms: u64) -> Result<u64, SinceError> {
    let t = text.trim();
    if let Some((y, rest)) = t.split_once('-')
        && let Some((m, d)) = rest.split_once('-')
    {
        let (y, m, d) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>());
        if let (Ok(y), Ok(m @ 1..=12), Ok(d @ 1..=31)) = (y, m, d) {
            let days = days_from_civil(y, m, d);
            return u64::try_from(days)
                .map(|d| d * DAY_MS)
                .map_err(|_| SinceError::BeforeEpoch(t.to_string()));
        }
        return Err(SinceError::NotADate(t.to_string()));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| SinceError::NoNumber(t.to_string()))?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(SinceError::UnknownUnit(t.to_string())),
    };
    Ok(now_unix_ms.saturating_sub(n.saturating_mul(unit_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_durations_count_back() {
        assert_eq!(day_of(0), "1970-01-01");
        let nov22 = parse_since("2026-11-22", 0).unwrap();
        assert_eq!(day_of(nov22), "2026-11-22");
        assert_eq!(day_of(nov22 + DAY_MS - 1), "2026-11-22");
        assert_eq!(day_of(parse_since("2024-02-29", 0).unwrap()), "2024-02-29");
        assert_eq!(parse_since("24h", 100 * DAY_MS), Ok(99 * DAY_MS));
        assert_eq!(parse_since("7d", 100 * DAY_MS), Ok(93 * DAY_MS));
        let unit = parse_since("7y", 0).unwrap_err();
        assert_eq!(unit, SinceError::UnknownUnit("7y".into()));
        assert_eq!(unit.to_string(), "7y: the unit must be m, h, d or w");
        assert_eq!(
            parse_since("2026-13-01", 0),
            Err(SinceError::NotADate("2026-13-01".into()))
        );
        assert_eq!(
            parse_since("soon", 0),
            Err(SinceError::NoNumber("soon".into()))
        );
        assert_eq!(
            parse_since("1969-12-31", 0),
            Err(SinceError::BeforeEpoch("1969-12-31".into()))
        );
    }
}
