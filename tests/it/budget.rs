//! Budgets over real HTTP against fake upstreams, priced with `input_cost_per_token` so every
//! spend is exact: a deployment over `max_budget` is skipped (then the group falls back), a
//! provider budget, `llmux.budget` refusing requests (and `serve` answering 429), the 80% and
//! 100% warnings once per period, a period ending (an injected clock), spend seeded from a
//! request log written beforehand, two routers sharing a budget through a real Redis, and that
//! budget kept when Redis restarts empty.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use llmux::metrics::Usd;
use llmux::provider::Usage;
use llmux::router::{
    ChatOutcome, FallbackReason, RouteError, RouteErrorKind, RouteEvent, RouteEventKind, Router,
    RouterOptions, WallClock,
};
use llmux::store::RequestLog;

use crate::shared_state::{RedisServer, back, connected};
use crate::support;
use crate::upstream::{FakeUpstream, Reply};

/// Tokens in per answer; at $0.01 a token each answer costs $4.50.
const TOKENS_IN: u64 = 450;
/// The test clock's start: 2026-01-01 in Unix ms.
const T0: u64 = 1_767_225_600_000;
const HOUR_MS: u64 = 3_600_000;

fn dollars_cents(cents: u64) -> Usd {
    Usd::CENT.times(cents)
}

/// An answer costing $4.50.
fn answer(text: &str) -> Reply {
    Reply::openai_stream(&[text], Some((TOKENS_IN, 0)))
}

/// One OpenAI-wire deployment at a cent a token in (output free); `extra` adds
/// `litellm_params` lines.
fn deployment(group: &str, id: &str, url: &str, extra: &str) -> String {
    let price = "      input_cost_per_token: 0.01\n      output_cost_per_token: 0\n";
    support::deployment(group, id, url, &format!("{price}{extra}"))
}

/// A clock the test moves by hand.
fn manual_clock() -> (WallClock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(T0));
    let read = now.clone();
    (WallClock::from_fn(move || read.load(Ordering::SeqCst)), now)
}

fn router_with(yaml: &str, clock: Option<WallClock>, log: Option<RequestLog>) -> Router {
    let options = RouterOptions {
        clock,
        request_log: log.map(|l| std::sync::Arc::new(l) as _),
        ..RouterOptions::default()
    };
    support::router_with(yaml, options)
}

/// One request to the end: its outcome and every route event it emitted.
async fn run(router: &Router, model: &str) -> (Result<ChatOutcome, RouteError>, Vec<RouteEvent>) {
    let run = support::run(router, model, support::ask("hi")).await;
    (run.result, run.events)
}

/// The (scope, percent) of every budget warning among `events`.
fn warnings(events: &[RouteEvent]) -> Vec<(String, u8)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            RouteEventKind::Budget { scope, percent, .. } => Some((scope.clone(), *percent)),
            _ => None,
        })
        .collect()
}

fn spent(router: &Router, label: &str) -> Usd {
    router
        .budgets()
        .into_iter()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no budget {label}"))
        .spent
}

#[tokio::test]
async fn a_deployment_over_max_budget_is_skipped_with_warnings_once_then_the_group_falls_back() {
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let spare = FakeUpstream::start(vec![answer("spare")]).await;
    let yaml = format!(
        "model_list:\n{}{}",
        deployment(
            "g",
            "capped",
            &capped.url,
            "      max_budget: 10\n      budget_duration: 1d\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
    );
    let (clock, _) = manual_clock();
    let r = router_with(&yaml, Some(clock), None);

    let mut all = Vec::new();
    for _ in 0..3 {
        let (result, events) = run(&r, "g").await;
        assert_eq!(result.unwrap().deployment, "capped");
        all.extend(events);
    }
    // $4.50, $9.00 (90%: the 80% warning), $13.50 (the 100% one).
    let label = "deployment capped".to_string();
    assert_eq!(warnings(&all), [(label.clone(), 80), (label.clone(), 100)]);
    assert_eq!(spent(&r, "deployment capped"), dollars_cents(1350));
    let over = all
        .iter()
        .find(|e| matches!(&e.kind, RouteEventKind::Budget { percent: 100, .. }));
    let line = over.unwrap().describe();
    assert!(
        line.contains("budget deployment capped 100% used up")
            && line.contains("$13.50 of $10.00 for 1d, resets in 1d"),
        "{line}"
    );

    // Over budget: skipped like a cooling deployment, without another warning.
    for _ in 0..2 {
        let (result, events) = run(&r, "g").await;
        assert_eq!(result.unwrap().deployment, "other");
        assert!(warnings(&events).is_empty(), "said once per period");
    }
    assert_eq!(capped.calls(), 3);
    assert_eq!(other.calls(), 2);

    // A group whose only deployment is over budget falls back, saying why.
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  fallbacks: [{{solo: [spare]}}]\n",
        deployment(
            "solo",
            "capped",
            &capped.url,
            "      max_budget: 4\n      budget_duration: 1h\n"
        ),
        deployment("spare", "spare", &spare.url, ""),
    );
    let r = router_with(&yaml, None, None);
    assert_eq!(run(&r, "solo").await.0.unwrap().deployment, "capped");
    let (result, events) = run(&r, "solo").await;
    let outcome = result.unwrap();
    assert_eq!(outcome.deployment, "spare");
    assert!(outcome.fell_back);
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        RouteEventKind::Fallback { reason: FallbackReason::Budget, to, .. } if to == "spare"
    )));
    let unavailable = events
        .iter()
        .find(|e| matches!(e.kind, RouteEventKind::Unavailable { .. }))
        .unwrap()
        .describe();
    assert!(
        unavailable.contains("deployment capped over budget: $4.50 of $4.00 for 1h, resets in"),
        "{unavailable}"
    );
}

#[tokio::test]
async fn a_provider_budget_caps_every_deployment_of_the_provider() {
    let a = FakeUpstream::start(vec![answer("a")]).await;
    let b = FakeUpstream::start(vec![answer("b")]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  provider_budget_config:\n    openai: {{budget_limit: 5, time_period: 1d}}\n",
        deployment("g", "a", &a.url, ""),
        deployment("g", "b", &b.url, ""),
    );
    let (clock, _) = manual_clock();
    let r = router_with(&yaml, Some(clock), None);
    let (first, events) = run(&r, "g").await;
    first.unwrap();
    assert_eq!(warnings(&events), [("openai".to_string(), 80)]);
    run(&r, "g").await.0.unwrap();
    assert_eq!(spent(&r, "openai"), dollars_cents(900));
    // What the TUI's metrics pane and status line show.
    let view = llmux::tui::metrics::StatusView::from_router(&r);
    let alert = view.budget_alert().expect("over 80%");
    assert_eq!((alert.label.as_str(), alert.percent()), ("openai", 180));
    assert_eq!(alert.resets_in_ms, Some(86_400_000));
    let (result, _) = run(&r, "g").await;
    let err = result.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::OverBudget);
    assert_eq!(err.retry_in, Some(Duration::from_secs(86_400)));
    assert!(
        err.message
            .contains("openai over budget: $9.00 of $5.00 for 1d"),
        "{}",
        err.message
    );
    assert_eq!(a.calls() + b.calls(), 2, "nothing is sent over budget");
}

#[tokio::test]
async fn the_app_budget_refuses_every_request_and_serve_answers_429_with_retry_after() {
    let up = FakeUpstream::start(vec![answer("ok")]).await;
    let yaml = format!(
        "model_list:\n{}llmux:\n  budget: {{limit: 4, period: 1h}}\n",
        deployment("g", "d", &up.url, ""),
    );
    let (clock, _) = manual_clock();
    let r = router_with(&yaml, Some(clock), None);
    let (result, events) = run(&r, "g").await;
    result.unwrap();
    assert_eq!(warnings(&events), [("llmux.budget".to_string(), 100)]);
    let (result, _) = run(&r, "g").await;
    let err = result.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::OverBudget);
    assert!(
        err.message
            .starts_with("llmux.budget is used up: $4.50 of $4.00 for 1h; every request is refused until it resets in 1h"),
        "{}",
        err.message
    );
    assert_eq!(up.calls(), 1);

    // The same through serve: 429 and when to come back.
    let server = llmux::serve::spawn(r, crate::serve::options())
        .await
        .unwrap();
    let resp = crate::serve::post(
        &server,
        "/v1/chat/completions",
        &crate::serve::chat("g", "hi"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        crate::serve::header(&resp, "retry-after").as_deref(),
        Some("3600")
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("llmux.budget is used up")),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert_eq!(up.calls(), 1);
    // And what a scraper sees.
    let text = crate::serve::get(&server, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        r#"llmux_budget_spent_usd{scope="llmux.budget",period="1h"} 4.5"#,
        r#"llmux_budget_limit_usd{scope="llmux.budget",period="1h"} 4"#,
        r#"llmux_budget_resets_in_seconds{scope="llmux.budget",period="1h"} 3600"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_budget_resets_when_its_period_ends_and_warns_again_in_the_next() {
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let yaml = format!(
        "model_list:\n{}{}",
        deployment(
            "g",
            "capped",
            &capped.url,
            "      max_budget: 4\n      budget_duration: 30s\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
    );
    let (clock, now) = manual_clock();
    let r = router_with(&yaml, Some(clock), None);
    let (_, events) = run(&r, "g").await;
    assert_eq!(warnings(&events).len(), 1);
    now.fetch_add(29_999, Ordering::SeqCst);
    assert_eq!(run(&r, "g").await.0.unwrap().deployment, "other");
    assert_eq!(r.budgets()[0].resets_in, Some(Duration::from_millis(1)));
    now.fetch_add(1, Ordering::SeqCst);
    assert_eq!(r.budgets()[0].spent, Usd::ZERO, "the window ended");
    let (result, events) = run(&r, "g").await;
    assert_eq!(result.unwrap().deployment, "capped");
    assert_eq!(
        warnings(&events),
        [("deployment capped".to_string(), 100)],
        "a new period warns again"
    );
    assert_eq!(r.budgets()[0].resets_in, Some(Duration::from_secs(30)));
}

/// A line of the request log: request `request_id`'s `kind` on `deployment`.
fn log_line(request_id: u64, deployment: &str, at_unix_ms: u64, kind: RouteEventKind) -> String {
    let ev = RouteEvent {
        request_id,
        group: "g".into(),
        deployment: Some(deployment.into()),
        attempt: 1,
        at_unix_ms,
        elapsed_ms: 10,
        kind,
    };
    serde_json::to_string(&ev).unwrap()
}

/// A `Done` line of the request log.
fn done_line(deployment: &str, at_unix_ms: u64, cost_cents: u64, cached: bool) -> String {
    answered(1, deployment, at_unix_ms, cost_cents, cached)
}

/// Request `request_id` answered by `deployment`, its whole cost `cost_cents`.
fn answered(
    request_id: u64,
    deployment: &str,
    at_unix_ms: u64,
    cost_cents: u64,
    cached: bool,
) -> String {
    let kind = RouteEventKind::Done {
        usage: Usage::default(),
        cost_usd: Some(dollars_cents(cost_cents)),
        ttft_ms: None,
        total_ms: 10,
        finish_reason: None,
        cached,
    };
    log_line(request_id, deployment, at_unix_ms, kind)
}

/// An attempt of request `request_id` on `deployment` that streamed, was cut, and was billed.
fn spent_line(request_id: u64, deployment: &str, at_unix_ms: u64, cost_cents: u64) -> String {
    let kind = RouteEventKind::Spent {
        usage: Usage::default(),
        cost_usd: Some(dollars_cents(cost_cents)),
    };
    log_line(request_id, deployment, at_unix_ms, kind)
}

/// What cut attempts were billed counts after a restart as it did live: on the deployment
/// that streamed them, for requests that failed, were cancelled, or answered elsewhere (whose
/// `Done` carries the whole request's cost: the answering deployment paid only its part).
#[tokio::test]
async fn the_spend_of_cut_attempts_is_seeded_on_their_own_deployments() {
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let lines = [
        // Request 5 was cut on capped ($3) and answered by other ($1 of its own).
        spent_line(5, "capped", T0 - 3 * HOUR_MS, 300),
        answered(5, "other", T0 - 3 * HOUR_MS, 400, false),
        // Request 6 was cut on capped ($2) and then failed; 7 was cancelled mid-answer ($0.50).
        spent_line(6, "capped", T0 - 2 * HOUR_MS, 200),
        spent_line(7, "capped", T0 - HOUR_MS, 50),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let yaml = capped_then_other(
        &capped.url,
        5,
        &other.url,
        "      max_budget: 50\n      budget_duration: 1d\n",
    );
    let (clock, _) = manual_clock();
    let r = router_with(&yaml, Some(clock), Some(RequestLog::open(&path).unwrap()));
    r.budgets_ready().await;
    assert_eq!(spent(&r, "deployment capped"), dollars_cents(550));
    assert_eq!(spent(&r, "deployment other"), dollars_cents(100));
    assert_eq!(spent(&r, "llmux.budget"), dollars_cents(650));
    // capped is over its $5: the request goes to other.
    assert_eq!(run(&r, "g").await.0.unwrap().deployment, "other");
    assert_eq!(capped.calls(), 0);
}

#[tokio::test]
async fn spend_is_seeded_from_the_request_log_at_start() {
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let mut lines = vec![
        // Two days ago: outside the 1d period.
        done_line("capped", T0 - 48 * HOUR_MS, 5_000, false),
        // Cached answers cost nothing.
        done_line("capped", T0 - 2 * HOUR_MS, 0, true),
        done_line("capped", T0 - 3 * HOUR_MS, 700, false),
        "{not json, a torn line".to_string(),
    ];
    // Enough other traffic that the log is read in several chunks from its end.
    for i in 0..2_000 {
        lines.push(done_line("other", T0 - HOUR_MS + i, 1, false));
    }
    lines.push(done_line("capped", T0 - HOUR_MS, 350, false));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let yaml = capped_then_other(&capped.url, 10, &other.url, "");
    let (clock, _) = manual_clock();
    let log = RequestLog::open(&path).unwrap();
    let r = router_with(&yaml, Some(clock), Some(log));
    // The log is read in the background; requests wait for it, and so can we.
    r.budgets_ready().await;
    assert_eq!(spent(&r, "deployment capped"), dollars_cents(1050));
    assert_eq!(spent(&r, "llmux.budget"), dollars_cents(1050 + 2_000));
    let status = r
        .budgets()
        .into_iter()
        .find(|b| b.label == "deployment capped")
        .unwrap();
    // The window began with the first spend of the period, 3 hours ago.
    assert_eq!(status.resets_in, Some(Duration::from_millis(21 * HOUR_MS)));
    assert_eq!(run(&r, "g").await.0.unwrap().deployment, "other");
    assert_eq!(capped.calls(), 0);

    // A request sent at once waits for the replay: it never sees a spend of zero.
    let (clock, _) = manual_clock();
    let r = router_with(&yaml, Some(clock), Some(RequestLog::open(&path).unwrap()));
    assert_eq!(run(&r, "g").await.0.unwrap().deployment, "other");
    assert_eq!(capped.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_a_budget_through_redis() {
    let redis = RedisServer::start().await;
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {}\n",
        deployment(
            "g",
            "capped",
            &capped.url,
            "      max_budget: 8\n      budget_duration: 1d\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
        redis.port
    );
    let a = router_with(&yaml, None, None);
    let b = router_with(&yaml, None, None);
    connected(&a).await;
    connected(&b).await;
    assert_eq!(run(&a, "g").await.0.unwrap().deployment, "capped");
    assert_eq!(run(&b, "g").await.0.unwrap().deployment, "capped");
    assert!(a.sync_budgets().await);
    assert!(b.sync_budgets().await);
    assert!(a.sync_budgets().await);
    // Each spent $4.50: together $9.00 of $8.00.
    assert_eq!(spent(&a, "deployment capped"), dollars_cents(900));
    assert_eq!(spent(&b, "deployment capped"), dollars_cents(900));
    assert_eq!(run(&a, "g").await.0.unwrap().deployment, "other");
    assert_eq!(run(&b, "g").await.0.unwrap().deployment, "other");

    // A third instance starting now sees the fleet's window, not only its own log.
    let c = router_with(&yaml, None, None);
    connected(&c).await;
    assert!(c.sync_budgets().await);
    assert_eq!(spent(&c, "deployment capped"), dollars_cents(900));
    assert_eq!(capped.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_not_spent_twice_when_redis_restarts_empty() {
    let redis = RedisServer::start().await;
    let port = redis.port;
    let capped = FakeUpstream::start(vec![answer("capped")]).await;
    let other = FakeUpstream::start(vec![answer("other")]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {port}\n",
        deployment(
            "g",
            "capped",
            &capped.url,
            "      max_budget: 8\n      budget_duration: 1d\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
    );
    let a = router_with(&yaml, None, None);
    let b = router_with(&yaml, None, None);
    connected(&a).await;
    connected(&b).await;
    let (mut a_events, mut b_events) = (a.subscribe(), b.subscribe());
    assert_eq!(run(&a, "g").await.0.unwrap().deployment, "capped");
    assert_eq!(run(&b, "g").await.0.unwrap().deployment, "capped");
    assert!(a.sync_budgets().await);
    assert!(b.sync_budgets().await);
    assert!(a.sync_budgets().await);
    assert_eq!(spent(&a, "deployment capped"), dollars_cents(900));

    // Restarted empty: the first sync after it writes the fleet's window back.
    redis.kill().await;
    let redis = RedisServer::start_on(port).await;
    back(&mut a_events).await;
    back(&mut b_events).await;
    assert!(a.sync_budgets().await);
    assert!(b.sync_budgets().await);
    assert_eq!(spent(&b, "deployment capped"), dollars_cents(900));
    // A new instance, with no request log of its own, sees it.
    let c = router_with(&yaml, None, None);
    connected(&c).await;
    assert!(c.sync_budgets().await);
    assert_eq!(spent(&c, "deployment capped"), dollars_cents(900));
    assert_eq!(run(&c, "g").await.0.unwrap().deployment, "other");
    assert_eq!(capped.calls(), 2);

    // Restarted empty again, and this time a new instance spends before the others are back:
    // what it started is merged with the window they write back, not replaced by it.
    let mut c_events = c.subscribe();
    redis.kill().await;
    let _redis = RedisServer::start_on(port).await;
    let d = router_with(&yaml, None, None);
    connected(&d).await;
    assert_eq!(run(&d, "g").await.0.unwrap().deployment, "capped");
    assert!(d.sync_budgets().await);
    back(&mut a_events).await;
    back(&mut b_events).await;
    back(&mut c_events).await;
    for r in [&a, &b, &c, &d] {
        assert!(r.sync_budgets().await);
    }
    for r in [&a, &b, &c, &d] {
        assert!(r.sync_budgets().await);
        assert_eq!(spent(r, "deployment capped"), dollars_cents(1350));
    }
    assert_eq!(run(&a, "g").await.0.unwrap().deployment, "other");
    assert_eq!(capped.calls(), 3);
}

/// One mock deployment, then `rest`.
fn with_mock(params: &str, rest: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: openai/gpt-4o-mini\n{params}{rest}"
    )
}

#[test]
fn budgets_load_and_bad_periods_and_limits_are_errors_at_their_position() {
    let cfg = support::config(&with_mock(
        "      max_budget: \"2.5\"\n      budget_duration: 7d\n",
        "router_settings:\n  provider_budget_config:\n    openai: {budget_limit: 50, time_period: 1mo}\nllmux:\n  budget: {limit: 20, period: 30d}\n",
    ));
    let d = cfg.deployments[0].budget.clone().unwrap();
    assert_eq!(d.limit, dollars_cents(250));
    assert_eq!(d.period.length, Duration::from_secs(7 * 86_400));
    let p = &cfg.router.provider_budgets["openai"];
    assert_eq!(p.limit, dollars_cents(5_000));
    assert_eq!(p.period.text, "1mo");
    let app = cfg.app.budget.clone().unwrap();
    assert_eq!(
        (app.limit, app.period.length),
        (dollars_cents(2_000), Duration::from_secs(30 * 86_400))
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

    let err = crate::config::err;
    assert_eq!(
        err(&with_mock(
            "      max_budget: 5\n      budget_duration: 1y\n",
            ""
        )),
        "bad.yaml:6:24: model_list[0].litellm_params.budget_duration: \"1y\" — unknown unit 'y'; expected a period like 30s, 15m, 1h, 1d, 7d, 2w or 1mo"
    );
    assert_eq!(
        err(&with_mock(
            "      max_budget: -5\n      budget_duration: 1d\n",
            ""
        )),
        "bad.yaml:5:19: model_list[0].litellm_params.max_budget must not be negative, not -5"
    );
    assert_eq!(
        err(&with_mock(
            "",
            "router_settings:\n  provider_budget_config:\n    openai: {budget_limit: 5, time_period: 86400}\n"
        )),
        "bad.yaml:7:44: router_settings.provider_budget_config.openai.time_period must be a period like 30s, 15m, 1h, 1d, 7d, 2w or 1mo, not 86400"
    );
    assert_eq!(
        err(&with_mock(
            "",
            "router_settings:\n  provider_budget_config:\n    openai: {budget_limit: 5}\n"
        )),
        "bad.yaml:7:13: router_settings.provider_budget_config.openai has no time_period (e.g. time_period: 1d)"
    );
    assert_eq!(
        err(&with_mock(
            "",
            "llmux:\n  budget: {limit: 20, period: 0d}\n"
        )),
        "bad.yaml:6:31: llmux.budget.period: \"0d\" — a budget period must be longer than zero"
    );
    assert!(
        err(&with_mock("", "llmux:\n  budget: {limit: 20}\n"))
            .starts_with("bad.yaml:6:11: llmux.budget needs period"),
    );

    // Half a budget, or a provider nothing uses: warnings that say what to do.
    let cfg = support::config(&with_mock(
        "      max_budget: 5\n",
        "router_settings:\n  provider_budget_config:\n    opneai: {budget_limit: 5, time_period: 1d}\n",
    ));
    let messages: Vec<&str> = cfg.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(cfg.deployments[0].budget, None);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("max_budget has no budget_duration next to it")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m
                .contains("no deployment in model_list has provider 'opneai' (providers: openai)")),
        "{messages:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_tui_shows_a_budget_warning_on_its_status_line_and_in_the_routing_log() {
    use llmux::tui::action::Action;
    use llmux::tui::app::App;
    use llmux::tui::theme::{ColorDepth, Theme};

    let cfg = llmux::config::demo().unwrap();
    let theme = Theme::builtin_default(ColorDepth::TrueColor);
    let (mut app, _) = App::new(&cfg, theme, tokio::time::Instant::now(), || {
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    });
    let ev = RouteEvent {
        request_id: 4,
        group: "fast".into(),
        deployment: Some("fast-a".into()),
        attempt: 1,
        at_unix_ms: T0,
        elapsed_ms: 5,
        kind: RouteEventKind::Budget {
            scope: "openai".into(),
            spent: dollars_cents(4_000),
            limit: dollars_cents(5_000),
            percent: 80,
            period: "1d".into(),
            resets_in_ms: Some(3 * HOUR_MS),
        },
    };
    app.update(Action::Route(ev.clone()));
    let toast = app.toast.as_ref().expect("a status-line message");
    assert_eq!(
        toast.text,
        "budget openai 80% nearly used ($40.00 of $50.00 for 1d, resets in 3h)"
    );
    assert!(!toast.error);
    assert_eq!(app.log.events.back(), Some(&ev));
}

/// Group `g`: `capped` first (its own daily `max_budget`), then `other` (with `other_params`),
/// under an app budget of $100 a day: the setup of the tests that seed spend from the log.
fn capped_then_other(capped: &str, max_budget: u32, other: &str, other_params: &str) -> String {
    format!(
        "model_list:\n{}{}llmux:\n  budget: {{limit: 100, period: 1d}}\n",
        deployment(
            "g",
            "capped",
            capped,
            &format!("      max_budget: {max_budget}\n      budget_duration: 1d\n      order: 1\n"),
        ),
        deployment(
            "g",
            "other",
            other,
            &format!("{other_params}      order: 2\n")
        ),
    )
}
