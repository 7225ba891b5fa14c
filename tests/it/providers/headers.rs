//! `litellm_params.headers`, `extra_headers` and `organization` go upstream on every wire, as
//! LiteLLM sends them: the two header maps merged (`extra_headers` wins a name both set),
//! over llmux's own headers except Anthropic's auth and version (its beta list is joined),
//! `OpenAI-Organization` only where LiteLLM's generic OpenAI client sends it; and a value
//! an upstream echoes back never reaches an error message.

use llmux::router::{ChatOutcome, RouteError, Router};

use crate::support;
use crate::upstream::{FakeUpstream, Net, Reply, net_test};

/// The value of an `os.environ/` header, set through the config's `environment_variables`.
const GATEWAY_TOKEN: &str = "tok-from-env-0123456789";

fn entry(group: &str, model: &str, base: &str, params: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: {model}\n      api_base: {base}\n      api_key: sk-{group}-key\n{params}"
    )
}

const MERGED: &str = "      headers: {X-Team: blue, X-Both: from-headers}\n      extra_headers: {X-Both: from-extra, X-Gateway: os.environ/GATEWAY}\n";

async fn ask(router: &Router, group: &str) -> Result<ChatOutcome, RouteError> {
    support::run(router, group, support::ask("hi")).await.result
}

fn router(net: Net, entries: &[String]) -> Router {
    let yaml = format!(
        "environment_variables:\n  GATEWAY: {GATEWAY_TOKEN}\nmodel_list:\n{}router_settings:\n  num_retries: 0\n",
        entries.concat()
    );
    support::router_on(net, &yaml)
}

net_test!(configured_headers_and_organization_go_upstream_on_every_wire);
async fn configured_headers_and_organization_go_upstream_on_every_wire(net: Net) {
    let oa = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], Some((1, 1)))]).await;
    let az = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], Some((1, 1)))]).await;
    let gq = FakeUpstream::start_on(net, vec![Reply::openai_stream(&["ok"], Some((1, 1)))]).await;
    let an =
        FakeUpstream::start_on(net, vec![Reply::anthropic_stream(&["ok"], Some((1, 1)))]).await;
    let ge = FakeUpstream::start_on(net, vec![Reply::gemini_stream(&["ok"], Some((1, 1)))]).await;
    let ol = FakeUpstream::start_on(net, vec![Reply::ollama_stream(&["ok"], Some((1, 1)))]).await;
    let org = "      organization: org-llmux\n";
    let router = router(
        net,
        &[
            entry(
                "oa",
                "openai/gpt-4o-mini",
                &format!("{}/v1", oa.url),
                &format!("{org}{MERGED}"),
            ),
            entry("az", "azure/gpt-4o", &az.url, &format!("{org}{MERGED}")),
            entry("gq", "groq/llama", &gq.url, &format!("{org}{MERGED}")),
            entry(
                "an",
                "anthropic/claude-x",
                &an.url,
                "      headers: {anthropic-beta: beta-from-config, x-api-key: not-this-one}\n      extra_headers: {X-Team: blue}\n",
            ),
            entry("ge", "gemini/gemini-x", &ge.url, MERGED),
            entry(
                "ol",
                "ollama_chat/llama3",
                &ol.url,
                "      extra_headers: {Authorization: Bearer gateway-of-ollama}\n",
            ),
        ],
    );
    for group in ["oa", "az", "gq", "an", "ge", "ol"] {
        ask(&router, group)
            .await
            .unwrap_or_else(|e| panic!("{group}: {e}"));
    }
    for (up, org) in [
        (&oa, Some("org-llmux")),
        (&az, None),
        (&gq, None),
        (&ge, None),
    ] {
        let h = &up.headers()[0];
        assert_eq!(h["x-team"], "blue");
        assert_eq!(
            h["x-both"], "from-extra",
            "extra_headers wins a name both set"
        );
        assert_eq!(h["x-gateway"], GATEWAY_TOKEN, "os.environ/ values are read");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(
            h.get("openai-organization").map(|v| v.to_str().unwrap()),
            org,
            "{}",
            up.url
        );
    }
    assert_eq!(oa.headers()[0]["authorization"], "Bearer sk-oa-key");
    assert_eq!(az.headers()[0]["api-key"], "sk-az-key");
    let h = &an.headers()[0];
    assert_eq!(h["x-api-key"], "sk-an-key", "Anthropic's own auth stays");
    assert_eq!(h["anthropic-beta"], "beta-from-config");
    assert_eq!(h["x-team"], "blue");
    assert_eq!(
        ol.headers()[0]["authorization"],
        "Bearer gateway-of-ollama",
        "a configured Authorization replaces the key's, as LiteLLM's Ollama client lets it"
    );
}

net_test!(a_header_value_an_upstream_echoes_never_reaches_an_error);
async fn a_header_value_an_upstream_echoes_never_reaches_an_error(net: Net) {
    let up = FakeUpstream::start_on(
        net,
        vec![Reply::raw(
            401,
            "application/json",
            vec![format!(
                r#"{{"error":{{"message":"bad gateway token {GATEWAY_TOKEN}"}}}}"#
            )],
        )],
    )
    .await;
    let router = router(
        net,
        &[entry(
            "oa",
            "openai/gpt-4o-mini",
            &format!("{}/v1", up.url),
            MERGED,
        )],
    );
    let e = ask(&router, "oa").await.unwrap_err();
    assert_eq!(up.headers()[0]["x-gateway"], GATEWAY_TOKEN);
    assert!(!e.message.contains(GATEWAY_TOKEN), "{}", e.message);
    assert!(
        e.message.contains("bad gateway token [redacted]"),
        "{}",
        e.message
    );
    let config = format!("{:?}", router.config().deployments[0]);
    assert!(
        !config.contains(GATEWAY_TOKEN),
        "Debug hides header values: {config}"
    );
}
