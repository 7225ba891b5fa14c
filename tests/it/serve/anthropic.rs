//! Anthropic's Messages shapes in and out, plain and streaming, over any upstream wire.

use serde_json::{Value, json};

use super::{KEY, header, master_key, one_group, sse, start};
use crate::upstream::{FakeUpstream, Reply};

fn messages_body(stream: bool) -> Value {
    json!({
        "model": "fast",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "you are terse"}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "again"}]}
        ],
        "stream": stream,
        "metadata": {"user_id": "u1"}
    })
}

async fn send(url: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(body);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn plain_message_has_anthropic_shape() {
    let up = FakeUpstream::start(vec![Reply::openai_json("Hi there", Some((20, 3)))]).await;
    let server = start(&one_group(&up.url, "")).await;
    let r = send(&server.url(), &messages_body(false), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llmux-deployment").as_deref(), Some("dep-a"));
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("1"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hi there"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 20);
    assert_eq!(v["usage"]["output_tokens"], 3);

    let sent = &up.bodies()[0]["messages"];
    assert_eq!(
        sent[0],
        json!({"role": "system", "content": "you are terse"})
    );
    assert_eq!(sent[2], json!({"role": "assistant", "content": "hello"}));
    assert_eq!(sent[3], json!({"role": "user", "content": "again"}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streaming_message_sends_anthropic_event_sequence() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["a", "b", "c"], Some((9, 3)))]).await;
    let yaml = one_group(&up.url, &master_key());
    let server = start(&yaml).await;
    let r = send(&server.url(), &messages_body(true), Some(KEY)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(header(&r, "x-llmux-deployment").as_deref(), Some("dep-a"));
    let events = sse(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (name, d) in names.iter().zip(&data) {
        assert_eq!(d["type"], *name, "the data's type names its event");
    }
    assert_eq!(data[0]["message"]["role"], "assistant");
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = data
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "abc");
    assert_eq!(data[6]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[6]["usage"]["output_tokens"], 3);
    server.shutdown().await.unwrap();
}
