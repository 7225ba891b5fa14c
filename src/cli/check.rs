//! `llmux check` and `llmux models`: what the config says, readable. `check --ping` instead
//! sends the smallest request to every deployment (`router::ping`) and prints what answered.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, format_warning, load_config, tui_settings};
use crate::config::{self, Config};
use crate::metrics::{Price, PriceTable};
use crate::provider::HttpClient;
use crate::router::ping::{self, DEFAULT_PING_TIMEOUT};
use crate::router::{PingResult, PingState};
use crate::sanitize::{escape_line, to_safe_json};
use crate::{errln, outln};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Send the smallest request (max_tokens 1) to every deployment at once and report which answer.
    #[arg(long)]
    pub ping: bool,
    /// With --ping: seconds to wait for each deployment (default 10).
    #[arg(long, value_name = "SECS", requires = "ping")]
    pub timeout: Option<f64>,
    /// With --ping: print one JSON object instead of the table.
    #[arg(long, requires = "ping")]
    pub json: bool,
}

/// Validates the config and prints groups, deployments, fallback chains, prices and warnings
/// (the loader's, and what the TUI would say about `llmux.keys` and `llmux.theme`). Exit 2 on
/// a bad config, a price file that cannot be read, or a group with no deployment llmux can
/// call; a deployment that cannot be called beside others that can is a warning.
pub fn check(flag: Option<&Path>) -> u8 {
    let source = config::locate(flag);
    let cfg = match load_config(flag, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (table, price_error) = match PriceTable::for_config(&cfg) {
        Ok(t) => (t, None),
        Err(e) => (PriceTable::builtin(), Some(e)),
    };
    let origin = match &source {
        config::ConfigSource::File(p) => p.display().to_string(),
        config::ConfigSource::Demo => "the built-in demo config (no config file found)".to_string(),
    };
    outln!("config: {origin}");
    outln!(
        "router: {} · num_retries {} · allowed_fails {} · cooldown {}s · timeout {}s",
        cfg.router.strategy.name(),
        cfg.router.num_retries,
        cfg.router.allowed_fails,
        cfg.router.cooldown_time.as_secs_f64(),
        cfg.router.timeout.as_secs_f64()
    );
    outln!();
    for group in &cfg.groups {
        outln!("{group}");
        for d in cfg.group_deployments(group) {
            let mut notes = Vec::new();
            if let Some(o) = d.order {
                notes.push(format!("order {o}"));
            }
            if let Some(w) = d.weight {
                notes.push(format!("weight {w}"));
            }
            if let Some(r) = d.rpm {
                notes.push(format!("rpm {r}"));
            }
            if let Some(t) = d.tpm {
                notes.push(format!("tpm {t}"));
            }
            let base = if d.api_base.is_empty() {
                String::new()
            } else {
                format!(" @ {}", d.api_base)
            };
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" · {}", notes.join(" · "))
            };
            let price = price_text(table.price_for(d));
            outln!("  {} ({}{base}) {price}{notes}", d.id, d.provider);
            if let Some(why) = &d.unavailable {
                outln!("    ✗ {why}");
            }
        }
        let chain = fallback_chain(&cfg, group);
        if !chain.is_empty() {
            outln!("  fallbacks → {}", chain.join(" → "));
        }
        if let Some(cw) = cfg.router.context_window_fallbacks.get(group) {
            outln!("  context-window fallbacks → {}", cw.join(" → "));
        }
        if let Some(cp) = cfg.router.content_policy_fallbacks.get(group) {
            outln!("  content-policy fallbacks → {}", cp.join(" → "));
        }
    }
    for (alias, target) in &cfg.router.model_group_alias {
        outln!("alias {alias} → {target}");
    }
    let telemetry = crate::telemetry::Settings::from_config(&cfg);
    for line in telemetry.describe().iter().chain(&telemetry.problems) {
        outln!("telemetry: {line}");
    }
    let mut warnings = cfg.warnings.clone();
    warnings.extend(tui_settings::warnings(&cfg, &config_text(&source)));
    warnings.sort_by_key(|w| (w.line.unwrap_or(0), w.column.unwrap_or(0)));
    if !warnings.is_empty() {
        outln!();
        for w in &warnings {
            outln!("{}", format_warning(&source, w));
        }
    }
    if let Some(e) = &price_error {
        errln!("error: {e}");
    }
    let uncallable = uncallable_groups(&cfg);
    for (group, why) in &uncallable {
        errln!(
            "error: group {group} has no deployment llmux can call: {}",
            why.join("; ")
        );
    }
    if !uncallable.is_empty() || price_error.is_some() {
        return EXIT_USAGE;
    }
    let unavailable = cfg
        .deployments
        .iter()
        .filter(|d| d.unavailable.is_some())
        .count();
    let unavailable = match unavailable {
        0 => String::new(),
        n => format!(" ({n} unavailable)"),
    };
    outln!(
        "\nok: {} groups, {} deployments{unavailable}",
        cfg.groups.len(),
        cfg.deployments.len()
    );
    EXIT_OK
}

/// The groups none of whose deployments can be called, each with its deployments' reasons.
fn uncallable_groups(cfg: &Config) -> Vec<(&str, Vec<String>)> {
    cfg.groups
        .iter()
        .filter_map(|group| {
            // `None` as soon as one deployment can be called.
            let why: Option<Vec<String>> = cfg
                .group_deployments(group)
                .map(|d| {
                    d.unavailable
                        .as_deref()
                        .map(|why| format!("{} ({why})", d.id))
                })
                .collect();
            why.map(|why| (group.as_str(), why))
        })
        .collect()
}

/// The config's text, for placing findings made after loading; empty when it cannot be read
/// again (the findings are then placed at the top).
fn config_text(source: &config::ConfigSource) -> String {
    match source {
        config::ConfigSource::File(p) => std::fs::read_to_string(p).unwrap_or_default(),
        config::ConfigSource::Demo => config::DEMO_CONFIG.to_string(),
    }
}

/// Lists model groups and deployments with context window, price per million tokens, and why
/// a deployment cannot be called.
pub fn models(flag: Option<&Path>) -> u8 {
    let cfg = match load_config(flag, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let table = PriceTable::for_config(&cfg).unwrap_or_else(|e| {
        errln!("llmux: warning: {e}; showing built-in prices");
        PriceTable::builtin()
    });
    let rows: Vec<[String; 6]> = cfg
        .deployments
        .iter()
        .map(|d| {
            let price = table.price_for(d);
            [
                d.group.clone(),
                d.id.clone(),
                table
                    .max_input_tokens(d)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "?".into()),
                price
                    .map(|p| p.input_per_million().to_string())
                    .unwrap_or_else(|| "?".into()),
                price
                    .map(|p| p.output_per_million().to_string())
                    .unwrap_or_else(|| "?".into()),
                d.unavailable
                    .as_deref()
                    .map(|why| format!("unavailable: {why}"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    outln!(
        "{}",
        aligned(
            [
                "GROUP",
                "DEPLOYMENT",
                "CONTEXT",
                "IN /M",
                "OUT /M",
                "STATUS"
            ],
            &rows
        )
    );
    EXIT_OK
}

/// The full chain a request to `group` may walk: its fallbacks, else the default ones.
fn fallback_chain(cfg: &Config, group: &str) -> Vec<String> {
    cfg.router.fallbacks.get(group).cloned().unwrap_or_else(|| {
        cfg.router
            .default_fallbacks
            .iter()
            .filter(|g| g.as_str() != group)
            .cloned()
            .collect()
    })
}

fn price_text(price: Option<Price>) -> String {
    match price {
        Some(p) => format!(
            "{} in / {} out per M",
            p.input_per_million(),
            p.output_per_million()
        ),
        None => "price unknown".to_string(),
    }
}

/// `llmux check --ping`: pings every deployment at once, prints a row (or `--json`) each;
/// exit 0 when all answered, 1 otherwise, 2 for a bad config or timeout.
pub async fn ping_command(flag: Option<&Path>, args: &CheckArgs) -> u8 {
    let timeout = match args.timeout {
        None => DEFAULT_PING_TIMEOUT,
        Some(secs) => match Duration::try_from_secs_f64(secs) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                errln!("llmux check: --timeout {secs}: give a number of seconds above 0");
                return EXIT_USAGE;
            }
        },
    };
    let cfg = match load_config(flag, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let http = match HttpClient::with_options(&crate::provider::HttpOptions::from_environment()) {
        Ok(h) => h,
        Err(e) => {
            errln!("llmux: {}", crate::router::RouterError::Http(e));
            return EXIT_FAILED;
        }
    };
    let results = ping::ping_all(&http, &cfg.deployments, timeout).await;
    if args.json {
        outln!("{}", to_safe_json(&ping_json(&results)));
    } else {
        outln!("{}", ping_table(&results));
    }
    if results.iter().all(PingResult::reachable) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// `check --ping --json`: `{"deployments": [...], "reachable": n, "unreachable": n}`.
pub fn ping_json(results: &[PingResult]) -> serde_json::Value {
    let rows: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "deployment": r.deployment,
                "group": r.group,
                "model": r.model,
                "api_base": r.api_base,
                "state": r.state,
                "latency_ms": r.latency.as_millis() as u64,
                "status": r.status,
                "error": r.error,
            })
        })
        .collect();
    let reachable = results.iter().filter(|r| r.reachable()).count();
    json!({
        "deployments": rows,
        "reachable": reachable,
        "unreachable": results.len() - reachable,
    })
}

/// One aligned row per deployment and a total line; upstream text is escaped.
pub fn ping_table(results: &[PingResult]) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            [
                r.deployment.clone(),
                r.group.clone(),
                r.state.label().to_string(),
                if r.state == PingState::Error && r.latency.is_zero() {
                    "-".to_string()
                } else {
                    format!("{} ms", r.latency.as_millis())
                },
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = aligned(["DEPLOYMENT", "GROUP", "STATE", "LATENCY", "DETAIL"], &rows);
    let reachable = results.iter().filter(|r| r.reachable()).count();
    out.push_str(&format!(
        "\n\n{reachable} of {} deployments reachable",
        results.len()
    ));
    out
}

/// A header and rows as left-aligned columns two spaces apart, one line each (no newline
/// after the last). Cells are escaped onto one line before they are measured: they hold
/// names from the config and errors from upstreams.
fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(String::from);
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| row.clone().map(|c| escape_line(&c).into_owned()))
        .collect();
    let rows = rows.as_slice();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line.join("  ").trim_end());
    }
    out
}
