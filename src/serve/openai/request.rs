//! An OpenAI chat-completions request body into a [`ChatRequest`].
//!
//! Bytes enter through [`CompletionRequest`]'s deserializer, which reads the fields llmux
//! routes on and keeps every other non-null field in `extra` (for the upstream, or for
//! `drop_params` to judge), in one pass. [`to_chat_request`] then builds the messages (text,
//! `image_url` parts, an assistant's `tool_calls`, `role: tool` results), the tools and
//! `tool_choice`, and the llmux fields: `metadata.tags` / `tags` (LiteLLM's spend tags) and
//! `cache: {"no-cache": true}`. What it cannot take is a 400 naming the field. The helpers
//! for tags and cache are shared with the Anthropic API.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::{Map, Value};

use crate::provider::tools::json_text;
use crate::provider::{
    BuiltinTool, ChatRequest, ImageSource, Message, Operation, Part, Role, ToolApi, ToolCall,
    ToolChoice, ToolSpec,
};
use crate::serve::chat::Parsed;
use crate::serve::error::ApiError;

/// An incoming chat-completions request: the fields llmux reads, and the rest.
#[derive(Debug, Default)]
pub struct CompletionRequest {
    model: Option<String>,
    messages: Option<Vec<InMessage>>,
    stream: Option<bool>,
    include_usage: bool,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f64>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    metadata: Option<Value>,
    tags: Option<Value>,
    cache: Option<Value>,
    /// Every other non-null field, as sent.
    extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<InToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<InFunction>,
}

#[derive(Debug, Deserialize)]
struct InFunction {
    #[serde(default)]
    name: Option<String>,
    /// A JSON string by the spec; an object is taken too.
    #[serde(default)]
    arguments: Value,
}

impl<'de> Deserialize<'de> for CompletionRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor)
    }
}

/// A member name of a request body, borrowed from the body unless it has escapes: reading
/// a request's member names allocates nothing.
pub(in crate::serve) struct MemberName<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(v)))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = CompletionRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat completions request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = CompletionRequest::default();
        while let Some(MemberName(key)) = map.next_key()? {
            match key.as_ref() {
                "model" => r.model = map.next_value()?,
                "messages" => r.messages = map.next_value()?,
                "stream" => r.stream = map.next_value()?,
                "stream_options" => {
                    let o: Option<StreamOptions> = map.next_value()?;
                    r.include_usage = o.is_some_and(|o| o.include_usage);
                }
                "max_tokens" => r.max_tokens = map.next_value()?,
                "max_completion_tokens" => r.max_completion_tokens = map.next_value()?,
                "temperature" => r.temperature = map.next_value()?,
                "tools" => r.tools = map.next_value()?,
                "tool_choice" => r.tool_choice = map.next_value()?,
                "parallel_tool_calls" => r.parallel_tool_calls = map.next_value()?,
                "metadata" => r.metadata = map.next_value()?,
                "tags" => r.tags = map.next_value()?,
                "cache" => r.cache = map.next_value()?,
                "functions" | "function_call" => {
                    let v: Value = map.next_value()?;
                    if !v.is_null() {
                        return Err(de::Error::custom(format!(
                            "`{key}` (OpenAI's deprecated function calling) is not supported by llmux; send `tools` and `tool_choice` instead"
                        )));
                    }
                }
                _ => {
                    let v: Value = map.next_value()?;
                    if !v.is_null() {
                        r.extra.insert(key.into_owned(), v);
                    }
                }
            }
        }
        Ok(r)
    }
}

/// Builds the router's request (see the module docs); the option is
/// `stream_options.include_usage`.
pub fn to_chat_request(req: CompletionRequest) -> Result<Parsed<bool>, ApiError> {
    let model = req
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `model`: name a model group"))?;
    let incoming = req
        .messages
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing `messages`: send at least one message"))?;
    let mut messages = Vec::with_capacity(incoming.len());
    for (i, m) in incoming.into_iter().enumerate() {
        messages
            .push(message(m).map_err(|e| ApiError::bad_request(format!("messages[{i}]: {e}")))?);
    }
    let tools = match req.tools {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, t)| tool(t).map_err(|e| ApiError::bad_request(format!("tools[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let tool_choice = match req.tool_choice {
        Some(v) if !v.is_null() => {
            Some(tool_choice(&v).map_err(|e| ApiError::bad_request(format!("tool_choice: {e}")))?)
        }
        _ => None,
    };
    let mut tags = tags_of(
        req.metadata.as_ref().and_then(|m| m.get("tags")),
        "metadata.tags",
    )?;
    for t in tags_of(req.tags.as_ref(), "tags")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let request = ChatRequest {
        messages,
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        stream: true,
        tags,
        // The cache replays the text alone: what asks for more (every choice of `n`,
        // `logprobs`) is never answered from it.
        no_cache: no_cache(req.cache.as_ref()) || wants_more_than_text(&req.extra),
        tools,
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls,
        extra: req.extra,
        operation: Operation::Chat,
    };
    Ok(Parsed {
        model,
        request,
        stream: req.stream.unwrap_or(false),
        options: req.include_usage,
    })
}

fn message(m: InMessage) -> Result<Message, String> {
    let role = match m.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        "function" => {
            return Err(
                "role 'function' (OpenAI's deprecated function calling) is not supported; send tool messages".to_string(),
            );
        }
        other => return Err(format!("unknown role '{other}'")),
    };
    match role {
        // The common case, a plain string, without going through parts.
        Role::User => match m.content {
            Value::String(s) => Ok(Message::user(s)),
            other => Ok(Message::with_parts(Role::User, parts(&other)?)),
        },
        Role::Tool => {
            let id = m
                .tool_call_id
                .filter(|s| !s.is_empty())
                .ok_or("a tool message needs `tool_call_id`")?;
            Ok(Message::tool_result(id, flatten_content(&m.content)?))
        }
        Role::Assistant => {
            let mut out = Message::assistant(flatten_content(&m.content)?);
            for (j, c) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let f = c
                    .function
                    .ok_or(format!("tool_calls[{j}] has no `function`"))?;
                out.tool_calls.push(ToolCall {
                    id: c.id.unwrap_or_default(),
                    name: f
                        .name
                        .ok_or(format!("tool_calls[{j}].function has no `name`"))?,
                    arguments: json_text(&f.arguments),
                });
            }
            Ok(out)
        }
        Role::System => Ok(Message::system(flatten_content(&m.content)?)),
    }
}

/// Text of a content value: a string, `null`, or an array of parts whose `text` parts are
/// joined with newlines (other parts are left out: used where only text can go).
pub fn flatten_content(content: &Value) -> Result<String, String> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            Ok(texts.join("\n"))
        }
        _ => Err("message content must be a string or an array of content parts".to_string()),
    }
}

/// A user message's content as parts: text and `image_url` parts; other part types (audio,
/// files) are refused rather than silently lost.
fn parts(content: &Value) -> Result<Vec<Part>, String> {
    let list = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Part::Text { text: s.clone() }]),
        Value::Array(list) => list,
        _ => {
            return Err(
                "message content must be a string or an array of content parts".to_string(),
            );
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, p) in list.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("text") => out.push(Part::Text {
                text: p
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            Some("image_url") => {
                let image = p.get("image_url").unwrap_or(&Value::Null);
                // `{"url": …, "detail": …}` by the spec; a bare string from some clients.
                let url = image
                    .get("url")
                    .and_then(Value::as_str)
                    .or(image.as_str())
                    .ok_or(format!(
                        "content[{j}]: an image_url part needs image_url.url"
                    ))?;
                out.push(Part::Image {
                    source: ImageSource::from_url(url),
                    detail: image
                        .get("detail")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
            Some(other) => {
                return Err(format!(
                    "content[{j}]: content parts of type '{other}' are not supported by llmux yet (text and image_url are)"
                ));
            }
            None => return Err(format!("content[{j}]: a content part needs a `type`")),
        }
    }
    Ok(out)
}

/// A tool: `{type: function, function: {name, description, parameters, strict}}`; other
/// types are OpenAI's own tools, kept as they are for OpenAI upstreams.
fn tool(t: &Value) -> Result<ToolSpec, String> {
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
    if kind != "function" {
        return Ok(ToolSpec {
            builtin: Some(BuiltinTool {
                api: ToolApi::OpenAi,
                spec: t.clone(),
            }),
            ..ToolSpec::function(kind, None, Value::Null)
        });
    }
    let f = t
        .get("function")
        .ok_or("a function tool needs `function`")?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("a function tool needs `function.name`")?;
    Ok(ToolSpec {
        strict: f.get("strict").and_then(Value::as_bool),
        ..ToolSpec::function(
            name,
            f.get("description").and_then(Value::as_str),
            f.get("parameters").cloned().unwrap_or(Value::Null),
        )
    })
}

fn tool_choice(v: &Value) -> Result<ToolChoice, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(format!("'{other}' is not one of auto, none, required")),
        },
        _ => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|name| ToolChoice::Tool {
                name: name.to_string(),
            })
            .ok_or_else(|| {
                "expected \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}".to_string()
            }),
    }
}

/// LiteLLM's spend tags: a list of strings (absent or null: none).
pub fn tags_of(v: Option<&Value>, field: &str) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| {
                t.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(format!("{field} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field} must be a list of strings"
        ))),
    }
}

/// True when the request asks for what the response cache does not keep: more than one
/// choice (`n`, `best_of`) or `logprobs`.
fn wants_more_than_text(extra: &Map<String, Value>) -> bool {
    let more_than_one = |k: &str| extra.get(k).and_then(Value::as_u64).is_some_and(|n| n > 1);
    let truthy = |k: &str| {
        extra
            .get(k)
            .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)))
    };
    more_than_one("n") || more_than_one("best_of") || truthy("logprobs")
}

/// LiteLLM's per-request cache opt-out: `cache: {"no-cache": true}`.
pub fn no_cache(v: Option<&Value>) -> bool {
    v.and_then(|c| c.get("no-cache"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Parsed<bool>, ApiError> {
        to_chat_request(
            serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?,
        )
    }

    #[test]
    fn member_names_are_read_borrowed_or_unescaped() {
        let body =
            br#"{"mod\u0065l":"g","messages":[{"role":"user","content":"hi"}],"x_\u00e9":1}"#;
        let req: CompletionRequest = serde_json::from_slice(body).unwrap();
        assert_eq!(
            req.model.as_deref(),
            Some("g"),
            "an escaped name is unescaped"
        );
        assert_eq!(req.messages.map(|m| m.len()), Some(1));
        assert_eq!(
            req.extra.get("x_é"),
            Some(&json!(1)),
            "extras keep their names"
        );
    }

    #[test]
    fn content_parts_flatten_to_their_text() {
        let parts = json!([
            {"type": "text", "text": "one"},
            {"type": "image_url", "image_url": {"url": "data:..."}},
            {"type": "text", "text": "two"}
        ]);
        assert_eq!(flatten_content(&parts).unwrap(), "one\ntwo");
        assert_eq!(flatten_content(&Value::Null).unwrap(), "");
        assert!(flatten_content(&json!(3)).is_err());
    }

    #[test]
    fn tools_tool_calls_results_and_images_are_read() {
        let p = parse(json!({
            "model": "g",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA==", "detail": "low"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "seed": 7,
            "logprobs": null,
            "metadata": {"tags": ["team-a"]},
            "tags": ["team-a", "p1"],
            "cache": {"no-cache": true}
        }))
        .unwrap();
        let r = p.request;
        assert_eq!(r.messages[0].content, "what is this");
        assert!(r.messages[0].has_images());
        assert_eq!(r.messages[1].tool_calls[0].arguments, "{\"a\":1}");
        assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(r.tools[0].name, "f");
        assert_eq!(r.tool_choice, Some(ToolChoice::Tool { name: "f".into() }));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert_eq!(r.extra.keys().collect::<Vec<_>>(), ["seed"]);
        assert_eq!(r.tags, ["team-a", "p1"]);
        assert!(r.no_cache);
    }

    #[test]
    fn what_cannot_be_taken_is_a_400_naming_it() {
        let no_id = parse(json!({"model": "g", "messages": [{"role": "tool", "content": "x"}]}));
        assert!(
            no_id
                .err()
                .unwrap()
                .message
                .contains("messages[0]: a tool message needs `tool_call_id`")
        );
        let audio = parse(
            json!({"model": "g", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
        );
        assert!(audio.err().unwrap().message.contains("input_audio"));
        let legacy: Result<CompletionRequest, _> =
            serde_json::from_value(json!({"model": "g", "functions": []}));
        assert!(legacy.unwrap_err().to_string().contains("send `tools`"));
    }
}
