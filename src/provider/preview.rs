//! The request a deployment is sent, as text for a person to read (the TUI's inspector): the
//! method, URL, headers and JSON body each wire builds, after `drop_params` fitting, with every
//! secret redacted. Built only when someone asks (a capture is on); the call itself builds
//! its own.
//!
//! Header values the wire marks secret (keys, configured headers, `organization`) are shown
//! as `[redacted]`, and the URL and body go through the deployment's [`Secrets`] as error
//! texts do, so a key echoed anywhere is gone too.

use serde::{Deserialize, Serialize};

use super::outbound::{self, Secrets};
use super::{ChatRequest, Operation, anthropic, gemini, ollama, openai, params};
use crate::config::{Deployment, Wire};
use crate::secret::REDACTED;

/// One request as it goes over the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRequest {
    /// `POST`, or `in-process` for the built-in mock provider (nothing crosses a network).
    pub method: String,
    pub url: String,
    /// Name and value, values of secret headers redacted.
    pub headers: Vec<(String, String)>,
    /// The JSON body, pretty-printed; or why the request was refused before it was sent.
    pub body: String,
}

/// What `request` becomes on `d`'s wire (see the module docs).
pub fn as_sent(d: &Deployment, request: &ChatRequest) -> SentRequest {
    let secrets = Secrets::of(d);
    let fitted = match params::fit(d, request) {
        Ok(f) => f,
        Err(e) => {
            return SentRequest {
                method: "(not sent)".to_string(),
                body: e.message,
                ..SentRequest::default()
            };
        }
    };
    let request = fitted.as_ref().unwrap_or(request);
    if matches!(request.operation, Operation::Embedding { .. }) {
        return SentRequest {
            method: "POST".to_string(),
            url: format!("{}/embeddings", d.api_base.trim_end_matches('/')),
            body: "(an embeddings request)".to_string(),
            ..SentRequest::default()
        };
    }
    let (url, headers, body) = match d.wire {
        Wire::OpenAi | Wire::Azure => (
            openai::endpoint(d),
            openai::headers(d, request.stream),
            serde_json::to_value(openai::request_body(d, request)).map_err(|e| e.to_string()),
        ),
        Wire::Anthropic => (
            anthropic::endpoint(d),
            own_headers(
                d,
                &[
                    ("anthropic-version", anthropic::ANTHROPIC_VERSION),
                    ("accept", "text/event-stream"),
                    ("x-api-key", REDACTED),
                ],
                request.stream,
            ),
            anthropic::request_body(d, request).map_err(|e| e.message),
        ),
        Wire::Gemini => (
            gemini::endpoint(d, request.stream),
            own_headers(
                d,
                &[
                    ("accept", "text/event-stream"),
                    ("x-goog-api-key", REDACTED),
                ],
                request.stream,
            ),
            gemini::request_body(d, request).map_err(|e| e.message),
        ),
        Wire::OllamaChat => (
            ollama::endpoint(d),
            own_headers(d, &[("authorization", REDACTED)], request.stream),
            ollama::request_body(d, request).map_err(|e| e.message),
        ),
        Wire::Mock => {
            return SentRequest {
                method: "in-process".to_string(),
                url: format!("mock/{} (built-in, no network)", d.model),
                headers: Vec::new(),
                body: serde_json::to_string_pretty(request).unwrap_or_default(),
            };
        }
    };
    let headers = match headers {
        Ok(h) => h
            .iter()
            .map(|(name, value)| {
                let shown = if value.is_sensitive() {
                    REDACTED.to_string()
                } else {
                    secrets.scrub(&String::from_utf8_lossy(value.as_bytes()))
                };
                (name.as_str().to_string(), shown)
            })
            .collect(),
        Err(e) => vec![("(error)".to_string(), e.message)],
    };
    let body = match body {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(e) => format!("(cannot build the body: {e})"),
    };
    SentRequest {
        method: "POST".to_string(),
        url: secrets.scrub(&url),
        headers,
        body: secrets.scrub(&body),
    }
}

/// The headers of a wire that builds them inline: its own (the key only when one is set,
/// `accept` only when streaming), then the deployment's configured ones, values redacted.
fn own_headers(
    d: &Deployment,
    own: &[(&'static str, &'static str)],
    stream: bool,
) -> Result<reqwest::header::HeaderMap, super::ProviderError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut h = HeaderMap::new();
    let has_key = d.api_key.as_ref().is_some_and(|k| !k.is_empty());
    for (name, value) in own {
        let secret = *value == REDACTED;
        if (secret && !has_key) || (*name == "accept" && !stream) {
            continue;
        }
        let mut v = HeaderValue::from_static(value);
        v.set_sensitive(secret);
        h.insert(HeaderName::from_static(name), v);
    }
    outbound::apply(d, &mut h)?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Message;
    use crate::secret::Secret;

    #[test]
    fn keys_and_configured_headers_are_redacted_everywhere() {
        let mut d = Deployment::new("g", "openai", Wire::OpenAi, "gpt-4o-mini");
        d.api_key = Some(Secret::new("sk-very-secret-1"));
        d.api_base = "https://api.example.com/v1".into();
        d.headers = vec![("X-Team".into(), Secret::new("team-secret-2"))];
        let r = ChatRequest::new(vec![Message::user("my key is sk-very-secret-1")]);
        let s = as_sent(&d, &r);
        let all = format!("{s:?}");
        assert!(!all.contains("sk-very-secret-1"), "{all}");
        assert!(!all.contains("team-secret-2"), "{all}");
        assert_eq!(s.url, "https://api.example.com/v1/chat/completions");
        assert!(
            s.headers
                .contains(&("authorization".into(), REDACTED.into()))
        );
        assert!(s.headers.contains(&("x-team".into(), REDACTED.into())));
        assert!(s.body.contains("\"model\": \"gpt-4o-mini\""), "{}", s.body);
        for wire in [Wire::Anthropic, Wire::Gemini, Wire::OllamaChat] {
            let mut d = d.clone();
            d.wire = wire;
            let s = as_sent(&d, &r);
            let all = format!("{s:?}");
            assert!(!all.contains("sk-very-secret-1"), "{wire:?}: {all}");
            assert_eq!(s.method, "POST");
        }
    }
}
