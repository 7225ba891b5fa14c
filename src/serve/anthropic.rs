//! Anthropic's Messages API: `POST /v1/messages`, so tools that speak Anthropic (pointed at
//! llmux with `ANTHROPIC_BASE_URL`) can use any model group.
//!
//! A request enters as Anthropic JSON: a top-level `system` (a string or text blocks) and
//! `messages` whose content is a string or content blocks (text blocks are kept, others such
//! as images and tool blocks are dropped for now). It leaves as a `message` object, or with
//! `stream: true` as Anthropic's event sequence: `message_start`, per content block
//! `content_block_start` / `content_block_delta` / `content_block_stop`, `message_delta`
//! with the stop reason and usage, `message_stop`. Reasoning becomes a `thinking` block.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::chat::{
    Admission, Begun, SseEncoder, Tracker, begin, frame, json_str, llmux_headers, parse_json,
    read_body, sse_response,
};
use super::error::{Api, ApiError};
use super::openai::flatten_content;
use crate::provider::{ChatRequest, Message, Role};
use crate::router::ChatOutcome;

#[derive(Debug, Deserialize)]
struct MessagesRequest {
    model: Option<String>,
    messages: Option<Vec<InMessage>>,
    #[serde(default)]
    system: Value,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

fn to_chat_request(req: MessagesRequest) -> Result<(String, ChatRequest, bool), ApiError> {
    let model = req
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `model`: name a model group"))?;
    let incoming = req
        .messages
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `messages`: send at least one message"))?;
    let mut messages = Vec::with_capacity(incoming.len() + 1);
    let system =
        flatten_content(&req.system).map_err(|e| ApiError::bad_request(format!("system: {e}")))?;
    if !system.is_empty() {
        messages.push(Message::system(system));
    }
    for (i, m) in incoming.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: role must be 'user' or 'assistant', not '{other}'"
                )));
            }
        };
        let content = flatten_content(&m.content)
            .map_err(|e| ApiError::bad_request(format!("messages[{i}]: {e}")))?;
        messages.push(Message::new(role, content));
    }
    let chat = ChatRequest {
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        stream: true,
        ..Default::default()
    };
    Ok((model, chat, req.stream.unwrap_or(false)))
}

/// `POST /v1/messages`.
pub async fn messages(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    match handle(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(Api::Anthropic),
    }
}

async fn handle(state: Shared, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let admission = Admission::take(&state)?;
    let bytes = read_body(&state, &headers, body).await?;
    let parsed: MessagesRequest = parse_json(&state, &bytes)?;
    let (model, mut request, stream) = to_chat_request(parsed).inspect_err(|_| {
        state.metrics.rejected("bad_request");
    })?;
    request.stream = stream;
    let mut tracker = Tracker::new(&state, Api::Anthropic, &model, admission);
    let outcome = match begin(&state, &model, request, &mut tracker).await {
        Begun::Streaming(started) if stream => {
            let enc = Events::new(started.stream.request_id, &model, started.prompt_tokens);
            return Ok(sse_response(started, enc, tracker));
        }
        Begun::Streaming(started) => {
            let result = started.stream.finish().await;
            tracker.finish(&result);
            result.map_err(ApiError::from)?
        }
        Begun::Done(result) => {
            tracker.finish(&result);
            result.map_err(ApiError::from)?
        }
    };
    let mut response = if stream {
        // The answer came whole (no text): send it as a stream all the same.
        let mut out = BytesMut::new();
        let mut enc = Events::new(outcome.request_id, &model, outcome.usage.input);
        enc.open(&mut out);
        enc.finish(&outcome, &mut out);
        let mut r = Response::new(Body::from(out.freeze()));
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/event-stream"),
        );
        r
    } else {
        Json(message(&outcome, &model)).into_response()
    };
    llmux_headers(
        &mut response,
        &outcome.deployment,
        outcome.attempts.len(),
        outcome.request_id,
    );
    Ok(response)
}

/// Anthropic's `stop_reason` for what a provider reported.
pub fn stop_reason(raw: Option<&str>) -> &'static str {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("length" | "max_tokens") => "max_tokens",
        Some("stop_sequence") => "stop_sequence",
        Some("tool_calls" | "tool_use" | "function_call") => "tool_use",
        Some("content_filter" | "safety" | "refusal") => "refusal",
        _ => "end_turn",
    }
}

fn message(o: &ChatOutcome, model: &str) -> Value {
    let mut content = Vec::new();
    if !o.reasoning.is_empty() {
        content.push(json!({ "type": "thinking", "thinking": o.reasoning }));
    }
    content.push(json!({ "type": "text", "text": o.text }));
    json!({
        "id": format!("msg_llmux_{}", o.request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(o.finish_reason.as_deref()),
        "stop_sequence": Value::Null,
        "usage": {
            "input_tokens": o.usage.input,
            "output_tokens": o.usage.output,
            "cache_read_input_tokens": o.usage.cached_input,
            "cache_creation_input_tokens": o.usage.cache_write,
        },
    })
}

/// Which content block is open in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
}

/// Anthropic's stream events.
struct Events {
    id: u64,
    model: String,
    prompt_tokens: u64,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
}

impl Events {
    fn new(id: u64, model: &str, prompt_tokens: u64) -> Events {
        Events {
            id,
            model: model.to_string(),
            prompt_tokens,
            open: None,
            next_index: 0,
        }
    }

    /// Makes `kind` the open block, closing another one first.
    fn ensure(&mut self, kind: Block, out: &mut BytesMut) -> usize {
        match self.open {
            Some((k, i)) if k == kind => return i,
            Some(_) => self.close(out),
            None => {}
        }
        let index = self.next_index;
        self.next_index += 1;
        let block = match kind {
            Block::Text => json!({ "type": "text", "text": "" }),
            Block::Thinking => json!({ "type": "thinking", "thinking": "" }),
        };
        let data = json!({ "type": "content_block_start", "index": index, "content_block": block });
        frame(
            out,
            Some("content_block_start"),
            data.to_string().as_bytes(),
        );
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((_, index)) = self.open.take() {
            let data = format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}");
            frame(out, Some("content_block_stop"), data.as_bytes());
        }
    }

    fn block_delta(&mut self, kind: Block, text: &str, out: &mut BytesMut) {
        let index = self.ensure(kind, out);
        let (delta_type, field) = match kind {
            Block::Text => ("text_delta", "text"),
            Block::Thinking => ("thinking_delta", "thinking"),
        };
        let data = format!(
            "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":{}}}}}",
            json_str(text)
        );
        frame(out, Some("content_block_delta"), data.as_bytes());
    }
}

impl SseEncoder for Events {
    fn open(&mut self, out: &mut BytesMut) {
        let data = json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_llmux_{}", self.id),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": Value::Null,
                "stop_sequence": Value::Null,
                "usage": { "input_tokens": self.prompt_tokens, "output_tokens": 0 },
            },
        });
        frame(out, Some("message_start"), data.to_string().as_bytes());
    }

    fn delta(&mut self, text: &str, out: &mut BytesMut) {
        self.block_delta(Block::Text, text, out);
    }

    fn reasoning(&mut self, text: &str, out: &mut BytesMut) {
        self.block_delta(Block::Thinking, text, out);
    }

    fn restart(&mut self, out: &mut BytesMut) {
        // Blocks already sent cannot be taken back; the new answer gets a block of its own.
        self.close(out);
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut BytesMut) {
        if self.next_index == 0 {
            // No text at all: an empty text block, as Anthropic sends.
            self.ensure(Block::Text, out);
        }
        self.close(out);
        let data = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(outcome.finish_reason.as_deref()),
                "stop_sequence": Value::Null,
            },
            "usage": {
                "input_tokens": outcome.usage.input,
                "output_tokens": outcome.usage.output,
            },
        });
        frame(out, Some("message_delta"), data.to_string().as_bytes());
        frame(out, Some("message_stop"), b"{\"type\":\"message_stop\"}");
    }

    fn fail(&mut self, error: &ApiError, out: &mut BytesMut) {
        frame(
            out,
            Some("error"),
            error.body(Api::Anthropic).to_string().as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_blocks_and_content_blocks_become_messages() {
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "fast",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "metadata": {"user_id": "x"}
        }))
        .unwrap();
        let (model, chat, stream) = to_chat_request(req).unwrap();
        assert_eq!(model, "fast");
        assert!(!stream);
        assert_eq!(
            chat.messages,
            vec![Message::system("be brief"), Message::user("hi")]
        );
        assert_eq!(chat.max_tokens, Some(10));
    }

    #[test]
    fn stop_reasons_map_to_anthropic_names() {
        assert_eq!(stop_reason(Some("stop")), "end_turn");
        assert_eq!(stop_reason(Some("length")), "max_tokens");
        assert_eq!(stop_reason(None), "end_turn");
    }
}
