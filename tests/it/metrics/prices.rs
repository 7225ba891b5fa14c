//! Prices: LiteLLM's table format, lookups by the names a deployment goes by, config
//! overrides, and what answers cost.

use llmux::config::{Deployment, Wire};
use llmux::metrics::{Price, PriceTable};
use llmux::provider::Usage;

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
            input: 2_500_000,
            output: 10_000_000,
            cache_read: Some(1_250_000),
            cache_write: None,
            reasoning: None,
        }
    );
    let claude = table.get("claude-3-7-sonnet-20250219").unwrap();
    assert_eq!(claude.cache_write, Some(3_750_000));
    assert_eq!(claude.cache_read, Some(300_000));
    assert_eq!(
        table.get("gemini/gemini-2.5-flash").unwrap().reasoning,
        Some(2_500_000)
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
    let err = PriceTable::load(&bad).unwrap_err();
    assert!(err.starts_with(&bad.display().to_string()), "{err}");
    let missing = dir.join("missing.json");
    assert!(
        PriceTable::load(&missing)
            .unwrap_err()
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
        2_500_000
    );
    // `gemini/gemini-2.5-flash` as written.
    assert_eq!(
        table
            .price_for(&deployment("gemini", "gemini-2.5-flash"))
            .unwrap()
            .input,
        300_000
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
        2_750_000
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
    assert_eq!(table.price_for(&azure).unwrap().input, 2_750_000);
    assert_eq!(table.max_input_tokens(&azure), Some(128_000));
    // A base model the table knows only without its prefix.
    azure.base_model = Some("azure/o3-mini".to_string());
    assert_eq!(table.price_for(&azure).unwrap().input, 1_100_000);
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
    assert_eq!(price.input, 150_000);
    assert_eq!(price.output, 10_000_000, "output still from the table");
    assert_eq!(price.cache_read, Some(1_250_000));

    d.output_cost_per_token = Some(0.0000006);
    d.cache_read_input_token_cost = Some(0.000000075);
    d.output_cost_per_reasoning_token = Some(0.000001);
    let price = table.price_for(&d).unwrap();
    assert_eq!(
        price,
        Price {
            input: 150_000,
            output: 600_000,
            cache_read: Some(75_000),
            cache_write: None,
            reasoning: Some(1_000_000),
        }
    );

    // Unknown to the table: the missing half of an override is 0, not unknown.
    let mut custom = deployment("hosted_vllm", "my-llama");
    custom.output_cost_per_token = Some(0.000002);
    let price = table.price_for(&custom).unwrap();
    assert_eq!((price.input, price.output), (0, 2_000_000));
    // A cache rate alone does not make an unknown model priced.
    let mut cache_only = deployment("hosted_vllm", "my-llama");
    cache_only.cache_read_input_token_cost = Some(0.0000001);
    assert_eq!(table.price_for(&cache_only), None);
    // A mock with explicit prices has them.
    let mut mock = deployment("mock", "fast");
    mock.input_cost_per_token = Some(0.000001);
    mock.output_cost_per_token = Some(0.000002);
    assert_eq!(table.price_for(&mock).unwrap().output, 2_000_000);
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
    assert!(table.get("gpt-4o").unwrap().input != 1);
    table.merge(
        PriceTable::from_json(
            r#"{"gpt-4o": {"input_cost_per_token": 1e-12, "output_cost_per_token": 2e-12},
                "my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}"#,
        )
        .unwrap(),
    );
    assert_eq!(table.len(), before + 1);
    let gpt = table.get("gpt-4o").unwrap();
    assert_eq!((gpt.input, gpt.output, gpt.cache_read), (1, 2, None));
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
    assert_eq!(sonnet.cache_write, Some(3_750_000));
    assert_eq!(sonnet.cache_read, Some(300_000));
}

/// (input, output) in picodollars per token and the context window, as LiteLLM 1.110's
/// model_prices_and_context_window.json gives them.
#[test]
fn the_builtin_table_prices_as_litellm_does() {
    let table = PriceTable::builtin();
    for (provider, model, input, output, window) in [
        ("openai", "gpt-4", 30_000_000, 60_000_000, 8_192),
        ("dashscope", "qwen-max", 1_600_000, 6_400_000, 30_720),
        (
            "mistral",
            "mistral-large-latest",
            500_000,
            1_500_000,
            262_144,
        ),
        (
            "mistral",
            "mistral-medium-latest",
            1_500_000,
            7_500_000,
            262_144,
        ),
        ("mistral", "open-mistral-nemo", 300_000, 300_000, 128_000),
    ] {
        let d = deployment(provider, model);
        let price = table.price_for(&d).unwrap();
        assert_eq!(
            (price.input, price.output, table.max_input_tokens(&d)),
            (input, output, Some(window)),
            "{provider}/{model}"
        );
    }
    // `qwen/` is llmux's other spelling of `dashscope/`.
    let mut qwen = deployment("dashscope", "qwen-max");
    qwen.litellm_model = "qwen/qwen-max".to_string();
    assert_eq!(table.price_for(&qwen).unwrap().input, 1_600_000);
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
        2_500_000
    );
    // `base_model` is the user's word: any entry will do.
    let mut vllm = deployment("hosted_vllm", "my-llama");
    vllm.base_model = Some("gpt-4o".to_string());
    assert_eq!(table.price_for(&vllm).unwrap().input, 2_500_000);
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
