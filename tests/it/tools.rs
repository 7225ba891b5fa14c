//! Tools and images through `serve` and the router, over real HTTP to fake upstreams: the
//! request the upstream gets is checked field by field, and what the client gets back is
//! read the way an SDK reads it (streamed tool-call pieces reassembled).
//!
//! - `openai_in`: OpenAI-shaped clients in front of an Anthropic deployment.
//! - `anthropic_in`: Anthropic-shaped clients in front of an OpenAI deployment.
//! - `params`: `drop_params` on and off, same-wire passthrough, Gemini and Ollama.
//! - `tui`: tool calls and results in the conversation pane and in session files.

mod anthropic_in;
mod openai_in;
mod params;
mod tui;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::serve::{sse, start};
use crate::upstream::{FakeUpstream, Reply};
use llmux::serve::Running;

/// A config with one group `g` of one deployment (`model` with its provider prefix) at `url`,
/// and `rest` appended (settings).
fn config(model: &str, url: &str, params: &str, rest: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: {model}\n      api_base: {url}\n      api_key: sk-upstream-test\n{params}    model_info: {{ id: dep }}\nrouter_settings:\n  num_retries: 0\n{rest}"
    )
}

/// A fake upstream answering `reply` and a server in front of it.
async fn serve_one(model: &str, reply: Reply, params: &str, rest: &str) -> (FakeUpstream, Running) {
    let up = FakeUpstream::start(vec![reply]).await;
    let server = start(&config(model, &up.url, params, rest)).await;
    (up, server)
}

async fn post(server: &Running, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The weather tool as the OpenAI Python SDK sends it.
fn openai_weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": false
            },
            "strict": true
        }
    })
}

/// The same tool as the Anthropic SDK sends it.
fn anthropic_weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }
    })
}

/// One named Anthropic SSE event.
fn event(v: Value) -> String {
    let name = v["type"].as_str().unwrap_or("").to_string();
    format!("event: {name}\ndata: {v}\n\n")
}

/// One OpenAI chunk with `delta` and `finish`.
fn chunk(delta: Value, finish: Value) -> String {
    let v = json!({
        "id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {v}\n\n")
}

/// OpenAI streamed tool calls reassembled as an SDK does: index → (id, name, arguments),
/// with the last finish_reason and the text.
fn openai_stream_calls(body: &str) -> (BTreeMap<u64, (String, String, String)>, String, String) {
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let mut finish = String::new();
    let mut text = String::new();
    for (_, data) in sse(body) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        let Some(choice) = v["choices"].get(0) else {
            continue;
        };
        if let Some(t) = choice["delta"]["content"].as_str() {
            text.push_str(t);
        }
        for c in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let e = calls.entry(c["index"].as_u64().unwrap()).or_default();
            if let Some(id) = c["id"].as_str() {
                e.0 = id.to_string();
            }
            if let Some(name) = c["function"]["name"].as_str() {
                e.1 = name.to_string();
            }
            e.2.push_str(c["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_string();
        }
    }
    (calls, finish, text)
}

/// Anthropic streamed content reassembled as an SDK does: the blocks (tool_use inputs parsed
/// from their `input_json_delta` pieces) and the stop reason.
fn anthropic_stream_blocks(body: &str) -> (Vec<Value>, String) {
    let mut blocks: BTreeMap<u64, Value> = BTreeMap::new();
    let mut json_parts: BTreeMap<u64, String> = BTreeMap::new();
    let mut stop = String::new();
    for (name, data) in sse(body) {
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(
            name.as_deref(),
            v["type"].as_str(),
            "event name matches its type"
        );
        match v["type"].as_str().unwrap() {
            "content_block_start" => {
                blocks.insert(v["index"].as_u64().unwrap(), v["content_block"].clone());
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().unwrap();
                let d = &v["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        let b = blocks.get_mut(&i).unwrap();
                        let t = format!(
                            "{}{}",
                            b["text"].as_str().unwrap(),
                            d["text"].as_str().unwrap()
                        );
                        b["text"] = json!(t);
                    }
                    "input_json_delta" => json_parts
                        .entry(i)
                        .or_default()
                        .push_str(d["partial_json"].as_str().unwrap()),
                    _ => {}
                }
            }
            "message_delta" => stop = v["delta"]["stop_reason"].as_str().unwrap().to_string(),
            _ => {}
        }
    }
    for (i, json_text) in json_parts {
        blocks.get_mut(&i).unwrap()["input"] = serde_json::from_str(&json_text).unwrap();
    }
    (blocks.into_values().collect(), stop)
}
