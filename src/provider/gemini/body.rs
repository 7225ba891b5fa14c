//! The `generateContent` request body: a [`ChatRequest`] in Gemini's shape.
//!
//! Turns become `contents` (roles `user` / `model`) of parts: text, images as `inlineData`
//! (Gemini cannot fetch a URL; `params::fit` keeps those away), an assistant's tool calls
//! as `functionCall` parts, tool results as `functionResponse` parts of a user turn (the
//! tool's name looked up from the call it answers; consecutive results share one turn).
//! Tools become `functionDeclarations` with their schema cut to the OpenAPI subset Gemini
//! takes, `tool_choice` becomes `toolConfig.functionCallingConfig`, and `stop`, `top_p`,
//! `top_k`, `seed` and the penalties join `generationConfig`. A Gemini 2.5+ call carries a
//! `thoughtSignature` that must come back with it: the decoder folds it into the call's id
//! after [`THOUGHT_SEPARATOR`], and it is split off again here.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::config::Deployment;
use crate::provider::{
    ChatRequest, ImageSource, Message, Part, ProviderError, Role, ToolChoice, system_prompt,
};

/// Between a made-up tool call id and the Gemini thought signature it carries.
pub const THOUGHT_SEPARATOR: &str = "__thought__";
/// Schema keys Gemini's function `parameters` take (its OpenAPI subset); others are cut.
const SCHEMA_KEYS: [&str; 20] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "items",
    "default",
];
/// Numeric bounds, also taken.
const SCHEMA_BOUNDS: [&str; 2] = ["minimum", "maximum"];
/// `extra` parameters and their `generationConfig` names.
const GENERATION_PARAMS: [(&str, &str); 6] = [
    ("stop", "stopSequences"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
];

/// The body (see the module docs).
pub fn request_body(d: &Deployment, request: &ChatRequest) -> Result<Value, ProviderError> {
    let names: HashMap<&str, &str> = request
        .messages
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let mut contents: Vec<Value> = Vec::new();
    for m in request.messages.iter().filter(|m| m.role != Role::System) {
        match m.role {
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let name = names.get(id).copied().unwrap_or(id);
                let part = json!({ "functionResponse": { "name": name, "response": response(m) } });
                match contents.last_mut() {
                    Some(prev) if is_function_responses(prev) => {
                        if let Some(parts) = prev["parts"].as_array_mut() {
                            parts.push(part);
                        }
                    }
                    _ => contents.push(json!({ "role": "user", "parts": [part] })),
                }
            }
            Role::Assistant => {
                let mut parts = Vec::new();
                if !m.content.is_empty() || m.tool_calls.is_empty() {
                    parts.push(json!({ "text": m.content }));
                }
                for c in &m.tool_calls {
                    let args = c.arguments_object()?;
                    let mut part = json!({ "functionCall": { "name": c.name, "args": args } });
                    if let Some((_, sig)) = c.id.split_once(THOUGHT_SEPARATOR) {
                        part["thoughtSignature"] = json!(sig);
                    }
                    parts.push(part);
                }
                contents.push(json!({ "role": "model", "parts": parts }));
            }
            _ => contents.push(json!({ "role": "user", "parts": user_parts(m) })),
        }
    }
    let mut body = json!({ "contents": contents });
    if let Some(system) = system_prompt(&request.messages) {
        body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
    }
    let mut config = Map::new();
    if let Some(max) = request.max_tokens.or(d.max_tokens) {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(t) = request.temperature.or(d.temperature) {
        config.insert("temperature".into(), json!(t));
    }
    for (key, name) in GENERATION_PARAMS {
        match request.extra.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if key == "stop" => {
                config.insert(name.into(), json!([s]));
            }
            Some(v) => {
                config.insert(name.into(), v.clone());
            }
        }
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({ "name": t.name });
                if let Some(desc) = &t.description {
                    f["description"] = json!(desc);
                }
                let schema = clean_schema(&t.schema());
                // An object without properties is refused: leave `parameters` out instead.
                if schema.get("properties").is_some_and(|p| p != &json!({})) {
                    f["parameters"] = schema;
                }
                f
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
        if let Some(choice) = &request.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({ "mode": "AUTO" }),
                ToolChoice::None => json!({ "mode": "NONE" }),
                ToolChoice::Required => json!({ "mode": "ANY" }),
                ToolChoice::Tool { name } => {
                    json!({ "mode": "ANY", "allowedFunctionNames": [name] })
                }
            };
            body["toolConfig"] = json!({ "functionCallingConfig": config });
        }
    }
    Ok(body)
}

fn is_function_responses(content: &Value) -> bool {
    content["role"] == "user"
        && content["parts"]
            .as_array()
            .and_then(|p| p.first())
            .is_some_and(|p| p.get("functionResponse").is_some())
}

/// A tool result as `response`: a JSON object as it is, anything else as `{content: text}`.
fn response(m: &Message) -> Value {
    match serde_json::from_str::<Value>(&m.content) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "content": m.content }),
    }
}

fn user_parts(m: &Message) -> Vec<Value> {
    if m.parts.is_empty() {
        return vec![json!({ "text": m.content })];
    }
    m.parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text } => Some(json!({ "text": text })),
            Part::Image {
                source: ImageSource::Base64 { media_type, data },
                ..
            } => Some(json!({ "inlineData": { "mimeType": media_type, "data": data } })),
            // `params::fit` refuses or drops these before the body is built.
            Part::Image {
                source: ImageSource::Url { .. },
                ..
            } => None,
        })
        .collect()
}

/// A JSON Schema cut to what Gemini takes: unknown keys dropped at every level, a `type`
/// list such as `["string", "null"]` as one type and `nullable`.
pub fn clean_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    let cleaned = props
                        .iter()
                        .map(|(name, s)| (name.clone(), clean_schema(s)))
                        .collect();
                    out.insert(k.clone(), Value::Object(cleaned));
                }
            }
            "items" => {
                out.insert(k.clone(), clean_schema(v));
            }
            "anyOf" => {
                if let Value::Array(list) = v {
                    out.insert(k.clone(), list.iter().map(clean_schema).collect());
                }
            }
            "type" => match v {
                Value::Array(types) => {
                    let mut non_null = types.iter().filter(|t| *t != "null");
                    if let Some(t) = non_null.next() {
                        out.insert(k.clone(), t.clone());
                    }
                    if types.iter().any(|t| t == "null") {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            key if SCHEMA_KEYS.contains(&key) || SCHEMA_BOUNDS.contains(&key) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_keep_only_what_gemini_takes() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": ["string", "null"], "description": "where"},
                "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "exclusiveMaximum": 9}}
            },
            "required": ["city"]
        });
        assert_eq!(
            clean_schema(&s),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "nullable": true, "description": "where"},
                    "days": {"type": "array", "items": {"type": "integer", "minimum": 1}}
                },
                "required": ["city"]
            })
        );
    }
}
