//! Provider failures and their classes. The class is what the router decides on: whether to
//! retry, cool the deployment down, or go to a fallback list.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of failure an attempt met (LiteLLM's exception classes, plus ours for the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 429, or a provider's in-band rate-limit error.
    RateLimit,
    /// 408, or a deadline of ours (first token or whole request).
    Timeout,
    /// 5xx, 529 (Anthropic overloaded), and in-band server errors after a 200.
    Server,
    /// 401, 403.
    Auth,
    /// 400, 422 and other 4xx that retrying will not fix.
    BadRequest,
    /// 404: the model or endpoint does not exist.
    NotFound,
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// The provider refused the content.
    ContentPolicy,
    /// Connection refused, reset, DNS, TLS: nothing HTTP came back.
    Network,
    /// The upstream answered but broke the protocol: malformed or truncated stream.
    Protocol,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::RateLimit => "rate_limit",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Server => "server",
            ErrorClass::Auth => "auth",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::NotFound => "not_found",
            ErrorClass::ContextWindow => "context_window",
            ErrorClass::ContentPolicy => "content_policy",
            ErrorClass::Network => "network",
            ErrorClass::Protocol => "protocol",
        }
    }

    /// Every class, for tables and metrics.
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::RateLimit,
        ErrorClass::Timeout,
        ErrorClass::Server,
        ErrorClass::Auth,
        ErrorClass::BadRequest,
        ErrorClass::NotFound,
        ErrorClass::ContextWindow,
        ErrorClass::ContentPolicy,
        ErrorClass::Network,
        ErrorClass::Protocol,
    ];

    /// The class of an HTTP error status, refined by the body's text where providers signal
    /// context-window and content-policy errors only in the message.
    pub fn from_status(status: u16, body: &str) -> ErrorClass {
        let lower = body.to_ascii_lowercase();
        let context = [
            "context length",
            "context_length",
            "context window",
            "maximum context",
            "too many tokens",
            "prompt is too long",
            "input is too long",
        ];
        let policy = [
            "content_policy",
            "content policy",
            "content_filter",
            "safety",
        ];
        match status {
            400 | 413 | 422 if context.iter().any(|p| lower.contains(p)) => {
                ErrorClass::ContextWindow
            }
            400 | 403 if policy.iter().any(|p| lower.contains(p)) => ErrorClass::ContentPolicy,
            401 | 403 => ErrorClass::Auth,
            404 => ErrorClass::NotFound,
            408 => ErrorClass::Timeout,
            413 => ErrorClass::ContextWindow,
            429 => ErrorClass::RateLimit,
            400..=499 => ErrorClass::BadRequest,
            _ => ErrorClass::Server,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One failed attempt at a deployment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    pub class: ErrorClass,
    /// The HTTP status, when the upstream sent one (also for in-band errors that name one).
    pub status: Option<u16>,
    /// How long the upstream asked us to wait (Retry-After, retry-after-ms).
    pub retry_after: Option<Duration>,
    /// What went wrong, short, with any secret scrubbed.
    pub message: String,
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// An HTTP error status with its body (trimmed to a readable length).
    pub fn from_http(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        ProviderError {
            class: ErrorClass::from_status(status, body),
            status: Some(status),
            retry_after,
            message: summarize_body(body),
        }
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorClass::Timeout, message)
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorClass::Protocol, message)
    }

    pub fn network(message: impl Into<String>) -> Self {
        ProviderError::new(ErrorClass::Network, message)
    }
}

/// Longest error message we keep from an upstream body.
const MAX_ERROR_MESSAGE: usize = 300;

/// The `error.message` of a JSON error body when there is one, else the body itself, cut short.
pub fn summarize_body(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let err = v.get("error").unwrap_or(&v);
            err.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| err.as_str())
                .map(str::to_string)
        });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    if text.chars().count() > MAX_ERROR_MESSAGE {
        let cut: String = text.chars().take(MAX_ERROR_MESSAGE).collect();
        format!("{cut}…")
    } else if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(ErrorClass::from_status(429, ""), ErrorClass::RateLimit);
        assert_eq!(ErrorClass::from_status(503, ""), ErrorClass::Server);
        assert_eq!(ErrorClass::from_status(529, ""), ErrorClass::Server);
        assert_eq!(ErrorClass::from_status(401, ""), ErrorClass::Auth);
        assert_eq!(ErrorClass::from_status(404, ""), ErrorClass::NotFound);
        assert_eq!(ErrorClass::from_status(408, ""), ErrorClass::Timeout);
        assert_eq!(ErrorClass::from_status(400, "bad"), ErrorClass::BadRequest);
        assert_eq!(
            ErrorClass::from_status(400, "This model's maximum context length is 8192 tokens"),
            ErrorClass::ContextWindow
        );
        assert_eq!(
            ErrorClass::from_status(400, r#"{"error":{"code":"content_policy_violation"}}"#),
            ErrorClass::ContentPolicy
        );
    }

    #[test]
    fn summaries_prefer_the_json_message() {
        assert_eq!(
            summarize_body(r#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(summarize_body("plain"), "plain");
        assert_eq!(summarize_body(""), "(empty body)");
        assert!(summarize_body(&"x".repeat(1000)).ends_with('…'));
    }
}
