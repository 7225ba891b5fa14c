//! `llmux serve` over real HTTP: the server runs in-process on 127.0.0.1:0 in front of fake
//! upstreams, and the tests talk to it with reqwest as any client would.
//!
//! - `openai`: chat completions plain and streaming, models, the x-llmux headers.
//! - `anthropic`: Messages plain and streaming.
//! - `connections`: idle sockets past the connection cap, a real socket flood.
//! - `answer_memory`: a hostile 1 GB answer through the real binary, cut at the answer cap.
//! - `errors`: auth, every error status, limits, in-band errors, graceful shutdown.
//! - `prometheus`: `/metrics` parsed back, counts matching the traffic sent.
//! - `monitor`: `/llmux/events` feeding the monitor's state, rendered into a TestBackend.
//! - `load`: the real binary under 64 streaming clients against a flaky upstream.
//! - `edge`: hostile and malformed requests: credentials, sizes, slow headers, bad JSON.
//! - `hardening`: a stream cut at the end of the shutdown grace, huge model names, blank keys.
//! - `passthrough`: what OpenAI upstreams send that llmux does not model, passed back; ids.
//! - `embeddings`: POST /v1/embeddings on every wire, through retries and fallbacks.
//! - `routes`: the routes besides chat (models/{id}, count_tokens, completions) and the 404.
//! - `sdk`: the official OpenAI and Anthropic Python SDKs, unchanged.

mod answer_memory;
mod anthropic;
mod connections;
mod edge;
mod embeddings;
mod errors;
mod hardening;
mod load;
mod monitor;
mod openai;
mod passthrough;
mod prometheus;
mod routes;
mod sdk;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use llmux::router::RouterOptions;
use llmux::serve::{Running, ServeOptions, spawn};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr};

pub use crate::support::deployment;
use crate::support::{config, router_from};
use crate::upstream::Reply;

/// The master key of the tests that use one.
pub const KEY: &str = "sk-llmux-test-master";

/// Options for a test server: port 0, fast snapshots.
pub fn options() -> ServeOptions {
    ServeOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        snapshot_interval: Duration::from_millis(20),
        ..ServeOptions::default()
    }
}

/// The config lines that give a test server the master key [`KEY`].
pub fn master_key() -> String {
    format!("general_settings:\n  master_key: {KEY}\n")
}

/// A config of the deployments `entries` with the master key [`KEY`], and `rest` appended.
pub fn keyed(entries: &[String], rest: &str) -> String {
    format!("model_list:\n{}{}{rest}", entries.concat(), master_key())
}

/// A config with one group `fast` of deployment `dep-a` at `url`, and `rest` appended.
pub fn one_group(url: &str, rest: &str) -> String {
    format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n  model_group_alias: {{ quick: fast }}\n{rest}",
        deployment("fast", "dep-a", url, "")
    )
}

/// Starts a server over `yaml` with `options`.
pub async fn start_with(yaml: &str, options: ServeOptions) -> Running {
    let router = router_from(
        config(yaml),
        RouterOptions {
            recent_events: llmux::serve::RECENT_EVENTS,
            ..RouterOptions::default()
        },
    );
    spawn(router, options).await.unwrap()
}

pub async fn start(yaml: &str) -> Running {
    start_with(yaml, options()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POSTs JSON to `path`, with the key as a bearer token when given.
pub async fn post(
    server: &Running,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = client().post(format!("{}{path}", server.url())).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// A plain "hi" to `model` with the test key, which must answer 200; the answer read.
pub async fn chat_ok(server: &Running, model: &str) -> Value {
    let r = post(
        server,
        "/v1/chat/completions",
        &chat(model, "hi"),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn get(server: &Running, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{}{path}", server.url()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// A header's value as text.
pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// The SSE events of a whole body: (event name, data).
pub fn sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter(|block| !block.starts_with(':'))
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// The text of an OpenAI stream's body: its chunks' `delta.content` in order.
pub fn streamed_content(text: &str) -> String {
    sse(text)
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// An upstream that sends everything up to its first token, then stalls for ten minutes.
pub fn stalling() -> Reply {
    let chunks = Reply::openai_stream(&["first", "late"], None).chunks();
    let mut texts: Vec<String> = chunks
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    let at = texts.iter().position(|t| t.contains("first")).unwrap();
    let head: String = texts.drain(..=at).collect();
    texts.insert(0, head);
    Reply::sse(texts).delay_each(Duration::from_secs(600))
}

/// An OpenAI chat request for `model` saying `text`.
pub fn chat(model: &str, text: &str) -> Value {
    serde_json::json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

/// [`chat`] with `stream: true`.
pub fn streaming_chat(model: &str, text: &str) -> Value {
    let mut body = chat(model, text);
    body["stream"] = Value::Bool(true);
    body
}

/// The real `llmux serve` binary as a child process of its own (so its memory and descriptors
/// are its own) on the config `cfg`, its config and data dirs under `dir`; with `ulimit_fds`,
/// under `ulimit -n`. Returns the child, its URL (from its "listening on" line, awaited at most
/// `within`) and the rest of its stderr, to keep open while it runs.
pub async fn spawn_binary(
    cfg: &Path,
    dir: &Path,
    ulimit_fds: Option<usize>,
    within: Duration,
) -> (Child, String, Lines<BufReader<ChildStderr>>) {
    let mut command = match ulimit_fds {
        Some(fds) => {
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {fds} && exec \"$@\""))
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_llmux"));
            sh
        }
        None => tokio::process::Command::new(env!("CARGO_BIN_EXE_llmux")),
    };
    let mut child = command
        .arg("--config")
        .arg(cfg)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("LLMUX_CONFIG")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("LLMUX_DATA_DIR", dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(within, lines.next_line())
            .await
            .expect("serve did not start")
            .unwrap()
            .expect("serve exited before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    (child, url, lines)
}
