//! The answer's badges say what happened: "retried" only when a group was tried again after a
//! failure (a fallback to another group is "fell back", not a retry), in the TUI and in the
//! router's outcome (`ask --json`'s `retried`).

use llmux::provider::{ChatRequest, ErrorClass};
use llmux::router::{ChatEvent, ChatOutcome, FallbackReason, RouteEventKind, Router};

use super::{Harness, outcome, route};

async fn answer(router: &Router, group: &str) -> ChatOutcome {
    let run = crate::support::run(router, group, ChatRequest::new(Vec::new())).await;
    run.outcome().clone()
}

fn router(retries: u32) -> Router {
    let yaml = format!(
        r#"
model_list:
  - model_name: a
    litellm_params: {{ model: mock/a-broken, mock_error: 503, mock_error_rate: 1.0, order: 1 }}
  - model_name: a
    litellm_params: {{ model: mock/a-ok, mock_response: hi, order: 2 }}
  - model_name: lone
    litellm_params: {{ model: mock/lone-broken, mock_error: 503, mock_error_rate: 1.0 }}
  - model_name: b
    litellm_params: {{ model: mock/b-ok, mock_response: hi }}
router_settings:
  num_retries: {retries}
  fallbacks: [{{ lone: [b] }}]
"#
    );
    crate::support::router(&yaml)
}

#[tokio::test]
async fn the_router_calls_a_fallback_no_retry() {
    let fell = answer(&router(0), "lone").await;
    assert!(fell.fell_back && !fell.retried, "{fell:?}");
    let retried = answer(&router(1), "a").await;
    assert!(retried.attempts.len() >= 2, "{retried:?}");
    assert!(retried.retried && !retried.fell_back, "{retried:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fallback_without_a_retry_has_no_retried_badge() {
    let mut h = Harness::new(160, 48);
    let (tag, _, _) = h.send("hi");
    let events = [
        route(1, "fast", Some("fast-flaky"), 1, 5, RouteEventKind::Attempt),
        route(
            1,
            "fast",
            Some("fast-flaky"),
            1,
            9,
            RouteEventKind::Failure {
                class: ErrorClass::Server,
                status: Some(503),
                message: "down".into(),
                after_tokens: false,
            },
        ),
        route(
            1,
            "local",
            None,
            0,
            10,
            RouteEventKind::Fallback {
                from: "fast".into(),
                to: "local".into(),
                reason: FallbackReason::Failed,
            },
        ),
        route(
            1,
            "local",
            Some("local-small"),
            2,
            11,
            RouteEventKind::Attempt,
        ),
    ];
    for ev in events {
        h.chat(tag, 1, ChatEvent::route(ev)).await;
    }
    let mut o = outcome("Hello", "local", "local-small", 20, 40, 2, Some(1));
    o.fell_back = true;
    h.chat(tag, 30, ChatEvent::finished(Ok(o))).await;
    let s = h.screen();
    assert!(s.contains(" fell back ") && !s.contains(" retried "), "{s}");

    // A retry event (another attempt in the same group) earns it.
    let (tag, _, _) = h.send("again");
    h.chat(
        tag,
        1,
        ChatEvent::route(route(
            2,
            "fast",
            Some("fast-flaky"),
            1,
            1,
            RouteEventKind::Retry { delay_ms: 0 },
        )),
    )
    .await;
    let o = outcome("Hello again", "fast", "fast-steady", 20, 40, 2, Some(1));
    h.chat(tag, 30, ChatEvent::finished(Ok(o))).await;
    assert!(h.screen().contains(" retried "));
}
