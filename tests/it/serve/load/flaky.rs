//! The flaky upstream of the load test: an OpenAI-wire endpoint on 127.0.0.1 (any path) that
//! answers each request with the words of [`answer`] for the marker in its first user
//! message, streamed one SSE chunk at a time. One call in [`FAIL_EVERY`] fails instead, in
//! turn: 500, 503, 429 with `Retry-After: 1`, or a reset after [`RESET_AFTER`] words. A
//! continuation (the partial answer sent back as an assistant message) gets the rest of the
//! answer, so a continued answer reads exactly as an uninterrupted one. It counts its calls,
//! faults and continuations, and how often each marker's answer was streamed to its end.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One upstream request in this many fails.
const FAIL_EVERY: u64 = 10;
/// Words in an answer; each is one SSE chunk.
const WORDS: usize = 10;
/// The upstream's pace: one chunk per this.
const CHUNK_EVERY: Duration = Duration::from_millis(120);
/// Chunks a failing stream sends before its connection is reset.
const RESET_AFTER: usize = 3;

/// The answer to the request carrying `marker`: starts and ends with it.
pub fn answer(marker: &str) -> String {
    let words: Vec<String> = (1..WORDS - 1).map(|i| format!("w{i}")).collect();
    format!("<{marker}> {} </{marker}>", words.join(" "))
}

#[derive(Default)]
pub struct Flaky {
    pub calls: AtomicU64,
    /// Faults thrown, by kind.
    pub faults: Mutex<BTreeMap<&'static str, u64>>,
    /// Continuation requests (a partial answer came back to be finished).
    pub continuations: AtomicU64,
    /// Markers whose answer was streamed to its end, and how often.
    pub answered: Mutex<HashMap<String, u32>>,
}

/// Text of a message's `content` (a string in what llmux sends upstream).
fn content(m: &Value) -> &str {
    m["content"].as_str().unwrap_or("")
}

async fn flaky(State(f): State<Arc<Flaky>>, body: Bytes) -> Response {
    let n = f.calls.fetch_add(1, Ordering::Relaxed);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let marker = messages
        .iter()
        .find(|m| m["role"] == "user")
        .map(|m| content(m).to_string())
        .unwrap_or_default();
    // A continuation carries the partial answer as an assistant message: send the rest.
    let partial = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .map(|m| content(m).to_string());
    if partial.is_some() {
        f.continuations.fetch_add(1, Ordering::Relaxed);
    }
    let full = answer(&marker);
    let rest = match partial.as_deref() {
        None => full,
        Some(p) => match full.strip_prefix(p) {
            Some(r) => r.to_string(),
            None => format!("<continuation of a foreign answer: {p:?}>"),
        },
    };
    let fault = (n % FAIL_EVERY == FAIL_EVERY - 1).then_some((n / FAIL_EVERY) % 4);
    let error = |status: u16, kind: &'static str| {
        *f.faults.lock().unwrap().entry(kind).or_default() += 1;
        let body = json!({"error": {"message": format!("flaky upstream: {kind}"),
                                    "type": "server_error", "code": status}});
        let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        if status == 429 {
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
        }
        r
    };
    match fault {
        Some(0) => error(500, "500"),
        Some(1) => error(503, "503"),
        Some(2) => error(429, "429 + Retry-After: 1"),
        Some(_) => {
            *f.faults
                .lock()
                .unwrap()
                .entry("reset mid-stream")
                .or_default() += 1;
            stream(f.clone(), marker, rest, Some(RESET_AFTER))
        }
        None => stream(f.clone(), marker, rest, None),
    }
}

/// An OpenAI SSE answer of `text`, a word per chunk, cut after `reset_after` words if given.
fn stream(f: Arc<Flaky>, marker: String, text: String, reset_after: Option<usize>) -> Response {
    let chunk = |delta: Value, finish: Value| {
        let v = json!({"id": "chatcmpl-flaky", "object": "chat.completion.chunk", "created": 0,
                       "model": "flaky", "choices": [{"index": 0, "delta": delta,
                       "finish_reason": finish}]});
        Bytes::from(format!("data: {v}\n\n"))
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    chunks.extend(
        text.split_inclusive(' ')
            .map(|w| chunk(json!({ "content": w }), Value::Null)),
    );
    let words = chunks.len() - 1;
    let cut = reset_after.map(|k| 1 + k.min(words.saturating_sub(1)));
    chunks.push(chunk(json!({}), json!("stop")));
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = futures::stream::unfold(0usize, move |i| {
        let chunks = chunks.clone();
        let f = f.clone();
        let marker = marker.clone();
        async move {
            if i > 0 {
                tokio::time::sleep(CHUNK_EVERY).await;
            }
            if Some(i) == cut {
                let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "flaky");
                return Some((Err(reset), usize::MAX));
            }
            if i == usize::MAX {
                return None;
            }
            if i == chunks.len() {
                *f.answered.lock().unwrap().entry(marker).or_default() += 1;
                return None;
            }
            Some((Ok::<Bytes, std::io::Error>(chunks[i].clone()), i + 1))
        }
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}

pub async fn start_flaky() -> (String, Arc<Flaky>) {
    let f = Arc::new(Flaky::default());
    let app = axum::Router::new().fallback(flaky).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, f)
}
