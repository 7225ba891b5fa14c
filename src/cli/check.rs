//! `llmux check` and `llmux models`: what the config says, readable.

use std::path::Path;

use super::{EXIT_OK, EXIT_USAGE, format_warning, load_config};
use crate::config::{self, Config};
use crate::metrics::{Price, PriceTable};

/// Validates the config and prints groups, deployments, fallback chains, prices and warnings.
/// Exit 2 on a bad config or a deployment whose key variable is missing.
pub fn check(flag: Option<&Path>) -> u8 {
    let source = config::locate(flag);
    let cfg = match load_config(flag, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let table = prices(&cfg);
    let origin = match &source {
        config::ConfigSource::File(p) => p.display().to_string(),
        config::ConfigSource::Demo => "the built-in demo config (no config file found)".to_string(),
    };
    println!("config: {origin}");
    println!(
        "router: {} · num_retries {} · allowed_fails {} · cooldown {}s · timeout {}s",
        cfg.router.strategy.name(),
        cfg.router.num_retries,
        cfg.router.allowed_fails,
        cfg.router.cooldown_time.as_secs_f64(),
        cfg.router.timeout.as_secs_f64()
    );
    println!();
    for group in &cfg.groups {
        println!("{group}");
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
            println!("  {} ({}{base}) {price}{notes}", d.id, d.provider);
            if let Some(why) = &d.unavailable {
                println!("    ✗ {why}");
            }
        }
        let chain = fallback_chain(&cfg, group);
        if !chain.is_empty() {
            println!("  fallbacks → {}", chain.join(" → "));
        }
        if let Some(cw) = cfg.router.context_window_fallbacks.get(group) {
            println!("  context-window fallbacks → {}", cw.join(" → "));
        }
        if let Some(cp) = cfg.router.content_policy_fallbacks.get(group) {
            println!("  content-policy fallbacks → {}", cp.join(" → "));
        }
    }
    for (alias, target) in &cfg.router.model_group_alias {
        println!("alias {alias} → {target}");
    }
    if !cfg.warnings.is_empty() {
        println!();
        for w in &cfg.warnings {
            println!("{}", format_warning(&source, w));
        }
    }
    let broken: Vec<_> = cfg
        .deployments
        .iter()
        .filter(|d| d.unavailable.is_some())
        .collect();
    if broken.is_empty() {
        println!(
            "\nok: {} groups, {} deployments",
            cfg.groups.len(),
            cfg.deployments.len()
        );
        EXIT_OK
    } else {
        for d in broken {
            eprintln!(
                "error: deployment {} (group {}): {}",
                d.id,
                d.group,
                d.unavailable.as_deref().unwrap_or("")
            );
        }
        EXIT_USAGE
    }
}

/// Lists model groups and deployments with context window and price per million tokens.
pub fn models(flag: Option<&Path>) -> u8 {
    let cfg = match load_config(flag, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let table = prices(&cfg);
    let rows: Vec<[String; 5]> = cfg
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
                    .map(|p| per_million(p.input))
                    .unwrap_or_else(|| "?".into()),
                price
                    .map(|p| per_million(p.output))
                    .unwrap_or_else(|| "?".into()),
            ]
        })
        .collect();
    let header = ["GROUP", "DEPLOYMENT", "CONTEXT", "$/M IN", "$/M OUT"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    EXIT_OK
}

fn prices(cfg: &Config) -> PriceTable {
    let mut table = PriceTable::builtin();
    if let Some(path) = &cfg.app.pricing_file {
        match PriceTable::load(path) {
            Ok(extra) => table.merge(extra),
            Err(e) => eprintln!("llmux: warning: llmux.pricing_file: {e}"),
        }
    }
    table
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

/// Picodollars per token → dollars per million tokens.
fn per_million(pico_per_token: u64) -> String {
    format!("{:.2}", pico_per_token as f64 / 1e6)
}

fn price_text(price: Option<Price>) -> String {
    match price {
        Some(p) => format!(
            "${} in / ${} out per M",
            per_million(p.input),
            per_million(p.output)
        ),
        None => "price unknown".to_string(),
    }
}
