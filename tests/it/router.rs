//! Router behaviour over real HTTP against fake upstreams: retries, Retry-After, cooldowns,
//! fallbacks, mid-stream failover, deadlines, limits, cancellation; and every strategy over
//! many calls on the built-in mock provider (no network, paused time).

use std::collections::HashMap;
use std::time::Duration;

use llmux::config::load_str;
use llmux::provider::ErrorClass;
use llmux::router::{
    ChatEvent, ChatOutcome, FallbackReason, RouteError, RouteErrorKind, RouteEvent, RouteEventKind,
    Router, RouterOptions,
};

use crate::support::{self, ask, deployment, router, router_on};
use crate::upstream::{FakeUpstream, Net, Reply, ResetGate, net_test};

mod errors;

/// Runs one request to the end, returning its outcome and every route event it emitted.
async fn run(
    router: &Router,
    model: &str,
    text: &str,
) -> (Result<ChatOutcome, RouteError>, Vec<RouteEvent>) {
    let run = support::run(router, model, ask(text)).await;
    (run.result, run.events)
}

fn kinds(events: &[RouteEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e.kind {
            RouteEventKind::Request { .. } => "request",
            RouteEventKind::Attempt => "attempt",
            RouteEventKind::FirstToken { .. } => "first_token",
            RouteEventKind::Failure { .. } => "failure",
            RouteEventKind::Cooldown { .. } => "cooldown",
            RouteEventKind::Retry { .. } => "retry",
            RouteEventKind::Unavailable { .. } => "unavailable",
            RouteEventKind::Fallback { .. } => "fallback",
            RouteEventKind::MidStream { .. } => "mid_stream",
            RouteEventKind::Done { .. } => "done",
            RouteEventKind::Failed { .. } => "failed",
            RouteEventKind::Cancelled => "cancelled",
            RouteEventKind::Spent { .. } => "spent",
            RouteEventKind::SharedState { .. } => "shared_state",
            RouteEventKind::Budget { .. } => "budget",
        })
        .collect()
}

net_test!(server_errors_are_retried_num_retries_times_then_fall_back);
async fn server_errors_are_retried_num_retries_times_then_fall_back(net: Net) {
    let bad = FakeUpstream::start_on(net, vec![Reply::status(503)]).await;
    let good = FakeUpstream::start_on(
        net,
        vec![Reply::openai_stream(&["fine", " thanks"], Some((5, 2)))],
    )
    .await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 2\n  fallbacks: [{{a: [b]}}]\n",
        deployment("a", "a1", &bad.url, ""),
        deployment("b", "b1", &good.url, "")
    );
    let r = router_on(net, &yaml);
    let (result, events) = run(&r, "a", "hi").await;
    let outcome = result.expect("the fallback answers");
    assert_eq!(bad.calls(), 3, "one call and num_retries=2 retries");
    assert_eq!(good.calls(), 1);
    assert_eq!(outcome.text, "fine thanks");
    assert_eq!(outcome.group, "b");
    assert!(outcome.fell_back && outcome.retried);
    assert_eq!(outcome.attempts.len(), 4);
    assert_eq!(outcome.usage.input, 5);
    assert_eq!(outcome.usage.output, 2);
    let k = kinds(&events);
    assert_eq!(k.iter().filter(|k| **k == "retry").count(), 2);
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        RouteEventKind::Fallback { from, to, reason: FallbackReason::Failed } if from == "a" && to == "b"
    )));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        RouteEventKind::Failure {
            class: ErrorClass::Server,
            status: Some(503),
            ..
        }
    )));
}

net_test!(retry_after_is_waited_out_on_a_groups_only_deployment);
async fn retry_after_is_waited_out_on_a_groups_only_deployment(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::status(429).retry_after("1"),
            Reply::openai_stream(&["ok"], Some((1, 1))),
        ],
    )
    .await;
    let yaml = format!("model_list:\n{}", deployment("a", "a1", &up.url, ""));
    let r = router_on(net, &yaml);
    let started = tokio::time::Instant::now();
    let (result, events) = run(&r, "a", "hi").await;
    assert_eq!(result.expect("second attempt answers").text, "ok");
    assert_eq!(up.calls(), 2);
    let delay = events.iter().find_map(|e| match e.kind {
        RouteEventKind::Retry { delay_ms } => Some(delay_ms),
        _ => None,
    });
    assert!(
        delay.is_some_and(|d| d >= 1000),
        "the retry waits for Retry-After: {delay:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the wait really happened"
    );
    assert!(
        !kinds(&events).contains(&"cooldown"),
        "a 429 does not cool a group's only deployment"
    );
}

net_test!(a_cooled_deployment_is_skipped_and_comes_back_after_cooldown_time);
async fn a_cooled_deployment_is_skipped_and_comes_back_after_cooldown_time(net: Net) {
    let flaky = FakeUpstream::start_on(
        net,
        vec![
            Reply::status(429),
            Reply::openai_stream(&["from a"], Some((1, 1))),
        ],
    )
    .await;
    let steady =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["from b"], Some((1, 1)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  cooldown_time: 5\n",
        deployment("g", "a", &flaky.url, "      order: 1\n"),
        deployment("g", "b", &steady.url, "      order: 2\n"),
    );
    let r = router_on(net, &yaml);
    let (first, events) = run(&r, "g", "hi").await;
    assert_eq!(
        first.unwrap().text,
        "from b",
        "the 429 moved the request to b"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, RouteEventKind::Cooldown { secs, .. } if *secs == 5.0))
    );
    for _ in 0..5 {
        let (r2, _) = run(&r, "g", "hi").await;
        assert_eq!(r2.unwrap().deployment, "b", "a is cooling down");
    }
    assert_eq!(flaky.calls(), 1);
    let status = r.deployments();
    assert!(
        status
            .iter()
            .find(|d| d.id == "a")
            .unwrap()
            .health
            .cooling_for
            .is_some()
    );

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(6)).await;
    tokio::time::resume();
    let (back, _) = run(&r, "g", "hi").await;
    assert_eq!(
        back.unwrap().deployment,
        "a",
        "a is back after cooldown_time and has the lower order"
    );
    assert_eq!(flaky.calls(), 2);
}

net_test!(a_group_whose_every_deployment_is_cooling_says_so_at_once);
async fn a_group_whose_every_deployment_is_cooling_says_so_at_once(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::status(401)]).await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  cooldown_time: 30\n",
        deployment("a", "a1", &up.url, "")
    );
    let r = router_on(net, &yaml);
    let (first, _) = run(&r, "a", "hi").await;
    let err = first.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::Rejected, "auth is not retried");
    assert_eq!(up.calls(), 1);
    let (second, events) = run(&r, "a", "hi").await;
    let err = second.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::Unavailable);
    assert_eq!(up.calls(), 1, "no call while cooling");
    let left = err.retry_in.expect("says when it is free");
    assert!(left > Duration::from_secs(25) && left <= Duration::from_secs(30));
    assert!(kinds(&events).contains(&"unavailable"));
    assert!(err.message.contains("cooling down"), "{}", err.message);
}

net_test!(a_stream_cut_mid_answer_continues_on_the_fallback_with_the_partial_text_kept);
async fn a_stream_cut_mid_answer_continues_on_the_fallback_with_the_partial_text_kept(net: Net) {
    let gate = ResetGate::new("The answer is forty");
    let cut = FakeUpstream::start_on(
        net,
        vec![
            Reply::openai_stream(&["The answer", " is", " forty"], None)
                .reset_after_shown(4, gate.clone()),
        ],
    )
    .await;
    let rescue =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["-two."], Some((30, 2)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\nllmux:\n  mid_stream_failover: continue\n",
        deployment("a", "a1", &cut.url, ""),
        deployment("b", "b1", &rescue.url, "")
    );
    let r = router_on(net, &yaml);
    let run = support::run_releasing(&r, "a", ask("what is it?"), &gate).await;
    assert_eq!(run.restarts, 0, "continue never restarts");
    let shown = run.deltas.concat();
    let outcome = run.result.expect("the fallback continues");
    assert_eq!(outcome.text, "The answer is forty-two.");
    assert_eq!(shown, outcome.text, "what was shown is what is kept");
    assert!(outcome.continued && outcome.fell_back);
    let body = &rescue.bodies()[0];
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[msgs.len() - 2]["role"], "assistant");
    assert_eq!(msgs[msgs.len() - 2]["content"], "The answer is forty");
    assert!(
        outcome.usage.estimated,
        "the cut stream's tokens are counted as estimated"
    );
    assert!(outcome.usage.output >= 2);
}

net_test!(restart_mode_discards_the_partial_answer);
async fn restart_mode_discards_the_partial_answer(net: Net) {
    let gate = ResetGate::new("wrong start");
    let cut = FakeUpstream::start_on(
        net,
        vec![Reply::openai_stream(&["wrong", " start"], None).reset_after_shown(3, gate.clone())],
    )
    .await;
    let rescue =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["right"], Some((1, 1)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\nllmux:\n  mid_stream_failover: restart\n",
        deployment("a", "a1", &cut.url, ""),
        deployment("b", "b1", &rescue.url, "")
    );
    let r = router_on(net, &yaml);
    let run = support::run_releasing(&r, "a", ask("q"), &gate).await;
    assert_eq!(run.restarts, 1);
    assert_eq!(run.outcome().text, "right");
}

net_test!(off_mode_fails_with_the_partial_answer_kept);
async fn off_mode_fails_with_the_partial_answer_kept(net: Net) {
    let gate = ResetGate::new("half");
    let cut = FakeUpstream::start_on(
        net,
        vec![Reply::openai_stream(&["half"], None).reset_after_shown(2, gate.clone())],
    )
    .await;
    let rescue = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["never"], None)]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  fallbacks: [{{a: [b]}}]\nllmux:\n  mid_stream_failover: off\n",
        deployment("a", "a1", &cut.url, ""),
        deployment("b", "b1", &rescue.url, "")
    );
    let r = router_on(net, &yaml);
    let err = support::run_releasing(&r, "a", ask("q"), &gate)
        .await
        .result
        .unwrap_err();
    assert_eq!(err.partial_text, "half");
    assert_eq!(rescue.calls(), 0);
    assert_eq!(cut.calls(), 1, "off: no retry after tokens were shown");
}

net_test!(malformed_and_truncated_streams_are_protocol_failures_that_fall_back);
async fn malformed_and_truncated_streams_are_protocol_failures_that_fall_back(net: Net) {
    for broken in [
        Reply::sse(vec!["data: {not json\n\n".to_string()]),
        Reply::sse(vec![
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n".to_string(),
        ]),
    ] {
        let bad = FakeUpstream::start_on(net, vec![broken]).await;
        let good =
            FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], Some((1, 1)))]).await;
        let yaml = format!(
            "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\n",
            deployment("a", "a1", &bad.url, ""),
            deployment("b", "b1", &good.url, "")
        );
        let r = router_on(net, &yaml);
        let (result, events) = run(&r, "a", "q").await;
        assert_eq!(result.unwrap().text, "ok");
        assert!(
            events.iter().any(|e| matches!(
                e.kind,
                RouteEventKind::Failure {
                    class: ErrorClass::Protocol,
                    ..
                }
            )),
            "{events:#?}"
        );
    }
}

net_test!(the_context_window_pre_check_routes_before_any_call);
async fn the_context_window_pre_check_routes_before_any_call(net: Net) {
    let small = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["small"], None)]).await;
    let long =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["long"], Some((1, 1)))]).await;
    let yaml = format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{ model: openai/x, api_base: '{}' }}\n    model_info: {{ max_input_tokens: 100 }}\n  - model_name: big\n    litellm_params: {{ model: openai/y, api_base: '{}' }}\n    model_info: {{ max_input_tokens: 100000 }}\nrouter_settings:\n  context_window_fallbacks: [{{a: [big]}}]\n",
        small.url, long.url
    );
    let r = router_on(net, &yaml);
    let (result, events) = run(&r, "a", &"word ".repeat(400)).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.text, "long");
    assert!(
        outcome.fell_back,
        "skipping the group before any call is still a fallback"
    );
    assert_eq!(
        small.calls(),
        0,
        "nothing is sent to a deployment the prompt does not fit"
    );
    assert!(events.iter().any(|e| matches!(
        e.kind,
        RouteEventKind::Fallback {
            reason: FallbackReason::ContextWindow,
            ..
        }
    )));
    // A short prompt still goes to the small one.
    let (short, _) = run(&r, "a", "hi").await;
    assert_eq!(short.unwrap().group, "a");
}

net_test!(a_deployment_at_its_rpm_limit_is_skipped);
async fn a_deployment_at_its_rpm_limit_is_skipped(net: Net) {
    let limited =
        FakeUpstream::start_on(net, vec![Reply::openai_stream(&["a"], Some((1, 1)))]).await;
    let other = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["b"], Some((1, 1)))]).await;
    let yaml = format!(
        "model_list:\n{}{}",
        deployment(
            "g",
            "limited",
            &limited.url,
            "      rpm: 2\n      order: 1\n"
        ),
        deployment("g", "other", &other.url, "      order: 2\n"),
    );
    let r = router_on(net, &yaml);
    let mut by = HashMap::new();
    for _ in 0..5 {
        let (res, _) = run(&r, "g", "q").await;
        *by.entry(res.unwrap().deployment).or_insert(0) += 1;
    }
    assert_eq!(by.get("limited"), Some(&2));
    assert_eq!(by.get("other"), Some(&3));
    assert_eq!(limited.calls(), 2);
}

net_test!(stream_timeout_bounds_the_wait_for_the_first_token);
async fn stream_timeout_bounds_the_wait_for_the_first_token(net: Net) {
    let stalled = FakeUpstream::start_on(
        net,
        vec![Reply::openai_stream(&["late"], None).first_byte_after(Duration::from_secs(30))],
    )
    .await;
    let good = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], Some((1, 1)))]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\n",
        deployment("a", "a1", &stalled.url, "      stream_timeout: 0.2\n"),
        deployment("b", "b1", &good.url, "")
    );
    let r = router_on(net, &yaml);
    let (result, events) = run(&r, "a", "q").await;
    assert_eq!(result.unwrap().text, "ok");
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        RouteEventKind::Failure { class: ErrorClass::Timeout, message, .. } if message.contains("stream_timeout")
    )));
}

net_test!(dropping_the_stream_closes_the_upstream_connection);
async fn dropping_the_stream_closes_the_upstream_connection(net: Net) {
    let drip = FakeUpstream::start_on(
        net,
        vec![
            Reply::openai_stream(&["one", " two", " three", " four", " five"], None)
                .delay_each(Duration::from_millis(200)),
        ],
    )
    .await;
    let yaml = format!("model_list:\n{}", deployment("a", "a1", &drip.url, ""));
    let r = router_on(net, &yaml);
    let mut events = r.subscribe();
    let mut stream = r.chat("a", ask("q"));
    loop {
        if let Some(ChatEvent::Delta(_)) = stream.next_event().await {
            break;
        }
    }
    drop(stream);
    drip.wait_disconnect().await;
    loop {
        let ev = events.recv().await.unwrap();
        if ev.kind == RouteEventKind::Cancelled {
            break;
        }
    }
}

#[tokio::test]
async fn an_unknown_model_names_the_known_groups() {
    let r = router("model_list:\n  - model_name: fast\n    litellm_params: { model: mock/x }\n");
    let (result, _) = run(&r, "nope", "q").await;
    let err = result.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::UnknownModel);
    assert!(err.message.contains("fast"));
}

net_test!(a_deployment_with_a_missing_key_variable_fails_without_a_call);
async fn a_deployment_with_a_missing_key_variable_fails_without_a_call(net: Net) {
    let up = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["x"], None)]).await;
    let yaml = format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{ model: openai/x, api_base: '{}', api_key: os.environ/LLMUX_TEST_SURELY_UNSET_VAR }}\n",
        up.url
    );
    let r = router_on(net, &yaml);
    let (result, _) = run(&r, "a", "q").await;
    let err = result.unwrap_err();
    assert!(
        err.message.contains("LLMUX_TEST_SURELY_UNSET_VAR"),
        "{}",
        err.message
    );
    assert_eq!(up.calls(), 0);
}

// ---- strategies, on the mock provider (no network, so paused time is safe) ----

fn mock_group(strategy: &str, deployments: &[(&str, &str)]) -> String {
    let mut yaml = String::from("model_list:\n");
    for (id, extra) in deployments {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params:\n      model: mock/{id}\n      mock_response: hi\n      mock_ttft_ms: 10\n{extra}"
        ));
    }
    yaml.push_str(&format!(
        "router_settings:\n  routing_strategy: {strategy}\n"
    ));
    yaml
}

async fn tally(r: &Router, n: usize) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for _ in 0..n {
        let (res, _) = run(r, "g", "q").await;
        *by.entry(res.unwrap().deployment).or_insert(0) += 1;
    }
    by
}

#[tokio::test(start_paused = true)]
async fn simple_shuffle_follows_weights() {
    let r = router(&mock_group(
        "simple-shuffle",
        &[
            ("heavy", "      weight: 3\n"),
            ("light", "      weight: 1\n"),
        ],
    ));
    let by = tally(&r, 400).await;
    let heavy = by["mock/heavy"] as f64 / 400.0;
    assert!(
        (0.65..0.85).contains(&heavy),
        "weight 3:1 gives ~75%: {by:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn order_tiers_come_before_the_strategy() {
    let r = router(&mock_group(
        "simple-shuffle",
        &[
            ("backup", "      order: 2\n      weight: 100\n"),
            ("primary", "      order: 1\n"),
        ],
    ));
    let by = tally(&r, 50).await;
    assert_eq!(by.get("mock/primary"), Some(&50), "{by:?}");
}

#[tokio::test(start_paused = true)]
async fn least_busy_spreads_concurrent_requests_evenly() {
    let r = router(&mock_group("least-busy", &[("a", ""), ("b", "")]));
    // All ten are in flight at once: each pick sees the others' in-flight counts.
    let streams: Vec<_> = (0..10).map(|_| r.chat("g", ask("q"))).collect();
    let mut by = HashMap::new();
    for s in streams {
        *by.entry(s.finish().await.unwrap().deployment).or_insert(0) += 1;
    }
    assert_eq!(by.get("mock/a"), Some(&5), "{by:?}");
    assert_eq!(by.get("mock/b"), Some(&5), "{by:?}");
}

#[tokio::test(start_paused = true)]
async fn latency_based_prefers_the_fastest_first_token() {
    let yaml = mock_group(
        "latency-based-routing",
        &[
            ("slow", "      mock_ttft_ms: 900\n"),
            ("quick", "      mock_ttft_ms: 50\n"),
        ],
    )
    .replace(
        "      mock_ttft_ms: 10\n      mock_ttft_ms",
        "      mock_ttft_ms",
    );
    let r = router(&yaml);
    let by = tally(&r, 30).await;
    assert!(
        by.get("mock/quick").copied().unwrap_or(0) >= 28,
        "after one sample each, the quick one wins: {by:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn routing_strategy_args_widen_and_age_the_latency_ranking() {
    let group = |args: &str| {
        mock_group(
            "latency-based-routing",
            &[
                ("slow", "      mock_ttft_ms: 120\n"),
                ("quick", "      mock_ttft_ms: 100\n"),
            ],
        )
        .replace(
            "      mock_ttft_ms: 10\n      mock_ttft_ms",
            "      mock_ttft_ms",
        ) + args
    };
    // Within half the lowest latency of each other, both are picked among at random.
    let wide = router(&group(
        "  routing_strategy_args: {lowest_latency_buffer: 0.5}\n",
    ));
    let by = tally(&wide, 40).await;
    assert!(
        by.get("mock/slow").copied().unwrap_or(0) >= 10,
        "the buffer spreads the load: {by:?}"
    );
    // Samples older than ttl are forgotten: each deployment counts as untried again, and
    // untried ones go first, so after a pause the slow one is picked once more.
    let aging = router(&group("  routing_strategy_args: {ttl: 30}\n"));
    let before = tally(&aging, 10).await;
    assert!(
        before.get("mock/quick").copied().unwrap_or(0) >= 8,
        "{before:?}"
    );
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    let after = tally(&aging, 2).await;
    assert_eq!(after.get("mock/slow"), Some(&1), "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn cost_based_picks_the_cheapest() {
    let r = router(&mock_group(
        "cost-based-routing",
        &[
            (
                "pricey",
                "      input_cost_per_token: 0.00001\n      output_cost_per_token: 0.00003\n",
            ),
            (
                "cheap",
                "      input_cost_per_token: 0.0000001\n      output_cost_per_token: 0.0000002\n",
            ),
        ],
    ));
    let by = tally(&r, 20).await;
    assert_eq!(by.get("mock/cheap"), Some(&20), "{by:?}");
}

#[tokio::test(start_paused = true)]
async fn usage_based_spreads_by_headroom() {
    let r = router(&mock_group(
        "usage-based-routing-v2",
        &[("small", "      rpm: 10\n"), ("large", "      rpm: 100\n")],
    ));
    let by = tally(&r, 40).await;
    let small = by.get("mock/small").copied().unwrap_or(0);
    assert!(
        (2..=6).contains(&small),
        "the small one takes about a tenth of the traffic: {by:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn mock_failures_cool_down_after_allowed_fails() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: { model: mock/bad, mock_error: 500, mock_error_rate: 1.0, order: 1 }\n  - model_name: g\n    litellm_params: { model: mock/good, mock_response: ok, order: 2 }\nrouter_settings:\n  allowed_fails: 2\n  cooldown_time: 10\n";
    let r = router(yaml);
    let mut cooled = false;
    for _ in 0..4 {
        let (res, events) = run(&r, "g", "q").await;
        assert_eq!(res.unwrap().deployment, "mock/good");
        cooled |= kinds(&events).contains(&"cooldown");
    }
    assert!(cooled);
    let bad = r
        .deployments()
        .into_iter()
        .find(|d| d.id == "mock/bad")
        .unwrap();
    assert!(bad.health.cooling_for.is_some());
}

net_test!(every_retry_honours_the_latest_retry_after);
async fn every_retry_honours_the_latest_retry_after(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![
            Reply::status(429).retry_after("0.1"),
            Reply::status(429).retry_after("1.2"),
            Reply::openai_stream(&["ok"], Some((1, 1))),
        ],
    )
    .await;
    let yaml = format!("model_list:\n{}", deployment("a", "a1", &up.url, ""));
    let r = router_on(net, &yaml);
    let (result, events) = run(&r, "a", "hi").await;
    assert_eq!(result.unwrap().text, "ok");
    let delays: Vec<u64> = events
        .iter()
        .filter_map(|e| match e.kind {
            RouteEventKind::Retry { delay_ms } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2);
    assert!(
        delays[0] < 1000,
        "the first wait is the backoff: {delays:?}"
    );
    assert!(
        delays[1] >= 1200,
        "the second wait follows the second Retry-After (LiteLLM #20722): {delays:?}"
    );
}

#[tokio::test]
async fn costs_come_from_the_pricing_file_and_unknown_prices_stay_unknown() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], Some((1000, 500)))]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prices.json"),
        r#"{"sample_spec": {"input_cost_per_token": 0}, "my-house-model": {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008, "max_input_tokens": 8000}}"#,
    )
    .unwrap();
    let yaml = format!(
        "model_list:\n  - model_name: priced\n    litellm_params: {{ model: openai/my-house-model, api_base: '{url}' }}\n  - model_name: unpriced\n    litellm_params: {{ model: openai/nobody-knows-me, api_base: '{url}' }}\nllmux:\n  pricing_file: prices.json\n",
        url = up.url
    );
    let cfg = load_str(&yaml, Some(&dir.path().join("config.yaml"))).unwrap();
    let r = support::router_from(cfg, RouterOptions::default());
    let (priced, _) = run(&r, "priced", "q").await;
    // 1000 × $0.000002 + 500 × $0.000008 = $0.006, exactly.
    assert_eq!(
        priced.unwrap().cost,
        Some(llmux::metrics::Usd::from_pico(6_000_000_000))
    );
    let (unpriced, events) = run(&r, "unpriced", "q").await;
    assert_eq!(
        unpriced.unwrap().cost,
        None,
        "an unknown price is unknown, not $0"
    );
    let done = events
        .iter()
        .find(|e| matches!(e.kind, RouteEventKind::Done { .. }))
        .unwrap();
    assert!(done.describe().contains("cost unknown"));
}
