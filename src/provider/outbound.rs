//! What goes upstream besides the body: a deployment's configured headers
//! (`litellm_params.headers` and `extra_headers`) and its `organization`, and the secrets that
//! must never come back in an error text (its key and those header values).
//!
//! Each wire builds its own headers (auth, version, `Accept`), then [`apply`] lays the
//! deployment's over them the way LiteLLM's clients do: over everything for the OpenAI,
//! Azure, Gemini and Ollama wires (the OpenAI SDK's `extra_headers`, `httpx` header updates),
//! while Anthropic's own auth and version headers stay as llmux wrote them and
//! `anthropic-beta` values are joined (LiteLLM's `get_anthropic_headers` wins over the
//! caller's, and merges the beta list). `Content-Type` and the framing headers are never
//! replaced: they describe the body llmux sends. Every configured value is marked sensitive,
//! so the HTTP stack never prints it, and [`Secrets`] scrubs them from error texts.

use reqwest::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};

use super::{ErrorClass, ProviderError};
use crate::config::{Deployment, Wire};
use crate::secret::Secret;

/// The header `organization` is sent as.
pub const ORGANIZATION_HEADER: &str = "openai-organization";
/// Anthropic's list of beta features, joined rather than replaced.
const ANTHROPIC_BETA: &str = "anthropic-beta";
/// Anthropic headers llmux writes that a configured header does not replace (LiteLLM's own
/// win over the caller's there).
const ANTHROPIC_OWN: [&str; 3] = ["x-api-key", "anthropic-version", "authorization"];

/// Families whose chat calls LiteLLM makes through its generic OpenAI client, which sends
/// `organization` as `OpenAI-Organization` (the ones with a client of their own, and Azure,
/// do not).
const ORGANIZATION_FAMILIES: [&str; 4] = ["openai", "custom_openai", "litellm_proxy", "dashscope"];

/// True when `d` sends its `organization`.
pub fn sends_organization(d: &Deployment) -> bool {
    d.wire == Wire::OpenAi && ORGANIZATION_FAMILIES.contains(&d.provider.as_str())
}

/// Lays `d`'s organization and configured headers over `headers` (see the module docs).
pub fn apply(d: &Deployment, headers: &mut HeaderMap) -> Result<(), ProviderError> {
    if let Some(org) = d.organization.as_deref().filter(|o| !o.is_empty())
        && sends_organization(d)
    {
        headers.insert(
            HeaderName::from_static(ORGANIZATION_HEADER),
            sensitive(org, ORGANIZATION_HEADER, d)?,
        );
    }
    for (name, value) in &d.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ProviderError::new(
                ErrorClass::BadRequest,
                format!("deployment {}: '{name}' is not an HTTP header name", d.id),
            )
        })?;
        if [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING, HOST].contains(&name) {
            continue;
        }
        let value = sensitive(value.expose(), name.as_str(), d)?;
        if d.wire == Wire::Anthropic {
            if ANTHROPIC_OWN.contains(&name.as_str()) && headers.contains_key(&name) {
                continue;
            }
            if name.as_str() == ANTHROPIC_BETA
                && let Some(ours) = headers.get(&name)
            {
                let joined = [ours.as_bytes(), b",", value.as_bytes()].concat();
                let mut v =
                    HeaderValue::from_bytes(&joined).map_err(|_| bad_value(ANTHROPIC_BETA, d))?;
                v.set_sensitive(true);
                headers.insert(name, v);
                continue;
            }
        }
        headers.insert(name, value);
    }
    Ok(())
}

/// A configured value as a header value no log will print.
fn sensitive(value: &str, name: &str, d: &Deployment) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| bad_value(name, d))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The value is not given back: it may be a credential.
fn bad_value(name: &str, d: &Deployment) -> ProviderError {
    ProviderError::new(
        ErrorClass::BadRequest,
        format!(
            "deployment {}: the value of header '{name}' has characters not allowed in an HTTP header",
            d.id
        ),
    )
}

/// What a deployment sends that must not come back in an error text: its key and its
/// configured header values. Borrowed from the deployment (nothing copied per request).
#[derive(Debug, Clone, Copy, Default)]
pub struct Secrets<'a> {
    key: Option<&'a Secret>,
    headers: &'a [(String, Secret)],
}

impl<'a> Secrets<'a> {
    pub fn of(d: &'a Deployment) -> Secrets<'a> {
        Secrets {
            key: d.api_key.as_ref(),
            headers: &d.headers,
        }
    }

    /// Just a key (for callers with no deployment).
    pub fn key(key: Option<&'a Secret>) -> Secrets<'a> {
        Secrets { key, headers: &[] }
    }

    /// `text` with every secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = match self.key {
            Some(k) => k.scrub(text),
            None => text.to_string(),
        };
        for (_, v) in self.headers {
            out = v.scrub(&out);
        }
        out
    }

    /// The length of the longest secret, in bytes (0 when there is none).
    pub fn longest(&self) -> usize {
        self.key
            .into_iter()
            .chain(self.headers.iter().map(|(_, v)| v))
            .map(|s| s.expose().len())
            .max()
            .unwrap_or(0)
    }

    /// The secrets owned, for a stream that outlives the deployment's borrow; `None` when
    /// there is nothing to scrub.
    pub fn owned(&self) -> Option<Vec<Secret>> {
        let all: Vec<Secret> = self
            .key
            .into_iter()
            .chain(self.headers.iter().map(|(_, v)| v))
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(wire: Wire, provider: &str) -> Deployment {
        Deployment {
            headers: vec![
                ("X-Team".into(), Secret::new("blue")),
                ("Authorization".into(), Secret::new("Bearer gateway-token")),
                ("Content-Type".into(), Secret::new("text/plain")),
                ("anthropic-beta".into(), Secret::new("tools-2024")),
            ],
            organization: Some("org-42".into()),
            ..Deployment::new("g", provider, wire, "m")
        }
    }

    fn ours() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-key"));
        h.insert("x-api-key", HeaderValue::from_static("sk-key"));
        h.insert("anthropic-beta", HeaderValue::from_static("ours-1"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h
    }

    #[test]
    fn configured_headers_go_over_ours_except_the_body_s_and_anthropic_s_own() {
        let mut h = ours();
        apply(&dep(Wire::OpenAi, "openai"), &mut h).unwrap();
        assert_eq!(h["x-team"], "blue");
        assert_eq!(h["authorization"], "Bearer gateway-token");
        assert_eq!(h["openai-organization"], "org-42");
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert!(h["x-team"].is_sensitive() && h["openai-organization"].is_sensitive());

        let mut h = ours();
        apply(&dep(Wire::Anthropic, "anthropic"), &mut h).unwrap();
        assert_eq!(h["authorization"], "Bearer sk-key", "Anthropic's own stay");
        assert_eq!(
            h["anthropic-beta"], "ours-1,tools-2024",
            "beta lists are joined"
        );
        assert_eq!(h["x-team"], "blue");
        assert!(!h.contains_key("openai-organization"));
    }

    #[test]
    fn organization_goes_where_litellm_sends_it() {
        for (wire, provider, sent) in [
            (Wire::OpenAi, "openai", true),
            (Wire::OpenAi, "litellm_proxy", true),
            (Wire::OpenAi, "groq", false),
            (Wire::Azure, "azure", false),
            (Wire::Gemini, "gemini", false),
        ] {
            let mut h = HeaderMap::new();
            apply(&dep(wire, provider), &mut h).unwrap();
            assert_eq!(h.contains_key("openai-organization"), sent, "{provider}");
        }
    }

    #[test]
    fn secrets_scrub_the_key_and_every_header_value() {
        let mut d = dep(Wire::OpenAi, "openai");
        d.api_key = Some(Secret::new("sk-key-123"));
        let s = Secrets::of(&d);
        let text = s.scrub("echo: sk-key-123 / Bearer gateway-token");
        assert!(
            !text.contains("sk-key-123") && !text.contains("gateway-token"),
            "{text}"
        );
        assert_eq!(s.owned().map(|v| v.len()), Some(5));
        assert_eq!(Secrets::default().owned(), None);
    }
}
