//! Anthropic-shaped clients in front of an OpenAI deployment: tools, tool_choice, parallel
//! tool calls (plain and streamed), tool results and images translated both ways.

use serde_json::{Value, json};

use super::{anthropic_stream_blocks, anthropic_weather_tool, chunk, post, serve_one};
use crate::upstream::Reply;

const GPT: &str = "openai/gpt-4o";

/// An OpenAI completion with two parallel tool calls and no text.
fn openai_tool_answer() -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [
                {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_t", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}
            ]}, "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80}
    })
}

/// The same answer as OpenAI streams it: each call's arguments in pieces.
fn openai_tool_stream() -> Reply {
    let call =
        |index: u64, piece: Value| json!({"tool_calls": [{"index": index, "function": piece}]});
    let usage = json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o", "choices": [],
        "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80}});
    Reply::sse(vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_w",
                "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(call(0, json!({"arguments": "{\"ci"})), Value::Null),
        chunk(
            call(0, json!({"arguments": "ty\": \"Paris\"}"})),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_t", "type": "function",
                "function": {"name": "get_time", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            call(1, json!({"arguments": "{\"tz\":\"CET\"}"})),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_string(),
    ])
}

/// What the Anthropic SDK sends for a first turn with tools.
fn first_turn(stream: bool) -> Value {
    json!({
        "model": "g",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
        "tools": [anthropic_weather_tool(), {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
        "stream": stream
    })
}

fn assert_first_turn_body(sent: &Value) {
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather and time in Paris?"}
        ])
    );
    assert_eq!(
        sent["tools"][0],
        json!({"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }})
    );
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["parallel_tool_calls"], true);
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["user"], "user-7");
    assert_eq!(sent["max_tokens"], 1024);
}

#[tokio::test]
async fn plain_tool_calls_come_back_as_tool_use_blocks() {
    let (up, server) = serve_one(GPT, Reply::json(openai_tool_answer()), "", "").await;
    let r = post(&server, "/v1/messages", &first_turn(false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([
            {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {"tz": "CET"}}
        ]),
        "no empty text block before the calls"
    );
    assert_eq!(v["usage"]["input_tokens"], 60);
    assert_first_turn_body(&up.bodies()[0]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_tool_use_blocks_and_input_json_deltas() {
    let (up, server) = serve_one(GPT, openai_tool_stream(), "", "").await;
    let r = post(&server, "/v1/messages", &first_turn(true)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let (blocks, stop) = anthropic_stream_blocks(&body);
    assert_eq!(stop, "tool_use");
    assert_eq!(
        blocks,
        vec![
            json!({"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Paris"}}),
            json!({"type": "tool_use", "id": "call_t", "name": "get_time", "input": {"tz": "CET"}}),
        ],
        "inputs reassembled from their input_json_delta pieces"
    );
    assert!(
        body.contains("\"partial_json\":\"{\\\"ci\""),
        "pieces pass as they come: {body}"
    );
    assert_eq!(body.matches("event: content_block_stop").count(), 2);
    let sent = &up.bodies()[0];
    assert_eq!(sent["stream"], true);
    assert_first_turn_body(sent);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tool_results_and_images_become_openai_messages() {
    let (up, server) = serve_one(GPT, Reply::openai_json("Sunny.", Some((99, 2))), "", "").await;
    let body = json!({
        "model": "g",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"type": "text", "text": "Where is this? Check the weather there."}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Paris. Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": false,
                 "content": [{"type": "text", "text": "18°C, sunny"}]},
                {"type": "text", "text": "Short answer please."}
            ]}
        ],
        "tools": [anthropic_weather_tool()],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}
    });
    let r = post(&server, "/v1/messages", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"], json!([{"type": "text", "text": "Sunny."}]));
    assert_eq!(v["stop_reason"], "end_turn");

    let sent = &up.bodies()[0];
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "text", "text": "Where is this? Check the weather there."}
            ]},
            {"role": "assistant", "content": "Paris. Checking.", "tool_calls": [
                {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "18°C, sunny"},
            {"role": "user", "content": "Short answer please."}
        ])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(sent["parallel_tool_calls"], false);
    server.shutdown().await.unwrap();
}
