//! Prices: LiteLLM's table format, lookups by the names a deployment goes by, config
//! overrides, and what answers cost.

use llmux::config::{Deployment, Wire, load_file};
use llmux::metrics::{Price, PriceTable, Usd};
use llmux::provider::Usage;

use crate::support;

/// A price per token in whole picodollars ($0.0000025 is 2,500,000).
fn pico(n: u64) -> Usd {
    Usd::from_pico(n)
}

/// A deployment as the config loader would resolve `litellm_params.model: {provider}/{model}`.
fn deployment(provider: &str, model: &str) -> Deployment {
    let wire = if provider == "mock" {
        Wire::Mock
    } else {
        Wire::OpenAi
    };
    Deployment {
        api_base: "http://127.0.0.1:9".to_string(),
        mock: None,
        ..Deployment::new("g", provider, wire, model)
    }
}

/// A trimmed copy of LiteLLM's `model_prices_and_context_window.json`, quirks included:
/// the documentation entry, strings where numbers are documented, unknown fields, a model
/// with no prices and provider-prefixed keys.
const LITELLM_SNIPPET: &str = r#"{
    "sample_spec": {
        "code_interpreter_cost_per_session": 0.0,
        "computer_use_input_cost_per_1k_tokens": 0.0,
        "deprecation_date": "date when the model becomes deprecated in the format YYYY-MM-DD",
        "file_search_cost_per_1k_calls": 0.0,
        "input_cost_per_audio_token": 0.0,
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_input_tokens": "max input tokens, if the provider specifies it. if not default to max_tokens",
        "max_output_tokens": "max output tokens, if the provider specifies it. if not default to max_tokens",
        "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it. IF not set to max_input_tokens, if provider specifies it.",
        "mode": "one of: chat, embedding, completion, image_generation, audio_transcription, audio_speech, image_generation, moderation, rerank, search",
        "output_cost_per_reasoning_token": 0.0,
        "output_cost_per_token": 0.0,
        "search_context_cost_per_query": {
            "search_context_size_high": 0.0,
            "search_context_size_low": 0.0,
            "search_context_size_medium": 0.0
        },
        "supported_regions": ["global", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-northeast-1"],
        "supports_audio_input": true,
        "supports_vision": true
    },
    "gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token": 2.5e-06,
        "input_cost_per_token_batches": 1.25e-06,
        "litellm_provider": "openai",
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "max_tokens": 16384,
        "mode": "chat",
        "output_cost_per_token": 1e-05,
        "supports_function_calling": true,
        "supports_prompt_caching": true
    },
    "azure/gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token": 2.75e-06,
        "litellm_provider": "azure",
        "max_input_tokens": 128000,
        "mode": "chat",
        "output_cost_per_token": 1.1e-05
    },
    "claude-3-7-sonnet-20250219": {
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_read_input_token_cost": 3e-07,
        "deprecation_date": "2026-02-19",
        "input_cost_per_token": 3e-06,
        "litellm_provider": "anthropic",
        "max_input_tokens": 200000,
        "max_output_tokens": 128000,
        "mode": "chat",
        "output_cost_per_token": 1.5e-05,
        "search_context_cost_per_query": {"search_context_size_high": 0.01},
        "tool_use_system_prompt_tokens": 159
    },
    "gemini/gemini-2.5-flash": {
        "cache_read_input_token_cost": 7.5e-08,
        "input_cost_per_audio_token": 1e-06,
        "input_cost_per_token": 3e-07,
        "litellm_provider": "gemini",
        "max_input_tokens": 1048576,
        "mode": "chat",
        "output_cost_per_reasoning_token": 2.5e-06,
        "output_cost_per_token": 2.5e-06,
        "supported_modalities": ["text", "image", "audio", "video"]
    },
    "o3-mini": {
        "cache_read_input_token_cost": 5.5e-07,
        "input_cost_per_token": 1.1e-06,
        "litellm_provider": "openai",
        "max_input_tokens": 200000,
        "mode": "chat",
        "output_cost_per_token": 4.4e-06,
        "supports_reasoning": true
    },
    "ollama/llama3.1": {
        "litellm_provider": "ollama",
        "max_input_tokens": 8192,
        "max_tokens": 8192,
        "mode": "chat"
    }
}"#;

fn snippet() -> PriceTable {
    PriceTable::from_json(LITELLM_SNIPPET).unwrap()
}

#[test]
fn litellm_format_loads_with_its_quirks() {
    let table = snippet();
    assert_eq!(table.len(), 6, "sample_spec is not a model");
    assert_eq!(table.get("sample_spec"), None);
    let gpt = table.get("gpt-4o").unwrap();
    assert_eq!(
        gpt,
        Price {
            input: pico(2_500_000),
            output: pico(10_000_000),
            cache_read: Some(pico(1_250_000)),
            cache_write: None,
            reasoning: None,
        }
    );
    let claude = table.get("claude-3-7-sonnet-20250219").unwrap();
    assert_eq!(claude.cache_write, Some(pico(3_750_000)));
    assert_eq!(claude.cache_read, Some(pico(300_000)));
    assert_eq!(
        table.get("gemini/gemini-2.5-flash").unwrap().reasoning,
        Some(pico(2_500_000))
    );
    // Known context window, no price: still unpriced.
    assert_eq!(table.get("ollama/llama3.1"), None);
    let ollama = deployment("ollama", "llama3.1");
    assert_eq!(table.price_for(&ollama), None);
    assert_eq!(table.max_input_tokens(&ollama), Some(8192));
}

#[test]
fn price_files_load_from_disk_and_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("llmux-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("prices.json");
    std::fs::write(&good, LITELLM_SNIPPET).unwrap();
    assert_eq!(PriceTable::load(&good).unwrap(), snippet());
    let bad = dir.join("broken.json");
    std::fs::write(&bad, "{\"gpt-4o\": {").unwrap();
    let err = PriceTable::load(&bad).unwrap_err().to_string();
    assert!(err.starts_with(&bad.display().to_string()), "{err}");
    let missing = dir.join("missing.json");
    assert!(
        PriceTable::load(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing.json")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lookups_try_prefixed_bare_and_provider_names() {
    let table = snippet();
    // `openai/gpt-4o`: not a key, but the bare model is.
    assert_eq!(
        table
            .price_for(&deployment("openai", "gpt-4o"))
            .unwrap()
            .input,
        pico(2_500_000)
    );
    // `gemini/gemini-2.5-flash` as written.
    assert_eq!(
        table
            .price_for(&deployment("gemini", "gemini-2.5-flash"))
            .unwrap()
            .input,
        pico(300_000)
    );
    // Written without a prefix (`model: gemini-2.5-flash`): found as `{provider}/{model}`.
    let mut bare = deployment("gemini", "gemini-2.5-flash");
    bare.litellm_model = "gemini-2.5-flash".to_string();
    assert!(table.price_for(&bare).is_some());
    // `azure/gpt-4o` is a key of its own, and wins over the bare OpenAI price.
    assert_eq!(
        table
            .price_for(&deployment("azure", "gpt-4o"))
            .unwrap()
            .input,
        pico(2_750_000)
    );
    assert_eq!(
        table.max_input_tokens(&deployment("openai", "o3-mini")),
        Some(200_000)
    );
}

#[test]
fn base_model_names_the_price_of_an_oddly_named_deployment() {
    let table = snippet();
    let mut azure = deployment("azure", "my-prod-deployment");
    assert_eq!(table.price_for(&azure), None);
    assert_eq!(table.max_input_tokens(&azure), None);
    azure.base_model = Some("azure/gpt-4o".to_string());
    assert_eq!(table.price_for(&azure).unwrap().input, pico(2_750_000));
    assert_eq!(table.max_input_tokens(&azure), Some(128_000));
    // A base model the table knows only without its prefix.
    azure.base_model = Some("azure/o3-mini".to_string());
    assert_eq!(table.price_for(&azure).unwrap().input, pico(1_100_000));
}

#[test]
fn unknown_models_and_mocks_have_no_price() {
    let table = snippet();
    assert_eq!(table.price_for(&deployment("openai", "gpt-99")), None);
    assert_eq!(table.price_for(&deployment("groq", "llama-9")), None);
    // A mock named like a real model does not borrow its price.
    assert_eq!(table.price_for(&deployment("mock", "gpt-4o")), None);
    assert_eq!(table.max_input_tokens(&deployment("mock", "gpt-4o")), None);
    assert_eq!(
        PriceTable::builtin().price_for(&deployment("mock", "gpt-4o")),
        None
    );
}

#[test]
fn config_overrides_win_field_by_field() {
    let table = snippet();
    let mut d = deployment("openai", "gpt-4o");
    d.input_cost_per_token = Some(0.00000015);
    let price = table.price_for(&d).unwrap();
    assert_eq!(price.input, pico(150_000));
    assert_eq!(
        price.output,
        pico(10_000_000),
        "output still from the table"
    );
    assert_eq!(price.cache_read, Some(pico(1_250_000)));

    d.output_cost_per_token = Some(0.0000006);
    d.cache_read_input_token_cost = Some(0.000000075);
    d.output_cost_per_reasoning_token = Some(0.000001);
    let price = table.price_for(&d).unwrap();
    assert_eq!(
        price,
        Price {
            input: pico(150_000),
            output: pico(600_000),
            cache_read: Some(pico(75_000)),
            cache_write: None,
            reasoning: Some(pico(1_000_000)),
        }
    );

    // Unknown to the table: the missing half of an override is 0, not unknown.
    let mut custom = deployment("hosted_vllm", "my-llama");
    custom.output_cost_per_token = Some(0.000002);
    let price = table.price_for(&custom).unwrap();
    assert_eq!((price.input, price.output), (pico(0), pico(2_000_000)));
    // A cache rate alone does not make an unknown model priced.
    let mut cache_only = deployment("hosted_vllm", "my-llama");
    cache_only.cache_read_input_token_cost = Some(0.0000001);
    assert_eq!(table.price_for(&cache_only), None);
    // A mock with explicit prices has them.
    let mut mock = deployment("mock", "fast");
    mock.input_cost_per_token = Some(0.000001);
    mock.output_cost_per_token = Some(0.000002);
    assert_eq!(table.price_for(&mock).unwrap().output, pico(2_000_000));
}

#[test]
fn deployment_context_window_wins_over_the_table() {
    let table = snippet();
    let mut d = deployment("openai", "gpt-4o");
    assert_eq!(table.max_input_tokens(&d), Some(128_000));
    d.max_input_tokens = Some(4_096);
    assert_eq!(table.max_input_tokens(&d), Some(4_096));
}

#[test]
fn a_user_file_overrides_the_builtin_table() {
    let mut table = PriceTable::builtin();
    let before = table.len();
    assert!(table.get("gpt-4o").unwrap().input != pico(1));
    table.merge(
        PriceTable::from_json(
            r#"{"gpt-4o": {"input_cost_per_token": 1e-12, "output_cost_per_token": 2e-12},
                "my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}"#,
        )
        .unwrap(),
    );
    assert_eq!(table.len(), before + 1);
    let gpt = table.get("gpt-4o").unwrap();
    assert_eq!(
        (gpt.input, gpt.output, gpt.cache_read),
        (pico(1), pico(2), None)
    );
    assert!(table.get("my-model").is_some());
}

#[test]
fn the_builtin_table_prices_what_users_configure() {
    let table = PriceTable::builtin();
    for (provider, model) in [
        ("openai", "gpt-4"),
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "o3-mini"),
        ("openai", "o4-mini"),
        ("openai", "gpt-5"),
        ("openai", "text-embedding-3-small"),
        ("azure", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-pro"),
        ("gemini", "gemini-2.5-flash"),
        ("gemini", "gemini-embedding-001"),
        ("deepseek", "deepseek-chat"),
        ("deepseek", "deepseek-reasoner"),
        ("groq", "openai/gpt-oss-120b"),
        ("mistral", "mistral-large-latest"),
        ("mistral", "mistral-small-latest"),
        ("mistral", "mistral-embed"),
        ("dashscope", "qwen-max"),
        ("xai", "grok-4.3"),
        ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("fireworks_ai", "accounts/fireworks/models/glm-4p6"),
    ] {
        let d = deployment(provider, model);
        assert!(table.price_for(&d).is_some(), "{provider}/{model} unpriced");
        assert!(
            table.max_input_tokens(&d).is_some(),
            "{provider}/{model} has no context window"
        );
    }
    let sonnet = table
        .price_for(&deployment("anthropic", "claude-sonnet-4-5"))
        .unwrap();
    assert_eq!(sonnet.cache_write, Some(pico(3_750_000)));
    assert_eq!(sonnet.cache_read, Some(pico(300_000)));
}

/// One deployment of `model` as a user writes it in `litellm_params.model`, loaded by the
/// config loader.
fn configured(model: &str) -> Deployment {
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: {model:?}, api_key: k, \
         api_base: 'http://127.0.0.1:9', api_version: '2024-10-21'}}\n"
    );
    let cfg = support::config(&yaml);
    cfg.deployments.into_iter().next().unwrap()
}

/// (input, output) in picodollars per token and the context window, as LiteLLM 1.110.2's
/// model_prices_and_context_window.json gives them (written down from the file, not read
/// from the built-in table).
#[test]
fn the_builtin_table_prices_as_litellm_does() {
    let table = PriceTable::builtin();
    for (model, input, output, window) in [
        ("openai/gpt-4", 30_000_000, 60_000_000, 8_192),
        ("gpt-4", 30_000_000, 60_000_000, 8_192),
        ("dashscope/qwen-max", 1_600_000, 6_400_000, 30_720),
        ("qwen/qwen-max", 1_600_000, 6_400_000, 30_720),
        ("mistral/mistral-large-latest", 500_000, 1_500_000, 262_144),
        (
            "mistral/mistral-medium-latest",
            1_500_000,
            7_500_000,
            262_144,
        ),
        ("mistral/mistral-small-latest", 150_000, 600_000, 262_144),
        (
            "mistral/magistral-medium-latest",
            1_500_000,
            7_500_000,
            262_144,
        ),
        ("mistral/codestral-latest", 300_000, 900_000, 128_000),
        ("mistral/open-mistral-nemo", 300_000, 300_000, 128_000),
        // Embedding models: input only (LiteLLM writes 0, or null for mistral-embed).
        ("openai/text-embedding-3-small", 20_000, 0, 8_191),
        ("text-embedding-3-large", 130_000, 0, 8_191),
        ("azure/text-embedding-3-small", 22_000, 0, 8_192),
        ("mistral/mistral-embed", 100_000, 0, 8_192),
        ("gemini/gemini-embedding-001", 150_000, 0, 2_048),
        ("together_ai/BAAI/bge-base-en-v1.5", 8_000, 0, 512),
        // Filed by LiteLLM under `fireworks_ai-embedding-models`.
        (
            "fireworks_ai/nomic-ai/nomic-embed-text-v1.5",
            8_000,
            0,
            8_192,
        ),
        // llmux's `zhipu/` is LiteLLM's `bigmodel/` (open.bigmodel.cn).
        ("zhipu/glm-5.3", 1_142_857, 4_000_000, 1_000_000),
    ] {
        let d = configured(model);
        let price = table
            .price_for(&d)
            .unwrap_or_else(|| panic!("{model} unpriced"));
        assert_eq!(
            (
                price.input.pico(),
                price.output.pico(),
                table.max_input_tokens(&d)
            ),
            (input, output, Some(window)),
            "{model}"
        );
    }
}

/// Every model of the built-in table, written in a config as LiteLLM names it (its key, with
/// its provider's prefix when the key has none), is priced by that very entry, with its
/// context window: no model of the providers llmux speaks is left unpriced or takes another
/// model's price. Two exceptions, both LiteLLM's own: a bare key whose `provider/key` twin is
/// also in the table is priced by the twin (LiteLLM looks `provider/model` up first), and a
/// model LiteLLM gives no standard rate (only `*_priority` ones) has a window but no price.
#[test]
fn every_builtin_model_prices_a_deployment_written_as_litellm_names_it() {
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("../../../src/metrics/prices.json")).unwrap();
    assert!(json.len() > 900, "{} models", json.len());
    let table = PriceTable::builtin();
    let mut yaml = String::from("model_list:\n");
    let mut expected = Vec::new();
    for (key, entry) in &json {
        let provider = entry["litellm_provider"].as_str().unwrap();
        // `fireworks_ai-embedding-models` → fireworks_ai; bigmodel is what zhipu/ calls.
        let family = provider.split('-').next().unwrap();
        let prefix = if family == "bigmodel" {
            "zhipu"
        } else {
            family
        };
        let model = match key.strip_prefix(&format!("{family}/")) {
            Some(rest) => format!("{prefix}/{rest}"),
            None => format!("{prefix}/{key}"),
        };
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: {model:?}, api_key: k, \
             api_base: 'http://127.0.0.1:9', api_version: '2024-10-21'}}\n"
        ));
        let twin = format!("{family}/{key}");
        let priced_by = if json.contains_key(&twin) {
            twin
        } else {
            key.clone()
        };
        let window = json[&priced_by]
            .get("max_input_tokens")
            .and_then(|w| w.as_u64());
        let has_rates = [
            "input_cost_per_token",
            "output_cost_per_token",
            "tiered_pricing",
        ]
        .iter()
        .any(|f| entry.get(*f).is_some_and(|v| !v.is_null()));
        expected.push((priced_by, model, window, has_rates));
    }
    let cfg = support::config(&yaml);
    assert_eq!(cfg.deployments.len(), expected.len());
    let mut wrong = Vec::new();
    let mut unpriced = 0;
    for (d, (key, model, window, has_rates)) in cfg.deployments.iter().zip(&expected) {
        assert_eq!(d.unavailable, None, "{model}");
        let got = (table.price_for(d), table.max_input_tokens(d));
        let want = (table.get(key), *window);
        unpriced += usize::from(want.0.is_none());
        if got != want || want.0.is_none() == *has_rates {
            wrong.push(format!("{model} (entry {key}): {got:?}, want {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(unpriced < 5, "{unpriced} models without a standard rate");
}

/// Dashscope's Qwen models are priced by `tiered_pricing` alone: llmux bills them at the
/// first tier, what LiteLLM bills a prompt within it.
#[test]
fn a_tiered_model_is_priced_at_its_first_tier() {
    let table = PriceTable::builtin();
    // LiteLLM 1.110.2: qwen3-max is 1.2e-06 / 6e-06 up to 32k input tokens.
    let price = table.price_for(&configured("dashscope/qwen3-max")).unwrap();
    assert_eq!(
        (price.input, price.output),
        (pico(1_200_000), pico(6_000_000))
    );
    let t = PriceTable::from_json(
        r#"{"m": {"output_cost_per_token": 9e-6, "tiered_pricing": [
                 {"input_cost_per_token": 3e-6, "range": [32000, 128000]},
                 "not a tier",
                 {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                  "cache_read_input_token_cost": 1e-7, "range": [0, 32000.0]},
                 {"output_cost_per_token": 1e-9, "range": [-1, 0]}]},
            "own": {"input_cost_per_token": 5e-6, "tiered_pricing": [
                 {"input_cost_per_token": 1e-6, "range": [0, 32000]}]},
            "odd": {"tiered_pricing": {"input_cost_per_token": 1e-6}}}"#,
    )
    .unwrap();
    let m = t.get("m").unwrap();
    assert_eq!(
        (m.input, m.output, m.cache_read),
        (pico(1_000_000), pico(2_000_000), Some(pico(100_000)))
    );
    // A model's own input rate wins; tiers that are not a list are ignored.
    assert_eq!(t.get("own").unwrap().input, pico(5_000_000));
    assert_eq!(t.get("odd"), None);
}

/// `llmux.pricing_file`, relative to the config file, is merged over the built-in table: a
/// model of the user's own is priced, a built-in model the file names takes the file's price,
/// the others keep LiteLLM's; a file that cannot be read is an error naming it.
#[test]
fn a_pricing_file_of_the_users_own_goes_over_the_builtin_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my-prices.json"),
        r#"{"my-house-model": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
                               "max_input_tokens": 8000},
            "gpt-4": {"input_cost_per_token": 1e-5, "output_cost_per_token": 2e-5,
                      "litellm_provider": "openai"}}"#,
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = "\
model_list:
  - model_name: house
    litellm_params: {model: hosted_vllm/my-house-model, api_base: 'http://127.0.0.1:9'}
  - model_name: gpt
    litellm_params: {model: openai/gpt-4, api_key: k}
  - model_name: qwen
    litellm_params: {model: dashscope/qwen-max, api_key: k}
llmux:
  pricing_file: my-prices.json
";
    std::fs::write(&config, yaml).unwrap();
    let cfg = load_file(&config).unwrap();
    let table = PriceTable::for_config(&cfg).unwrap();
    let [house, gpt, qwen] = &cfg.deployments[..] else {
        panic!("{:?}", cfg.deployments)
    };
    let house_price = table.price_for(house).unwrap();
    assert_eq!(
        (house_price.input, house_price.output),
        (pico(2_000_000), pico(8_000_000))
    );
    assert_eq!(table.max_input_tokens(house), Some(8000));
    let gpt_price = table.price_for(gpt).unwrap();
    assert_eq!(
        (gpt_price.input, gpt_price.output),
        (pico(10_000_000), pico(20_000_000))
    );
    assert_eq!(table.price_for(qwen).unwrap().input, pico(1_600_000));

    std::fs::remove_file(dir.path().join("my-prices.json")).unwrap();
    let cfg = load_file(&config).unwrap();
    let err = PriceTable::for_config(&cfg).unwrap_err().to_string();
    assert!(
        err.starts_with("llmux.pricing_file: ") && err.contains("my-prices.json"),
        "{err}"
    );
}

#[test]
fn a_bare_name_prices_only_a_deployment_of_its_provider() {
    let table = snippet();
    // LiteLLM's `_check_provider_match`: OpenAI's gpt-4o is not what a self-hosted
    // `hosted_vllm/gpt-4o` costs, nor `ollama/llama3.1`'s window a groq model's.
    assert_eq!(table.price_for(&deployment("hosted_vllm", "gpt-4o")), None);
    assert_eq!(
        table.max_input_tokens(&deployment("hosted_vllm", "gpt-4o")),
        None
    );
    assert_eq!(
        table.price_for(&deployment("custom_openai", "o3-mini")),
        None
    );
    // A LiteLLM proxy stands for any provider.
    assert_eq!(
        table
            .price_for(&deployment("litellm_proxy", "gpt-4o"))
            .unwrap()
            .input,
        pico(2_500_000)
    );
    // `base_model` is the user's word: any entry will do.
    let mut vllm = deployment("hosted_vllm", "my-llama");
    vllm.base_model = Some("gpt-4o".to_string());
    assert_eq!(table.price_for(&vllm).unwrap().input, pico(2_500_000));
    // An entry without a provider fits any deployment; LiteLLM's `<provider>-<kind>`
    // entries fit `<provider>` deployments.
    let mut t = snippet();
    t.merge(
        PriceTable::from_json(
            r#"{"mine": {"input_cost_per_token": 1e-6},
                "fw-embed": {"input_cost_per_token": 2e-6,
                             "litellm_provider": "fireworks_ai-embedding-models"}}"#,
        )
        .unwrap(),
    );
    assert!(t.price_for(&deployment("hosted_vllm", "mine")).is_some());
    assert!(
        t.price_for(&deployment("fireworks_ai", "fw-embed"))
            .is_some()
    );
    assert!(t.price_for(&deployment("fireworks", "fw-embed")).is_none());
}

#[test]
fn an_anthropic_answer_with_cache_hits_costs_what_anthropic_bills() {
    let table = snippet();
    let price = table
        .price_for(&deployment("anthropic", "claude-3-7-sonnet-20250219"))
        .unwrap();
    // 12,000 prompt tokens, of which 10,000 read from cache and 1,500 written to it.
    let usage = Usage {
        input: 12_000,
        output: 800,
        cached_input: 10_000,
        cache_write: 1_500,
        reasoning: 0,
        estimated: false,
    };
    let expected = 500 * 3_000_000 + 10_000 * 300_000 + 1_500 * 3_750_000 + 800 * 15_000_000;
    assert_eq!(price.cost(&usage).pico(), expected);
    assert_eq!(price.cost(&usage).to_string(), "$0.0221");
}

#[test]
fn reasoning_tokens_use_their_own_rate() {
    let mut table = snippet();
    table.merge(
        PriceTable::from_json(
            r#"{"thinker": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                            "output_cost_per_reasoning_token": 5e-6}}"#,
        )
        .unwrap(),
    );
    let price = table.price_for(&deployment("openai", "thinker")).unwrap();
    let usage = Usage {
        input: 100,
        output: 1_000,
        reasoning: 600,
        ..Usage::default()
    };
    assert_eq!(
        price.cost(&usage).pico(),
        100 * 1_000_000 + 400 * 2_000_000 + 600 * 5_000_000
    );
}
