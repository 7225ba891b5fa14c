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
use serde_json::Value;

use super::body::from_json;
use super::chat::{self, ChatApi, JSON_ANSWER_CAPACITY};
use super::error::{Api, ApiError};
use super::json;
use crate::provider::{Passthrough, ToolCall};
use crate::router::ChatOutcome;

mod events;
pub(super) mod request;

pub use events::Events;
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
        let mut out =
            Vec::with_capacity(JSON_ANSWER_CAPACITY + outcome.text.len() + outcome.reasoning.len());
        json::write(&mut out, &message(outcome, id, model));
        Ok(out)
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
pub(super) fn outcome_stop(o: &ChatOutcome) -> &'static str {
    match stop_reason(o.finish_reason.as_deref()) {
        "end_turn" if !o.tool_calls.is_empty() => "tool_use",
        other => other,
    }
}

/// A tool call's `input`.
#[derive(Serialize)]
#[serde(untagged)]
enum ToolInput<'a> {
    /// The arguments, a JSON object.
    Object(Value),
    /// Arguments that are not a JSON object (a model's broken JSON), kept as text rather
    /// than lost.
    Unparsed {
        #[serde(rename = "_llmux_unparsed_arguments")]
        arguments: &'a str,
    },
}

fn tool_input(c: &ToolCall) -> ToolInput<'_> {
    match c.arguments_object() {
        Ok(v) => ToolInput::Object(v),
        Err(_) => ToolInput::Unparsed {
            arguments: &c.arguments,
        },
    }
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
        input: ToolInput<'a>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::openai::tests::answered;

    #[test]
    fn stop_reasons_map_to_anthropic_names() {
        assert_eq!(stop_reason(Some("stop")), "end_turn");
        assert_eq!(stop_reason(Some("length")), "max_tokens");
        assert_eq!(stop_reason(None), "end_turn");
    }

    #[test]
    fn messages_are_written_byte_for_byte() {
        let cases = [
            answered("Hi \"x\"", "", false, Some("stop")),
            answered("", "think", true, Some("tool_calls")),
            answered("", "", false, None),
            answered("t", "", true, Some("max_tokens")),
        ];
        let written: Vec<String> = cases
            .iter()
            .map(|o| {
                let json = Messages::answer(o, "msg_7", "m\u{7}\"", Vec::new()).unwrap();
                String::from_utf8(json).unwrap()
            })
            .collect();
        insta::assert_snapshot!(written.join("\n"));
    }

    #[test]
    fn tool_arguments_that_are_not_an_object_are_kept_as_text() {
        let mut o = answered("", "", true, None);
        o.tool_calls[0].arguments = "{\"a\":".into();
        let json = Messages::answer(&o, "msg_7", "m", Vec::new()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v["content"][0]["input"],
            serde_json::json!({"_llmux_unparsed_arguments": "{\"a\":"})
        );
    }
}
