//! The Messages request body: a [`ChatRequest`] in Anthropic's shape.
//!
//! System messages become the top-level `system`; an assistant's tool calls become
//! `tool_use` blocks (arguments parsed into `input`), tool results become `tool_result`
//! blocks at the head of the next user turn (consecutive results share one turn), images
//! become `image` blocks with a `base64` or `url` source. Tool call ids are made safe for
//! Anthropic's `^[a-zA-Z0-9_-]+$` the same way on both ends, so a call and its result still
//! match. `tool_choice` maps `required` → `any` and a function → `tool`, with
//! `parallel_tool_calls: false` as `disable_parallel_tool_use`. A conversation that holds
//! tool blocks but offers no tools gets a placeholder tool, as Anthropic refuses it
//! otherwise (LiteLLM does the same).

use serde_json::{Map, Value, json};

use super::DEFAULT_MAX_TOKENS;
use crate::config::{Deployment, Wire};
use crate::provider::params::takes;
use crate::provider::{
    ChatRequest, ImageSource, Message, Part, ProviderError, Role, ToolApi, ToolChoice, ToolSpec,
    system_prompt,
};

/// The name of the placeholder tool sent when the history has tool blocks but no tools.
const PLACEHOLDER_TOOL: &str = "llmux_placeholder_tool";

/// A tool call id as Anthropic accepts it: characters outside `[a-zA-Z0-9_-]` become `_`.
pub fn safe_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".to_string() } else { s }
}

/// The Messages body (see the module docs).
pub fn request_body(d: &Deployment, request: &ChatRequest) -> Result<Value, ProviderError> {
    let turns: Vec<&Message> = request
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .collect();
    let last = turns.len().saturating_sub(1);
    let mut messages: Vec<Value> = Vec::with_capacity(turns.len());
    let mut has_tool_blocks = false;
    for (i, m) in turns.iter().enumerate() {
        match m.role {
            Role::Tool => {
                has_tool_blocks = true;
                let block = tool_result_block(m);
                // Results of one turn's calls go together, at the head of one user turn.
                match messages.last_mut() {
                    Some(prev) if prev["role"] == "user" && starts_with_tool_result(prev) => {
                        push_block(prev, block);
                    }
                    _ => messages.push(json!({ "role": "user", "content": [block] })),
                }
            }
            Role::User => {
                let content = user_content(m);
                // Text after tool results joins their turn (Anthropic wants them together).
                match messages.last_mut() {
                    Some(prev) if prev["role"] == "user" && starts_with_tool_result(prev) => {
                        for block in as_blocks(content) {
                            push_block(prev, block);
                        }
                    }
                    _ => messages.push(json!({ "role": "user", "content": content })),
                }
            }
            Role::Assistant => {
                // Anthropic rejects a final assistant turn (a prefill, as used to continue a
                // cut answer) that ends in whitespace.
                let text = if i == last {
                    m.content.trim_end()
                } else {
                    m.content.as_str()
                };
                if m.tool_calls.is_empty() {
                    messages.push(json!({ "role": "assistant", "content": text }));
                    continue;
                }
                has_tool_blocks = true;
                let mut blocks = Vec::with_capacity(m.tool_calls.len() + 1);
                if !text.is_empty() {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                for c in &m.tool_calls {
                    let input = c.arguments_object()?;
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": safe_id(&c.id),
                        "name": c.name,
                        "input": input,
                    }));
                }
                messages.push(json!({ "role": "assistant", "content": blocks }));
            }
            Role::System => {}
        }
    }
    let mut body = json!({
        "model": d.model,
        "messages": messages,
        "max_tokens": request.max_tokens.or(d.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": request.stream,
    });
    if let Some(system) = system_prompt(&request.messages) {
        body["system"] = json!(system);
    }
    if let Some(t) = request.temperature.or(d.temperature) {
        body["temperature"] = json!(t);
    }
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(request.tools.iter().map(tool_json).collect());
        if let Some(choice) = tool_choice_json(request) {
            body["tool_choice"] = choice;
        }
    } else if has_tool_blocks {
        body["tools"] = json!([{
            "name": PLACEHOLDER_TOOL,
            "description": "Not a real tool: the conversation holds earlier tool calls. Do not call it.",
            "input_schema": { "type": "object", "properties": {} },
        }]);
    }
    extra_params(&mut body, request);
    Ok(body)
}

fn starts_with_tool_result(message: &Value) -> bool {
    message["content"]
        .as_array()
        .and_then(|b| b.first())
        .is_some_and(|b| b["type"] == "tool_result")
}

fn push_block(message: &mut Value, block: Value) {
    if let Some(blocks) = message["content"].as_array_mut() {
        blocks.push(block);
    }
}

/// Content as a list of blocks (a string becomes one text block; empty text none).
fn as_blocks(content: Value) -> Vec<Value> {
    match content {
        Value::Array(blocks) => blocks,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![json!({ "type": "text", "text": s })],
        other => vec![other],
    }
}

/// A user turn's content: a string for text, blocks when it holds images.
fn user_content(m: &Message) -> Value {
    if m.parts.is_empty() {
        return json!(m.content);
    }
    Value::Array(m.parts.iter().filter_map(part_block).collect())
}

/// A part as a content block; empty text parts are left out (Anthropic refuses them).
fn part_block(p: &Part) -> Option<Value> {
    match p {
        Part::Text { text } if text.is_empty() => None,
        Part::Text { text } => Some(json!({ "type": "text", "text": text })),
        Part::Image { source, .. } => {
            Some(json!({ "type": "image", "source": image_source(source) }))
        }
    }
}

fn image_source(source: &ImageSource) -> Value {
    match source {
        ImageSource::Url { url } => json!({ "type": "url", "url": url }),
        ImageSource::Base64 { media_type, data } => {
            json!({ "type": "base64", "media_type": media_type, "data": data })
        }
    }
}

fn tool_result_block(m: &Message) -> Value {
    let content = if m.parts.is_empty() {
        json!(m.content)
    } else {
        Value::Array(m.parts.iter().filter_map(part_block).collect())
    };
    let mut block = json!({
        "type": "tool_result",
        "tool_use_id": safe_id(m.tool_call_id.as_deref().unwrap_or("")),
        "content": content,
    });
    if m.is_error {
        block["is_error"] = json!(true);
    }
    block
}

/// A tool in Anthropic's shape (a built-in one exactly as the client sent it).
pub fn tool_json(t: &ToolSpec) -> Value {
    if let Some(b) = t.builtin.as_ref().filter(|b| b.api == ToolApi::Anthropic) {
        return b.spec.clone();
    }
    let mut tool = json!({ "name": t.name, "input_schema": t.schema() });
    if let Some(d) = &t.description {
        tool["description"] = json!(d);
    }
    tool
}

/// `tool_choice`, with `parallel_tool_calls: false` as `disable_parallel_tool_use`.
fn tool_choice_json(request: &ChatRequest) -> Option<Value> {
    let mut choice = match &request.tool_choice {
        Some(ToolChoice::Auto) => json!({ "type": "auto" }),
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Required) => json!({ "type": "any" }),
        Some(ToolChoice::Tool { name }) => json!({ "type": "tool", "name": name }),
        None if request.parallel_tool_calls == Some(false) => json!({ "type": "auto" }),
        None => return None,
    };
    if let Some(parallel) = request.parallel_tool_calls {
        choice["disable_parallel_tool_use"] = json!(!parallel);
    }
    Some(choice)
}

/// `extra` parameters Anthropic takes: `stop` as `stop_sequences`, `user` as
/// `metadata.user_id`, the rest by name.
fn extra_params(body: &mut Value, request: &ChatRequest) {
    let Value::Object(map) = body else {
        return;
    };
    for (k, v) in &request.extra {
        if !takes(Wire::Anthropic, k) || v.is_null() {
            continue;
        }
        match k.as_str() {
            "stop" => {
                let stops = match v {
                    Value::String(s) => vec![json!(s)],
                    Value::Array(a) => a.clone(),
                    _ => continue,
                };
                map.insert("stop_sequences".into(), Value::Array(stops));
            }
            "user" => {
                let mut meta = Map::new();
                meta.insert("user_id".into(), v.clone());
                map.insert("metadata".into(), Value::Object(meta));
            }
            _ => {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}
