//! OpenAI's chat-completions API: `POST /v1/chat/completions` (and `/chat/completions`).
//!
//! A request body enters as OpenAI JSON and [`request`] turns it into a `ChatRequest` (text,
//! images, tools, tool calls and results; other fields kept for the upstream). It leaves as
//! a `chat.completion` object, or, with `stream: true`, as `chat.completion.chunk` SSE frames
//! ending in `data: [DONE]` (a usage chunk first when `stream_options.include_usage`). Tool
//! calls leave as `tool_calls`, streamed as `delta.tool_calls[i]` pieces (id, type and name
//! with the first piece, then argument fragments), with `finish_reason: "tool_calls"`. What
//! an OpenAI upstream sent that llmux does not model (other choices, `logprobs`,
//! `system_fingerprint`, …) is spliced back in where it was.

use bytes::BytesMut;
use serde::Serialize;
use serde_json::{Value, json};

use super::body::from_json;
use super::chat::{self, ChatApi, JSON_ANSWER_CAPACITY, json_str, unix_now, write_json_str};
use super::error::{Api, ApiError};
use super::sse::{SseEncoder, frame};
use crate::provider::{Passthrough, ToolCall, ToolCallDelta};
use crate::router::ChatOutcome;

pub(super) mod request;

use request::{CompletionRequest, to_chat_request};

/// `POST /v1/chat/completions` (and `/chat/completions`).
pub struct ChatCompletions;

impl ChatApi for ChatCompletions {
    const API: Api = Api::OpenAi;
    const ID_PREFIX: &'static str = "chatcmpl-";
    /// `stream_options.include_usage`: a usage chunk before `[DONE]`.
    type Options = bool;
    type Encoder = Chunks;

    fn parse(body: &[u8]) -> Result<chat::Parsed<bool>, ApiError> {
        to_chat_request(from_json::<CompletionRequest>(body)?)
    }

    fn encoder(id: &str, model: &str, include_usage: &bool, _prompt_tokens: u64) -> Chunks {
        Chunks::new(id, model, *include_usage)
    }

    fn answer(
        outcome: &ChatOutcome,
        id: &str,
        model: &str,
        passed: Vec<Passthrough>,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(completion(outcome, id, model, passed))
    }
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

/// OpenAI's `usage` object (fields in alphabetical order, as a `serde_json` map prints them).
#[derive(Serialize)]
struct UsageJson {
    completion_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningTokens>,
    prompt_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<CachedTokens>,
    total_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

fn usage_json(o: &ChatOutcome) -> UsageJson {
    let u = &o.usage;
    UsageJson {
        completion_tokens: u.output,
        completion_tokens_details: (u.reasoning > 0).then_some(ReasoningTokens {
            reasoning_tokens: u.reasoning,
        }),
        prompt_tokens: u.input,
        prompt_tokens_details: (u.cached_input > 0).then_some(CachedTokens {
            cached_tokens: u.cached_input,
        }),
        total_tokens: u.input.saturating_add(u.output),
    }
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

/// A `chat.completion` object, written straight from the outcome: member by member, the
/// texts escaped by serde ([`write_json_str`]), with what the upstream passed through (`passed`) spliced in where it
/// was: the answer's members, choice 0's and its message's, the other choices. llmux's own
/// members in alphabetical order, as `serde_json`'s maps print them.
pub(super) fn completion(
    o: &ChatOutcome,
    id: &str,
    model: &str,
    passed: Vec<Passthrough>,
) -> Vec<u8> {
    let extra = merged(passed);
    let mut out = Vec::with_capacity(JSON_ANSWER_CAPACITY + o.text.len() + o.reasoning.len());
    let only_tools = !o.tool_calls.is_empty() && o.text.is_empty();
    out.extend_from_slice(b"{\"choices\":[{\"finish_reason\":\"");
    // A fixed set of plain names: nothing to escape.
    out.extend_from_slice(outcome_finish(o).as_bytes());
    out.extend_from_slice(b"\",\"index\":0,\"message\":{\"content\":");
    if only_tools {
        out.extend_from_slice(b"null");
    } else {
        write_json_str(&mut out, &o.text);
    }
    if !o.reasoning.is_empty() {
        out.extend_from_slice(b",\"reasoning_content\":");
        write_json_str(&mut out, &o.reasoning);
    }
    out.extend_from_slice(b",\"role\":\"assistant\"");
    if !o.tool_calls.is_empty() {
        let calls: Vec<Value> = o.tool_calls.iter().map(tool_call_json).collect();
        out.extend_from_slice(b",\"tool_calls\":");
        // A tree of strings: serializing it cannot fail.
        let _ = serde_json::to_writer(&mut out, &calls);
    }
    extra.delta.write_after(&mut out);
    out.push(b'}');
    extra.choice.write_after(&mut out);
    out.push(b'}');
    extra.write_choices(&mut out);
    out.extend_from_slice(b"],\"created\":");
    out.extend_from_slice(itoa::Buffer::new().format(unix_now()).as_bytes());
    out.extend_from_slice(b",\"id\":");
    write_json_str(&mut out, id);
    out.extend_from_slice(b",\"model\":");
    write_json_str(&mut out, model);
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"usage\":");
    // A struct of integers: serializing it cannot fail.
    let _ = serde_json::to_writer(&mut out, &usage_json(o));
    extra.top.write_after(&mut out);
    out.push(b'}');
    out
}

/// Every passed-through piece of an answer as one.
fn merged(passed: Vec<Passthrough>) -> Passthrough {
    let mut all = Passthrough::default();
    for p in passed {
        all.merge(p);
    }
    all
}

/// `chat.completion.chunk` frames. Every chunk shares one prefix, built once.
///
/// What the upstream passed through goes into the chunk of the content it came with
/// ([`Passthrough::carries`]); a piece of other choices alone (`n > 1`) is a chunk of its own;
/// members of the chunk alone (`system_fingerprint`) ride on the next chunk written.
pub struct Chunks {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    prefix: String,
    include_usage: bool,
    /// Tool call indexes already started in the stream.
    tools_started: Vec<u32>,
    /// Passed through, waiting for the chunk it belongs in.
    pending: Option<Box<Passthrough>>,
}

impl Chunks {
    pub(super) fn new(id: &str, model: &str, include_usage: bool) -> Chunks {
        // The id is llmux's own (`response_id`): letters and digits, nothing to escape.
        let prefix = format!(
            "{{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":[",
            unix_now(),
            json_str(model)
        );
        Chunks {
            prefix,
            include_usage,
            tools_started: Vec::new(),
            pending: None,
        }
    }

    fn chunk(&mut self, out: &mut BytesMut, delta_fields: &str, finish: &str) {
        self.chunk_with(
            out,
            |o| o.extend_from_slice(delta_fields.as_bytes()),
            finish,
        );
    }

    /// One chunk frame written straight into `out`, the delta's fields by `delta` (no
    /// intermediate strings: a stream writes one of these per token), with what is pending.
    fn chunk_with(&mut self, out: &mut BytesMut, delta: impl FnOnce(&mut BytesMut), finish: &str) {
        let extra = self.pending.take();
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"{\"index\":0,\"delta\":{");
        let before = out.len();
        delta(out);
        if let Some(p) = &extra {
            if out.len() == before {
                p.delta.write_before(out, false);
            } else {
                p.delta.write_after(out);
            }
        }
        out.extend_from_slice(b"},\"finish_reason\":");
        out.extend_from_slice(finish.as_bytes());
        match &extra {
            None => out.extend_from_slice(b"}]}\n\n"),
            Some(p) => {
                p.choice.write_after(out);
                out.extend_from_slice(b"}");
                p.write_choices(out);
                out.extend_from_slice(b"]");
                p.top.write_after(out);
                out.extend_from_slice(b"}\n\n");
            }
        }
    }

    /// A chunk of what was passed through alone: choice 0's members when there are any
    /// (with an empty delta), the other choices, the chunk's members.
    fn passthrough_chunk(&self, out: &mut BytesMut, p: &Passthrough) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.prefix.as_bytes());
        let mut choices = Vec::with_capacity(p.choices.len() + 1);
        if !p.choice.is_empty() || !p.delta.is_empty() {
            let mut zero = b"{\"index\":0,\"delta\":{".to_vec();
            p.delta.write_before(&mut zero, false);
            zero.extend_from_slice(b"},\"finish_reason\":null");
            p.choice.write_after(&mut zero);
            zero.push(b'}');
            choices.push(zero);
        }
        choices.extend(p.choices.iter().map(|c| c.as_bytes().to_vec()));
        out.extend_from_slice(&choices.join(&b',')[..]);
        out.extend_from_slice(b"]");
        p.top.write_after(out);
        out.extend_from_slice(b"}\n\n");
    }

    /// Writes what is pending when it has a choice's part; keeps the chunk's members alone
    /// for the next chunk.
    fn flush_choices(&mut self, out: &mut BytesMut) {
        if let Some(p) = self.pending.take_if(|p| p.has_choices()) {
            self.passthrough_chunk(out, &p);
        }
    }

    /// A text delta under `field`.
    fn text(&mut self, out: &mut BytesMut, field: &str, text: &str) {
        self.chunk_with(
            out,
            |o| {
                o.extend_from_slice(b"\"");
                o.extend_from_slice(field.as_bytes());
                o.extend_from_slice(b"\":");
                write_json_str(o, text);
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

    fn passthrough(&mut self, mut p: Box<Passthrough>, out: &mut BytesMut) {
        if let Some(old) = self.pending.take() {
            if old.has_choices() {
                self.passthrough_chunk(out, &old);
            } else if p.top.is_empty() {
                // The chunk's members ride on, unless newer ones came.
                p.top = old.top;
            }
        }
        if p.carries || !p.has_choices() {
            self.pending = Some(p);
        } else {
            self.passthrough_chunk(out, &p);
        }
    }

    fn restart(&mut self, out: &mut BytesMut) {
        self.flush_choices(out);
        // OpenAI's stream cannot take text back; a comment marks the point for debugging.
        out.extend_from_slice(b": llmux: the answer restarted on another deployment\n\n");
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut BytesMut) {
        self.flush_choices(out);
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
            let mut data = Vec::with_capacity(self.prefix.len() + 128);
            data.extend_from_slice(self.prefix.as_bytes());
            data.extend_from_slice(b"],\"usage\":");
            // A struct of integers: serializing it cannot fail.
            let _ = serde_json::to_writer(&mut data, &usage_json(outcome));
            data.push(b'}');
            frame(out, None, &data);
        }
        frame(out, None, b"[DONE]");
    }

    fn fail(&mut self, error: &ApiError, out: &mut BytesMut) {
        // What OpenAI's SDKs raise on: a chunk with an `error` object. No [DONE] follows.
        frame(out, None, error.body(Api::OpenAi).to_string().as_bytes());
    }
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

    fn outcome(usage: crate::provider::Usage) -> ChatOutcome {
        ChatOutcome {
            request_id: 7,
            text: "Hi \"there\"".into(),
            usage,
            finish_reason: Some("stop".into()),
            ..ChatOutcome::default()
        }
    }

    #[test]
    fn a_completion_is_openai_json_with_usage_details_only_when_counted() {
        let plain = crate::provider::Usage {
            input: 12,
            output: 5,
            ..Default::default()
        };
        let mut body = serde_json::from_slice::<Value>(&completion(
            &outcome(plain),
            "chatcmpl-7",
            "m",
            Vec::new(),
        ))
        .unwrap();
        assert!(body["created"].as_u64().unwrap() > 0);
        body["created"] = json!(0);
        assert_eq!(
            body,
            json!({
                "id": "chatcmpl-7", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hi \"there\""}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
            })
        );
        let detailed = crate::provider::Usage {
            cached_input: 3,
            reasoning: 2,
            ..plain
        };
        let mut tools = outcome(detailed);
        tools.text.clear();
        tools.reasoning = "think\n".into();
        tools.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"a\":1}".into(),
        }];
        let body = serde_json::from_slice::<Value>(&completion(
            &tools,
            "chatcmpl-7",
            "m\u{7}",
            Vec::new(),
        ))
        .unwrap();
        assert_eq!(body["model"], "m\u{7}");
        assert_eq!(
            body["choices"][0],
            json!({"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "reasoning_content": "think\n",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]}})
        );
        let usage = serde_json::to_string(&usage_json(&outcome(detailed))).unwrap();
        assert_eq!(
            usage,
            r#"{"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":2},"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":3},"total_tokens":17}"#
        );
    }
}
