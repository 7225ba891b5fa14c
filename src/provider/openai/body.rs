//! The body of a chat completions request in OpenAI's shape: messages (text, image parts,
//! an assistant's tool calls, a tool result's id), tools and tool choice, the request's
//! settings over the deployment's defaults, and the client's other parameters the wire takes.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Deployment;
use crate::provider::params::takes;
use crate::provider::{ChatRequest, Message, Part, Role, ToolChoice, ToolSpec};

/// OpenAI reasoning models refuse `max_tokens` and want `max_completion_tokens`.
const REASONING_MODEL_PREFIXES: [&str; 4] = ["o1", "o3", "o4", "gpt-5"];

/// The JSON body of a chat completions request, typed so it serializes straight to bytes
/// (building a JSON tree first, then writing it, was a tenth of a proxied request's work).
/// `extra` holds the client's other parameters this wire takes, minus those set here.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(flatten)]
    extra: std::collections::BTreeMap<&'a str, &'a Value>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// A message: plain text written as it is, anything richer as [`message_json`] builds it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireMessage<'a> {
    Text { role: &'a str, content: &'a str },
    Json(Value),
}

impl<'a> WireMessage<'a> {
    fn of(m: &'a Message) -> WireMessage<'a> {
        let plain = m.parts.is_empty() && m.tool_calls.is_empty() && m.tool_call_id.is_none();
        if plain {
            WireMessage::Text {
                role: m.role.as_str(),
                content: &m.content,
            }
        } else {
            WireMessage::Json(message_json(m))
        }
    }
}

/// The JSON body: request settings first, deployment defaults for what the request leaves out.
pub fn request_body<'a>(deployment: &'a Deployment, request: &'a ChatRequest) -> RequestBody<'a> {
    let mut body = RequestBody {
        model: &deployment.model,
        messages: request.messages.iter().map(WireMessage::of).collect(),
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
        max_tokens: None,
        max_completion_tokens: None,
        temperature: request.temperature.or(deployment.temperature),
        tools: Vec::new(),
        tool_choice: None,
        parallel_tool_calls: None,
        extra: std::collections::BTreeMap::new(),
    };
    if let Some(max) = request.max_tokens.or(deployment.max_tokens) {
        let reasoning_model = REASONING_MODEL_PREFIXES
            .iter()
            .any(|p| deployment.model.starts_with(p));
        if reasoning_model && matches!(deployment.provider.as_str(), "openai" | "azure") {
            body.max_completion_tokens = Some(max);
        } else {
            body.max_tokens = Some(max);
        }
    }
    if !request.tools.is_empty() {
        body.tools = request.tools.iter().map(tool_json).collect();
        body.tool_choice = request.tool_choice.as_ref().map(tool_choice_json);
        body.parallel_tool_calls = request.parallel_tool_calls;
    }
    for (k, v) in &request.extra {
        if takes(deployment.wire, k) && !body.sets(k) {
            body.extra.insert(k, v);
        }
    }
    body
}

impl RequestBody<'_> {
    /// True when the typed part of the body has `key` (a client's parameter does not
    /// override it).
    fn sets(&self, key: &str) -> bool {
        match key {
            "model" | "messages" | "stream" => true,
            "stream_options" => self.stream_options.is_some(),
            "max_tokens" => self.max_tokens.is_some(),
            "max_completion_tokens" => self.max_completion_tokens.is_some(),
            "temperature" => self.temperature.is_some(),
            "tools" => !self.tools.is_empty(),
            "tool_choice" => self.tool_choice.is_some(),
            "parallel_tool_calls" => self.parallel_tool_calls.is_some(),
            _ => false,
        }
    }
}

/// One message in OpenAI's shape: text as a string, images as content parts, an
/// assistant's `tool_calls`, a tool result's `tool_call_id`.
pub fn message_json(m: &Message) -> Value {
    let content = if m.parts.is_empty() {
        json!(m.content)
    } else {
        Value::Array(m.parts.iter().map(part_json).collect())
    };
    let mut out = json!({ "role": m.role.as_str(), "content": content });
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        if m.content.is_empty() && m.parts.is_empty() {
            out["content"] = Value::Null;
        }
        out["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments },
                })
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        out["tool_call_id"] = json!(id);
    }
    out
}

fn part_json(p: &Part) -> Value {
    match p {
        Part::Text { text } => json!({ "type": "text", "text": text }),
        Part::Image { source, detail } => {
            let mut image = json!({ "url": source.to_url() });
            if let Some(d) = detail {
                image["detail"] = json!(d);
            }
            json!({ "type": "image_url", "image_url": image })
        }
    }
}

/// A tool in OpenAI's shape (a built-in one exactly as the client sent it).
pub fn tool_json(t: &ToolSpec) -> Value {
    if let Some(b) = &t.builtin {
        return b.spec.clone();
    }
    let mut function = json!({ "name": t.name, "parameters": t.schema() });
    if let Some(d) = &t.description {
        function["description"] = json!(d);
    }
    if let Some(strict) = t.strict {
        function["strict"] = json!(strict);
    }
    json!({ "type": "function", "function": function })
}

/// `tool_choice` in OpenAI's words.
pub fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool { name } => json!({ "type": "function", "function": { "name": name } }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::request_body;
    use crate::config::{Deployment, Wire};
    use crate::provider::{ChatRequest, Message};

    fn sent(deployment: &Deployment, request: &ChatRequest) -> serde_json::Value {
        serde_json::to_value(request_body(deployment, request)).unwrap_or_default()
    }

    /// A client's other parameters fill in what the body leaves out and never override what
    /// it sets (the model, the messages, a temperature the request gives).
    #[test]
    fn extra_parameters_fill_in_but_do_not_override() {
        let d = Deployment::new("g", "openai", Wire::OpenAi, "gpt-4o-mini");
        let mut request = ChatRequest::new(vec![Message::user("hi")]);
        request.temperature = Some(0.2);
        request.stream = true;
        for (k, v) in [
            ("model", json!("other")),
            ("temperature", json!(0.9)),
            ("stream_options", json!({"include_usage": false})),
            ("seed", json!(7)),
            ("max_tokens", json!(5)),
        ] {
            request.extra.insert(k.to_string(), v);
        }
        assert_eq!(
            sent(&d, &request),
            json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "temperature": 0.2,
                "seed": 7,
                "max_tokens": 5,
            })
        );
    }
}
