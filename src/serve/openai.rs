//! OpenAI's chat-completions API: `POST /v1/chat/completions` (and `/chat/completions`) and
//! `GET /v1/models`.
//!
//! A request body enters as OpenAI JSON and [`request`] turns it into a `ChatRequest` (text,
//! images, tools, tool calls and results; other fields kept for the upstream). It leaves as
//! a `chat.completion` object, or, with `stream: true`, as `chat.completion.chunk` SSE frames
//! ending in `data: [DONE]` (a usage chunk first when `stream_options.include_usage`). Tool
//! calls leave as `tool_calls`, streamed as `delta.tool_calls[i]` pieces (id, type and name
//! with the first piece, then argument fragments), with `finish_reason: "tool_calls"`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;
use super::chat::{
    Admission, Begun, SseEncoder, Tracker, begin, frame, json_response, json_str, outcome_headers,
    parse_json, read_body, sse_response, unix_now,
};
use super::error::{Api, ApiError};
use crate::provider::{ToolCall, ToolCallDelta};
use crate::router::ChatOutcome;

pub(super) mod request;

use request::{CompletionRequest, Parsed, to_chat_request};

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(Api::OpenAi),
    }
}

async fn handle(state: Shared, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let admission = Admission::take(&state)?;
    let bytes = read_body(&state, &headers, body).await?;
    let parsed: CompletionRequest = parse_json(&state, &bytes)?;
    let Parsed {
        model,
        mut request,
        stream,
        include_usage,
    } = to_chat_request(parsed).inspect_err(|_| {
        state.metrics.rejected("bad_request");
    })?;
    request.stream = stream;
    let mut tracker = Tracker::new(&state, Api::OpenAi, &model, admission);
    match begin(&state, &model, request, &mut tracker).await {
        Begun::Done(result) => {
            tracker.finish(&result);
            let outcome = result.map_err(ApiError::from)?;
            if stream {
                // The answer came whole (no text): send it as a stream all the same.
                let mut out = BytesMut::new();
                let mut enc = Chunks::new(outcome.request_id, &model, include_usage);
                enc.open(&mut out);
                enc.finish(&outcome, &mut out);
                let mut response = sse_bytes(out);
                outcome_headers(&mut response, &outcome);
                return Ok(response);
            }
            let mut response = json_response(&completion(&outcome, &model));
            outcome_headers(&mut response, &outcome);
            Ok(response)
        }
        Begun::Streaming(started) => {
            if stream {
                let enc = Chunks::new(started.stream.request_id, &model, include_usage);
                return Ok(sse_response(started, enc, tracker));
            }
            let stream = started.stream;
            let result = stream.finish().await;
            tracker.finish(&result);
            let outcome = result.map_err(ApiError::from)?;
            let mut response = json_response(&completion(&outcome, &model));
            outcome_headers(&mut response, &outcome);
            Ok(response)
        }
    }
}

/// A whole `text/event-stream` body.
fn sse_bytes(out: BytesMut) -> Response {
    let mut response = Response::new(Body::from(out.freeze()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// OpenAI's `finish_reason` for what a provider reported.
pub fn finish_reason(raw: Option<&str>) -> &'static str {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("length" | "max_tokens") => "length",
        Some("tool_calls" | "tool_use" | "function_call") => "tool_calls",
        Some("content_filter" | "safety" | "refusal" | "recitation") => "content_filter",
        _ => "stop",
    }
}

fn usage_json(o: &ChatOutcome) -> Value {
    let mut usage = json!({
        "prompt_tokens": o.usage.input,
        "completion_tokens": o.usage.output,
        "total_tokens": o.usage.input + o.usage.output,
    });
    if o.usage.cached_input > 0 {
        usage["prompt_tokens_details"] = json!({ "cached_tokens": o.usage.cached_input });
    }
    if o.usage.reasoning > 0 {
        usage["completion_tokens_details"] = json!({ "reasoning_tokens": o.usage.reasoning });
    }
    usage
}

/// The `finish_reason` of an outcome: `tool_calls` when it made any, whatever the upstream
/// called its stop.
fn outcome_finish(o: &ChatOutcome) -> &'static str {
    match finish_reason(o.finish_reason.as_deref()) {
        "stop" if !o.tool_calls.is_empty() => "tool_calls",
        other => other,
    }
}

fn tool_call_json(c: &ToolCall) -> Value {
    json!({
        "id": c.id,
        "type": "function",
        "function": { "name": c.name, "arguments": c.arguments },
    })
}

/// A `chat.completion` object, serialized straight from the outcome (no JSON tree built
/// first). Fields in alphabetical order, as `serde_json`'s maps print them.
#[derive(Serialize)]
struct Completion<'a> {
    choices: [CompletionChoice<'a>; 1],
    created: u64,
    id: String,
    model: &'a str,
    object: &'static str,
    usage: Value,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    finish_reason: &'static str,
    index: u32,
    message: CompletionMessage<'a>,
}

#[derive(Serialize)]
struct CompletionMessage<'a> {
    /// `null` when the answer is only tool calls.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    reasoning_content: &'a str,
    role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
}

fn completion<'a>(o: &'a ChatOutcome, model: &'a str) -> Completion<'a> {
    let only_tools = !o.tool_calls.is_empty() && o.text.is_empty();
    Completion {
        choices: [CompletionChoice {
            finish_reason: outcome_finish(o),
            index: 0,
            message: CompletionMessage {
                content: (!only_tools).then_some(o.text.as_str()),
                reasoning_content: &o.reasoning,
                role: "assistant",
                tool_calls: o.tool_calls.iter().map(tool_call_json).collect(),
            },
        }],
        created: unix_now(),
        id: format!("chatcmpl-llmux-{}", o.request_id),
        model,
        object: "chat.completion",
        usage: usage_json(o),
    }
}

/// `chat.completion.chunk` frames. Every chunk shares one prefix, built once.
struct Chunks {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    prefix: String,
    include_usage: bool,
    /// Tool call indexes already started in the stream.
    tools_started: Vec<u32>,
}

impl Chunks {
    fn new(request_id: u64, model: &str, include_usage: bool) -> Chunks {
        let prefix = format!(
            "{{\"id\":\"chatcmpl-llmux-{request_id}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":[",
            unix_now(),
            json_str(model)
        );
        Chunks {
            prefix,
            include_usage,
            tools_started: Vec::new(),
        }
    }

    fn chunk(&self, out: &mut BytesMut, delta_fields: &str, finish: &str) {
        self.chunk_with(
            out,
            |o| o.extend_from_slice(delta_fields.as_bytes()),
            finish,
        );
    }

    /// One chunk frame written straight into `out`, the delta's fields by `delta` (no
    /// intermediate strings: a stream writes one of these per token).
    fn chunk_with(&self, out: &mut BytesMut, delta: impl FnOnce(&mut BytesMut), finish: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"{\"index\":0,\"delta\":{");
        delta(out);
        out.extend_from_slice(b"},\"finish_reason\":");
        out.extend_from_slice(finish.as_bytes());
        out.extend_from_slice(b"}]}\n\n");
    }

    /// A text delta under `field`.
    fn text(&self, out: &mut BytesMut, field: &str, text: &str) {
        self.chunk_with(
            out,
            |o| {
                o.extend_from_slice(b"\"");
                o.extend_from_slice(field.as_bytes());
                o.extend_from_slice(b"\":");
                crate::json_text::write_str(o, text);
            },
            "null",
        );
    }
}

impl SseEncoder for Chunks {
    fn open(&mut self, out: &mut BytesMut) {
        self.chunk(out, "\"role\":\"assistant\",\"content\":\"\"", "null");
    }

    fn delta(&mut self, text: &str, out: &mut BytesMut) {
        self.text(out, "content", text);
    }

    fn reasoning(&mut self, text: &str, out: &mut BytesMut) {
        self.text(out, "reasoning_content", text);
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut BytesMut) {
        let mut piece = json!({ "index": call.index, "function": { "arguments": call.arguments } });
        if !self.tools_started.contains(&call.index) {
            self.tools_started.push(call.index);
            piece["id"] = json!(call.id.as_deref().unwrap_or_default());
            piece["type"] = json!("function");
            piece["function"]["name"] = json!(call.name.as_deref().unwrap_or_default());
        }
        self.chunk(out, &format!("\"tool_calls\":[{piece}]"), "null");
    }

    fn restart(&mut self, out: &mut BytesMut) {
        // OpenAI's stream cannot take text back; a comment marks the point for debugging.
        out.extend_from_slice(b": llmux: the answer restarted on another deployment\n\n");
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut BytesMut) {
        // Calls that did not stream (an answer that came whole) go out in one piece each.
        for (i, c) in outcome.tool_calls.iter().enumerate() {
            if !self.tools_started.contains(&(i as u32)) {
                let delta = ToolCallDelta {
                    index: i as u32,
                    id: Some(c.id.clone()),
                    name: Some(c.name.clone()),
                    arguments: c.arguments.clone(),
                };
                self.tool_call(&delta, out);
            }
        }
        let reason = json_str(outcome_finish(outcome));
        self.chunk(out, "", &reason);
        if self.include_usage {
            let data = format!("{}],\"usage\":{}}}", self.prefix, usage_json(outcome));
            frame(out, None, data.as_bytes());
        }
        frame(out, None, b"[DONE]");
    }

    fn fail(&mut self, error: &ApiError, out: &mut BytesMut) {
        // What OpenAI's SDKs raise on: a chunk with an `error` object. No [DONE] follows.
        frame(out, None, error.body(Api::OpenAi).to_string().as_bytes());
    }
}

/// `GET /v1/models`: every model group and alias.
pub async fn models(State(state): State<Shared>) -> Response {
    let config = state.router.config();
    let created = unix_now();
    let mut data: Vec<Value> = config
        .groups
        .iter()
        .map(|g| json!({ "id": g, "object": "model", "created": created, "owned_by": "llmux" }))
        .collect();
    data.extend(
        config
            .router
            .model_group_alias
            .keys()
            .filter(|a| !config.groups.contains(a))
            .map(
                |a| json!({ "id": a, "object": "model", "created": created, "owned_by": "llmux" }),
            ),
    );
    Json(json!({ "object": "list", "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_map_to_openai_names() {
        assert_eq!(finish_reason(Some("end_turn")), "stop");
        assert_eq!(finish_reason(Some("MAX_TOKENS")), "length");
        assert_eq!(finish_reason(Some("tool_use")), "tool_calls");
        assert_eq!(finish_reason(None), "stop");
    }
}
