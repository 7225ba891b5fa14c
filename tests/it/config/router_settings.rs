//! The router settings that are tables — `retry_policy`, `model_group_retry_policy`,
//! `allowed_fails_policy`, `default_litellm_params`, `routing_strategy_args` — and
//! `disable_cooldowns` and `allowed_fails` as written: read as LiteLLM reads them, with a
//! warning for a key inside them that names nothing llmux reads.

use std::path::Path;
use std::time::Duration;

use llmux::config::*;
use serde_json::json;

use super::{env_without, warnings};

fn load(router_settings: &str) -> Config {
    let text = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{ model: mock/x }}\n  - model_name: h\n    litellm_params: {{ model: mock/y }}\nrouter_settings:\n{router_settings}"
    );
    load_str_with_env(&text, Some(Path::new("c.yaml")), &env_without(&[]))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn policies_are_read_per_exception_type_and_per_group() {
    let cfg = load(
        "  allowed_fails_policy: {InternalServerErrorAllowedFails: 1, BadGatewayErrorAllowedFails: \"2\", SlowErrorAllowedFails: 3}\n  model_group_retry_policy:\n    g: {ServiceUnavailableErrorRetries: 4, DefaultRetries: 1}\n    nope: {TimeoutErrorRetries: 1}\n  disable_cooldowns: true\n",
    );
    let r = &cfg.router;
    assert_eq!(
        r.allowed_fails_policy,
        Some(AllowedFailsPolicy {
            internal_server: Some(1),
            bad_gateway: Some(2),
            ..AllowedFailsPolicy::default()
        })
    );
    assert!(
        r.counts_allowed_fails(),
        "a policy turns the counting rule on"
    );
    assert_eq!(
        r.retry_policy_of("g"),
        &RetryPolicy {
            service_unavailable: Some(4),
            default: Some(1),
            ..RetryPolicy::default()
        }
    );
    assert_eq!(r.retry_policy_of("h"), &r.retry_policy);
    assert!(r.disable_cooldowns);
    assert_eq!(
        warnings(&cfg),
        [
            "7:96: router_settings.allowed_fails_policy.SlowErrorAllowedFails is not implemented by llmux; ignored",
            "10:5: router_settings.model_group_retry_policy: 'nope' is not a model group in model_list; ignored",
        ]
    );
}

#[test]
fn allowed_fails_counts_once_written_even_as_its_default() {
    assert!(!load("  num_retries: 1\n").router.counts_allowed_fails());
    let cfg = load("  allowed_fails: 3\n");
    assert_eq!(cfg.router.allowed_fails, 3);
    assert!(cfg.router.counts_allowed_fails());
}

#[test]
fn default_litellm_params_fill_requests_and_give_the_last_resort_timeouts() {
    let cfg = load(
        "  default_litellm_params: {temperature: 0.2, max_tokens: 64, top_p: 0.9, stop: [\"##\"], timeout: 30, stream_timeout: 4, max_retries: 0, num_retries: 9}\n",
    );
    let r = &cfg.router;
    assert_eq!(r.request_defaults.temperature, Some(0.2));
    assert_eq!(r.request_defaults.max_tokens, Some(64));
    assert_eq!(
        serde_json::Value::Object(r.request_defaults.extra.clone()),
        json!({"top_p": 0.9, "stop": ["##"]})
    );
    assert_eq!(r.timeout, Duration::from_secs(30));
    assert_eq!(r.stream_timeout, Some(Duration::from_secs(4)));
    assert_eq!(
        warnings(&cfg),
        [
            "7:136: router_settings.default_litellm_params.num_retries is not implemented by llmux; ignored"
        ]
    );
    // The router's own timeouts win, wherever they are written.
    let cfg = load(
        "  default_litellm_params: {timeout: 30, stream_timeout: 4}\n  timeout: 90\n  stream_timeout: 9\n",
    );
    assert_eq!(cfg.router.timeout, Duration::from_secs(90));
    assert_eq!(cfg.router.stream_timeout, Some(Duration::from_secs(9)));
}

#[test]
fn routing_strategy_args_are_litellms_latency_arguments() {
    let cfg = load(
        "  routing_strategy: latency-based-routing\n  routing_strategy_args: {ttl: 600, lowest_latency_buffer: 0.5, max_latency_list_size: 20, ttft_percentile: 0.9}\n",
    );
    assert_eq!(
        cfg.router.routing_args,
        RoutingArgs {
            ttl: Duration::from_secs(600),
            lowest_latency_buffer: 0.5,
            max_latency_list_size: 20,
            ttft_percentile: Some(0.9),
        }
    );
    assert!(cfg.warnings.is_empty(), "{:?}", warnings(&cfg));
    let bad = load_str_with_env(
        "model_list:\n  - model_name: g\n    litellm_params: { model: mock/x }\nrouter_settings:\n  routing_strategy_args: {ttft_percentile: 2}\n",
        Some(Path::new("c.yaml")),
        &env_without(&[]),
    )
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "c.yaml:5:44: router_settings.routing_strategy_args.ttft_percentile must be above 0 and at most 1, not 2"
    );
}
