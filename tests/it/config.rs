//! Tests: config. Real-world LiteLLM configs (tests/fixtures/configs/) load with what they
//! mean resolved and one warning per unimplemented key; bad input is an error at
//! `path:line:col`; no input panics; secrets stay out of `Debug`.

use std::path::Path;
use std::time::Duration;

use llmux::config::*;

mod errors;
mod misplaced;
mod props;
mod router_settings;
mod unspoken;

const FIXTURES: &str = "tests/fixtures/configs";

/// A stand-in environment: every variable is set except those listed.
pub(super) fn env_without(missing: &'static [&'static str]) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        if missing.contains(&name) {
            None
        } else {
            Some(format!("secret-{name}-0123456789"))
        }
    }
}

fn fixture(name: &str, missing: &'static [&'static str]) -> Config {
    let path = Path::new(FIXTURES).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let env = env_without(missing);
    load_str_with_env(&text, Some(&path), &env).unwrap_or_else(|e| panic!("{e}"))
}

/// Warnings as `line:col: message`, in order.
pub(super) fn warnings(cfg: &Config) -> Vec<String> {
    cfg.warnings
        .iter()
        .map(|w| format!("{}:{}: {}", w.line.unwrap(), w.column.unwrap(), w.message))
        .collect()
}

fn dep<'a>(cfg: &'a Config, id: &str) -> &'a Deployment {
    cfg.deployments
        .iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| panic!("no deployment {id}"))
}

fn chains(pairs: &[(&str, &[&str])]) -> std::collections::BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

/// The error for `text` as if read from `bad.yaml`, or "loaded".
pub(super) fn err(text: &str) -> String {
    load_str_with_env(text, Some(Path::new("bad.yaml")), &env_without(&[]))
        .map(|_| "loaded".to_string())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn proxy_docs_config_loads_azure_and_openai_with_one_warning_per_unimplemented_key() {
    let cfg = fixture("proxy_docs.yaml", &["REDIS_PASSWORD"]);
    assert_eq!(
        cfg.groups,
        ["gpt-4o", "gpt-3.5-turbo", "text-embedding-ada-002"]
    );
    assert_eq!(cfg.deployments.len(), 5);
    assert!(!cfg.is_demo);
    assert_eq!(
        cfg.source.as_deref(),
        Some(Path::new(FIXTURES).join("proxy_docs.yaml").as_path())
    );

    let eu = dep(&cfg, "azure/gpt-4o-eu");
    assert_eq!(
        (eu.group.as_str(), eu.provider.as_str()),
        ("gpt-4o", "azure")
    );
    assert_eq!(eu.wire, Wire::Azure);
    assert_eq!(eu.model, "gpt-4o-eu");
    assert_eq!(eu.api_base, "https://my-endpoint-europe.openai.azure.com");
    assert_eq!(eu.api_version.as_deref(), Some("2024-08-01-preview"));
    assert_eq!(
        eu.api_key.as_ref().unwrap().expose(),
        "secret-AZURE_API_KEY_EU-0123456789"
    );
    assert_eq!(eu.rpm, Some(6));
    assert_eq!(eu.base_model.as_deref(), Some("azure/gpt-4o"));
    assert!(eu.unavailable.is_none() && eu.mock.is_none());
    // No api_version given: Azure gets the default.
    let ca = dep(&cfg, "azure/gpt-4o-ca");
    assert_eq!(ca.api_version.as_deref(), Some(AZURE_DEFAULT_API_VERSION));

    let oai = dep(&cfg, "openai/gpt-4o");
    assert_eq!(
        (oai.wire, oai.api_base.as_str()),
        (Wire::OpenAi, "https://api.openai.com/v1")
    );
    assert_eq!(
        oai.api_key.as_ref().unwrap().expose(),
        "sk-fixture-literal-0123456789abcdef"
    );
    assert_eq!(oai.api_version, None);
    let emb = dep(&cfg, "azure/azure-embedding-model");
    assert_eq!(emb.api_base, "secret-AZURE_API_BASE-0123456789");

    let r = &cfg.router;
    assert_eq!(r.strategy, Strategy::UsageBased);
    assert_eq!(r.num_retries, 3);
    assert_eq!(r.timeout, Duration::from_secs(30));
    assert!(r.drop_params && r.enable_pre_call_checks);
    assert_eq!(r.fallbacks, chains(&[("gpt-3.5-turbo", &["gpt-4o"])]));
    assert_eq!(
        (r.allowed_fails, r.cooldown_time),
        (DEFAULT_ALLOWED_FAILS, DEFAULT_COOLDOWN)
    );
    // environment_variables wins over the process environment; the missing password is None.
    let redis = r.redis.as_ref().unwrap();
    assert_eq!((redis.host.as_str(), redis.port), ("redis.internal", 6380));
    assert!(redis.password.is_none() && redis.url.is_none());
    // The response cache: Redis at cache_params.host, the port from REDIS_PORT as in LiteLLM.
    match &r.cache.as_ref().unwrap().backend {
        llmux::config::CacheBackend::Redis(c) => {
            assert_eq!((c.host.as_str(), c.port), ("redis.internal", 6380));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cfg.master_key.as_ref().unwrap().expose(),
        "sk-1234-fixture-master"
    );

    assert_eq!(
        warnings(&cfg),
        [
            // langfuse is sent (its keys are set), prometheus is /metrics, sentry is not.
            "41:22: litellm_settings.failure_callback: callback 'sentry' is not implemented by \
             llmux (it sends otel and langfuse); ignored",
            "43:3: litellm_settings.set_verbose is not implemented by llmux; ignored",
            "55:19: environment variable REDIS_PASSWORD is not set; router_settings.redis_password is ignored",
            "61:3: general_settings.database_url is not implemented by llmux; ignored",
            "62:3: general_settings.alerting is not implemented by llmux; ignored",
            "63:3: general_settings.proxy_batch_write_at is not implemented by llmux; ignored",
        ]
    );
}

#[test]
fn secrets_never_reach_debug_output() {
    let cfg = fixture("proxy_docs.yaml", &[]);
    let debug = format!("{cfg:?}");
    for secret in [
        "sk-fixture-literal-0123456789abcdef",
        "sk-1234-fixture-master",
        "secret-AZURE_API_KEY_EU-0123456789",
        "secret-REDIS_PASSWORD-0123456789",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
    assert!(debug.contains("[redacted]"));
}

#[test]
fn plain_list_fallbacks_aliases_retry_policy_and_string_numbers() {
    let cfg = fixture("plain_fallbacks.yaml", &[]);
    assert_eq!(cfg.groups, ["fast", "smart", "local", "long"]);
    // model_info.id wins; the same model twice gets #2.
    let ids: Vec<&str> = cfg.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "groq-fast",
            "groq/llama-3.1-8b-instant",
            "groq/llama-3.1-8b-instant#2",
            "openai/gpt-4o",
            "mistral/mistral-large-latest",
            "ollama/llama3.1",
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ]
    );
    let fast = dep(&cfg, "groq-fast");
    assert_eq!((fast.rpm, fast.tpm), (Some(30), Some(6000)));
    assert_eq!(fast.timeout, Some(Duration::from_secs(20)));
    assert_eq!(fast.stream_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(fast.api_base, "https://api.groq.com/openai/v1");
    assert_eq!(dep(&cfg, "groq/llama-3.1-8b-instant").weight, Some(2.0));
    let smart = dep(&cfg, "openai/gpt-4o");
    assert_eq!(smart.order, Some(1));
    // litellm_params wins over model_info; model_info fills the rest.
    assert_eq!(smart.input_cost_per_token, Some(0.0000025));
    assert_eq!(smart.output_cost_per_token, Some(0.00001));
    assert_eq!(smart.max_input_tokens, Some(128_000));
    // ollama/ speaks OpenAI under /v1 of the given server.
    let local = dep(&cfg, "ollama/llama3.1");
    assert_eq!(
        (local.wire, local.api_base.as_str()),
        (Wire::OpenAi, "http://gpu-box:11434/v1")
    );
    assert_eq!(local.model, "llama3.1");
    let long = dep(&cfg, "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo");
    assert_eq!(long.model, "meta-llama/Llama-3.3-70B-Instruct-Turbo");

    let r = &cfg.router;
    assert_eq!(r.strategy, Strategy::LatencyBased);
    // router_settings overrides litellm_settings.
    assert_eq!(r.num_retries, 4);
    assert_eq!(
        (r.allowed_fails, r.cooldown_time),
        (2, Duration::from_secs(30))
    );
    assert_eq!(r.timeout, Duration::from_secs(45));
    assert_eq!(r.retry_after, Duration::from_millis(500));
    assert_eq!(r.max_fallbacks, 3);
    assert!(r.fallbacks.is_empty());
    assert_eq!(r.default_fallbacks, ["smart", "local"]);
    // An alias as a fallback key is stored under its group.
    assert_eq!(
        r.context_window_fallbacks,
        chains(&[("fast", &["long"]), ("smart", &["long"])])
    );
    assert_eq!(
        r.retry_policy,
        RetryPolicy {
            authentication: Some(0),
            timeout: Some(3),
            rate_limit: Some(5),
            not_found: Some(0),
            ..RetryPolicy::default()
        }
    );
    assert_eq!(
        r.model_group_alias.get("gpt-4").map(String::as_str),
        Some("smart")
    );
    assert_eq!(
        r.model_group_alias.get("cheap").map(String::as_str),
        Some("fast")
    );
    assert_eq!(cfg.resolve_group("cheap"), Some("fast"));

    let app = &cfg.app;
    assert_eq!(app.default_model.as_deref(), Some("cheap"));
    assert_eq!(app.favorites, ["fast", "smart", "gpt-4"]);
    assert_eq!(app.mid_stream_failover, MidStreamFailover::Restart);
    assert_eq!(
        app.pricing_file.as_deref(),
        Some(
            Path::new(FIXTURES)
                .join("prices/model_prices.json")
                .as_path()
        )
    );
    assert_eq!(app.keys.get("new_chat").map(String::as_str), Some("ctrl+n"));
    assert!(app.mouse);

    assert_eq!(
        warnings(&cfg),
        [
            "61:14: router_settings.fallbacks is a plain list of model groups; read as one \
             fallback chain [smart, local] for every group; write [{group: [fallback, ...]}] \
             to be explicit",
            "75:35: llmux.favorites: 'gone' is not a model group in model_list; ignored",
            "80:3: llmux.colour is not a known llmux setting; ignored",
        ]
    );
}

#[test]
fn multi_provider_config_resolves_families_and_unprefixed_names() {
    let cfg = fixture("multi_provider.yaml", &["DEEPSEEK_API_KEY"]);
    // id (= the model as written), provider, wire, provider model id, base URL.
    let got: Vec<String> = cfg
        .deployments
        .iter()
        .map(|d| {
            assert_eq!(d.litellm_model, d.id);
            let wire = format!("{:?}", d.wire);
            [d.id.as_str(), &d.provider, &wire, &d.model, &d.api_base].join(" ")
        })
        .collect();
    let want = "\
claude-3-5-sonnet-20241022 anthropic Anthropic claude-3-5-sonnet-20241022 https://api.anthropic.com
anthropic/claude-3-5-sonnet-20241022 anthropic Anthropic claude-3-5-sonnet-20241022 https://anthropic-gateway.internal
gpt-4o openai OpenAi gpt-4o https://api.openai.com/v1
o3-mini openai OpenAi o3-mini https://api.openai.com/v1
gemini/gemini-1.5-pro gemini Gemini gemini-1.5-pro https://generativelanguage.googleapis.com
gemini-1.5-flash gemini Gemini gemini-1.5-flash https://generativelanguage.googleapis.com
ollama_chat/qwen2.5:7b ollama_chat OllamaChat qwen2.5:7b http://localhost:11434
openrouter/anthropic/claude-3.5-haiku openrouter OpenAi anthropic/claude-3.5-haiku https://openrouter.ai/api/v1
deepseek/deepseek-reasoner deepseek OpenAi deepseek-reasoner https://api.deepseek.com/v1
deepseek-chat deepseek OpenAi deepseek-chat https://api.deepseek.com/v1
groq/llama-3.3-70b-versatile groq OpenAi llama-3.3-70b-versatile https://api.groq.com/openai/v1
xai/grok-2-latest xai OpenAi grok-2-latest https://api.x.ai/v1
qwen/qwen-max dashscope OpenAi qwen-max https://dashscope-intl.aliyuncs.com/compatible-mode/v1
glm/glm-4-plus zhipu OpenAi glm-4-plus https://open.bigmodel.cn/api/paas/v4
litellm_proxy/gpt-4o litellm_proxy OpenAi gpt-4o https://litellm.team.example.com
hosted_vllm/meta-llama/Llama-3.1-8B-Instruct hosted_vllm OpenAi meta-llama/Llama-3.1-8B-Instruct http://vllm:8000/v1";
    assert_eq!(got, want.lines().collect::<Vec<_>>());
    let claude = dep(&cfg, "claude-3-5-sonnet-20241022");
    assert_eq!(claude.max_tokens, Some(4096));
    assert_eq!(claude.cache_read_input_token_cost, Some(3e-7));
    assert_eq!(dep(&cfg, "gpt-4o").temperature, Some(0.2));
    assert_eq!(
        dep(&cfg, "litellm_proxy/gpt-4o")
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "secret-TEAM_PROXY_KEY-0123456789"
    );
    assert!(dep(&cfg, "ollama_chat/qwen2.5:7b").api_key.is_none());
    // A missing variable makes that deployment unavailable; the load goes on.
    assert_eq!(
        dep(&cfg, "deepseek-chat").unavailable.as_deref(),
        Some(
            "environment variable DEEPSEEK_API_KEY is not set (model_list[9] 'reasoner', deepseek-chat)"
        )
    );
    assert!(dep(&cfg, "deepseek-chat").api_key.is_none());
    assert!(dep(&cfg, "gpt-4o").unavailable.is_none());

    let r = &cfg.router;
    assert_eq!(r.strategy, Strategy::CostBased);
    assert_eq!(
        r.fallbacks,
        chains(&[("claude", &["gpt", "router"]), ("gpt", &["claude"])])
    );
    assert_eq!(r.content_policy_fallbacks, chains(&[("claude", &["gpt"])]));
    assert_eq!(r.default_fallbacks, ["local"]);
    assert_eq!(r.num_retries, DEFAULT_NUM_RETRIES);
    assert_eq!(
        cfg.master_key.as_ref().unwrap().expose(),
        "secret-LLMUX_MASTER_KEY-0123456789"
    );

    assert_eq!(
        warnings(&cfg),
        [
            "42:16: environment variable DEEPSEEK_API_KEY is not set (model_list[8] 'reasoner', \
             deepseek/deepseek-reasoner); the deployment is unavailable",
            "46:16: environment variable DEEPSEEK_API_KEY is not set (model_list[9] 'reasoner', \
             deepseek-chat); the deployment is unavailable",
            "75:3: litellm_settings.modify_params is not implemented by llmux; ignored",
            "76:3: litellm_settings.json_logs is not implemented by llmux; ignored",
        ]
    );
}

#[test]
fn demo_config_loads_mock_deployments() {
    let cfg = demo().unwrap();
    assert!(cfg.is_demo && cfg.source.is_none());
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_eq!(cfg.groups, ["fast", "smart", "local"]);
    assert!(
        cfg.deployments
            .iter()
            .all(|d| d.wire == Wire::Mock && d.api_key.is_none())
    );
    let flaky = dep(&cfg, "mock/fast-flaky");
    let mock = flaky.mock.as_ref().unwrap();
    assert_eq!((mock.tokens, mock.tokens_per_s), (80, 90.0));
    assert_eq!(mock.ttft, Duration::from_millis(150));
    assert_eq!((mock.error, mock.error_rate), (Some(503), 0.33));
    assert_eq!(dep(&cfg, "mock/smart-slow").max_input_tokens, Some(200_000));
    assert_eq!(cfg.router.cooldown_time, Duration::from_secs(10));
    assert_eq!(
        cfg.router.fallbacks,
        chains(&[("fast", &["local"]), ("smart", &["local"])])
    );
    assert_eq!(cfg.app.default_model.as_deref(), Some("fast"));
}

#[test]
fn environment_variables_section_is_an_overlay_and_fills_keys() {
    let text = "\
environment_variables:
  MY_KEY: from-the-config
model_list:
  - model_name: a
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/MY_KEY}
";
    let cfg = load_str_with_env(text, None, &|_| Some("from-the-process".to_string())).unwrap();
    assert_eq!(
        cfg.deployments[0].api_key.as_ref().unwrap().expose(),
        "from-the-config"
    );
    assert!(cfg.warnings.is_empty());
}

#[test]
fn an_api_base_from_a_missing_variable_makes_the_deployment_unavailable() {
    let text = "\
model_list:
  - model_name: a
    litellm_params:
      model: azure/gpt-4o
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      base_model: azure/gpt-4o-2024-08-06
";
    let cfg = load_str_with_env(text, None, &env_without(&["AZURE_API_BASE"])).unwrap();
    let d = &cfg.deployments[0];
    assert_eq!(
        d.unavailable.as_deref(),
        Some("environment variable AZURE_API_BASE is not set (model_list[0] 'a', azure/gpt-4o)")
    );
    assert_eq!(d.api_base, "");
    assert_eq!(d.base_model.as_deref(), Some("azure/gpt-4o-2024-08-06"));
    assert_eq!(
        warnings(&cfg),
        [
            "5:17: environment variable AZURE_API_BASE is not set (model_list[0] 'a', azure/gpt-4o); \
          the deployment is unavailable"
        ]
    );
}

#[test]
fn mock_keys_and_ids_and_wildcards() {
    let text = "\
model_list:
  - model_name: m
    litellm_params: {model: mock/a, mock_response: hi, mock_ttft_ms: '20', mock_error_rate: 0}
  - model_name: m
    litellm_params: {model: mock/a}
    model_info: {id: mock/a#2}
  - model_name: m
    litellm_params: {model: mock/a}
  - model_name: w
    litellm_params: {model: openai/*}
  - model_name: o
    litellm_params: {model: openai/gpt-4o, mock_response: nope}
";
    let cfg = load_str_with_env(text, None, &env_without(&[])).unwrap();
    let ids: Vec<&str> = cfg.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["mock/a", "mock/a#2", "mock/a#3", "openai/gpt-4o"]);
    let m = cfg.deployments[0].mock.as_ref().unwrap();
    assert_eq!(m.response.as_deref(), Some("hi"));
    assert_eq!(m.ttft, Duration::from_millis(20));
    assert_eq!(m.tokens, MockParams::default().tokens);
    assert_eq!(cfg.groups, ["m", "o"]);
    assert_eq!(
        warnings(&cfg),
        [
            "10:29: model_list[3] 'w' (openai/*): wildcard deployments are not implemented by llmux; ignored",
            "12:44: model_list[4].litellm_params.mock_response only applies to mock/ deployments; ignored",
        ]
    );
}

#[test]
fn anchors_and_merge_keys_work() {
    let text = "\
x-defaults: &defaults
  api_key: os.environ/K
  rpm: 10
model_list:
  - model_name: a
    litellm_params:
      <<: *defaults
      model: openai/gpt-4o
";
    let cfg = load_str_with_env(text, None, &env_without(&[])).unwrap();
    assert_eq!(cfg.deployments[0].rpm, Some(10));
    assert_eq!(
        cfg.deployments[0].api_key.as_ref().unwrap().expose(),
        "secret-K-0123456789"
    );
    assert_eq!(
        warnings(&cfg),
        ["1:1: x-defaults is not implemented by llmux; ignored"]
    );
}
