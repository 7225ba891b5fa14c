//! Deployments of a LiteLLM provider llmux does not speak (`bedrock/`, `vertex_ai/`, …): that
//! one deployment is unavailable with a warning naming it and the provider, the rest of the
//! config loads and routes, and the router never calls it.

use llmux::config::*;
use llmux::router::{ChatOutcome, RouteError, RouteEventKind, Router, RouterOptions};

use super::{fixture, warnings};
use crate::support;

#[test]
fn an_unspoken_provider_makes_only_its_deployment_unavailable() {
    let cfg = fixture("unspoken_provider.yaml", &[]);
    assert_eq!(cfg.groups, ["fast", "claude"]);
    let fast = &cfg.deployments[0];
    assert_eq!(fast.unavailable, None);
    let claude = &cfg.deployments[1];
    assert_eq!(
        (claude.group.as_str(), claude.provider.as_str()),
        ("claude", "bedrock")
    );
    assert_eq!(claude.model, "anthropic.claude-3-5-sonnet-20240620-v1:0");
    let why = "llmux does not speak LiteLLM's bedrock provider \
               (model_list[1] 'claude', bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0)";
    assert_eq!(claude.unavailable.as_deref(), Some(why));
    assert_eq!(
        warnings(&cfg),
        [format!(
            "6:14: {why}; the deployment is unavailable, the rest of the config works (call it \
             through a LiteLLM proxy with litellm_proxy/, or an OpenAI-compatible endpoint with \
             openai/ and api_base)"
        )]
    );
}

/// A group `g` of a mock deployment and one deployment of each provider in `unspoken`, and a
/// group `only` of a bedrock deployment alone.
fn mixed(unspoken: &[&str]) -> String {
    let mut yaml = String::from(
        "model_list:\n  - model_name: g\n    litellm_params: {model: mock/ok, mock_response: hi, mock_ttft_ms: 1}\n",
    );
    for provider in unspoken {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: {provider}/some-model, api_key: os.environ/SURELY_UNSET_{provider}}}\n"
        ));
    }
    yaml.push_str("  - model_name: only\n    litellm_params: {model: bedrock/amazon.nova-pro-v1:0, aws_region_name: us-east-1}\n");
    yaml
}

const UNSPOKEN: &[&str] = &["bedrock", "vertex_ai", "huggingface", "cohere", "sagemaker"];

#[test]
fn every_unspoken_provider_is_named_and_its_variables_are_not_read() {
    let cfg = load_str(&mixed(UNSPOKEN), None).unwrap();
    assert_eq!(cfg.deployments.len(), UNSPOKEN.len() + 2);
    for (d, provider) in cfg.deployments[1..].iter().zip(UNSPOKEN) {
        assert_eq!(d.provider, *provider);
        let why = d.unavailable.as_deref().unwrap();
        assert!(
            why.starts_with(&format!(
                "llmux does not speak LiteLLM's {provider} provider"
            )),
            "{why}"
        );
    }
    // One warning each: none about the unset key variables of deployments never called.
    assert_eq!(cfg.warnings.len(), UNSPOKEN.len() + 1, "{:?}", cfg.warnings);
    assert!(
        cfg.warnings
            .iter()
            .all(|w| !w.message.contains("SURELY_UNSET"))
    );
}

/// One request to the end: its outcome and the deployments it attempted, in order.
async fn run(router: &Router, group: &str) -> (Result<ChatOutcome, RouteError>, Vec<String>) {
    let run = support::run(router, group, support::ask("q")).await;
    let attempted = run
        .events
        .into_iter()
        .filter(|e| e.kind == RouteEventKind::Attempt);
    (run.result, attempted.filter_map(|e| e.deployment).collect())
}

#[tokio::test(start_paused = true)]
async fn the_router_never_picks_an_unspoken_deployment() {
    let options = RouterOptions {
        seed: Some(3),
        ..RouterOptions::default()
    };
    let router = support::router_with(&mixed(UNSPOKEN), options);
    for _ in 0..40 {
        let (result, attempted) = run(&router, "g").await;
        assert_eq!(result.unwrap().deployment, "mock/ok");
        assert_eq!(attempted, ["mock/ok"], "only the mock is ever tried");
    }
    // A group with nothing else says why when asked for, without trying anything.
    let (result, attempted) = run(&router, "only").await;
    let err = result.unwrap_err();
    assert!(
        err.message
            .contains("llmux does not speak LiteLLM's bedrock provider"),
        "{}",
        err.message
    );
    assert!(attempted.is_empty(), "{attempted:?}");
}
