//! An upstream cannot make serve hold gigabytes: a hostile upstream streams a 1 GB answer
//! (16 KiB of text per SSE event) through the real `llmux serve` binary, and the server's peak
//! RSS (`VmHWM` of its own process, fresh for the test) grows by no more than
//! [`MAX_GROWTH_KIB`] over its peak after a small warm-up answer. The answer is cut at
//! `llmux.max_answer_bytes` with an in-band error, everything before it delivered; a smaller
//! configured cap cuts it sooner. Linux only (`/proc`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};

use super::sse;

/// The hostile answer's size.
const HOSTILE_BYTES: u64 = 1_000_000_000;
/// Text per SSE event of the hostile answer.
const EVENT_TEXT: usize = 16 * 1024;
/// The bound on the server's peak RSS growth for one hostile answer (the default cap is
/// 4 MiB of text; before it, one such answer grew it by over 500 MiB).
const MAX_GROWTH_KIB: u64 = 48 * 1024;
/// The guard on any one step.
const GUARD: Duration = Duration::from_secs(120);

/// An OpenAI-wire upstream whose streamed answer is `total` bytes of SSE, generated as it is
/// sent; counts the body bytes the server took.
struct Hostile {
    url: String,
    sent: Arc<AtomicU64>,
}

async fn hostile(total: u64) -> Hostile {
    let text = "x".repeat(EVENT_TEXT);
    let event = format!(
        "data: {}\n\n",
        json!({"id": "h", "object": "chat.completion.chunk", "created": 1, "model": "x",
               "choices": [{"index": 0, "delta": {"content": text}}]})
    );
    let event = Bytes::from(event);
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let event = event.clone();
            let counter = counter.clone();
            async move {
                let n = total / event.len() as u64;
                let body = futures::stream::iter((0..n).map(move |_| {
                    counter.fetch_add(event.len() as u64, Ordering::Relaxed);
                    Ok::<_, std::io::Error>(event.clone())
                }));
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(body))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hostile { url, sent }
}

fn config(url: &str, llmux: &str) -> String {
    format!(
        "model_list:\n  - model_name: h\n    litellm_params: {{ model: openai/x, api_base: '{url}', api_key: sk-hostile-upstream }}\nrouter_settings:\n  num_retries: 0\n{llmux}"
    )
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Streams a chat answer from `url`, keeping only the text's length and the last events.
/// Returns (text bytes, the in-band error's message if any, whether `[DONE]` came).
async fn stream_answer(url: &str) -> (usize, Option<String>, bool) {
    let http = reqwest::Client::builder().timeout(GUARD).build().unwrap();
    let mut r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(
            &json!({"model": "h", "stream": true, "messages": [{"role": "user", "content": "q"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (mut text, mut error, mut done) = (0usize, None, false);
    let mut pending = String::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        let Some(end) = pending.rfind("\n\n") else {
            continue;
        };
        for (_, data) in sse(&pending[..end + 2]) {
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_str(&data).unwrap();
            if let Some(e) = v.get("error") {
                error = Some(e["message"].as_str().unwrap_or_default().to_string());
            }
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                text += t.len();
            }
        }
        pending.drain(..end + 2);
    }
    (text, error, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_1gb_answer_is_cut_at_the_cap_with_bounded_memory() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = hostile(HOSTILE_BYTES).await;
    let warm = hostile(64 * 1024).await;
    let dir = tempfile::tempdir().unwrap();
    // Two deployments: one warm-up group with a small answer, the hostile one.
    let yaml = format!(
        "model_list:\n  - model_name: h\n    litellm_params: {{ model: openai/x, api_base: '{}', api_key: sk-hostile-upstream }}\n  - model_name: w\n    litellm_params: {{ model: openai/x, api_base: '{}', api_key: sk-hostile-upstream }}\nrouter_settings:\n  num_retries: 0\n",
        up.url, warm.url
    );
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (mut child, url, _stderr) = super::spawn_binary(&cfg, dir.path(), None, GUARD).await;
    let pid = child.id().unwrap();

    // Warm up: the runtime's threads, the HTTP clients and their buffers exist before
    // measuring (the warm-up group answers 64 KB).
    let http = reqwest::Client::new();
    let warm_answer = http
        .post(format!("{url}/v1/chat/completions"))
        .json(
            &json!({"model": "w", "stream": true, "messages": [{"role": "user", "content": "q"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(warm_answer.contains("[DONE]"));
    let before = status_kib(pid, "VmHWM:");

    let (text, error, done) = stream_answer(&url).await;
    let peak = status_kib(pid, "VmHWM:");
    let growth = peak.saturating_sub(before);
    let sent = up.sent.load(Ordering::Relaxed);
    eprintln!(
        "hostile 1 GB answer: {text} text bytes delivered, upstream sent {sent} bytes, server peak RSS {before} -> {peak} KiB (+{growth} KiB)"
    );
    let error = error.expect("the answer ends with an in-band error");
    assert!(error.contains("max_answer_bytes"), "{error}");
    assert!(!done, "a cut answer has no [DONE]");
    assert!(text <= 4 * 1024 * 1024, "{text} bytes delivered");
    assert!(
        text >= 4 * 1024 * 1024 - EVENT_TEXT,
        "{text} bytes delivered"
    );
    assert!(
        growth < MAX_GROWTH_KIB,
        "peak RSS grew by {growth} KiB (bound {MAX_GROWTH_KIB} KiB)"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_cap_is_configurable() {
    let up = hostile(10 * 1024 * 1024).await;
    let server = super::start(&config(&up.url, "llmux:\n  max_answer_bytes: 100000\n")).await;
    let (text, error, done) = stream_answer(&server.url()).await;
    let error = error.expect("the answer ends with an in-band error");
    assert!(
        error.contains("100000-byte") && error.contains("llmux.max_answer_bytes"),
        "{error}"
    );
    assert!(!done);
    assert!(
        (100_000 - EVENT_TEXT..=100_000).contains(&text),
        "{text} bytes delivered"
    );
    // Well short of the 10 MB the upstream had to give: it was not read to its end.
    assert!(up.sent.load(Ordering::Relaxed) < 10 * 1024 * 1024);
}

#[test]
fn a_cap_below_a_kibibyte_is_a_config_error() {
    let err = llmux::config::load_str(
        &config("http://127.0.0.1:9/v1", "llmux:\n  max_answer_bytes: 10\n"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("llmux.max_answer_bytes must be at least 1024 bytes, not 10"),
        "{err}"
    );
}
