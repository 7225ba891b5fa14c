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
pub mod embed;
pub mod error;
pub mod gemini;
pub mod http;
pub mod mock;
pub mod ollama;
pub mod openai;
pub mod outbound;
pub mod params;
pub mod passthrough;
pub mod preview;
pub mod sse;
pub mod tools;

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::config::{Deployment, Wire};

pub use error::{ErrorClass, ProviderError};
pub use http::{HttpClient, HttpOptions, Transport};
pub use passthrough::{Members, Passthrough};
pub use tools::{
    ArgumentsNotAnObject, BuiltinTool, ImageSource, Part, ToolApi, ToolCall, ToolCallBuilder,
    ToolCallDelta, ToolChoice, ToolSpec,
};

/// Prompt tokens counted for one image when estimating (a typical tile of a vision model).
pub const IMAGE_TOKEN_ESTIMATE: u64 = 800;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call (`tool_call_id` says which).
    Tool,
}

impl Role {
    /// The role's name on the OpenAI and Ollama wires (and in serde).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
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

/// One message of a conversation. `content` is always its whole text, so code that only
/// reads text (the TUI, token estimates) needs nothing else; the other fields are set only
/// for messages that carry images or tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Text and images in order, when the message holds an image (its text parts joined
    /// are `content`); empty for text-only messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The calls an assistant message asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For [`Role::Tool`]: the call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For [`Role::Tool`]: the tool reported a failure (Anthropic's `is_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            parts: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }
    /// The result of tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
    /// A message of parts: `content` becomes the text parts joined with newlines, and
    /// `parts` is kept only when one of them is an image.
    pub fn with_parts(role: Role, parts: Vec<Part>) -> Self {
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                Part::Image { .. } => None,
            })
            .collect();
        let content = texts.join("\n");
        let has_image = parts.iter().any(|p| matches!(p, Part::Image { .. }));
        Message {
            parts: if has_image { parts } else { Vec::new() },
            ..Message::new(role, content)
        }
    }
    /// The message as parts: `parts` when set, else its text as one part (none when empty).
    pub fn content_parts(&self) -> Vec<Part> {
        if !self.parts.is_empty() {
            return self.parts.clone();
        }
        if self.content.is_empty() {
            return Vec::new();
        }
        vec![Part::Text {
            text: self.content.clone(),
        }]
    }
    pub fn has_images(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Image { .. }))
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
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// OpenAI's `parallel_tool_calls` (Anthropic's `disable_parallel_tool_use`, inverted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Other parameters, named as OpenAI names them where it has a name (`stop`, `top_p`,
    /// `seed`, `user`, `response_format`, …), else as the client's API does (`top_k`,
    /// `thinking`). Each wire takes the ones it knows; see [`params`] for the rest.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// What is asked: a chat answer (the default), or embeddings of an input.
    #[serde(default, skip_serializing_if = "Operation::is_chat")]
    pub operation: Operation,
}

fn yes() -> bool {
    true
}

/// What a request asks a deployment for. Every operation goes through the router the same
/// way (groups, retries, cooldowns, fallbacks, cost, events); only the call differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// A chat answer to `messages`.
    #[default]
    Chat,
    /// Embeddings of `input`, as OpenAI's embeddings API takes it (a string, a list of
    /// strings, a list of token ids or a list of such lists). `messages` holds the input's
    /// texts as one user message, for the router's token estimates; `extra` the API's other
    /// fields (`dimensions`, `encoding_format`, `user`). The answer comes back as a
    /// [`Passthrough`] whose `top` members are OpenAI's `data` (see [`embed`]).
    Embedding { input: serde_json::Value },
}

impl Operation {
    pub fn is_chat(&self) -> bool {
        matches!(self, Operation::Chat)
    }
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
    /// A piece of a tool call the model makes.
    ToolCall(ToolCallDelta),
    /// What the upstream sent that llmux does not model, for a front end of the same wire to
    /// pass back; it comes before the events of the same chunk (see [`passthrough`]).
    Passthrough(Box<Passthrough>),
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
    if let Operation::Embedding { input } = &request.operation {
        return embed::open(client, deployment, input, request).await;
    }
    // What this deployment does not take is dropped (`drop_params`) or refused here, before
    // any network.
    let fitted = params::fit(deployment, request)?;
    let request = fitted.as_ref().unwrap_or(request);
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

/// Estimated prompt tokens of a whole request, with a few tokens of framing per message
/// (images and tool calls included).
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let images = m
                .parts
                .iter()
                .filter(|p| matches!(p, Part::Image { .. }))
                .count() as u64;
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                .sum();
            estimate_tokens(&m.content) + 4 + images * IMAGE_TOKEN_ESTIMATE + calls
        })
        .sum()
}
