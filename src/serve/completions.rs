//! OpenAI's legacy text completions: `POST /v1/completions` (and `/completions`), for the
//! clients that still use it.
//!
//! As LiteLLM's `text_completion` does for chat models, the request is asked as a chat: each
//! prompt string becomes a user message, a legacy `logprobs: N` becomes `logprobs: true,
//! top_logprobs: N`, and the rest goes as a chat completion's fields would (so it is routed
//! exactly like one: groups, retries, cooldowns, fallbacks, cost, events). The chat answer is
//! then rewritten in the legacy shape: `object: "text_completion"`, an id `cmpl-…`, each
//! choice's `text` (every choice of `n`), `logprobs` as `tokens` / `token_logprobs` /
//! `top_logprobs` / `text_offset`; streamed, chunk by chunk. `echo` and `suffix`, which a
//! chat model cannot honour, and token-id prompts are refused with a 400.

use serde_json::{Map, Value, json};

use super::body::from_json;
use super::chat::{self, ChatApi};
use super::error::{Api, ApiError};
use super::openai::request::{CompletionRequest, to_chat_request};
use super::openai::{Chunks, completion};
use super::sse::SseEncoder;
use crate::provider::{Passthrough, ToolCallDelta};
use crate::router::ChatOutcome;

const OBJECT: &str = "text_completion";

/// `POST /v1/completions` (and `/completions`).
pub struct Completions;

impl ChatApi for Completions {
    const API: Api = Api::OpenAi;
    const ID_PREFIX: &'static str = "cmpl-";
    /// `stream_options.include_usage`, as in chat completions.
    type Options = bool;
    type Encoder = TextChunks;

    fn parse(body: &[u8]) -> Result<chat::Parsed<bool>, ApiError> {
        let chat = as_chat(from_json::<Map<String, Value>>(body)?)?;
        let parsed: CompletionRequest = serde_json::from_value(Value::Object(chat))
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
        to_chat_request(parsed)
    }

    fn encoder(id: &str, model: &str, include_usage: &bool, _prompt_tokens: u64) -> TextChunks {
        TextChunks::new(Chunks::new(id, model, *include_usage))
    }

    fn answer(
        outcome: &ChatOutcome,
        id: &str,
        model: &str,
        passed: Vec<Passthrough>,
    ) -> Result<Vec<u8>, ApiError> {
        let chat: Value = serde_json::from_slice(&completion(outcome, id, model, passed))
            .map_err(|e| ApiError::bad_request(format!("cannot write the answer: {e}")))?;
        Ok(text_completion(chat, &mut Offsets::default())
            .to_string()
            .into_bytes())
    }
}

/// The legacy body as a chat completions body (see the module docs).
fn as_chat(mut fields: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let prompt = fields.remove("prompt").ok_or_else(|| {
        ApiError::bad_request("`prompt` is required: a string or a list of strings")
    })?;
    let prompts: Vec<String> = match prompt {
        Value::String(s) => vec![s],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => {
            return Err(ApiError::bad_request(
                "`prompt` must be a string or a list of strings (token-id prompts are not \
                 supported: llmux asks chat models)",
            ));
        }
    };
    if fields.get("echo").is_some_and(|v| v == &json!(true)) {
        return Err(ApiError::bad_request(
            "`echo: true` is not supported: llmux asks chat models, which do not echo the prompt",
        ));
    }
    if fields.get("suffix").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "`suffix` is not supported: llmux asks chat models, which do not fill in text",
        ));
    }
    fields.remove("echo");
    fields.remove("suffix");
    // `best_of` equal to `n` (or 1) asks nothing a chat model can do otherwise.
    let n = fields.get("n").and_then(Value::as_u64).unwrap_or(1);
    if fields
        .get("best_of")
        .and_then(Value::as_u64)
        .is_some_and(|b| b != n)
    {
        return Err(ApiError::bad_request(
            "`best_of` other than `n` is not supported: llmux asks chat models",
        ));
    }
    fields.remove("best_of");
    match fields.remove("logprobs") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let top = v.as_u64().ok_or_else(|| {
                ApiError::bad_request("`logprobs` must be a number of top tokens (0 to 5)")
            })?;
            fields.insert("logprobs".into(), json!(true));
            if top > 0 {
                fields.insert("top_logprobs".into(), json!(top));
            }
        }
    }
    let messages: Vec<Value> = prompts
        .into_iter()
        .map(|p| json!({ "role": "user", "content": p }))
        .collect();
    fields.insert("messages".into(), Value::Array(messages));
    Ok(fields)
}

/// Where each choice's text has got to, for `text_offset`.
#[derive(Default)]
struct Offsets(std::collections::HashMap<u64, u64>);

impl Offsets {
    fn at(&mut self, index: u64) -> &mut u64 {
        self.0.entry(index).or_default()
    }
}

/// A `chat.completion` (or chunk) rewritten as a `text_completion` (or its chunk).
fn text_completion(mut chat: Value, offsets: &mut Offsets) -> Value {
    let choices: Vec<Value> = chat
        .get_mut("choices")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let body = c.get("message").or_else(|| c.get("delta"));
            let text = body
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let logprobs = c
                .get("logprobs")
                .filter(|l| !l.is_null())
                .map(|l| legacy_logprobs(l, offsets.at(index)))
                .unwrap_or(Value::Null);
            json!({
                "text": text,
                "index": index,
                "logprobs": logprobs,
                "finish_reason": c.get("finish_reason").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    if let Some(obj) = chat.as_object_mut() {
        obj.insert("choices".into(), Value::Array(choices));
        obj.insert("object".into(), json!(OBJECT));
    }
    chat
}

/// Chat `logprobs` (`{"content": [{"token", "logprob", "top_logprobs": [{"token",
/// "logprob"}]}]}`) in the legacy shape; `offset` is where the choice's text has got to.
fn legacy_logprobs(chat: &Value, offset: &mut u64) -> Value {
    let content = chat
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tokens = Vec::new();
    let mut token_logprobs = Vec::new();
    let mut top_logprobs = Vec::new();
    let mut text_offset = Vec::new();
    for t in content {
        let token = t.get("token").and_then(Value::as_str).unwrap_or("");
        text_offset.push(json!(*offset));
        *offset += token.chars().count() as u64;
        tokens.push(json!(token));
        token_logprobs.push(t.get("logprob").cloned().unwrap_or(Value::Null));
        let top: Map<String, Value> = t
            .get("top_logprobs")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|e| {
                        Some((
                            e.get("token")?.as_str()?.to_string(),
                            e.get("logprob")?.clone(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        top_logprobs.push(Value::Object(top));
    }
    json!({
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": text_offset,
    })
}

/// The chat stream's frames rewritten as text completion chunks: the chat encoder writes each
/// frame (with everything it passes back), then each `data:` object is rewritten.
pub struct TextChunks {
    chat: Chunks,
    offsets: Offsets,
    scratch: Vec<u8>,
}

impl TextChunks {
    fn new(chat: Chunks) -> TextChunks {
        TextChunks {
            chat,
            offsets: Offsets::default(),
            scratch: Vec::new(),
        }
    }

    /// Rewrites the chat frames in `raw` into `out`: JSON objects with `choices` become text
    /// completion chunks; `[DONE]`, errors and comments go as they are.
    fn rewrite(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(raw);
        for block in text.split_inclusive("\n\n") {
            let Some(data) = block.strip_prefix("data: ") else {
                out.extend_from_slice(block.as_bytes());
                continue;
            };
            let data = data.trim_end_matches('\n');
            match serde_json::from_str::<Value>(data) {
                Ok(v) if v.get("choices").is_some() => {
                    let v = text_completion(v, &mut self.offsets);
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(v.to_string().as_bytes());
                    out.extend_from_slice(b"\n\n");
                }
                _ => out.extend_from_slice(block.as_bytes()),
            }
        }
    }

    /// Runs `write` on the chat encoder and rewrites what it wrote.
    fn via(&mut self, out: &mut Vec<u8>, write: impl FnOnce(&mut Chunks, &mut Vec<u8>)) {
        let mut raw = std::mem::take(&mut self.scratch);
        raw.clear();
        write(&mut self.chat, &mut raw);
        self.rewrite(&raw, out);
        self.scratch = raw;
    }
}

impl SseEncoder for TextChunks {
    fn open(&mut self, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.open(o));
    }
    fn delta(&mut self, text: &str, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.delta(text, o));
    }
    fn reasoning(&mut self, _text: &str, _out: &mut Vec<u8>) {
        // A text completion has no place for reasoning.
    }
    fn tool_call(&mut self, _call: &ToolCallDelta, _out: &mut Vec<u8>) {
        // Nor for tool calls (a text completion request sends no tools).
    }
    fn passthrough(&mut self, p: Box<Passthrough>, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.passthrough(p, o));
    }
    fn restart(&mut self, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.restart(o));
    }
    fn finish(&mut self, outcome: &ChatOutcome, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.finish(outcome, o));
    }
    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        self.via(out, |c, o| c.fail(error, o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_body_becomes_a_chat_body() {
        let fields = json!({"model": "m", "prompt": ["a", "b"], "logprobs": 2, "echo": false, "best_of": 1, "max_tokens": 5});
        let chat = as_chat(fields.as_object().unwrap().clone()).unwrap();
        assert_eq!(
            Value::Object(chat),
            json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "logprobs": true, "top_logprobs": 2, "max_tokens": 5})
        );
        for bad in [
            json!({"prompt": [1, 2]}),
            json!({"prompt": "x", "echo": true}),
            json!({"prompt": "x", "suffix": "y"}),
            json!({"prompt": "x", "best_of": 3}),
            json!({}),
        ] {
            assert!(as_chat(bad.as_object().unwrap().clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn chat_logprobs_become_legacy_ones_with_offsets() {
        let chat = json!({"content": [
            {"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}, {"token": "Yo", "logprob": -1.5}]},
            {"token": "!", "logprob": -0.25, "top_logprobs": []}
        ]});
        let mut offset = 3;
        assert_eq!(
            legacy_logprobs(&chat, &mut offset),
            json!({
                "tokens": ["Hi", "!"],
                "token_logprobs": [-0.5, -0.25],
                "top_logprobs": [{"Hi": -0.5, "Yo": -1.5}, {}],
                "text_offset": [3, 5],
            })
        );
        assert_eq!(offset, 6);
    }
}
