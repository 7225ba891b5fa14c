//! Anthropic Messages (`POST {api_base}/v1/messages`).
//!
//! A [`ChatRequest`] enters [`open`]: [`body`] writes it in Anthropic's shape (system
//! messages as the top-level `system`, tools, tool calls and results as blocks, images),
//! `max_tokens` is always sent (request, else deployment, else [`DEFAULT_MAX_TOKENS`]), the key
//! goes in `x-api-key` with `anthropic-version`. [`AnthropicDecoder`] turns the named SSE
//! events into [`StreamEvent`]s: text and thinking deltas, `tool_use` blocks and their
//! `input_json_delta` pieces as tool calls (numbered in the order they start), usage from `message_start`
//! (input, cache reads and writes) and `message_delta` (cumulative output), `Done` at
//! `message_stop`; `ping` is ignored and an `error` event after the 200 becomes a classified
//! error (`overloaded_error` is a server error with status 529).

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::http::{HttpClient, json_events, scrub_errors, secret_header};
use super::outbound::{self, Secrets};
use super::sse::{SseEvent, UsageTracker, WireDecoder, drive_sse};
use super::tools::generated_id;
use super::{
    ChatRequest, ErrorClass, EventStream, ProviderError, StreamEvent, ToolCallDelta, Usage,
    estimate_prompt_tokens,
};
use crate::config::Deployment;

mod body;

pub use body::{request_body, safe_id, tool_json};

/// The API version we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when neither the request nor the deployment sets one (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The status Anthropic uses for `overloaded_error` outside a stream.
const OVERLOADED_STATUS: u16 = 529;

/// Sends the request and returns its event stream (see the module docs).
pub async fn open(
    client: &HttpClient,
    deployment: &Deployment,
    request: &ChatRequest,
) -> Result<EventStream, ProviderError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "anthropic-version",
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    if request.stream {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(key) = deployment.api_key.as_ref().filter(|k| !k.is_empty()) {
        headers.insert("x-api-key", secret_header(key.expose())?);
    }
    outbound::apply(deployment, &mut headers)?;
    let body = request_body(deployment, request)?;
    let response = client
        .post_json(
            &endpoint(deployment),
            headers,
            &body,
            Secrets::of(deployment),
        )
        .await?;
    let prompt = estimate_prompt_tokens(&request.messages);
    let events = if request.stream {
        drive_sse(response, AnthropicDecoder::new(prompt))
    } else {
        json_events(response, move |v| decode_response(&v, prompt))
    };
    Ok(scrub_errors(events, Secrets::of(deployment)))
}

/// Members of a Messages request that Anthropic's token counting takes.
const COUNT_TOKENS_TAKES: [&str; 6] = [
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

/// Asks `deployment`'s own `/v1/messages/count_tokens` how many input tokens `body` (a
/// Messages request as a client sent it) has: what it takes of `body`, for its own model.
pub async fn count_tokens(
    client: &HttpClient,
    deployment: &Deployment,
    body: &serde_json::Map<String, Value>,
) -> Result<u64, ProviderError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "anthropic-version",
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    if let Some(key) = deployment.api_key.as_ref().filter(|k| !k.is_empty()) {
        headers.insert("x-api-key", secret_header(key.expose())?);
    }
    outbound::apply(deployment, &mut headers)?;
    let mut sent: serde_json::Map<String, Value> = body
        .iter()
        .filter(|(k, _)| COUNT_TOKENS_TAKES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sent.insert("model".into(), Value::String(deployment.model.clone()));
    let url = format!("{}/count_tokens", endpoint(deployment));
    let response = client
        .post_json(&url, headers, &sent, Secrets::of(deployment))
        .await?;
    let mut events = scrub_errors(
        json_events(response, |v| {
            v.get("input_tokens")
                .and_then(Value::as_u64)
                .map(|n| {
                    vec![StreamEvent::Usage(Usage {
                        input: n,
                        ..Usage::default()
                    })]
                })
                .ok_or_else(|| {
                    ProviderError::protocol("the token count answer has no `input_tokens`")
                })
        }),
        Secrets::of(deployment),
    );
    match futures::StreamExt::next(&mut events).await {
        Some(Ok(StreamEvent::Usage(u))) => Ok(u.input),
        Some(Err(e)) => Err(e),
        _ => Err(ProviderError::protocol(
            "the token count answer has no `input_tokens`",
        )),
    }
}

/// `{api_base}/v1/messages`, for a base given with or without its `/v1`.
pub fn endpoint(deployment: &Deployment) -> String {
    let base = deployment.api_base.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/messages")
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The error of an `error` event or an error body, classified by its `type`.
pub fn error_from(error: &Value) -> ProviderError {
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("Anthropic reported an error");
    let status = match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => OVERLOADED_STATUS,
        _ => 500,
    };
    let mut e = ProviderError::from_http(status, message, None);
    if !kind.is_empty() {
        e.message = format!("{kind}: {}", e.message);
    }
    e
}

/// Decodes Anthropic's named SSE events (see the module docs).
#[derive(Debug)]
pub struct AnthropicDecoder {
    usage: UsageTracker,
    current: Usage,
    /// `input_tokens` as sent: without the cached tokens, which our `Usage.input` includes.
    uncached_input: u64,
    stop_reason: Option<String>,
    /// For each content block index that is a `tool_use`: its tool call index, and whether
    /// any arguments came for it.
    tool_blocks: Vec<(u64, u32, bool)>,
    done: bool,
}

impl AnthropicDecoder {
    pub fn new(prompt_estimate: u64) -> AnthropicDecoder {
        AnthropicDecoder {
            usage: UsageTracker::new(prompt_estimate),
            current: Usage::default(),
            uncached_input: 0,
            stop_reason: None,
            tool_blocks: Vec::new(),
            done: false,
        }
    }

    /// Folds a `usage` object into the running counts; input includes cached tokens.
    fn apply_usage(&mut self, wire: &WireUsage) {
        let u = &mut self.current;
        if let Some(n) = wire.cache_read_input_tokens {
            u.cached_input = n;
        }
        if let Some(n) = wire.cache_creation_input_tokens {
            u.cache_write = n;
        }
        if let Some(n) = wire.input_tokens {
            self.uncached_input = n;
        }
        u.input = self
            .uncached_input
            .saturating_add(u.cached_input)
            .saturating_add(u.cache_write);
        if let Some(n) = wire.output_tokens {
            u.output = n;
        }
        self.usage.report(self.current);
    }

    fn close(&mut self) -> Vec<StreamEvent> {
        self.done = true;
        vec![
            StreamEvent::Usage(self.usage.finish()),
            StreamEvent::Done {
                finish_reason: self.stop_reason.clone(),
            },
        ]
    }

    /// A `tool_use` block starts tool call number `tool_blocks.len()`. A whole block's
    /// `input` is its arguments (`{}` when empty); a streamed one's come as pieces.
    fn tool_start(&mut self, block_index: u64, block: &Value, whole: bool) -> StreamEvent {
        let index = self.tool_blocks.len() as u32;
        let arguments = match block.get("input") {
            Some(Value::Object(m)) if m.is_empty() && !whole => String::new(),
            Some(v @ Value::Object(_)) => v.to_string(),
            _ if whole => "{}".to_string(),
            _ => String::new(),
        };
        self.tool_blocks
            .push((block_index, index, !arguments.is_empty()));
        self.usage.saw_text(&arguments);
        StreamEvent::ToolCall(ToolCallDelta {
            index,
            id: Some(
                block
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(generated_id, str::to_string),
            ),
            name: block
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string),
            arguments,
        })
    }

    /// The end of a streamed `tool_use` block that got no arguments: `{}`, so that clients
    /// parsing the arguments as JSON get an object, not an empty string.
    fn tool_stop(&mut self, block_index: u64) -> Option<StreamEvent> {
        let tool = self
            .tool_blocks
            .iter_mut()
            .find(|(b, _, _)| *b == block_index)?;
        if tool.2 {
            return None;
        }
        tool.2 = true;
        Some(StreamEvent::ToolCall(ToolCallDelta {
            index: tool.1,
            id: None,
            name: None,
            arguments: "{}".to_string(),
        }))
    }
}

impl WireDecoder for AnthropicDecoder {
    type Item = SseEvent;

    fn decode_event(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let value: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::protocol(format!("malformed JSON in an Anthropic event: {e}"))
        })?;
        // The payload's `type` names the event; the SSE `event:` field is the fallback.
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                if let Some(u) = value.pointer("/message/usage") {
                    self.apply_usage(&parse_usage(u)?);
                    out.push(StreamEvent::Usage(self.current));
                }
            }
            "content_block_start" => {
                let block = value.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let at = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                    out.push(self.tool_start(at, block, false));
                } else if let Some(text) =
                    value.pointer("/content_block/text").and_then(Value::as_str)
                    && !text.is_empty()
                {
                    self.usage.saw_text(text);
                    out.push(StreamEvent::Delta(text.to_string()));
                }
            }
            "content_block_delta" => {
                let delta = value.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = delta.get("text").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            self.usage.saw_text(t);
                            out.push(StreamEvent::Delta(t.to_string()));
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = delta.get("thinking").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            self.usage.saw_text(t);
                            out.push(StreamEvent::Reasoning(t.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let at = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let tool = self.tool_blocks.iter_mut().find(|(b, _, _)| *b == at);
                        if let (Some((_, index, seen)), Some(json)) =
                            (tool, delta.get("partial_json").and_then(Value::as_str))
                            && !json.is_empty()
                        {
                            *seen = true;
                            self.usage.saw_text(json);
                            out.push(StreamEvent::ToolCall(ToolCallDelta {
                                index: *index,
                                id: None,
                                name: None,
                                arguments: json.to_string(),
                            }));
                        }
                    }
                    // Thinking signatures are not part of a chat answer.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    stop_error(reason)?;
                    self.stop_reason = Some(reason.to_string());
                }
                if let Some(u) = value.get("usage") {
                    self.apply_usage(&parse_usage(u)?);
                }
            }
            "content_block_stop" => {
                let at = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                out.extend(self.tool_stop(at));
            }
            "message_stop" => return Ok(self.close()),
            "error" => {
                return Err(error_from(value.get("error").unwrap_or(&Value::Null)));
            }
            // `ping` and event types added later carry nothing for us.
            _ => {}
        }
        Ok(out)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn end(&mut self, cause: Option<ProviderError>) -> Result<Vec<StreamEvent>, ProviderError> {
        // A stop_reason means the answer is whole even if message_stop was lost.
        if self.stop_reason.is_some() {
            return Ok(self.close());
        }
        Err(cause.unwrap_or_else(|| {
            ProviderError::protocol("truncated stream: it ended before message_stop")
        }))
    }
}

fn parse_usage(value: &Value) -> Result<WireUsage, ProviderError> {
    WireUsage::deserialize(value)
        .map_err(|e| ProviderError::protocol(format!("malformed Anthropic usage: {e}")))
}

/// Stop reasons that are failures rather than answers.
fn stop_error(reason: &str) -> Result<(), ProviderError> {
    if reason == "refusal" {
        return Err(ProviderError::new(
            ErrorClass::ContentPolicy,
            "the model refused to answer (stop_reason: refusal)",
        ));
    }
    Ok(())
}

/// Decodes a whole (non-streaming) Messages answer into the same events as a stream.
pub fn decode_response(
    value: &Value,
    prompt_estimate: u64,
) -> Result<Vec<StreamEvent>, ProviderError> {
    if value.get("type").and_then(Value::as_str) == Some("error") || value.get("error").is_some() {
        return Err(error_from(value.get("error").unwrap_or(&Value::Null)));
    }
    let mut decoder = AnthropicDecoder::new(prompt_estimate);
    let mut out = Vec::new();
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::protocol("an Anthropic answer without content"))?;
    for (at, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => out.push(decoder.tool_start(at as u64, block, true)),
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    decoder.usage.saw_text(t);
                    out.push(StreamEvent::Delta(t.to_string()));
                }
            }
            Some("thinking") => {
                if let Some(t) = block.get("thinking").and_then(Value::as_str) {
                    decoder.usage.saw_text(t);
                    out.push(StreamEvent::Reasoning(t.to_string()));
                }
            }
            _ => {}
        }
    }
    if let Some(reason) = value.get("stop_reason").and_then(Value::as_str) {
        stop_error(reason)?;
        decoder.stop_reason = Some(reason.to_string());
    }
    if let Some(u) = value.get("usage") {
        decoder.apply_usage(&parse_usage(u)?);
    }
    out.extend(decoder.close());
    Ok(out)
}
