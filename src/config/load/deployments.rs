//! `model_list` → [`Deployment`]s.
//!
//! Each entry's `litellm_params.model` is resolved to a provider family (see
//! `config::providers`), its `os.environ/VAR` references are read, its numbers checked, and it
//! gets a unique id. A missing variable, or a LiteLLM provider llmux does not speak
//! (`bedrock/`, `vertex_ai/`), makes that one deployment unavailable (with a warning) rather
//! than failing the load. Unknown `litellm_params` keys are accepted silently, since any
//! completion argument is legal there; unknown keys of the entry itself are warned about.

use std::collections::HashSet;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::values::{Ctx, ENV_PREFIX, EnvValue, entries, untag};
use crate::config::positions::{child, item};
use crate::config::providers::{Unresolved, api_base_for, family_named, resolve_model};
use crate::config::{ConfigError, Deployment, MockParams, Wire};
use crate::secret::Secret;

/// What Azure gets when the config gives no `api_version` (a GA version of the data plane API).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// The highest HTTP status `mock_error` may name.
const MAX_HTTP_STATUS: u64 = 599;
/// The lowest HTTP status `mock_error` may name.
const MIN_HTTP_STATUS: u64 = 100;

/// What `model_list` gave: the deployments read, and the groups and deployment ids of entries
/// that could not be read (so that references to them elsewhere are not reported as unknown
/// too).
pub struct ModelList {
    pub deployments: Vec<Deployment>,
    pub unread_groups: Vec<String>,
    pub unread_ids: Vec<String>,
}

/// Reads `model_list`: every entry, and one that fails is kept in `ctx.errors` while the rest
/// are read on. Skipped wildcard entries leave no deployment; a list that yields none is an
/// error unless its entries' own errors already say why.
pub fn model_list(ctx: &mut Ctx, value: Option<&Value>) -> Result<ModelList, ConfigError> {
    const PATH: &str = "model_list";
    let Some(value) = value else {
        return Err(ctx.error_at(
            crate::config::positions::Pos::START,
            "the config has no model_list; it needs at least one model",
        ));
    };
    let items = match untag(value) {
        Value::Sequence(items) if !items.is_empty() => items,
        Value::Sequence(_) | Value::Null => {
            return Err(ctx.error(PATH, "model_list is empty; it needs at least one model"));
        }
        _ => {
            return Err(ctx.error(
                PATH,
                "model_list must be a list of entries with model_name and litellm_params",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    let mut unread_groups = Vec::new();
    let mut unread_ids = Vec::new();
    let mut failed = 0;
    let mut used_ids = HashSet::new();
    for (i, entry) in items.iter().enumerate() {
        let path = item(PATH, i);
        match deployment(ctx, entry, &path, i) {
            Ok(Some(mut d)) => {
                d.id = unique_id(&mut used_ids, &d.id);
                out.push(d);
            }
            Ok(None) => {}
            Err(e) => {
                failed += 1;
                ctx.errors.push(e);
                unread_groups.extend(written(ctx, entry, &["model_name"]));
                unread_ids.extend(
                    written(ctx, entry, &["model_info", "id"])
                        .or_else(|| written(ctx, entry, &["litellm_params", "model"])),
                );
            }
        }
    }
    if out.is_empty() && failed == 0 {
        return Err(ctx.error(
            PATH,
            "model_list has no usable model (wildcard entries are not implemented)",
        ));
    }
    Ok(ModelList {
        deployments: out,
        unread_groups,
        unread_ids,
    })
}

/// A scalar of an entry as written (`["model_info", "id"]`), read as text the way the entry's
/// reader reads it; `None` where it is missing, empty or not a scalar.
fn written(ctx: &Ctx, entry: &Value, keys: &[&str]) -> Option<String> {
    let mut v = entry;
    for key in keys {
        let Value::Mapping(map) = untag(v) else {
            return None;
        };
        v = map.get(*key)?;
    }
    ctx.string(v, "")
        .ok()
        .flatten()
        .filter(|s| !s.trim().is_empty())
}

/// `id`, else `id#2`, `id#3`, … whichever is free.
fn unique_id(used: &mut HashSet<String>, id: &str) -> String {
    let mut candidate = id.to_string();
    let mut n = 1u32;
    while used.contains(&candidate) {
        n += 1;
        candidate = format!("{id}#{n}");
    }
    used.insert(candidate.clone());
    candidate
}

/// The parts of one `model_list` entry that every field reader needs.
struct Entry<'v> {
    index: usize,
    group: String,
    model: String,
    params: &'v Mapping,
    params_path: String,
}

fn deployment(
    ctx: &mut Ctx,
    entry: &Value,
    path: &str,
    index: usize,
) -> Result<Option<Deployment>, ConfigError> {
    let Value::Mapping(map) = untag(entry) else {
        return Err(ctx.error(
            path,
            format!("{path} must be a mapping with model_name and litellm_params"),
        ));
    };
    for (key, _) in entries(map) {
        if !matches!(key.as_str(), "model_name" | "litellm_params" | "model_info") {
            ctx.unimplemented(&child(path, &key));
        }
    }
    let group = match map.get("model_name") {
        Some(v) => ctx.string(v, &child(path, "model_name"))?,
        None => None,
    };
    let Some(group) = group.filter(|g| !g.trim().is_empty()) else {
        return Err(ctx.error(path, format!("{path} has no model_name")));
    };
    let params_path = child(path, "litellm_params");
    let params = match map.get("litellm_params") {
        Some(v) => ctx.mapping(v, &params_path)?,
        None => None,
    };
    let model = match params.and_then(|p| p.get("model")) {
        Some(v) => ctx.string(v, &child(&params_path, "model"))?,
        None => None,
    };
    let (Some(params), Some(model)) = (params, model.filter(|m| !m.trim().is_empty())) else {
        let at = if params.is_some() { &params_path } else { path };
        let hint = if map.contains_key("model") {
            " (its model: is written beside litellm_params; move it inside)"
        } else {
            ""
        };
        return Err(ctx.error(
            at,
            format!("{path} '{group}' has no litellm_params.model{hint}"),
        ));
    };
    if model.contains('*') || group.contains('*') {
        ctx.warn(
            &child(&params_path, "model"),
            format!(
                "{path} '{group}' ({model}): wildcard deployments are not implemented by llmux; ignored"
            ),
        );
        return Ok(None);
    }
    let entry = Entry {
        index,
        group,
        model,
        params,
        params_path,
    };
    let info_path = child(path, "model_info");
    let info = match map.get("model_info") {
        Some(v) => ctx.mapping(v, &info_path)?,
        None => None,
    };
    build(ctx, &entry, info, &info_path).map(Some)
}

/// Where and how a deployment is called: the part of an entry that depends on its provider.
struct Endpoint {
    provider: String,
    wire: Wire,
    model: String,
    api_base: String,
    api_key: Option<String>,
    api_version: Option<String>,
    organization: Option<String>,
    /// Why it cannot be called (a provider llmux does not speak, a variable not set).
    unavailable: Option<String>,
}

fn build(
    ctx: &mut Ctx,
    e: &Entry,
    info: Option<&Mapping>,
    info_path: &str,
) -> Result<Deployment, ConfigError> {
    let model_path = child(&e.params_path, "model");
    if let Some(v) = e.params.get("api_key") {
        ctx.note_secret(v, &child(&e.params_path, "api_key"));
    }
    let who = format!("model_list[{}] '{}', {}", e.index, e.group, e.model);
    let end = match resolve_model(&e.model) {
        Ok(resolved) => endpoint(ctx, e, resolved, &who)?,
        Err(Unresolved::Unspoken { provider, model }) => {
            let why = format!("llmux does not speak LiteLLM's {provider} provider ({who})");
            ctx.warn(
                &model_path,
                format!(
                    "{why}; the deployment is unavailable, the rest of the config works (call it \
                     through a LiteLLM proxy with litellm_proxy/, or an OpenAI-compatible \
                     endpoint with openai/ and api_base)"
                ),
            );
            Endpoint {
                provider,
                model,
                wire: Wire::OpenAi,
                api_base: String::new(),
                api_key: None,
                api_version: None,
                organization: None,
                unavailable: Some(why),
            }
        }
        Err(Unresolved::Invalid(msg)) => {
            return Err(ctx.error(&model_path, format!("{model_path}: {msg}")));
        }
    };
    let mut unavailable = end.unavailable;
    let headers = headers(ctx, e, &who, &mut unavailable)?;
    let mut d = Deployment {
        id: String::new(),
        group: e.group.clone(),
        provider: end.provider,
        wire: end.wire,
        model: end.model,
        litellm_model: e.model.clone(),
        api_base: end.api_base,
        api_key: end.api_key.map(Secret::new),
        api_version: end.api_version,
        rpm: field(ctx, e, "rpm", Ctx::u32),
        tpm: field(ctx, e, "tpm", Ctx::u64),
        timeout: field(ctx, e, "timeout", Ctx::seconds),
        stream_timeout: field(ctx, e, "stream_timeout", Ctx::seconds),
        max_retries: field(ctx, e, "max_retries", Ctx::u32),
        weight: field(ctx, e, "weight", Ctx::non_negative),
        order: field(ctx, e, "order", Ctx::u32),
        cooldown_time: field(ctx, e, "cooldown_time", Ctx::seconds),
        input_cost_per_token: None,
        output_cost_per_token: None,
        cache_read_input_token_cost: None,
        cache_creation_input_token_cost: None,
        output_cost_per_reasoning_token: None,
        base_model: None,
        max_input_tokens: None,
        max_tokens: field(ctx, e, "max_tokens", Ctx::u32),
        temperature: field(ctx, e, "temperature", Ctx::number),
        tags: match e.params.get("tags") {
            Some(v) => ctx.string_list(v, &child(&e.params_path, "tags"))?,
            None => Vec::new(),
        },
        budget: super::budget::deployment_budget(ctx, e.params, &e.params_path)?,
        drop_params: field(ctx, e, "drop_params", Ctx::bool),
        supports_function_calling: None,
        supports_vision: None,
        headers,
        organization: end.organization,
        mode: None,
        mock: None,
        unavailable,
    };
    prices(ctx, &mut d, e, info, info_path)?;
    d.mock = mock_params(ctx, e, d.wire)?;
    // Without the credential the deployment has no key: worth saying, unlike other kwargs.
    if e.params.contains_key("litellm_credential_name") {
        ctx.unimplemented(&child(&e.params_path, "litellm_credential_name"));
    }
    d.id = match info.and_then(|i| i.get("id")) {
        Some(v) => ctx.string(v, &child(info_path, "id"))?,
        None => None,
    }
    .filter(|id| !id.trim().is_empty())
    .unwrap_or_else(|| e.model.clone());
    Ok(d)
}

/// The endpoint of a deployment whose provider llmux speaks: its `os.environ/` fields read
/// (a missing variable makes it unavailable, with a warning) and its base URL settled.
fn endpoint(
    ctx: &mut Ctx,
    e: &Entry,
    (provider, wire, model, default_base): (&'static str, Wire, String, Option<String>),
    who: &str,
) -> Result<Endpoint, ConfigError> {
    let mut unavailable: Option<String> = None;
    // Each os.environ/ field: its value, or a note that makes the deployment unavailable.
    let mut secret_field = |ctx: &mut Ctx, key: &str| -> Result<Option<String>, ConfigError> {
        let path = child(&e.params_path, key);
        let Some(v) = e.params.get(key) else {
            return Ok(None);
        };
        match ctx.env_string(v, &path)? {
            None => Ok(None),
            Some(EnvValue::Set(s)) => Ok(Some(s)),
            Some(EnvValue::Missing(var)) => {
                let why = format!("environment variable {var} is not set ({who})");
                ctx.warn(&path, format!("{why}; the deployment is unavailable"));
                unavailable.get_or_insert(why);
                Ok(None)
            }
        }
    };
    let api_key = secret_field(ctx, "api_key")?;
    let api_base = secret_field(ctx, "api_base")?;
    let api_base_from_env = e
        .params
        .get("api_base")
        .and_then(|v| untag(v).as_str())
        .is_some_and(|s| s.trim().starts_with(ENV_PREFIX));
    let api_version = secret_field(ctx, "api_version")?;
    let organization = secret_field(ctx, "organization")?;

    let api_base = match (api_base, default_base) {
        (Some(b), _) => match family_named(provider) {
            Some(fam) => api_base_for(fam, &b),
            None => b.trim_end_matches('/').to_string(),
        },
        (None, Some(d)) => d,
        // Named through a missing variable: the deployment is already unavailable.
        (None, None) if api_base_from_env => String::new(),
        (None, None) => {
            return Err(ctx.error(
                &child(&e.params_path, "model"),
                format!(
                    "{} '{}' ({}) needs litellm_params.api_base: {provider} has no default base URL",
                    item("model_list", e.index),
                    e.group,
                    e.model
                ),
            ));
        }
    };
    let api_version = match (api_version, wire) {
        (None, Wire::Azure) => Some(AZURE_DEFAULT_API_VERSION.to_string()),
        (v, _) => v,
    };
    Ok(Endpoint {
        provider: provider.to_string(),
        wire,
        model,
        api_base,
        api_key,
        api_version,
        organization,
        unavailable,
    })
}

/// `litellm_params.headers` with `extra_headers` over them (LiteLLM's merge: both are sent, the
/// extra one wins a name both set). Names must be HTTP header names and values one line;
/// `os.environ/VAR` values are read, and a missing variable makes the deployment unavailable
/// as a missing key does (the header may well be the credential).
fn headers(
    ctx: &mut Ctx,
    e: &Entry,
    who: &str,
    unavailable: &mut Option<String>,
) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out: Vec<(String, Secret)> = Vec::new();
    for key in ["headers", "extra_headers"] {
        let Some(v) = e.params.get(key) else {
            continue;
        };
        let path = child(&e.params_path, key);
        let Some(map) = ctx.mapping(v, &path)? else {
            continue;
        };
        for (name, value) in entries(map) {
            let at = child(&path, &name);
            if name.is_empty() || !name.bytes().all(is_header_name_byte) {
                return Err(ctx.error(
                    &at,
                    format!("{at}: '{name}' is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"),
                ));
            }
            if credential_header(&name) {
                ctx.note_secret(value, &at);
            }
            let text = match ctx.env_string(value, &at)? {
                None => continue,
                Some(EnvValue::Set(s)) => s,
                Some(EnvValue::Missing(var)) => {
                    let why =
                        format!("environment variable {var} is not set ({who}, {key}.{name})");
                    ctx.warn(&at, format!("{why}; the deployment is unavailable"));
                    unavailable.get_or_insert(why);
                    continue;
                }
            };
            if text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(ctx.error(
                    &at,
                    format!("{at}: a header value must be one line without control characters"),
                ));
            }
            out.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            out.push((name, Secret::new(text)));
        }
    }
    Ok(out)
}

/// A header name that usually carries a credential (for the warning about a config file
/// others can read; every header value is kept as a secret all the same).
fn credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie", "password"]
        .iter()
        .any(|w| name.contains(w))
}

/// A byte of an HTTP header name (RFC 9110 `tchar`).
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One `litellm_params` key read with `read`; `None` when absent or bad.
fn field<'a, T>(
    ctx: &mut Ctx<'a>,
    e: &Entry,
    key: &str,
    read: impl FnOnce(&mut Ctx<'a>, &Value, &str) -> Result<Option<T>, ConfigError>,
) -> Option<T> {
    let v = e.params.get(key)?;
    // A bad value is kept for the report and counts as absent, so the entry's other fields
    // are still read (and their errors reported too).
    let read = read(ctx, v, &child(&e.params_path, key));
    ctx.recover(read).flatten()
}

/// Prices and model facts: `litellm_params` wins over `model_info`.
fn prices(
    ctx: &mut Ctx,
    d: &mut Deployment,
    e: &Entry,
    info: Option<&Mapping>,
    info_path: &str,
) -> Result<(), ConfigError> {
    let price = |ctx: &mut Ctx, key: &str| -> Result<Option<f64>, ConfigError> {
        if let Some(v) = e.params.get(key)
            && let Some(p) = ctx.non_negative(v, &child(&e.params_path, key))?
        {
            return Ok(Some(p));
        }
        match info.and_then(|i| i.get(key)) {
            Some(v) => ctx.non_negative(v, &child(info_path, key)),
            None => Ok(None),
        }
    };
    d.input_cost_per_token = price(ctx, "input_cost_per_token")?;
    d.output_cost_per_token = price(ctx, "output_cost_per_token")?;
    d.cache_read_input_token_cost = price(ctx, "cache_read_input_token_cost")?;
    d.cache_creation_input_token_cost = price(ctx, "cache_creation_input_token_cost")?;
    d.output_cost_per_reasoning_token = price(ctx, "output_cost_per_reasoning_token")?;
    if let Some(v) = e.params.get("base_model") {
        d.base_model = ctx.string(v, &child(&e.params_path, "base_model"))?;
    }
    let Some(info) = info else {
        return Ok(());
    };
    // LiteLLM looks at `model_info.base_model` before `litellm_params.base_model`.
    if let Some(v) = info.get("base_model")
        && let Some(b) = ctx.string(v, &child(info_path, "base_model"))?
    {
        d.base_model = Some(b);
    }
    if let Some(v) = info.get("max_input_tokens") {
        d.max_input_tokens = ctx.u64(v, &child(info_path, "max_input_tokens"))?;
    }
    if let Some(v) = info.get("supports_function_calling") {
        d.supports_function_calling =
            ctx.bool(v, &child(info_path, "supports_function_calling"))?;
    }
    if let Some(v) = info.get("supports_vision") {
        d.supports_vision = ctx.bool(v, &child(info_path, "supports_vision"))?;
    }
    if let Some(v) = info.get("mode") {
        d.mode = ctx
            .string(v, &child(info_path, "mode"))?
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty());
    }
    // LiteLLM's legacy `max_tokens`: checked, but the context window is `max_input_tokens`.
    if let Some(v) = info.get("max_tokens") {
        ctx.u64(v, &child(info_path, "max_tokens"))?;
    }
    Ok(())
}

/// `mock_*` keys: the behaviour of a `mock/` deployment; on any other, one warning each.
fn mock_params(ctx: &mut Ctx, e: &Entry, wire: Wire) -> Result<Option<MockParams>, ConfigError> {
    if wire != Wire::Mock {
        for (key, _) in entries(e.params) {
            if key.starts_with("mock_") {
                let path = child(&e.params_path, &key);
                let at = ctx.pos.key(&path);
                ctx.warn_at(
                    at,
                    format!("{path} only applies to mock/ deployments; ignored"),
                );
            }
        }
        return Ok(None);
    }
    let mut m = MockParams::default();
    let key_path = |key: &str| child(&e.params_path, key);
    if let Some(v) = e.params.get("mock_response") {
        m.response = ctx.string(v, &key_path("mock_response"))?;
    }
    if let Some(v) = e.params.get("mock_tokens")
        && let Some(n) = ctx.u32(v, &key_path("mock_tokens"))?
    {
        m.tokens = n;
    }
    if let Some(v) = e.params.get("mock_tokens_per_s")
        && let Some(n) = ctx.non_negative(v, &key_path("mock_tokens_per_s"))?
    {
        if n == 0.0 {
            return Err(ctx.error(
                &key_path("mock_tokens_per_s"),
                format!("{} must be more than 0", key_path("mock_tokens_per_s")),
            ));
        }
        m.tokens_per_s = n;
    }
    if let Some(v) = e.params.get("mock_ttft_ms")
        && let Some(ms) = ctx.u64(v, &key_path("mock_ttft_ms"))?
    {
        m.ttft = Duration::from_millis(ms);
    }
    if let Some(v) = e.params.get("mock_error") {
        let path = key_path("mock_error");
        if let Some(status) = ctx.whole(v, &path, MAX_HTTP_STATUS)? {
            if status < MIN_HTTP_STATUS {
                return Err(ctx.error(
                    &path,
                    format!(
                        "{path} must be an HTTP status from {MIN_HTTP_STATUS} to {MAX_HTTP_STATUS}"
                    ),
                ));
            }
            m.error = u16::try_from(status).ok();
        }
    }
    if let Some(v) = e.params.get("mock_error_rate") {
        let path = key_path("mock_error_rate");
        if let Some(rate) = ctx.non_negative(v, &path)? {
            if rate > 1.0 {
                return Err(ctx.error(&path, format!("{path} must be between 0 and 1, not {rate}")));
            }
            m.error_rate = rate;
        }
    }
    Ok(Some(m))
}
