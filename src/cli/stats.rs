//! `llmux stats`: what the request log says about requests, failures, tokens, cost and
//! latency, over a window and grouped as asked. The counting is `store::stats`; this prints it
//! as a table (with footnotes saying what the total counts) or as one JSON object.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_config};
use crate::sanitize::{escape_line, to_safe_json};
use crate::store::RequestLog;
use crate::store::stats::{
    CACHE_ROW, DeploymentFacts, GroupBy, StatsReport, StatsRow, UNTAGGED, parse_since, read_log,
};
use crate::widgets::fmt::Spend;
use crate::{errln, outln};

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Only requests since a duration ago (30m, 24h, 7d, 2w) or a UTC date (2026-11-01).
    #[arg(long)]
    pub since: Option<String>,
    /// Group rows by model (group), deployment, provider, day or tag.
    #[arg(long, default_value = "model")]
    pub by: GroupBy,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, args: StatsArgs) -> u8 {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let since = match args
        .since
        .as_deref()
        .map(|s| parse_since(s, now_ms))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            errln!("llmux stats: --since {e}");
            return EXIT_USAGE;
        }
    };
    // The config only names providers and deployment tags; stats work without a valid one.
    let facts = load_config(config, false)
        .ok()
        .map(|c| DeploymentFacts::from_config(&c))
        .unwrap_or_default();
    let Some(path) = RequestLog::default_path() else {
        errln!("llmux stats: no data directory on this system (set LLMUX_DATA_DIR)");
        return EXIT_FAILED;
    };
    let report = match read_log(&path, since, args.by, &facts) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            errln!(
                "llmux stats: no request log yet at {} (it is written by every request)",
                path.display()
            );
            return EXIT_FAILED;
        }
        Err(e) => {
            errln!("llmux stats: cannot read {}: {e}", path.display());
            return EXIT_FAILED;
        }
    };
    if report.skipped_lines > 0 {
        errln!(
            "llmux stats: warning: skipped {} unreadable line(s) of {}",
            report.skipped_lines,
            path.display()
        );
    }
    if args.json {
        match serde_json::to_value(&report) {
            Ok(v) => outln!("{}", to_safe_json(&v)),
            Err(e) => {
                errln!("llmux stats: {e}");
                return EXIT_FAILED;
            }
        }
    } else {
        print_table(&report, args.by);
    }
    EXIT_OK
}

/// Columns of the table.
const COLUMNS: usize = 9;

fn ms(v: Option<u64>) -> String {
    v.map(|v| {
        if v >= 10_000 {
            format!("{:.1}s", v as f64 / 1000.0)
        } else {
            format!("{v}ms")
        }
    })
    .unwrap_or_else(|| "-".to_string())
}

fn cells(r: &StatsRow) -> [String; COLUMNS] {
    // Written as the TUI's stats view writes it (`$0`, `$0.0123+?`, `$?`), with how many
    // requests had no known price.
    let spend = Spend {
        known: r.cost_usd,
        unpriced: r.unpriced > 0,
    };
    let cost = if r.unpriced > 0 {
        format!("{spend} ({} unpriced)", r.unpriced)
    } else {
        spend.to_string()
    };
    [
        // Keys are tags from clients, model and deployment names: one line, escaped.
        escape_line(&r.key).into_owned(),
        r.requests.to_string(),
        r.failures.to_string(),
        format!("{:.1}%", r.error_rate * 100.0),
        r.cached.to_string(),
        format!("{} / {}", r.tokens_in, r.tokens_out),
        cost,
        format!("{} / {}", ms(r.ttft_p50_ms), ms(r.ttft_p95_ms)),
        format!("{} / {}", ms(r.latency_p50_ms), ms(r.latency_p95_ms)),
    ]
}

fn print_table(report: &StatsReport, by: GroupBy) {
    let first = match by {
        GroupBy::Model => "MODEL",
        GroupBy::Deployment => "DEPLOYMENT",
        GroupBy::Provider => "PROVIDER",
        GroupBy::Day => "DAY",
        GroupBy::Tag => "TAG",
    };
    let header = [
        first,
        "REQUESTS",
        "FAILED",
        "ERR",
        "CACHED",
        "TOKENS IN / OUT",
        "COST",
        "TTFT p50 / p95",
        "LATENCY p50 / p95",
    ]
    .map(String::from);
    let rows: Vec<[String; COLUMNS]> = report
        .rows
        .iter()
        .chain(std::iter::once(&report.total))
        .map(cells)
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        outln!("{}", line.join("  "));
    }
    for note in footnotes(report, by) {
        outln!("{note}");
    }
}

/// What the total counts, where that is not obvious from the rows.
fn footnotes(report: &StatsReport, by: GroupBy) -> Vec<String> {
    let mut notes = Vec::new();
    if by.attempt_level() {
        notes
            .push("rows count attempts: a retried request counts once per deployment tried".into());
    }
    if by == GroupBy::Tag {
        notes.push(format!(
            "a request counts under each of its tags and its deployment's, untagged under \
             {UNTAGGED}; the total counts it once"
        ));
    }
    if report.total.cached > 0 {
        let row = if by.attempt_level() {
            format!(" (row {CACHE_ROW})")
        } else {
            String::new()
        };
        notes.push(format!(
            "cached: answered from the response cache{row}, cost 0, no upstream tokens or latency"
        ));
    }
    notes
}
