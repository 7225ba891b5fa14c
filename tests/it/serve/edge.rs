//! Serve's edge: what hostile or broken clients send. Missing, wrong and oversized
//! credentials; bodies over the limit (declared and chunked); headers or a body trickled
//! byte by byte; invalid JSON, non-UTF-8 bytes, deep nesting; a non-JSON content type;
//! unknown fields (passed on, as LiteLLM does); a huge `messages` array. Each gets its
//! status and, when refused, an error in the called API's shape (OpenAI's on
//! `/v1/chat/completions`, Anthropic's on `/v1/messages`), and a normal request still
//! succeeds afterwards.
//!
//! The slow-client tests configure short header and body deadlines and await the server's
//! answer or its closing of the socket; nothing sleeps.

use std::net::SocketAddr;
use std::time::Duration;

use llmux::serve::{Running, ServeOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    KEY, chat, master_key, one_group, options, start_with, streamed_content, streaming_chat,
};
use crate::support::TEST_KEY;
use crate::upstream::{FakeUpstream, Reply};

/// Deadlines for the slow-client tests: short, so the tests are quick, but far above what a
/// client sending a whole request at once needs on loopback.
const SHORT_DEADLINE: Duration = Duration::from_millis(300);
/// The guard on awaiting the server: a server that never answers fails the test here
/// instead of hanging it.
const GUARD: Duration = Duration::from_secs(30);
/// The pace of a trickling client.
const DRIP_EVERY: Duration = Duration::from_millis(20);

fn anthropic_body(text: &str) -> Value {
    json!({"model": "fast", "max_tokens": 16, "messages": [{"role": "user", "content": text}]})
}

/// A server over one OpenAI deployment that always answers.
async fn server_with(options: ServeOptions, rest: &str) -> (FakeUpstream, Running) {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    let server = start_with(&one_group(&up.url, rest), options).await;
    (up, server)
}

/// A client that opens a new connection per request (short header deadlines close idle ones).
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// POSTs raw bytes with the given content type (none when `None`), with the test key.
async fn post_raw(
    server: &Running,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = fresh_client()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(KEY)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

/// Asserts an error response: its status, the API's shape, and a message containing `says`.
async fn assert_error(r: reqwest::Response, status: u16, anthropic: bool, says: &str) -> Value {
    assert_eq!(r.status(), status);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{v}");
    assert!(v["error"]["type"].as_str().is_some(), "{v}");
    if anthropic {
        assert_eq!(v["type"], "error", "{v}");
    } else {
        assert!(v["error"].get("code").is_some(), "{v}");
    }
    v
}

/// A normal request on each API still succeeds.
async fn still_serves(server: &Running) {
    let r = post_raw(
        server,
        "/v1/chat/completions",
        Some("application/json"),
        chat("fast", "hi").to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["object"],
        "chat.completion"
    );
    let r = post_raw(
        server,
        "/v1/messages",
        Some("application/json"),
        anthropic_body("hi").to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "message");
}

/// Writes `request` on a new connection while reading; returns what came back before the
/// server closed it (a reset counts as closed).
async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> String {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        // The server may close before taking it all: that is the point of some tests.
        let _ = wr.write_all(&request).await;
        wr
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(GUARD, rd.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    drop(writer.await.unwrap());
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn credentials_missing_wrong_and_oversized_are_401_or_431() {
    let (up, server) = server_with(options(), &master_key()).await;
    let url = server.url();
    let http = fresh_client();
    for (path, body, anthropic) in [
        ("/v1/chat/completions", chat("fast", "hi"), false),
        ("/v1/messages", anthropic_body("hi"), true),
    ] {
        let missing = http.post(format!("{url}{path}")).json(&body);
        assert_error(
            missing.send().await.unwrap(),
            401,
            anthropic,
            "missing API key",
        )
        .await;
        let wrong = http
            .post(format!("{url}{path}"))
            .json(&body)
            .bearer_auth("sk-nope");
        assert_error(
            wrong.send().await.unwrap(),
            401,
            anthropic,
            "invalid API key",
        )
        .await;
        // 100 KB keys: read, compared, refused like any wrong key, never echoed.
        let long = "k".repeat(100 * 1024);
        let bearer = http
            .post(format!("{url}{path}"))
            .json(&body)
            .bearer_auth(&long);
        let v = assert_error(
            bearer.send().await.unwrap(),
            401,
            anthropic,
            "invalid API key",
        )
        .await;
        assert!(!v.to_string().contains(&long[..64]));
        let x_api_key = http
            .post(format!("{url}{path}"))
            .json(&body)
            .header("x-api-key", &long);
        assert_error(x_api_key.send().await.unwrap(), 401, anthropic, "invalid").await;
        let basic = http
            .post(format!("{url}{path}"))
            .json(&body)
            .header("authorization", format!("Basic {KEY}"));
        assert_error(
            basic.send().await.unwrap(),
            401,
            anthropic,
            "missing API key",
        )
        .await;
    }
    // A 1 MB header is over what the HTTP layer reads for a request head: 431 and the
    // connection is closed, before any handler runs.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {}\r\ncontent-length: 2\r\n\r\n{{}}",
        "k".repeat(1024 * 1024)
    );
    let answer = raw_exchange(server.addr, head.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    assert_eq!(up.calls(), 0, "refused requests never reach the upstream");
    still_serves(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_chunked() {
    let limit = 64 * 1024;
    let (up, server) = server_with(
        ServeOptions {
            max_body_bytes: limit,
            ..options()
        },
        &master_key(),
    )
    .await;
    // Valid JSON, over the limit: with a Content-Length.
    let big = chat("fast", &"x".repeat(4 * limit)).to_string();
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let r = post_raw(&server, path, Some("application/json"), big.clone()).await;
        let v = assert_error(r, 413, anthropic, &format!("{limit}-byte limit")).await;
        let kind = if anthropic {
            "request_too_large"
        } else {
            "invalid_request_error"
        };
        assert_eq!(v["error"]["type"], kind);
    }
    // Chunked, no Content-Length: refused once the limit is crossed, not read to its end.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b' '; 16 * 1024])).collect();
    let chunked = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let r = post_raw(
        &server,
        "/v1/chat/completions",
        Some("application/json"),
        chunked,
    )
    .await;
    assert_error(r, 413, false, "limit").await;
    // Exactly at the limit is fine (as JSON goes: padded with spaces).
    let body = chat("fast", "hi").to_string();
    let padded = body.clone() + &" ".repeat(limit - body.len());
    assert_eq!(padded.len(), limit);
    let r = post_raw(
        &server,
        "/v1/chat/completions",
        Some("application/json"),
        padded,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(up.calls(), 1);
    still_serves(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_slow_streams_are_not() {
    let texts: Vec<String> = Reply::openai_stream(&["one ", "two ", "three ", "four"], None)
        .chunks()
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    // Each chunk comes well after the header deadline would have passed.
    let slow = Reply::sse(texts).delay_each(SHORT_DEADLINE);
    let up = FakeUpstream::start(vec![slow]).await;
    let server = start_with(
        &one_group(&up.url, ""),
        ServeOptions {
            header_read_timeout: SHORT_DEADLINE,
            ..options()
        },
    )
    .await;

    // Slowloris: a header byte at a time, never finishing. The server closes the socket
    // without an answer and without calling anything.
    let (mut rd, mut wr) = TcpStream::connect(server.addr).await.unwrap().into_split();
    let drip = tokio::spawn(async move {
        let head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ";
        let mut tick = tokio::time::interval(DRIP_EVERY);
        for b in head.iter().chain(std::iter::repeat(&b'z')) {
            tick.tick().await;
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(GUARD, rd.read_to_end(&mut got)).await;
    assert!(closed.is_ok(), "a never-ending header was not cut off");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // The dripping client notices the connection is gone.
    tokio::time::timeout(GUARD, drip).await.unwrap().unwrap();
    assert_eq!(up.calls(), 0);

    // An idle keep-alive connection is closed by the same deadline, after its answer.
    let request = "GET /health/liveliness HTTP/1.1\r\nhost: x\r\n\r\n";
    let answer = raw_exchange(server.addr, request.as_bytes().to_vec()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A stream that takes many header deadlines to finish is not cut.
    let body = streaming_chat("fast", "hi");
    let r = fresh_client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(streamed_content(&text), "one two three four");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_trickled_body_is_408_in_the_api_shape() {
    let (up, server) = server_with(
        ServeOptions {
            body_read_timeout: SHORT_DEADLINE,
            ..options()
        },
        "",
    )
    .await;
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        // The headers promise 1000 bytes; 10 arrive and the client keeps the socket open.
        let (mut rd, mut wr) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"model\":"
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(GUARD, rd.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "a trickled body was never answered");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        let json = text.split("\r\n\r\n").nth(1).unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did not arrive")
        );
        assert_eq!(v["error"]["type"], "invalid_request_error");
        if anthropic {
            assert_eq!(v["type"], "error");
        }
        drop(wr);
    }
    assert_eq!(up.calls(), 0);
    still_serves(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_bodies_are_400_and_deep_nesting_is_bounded() {
    let (up, server) = server_with(options(), "").await;
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "invalid request body"),
            (b"".to_vec(), "invalid request body"),
            (b"\xff\xfe\x00garbage".to_vec(), "invalid request body"),
            // Valid JSON bytes around a non-UTF-8 string.
            (
                b"{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}"
                    .to_vec(),
                "invalid request body",
            ),
            (b"[1,2,3]".to_vec(), "invalid request body"),
            // Deep nesting in a field llmux does not model (kept to pass on) is bounded too.
            (
                format!(
                    "{{\"model\":\"fast\",\"max_tokens\":5,\"frobnicate\":{},\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}",
                    deep(100_000)
                )
                .into_bytes(),
                "recursion limit",
            ),
            (
                format!(
                    "{{\"model\":\"fast\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":{}}}]}}",
                    deep(100_000)
                )
                .into_bytes(),
                "recursion limit",
            ),
            (
                br#"{"model":"fast","max_tokens":5,"messages":[{"role":"user","content":7}]}"#
                    .to_vec(),
                "content",
            ),
            (
                br#"{"model":"fast","max_tokens":5,"messages":[{"role":"robot","content":"x"}]}"#
                    .to_vec(),
                "role",
            ),
        ];
        for (body, says) in cases {
            let r = post_raw(&server, path, Some("application/json"), body).await;
            assert_error(r, 400, anthropic, says).await;
        }
    }
    assert_eq!(up.calls(), 0);
    still_serves(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_json_content_types_are_read() {
    let (up, server) = server_with(options(), "").await;
    for (path, body, anthropic) in [
        ("/v1/chat/completions", chat("fast", "hi"), false),
        ("/v1/messages", anthropic_body("hi"), true),
    ] {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            None,
        ] {
            let r = post_raw(&server, path, ct, body.to_string()).await;
            let v = assert_error(r, 415, anthropic, "Content-Type: application/json").await;
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains(ct.unwrap_or("none")), "{message}");
        }
        for ct in ["application/json; charset=utf-8", "Application/JSON"] {
            let r = post_raw(&server, path, Some(ct), body.to_string()).await;
            assert_eq!(r.status(), 200, "{ct}");
        }
    }
    assert_eq!(up.calls(), 4);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_fields_are_accepted_and_passed_on_as_litellm_does() {
    let (up, server) = server_with(options(), "").await;
    let mut body = chat("fast", "hi");
    body["frobnicate"] = json!({"level": 11});
    body["messages"][0]["x_extra"] = json!([1, 2]);
    let r = post_raw(
        &server,
        "/v1/chat/completions",
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut body = anthropic_body("hi");
    body["frobnicate"] = json!(true);
    let r = post_raw(
        &server,
        "/v1/messages",
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Top-level fields go on to the OpenAI-wire deployment as sent; unknown fields inside a
    // message are left out (llmux rebuilds messages from what it models).
    for sent in up.bodies() {
        assert!(sent.get("frobnicate").is_some(), "{sent}");
        assert!(sent["messages"][0].get("x_extra").is_none(), "{sent}");
    }
    assert_eq!(up.bodies()[0]["frobnicate"], json!({"level": 11}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_huge_messages_array_is_refused_when_it_fits_no_context_window() {
    let up = FakeUpstream::start(vec![Reply::openai_json("ok", Some((3, 1)))]).await;
    // `fast` is gpt-4o-mini (128k tokens of context); `roomy` is a model of unknown size.
    let yaml = format!(
        "{}  - model_name: roomy\n    litellm_params:\n      model: openai/house-model\n      api_base: {}\n      api_key: {TEST_KEY}\n",
        one_group(&up.url, "")
            .split("router_settings:")
            .next()
            .unwrap(),
        up.url
    );
    let server = start_with(&yaml, options()).await;
    let many: Vec<Value> = (0..100_000)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "x"}))
        .collect();
    let body = json!({"model": "fast", "max_tokens": 5, "messages": many});
    assert!(body.to_string().len() < llmux::serve::MAX_BODY_BYTES);
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let r = post_raw(&server, path, Some("application/json"), body.to_string()).await;
        assert!(
            r.headers().get("retry-after").is_none(),
            "waiting will not help"
        );
        let v = assert_error(r, 400, anthropic, "exceeds max_input_tokens").await;
        if !anthropic {
            assert_eq!(v["error"]["code"], "context_length_exceeded");
        }
    }
    assert_eq!(up.calls(), 0, "refused before any call");
    // Where the context is not known, the upstream decides: it gets all of it.
    let mut roomy = body.clone();
    roomy["model"] = json!("roomy");
    let r = post_raw(
        &server,
        "/v1/chat/completions",
        Some("application/json"),
        roomy.to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        up.bodies()[0]["messages"].as_array().unwrap().len(),
        100_000
    );
    still_serves(&server).await;
    server.shutdown().await.unwrap();
}
