//! A scriptable fake upstream that speaks real HTTP on 127.0.0.1 (port 0), for every test that
//! needs a provider on the other end of a socket, over plain HTTP or over TLS ([`Net`]).
//!
//! A test scripts the answers as a list of [`Reply`]s; [`FakeUpstream::start`] serves them in
//! order to successive requests on any path (the last one repeats), and records what came in
//! (paths, headers, JSON bodies) for assertions. Replies can stall before headers or before
//! the body, drip chunks, cut the connection mid-body, and carry any status and headers; the
//! upstream notices when a client drops a streaming body before its end.
//!
//! ```ignore
//! let up = FakeUpstream::start(vec![
//!     Reply::status(503),
//!     Reply::openai_stream(&["Hel", "lo"], Some((12, 2))),
//! ]).await;
//! // point a deployment's api_base at up.url, call it twice, then:
//! assert_eq!(up.calls(), 2);
//! ```
//!
//! A [`Net`] says how a test reaches its upstream: `http://`, or `https://` (h2 or HTTP/1.1 by
//! ALPN, with the test certificate of `support/https.rs`), called through hyper's client or
//! reqwest. [`net_test!`] runs one test body `async fn name(net: Net)` once per net
//! (`name::http`, `name::https`, `name::https_reqwest`); [`FakeUpstream::start_on`] and
//! [`Net::client`] / [`Net::router_options`] give the body its upstream and the client that
//! trusts it.

#![allow(dead_code)]

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use llmux::provider::HttpClient;
use llmux::provider::http::{HttpOptions, Transport};
use llmux::router::RouterOptions;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::support::https::{self, Alpn};

/// How a test reaches its fake upstream: the scheme it listens on, and the client stack that
/// calls it (see [`Transport`]: hyper for every upstream, reqwest when a proxy is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// `https://` with the test certificate, else `http://`.
    pub tls: bool,
    pub transport: Transport,
}

impl Net {
    pub const HTTP: Net = Net {
        tls: false,
        transport: Transport::Hyper,
    };
    pub const HTTPS: Net = Net {
        tls: true,
        transport: Transport::Hyper,
    };
    /// https through reqwest, the stack a process with a proxy configured uses.
    pub const HTTPS_REQWEST: Net = Net {
        tls: true,
        transport: Transport::Reqwest,
    };
    pub const ALL: [Net; 3] = [Net::HTTP, Net::HTTPS, Net::HTTPS_REQWEST];

    /// `http`, `https` or `https (reqwest)`, for messages.
    pub fn label(self) -> &'static str {
        match (self.tls, self.transport) {
            (false, Transport::Hyper) => "http",
            (false, Transport::Reqwest) => "http (reqwest)",
            (true, Transport::Hyper) => "https",
            (true, Transport::Reqwest) => "https (reqwest)",
        }
    }

    /// `http` or `https`.
    pub fn scheme(self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// A client on this net's transport that trusts the test certificate authority.
    pub fn client(self) -> HttpClient {
        HttpClient::with_options(&HttpOptions {
            transport: self.transport,
            tls: Some(https::client_tls()),
        })
        .expect("the test HTTP client builds")
    }

    /// Router options whose client is [`Net::client`].
    pub fn router_options(self) -> RouterOptions {
        RouterOptions {
            http: Some(self.client()),
            ..RouterOptions::default()
        }
    }
}

/// Runs the async test body `name(net: Net)` once per [`Net`], as a module of three tests
/// (`name::http`, `name::https`, `name::https_reqwest`): `net_test!(name);` above
/// `async fn name(net: Net) { … }`. Attributes given first replace `#[tokio::test]` on each
/// (`net_test!(#[tokio::test(start_paused = true)] name);`).
macro_rules! net_test {
    ($name:ident) => {
        $crate::upstream::net_test!(#[tokio::test] $name);
    };
    ($(#[$meta:meta])+ $name:ident) => {
        mod $name {
            $(#[$meta])+
            async fn http() {
                super::$name($crate::upstream::Net::HTTP).await
            }

            $(#[$meta])+
            async fn https() {
                super::$name($crate::upstream::Net::HTTPS).await
            }

            $(#[$meta])+
            async fn https_reqwest() {
                super::$name($crate::upstream::Net::HTTPS_REQWEST).await
            }
        }
    };
}
pub(crate) use net_test;

/// The largest request body the fake upstream reads.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Holds a scripted reset until the client has shown `text`, the answer's text before it.
#[derive(Debug, Clone)]
pub struct ResetGate {
    text: String,
    open: Arc<Notify>,
}

impl ResetGate {
    pub fn new(text: &str) -> ResetGate {
        ResetGate {
            text: text.to_string(),
            open: Arc::new(Notify::new()),
        }
    }

    /// The client has shown `so_far`: the reset may come once that holds the text.
    pub fn shown(&self, so_far: &str) {
        if so_far.contains(&self.text) {
            self.open.notify_one();
        }
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    chunks: Vec<Bytes>,
    delay_each: Duration,
    headers_after: Duration,
    body_after: Duration,
    reset_after: Option<usize>,
    /// With `reset_after`: the reset waits for this (the client showed what came before).
    reset_gate: Option<ResetGate>,
}

impl Reply {
    /// A raw answer: `status`, a `content-type`, and body pieces each written as one chunk.
    pub fn raw(status: u16, content_type: &str, chunks: Vec<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            delay_each: Duration::ZERO,
            headers_after: Duration::ZERO,
            body_after: Duration::ZERO,
            reset_after: None,
            reset_gate: None,
        }
    }

    /// An error status with an OpenAI-style JSON error body naming the status.
    pub fn status(status: u16) -> Reply {
        let body = json!({
            "error": {
                "message": format!("scripted status {status}"),
                "type": "scripted_error",
                "code": status,
            }
        });
        Reply::raw(status, "application/json", vec![body.to_string()])
    }

    /// A 200 with a JSON body.
    pub fn json(value: Value) -> Reply {
        Reply::raw(200, "application/json", vec![value.to_string()])
    }

    /// A 200 `text/event-stream`; each chunk is written as one body piece, as given (include
    /// the `data: ` prefixes and blank lines).
    pub fn sse(chunks: Vec<String>) -> Reply {
        Reply::raw(200, "text/event-stream", chunks)
    }

    /// A 200 `application/x-ndjson` body; each chunk is one body piece.
    pub fn ndjson(chunks: Vec<String>) -> Reply {
        Reply::raw(200, "application/x-ndjson", chunks)
    }

    /// The body pieces as they will be written (for feeding parsers directly in tests).
    pub fn chunks(&self) -> Vec<Vec<u8>> {
        self.chunks.iter().map(|c| c.to_vec()).collect()
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Adds `Retry-After: value` (seconds or an HTTP date).
    pub fn retry_after(self, value: &str) -> Reply {
        self.header("retry-after", value)
    }

    /// Waits this long between body chunks (a drip).
    pub fn delay_each(mut self, delay: Duration) -> Reply {
        self.delay_each = delay;
        self
    }

    /// Stalls this long before sending the status and headers (nothing at all arrives).
    pub fn first_byte_after(mut self, delay: Duration) -> Reply {
        self.headers_after = delay;
        self
    }

    /// Sends the status and headers at once, then stalls this long before the first body chunk.
    pub fn body_after(mut self, delay: Duration) -> Reply {
        self.body_after = delay;
        self
    }

    /// Cuts the connection after `n` body chunks (the client sees a reset mid-body).
    pub fn reset_after(mut self, n: usize) -> Reply {
        self.reset_after = Some(n);
        self
    }

    /// [`reset_after`](Self::reset_after), the reset held until `gate` opens: once the
    /// client has shown the text sent before it (a stream reset drops what the server had
    /// not yet flushed, and under load one yield is not always enough to flush it). The
    /// test tells the gate what it has shown ([`support::run_releasing`](crate::support::run_releasing)).
    pub fn reset_after_shown(mut self, n: usize, gate: ResetGate) -> Reply {
        self.reset_after = Some(n);
        self.reset_gate = Some(gate);
        self
    }

    /// The gate a [`reset_after_shown`](Self::reset_after_shown) reset waits for.
    pub fn reset_gate(&self) -> Option<ResetGate> {
        self.reset_gate.clone()
    }

    /// An OpenAI chat-completions stream: a role chunk, one chunk per text piece, a chunk with
    /// `finish_reason: "stop"`, a usage chunk when `usage` is `(prompt, completion)`, `[DONE]`.
    pub fn openai_stream(texts: &[&str], usage: Option<(u64, u64)>) -> Reply {
        let chunk = |delta: Value, finish: Value| {
            let v = json!({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
            });
            format!("data: {v}\n\n")
        };
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        chunks.extend(
            texts
                .iter()
                .map(|t| chunk(json!({ "content": t }), Value::Null)),
        );
        chunks.push(chunk(json!({}), json!("stop")));
        if let Some((input, output)) = usage {
            let v = json!({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": "fake", "choices": [],
                "usage": {"prompt_tokens": input, "completion_tokens": output,
                          "total_tokens": input + output}
            });
            chunks.push(format!("data: {v}\n\n"));
        }
        chunks.push("data: [DONE]\n\n".to_string());
        Reply::sse(chunks)
    }

    /// A whole (non-streaming) OpenAI chat completion.
    pub fn openai_json(text: &str, usage: Option<(u64, u64)>) -> Reply {
        let mut v = json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]
        });
        if let Some((input, output)) = usage {
            v["usage"] = json!({"prompt_tokens": input, "completion_tokens": output,
                                "total_tokens": input + output});
        }
        Reply::json(v)
    }

    /// An Anthropic Messages stream: message_start (with `usage.0` input tokens), a text block
    /// with one delta per piece, a ping, message_delta (`usage.1` output tokens), message_stop.
    pub fn anthropic_stream(texts: &[&str], usage: Option<(u64, u64)>) -> Reply {
        let event = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        let (input, output) = usage.unwrap_or((0, 0));
        let mut start = json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
            "content": [], "stop_reason": null}});
        if usage.is_some() {
            start["message"]["usage"] = json!({"input_tokens": input, "output_tokens": 1});
        }
        let mut chunks = vec![
            event("message_start", start),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}),
            ),
            event("ping", json!({"type": "ping"})),
        ];
        chunks.extend(texts.iter().map(|t| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": t}}),
            )
        }));
        chunks.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        let mut delta = json!({"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": null}});
        if usage.is_some() {
            delta["usage"] = json!({ "output_tokens": output });
        }
        chunks.push(event("message_delta", delta));
        chunks.push(event("message_stop", json!({"type": "message_stop"})));
        Reply::sse(chunks)
    }

    /// A whole (non-streaming) Anthropic Messages answer.
    pub fn anthropic_json(text: &str, usage: Option<(u64, u64)>) -> Reply {
        let mut v = json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"
        });
        if let Some((input, output)) = usage {
            v["usage"] = json!({"input_tokens": input, "output_tokens": output});
        }
        Reply::json(v)
    }

    /// A Gemini `alt=sse` stream: one chunk per piece; the last carries `finishReason: STOP`
    /// and, when given, `usageMetadata`. No `[DONE]`: the body just ends.
    pub fn gemini_stream(texts: &[&str], usage: Option<(u64, u64)>) -> Reply {
        let pieces: Vec<&str> = if texts.is_empty() {
            vec![""]
        } else {
            texts.to_vec()
        };
        let last = pieces.len() - 1;
        let chunks = pieces
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = json!({"candidates": [{"index": 0,
                    "content": {"role": "model", "parts": [{"text": t}]}}]});
                if i == last {
                    v["candidates"][0]["finishReason"] = json!("STOP");
                    if let Some((input, output)) = usage {
                        v["usageMetadata"] = json!({"promptTokenCount": input,
                            "candidatesTokenCount": output, "totalTokenCount": input + output});
                    }
                }
                format!("data: {v}\r\n\r\n")
            })
            .collect();
        Reply::sse(chunks)
    }

    /// A whole (non-streaming) Gemini `generateContent` answer.
    pub fn gemini_json(text: &str, usage: Option<(u64, u64)>) -> Reply {
        let mut v = json!({"candidates": [{"index": 0, "finishReason": "STOP",
            "content": {"role": "model", "parts": [{"text": text}]}}]});
        if let Some((input, output)) = usage {
            v["usageMetadata"] = json!({"promptTokenCount": input,
                "candidatesTokenCount": output, "totalTokenCount": input + output});
        }
        Reply::json(v)
    }

    /// An Ollama `/api/chat` NDJSON stream: one line per piece and a final `done: true` line
    /// with `prompt_eval_count` / `eval_count` when given.
    pub fn ollama_stream(texts: &[&str], usage: Option<(u64, u64)>) -> Reply {
        let mut chunks: Vec<String> = texts
            .iter()
            .map(|t| {
                let v = json!({"model": "fake", "created_at": "2025-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": t}, "done": false});
                format!("{v}\n")
            })
            .collect();
        let mut last = json!({"model": "fake", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"});
        if let Some((input, output)) = usage {
            last["prompt_eval_count"] = json!(input);
            last["eval_count"] = json!(output);
        }
        chunks.push(format!("{last}\n"));
        Reply::ndjson(chunks)
    }

    /// A whole (non-streaming) Ollama `/api/chat` answer.
    pub fn ollama_json(text: &str, usage: Option<(u64, u64)>) -> Reply {
        let mut v = json!({"model": "fake", "message": {"role": "assistant", "content": text},
            "done": true, "done_reason": "stop"});
        if let Some((input, output)) = usage {
            v["prompt_eval_count"] = json!(input);
            v["eval_count"] = json!(output);
        }
        Reply::json(v)
    }
}

/// What one request carried.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path, without the query.
    pub path: String,
    /// The path with its query string, when there was one.
    pub uri: String,
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
}

/// Picks a reply from a request's JSON body ([`FakeUpstream::start_by_body`]).
pub type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

struct Shared {
    replies: Vec<Reply>,
    by_body: Option<Responder>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    received: Mutex<Vec<Received>>,
    calls: AtomicUsize,
    disconnects: AtomicUsize,
    disconnected: Notify,
}

/// A running fake upstream; it stops when dropped.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT` or `https://…` (no trailing slash): use it as a deployment's
    /// `api_base`.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Starts serving `replies` in order, one per request on any path; the last repeats.
    /// Plain HTTP (see [`FakeUpstream::start_on`]).
    pub async fn start(replies: Vec<Reply>) -> FakeUpstream {
        FakeUpstream::start_on(Net::HTTP, replies).await
    }

    /// [`FakeUpstream::start`] on `net`'s scheme.
    pub async fn start_on(net: Net, replies: Vec<Reply>) -> FakeUpstream {
        assert!(
            !replies.is_empty(),
            "a fake upstream needs at least one reply"
        );
        FakeUpstream::serve(net, replies, None).await
    }

    /// Starts serving the reply `pick` chooses from each request's JSON body (for answers that
    /// depend on the prompt, whatever order requests arrive in).
    pub async fn start_by_body(
        pick: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        FakeUpstream::serve(Net::HTTP, Vec::new(), Some(Arc::new(pick))).await
    }

    async fn serve(net: Net, replies: Vec<Reply>, by_body: Option<Responder>) -> FakeUpstream {
        let shared = Arc::new(Shared {
            replies,
            by_body,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            disconnects: AtomicUsize::new(0),
            disconnected: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(serve_on(listener, app, net.tls));
        FakeUpstream {
            url: format!("{}://{addr}", net.scheme()),
            shared,
            server,
        }
    }

    /// How many requests arrived.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Everything each request carried, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// The JSON bodies of the requests, in arrival order.
    pub fn bodies(&self) -> Vec<Value> {
        self.received().into_iter().map(|r| r.body).collect()
    }

    /// The request paths (without query), in arrival order.
    pub fn paths(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.path).collect()
    }

    /// The request paths with their query strings, in arrival order.
    pub fn uris(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.uri).collect()
    }

    /// The request headers, in arrival order.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.received().into_iter().map(|r| r.headers).collect()
    }

    /// The most requests that were in progress at once (from arrival to the end of the
    /// response body, or the client going away).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many response bodies a client dropped before their end.
    pub fn disconnects(&self) -> usize {
        self.shared.disconnects.load(Ordering::SeqCst)
    }

    /// Resolves once a client has dropped a response body before its end (at once if that
    /// already happened).
    pub async fn wait_disconnect(&self) {
        loop {
            let notified = self.shared.disconnected.notified();
            if self.disconnects() > 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `app` on `listener`: axum's server for plain HTTP; for TLS, each connection's
/// handshake and then hyper's server (h2 or HTTP/1.1, as ALPN chose) in a task of its own.
async fn serve_on(listener: TcpListener, app: Router, tls: bool) {
    if !tls {
        let _ = axum::serve(listener, app).await;
        return;
    }
    while let Ok((tcp, _)) = listener.accept().await {
        let app = app.clone();
        tokio::spawn(async move {
            let Some(stream) = https::accept(tcp, Alpn::H2AndHttp1).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let index = shared.calls.fetch_add(1, Ordering::SeqCst);
    let in_flight = InFlight::enter(shared.clone());
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REQUEST_BODY)
        .await
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let reply = match &shared.by_body {
        Some(pick) => pick(&json),
        None => shared.replies[index.min(shared.replies.len() - 1)].clone(),
    };
    shared.received.lock().expect("lock").push(Received {
        path: parts.uri.path().to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body: json,
    });
    if !reply.headers_after.is_zero() {
        tokio::time::sleep(reply.headers_after).await;
    }
    let mut response = Response::new(Body::from_stream(Tracked {
        inner: body_stream(&reply),
        finished: false,
        shared: shared.clone(),
        remaining: reply.chunks.len(),
        in_flight: (!reply.chunks.is_empty()).then_some(in_flight),
    }));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("valid status");
    for (name, value) in &reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    response
}

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The scripted body: stall, then chunks with drips, then the end or a reset.
fn body_stream(reply: &Reply) -> Chunks {
    let reply = reply.clone();
    Box::pin(futures::stream::unfold(0usize, move |i| {
        let reply = reply.clone();
        async move {
            if reply.reset_after == Some(i) {
                // Let the server flush the chunks already written before it aborts, as a
                // real connection dying mid-answer would have delivered them.
                match &reply.reset_gate {
                    Some(gate) => gate.open.notified().await,
                    None => tokio::task::yield_now().await,
                }
                let reset = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "scripted reset mid-body",
                );
                // One error, then nothing: the server aborts the connection.
                return Some((Err(reset), usize::MAX));
            }
            if i == usize::MAX || i >= reply.chunks.len() {
                return None;
            }
            let wait = if i == 0 {
                reply.body_after
            } else {
                reply.delay_each
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Some((Ok(reply.chunks[i].clone()), i + 1))
        }
    }))
}

/// Counts a request as in progress from its arrival until this is dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: Arc<Shared>) -> InFlight {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body that reports when it is dropped before its end (the client went away).
struct Tracked {
    inner: Chunks,
    finished: bool,
    shared: Arc<Shared>,
    /// Chunks still to send; the request stops counting as in flight once the last one is
    /// handed over, since the client may finish before this body is dropped.
    remaining: usize,
    in_flight: Option<InFlight>,
}

impl Stream for Tracked {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(_))) = &poll {
            self.remaining = self.remaining.saturating_sub(1);
            if self.remaining == 0 {
                self.in_flight = None;
            }
        }
        // A scripted reset is an intended end, not a client going away.
        if matches!(poll, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.finished = true;
        }
        poll
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.disconnects.fetch_add(1, Ordering::SeqCst);
            self.shared.disconnected.notify_waiters();
        }
    }
}
