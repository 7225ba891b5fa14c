//! Auth, each error status in each API's shape, the limits, errors before and after the first
//! token, binding rules and graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use llmux::serve::{ServeOptions, check_bind};
use serde_json::{Value, json};

use super::{
    KEY, chat, deployment, get, header, master_key, one_group, options, post, sse, stalling, start,
    start_with, streamed_content, streaming_chat,
};
use crate::support::TEST_KEY;
use crate::upstream::{FakeUpstream, Reply};

fn keyed(url: &str) -> String {
    one_group(url, &master_key())
}

#[tokio::test]
async fn without_a_master_key_no_auth_is_needed() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let r = post(&server, "/v1/chat/completions", &chat("fast", "hi"), None).await;
    assert_eq!(r.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn master_key_missing_wrong_right_and_x_api_key() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let server = start(&keyed(&up.url)).await;
    let body = chat("fast", "hi");

    let missing = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(missing.status(), 401);
    let v: Value = missing.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("missing"));

    let wrong = post(
        &server,
        "/v1/chat/completions",
        &body,
        Some("sk-llmux-test-mastex"),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.unwrap();
    assert!(!text.contains(KEY), "the key is never echoed");

    let right = post(&server, "/v1/chat/completions", &body, Some(KEY)).await;
    assert_eq!(right.status(), 200);

    let x_api_key = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url()))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(x_api_key.status(), 200);

    let anthropic = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.url()))
        .header("x-api-key", "nope")
        .json(&json!({"model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    let v: Value = anthropic.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    assert_eq!(get(&server, "/v1/models", None).await.status(), 401);
    assert_eq!(get(&server, "/llmux/events", None).await.status(), 401);
    assert_eq!(get(&server, "/health", None).await.status(), 401);
    // Probes and scrapers need no key.
    assert_eq!(get(&server, "/health/liveliness", None).await.status(), 200);
    assert_eq!(get(&server, "/health/readiness", None).await.status(), 200);
    assert_eq!(get(&server, "/metrics", None).await.status(), 200);
    assert_eq!(up.calls(), 2, "refused requests never reach the upstream");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_400_in_each_shape() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let v: Value = raw.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let no_messages = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "fast"}),
        None,
    )
    .await;
    assert_eq!(no_messages.status(), 400);
    let v: Value = no_messages.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("messages"));

    let tool = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "fast", "messages": [{"role": "tool", "content": "42"}]}),
        None,
    )
    .await;
    assert_eq!(tool.status(), 400, "a tool message needs its tool_call_id");

    let anthropic = post(
        &server,
        "/v1/messages",
        &json!({"model": "fast", "max_tokens": 5}),
        None,
    )
    .await;
    assert_eq!(anthropic.status(), 400);
    let v: Value = anthropic.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(up.calls(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_model_group_is_404() {
    let up = FakeUpstream::start(vec![Reply::openai_stream(&["x"], None)]).await;
    let server = start(&one_group(&up.url, "")).await;
    let r = post(&server, "/v1/chat/completions", &chat("nope", "hi"), None).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("nope"));
    let r = post(
        &server,
        "/v1/chat/completions",
        &streaming_chat("nope", "hi"),
        None,
    )
    .await;
    assert_eq!(
        r.status(),
        404,
        "a stream that cannot start is refused with its status"
    );
    let r = post(&server, "/v1/messages", &json!({"model": "nope", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]}), None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_body_is_413() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let server = start_with(
        &one_group(&up.url, ""),
        ServeOptions {
            max_body_bytes: 1024,
            ..options()
        },
    )
    .await;
    let r = post(
        &server,
        "/v1/chat/completions",
        &chat("fast", &"x".repeat(4096)),
        None,
    )
    .await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "request_too_large"
    );
    let r = post(
        &server,
        "/v1/chat/completions",
        &chat("fast", "small"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200, "a body under the limit passes");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_deployment_at_its_limit_is_429_with_retry_after() {
    let up = FakeUpstream::start(vec![Reply::openai_json("x", None)]).await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n",
        deployment("fast", "dep-a", &up.url, "      rpm: 1\n")
    );
    let server = start(&yaml).await;
    let first = post(&server, "/v1/chat/completions", &chat("fast", "hi"), None).await;
    assert_eq!(first.status(), 200);
    let second = post(&server, "/v1/chat/completions", &chat("fast", "hi"), None).await;
    assert_eq!(second.status(), 429);
    let secs: u64 = header(&second, "retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=60).contains(&secs),
        "Retry-After {secs}s is within the rpm minute"
    );
    let v: Value = second.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(up.calls(), 1);

    let anthropic = post(
        &server,
        "/v1/messages",
        &json!({"model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        None,
    )
    .await;
    assert_eq!(anthropic.status(), 429);
    assert!(header(&anthropic, "retry-after").is_some());
    assert_eq!(
        anthropic.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn all_routes_failed_is_502_naming_each_attempt() {
    let up = FakeUpstream::start(vec![Reply::status(500)]).await;
    let other = FakeUpstream::start(vec![Reply::status(503)]).await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  fallbacks: [{{fast: [slow]}}]\n",
        deployment("fast", "dep-a", &up.url, ""),
        deployment("slow", "dep-b", &other.url, ""),
    );
    let server = start(&yaml).await;
    // Streaming requested: a failure before the first token is still a real status.
    let body = streaming_chat("fast", "hi");
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(r.status(), 502);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(&r, "x-llmux-attempts").as_deref(), Some("2"));
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("dep-a") && message.contains("500"),
        "{message}"
    );
    assert!(
        message.contains("dep-b") && message.contains("503"),
        "{message}"
    );
    let attempts = v["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["deployment"], "dep-a");
    assert_eq!(attempts[1]["status"], 503);
    assert!(!v.to_string().contains(TEST_KEY));

    let r = post(
        &server,
        "/v1/messages",
        &json!({"model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        None,
    )
    .await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "api_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("dep-a"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failure_after_tokens_is_an_in_band_error() {
    let chunks = Reply::openai_stream(&["par", "tial", "never"], None).chunks();
    let texts: Vec<String> = chunks
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    let up = FakeUpstream::start(vec![Reply::sse(texts).reset_after(3)]).await;
    let server = start(&one_group(&up.url, "llmux:\n  mid_stream_failover: off\n")).await;
    let body = streaming_chat("fast", "hi");
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(
        r.status(),
        200,
        "tokens had started: the status was already sent"
    );
    let text = r.text().await.unwrap();
    let events = sse(&text);
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert!(last["error"]["message"].as_str().is_some(), "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(text.contains("\"par\"") && text.contains("\"tial\""));

    // Anthropic: an `error` event.
    let r = post(&server, "/v1/messages", &json!({"model": "fast", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]}), None).await;
    assert_eq!(r.status(), 200);
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().0.as_deref(), Some("error"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_the_in_flight_limit_is_503_with_retry_after() {
    let up = FakeUpstream::start(vec![stalling()]).await;
    let server = start_with(
        &one_group(&up.url, ""),
        ServeOptions {
            max_in_flight: 1,
            ..options()
        },
    )
    .await;
    let body = streaming_chat("fast", "hi");
    // Headers arrive once the first token did: this request is in flight now.
    let held = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(held.status(), 200);
    let r = post(&server, "/v1/chat/completions", &chat("fast", "more"), None).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "overloaded"
    );
    drop(held);
    up.wait_disconnect().await;
}

#[tokio::test]
async fn a_client_going_away_cancels_the_upstream_call() {
    let up = FakeUpstream::start(vec![stalling()]).await;
    let server = start(&one_group(&up.url, "")).await;
    let body = streaming_chat("fast", "hi");
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    drop(stream);
    up.wait_disconnect().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish() {
    let texts: Vec<String> = Reply::openai_stream(&["a", "b", "c"], None)
        .chunks()
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    let up = FakeUpstream::start(vec![
        Reply::sse(texts).delay_each(Duration::from_millis(30)),
    ])
    .await;
    let server = start(&one_group(&up.url, "")).await;
    let body = streaming_chat("fast", "hi");
    let r = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(r.status(), 200);
    let url = server.url();
    let stopping = tokio::spawn(server.shutdown());
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(streamed_content(&text), "abc");
    stopping.await.unwrap().unwrap();
    assert!(
        reqwest::Client::new()
            .get(format!("{url}/health/liveliness"))
            .send()
            .await
            .is_err(),
        "nothing listens after shutdown"
    );
}

#[test]
fn no_master_key_binds_loopback_only_unless_told() {
    let public: SocketAddr = "0.0.0.0:4000".parse().unwrap();
    let loopback: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let v6: SocketAddr = "[::1]:4000".parse().unwrap();
    assert!(check_bind(public, false, false).is_err());
    assert!(check_bind(public, false, true).is_ok());
    assert!(check_bind(public, true, false).is_ok());
    assert!(check_bind(loopback, false, false).is_ok());
    assert!(check_bind(v6, false, false).is_ok());
}
