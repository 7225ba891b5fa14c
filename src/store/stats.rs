//! Usage statistics from the request log: requests, failures and error rate, tokens, cost,
//! and time-to-first-token / latency percentiles, grouped by model group, deployment,
//! provider or day. Reads `requests.jsonl` line by line; a line that does not parse (a torn
//! last line after a crash) is counted and skipped, never fatal.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::Usd;
use crate::router::{RouteEvent, RouteEventKind};

/// Milliseconds in a day, for `--by day` and `--since DATE`.
const DAY_MS: u64 = 86_400_000;
/// Highest latency the histograms hold (one hour); longer ones are clamped.
const MAX_TRACKED_MS: u64 = 3_600_000;

/// What a row of the report is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The model group that answered (or failed).
    Model,
    /// The deployment each attempt went to.
    Deployment,
    /// The provider family of the deployment.
    Provider,
    /// The UTC day of the request.
    Day,
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<GroupBy, String> {
        Ok(match s {
            "model" | "group" => GroupBy::Model,
            "deployment" => GroupBy::Deployment,
            "provider" => GroupBy::Provider,
            "day" => GroupBy::Day,
            _ => return Err(format!("{s}: expected model, deployment, provider or day")),
        })
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRow {
    pub key: String,
    pub requests: u64,
    pub failures: u64,
    pub error_rate: f64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: Usd,
    /// Successful requests whose price was unknown (their cost is not in `cost_usd`).
    pub unpriced: u64,
    pub ttft_p50_ms: Option<u64>,
    pub ttft_p95_ms: Option<u64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub rows: Vec<StatsRow>,
    pub total: StatsRow,
    /// Lines of the log that did not parse.
    pub skipped_lines: u64,
}

#[derive(Default)]
struct Acc {
    requests: u64,
    failures: u64,
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    unpriced: u64,
    ttft: Option<Histogram<u64>>,
    latency: Option<Histogram<u64>>,
}

fn record(h: &mut Option<Histogram<u64>>, ms: u64) {
    if h.is_none() {
        *h = Histogram::new_with_bounds(1, MAX_TRACKED_MS, 2).ok();
    }
    if let Some(h) = h {
        h.saturating_record(ms.clamp(1, MAX_TRACKED_MS));
    }
}

fn quantile(h: &Option<Histogram<u64>>, q: f64) -> Option<u64> {
    h.as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(q))
}

impl Acc {
    fn done(&mut self, ev: &RouteEvent) {
        if let RouteEventKind::Done {
            usage,
            cost_usd,
            ttft_ms,
            total_ms,
            ..
        } = &ev.kind
        {
            self.tokens_in += usage.input;
            self.tokens_out += usage.output;
            match cost_usd {
                Some(c) => self.cost += *c,
                None => self.unpriced += 1,
            }
            if let Some(t) = ttft_ms {
                record(&mut self.ttft, *t);
            }
            record(&mut self.latency, *total_ms);
        }
    }

    fn merge(&mut self, other: &Acc) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost += other.cost;
        self.unpriced += other.unpriced;
        for (mine, theirs) in [
            (&mut self.ttft, &other.ttft),
            (&mut self.latency, &other.latency),
        ] {
            if let Some(t) = theirs {
                match mine {
                    Some(m) => {
                        let _ = m.add(t);
                    }
                    None => *mine = Some(t.clone()),
                }
            }
        }
    }

    fn row(&self, key: String) -> StatsRow {
        StatsRow {
            key,
            requests: self.requests,
            failures: self.failures,
            error_rate: if self.requests == 0 {
                0.0
            } else {
                self.failures as f64 / self.requests as f64
            },
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost,
            unpriced: self.unpriced,
            ttft_p50_ms: quantile(&self.ttft, 0.5),
            ttft_p95_ms: quantile(&self.ttft, 0.95),
            latency_p50_ms: quantile(&self.latency, 0.5),
            latency_p95_ms: quantile(&self.latency, 0.95),
        }
    }
}

/// Reads the log at `path` from `since_unix_ms` on and groups it. `provider_of` maps a
/// deployment id to its provider (from the current config).
pub fn read_log(
    path: &Path,
    since_unix_ms: Option<u64>,
    by: GroupBy,
    provider_of: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<StatsReport> {
    let file = std::fs::File::open(path)?;
    let mut rows: BTreeMap<String, Acc> = BTreeMap::new();
    let mut skipped = 0u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(ev) = serde_json::from_str::<RouteEvent>(&line) else {
            skipped += 1;
            continue;
        };
        if since_unix_ms.is_some_and(|s| ev.at_unix_ms < s) {
            continue;
        }
        let deployment = ev.deployment.clone().unwrap_or_default();
        let attempt_level = matches!(by, GroupBy::Deployment | GroupBy::Provider);
        let key = match by {
            GroupBy::Model => ev.group.clone(),
            GroupBy::Day => day_of(ev.at_unix_ms),
            GroupBy::Deployment => deployment.clone(),
            GroupBy::Provider => provider_of(&deployment).unwrap_or_else(|| "?".to_string()),
        };
        match (&ev.kind, attempt_level) {
            // Request level: one request ends in exactly one Done or Failed.
            (RouteEventKind::Done { .. }, false) => {
                let acc = rows.entry(key).or_default();
                acc.requests += 1;
                acc.done(&ev);
            }
            (RouteEventKind::Failed { .. }, false) => {
                let acc = rows.entry(key).or_default();
                acc.requests += 1;
                acc.failures += 1;
            }
            // Attempt level: every attempt is a request to its deployment.
            (RouteEventKind::Attempt, true) => rows.entry(key).or_default().requests += 1,
            (RouteEventKind::Failure { .. }, true) => rows.entry(key).or_default().failures += 1,
            (RouteEventKind::Done { .. }, true) => rows.entry(key).or_default().done(&ev),
            _ => {}
        }
    }
    let mut total = Acc::default();
    for acc in rows.values() {
        total.merge(acc);
    }
    Ok(StatsReport {
        rows: rows.iter().map(|(k, a)| a.row(k.clone())).collect(),
        total: total.row("total".to_string()),
        skipped_lines: skipped,
    })
}

/// `2026-11-22` for a Unix time in milliseconds (UTC).
pub fn day_of(unix_ms: u64) -> String {
    let (y, m, d) = civil_from_days((unix_ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `--since`: a duration back from `now` (`30m`, `24h`, `7d`, `2w`) or a UTC date
/// (`2026-11-01`). Returns the Unix time in milliseconds it starts at.
pub fn parse_since(text: &str, now_unix_ms: u64) -> Result<u64, String> {
    let t = text.trim();
    if let Some((y, rest)) = t.split_once('-')
        && let Some((m, d)) = rest.split_once('-')
    {
        let (y, m, d) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>());
        if let (Ok(y), Ok(m @ 1..=12), Ok(d @ 1..=31)) = (y, m, d) {
            let days = days_from_civil(y, m, d);
            return u64::try_from(days)
                .map(|d| d * DAY_MS)
                .map_err(|_| format!("{t}: a date before 1970"));
        }
        return Err(format!("{t}: not a date (YYYY-MM-DD)"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{t}: expected a duration like 24h or 7d, or a date like 2026-11-01")
    })?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(format!("{t}: the unit must be m, h, d or w")),
    };
    Ok(now_unix_ms.saturating_sub(n.saturating_mul(unit_ms)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
        assert!(parse_since("7y", 0).is_err());
        assert!(parse_since("2026-13-01", 0).is_err());
        assert!(parse_since("soon", 0).is_err());
    }
}
