//! An Anthropic Messages request body into a [`ChatRequest`].
//!
//! Bytes enter through [`MessagesRequest`]'s deserializer (the fields llmux reads, every
//! other non-null field kept in `extra`); [`to_chat_request`] builds the messages: a
//! top-level `system` (a string or text blocks) first, then each turn's blocks in order —
//! `text` and `image` (base64 or url source) blocks as the message's parts, `tool_use`
//! blocks as the assistant's tool calls (`input` as JSON text), each `tool_result` as a
//! tool message of its own (string or block content, `is_error`). `thinking` blocks of
//! earlier turns are left out. `tools` (custom tools, and Anthropic's own typed tools kept
//! for Anthropic upstreams), `tool_choice` (`any` → required, `tool` → that tool,
//! `disable_parallel_tool_use`), `stop_sequences` (as `stop`), `metadata.user_id` (as
//! `user`), `metadata.tags` / `tags` and `cache: {"no-cache": true}` are read too.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::provider::{
    BuiltinTool, ChatRequest, ImageSource, Message, Operation, Part, Role, ToolApi, ToolCall,
    ToolChoice, ToolSpec,
};
use crate::serve::error::ApiError;
use crate::serve::openai::request::{MemberName, flatten_content, no_cache, tags_of};

/// An incoming Messages request: the fields llmux reads, and the rest.
#[derive(Debug, Default)]
pub struct MessagesRequest {
    model: Option<String>,
    messages: Option<Vec<InMessage>>,
    system: Value,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    stream: Option<bool>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    metadata: Option<Value>,
    tags: Option<Value>,
    cache: Option<Value>,
    /// Every other non-null field, named as OpenAI would where it has a name.
    extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

impl<'de> Deserialize<'de> for MessagesRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = MessagesRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Messages request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = MessagesRequest::default();
        while let Some(MemberName(key)) = map.next_key()? {
            match key.as_ref() {
                "model" => r.model = map.next_value()?,
                "messages" => r.messages = map.next_value()?,
                "system" => r.system = map.next_value()?,
                "max_tokens" => r.max_tokens = map.next_value()?,
                "temperature" => r.temperature = map.next_value()?,
                "stream" => r.stream = map.next_value()?,
                "tools" => r.tools = map.next_value()?,
                "tool_choice" => r.tool_choice = map.next_value()?,
                "metadata" => r.metadata = map.next_value()?,
                "tags" => r.tags = map.next_value()?,
                "cache" => r.cache = map.next_value()?,
                _ => {
                    let v: Value = map.next_value()?;
                    if !v.is_null() {
                        // One vocabulary for every API: OpenAI's name where it has one.
                        let name = if key == "stop_sequences" {
                            "stop".to_string()
                        } else {
                            key.into_owned()
                        };
                        r.extra.insert(name, v);
                    }
                }
            }
        }
        Ok(r)
    }
}

/// What a parsed request asks for.
pub struct Parsed {
    pub model: String,
    pub request: ChatRequest,
    pub stream: bool,
}

/// Builds the router's request (see the module docs).
pub fn to_chat_request(req: MessagesRequest) -> Result<Parsed, ApiError> {
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
        turn(m, &mut messages).map_err(|e| ApiError::bad_request(format!("messages[{i}]: {e}")))?;
    }
    let tools = match req.tools {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, t)| tool(t).map_err(|e| ApiError::bad_request(format!("tools[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let (tool_choice, parallel_tool_calls) = match req.tool_choice {
        Some(v) if !v.is_null() => {
            tool_choice(&v).map_err(|e| ApiError::bad_request(format!("tool_choice: {e}")))?
        }
        _ => (None, None),
    };
    let metadata = req.metadata.unwrap_or(Value::Null);
    let mut extra = req.extra;
    if let Some(user) = metadata.get("user_id").filter(|v| !v.is_null()) {
        extra.insert("user".into(), user.clone());
    }
    let mut tags = tags_of(metadata.get("tags"), "metadata.tags")?;
    for t in tags_of(req.tags.as_ref(), "tags")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let request = ChatRequest {
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        stream: true,
        tags,
        no_cache: no_cache(req.cache.as_ref()),
        tools,
        tool_choice,
        parallel_tool_calls,
        extra,
        operation: Operation::Chat,
    };
    Ok(Parsed {
        model,
        request,
        stream: req.stream.unwrap_or(false),
    })
}

/// One turn into messages: a user turn's tool results become tool messages (in order with
/// its other content), an assistant turn's `tool_use` blocks its tool calls.
fn turn(m: InMessage, out: &mut Vec<Message>) -> Result<(), String> {
    let role = match m.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => return Err(format!("role must be 'user' or 'assistant', not '{other}'")),
    };
    let blocks = match m.content {
        Value::String(s) => {
            out.push(Message::new(role, s));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        Value::Null => Vec::new(),
        _ => return Err("content must be a string or an array of content blocks".to_string()),
    };
    let mut parts: Vec<Part> = Vec::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        match (kind, role) {
            ("text", _) => parts.push(Part::Text {
                text: b
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            ("image", _) => parts.push(image(b).map_err(|e| format!("content[{j}]: {e}"))?),
            ("tool_use", Role::Assistant) => calls.push(ToolCall {
                id: str_field(b, "id"),
                name: str_field(b, "name"),
                arguments: b.get("input").map(Value::to_string).unwrap_or_default(),
            }),
            ("tool_result", Role::User) => {
                if !parts.is_empty() {
                    out.push(Message::with_parts(Role::User, std::mem::take(&mut parts)));
                }
                out.push(tool_result(b).map_err(|e| format!("content[{j}]: {e}"))?);
            }
            // Earlier reasoning is not sent back through the router.
            ("thinking" | "redacted_thinking", _) => {}
            // What the model itself produced (server tool calls and their results) is left out.
            (_, Role::Assistant) => {}
            (other, _) => {
                return Err(format!(
                    "content[{j}]: content blocks of type '{other}' are not supported by llmux yet (text, image, tool_use and tool_result are)"
                ));
            }
        }
    }
    if role == Role::Assistant {
        let mut msg = Message::with_parts(Role::Assistant, parts);
        msg.tool_calls = calls;
        out.push(msg);
    } else if !parts.is_empty() || !out.last().is_some_and(|m| m.role == Role::Tool) {
        out.push(Message::with_parts(Role::User, parts));
    }
    Ok(())
}

fn str_field(b: &Value, key: &str) -> String {
    b.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An `image` block: `source: {type: base64, media_type, data}` or `{type: url, url}`.
fn image(b: &Value) -> Result<Part, String> {
    let source = b.get("source").ok_or("an image block needs `source`")?;
    let source = match source.get("type").and_then(Value::as_str) {
        Some("base64") => ImageSource::Base64 {
            media_type: str_field(source, "media_type"),
            data: str_field(source, "data"),
        },
        Some("url") => ImageSource::Url {
            url: str_field(source, "url"),
        },
        other => {
            return Err(format!(
                "image sources of type '{}' are not supported (base64 and url are)",
                other.unwrap_or("")
            ));
        }
    };
    Ok(Part::Image {
        source,
        detail: None,
    })
}

/// A `tool_result` block as a tool message: string content, or text and image blocks.
fn tool_result(b: &Value) -> Result<Message, String> {
    let id = b
        .get("tool_use_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("a tool_result block needs `tool_use_id`")?;
    let mut msg = match b.get("content").unwrap_or(&Value::Null) {
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for c in blocks {
                match c.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(Part::Text {
                        text: str_field(c, "text"),
                    }),
                    Some("image") => parts.push(image(c)?),
                    other => {
                        return Err(format!(
                            "tool_result content of type '{}' is not supported (text and image are)",
                            other.unwrap_or("")
                        ));
                    }
                }
            }
            Message::with_parts(Role::Tool, parts)
        }
        other => Message::new(Role::Tool, flatten_content(other)?),
    };
    msg.tool_call_id = Some(id.to_string());
    msg.is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    Ok(msg)
}

/// A tool: `{name, description, input_schema}`; one with a `type` other than `custom` is
/// Anthropic's own (`web_search_20250305`, `bash_20250124`, …), kept as it is.
fn tool(t: &Value) -> Result<ToolSpec, String> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("a tool needs a `name`")?;
    if let Some(kind) = t.get("type").and_then(Value::as_str)
        && kind != "custom"
    {
        return Ok(ToolSpec {
            builtin: Some(BuiltinTool {
                api: ToolApi::Anthropic,
                spec: t.clone(),
            }),
            ..ToolSpec::function(name, None, Value::Null)
        });
    }
    Ok(ToolSpec::function(
        name,
        t.get("description").and_then(Value::as_str),
        t.get("input_schema").cloned().unwrap_or(Value::Null),
    ))
}

/// `tool_choice` and `parallel_tool_calls` (the inverse of `disable_parallel_tool_use`).
fn tool_choice(v: &Value) -> Result<(Option<ToolChoice>, Option<bool>), String> {
    let choice = match v.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Tool {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .ok_or("{\"type\": \"tool\"} needs a `name`")?
                .to_string(),
        },
        _ => return Err("`type` must be one of auto, any, tool, none".to_string()),
    };
    let parallel = v
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    Ok((Some(choice), parallel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Parsed {
        to_chat_request(serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn system_blocks_and_content_blocks_become_messages() {
        let p = parse(json!({
            "model": "fast",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "metadata": {"user_id": "x"}
        }));
        assert_eq!(p.model, "fast");
        assert!(!p.stream);
        assert_eq!(
            p.request.messages,
            vec![Message::system("be brief"), Message::user("hi")]
        );
        assert_eq!(p.request.max_tokens, Some(10));
        assert_eq!(p.request.extra["user"], "x");
    }

    #[test]
    fn tool_use_and_tool_results_become_calls_and_tool_messages() {
        let p = parse(json!({
            "model": "g",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}], "is_error": false},
                    {"type": "text", "text": "and tomorrow?"}
                ]}
            ],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "metadata": {"tags": ["t1"]}
        }));
        let m = &p.request.messages;
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].content, "Checking.");
        assert_eq!(m[1].tool_calls[0].arguments, "{\"city\":\"Paris\"}");
        assert_eq!((m[2].role, m[2].content.as_str()), (Role::Tool, "18C"));
        assert_eq!(m[3].content, "and tomorrow?");
        assert_eq!(p.request.tool_choice, Some(ToolChoice::Required));
        assert_eq!(p.request.parallel_tool_calls, Some(false));
        assert!(p.request.tools[1].builtin.is_some());
        assert_eq!(p.request.extra["stop"], json!(["END"]));
        assert_eq!(p.request.tags, ["t1"]);
    }

    #[test]
    fn unsupported_user_blocks_are_refused_by_name() {
        let r: MessagesRequest = serde_json::from_value(json!({
            "model": "g",
            "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]
        }))
        .unwrap();
        let e = to_chat_request(r).err().unwrap();
        assert!(
            e.message
                .contains("messages[0]: content[0]: content blocks of type 'document'")
        );
    }
}
