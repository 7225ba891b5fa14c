//! Anthropic's Messages API: `POST /v1/messages`, so tools that speak Anthropic (pointed at
//! llmux with `ANTHROPIC_BASE_URL`) can use any model group.
//!
//! A request enters as Anthropic JSON and [`request`] turns it into a `ChatRequest` (system,
//! text, images, tools, `tool_use` and `tool_result` blocks). It leaves as a `message`
//! object, or with `stream: true` as Anthropic's event sequence: `message_start`, per
//! content block `content_block_start` / `content_block_delta` / `content_block_stop`,
//! `message_delta` with the stop reason and usage, `message_stop`. Reasoning becomes a
//! `thinking` block; each tool call a `tool_use` block whose arguments stream as
//! `input_json_delta` pieces, with `stop_reason: "tool_use"`.

use serde::Serialize;
use serde_json::{Value, json};

use super::body::from_json;
use super::chat::{self, ChatApi, json_str};
use super::error::{Api, ApiError};
use super::sse::{SseEncoder, frame};
use crate::provider::{Passthrough, ToolCall, ToolCallDelta};
use crate::router::ChatOutcome;

pub(super) mod request;

use request::{MessagesRequest, Parsed, to_chat_request};

/// `POST /v1/messages`.
pub struct Messages;

impl ChatApi for Messages {
    const API: Api = Api::Anthropic;
    const ID_PREFIX: &'static str = "msg_";
    type Options = ();
    type Encoder = Events;

    fn parse(body: &[u8]) -> Result<chat::Parsed<()>, ApiError> {
        let Parsed {
            model,
            request,
            stream,
        } = to_chat_request(from_json::<MessagesRequest>(body)?)?;
        Ok(chat::Parsed {
            model,
            request,
            stream,
            options: (),
        })
    }

    fn encoder(id: &str, model: &str, _: &(), prompt_tokens: u64) -> Events {
        Events::new(id.to_string(), model, prompt_tokens)
    }

    fn answer(
        outcome: &ChatOutcome,
        id: &str,
        model: &str,
        _passed: Vec<Passthrough>,
    ) -> Result<Vec<u8>, ApiError> {
        serde_json::to_vec(&message(outcome, id, model))
            .map_err(|e| ApiError::bad_request(format!("cannot write the answer: {e}")))
    }
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

/// The `stop_reason` of an outcome: `tool_use` when it made tool calls, whatever the upstream
/// called its stop.
fn outcome_stop(o: &ChatOutcome) -> &'static str {
    match stop_reason(o.finish_reason.as_deref()) {
        "end_turn" if !o.tool_calls.is_empty() => "tool_use",
        other => other,
    }
}

/// A tool call's arguments as `input`: arguments that are not a JSON object (a model's
/// broken JSON) are kept as text under `_llmux_unparsed_arguments` rather than lost.
fn tool_input(c: &ToolCall) -> Value {
    c.arguments_object()
        .unwrap_or_else(|_| json!({ "_llmux_unparsed_arguments": c.arguments }))
}

/// A whole answer: Anthropic's `message` object.
#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<ContentBlock<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
    usage: MessageUsage,
}

/// One content block of a whole answer.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock<'a> {
    Thinking {
        thinking: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
}

#[derive(Serialize)]
struct MessageUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

fn message<'a>(o: &'a ChatOutcome, id: &'a str, model: &'a str) -> Message<'a> {
    let mut content = Vec::with_capacity(2 + o.tool_calls.len());
    if !o.reasoning.is_empty() {
        content.push(ContentBlock::Thinking {
            thinking: &o.reasoning,
        });
    }
    if !o.text.is_empty() || o.tool_calls.is_empty() {
        content.push(ContentBlock::Text { text: &o.text });
    }
    content.extend(o.tool_calls.iter().map(|c| ContentBlock::ToolUse {
        id: &c.id,
        name: &c.name,
        input: tool_input(c),
    }));
    Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: outcome_stop(o),
        stop_sequence: None,
        usage: MessageUsage {
            input_tokens: o.usage.input,
            output_tokens: o.usage.output,
            cache_read_input_tokens: o.usage.cached_input,
            cache_creation_input_tokens: o.usage.cache_write,
        },
    }
}

/// Which content block is open in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// Tool call number `n` of the answer.
    Tool(u32),
}

/// Anthropic's stream events.
pub struct Events {
    id: String,
    model: String,
    prompt_tokens: u64,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
    /// Each tool call started so far and the block index it got.
    tools: Vec<(u32, usize)>,
}

impl Events {
    fn new(id: String, model: &str, prompt_tokens: u64) -> Events {
        Events {
            id,
            model: model.to_string(),
            prompt_tokens,
            open: None,
            next_index: 0,
            tools: Vec::new(),
        }
    }

    /// Makes `kind` the open block, closing another one first.
    fn ensure(&mut self, kind: Block, out: &mut Vec<u8>) -> usize {
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
            // Tool blocks are started by `tool_call`, which knows the id and name.
            Block::Tool(_) => json!({ "type": "tool_use" }),
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

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            let data = format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}");
            frame(out, Some("content_block_stop"), data.as_bytes());
        }
    }

    fn block_delta(&mut self, kind: Block, text: &str, out: &mut Vec<u8>) {
        let index = self.ensure(kind, out);
        let (delta_type, field) = match kind {
            Block::Text => ("text_delta", "text"),
            Block::Thinking => ("thinking_delta", "thinking"),
            Block::Tool(_) => ("input_json_delta", "partial_json"),
        };
        let data = format!(
            "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":{}}}}}",
            json_str(text)
        );
        frame(out, Some("content_block_delta"), data.as_bytes());
    }
}

impl SseEncoder for Events {
    fn open(&mut self, out: &mut Vec<u8>) {
        let data = json!({
            "type": "message_start",
            "message": {
                "id": self.id,
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

    fn delta(&mut self, text: &str, out: &mut Vec<u8>) {
        self.block_delta(Block::Text, text, out);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.block_delta(Block::Thinking, text, out);
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let index = match self.tools.iter().find(|(n, _)| *n == call.index) {
            Some((_, index)) => *index,
            None => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                let data = json!({
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": call.id.as_deref().unwrap_or_default(),
                        "name": call.name.as_deref().unwrap_or_default(),
                        "input": {},
                    },
                });
                frame(
                    out,
                    Some("content_block_start"),
                    data.to_string().as_bytes(),
                );
                self.open = Some((Block::Tool(call.index), index));
                self.tools.push((call.index, index));
                index
            }
        };
        if call.arguments.is_empty() {
            return;
        }
        // A piece of a call that is no longer the open block still names its own index.
        let data = format!(
            "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":{}}}}}",
            json_str(&call.arguments)
        );
        frame(out, Some("content_block_delta"), data.as_bytes());
    }

    fn restart(&mut self, out: &mut Vec<u8>) {
        // Blocks already sent cannot be taken back; the new answer gets blocks of its own.
        self.close(out);
        self.tools.clear();
    }

    fn finish(&mut self, outcome: &ChatOutcome, out: &mut Vec<u8>) {
        // Calls that did not stream (an answer that came whole) go out in one piece each.
        for (i, c) in outcome.tool_calls.iter().enumerate() {
            if !self.tools.iter().any(|(n, _)| *n == i as u32) {
                let delta = ToolCallDelta {
                    index: i as u32,
                    id: Some(c.id.clone()),
                    name: Some(c.name.clone()),
                    arguments: c.arguments.clone(),
                };
                self.tool_call(&delta, out);
            }
        }
        if self.next_index == 0 {
            // No text at all: an empty text block, as Anthropic sends.
            self.ensure(Block::Text, out);
        }
        self.close(out);
        let data = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": outcome_stop(outcome),
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

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
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
    fn stop_reasons_map_to_anthropic_names() {
        assert_eq!(stop_reason(Some("stop")), "end_turn");
        assert_eq!(stop_reason(Some("length")), "max_tokens");
        assert_eq!(stop_reason(None), "end_turn");
    }
}
