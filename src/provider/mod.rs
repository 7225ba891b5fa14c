//! Providers: each wire format (OpenAI chat completions and its compatible families, Azure,
//! Anthropic Messages, Gemini, Ollama's NDJSON chat, and the built-in `mock/`) turned into
//! one normalized stream of [`StreamEvent`]s.
//!
//! Data enters as a [`ChatRequest`] and a resolved [`Deployment`]; [`open`] sends the HTTP
//! request and returns once the upstream answered with headers (so a 429 and its Retry-After
//! surface here, before any token), then yields events as bytes arrive. Errors are
//! [`ProviderError`]s with a [`ErrorClass`] the router uses to decide retry, cooldown and
//! fallback. Deadlines are the router's job; dropping the stream drops the connection.

pub mod anthropic;
pub mod error;
pub mod gemini;
pub mod http;
pub mod mock;
pub mod ollama;
pub mod openai;
pub mod sse;

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::config::{Deployment, Wire};

pub use error::{ErrorClass, ProviderError};
pub use http::HttpClient;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name on the OpenAI and Ollama wires (and in serde).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// The system messages joined into one prompt, for the wires that take it apart from the
/// turns (Anthropic's `system`, Gemini's `systemInstruction`); `None` when there are none.
pub fn system_prompt(messages: &[Message]) -> Option<String> {
    let parts: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }
}

/// What the router asks a deployment for. Deployment defaults (`max_tokens`, `temperature`)
/// fill what the request leaves unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Ask the upstream for a stream (the router always does; `false` exercises the
    /// providers' plain JSON responses, normalized into the same events).
    #[serde(default = "yes")]
    pub stream: bool,
    /// Labels to split spend by (`ask --tag`, `metadata.tags` in `serve`); recorded with the
    /// request in the request log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Skip the response cache for this request (`ask --no-cache`, `cache: {no-cache: true}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
}

fn yes() -> bool {
    true
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            stream: true,
            ..Default::default()
        }
    }
}

/// Token counts of one answer, as the provider reported them (or estimated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, including cached ones.
    pub input: u64,
    /// Completion tokens, including reasoning ones.
    pub output: u64,
    /// Of `input`, read from the provider's prompt cache.
    #[serde(default)]
    pub cached_input: u64,
    /// Of `input`, written to the provider's prompt cache (Anthropic).
    #[serde(default)]
    pub cache_write: u64,
    /// Of `output`, spent on reasoning.
    #[serde(default)]
    pub reasoning: u64,
    /// True when no usage came from the provider and these are our estimates.
    #[serde(default)]
    pub estimated: bool,
}

/// The normalized stream every provider yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of the answer.
    Delta(String),
    /// A piece of reasoning (DeepSeek's `reasoning_content`, Anthropic thinking), kept apart
    /// from the answer.
    Reasoning(String),
    /// Token counts; may come more than once (Anthropic sends cumulative counts), the last wins.
    Usage(Usage),
    /// The answer is complete.
    Done { finish_reason: Option<String> },
}

/// A provider's event stream. It ends after `Done` or after the first `Err`.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// Sends `request` to `deployment` and returns its event stream once the upstream answered
/// with a success status. A non-success status is returned as a classified error carrying the
/// status and Retry-After.
pub async fn open(
    client: &HttpClient,
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    match deployment.wire {
        Wire::OpenAi | Wire::Azure => openai::open(client, deployment, request).await,
        Wire::Anthropic => anthropic::open(client, deployment, request).await,
        Wire::Gemini => gemini::open(client, deployment, request).await,
        Wire::OllamaChat => ollama::open(client, deployment, request).await,
        Wire::Mock => mock::open(deployment, request).await,
    }
}

/// A rough token count (about four bytes a token) for the context-window pre-check and for
/// usage a provider did not report.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Estimated prompt tokens of a whole request, with a few tokens of framing per message.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| estimate_tokens(&m.content) + 4)
        .sum()
}
