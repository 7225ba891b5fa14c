//! OpenAI's chat-completions API: `POST /v1/chat/completions` (and `/chat/completions`).
//!
//! A request body enters as OpenAI JSON and [`request`] turns it into a `ChatRequest` (text,
//! images, tools, tool calls and results; other fields kept for the upstream). It leaves as
//! a `chat.completion` object, or, with `stream: true`, as `chat.completion.chunk` SSE frames
//! ending in `data: [DONE]` (a usage chunk first when `stream_options.include_usage`). Tool
//! calls leave as `tool_calls`, streamed as `delta.tool_calls[i]` pieces (id, type and name
//! with the first piece, then argument fragments), with `finish_reason: "tool_calls"`. What
//! an OpenAI upstream sent that llmux does not model (other choices, `logprobs`,
//! `system_fingerprint`, …) is spliced back in where it was. Both are written by serde from
//! the structs below and in [`chunks`], their shapes serialized once ([`json::Shape`]).

use std::sync::LazyLock;

use serde::Serialize;

use super::body::from_json;
use super::chat::{self, ChatApi, JSON_ANSWER_CAPACITY, unix_now};
use super::error::{Api, ApiError};
use super::json::{self, Probe, Shape};
use crate::provider::Passthrough;
use crate::router::ChatOutcome;

mod chunks;
pub(super) mod request;

pub use chunks::Chunks;
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
    let is = |names: &[&str]| raw.is_some_and(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)));
    if is(&["length", "max_tokens"]) {
        "length"
    } else if is(&["tool_calls", "tool_use", "function_call"]) {
        "tool_calls"
    } else if is(&["content_filter", "safety", "refusal", "recitation"]) {
        "content_filter"
    } else {
        "stop"
    }
}

/// The `finish_reason` of an outcome: `tool_calls` when it made any, whatever the upstream
/// called its stop.
pub(super) fn outcome_finish(o: &ChatOutcome) -> &'static str {
    match finish_reason(o.finish_reason.as_deref()) {
        "stop" if !o.tool_calls.is_empty() => "tool_calls",
        other => other,
    }
}

/// The shapes of every `chat.completion`, serialized once (see [`json`]): their holes are
/// numbered in the order their structs list them.
struct Shapes {
    /// `{"choices":[…],"created":…,"id":…,"model":…,"object":"chat.completion","usage":…}`
    completion: Shape,
    /// `{"finish_reason":…,"index":0,"message":…}`
    choice: Shape,
    /// `{"content":…,"role":"assistant"}`: the message of an answer that is only text.
    text_message: Shape,
}

static SHAPES: LazyLock<Shapes> = LazyLock::new(|| {
    let p = Probe::default();
    Shapes {
        completion: Shape::of(
            &Completion {
                choices: [p.hole()],
                created: p.hole(),
                id: p.hole(),
                model: p.hole(),
                object: "chat.completion",
                usage: p.hole(),
            },
            &p,
        ),
        choice: Shape::of(
            &AnswerChoice {
                finish_reason: p.hole(),
                index: 0,
                message: p.hole(),
            },
            &p,
        ),
        text_message: Shape::of(
            &Message {
                content: Some(p.hole()),
                reasoning_content: None,
                role: "assistant",
                tool_calls: Vec::new(),
            },
            &p,
        ),
    }
});

/// A `chat.completion` object. llmux's own members are in alphabetical order, as the
/// `serde_json` maps it was once written from printed them.
#[derive(Serialize)]
struct Completion<H> {
    choices: [H; 1],
    created: H,
    id: H,
    model: H,
    object: &'static str,
    usage: H,
}

/// Choice 0 of a `chat.completion`.
#[derive(Serialize)]
struct AnswerChoice<H> {
    finish_reason: H,
    index: u32,
    message: H,
}

#[derive(Serialize)]
struct Message<'a, T> {
    /// `null` when the answer is only tool calls.
    content: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallJson<'a>>,
}

#[derive(Serialize)]
struct ToolCallJson<'a> {
    function: FunctionJson<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct FunctionJson<'a> {
    arguments: &'a str,
    name: &'a str,
}

/// OpenAI's `usage` object.
#[derive(Serialize)]
pub(super) struct UsageJson {
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

pub(super) fn usage_json(o: &ChatOutcome) -> UsageJson {
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

fn message(o: &ChatOutcome) -> Message<'_, &str> {
    let only_tools = !o.tool_calls.is_empty() && o.text.is_empty();
    Message {
        content: (!only_tools).then_some(o.text.as_str()),
        reasoning_content: (!o.reasoning.is_empty()).then_some(o.reasoning.as_str()),
        role: "assistant",
        tool_calls: o
            .tool_calls
            .iter()
            .map(|c| ToolCallJson {
                function: FunctionJson {
                    arguments: &c.arguments,
                    name: &c.name,
                },
                id: &c.id,
                kind: "function",
            })
            .collect(),
    }
}

/// A `chat.completion` object, with what the upstream passed through (`passed`) where it
/// was: the answer's members, choice 0's and its message's, the other choices.
pub(super) fn completion(
    o: &ChatOutcome,
    id: &str,
    model: &str,
    passed: Vec<Passthrough>,
) -> Vec<u8> {
    let p = merged(passed);
    let shapes = &*SHAPES;
    let mut out = Vec::with_capacity(JSON_ANSWER_CAPACITY + o.text.len() + o.reasoning.len());
    shapes.completion.write(&mut out, |hole, out| match hole {
        0 => {
            shapes.choice.write(out, |hole, out| match hole {
                0 => json::write(out, outcome_finish(o)),
                _ if o.reasoning.is_empty() && o.tool_calls.is_empty() => {
                    shapes
                        .text_message
                        .write(out, |_, out| json::write(out, &o.text));
                    json::add_members(out, |out| p.delta.write_after(out));
                }
                _ => json::write_object(out, &message(o), |out| p.delta.write_after(out)),
            });
            json::add_members(out, |out| p.choice.write_after(out));
            p.write_choices(out);
        }
        1 => json::write(out, &unix_now()),
        2 => json::write(out, id),
        3 => json::write(out, model),
        _ => json::write(out, &usage_json(o)),
    });
    json::add_members(&mut out, |out| p.top.write_after(out));
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::provider::{Members, ToolCall};

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

    /// Members as an upstream wrote them.
    pub(super) fn members(pairs: &[(&str, &str)]) -> Members {
        let mut m = Members::default();
        for (name, raw) in pairs {
            m.push(name, raw);
        }
        m
    }

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    /// What an upstream passed through: the chunk's, choice 0's and its delta's members, other
    /// choices.
    pub(super) fn passed(
        top: Pairs,
        choice: Pairs,
        delta: Pairs,
        others: &[&str],
        carries: bool,
    ) -> Passthrough {
        Passthrough {
            top: members(top),
            choice: members(choice),
            delta: members(delta),
            choices: others.iter().map(|c| (*c).into()).collect(),
            carries,
        }
    }

    /// An outcome with text, reasoning and, with `tools`, two calls and usage details.
    pub(super) fn answered(
        text: &str,
        reasoning: &str,
        tools: bool,
        finish: Option<&str>,
    ) -> ChatOutcome {
        let call = |id: &str, name: &str, arguments: &str| ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        };
        ChatOutcome {
            request_id: 7,
            text: text.into(),
            reasoning: reasoning.into(),
            usage: crate::provider::Usage {
                input: 12,
                output: 5,
                cached_input: if tools { 3 } else { 0 },
                reasoning: if tools { 2 } else { 0 },
                ..Default::default()
            },
            finish_reason: finish.map(Into::into),
            tool_calls: if tools {
                vec![
                    call("call_1", "f", "{\"a\":1}"),
                    call("call_2", "g\"", "{}"),
                ]
            } else {
                Vec::new()
            },
            ..ChatOutcome::default()
        }
    }

    /// `json` with every `"created":…` at 0.
    pub(super) fn timeless(json: &[u8]) -> String {
        let text = String::from_utf8(json.to_vec()).unwrap();
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("\"created\":") {
            let (before, after) = rest.split_at(at + "\"created\":".len());
            out.push_str(before);
            out.push('0');
            rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn answers_are_written_byte_for_byte_with_what_was_passed_through_where_it_was() {
        let fingerprint = [("system_fingerprint", "\"fp\"")];
        let cases = [
            (answered("Hi \"there\"\n", "", false, Some("stop")), vec![]),
            (answered("", "think", true, Some("STOP")), vec![]),
            (
                answered("txt", "r", true, Some("length")),
                vec![passed(
                    &fingerprint,
                    &[("logprobs", "{\"content\":[]}")],
                    &[("annotations", "[]"), ("refusal", "null")],
                    &["{\"index\":1,\"message\":{\"content\":\"b\"}}"],
                    true,
                )],
            ),
            (
                answered("x", "", false, None),
                vec![
                    passed(&[("a", "1")], &[], &[], &[], false),
                    passed(&[("b", "2")], &[], &[("we\"ird", "[1]")], &[], true),
                ],
            ),
        ];
        let written: Vec<String> = cases
            .into_iter()
            .map(|(o, p)| timeless(&completion(&o, "chatcmpl-7", "m\u{7}\"", p)))
            .collect();
        insta::assert_snapshot!(written.join("\n"));
    }
}
