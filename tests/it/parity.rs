//! The parity table: LiteLLM's own `Router` and llmux on the same configs, against the same
//! fake upstreams, compared by the calls each upstream received and each request's outcome.
//!
//! LiteLLM's figures are what `scripts/parity/litellm_router.py` printed for LiteLLM 1.108.14
//! and 1.110.2 (the same for both unless a row says otherwise; the rows on an HTTP-date
//! Retry-After, `llm_provider-retry-after-ms`, a 403 beside a good deployment, a missing key
//! across cooldowns and the latency strategy were run on 1.110.2 only); each row names the
//! LiteLLM rule they come from. A row where llmux deliberately differs states llmux's figure
//! and why.
//! Outcomes are `ok 'text'`, `err` (the request failed) and `unavailable` (it failed without a
//! call because every deployment was cooling: LiteLLM's `RouterRateLimitError`), with runs
//! of the same outcome written `3x err`.
//!
//! Every row runs on tokio's paused clock: backoffs and cooldowns pass without waiting.

mod rows;
mod serve;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use llmux::router::{ChatOutcome, RouteError, RouteErrorKind, RouteEventKind};
use serde_json::Value;

use self::rows::{Reply, Row, rows};
use crate::support;
use crate::upstream::{self, FakeUpstream, Net};

/// The key every deployment carries.
const KEY: &str = "sk-parity-0123456789";

/// What one row did under llmux.
#[derive(Debug)]
pub struct Observed {
    /// Requests each upstream received.
    pub calls: BTreeMap<&'static str, usize>,
    /// Each request's outcome, in runs.
    pub outcomes: String,
    /// Attempts over all requests (what reaches an upstream, refused or not).
    pub attempts: usize,
    /// The waits before retries, in milliseconds.
    pub waits: Vec<u64>,
    /// The first request body each upstream received.
    pub bodies: BTreeMap<&'static str, Value>,
}

fn reply(r: &Reply) -> upstream::Reply {
    match r {
        Reply::Ok(text) => upstream::Reply::openai_stream(&[text], Some((3, 1))),
        Reply::Status(s) => upstream::Reply::status(*s),
        Reply::Header(s, name, value) => upstream::Reply::status(*s).header(name, value),
        Reply::ContextWindow => upstream::Reply::raw(
            400,
            "application/json",
            vec![
                serde_json::json!({"error": {
                    "message": "This model's maximum context length is 8192 tokens. However, \
                                your messages resulted in 9000 tokens.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded"}})
                .to_string(),
            ],
        ),
        Reply::Slow(ms, text) => upstream::Reply::openai_stream(&[text], Some((3, 1)))
            .first_byte_after(Duration::from_millis(*ms)),
        Reply::RetryAfterDate(s, secs) => upstream::Reply::status(*s).header(
            "retry-after",
            &httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(*secs)),
        ),
    }
}

fn outcome(result: &Result<ChatOutcome, RouteError>) -> String {
    match result {
        Ok(o) => format!("ok '{}'", o.text),
        Err(e) if e.kind == RouteErrorKind::Unavailable && e.attempts.is_empty() => {
            "unavailable".to_string()
        }
        Err(_) => "err".to_string(),
    }
}

/// `["err", "err", "ok 'x'"]` → `"2x err, ok 'x'"`.
fn runs(outcomes: &[String]) -> String {
    let mut runs: Vec<(usize, &str)> = Vec::new();
    for o in outcomes {
        match runs.last_mut() {
            Some((n, last)) if *last == o => *n += 1,
            _ => runs.push((1, o)),
        }
    }
    runs.iter()
        .map(|(n, o)| {
            if *n == 1 {
                o.to_string()
            } else {
                format!("{n}x {o}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_row(row: &Row) -> Observed {
    let mut ups: BTreeMap<&'static str, FakeUpstream> = BTreeMap::new();
    for (name, script) in row.scripts {
        ups.insert(
            name,
            FakeUpstream::start(script.iter().map(reply).collect()).await,
        );
    }
    let refused = support::refused_url(Net::HTTP);
    let mut yaml = String::from("model_list:\n");
    for (group, id, up, extra) in row.deployments {
        let url = match ups.get(up) {
            Some(u) => u.url.clone(),
            None => refused.clone(),
        };
        // A row's own `api_key` (a variable that is not set) replaces the working one.
        let key = if extra.contains("api_key:") {
            String::new()
        } else {
            format!("      api_key: {KEY}\n")
        };
        yaml.push_str(&format!(
            "  - model_name: {group}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {url}\n{key}{extra}    model_info: {{ id: {id} }}\n"
        ));
    }
    yaml.push_str("router_settings:\n");
    yaml.push_str(row.settings);
    let router = support::router(&yaml);
    let mut outcomes = Vec::new();
    let mut attempts = 0;
    let mut waits = Vec::new();
    for i in 0..row.requests {
        if i > 0 && row.gap > 0 {
            tokio::time::sleep(Duration::from_secs(row.gap)).await;
        }
        let run = support::run(&router, row.model, support::ask("what is the fault?")).await;
        for e in &run.events {
            match e.kind {
                RouteEventKind::Attempt => attempts += 1,
                RouteEventKind::Retry { delay_ms } => waits.push(delay_ms),
                _ => {}
            }
        }
        outcomes.push(outcome(&run.result));
    }
    Observed {
        calls: ups.iter().map(|(name, u)| (*name, u.calls())).collect(),
        outcomes: runs(&outcomes),
        attempts,
        waits,
        bodies: ups
            .iter()
            .filter_map(|(name, u)| Some((*name, u.bodies().into_iter().next()?)))
            .collect(),
    }
}

#[tokio::test(start_paused = true)]
async fn llmux_routes_as_litellms_router_does_on_the_same_configs() {
    let rows = rows();
    let mut table =
        String::from("| row | calls (llmux) | outcome (llmux) | LiteLLM |\n|---|---|---|---|\n");
    let mut problems = Vec::new();
    for row in &rows {
        let seen = run_row(row).await;
        let want = row.llmux.as_ref().map_or(&row.litellm, |d| &d.expect);
        let calls: BTreeMap<&str, usize> = want
            .calls
            .iter()
            .copied()
            .filter(|(up, _)| !row.by_luck.contains(up))
            .collect();
        let compared: BTreeMap<&str, usize> = seen
            .calls
            .iter()
            .map(|(up, n)| (*up, *n))
            .filter(|(up, _)| !row.by_luck.contains(up))
            .collect();
        table.push_str(&format!(
            "| {} | {:?} | {} | {:?} {}{} |\n",
            row.name,
            seen.calls,
            seen.outcomes,
            row.litellm.calls,
            row.litellm.outcomes,
            if row.llmux.is_some() {
                " (differs)"
            } else {
                ""
            },
        ));
        if compared != calls {
            problems.push(format!(
                "{}: calls {:?}, expected {calls:?}",
                row.name, seen.calls
            ));
        }
        if !row.outcomes_by_luck && seen.outcomes != want.outcomes {
            problems.push(format!(
                "{}: outcomes {}, expected {}",
                row.name, seen.outcomes, want.outcomes
            ));
        }
        if let Some(n) = want.attempts
            && seen.attempts != n
        {
            problems.push(format!(
                "{}: {} attempts, expected {n}",
                row.name, seen.attempts
            ));
        }
        if let Some(check) = row.check
            && let Err(why) = check(&seen)
        {
            problems.push(format!("{}: {why}", row.name));
        }
    }
    println!("{table}");
    assert!(problems.is_empty(), "{}\n{table}", problems.join("\n"));
}
