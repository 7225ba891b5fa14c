//! OpenAI's chat-completions shapes in and out, plain and streaming, `/v1/models`, and the
//! x-llmux headers.

use serde_json::{Value, json};

use super::{chat, deployment, get, header, one_group, post, sse, start, streaming_chat};
use crate::upstream::{FakeUpstream, Reply};

#[tokio::test]
async fn plain_completion_has_openai_shape_and_llmux_headers() {
    let up = FakeUpstream::start(vec![Reply::openai_json("Hello", Some((12, 2)))]).await;
    let server = start(&one_group(&up.url, "")).await;
    let body = json!({
        "model": "fast",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "one"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "two"}
            ]}
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "user": "passed on",
        "logit_bias": {}
    });
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llmux-deployment").as_deref(), Some("dep-a"));
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("1"));
    assert!(header(&r, "x-llmux-request-id").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "fast");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["usage"]["total_tokens"], 14);

    let sent = &up.bodies()[0];
    assert_eq!(
        sent["stream"], false,
        "no stream_timeout: a plain request stays plain"
    );
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        sent["messages"][1]["content"],
        json!([
            {"type": "text", "text": "one"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "two"}
        ]),
        "image parts pass through to an OpenAI upstream"
    );
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["user"], "passed on", "OpenAI parameters pass through");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streaming_completion_passes_every_chunk_and_usage() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(
        &["a", "b", "c", "d"],
        Some((7, 4)),
    )])
    .await;
    let server = start(&one_group(&up.url, "")).await;
    let mut body = streaming_chat("fast", "hi");
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&server, "/chat/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(header(&r, "x-llmux-deployment").as_deref(), Some("dep-a"));
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("1"));
    let text = r.text().await.unwrap();
    let events = sse(&text);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "abcd");
    let deltas = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .count();
    assert_eq!(
        deltas, 4,
        "one chunk per upstream delta, none merged or dropped"
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("stop")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 7);
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streaming_without_include_usage_sends_no_usage_chunk() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], Some((1, 1)))]).await;
    let server = start(&one_group(&up.url, "")).await;
    let body = streaming_chat("quick", "hi");
    let text = post(&server, "/v1/chat/completions", &body, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("\"usage\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn attempts_header_counts_a_retry_on_another_deployment() {
    let bad = FakeUpstream::start(vec![Reply::status(500)]).await;
    let good = FakeUpstream::start(vec![Reply::openai_stream(&["ok"], None)]).await;
    // No retries: the order-2 tier is tried after order 1 failed all the same (LiteLLM's
    // order fallback), as the second attempt.
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n",
        deployment("fast", "dep-bad", &bad.url, "      order: 1\n"),
        deployment("fast", "dep-good", &good.url, "      order: 2\n"),
    );
    let server = start(&yaml).await;
    let body = streaming_chat("fast", "hi");
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-llmux-deployment").as_deref(),
        Some("dep-good")
    );
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("2"));
    assert!(r.text().await.unwrap().contains("\"ok\""));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn models_lists_groups_and_aliases() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let v: Value = get(&server, "/v1/models", None).await.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["fast", "quick"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_endpoints_answer() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let live = get(&server, "/health/liveliness", None).await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap(), json!("I'm alive!"));
    let ready = get(&server, "/health/readiness", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "healthy");
    let health: Value = get(&server, "/health", None).await.json().await.unwrap();
    assert_eq!(health["healthy_count"], 1);
    assert_eq!(health["healthy_endpoints"][0]["id"], "dep-a");
    assert_eq!(health["unhealthy_count"], 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_a_stream_timeout_plain_requests_stay_plain_upstream() {
    let up = FakeUpstream::start(vec![Reply::openai_json("Hello", Some((3, 2)))]).await;
    let server = start(&one_group(&up.url, "  stream_timeout: 30\n")).await;
    let r = post(&server, "/v1/chat/completions", &chat("fast", "hi"), None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(
        up.bodies()[0]["stream"],
        false,
        "stream_timeout is a first-token deadline for streamed calls only"
    );
    server.shutdown().await.unwrap();
}
