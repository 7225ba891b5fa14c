//! The provider families llmux knows: which `litellm_params.model` prefix selects which wire
//! format, and which base URL a family gets when the config gives no `api_base`.
//!
//! Input is the `model` string as written (`groq/llama-3.1-8b-instant`, `claude-3-5-sonnet`);
//! output is the family's name, its [`Wire`], the provider's own model id and the default base
//! URL. The loader adds the config's `api_base` and reports the errors with a position.

use super::model::Wire;

/// One provider family and how to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderFamily {
    /// The canonical name, stored as `Deployment::provider`.
    pub name: &'static str,
    /// The prefixes that select it, without the `/` (`qwen` is another spelling of `dashscope`).
    pub prefixes: &'static [&'static str],
    pub wire: Wire,
    /// The base URL without a trailing slash; `None` when the config must give `api_base`.
    pub default_api_base: Option<&'static str>,
    /// Ollama's OpenAI-compatible endpoint lives under `/v1` of the server's address.
    pub append_v1: bool,
}

const fn family(
    name: &'static str,
    prefixes: &'static [&'static str],
    wire: Wire,
    default_api_base: Option<&'static str>,
) -> ProviderFamily {
    ProviderFamily {
        name,
        prefixes,
        wire,
        default_api_base,
        append_v1: false,
    }
}

/// Ollama's default address.
const OLLAMA_BASE: &str = "http://localhost:11434";

/// Every family, in the order the error message lists them.
pub const FAMILIES: &[ProviderFamily] = &[
    family(
        "openai",
        &["openai"],
        Wire::OpenAi,
        Some("https://api.openai.com/v1"),
    ),
    family("azure", &["azure"], Wire::Azure, None),
    family(
        "anthropic",
        &["anthropic"],
        Wire::Anthropic,
        Some("https://api.anthropic.com"),
    ),
    family(
        "gemini",
        &["gemini"],
        Wire::Gemini,
        Some("https://generativelanguage.googleapis.com"),
    ),
    ProviderFamily {
        name: "ollama",
        prefixes: &["ollama"],
        wire: Wire::OpenAi,
        default_api_base: Some(OLLAMA_BASE),
        append_v1: true,
    },
    family(
        "ollama_chat",
        &["ollama_chat"],
        Wire::OllamaChat,
        Some(OLLAMA_BASE),
    ),
    family(
        "openrouter",
        &["openrouter"],
        Wire::OpenAi,
        Some("https://openrouter.ai/api/v1"),
    ),
    family(
        "deepseek",
        &["deepseek"],
        Wire::OpenAi,
        Some("https://api.deepseek.com/v1"),
    ),
    family(
        "groq",
        &["groq"],
        Wire::OpenAi,
        Some("https://api.groq.com/openai/v1"),
    ),
    family(
        "mistral",
        &["mistral"],
        Wire::OpenAi,
        Some("https://api.mistral.ai/v1"),
    ),
    family(
        "together_ai",
        &["together_ai"],
        Wire::OpenAi,
        Some("https://api.together.xyz/v1"),
    ),
    family("xai", &["xai"], Wire::OpenAi, Some("https://api.x.ai/v1")),
    family(
        "fireworks_ai",
        &["fireworks_ai"],
        Wire::OpenAi,
        Some("https://api.fireworks.ai/inference/v1"),
    ),
    family(
        "dashscope",
        &["dashscope", "qwen"],
        Wire::OpenAi,
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
    ),
    family(
        "zhipu",
        &["zhipu", "glm"],
        Wire::OpenAi,
        Some("https://open.bigmodel.cn/api/paas/v4"),
    ),
    family(
        "siliconflow",
        &["siliconflow"],
        Wire::OpenAi,
        Some("https://api.siliconflow.cn/v1"),
    ),
    family("hosted_vllm", &["hosted_vllm"], Wire::OpenAi, None),
    // A team's LiteLLM proxy: OpenAI-compatible, `api_key` is its master key (bearer).
    family("litellm_proxy", &["litellm_proxy"], Wire::OpenAi, None),
    family("custom_openai", &["custom_openai"], Wire::OpenAi, None),
    family("mock", &["mock"], Wire::Mock, Some("")),
];

/// Model-name beginnings that LiteLLM resolves without a prefix, and their family.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("claude-", "anthropic"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("text-embedding-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("gemini-", "gemini"),
    ("deepseek-", "deepseek"),
];

/// The family with this name or prefix.
pub fn family_named(name: &str) -> Option<&'static ProviderFamily> {
    FAMILIES
        .iter()
        .find(|f| f.name == name || f.prefixes.contains(&name))
}

/// `openai/, azure/, …`: for error messages.
pub fn known_prefixes() -> String {
    FAMILIES
        .iter()
        .flat_map(|f| f.prefixes.iter())
        .map(|p| format!("{p}/"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves `litellm_params.model` to (family name, wire, provider model id, default base URL).
///
/// The default base URL is `None` for families that need the config's `api_base` (azure,
/// hosted_vllm, litellm_proxy, custom_openai); for `ollama/` it already ends in `/v1`.
pub fn resolve_model(model: &str) -> Result<(&'static str, Wire, String, Option<String>), String> {
    let model = model.trim();
    if model.is_empty() {
        return Err("the model is empty; write it as <provider>/<model>".to_string());
    }
    let (fam, id) = match model.split_once('/') {
        Some((prefix, rest)) => match family_named(prefix) {
            Some(fam) => (fam, rest),
            None => {
                return Err(format!(
                    "unknown provider prefix '{prefix}/' in '{model}'; known prefixes: {}",
                    known_prefixes()
                ));
            }
        },
        None => match well_known_family(model) {
            Some(fam) => (fam, model),
            None => {
                return Err(format!(
                    "'{model}' has no provider prefix and is not a well-known model name; \
                     write it as <provider>/{model} with one of: {}",
                    known_prefixes()
                ));
            }
        },
    };
    if id.is_empty() {
        return Err(format!(
            "'{model}' names no model after the provider prefix"
        ));
    }
    Ok((fam.name, fam.wire, id.to_string(), default_base(fam)))
}

/// The base URL a family uses when the config gives none.
pub fn default_base(fam: &ProviderFamily) -> Option<String> {
    fam.default_api_base.map(|b| api_base_for(fam, b))
}

/// A configured `api_base` as the family needs it: no trailing `/`, `/v1` added for `ollama/`.
pub fn api_base_for(fam: &ProviderFamily, base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if fam.append_v1 && !base.ends_with("/v1") {
        format!("{base}/v1")
    } else {
        base.to_string()
    }
}

fn well_known_family(model: &str) -> Option<&'static ProviderFamily> {
    WELL_KNOWN
        .iter()
        .find(|(start, _)| model.starts_with(start))
        .and_then(|(_, name)| family_named(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pick_family_wire_and_base() {
        let (name, wire, id, base) = resolve_model("groq/llama-3.1-8b-instant").unwrap();
        assert_eq!(
            (name, wire, id.as_str()),
            ("groq", Wire::OpenAi, "llama-3.1-8b-instant")
        );
        assert_eq!(base.as_deref(), Some("https://api.groq.com/openai/v1"));

        let (name, wire, id, _) = resolve_model("openrouter/anthropic/claude-3.5-sonnet").unwrap();
        assert_eq!((name, wire), ("openrouter", Wire::OpenAi));
        assert_eq!(id, "anthropic/claude-3.5-sonnet");

        let (name, ..) = resolve_model("qwen/qwen-max").unwrap();
        assert_eq!(name, "dashscope");
        let (name, ..) = resolve_model("glm/glm-4").unwrap();
        assert_eq!(name, "zhipu");
    }

    #[test]
    fn ollama_is_openai_under_v1_and_ollama_chat_is_native() {
        let (_, wire, _, base) = resolve_model("ollama/llama3").unwrap();
        assert_eq!(wire, Wire::OpenAi);
        assert_eq!(base.as_deref(), Some("http://localhost:11434/v1"));
        let (_, wire, _, base) = resolve_model("ollama_chat/llama3").unwrap();
        assert_eq!(wire, Wire::OllamaChat);
        assert_eq!(base.as_deref(), Some("http://localhost:11434"));
        let fam = family_named("ollama").unwrap();
        assert_eq!(
            api_base_for(fam, "http://gpu:11434/"),
            "http://gpu:11434/v1"
        );
        assert_eq!(
            api_base_for(fam, "http://gpu:11434/v1/"),
            "http://gpu:11434/v1"
        );
    }

    #[test]
    fn families_that_need_an_api_base_have_no_default() {
        for m in [
            "azure/x",
            "hosted_vllm/x",
            "litellm_proxy/x",
            "custom_openai/x",
        ] {
            assert_eq!(resolve_model(m).unwrap().3, None, "{m}");
        }
        assert_eq!(resolve_model("mock/x").unwrap().3.as_deref(), Some(""));
    }

    #[test]
    fn well_known_names_resolve_without_prefix() {
        let cases = [
            ("claude-3-5-sonnet-20241022", "anthropic"),
            ("gpt-4o", "openai"),
            ("o3-mini", "openai"),
            ("chatgpt-4o-latest", "openai"),
            ("text-embedding-3-small", "openai"),
            ("gemini-1.5-pro", "gemini"),
            ("deepseek-chat", "deepseek"),
        ];
        for (model, fam) in cases {
            let (name, _, id, _) = resolve_model(model).unwrap();
            assert_eq!((name, id.as_str()), (fam, model));
        }
    }

    #[test]
    fn unknown_names_and_prefixes_are_errors_listing_the_prefixes() {
        let e = resolve_model("llama3").unwrap_err();
        assert!(
            e.contains("no provider prefix") && e.contains("openai/"),
            "{e}"
        );
        let e = resolve_model("vertex_ai/gemini-pro").unwrap_err();
        assert!(e.starts_with("unknown provider prefix 'vertex_ai/'"), "{e}");
        assert!(e.contains("siliconflow/"), "{e}");
        assert!(resolve_model("openai/").is_err());
        assert!(resolve_model("").is_err());
    }
}
