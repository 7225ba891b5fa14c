//! Budgets → [`Budget`]: `router_settings.provider_budget_config`, a deployment's
//! `litellm_params.max_budget` / `budget_duration`, and our own `llmux.budget`.
//!
//! The section parsers hand over the value and its path; this module reads the dollar limit
//! and the period (`30s`, `15m`, `1h`, `1d`, `7d`, `2w`, `1mo`, as LiteLLM's
//! `duration_in_seconds` writes them) and answers a [`Budget`], or an error at the offending
//! value's line and column. A budget half written (a limit without a period) is a warning in
//! LiteLLM's sections and an error in ours.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::values::{Ctx, describe, entries, quote, untag};
use crate::config::positions::child;
use crate::config::{Budget, BudgetPeriod, ConfigError, Deployment};
use crate::money::Usd;

/// Seconds per unit of a period; a month counts as 30 days (LiteLLM's `mo`).
const UNITS: &[(&str, u64)] = &[
    ("mo", 30 * 86_400),
    ("s", 1),
    ("m", 60),
    ("h", 3_600),
    ("d", 86_400),
    ("w", 7 * 86_400),
];
/// Where provider budgets are written.
const PROVIDER_BUDGETS: &str = "router_settings.provider_budget_config";
/// What a period looks like, for error messages.
const PERIOD_EXAMPLES: &str = "30s, 15m, 1h, 1d, 7d, 2w or 1mo";

/// Why a period as written is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("expected a period like {examples}", examples = PERIOD_EXAMPLES)]
    NoNumber,
    #[error("unknown unit '{0}'; expected a period like {examples}", examples = PERIOD_EXAMPLES)]
    UnknownUnit(String),
    #[error("a budget period must be longer than zero")]
    Zero,
}

/// Parses a period as written (`7d`); the error says what is wrong.
pub fn parse_period(text: &str) -> Result<BudgetPeriod, PeriodError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| PeriodError::NoNumber)?;
    let Some((_, secs)) = UNITS.iter().find(|(u, _)| *u == unit.trim()) else {
        return Err(PeriodError::UnknownUnit(unit.to_string()));
    };
    if n == 0 {
        return Err(PeriodError::Zero);
    }
    Ok(BudgetPeriod {
        length: Duration::from_secs(n.saturating_mul(*secs)),
        text: t.to_string(),
    })
}

/// A period value (`budget_duration`, `time_period`, `period`).
pub fn period(ctx: &mut Ctx, v: &Value, path: &str) -> Result<Option<BudgetPeriod>, ConfigError> {
    let text = match untag(v) {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        other => {
            return Err(ctx.error(
                path,
                format!(
                    "{path} must be a period like {PERIOD_EXAMPLES}, not {}",
                    describe(other)
                ),
            ));
        }
    };
    parse_period(&text)
        .map(Some)
        .map_err(|why| ctx.error(path, format!("{path}: {} — {why}", quote(&text))))
}

/// A limit in dollars (`max_budget`, `budget_limit`, `limit`).
pub fn limit(ctx: &mut Ctx, v: &Value, path: &str) -> Result<Option<Usd>, ConfigError> {
    let Some(dollars) = ctx.non_negative(v, path)? else {
        return Ok(None);
    };
    Usd::from_dollars_f64(dollars).map(Some).ok_or_else(|| {
        ctx.error(
            path,
            format!("{path} is too large a dollar amount ({dollars})"),
        )
    })
}

/// A deployment's `max_budget` and `budget_duration` (either may be absent).
pub fn deployment_budget(
    ctx: &mut Ctx,
    params: &Mapping,
    params_path: &str,
) -> Result<Option<Budget>, ConfigError> {
    let limit_path = child(params_path, "max_budget");
    let period_path = child(params_path, "budget_duration");
    let max = match params.get("max_budget") {
        Some(v) => limit(ctx, v, &limit_path)?,
        None => None,
    };
    let duration = match params.get("budget_duration") {
        Some(v) => period(ctx, v, &period_path)?,
        None => None,
    };
    match (max, duration) {
        (Some(limit), Some(period)) => Ok(Some(Budget { limit, period })),
        (Some(_), None) => {
            ctx.warn(
                &limit_path,
                format!("{limit_path} has no budget_duration next to it; add one (e.g. budget_duration: 1d) — the budget is ignored"),
            );
            Ok(None)
        }
        (None, Some(_)) => {
            ctx.warn(
                &period_path,
                format!("{period_path} has no max_budget next to it; the budget is ignored"),
            );
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

/// `provider_budget_config: {openai: {budget_limit: 50, time_period: 1d}, ...}`.
pub fn provider_budgets(
    ctx: &mut Ctx,
    v: &Value,
    path: &str,
) -> Result<BTreeMap<String, Budget>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(out);
    };
    for (provider, v) in entries(map) {
        let p = child(path, &provider);
        let Some(m) = ctx.mapping(v, &p)? else {
            continue;
        };
        let (mut lim, mut per) = (None, None);
        for (key, v) in entries(m) {
            let kp = child(&p, &key);
            match key.as_str() {
                "budget_limit" | "max_budget" => lim = limit(ctx, v, &kp)?,
                "time_period" | "budget_duration" => per = period(ctx, v, &kp)?,
                _ => ctx.unimplemented(&kp),
            }
        }
        match (lim, per) {
            (Some(limit), Some(period)) => {
                out.insert(provider, Budget { limit, period });
            }
            (None, _) => {
                return Err(ctx.error(
                    &p,
                    format!("{p} has no budget_limit (dollars per time_period)"),
                ));
            }
            (_, None) => {
                return Err(ctx.error(&p, format!("{p} has no time_period (e.g. time_period: 1d)")));
            }
        }
    }
    Ok(out)
}

/// Our `llmux.budget: {limit: 20, period: 30d}`; both keys are required.
pub fn app_budget(ctx: &mut Ctx, v: &Value, path: &str) -> Result<Option<Budget>, ConfigError> {
    let Some(map) = ctx.mapping(v, path)? else {
        return Ok(None);
    };
    let (mut lim, mut per) = (None, None);
    for (key, v) in entries(map) {
        let kp = child(path, &key);
        match key.as_str() {
            "limit" => lim = limit(ctx, v, &kp)?,
            "period" => per = period(ctx, v, &kp)?,
            _ => {
                let at = ctx.pos.key(&kp);
                ctx.warn_at(at, format!("{kp} is not a known llmux setting; ignored"));
            }
        }
    }
    match (lim, per) {
        (Some(limit), Some(period)) => Ok(Some(Budget { limit, period })),
        (None, _) => Err(ctx.error(
            path,
            format!("{path} needs limit (dollars per period), e.g. {{limit: 20, period: 30d}}"),
        )),
        (_, None) => Err(ctx.error(
            path,
            format!(
                "{path} needs period (30s, 1h, 1d, 7d, 30d, 1mo), e.g. {{limit: 20, period: 30d}}"
            ),
        )),
    }
}

/// Warns about each provider budget that no deployment's provider matches (a typo would
/// otherwise leave spend uncapped without a word).
pub fn check_providers(
    ctx: &mut Ctx,
    budgets: &BTreeMap<String, Budget>,
    deployments: &[Deployment],
) {
    for provider in budgets.keys() {
        if !deployments.iter().any(|d| &d.provider == provider) {
            let path = child(PROVIDER_BUDGETS, provider);
            let at = ctx.pos.key(&path);
            let known: Vec<&str> = deployments
                .iter()
                .map(|d| d.provider.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            ctx.warn_at(
                at,
                format!("{path}: no deployment in model_list has provider '{provider}' (providers: {}); this budget caps nothing", known.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_as_litellm_writes_them() {
        let secs = |t: &str| parse_period(t).map(|p| p.length.as_secs());
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("1h"), Ok(3_600));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert_eq!(secs("1mo"), Ok(2_592_000));
        assert_eq!(parse_period(" 30d ").map(|p| p.text), Ok("30d".to_string()));
        assert_eq!(parse_period("0d").map(|p| p.text), Err(PeriodError::Zero));
        let unit = parse_period("1y").unwrap_err();
        assert_eq!(unit, PeriodError::UnknownUnit("y".into()));
        assert_eq!(
            unit.to_string(),
            "unknown unit 'y'; expected a period like 30s, 15m, 1h, 1d, 7d, 2w or 1mo"
        );
        assert!(parse_period("daily").is_err());
        assert!(parse_period("d").is_err());
    }
}
