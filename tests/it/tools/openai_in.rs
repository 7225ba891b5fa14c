//! OpenAI-shaped clients in front of an Anthropic deployment: tools, tool_choice, parallel
//! tool calls (plain and streamed), tool results and images translated both ways.

use serde_json::{Value, json};

use super::{
    anthropic_weather_tool, event, openai_stream_calls, openai_weather_tool, post, serve_one,
};
use crate::upstream::Reply;

const CLAUDE: &str = "anthropic/claude-sonnet-4-20250514";

/// An Anthropic answer with text and two parallel tool_use blocks.
fn anthropic_tool_answer() -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 30}
    })
}

/// The same answer as Anthropic streams it, the first call's input in three pieces.
fn anthropic_tool_stream() -> Reply {
    let delta = |i: u64, json: &str| {
        event(json!({"type": "content_block_delta", "index": i,
                     "delta": {"type": "input_json_delta", "partial_json": json}}))
    };
    Reply::sse(vec![
        event(
            json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 50, "output_tokens": 1}}}),
        ),
        event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
        ),
        event(json!({"type": "content_block_stop", "index": 0})),
        event(
            json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}}),
        ),
        delta(1, ""),
        delta(1, "{\"city\": "),
        delta(1, "\"Par"),
        delta(1, "is\"}"),
        event(json!({"type": "content_block_stop", "index": 1})),
        event(json!({"type": "ping"})),
        event(
            json!({"type": "content_block_start", "index": 2, "content_block":
            {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}}),
        ),
        event(json!({"type": "content_block_stop", "index": 2})),
        event(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 30}}),
        ),
        event(json!({"type": "message_stop"})),
    ])
}

/// What the OpenAI Python SDK sends for a first turn with tools.
fn first_turn(stream: bool) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather and time in Paris?"}
        ],
        "model": "g",
        "stream": stream,
        "tools": [openai_weather_tool(), {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": true,
        "max_tokens": 300
    })
}

/// The translated request every first-turn test expects upstream.
fn assert_first_turn_body(sent: &Value) {
    assert_eq!(sent["system"], "You are a weather bot.");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Weather and time in Paris?"}])
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["description"], "Current weather in a city");
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["city"],
        json!({"type": "string"})
    );
    assert!(sent["tools"][0].get("function").is_none());
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": false})
    );
    assert_eq!(sent["max_tokens"], 300);
}

#[tokio::test]
async fn plain_tool_calls_come_back_in_openai_shape() {
    let (up, server) = serve_one(CLAUDE, Reply::json(anthropic_tool_answer()), "", "").await;
    let r = post(&server, "/v1/chat/completions", &first_turn(false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "toolu_01A");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(calls[1]["function"]["arguments"], "{}");
    let sent = &up.bodies()[0];
    assert_eq!(sent["stream"], false);
    assert_first_turn_body(sent);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_openai_deltas() {
    let (up, server) = serve_one(CLAUDE, anthropic_tool_stream(), "", "").await;
    let r = post(&server, "/v1/chat/completions", &first_turn(true)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let (calls, finish, text) = openai_stream_calls(&body);
    assert_eq!(text, "Let me check.");
    assert_eq!(finish, "tool_calls");
    assert_eq!(calls.len(), 2);
    let (id, name, args) = &calls[&0];
    assert_eq!((id.as_str(), name.as_str()), ("toolu_01A", "get_weather"));
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Paris"}),
        "arguments reassembled from their fragments"
    );
    assert_eq!(calls[&1].1, "get_time");
    assert_eq!(
        calls[&1].2, "{}",
        "a call streamed without arguments ends as {{}}"
    );
    // The pieces after the first carry only arguments, as OpenAI streams them.
    let pieces = body.matches("\"tool_calls\":[").count();
    assert!(pieces >= 4, "one chunk per fragment: {body}");
    assert!(body.trim_end().ends_with("data: [DONE]"));
    let sent = &up.bodies()[0];
    assert_eq!(sent["stream"], true);
    assert_first_turn_body(sent);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tool_results_and_history_become_anthropic_blocks() {
    let answer = json!({
        "id": "msg_02", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "18°C and 14:00."}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 90, "output_tokens": 8}
    });
    let (up, server) = serve_one(CLAUDE, Reply::json(answer), "", "").await;
    let body = json!({
        "model": "g",
        "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "functions.get_time:1", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_a1", "content": "18°C"},
            {"role": "tool", "tool_call_id": "functions.get_time:1", "content": [{"type": "text", "text": "14:00"}]},
            {"role": "user", "content": "Thanks, summarize."}
        ],
        "tools": [openai_weather_tool()],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "18°C and 14:00.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());

    let sent = &up.bodies()[0];
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_a1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "functions_get_time_1", "name": "get_time", "input": {}}
        ]}),
        "ids made safe for Anthropic, empty arguments as {{}}"
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_a1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "functions_get_time_1", "content": "14:00"},
            {"type": "text", "text": "Thanks, summarize."}
        ]}),
        "both results and the next text in one user turn"
    );
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(sent["tools"], json!([anthropic_weather_tool_with_extra()]));
    server.shutdown().await.unwrap();
}

/// The OpenAI weather tool translated: its schema passes as written.
fn anthropic_weather_tool_with_extra() -> Value {
    let mut t = anthropic_weather_tool();
    t["input_schema"]["additionalProperties"] = json!(false);
    t
}

#[tokio::test]
async fn image_parts_become_anthropic_image_blocks() {
    let (up, server) = serve_one(
        CLAUDE,
        Reply::anthropic_json("A red dot.", Some((900, 4))),
        "",
        "",
    )
    .await;
    let body = json!({
        "model": "g",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
        ]}]
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let sent = &up.bodies()[0];
    assert_eq!(
        sent["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
        ])
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_history_with_tool_calls_but_no_tools_gets_a_placeholder_tool() {
    let (up, server) = serve_one(CLAUDE, Reply::anthropic_json("ok", None), "", "").await;
    let body = json!({
        "model": "g",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}
        ]
    });
    let r = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let tools = up.bodies()[0]["tools"].clone();
    assert_eq!(tools.as_array().unwrap().len(), 1, "{tools}");
    assert!(
        tools[0]["description"]
            .as_str()
            .unwrap()
            .contains("Do not call it")
    );
    server.shutdown().await.unwrap();
}
